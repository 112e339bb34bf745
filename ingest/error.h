#pragma once
#include <stdexcept>
#include <string>

namespace folio::ingest {

// Thrown inside the ingest module for a failure of one file or page. what() is
// one line a user can act on ("encrypted PDF: needs a password (--password)").
class IngestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace folio::ingest
