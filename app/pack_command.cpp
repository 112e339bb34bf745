// `folio pack keygen | build | install | list | verify | remove | trust | log`.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/cli_commands.h"
#include "app/cli_support.h"
#include "app/packs.h"
#include "domain_packs/pack_builder.h"
#include "domain_packs/pack_store.h"
#include "domain_packs/trusted_keys.h"

namespace folio::app {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_text_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(std::string("cannot read the ") + what + " " + path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A key file, never over an existing one; the secret key readable by its owner only.
void write_new_file(const fs::path& path, const std::string& text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) throw UsageError("cannot create " + path.string() + (errno == EEXIST ? ": it exists" : ""));
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (::close(fd) != 0 || !written) throw std::runtime_error("cannot write " + path.string());
}

std::uint64_t total_size(const packs::PackManifest& manifest) {
    std::uint64_t total = 0;
    for (const packs::PackFile& file : manifest.files) total += file.size;
    return total;
}

json manifest_json(const packs::PackManifest& manifest) {
    json base_models = json::array();
    for (const packs::BaseModel& model : manifest.base_models) {
        json entry = {{"architecture", model.architecture}, {"tokenizer_sha256", model.tokenizer_sha256}};
        if (model.weights_sha256) entry["weights_sha256"] = *model.weights_sha256;
        base_models.push_back(std::move(entry));
    }
    return {{"name", manifest.name},          {"version", manifest.version},
            {"sequence", manifest.sequence},  {"domain", manifest.domain},
            {"files", manifest.files.size()}, {"bytes", total_size(manifest)},
            {"base_models", base_models}};
}

// The content check install runs on the staged folder: Folio must be able
// to use what it activates.
void check_pack_content(const fs::path& staged, const packs::PackManifest& manifest) {
    try {
        const PackContent content = load_pack_folder(staged, manifest.name);
        (void)content;
    } catch (const PackError& e) {
        throw packs::PackError("content", e.what());
    }
}

int pack_keygen(const ParsedArgs& args) {
    const std::optional<std::string> out = args.value("out");
    if (!out || !args.positional.empty()) throw UsageError("pack keygen takes --out PREFIX (writes PREFIX.pub and PREFIX.key)");
    const packs::KeyPair pair = packs::generate_keypair();
    write_new_file(*out + ".key", packs::secret_key_file_text(pair.secret_key), 0600);
    write_new_file(*out + ".pub", packs::public_key_file_text(pair.public_key), 0644);
    const std::string id = packs::key_id_hex(pair.public_key.id());
    if (args.has("json")) {
        print_json({{"key_id", id}, {"public_key", *out + ".pub"}, {"secret_key", *out + ".key"}});
    } else {
        std::printf("key %s: public %s.pub, secret %s.key (keep it private)\n", id.c_str(), out->c_str(), out->c_str());
    }
    return 0;
}

int pack_build(const ParsedArgs& args) {
    const std::optional<std::string> key_file = args.value("key");
    const std::optional<std::string> out = args.value("out");
    if (args.positional.size() != 1 || !key_file || !out)
        throw UsageError("pack build takes DIR --key SECRET.key --out FILE.foliopack [--base-model FILE.gguf] [--pin-weights]");
    if (!fs::is_directory(args.positional[0])) throw UsageError("no folder " + args.positional[0]);
    const packs::SecretKey key = packs::parse_secret_key_file(read_text_file(*key_file, "secret key file"));
    packs::PackBuildRequest request{.source_directory = args.positional[0], .output = *out};
    if (const auto model = args.value("base-model")) {
        if (!fs::is_regular_file(*model)) throw UsageError("no model file " + *model);
        request.base_models.push_back(*model);
    }
    request.pin_weights = args.has("pin-weights");
    const packs::PackManifest manifest = packs::build_pack(request, key);
    const std::string id = packs::key_id_hex(key.public_key().id());
    if (args.has("json")) {
        json result = manifest_json(manifest);
        result["out"] = *out;
        result["key_id"] = id;
        print_json(result);
    } else {
        std::printf("built %s: %zu files, %llu bytes, signed by %s -> %s\n", packs::named_release_label(manifest).c_str(),
                    manifest.files.size(), static_cast<unsigned long long>(total_size(manifest)), id.c_str(),
                    out->c_str());
    }
    return 0;
}

packs::InstallOptions install_options(const ParsedArgs& args) {
    packs::InstallOptions options;
    options.allow_downgrade = args.has("allow-downgrade");
    options.check_content = check_pack_content;
    if (const auto model = args.value("model")) {
        if (!fs::is_regular_file(*model)) throw UsageError("no model file " + *model);
        options.base_model = *model;
    } else if (const auto found = engine::find_default_model(engine::ModelRole::Chat)) {
        options.base_model = *found;
    }
    return options;
}

int pack_install(packs::PackStore& store, const ParsedArgs& args) {
    if (args.positional.size() != 1)
        throw UsageError("pack install takes FILE.foliopack [--allow-downgrade] [--model FILE.gguf]");
    if (!fs::is_regular_file(args.positional[0])) throw UsageError("no pack file " + args.positional[0]);
    const packs::InstallResult result = store.install(args.positional[0], install_options(args));
    if (result.downgrade)
        std::fprintf(stderr, "folio: warning: downgraded %s to %s (logged in %s)\n", packs::named_release_label(*result.replaced).c_str(),
                     result.pack.manifest.version.c_str(), store.directory().c_str());
    if (args.has("json")) {
        json out = manifest_json(result.pack.manifest);
        out["key_id"] = result.pack.key_id;
        out["directory"] = result.pack.directory.string();
        out["downgrade"] = result.downgrade;
        out["replaced"] = result.replaced ? json(result.replaced->version) : json(nullptr);
        print_json(out);
    } else {
        std::printf("installed %s, signed by %s: %zu files, %llu bytes%s\n", packs::named_release_label(result.pack.manifest).c_str(),
                    result.pack.key_id.c_str(), result.pack.manifest.files.size(),
                    static_cast<unsigned long long>(total_size(result.pack.manifest)),
                    result.replaced ? (", replacing " + result.replaced->version).c_str() : "");
    }
    return 0;
}

int pack_list(const packs::PackStore& store, const ParsedArgs& args) {
    if (!args.positional.empty()) throw UsageError("pack list takes no arguments");
    const std::vector<packs::InstalledPack> installed = store.list();
    for (const std::string& name : pack_names()) {
        const auto it = std::find_if(installed.begin(), installed.end(),
                                     [&](const packs::InstalledPack& p) { return p.manifest.name == name; });
        if (it == installed.end()) {
            const PackContent content = load_pack(name);
            if (args.has("json")) print_json({{"name", name}, {"source", "built-in"}, {"description", content.description}});
            else std::printf("%-16s built-in   %s\n", name.c_str(), content.description.c_str());
            continue;
        }
        const PackContent content = load_pack_folder(it->directory, name);
        if (args.has("json")) {
            json out = manifest_json(it->manifest);
            out["description"] = content.description;
            out["source"] = "installed";
            out["key_id"] = it->key_id;
            out["installed_at"] = it->installed_at;
            out["directory"] = it->directory.string();
            print_json(out);
        } else {
            std::printf("%-16s installed  %s, signed by %s, %s: %s\n", name.c_str(),
                        packs::release_label(it->manifest).c_str(),
                        it->key_id.c_str(), it->installed_at.c_str(), content.description.c_str());
        }
    }
    return 0;
}

// NAME: the installed pack's files against its signed manifest. FILE: every
// install check on a pack file, without installing it.
int pack_verify(packs::PackStore& store, const ParsedArgs& args) {
    if (args.positional.size() != 1) throw UsageError("pack verify takes NAME (installed) or FILE.foliopack");
    const std::string& target = args.positional[0];
    if (fs::is_regular_file(target)) {
        packs::InstallOptions options = install_options(args);
        options.dry_run = true;
        const packs::InstallResult result = store.install(target, options);
        if (args.has("json")) {
            json out = manifest_json(result.pack.manifest);
            out["key_id"] = result.pack.key_id;
            out["ok"] = true;
            print_json(out);
        } else {
            std::printf("%s: %s, signed by %s, passes every install check\n", target.c_str(),
                        packs::named_release_label(result.pack.manifest).c_str(), result.pack.key_id.c_str());
        }
        return 0;
    }
    const std::vector<std::string> problems = store.verify(target);
    if (args.has("json")) {
        print_json({{"name", target}, {"ok", problems.empty()}, {"problems", problems}});
    } else if (problems.empty()) {
        std::printf("%s: every file matches its signed manifest\n", target.c_str());
    } else {
        for (const std::string& problem : problems) std::printf("%s: %s\n", target.c_str(), problem.c_str());
    }
    if (!problems.empty()) {
        std::fprintf(stderr, "folio: error: pack %s fails verification (%zu problems); reinstall it\n", target.c_str(),
                     problems.size());
        return 1;
    }
    return 0;
}

int pack_remove(packs::PackStore& store, const ParsedArgs& args) {
    if (args.positional.size() != 1) throw UsageError("pack remove takes NAME");
    const std::optional<packs::InstalledPack> installed = store.find(args.positional[0]);
    if (!installed) throw UsageError("no pack named " + args.positional[0] + " is installed (built-in packs stay)");
    store.remove(args.positional[0]);
    if (args.has("json")) print_json({{"removed", args.positional[0]}, {"version", installed->manifest.version}});
    else std::printf("removed %s\n", packs::named_release_label(installed->manifest).c_str());
    return 0;
}

int pack_trust(packs::PackStore& store, const ParsedArgs& args) {
    if (args.positional.size() != 1) throw UsageError("pack trust takes KEY.pub");
    const packs::PublicKey key = packs::parse_public_key_file(read_text_file(args.positional[0], "public key file"));
    const bool added = store.trust(key);
    const std::string id = packs::key_id_hex(key.id());
    if (args.has("json")) print_json({{"key_id", id}, {"added", added}});
    else std::printf(added ? "packs signed by key %s are now trusted\n" : "key %s was trusted already\n", id.c_str());
    return 0;
}

int pack_log(const packs::PackStore& store, const ParsedArgs& args) {
    if (!args.positional.empty()) throw UsageError("pack log takes no arguments");
    for (const packs::StoreEvent& event : store.events()) {
        if (args.has("json"))
            print_json({{"at", event.at}, {"event", event.event}, {"name", event.name}, {"detail", event.detail}});
        else
            std::printf("%s  %-9s %-16s %s\n", event.at.c_str(), event.event.c_str(), event.name.c_str(),
                        event.detail.c_str());
    }
    return 0;
}

}  // namespace

int command_pack(const std::vector<std::string>& args) {
    const std::string sub = args.empty() ? "" : args[0];
    const std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
    const auto parse = [&](CommandSpec spec) {
        spec.flags.insert("json");
        return parse_args("pack " + sub, rest, spec);
    };
    if (sub == "keygen") return pack_keygen(parse({.valued = {"out"}}));
    if (sub == "build") return pack_build(parse({.valued = {"key", "out", "base-model"}, .flags = {"pin-weights"}}));
    packs::PackStore store(packs::PackStore::default_directory());
    if (sub == "install") return pack_install(store, parse({.valued = {"model"}, .flags = {"allow-downgrade"}}));
    if (sub == "list") return pack_list(store, parse({}));
    if (sub == "verify") return pack_verify(store, parse({.valued = {"model"}}));
    if (sub == "remove") return pack_remove(store, parse({}));
    if (sub == "trust") return pack_trust(store, parse({}));
    if (sub == "log") return pack_log(store, parse({}));
    throw UsageError("pack takes keygen, build, install, list, verify, remove, trust or log");
}

}  // namespace folio::app
