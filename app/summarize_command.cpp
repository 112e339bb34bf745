#include "app/cli_commands.h"
#include "app/cli_support.h"

namespace folio::app {

int command_summarize(const std::string&, const std::vector<std::string>&) {
    throw UsageError("summarize is being built");
}

}  // namespace folio::app
