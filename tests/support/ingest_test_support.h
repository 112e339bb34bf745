#pragma once
// Helpers shared by the ingest suites.

#include <QLatin1String>
#include <QString>

#include "ingest/error.h"

namespace folio::test {

// A file under tests/data/ingest.
inline QString ingest_data_path(const char* name) {
    return QStringLiteral(FOLIO_TEST_DATA "/ingest/") + QLatin1String(name);
}

// The message of the IngestError that `action` throws; empty when it throws none.
template <typename Action>
QString ingest_error(Action&& action) {
    try {
        action();
    } catch (const ingest::IngestError& error) {
        return QString::fromUtf8(error.what());
    }
    return {};
}

}  // namespace folio::test
