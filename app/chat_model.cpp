#include "app/chat_model.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace folio::app {

namespace {

// A base model (no chat template) sees the conversation as plain text with
// the roles spelt out; the assistant's turn is opened the same way.
std::string render_plain(const std::vector<engine::ChatMessage>& messages) {
    std::string text;
    for (const engine::ChatMessage& message : messages) {
        if (message.role == "system")
            text += message.content + "\n\n";
        else
            text += (message.role == "user" ? "User: " : "Assistant: ") + message.content + "\n\n";
    }
    return text + "Assistant:";
}

}  // namespace

ChatModel::ChatModel(const ChatModelOptions& options) : path_(options.path), pool_(options.threads) {
    const auto fail = [&](const std::string& why) { return ChatModelError("model " + path_ + ": " + why); };
    if (!std::filesystem::is_regular_file(path_)) throw fail("no such file");
    try {
        file_.emplace(engine::GgufFile::open(path_));
        model_ = engine::load_model(*file_);
    } catch (const std::system_error& e) {
        throw fail(e.what());
    } catch (const std::runtime_error& e) {  // GgufError, ModelError
        throw fail(e.what());
    }
    if (model_->is_encoder()) throw fail("is an encoder (embedding model), not a chat model");
    if (!file_->find("tokenizer.ggml.model")) throw fail("has no tokenizer (tokenizer.ggml.*)");
    try {
        vocab_ = std::make_unique<engine::Vocab>(*file_);
    } catch (const std::runtime_error& e) {
        throw fail(e.what());
    }
    if (options.format) {
        chat_template_ = engine::ChatTemplate{.format = *options.format};
    } else if (const auto source = file_->find_string("tokenizer.chat_template")) {
        try {
            chat_template_ = engine::detect_chat_template(*source);
        } catch (const engine::ChatTemplateError& e) {
            throw fail(e.what());
        }
    }
    const int trained = model_->config().n_ctx_train > 0 ? model_->config().n_ctx_train : 2048;
    context_tokens_ = options.context_tokens > 0 ? std::min(options.context_tokens, trained) : std::min(trained, 8192);
    kv_type_ = options.kv_type;
    cache_budget_bytes_ = options.cache_budget_bytes;
    try {
        device_ = place_model(*model_, options.device, {.context_positions = context_tokens_, .kv_type = kv_type_});
        try {
            make_cache();
        } catch (const engine::KvCacheError&) {
            // Automatic: weights that fit the GPU with no room for the context run on the CPU instead.
            if (!model_->on_gpu() || options.device != DeviceChoice::Auto) throw;
            model_->use_cpu();
            device_ = "cpu";
            make_cache();
        }
    } catch (const std::runtime_error& e) {  // ModelError, KvCacheError
        throw fail(e.what());
    } catch (const std::invalid_argument& e) {
        throw fail(e.what());
    }
}

void ChatModel::make_cache() {
    cache_.reset();  // its caches' memory first
    cache_ = std::make_unique<engine::PrefixCache>(*model_, context_tokens_, kv_type_, cache_budget_bytes_);
}

void ChatModel::set_default_adapters(engine::LoraSet adapters) {
    default_adapters_ = std::move(adapters);
}

ChatModel::~ChatModel() = default;

int ChatModel::count_tokens(std::string_view text) const {
    return static_cast<int>(vocab_->encode(text, false, false).size());
}

std::vector<std::int32_t> ChatModel::prompt_tokens(const std::vector<engine::ChatMessage>& messages,
                                                   std::string_view assistant_prefix) const {
    if (!chat_template_) return vocab_->encode(render_plain(messages) + std::string(assistant_prefix), true, false);
    const std::string text = engine::render_chat(*chat_template_, messages) + std::string(assistant_prefix);
    return vocab_->encode(text, false, true);
}

engine::GenerationResult ChatModel::generate(const std::vector<engine::ChatMessage>& messages,
                                             const engine::GenerationOptions& options,
                                             std::string_view assistant_prefix) {
    return generate(prompt_tokens(messages, assistant_prefix), options);
}

engine::GenerationResult ChatModel::generate(std::span<const std::int32_t> prompt,
                                             const engine::GenerationOptions& options) {
    if (options.loras.empty() && !default_adapters_.empty()) {
        engine::GenerationOptions with_defaults = options;
        with_defaults.loras = default_adapters_;
        return generate(prompt, with_defaults);
    }
    engine::Sequence& sequence = cache_->acquire(prompt, options.loras);
    return engine::generate(*model_, pool_, sequence, vocab_.get(), prompt, options);
}

}  // namespace folio::app
