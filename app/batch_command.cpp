#include "app/cli_commands.h"
#include "app/cli_support.h"

namespace folio::app {

int command_batch(const std::string&, const std::vector<std::string>&) {
    throw UsageError("batch is being built");
}

}  // namespace folio::app
