#pragma once
// The `folio` command line (ARCHITECTURE.md, "The command-line contract").

namespace folio::app {

// Runs one folio command; returns the process exit status. Errors are
// printed to stderr as one line "folio: error: ...".
int run_cli(int argc, char** argv);

}  // namespace folio::app
