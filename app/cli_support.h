#pragma once
// What the `folio` commands share: argument parsing, number options, JSON
// lines, Ctrl-C, the model a command runs. Each command family lives in its
// own file (cli.cpp, ask_command.cpp, ...); cli_commands.h lists them.

#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "app/compute_device.h"
#include "engine/model_paths.h"

namespace folio::app {

class ChatModel;
class Library;
struct PackContent;

// A usage or input problem the user can fix; printed as one line, exit 2.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Options of one command: names that take a value, and flags.
struct CommandSpec {
    std::set<std::string> valued;
    std::set<std::string> flags;
};

struct ParsedArgs {
    std::vector<std::string> positional;
    std::map<std::string, std::string> values;             // the last value of each option
    std::map<std::string, std::vector<std::string>> all_values;  // every value in order, for repeatable options
    std::set<std::string> flags;

    bool has(const std::string& flag) const { return flags.count(flag) > 0; }
    std::optional<std::string> value(const std::string& name) const {
        auto it = values.find(name);
        if (it == values.end()) return std::nullopt;
        return it->second;
    }
    std::vector<std::string> every_value(const std::string& name) const {
        auto it = all_values.find(name);
        return it == all_values.end() ? std::vector<std::string>{} : it->second;
    }
};

// "--name value", "--name=value" and "--flag"; anything else is positional.
// Throws UsageError for an option `spec` does not name.
ParsedArgs parse_args(const std::string& command, const std::vector<std::string>& args, const CommandSpec& spec);

// The option's whole text as a number in [min, max], else UsageError naming --name.
int parse_int(const std::string& name, const std::string& text, int min, int max);
// --device (auto when absent); UsageError for another name.
DeviceChoice device_argument(const ParsedArgs& args);
// --cpu-experts as GpuPlacement::host_expert_layers: a number of layers,
// "all", or "auto" (the default: as many as the GPU's memory needs).
int cpu_experts_argument(const ParsedArgs& args);

// A comma-separated list of such numbers ("2048,8192"), at least one.
std::vector<int> parse_int_list(const std::string& name, const std::string& text, int min, int max);
double parse_float(const std::string& name, const std::string& text, double min, double max);
std::int64_t parse_doc_id(const std::string& text);
// The documents --doc names, repeated or comma-separated (--doc 3 --doc 7,9),
// in order without repeats; empty when --doc is not given. A usage error for
// an id that is not a document of the library.
std::vector<std::int64_t> doc_ids_argument(const ParsedArgs& args, Library& library);
// Whether ask reranks its sources: --rerank always (an error later when no
// reranking model is found), --no-rerank never, neither when a reranking
// model is installed (Library::reranker_model_path). A usage error for both.
bool ask_rerank_argument(const ParsedArgs& args);

// One JSON object as one line on stdout (invalid UTF-8 replaced).
void print_json(const nlohmann::json& object);

// Set by Ctrl-C (SIGINT, SIGTERM) while an InterruptGuard lives; long commands poll it.
extern std::atomic<bool> g_cancel;
class InterruptGuard {
public:
    InterruptGuard();   // clears g_cancel, installs the handler
    ~InterruptGuard();  // restores the default handlers
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// The --model file, else the installed default model of that role; a usage
// error when there is none or the path is not a file.
std::string model_file_argument(const ParsedArgs& args, engine::ModelRole role, const char* role_name);

// Runs the model with the pack's LoRA adapters unless --no-adapter was given
// (the commands that take --pack list that flag); an adapter made for another
// model is left out with a note on stderr.
void use_pack_adapters(ChatModel& model, const PackContent& pack, const ParsedArgs& args);

}  // namespace folio::app
