#include "app/cli_support.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>

#include <nlohmann/json.hpp>

#include "app/chat_model.h"
#include "app/library.h"
#include "app/packs.h"

namespace folio::app {

using nlohmann::json;

namespace {

// The number `text` holds in full, or nothing: "12abc" and "" are not numbers.
template <typename Number>
std::optional<Number> read_number(const std::string& text, Number (*convert)(const std::string&, size_t*)) {
    size_t used = 0;
    try {
        const Number value = convert(text, &used);
        if (!text.empty() && used == text.size()) return value;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

long to_long(const std::string& text, size_t* used) { return std::stol(text, used); }
long long to_long_long(const std::string& text, size_t* used) { return std::stoll(text, used); }
double to_double(const std::string& text, size_t* used) { return std::stod(text, used); }

}  // namespace

ParsedArgs parse_args(const std::string& command, const std::vector<std::string>& args, const CommandSpec& spec) {
    ParsedArgs parsed;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
            parsed.positional.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2), value;
        const size_t equals = name.find('=');
        const bool inline_value = equals != std::string::npos;
        if (inline_value) {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
        }
        if (spec.flags.count(name)) {
            if (inline_value) throw UsageError("--" + name + " takes no value");
            parsed.flags.insert(name);
        } else if (spec.valued.count(name)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
                value = args[++i];
            }
            parsed.values[name] = value;
            parsed.all_values[name].push_back(value);
        } else {
            throw UsageError("unknown option --" + name + " for '" + command + "'");
        }
    }
    return parsed;
}

int parse_int(const std::string& name, const std::string& text, int min, int max) {
    const std::optional<long> value = read_number(text, to_long);
    if (!value || *value < min || *value > max)
        throw UsageError("--" + name + " must be a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", not '" + text + "'");
    return static_cast<int>(*value);
}

DeviceChoice device_argument(const ParsedArgs& args) {
    try {
        return parse_device(args.value("device").value_or("auto"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
}

int cpu_experts_argument(const ParsedArgs& args) {
    const std::string text = args.value("cpu-experts").value_or("auto");
    if (text == "auto") return engine::GpuPlacement::kFitExperts;
    if (text == "all") return std::numeric_limits<int>::max();
    const std::optional<long> layers = read_number(text, to_long);
    if (!layers || *layers < 0 || *layers > (1 << 20))
        throw UsageError("--cpu-experts must be auto, all or a number of layers, not '" + text + "'");
    return static_cast<int>(*layers);
}

std::vector<int> parse_int_list(const std::string& name, const std::string& text, int min, int max) {
    std::vector<int> values;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        values.push_back(parse_int(name, text.substr(start, comma - start), min, max));
        if (comma == std::string::npos) return values;
        start = comma + 1;
    }
}

double parse_float(const std::string& name, const std::string& text, double min, double max) {
    const std::optional<double> value = read_number(text, to_double);
    if (!value || !(*value >= min && *value <= max))
        throw UsageError("--" + name + " must be a number from " + json(min).dump() + " to " + json(max).dump() +
                         ", not '" + text + "'");
    return *value;
}

std::int64_t parse_doc_id(const std::string& text) {
    const std::optional<long long> value = read_number(text, to_long_long);
    if (!value || *value <= 0) throw UsageError("'" + text + "' is not a document id");
    return *value;
}

std::vector<std::int64_t> doc_ids_argument(const ParsedArgs& args, Library& library) {
    std::vector<std::int64_t> ids;
    for (const std::string& value : args.every_value("doc")) {
        for (std::size_t start = 0;;) {
            const std::size_t comma = value.find(',', start);
            const std::int64_t id = parse_doc_id(value.substr(start, comma - start));
            if (!library.store().document(id))
                throw UsageError("no document with id " + std::to_string(id) + " in " + library.directory());
            if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    return ids;
}

bool ask_rerank_argument(const ParsedArgs& args) {
    if (args.has("rerank") && args.has("no-rerank")) throw UsageError("--rerank and --no-rerank contradict each other");
    if (args.has("rerank")) return true;
    return !args.has("no-rerank") && !Library::reranker_model_path().empty();
}

void print_json(const json& object) {
    std::cout << object.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

std::atomic<bool> g_cancel{false};

extern "C" void on_interrupt(int) { g_cancel.store(true); }

InterruptGuard::InterruptGuard() {
    g_cancel.store(false);
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
}

InterruptGuard::~InterruptGuard() {
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
}

void use_pack_adapters(ChatModel& model, const PackContent& pack, const ParsedArgs& args) {
    if (args.has("no-adapter") || pack.adapters.empty()) return;
    PackAdapters adapters;
    try {
        adapters = load_pack_adapters(pack, model.model());
    } catch (const PackError& e) {
        throw UsageError(e.what());
    }
    for (const std::string& skipped : adapters.skipped) std::fprintf(stderr, "folio: note: %s\n", skipped.c_str());
    model.set_default_adapters(std::move(adapters.set));
}

std::string model_file_argument(const ParsedArgs& args, engine::ModelRole role, const char* role_name) {
    std::string path;
    if (auto m = args.value("model")) {
        path = *m;
    } else {
        const std::optional<std::string> found = engine::find_default_model(role);
        if (!found)
            throw UsageError(std::string("no ") + role_name +
                             " model found; run installer/fetch-models.sh or pass --model FILE");
        path = *found;
    }
    if (!std::filesystem::is_regular_file(path)) throw UsageError("no model file " + path);
    return path;
}

}  // namespace folio::app
