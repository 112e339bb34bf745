#include "app/cli_commands.h"
#include "app/cli_support.h"

namespace folio::app {

int command_ask(const std::string&, const std::vector<std::string>&) {
    throw UsageError("ask is being built");
}

}  // namespace folio::app
