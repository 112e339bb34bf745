#include "app/cli_commands.h"
#include "app/cli_support.h"

namespace folio::app {

int command_extract(const std::string&, const std::vector<std::string>&) {
    throw UsageError("extract is being built");
}

}  // namespace folio::app
