#pragma once
// The language model the application's jobs talk to (ask, summarize,
// extract, batch): one GGUF chat model with its vocabulary, chat template,
// thread pool and a prefix cache, so that requests over the same sources
// (a follow-up question, the next field of a record) compute only what is
// new.
//
//   ChatModel model({.path = "SmolLM2-135M-Instruct.Q4_1.gguf"});
//   engine::GenerationOptions options{.max_tokens = 256, .sampler = {.temperature = 0}};
//   auto result = model.generate({{"system", "..."}, {"user", "..."}}, options);
//
// Thread rules: one thread at a time (generate() runs the engine on it).

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/compute_device.h"
#include "engine/chat_template.h"
#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/kv_cache.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

namespace folio::app {

// A model file that cannot serve as the chat model: missing, not a GGUF,
// an encoder, no tokenizer. what() is one line naming the file.
class ChatModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ChatModelOptions {
    std::string path;              // a GGUF file
    int context_tokens = 0;        // 0: the training context, at most 8192
    engine::KvType kv_type = engine::KvType::F16;
    // Memory for the KV caches kept between requests (PrefixCache); at least one is kept.
    std::size_t cache_budget_bytes = std::size_t{1} << 30;
    // The turn format; empty: the file's tokenizer.chat_template, and a
    // model without one (a base model) gets the messages as plain text.
    std::optional<engine::ChatFormat> format;
    int threads = 0;               // the engine's worker threads; 0: one per core
    // Where the model runs (compute_device.h). Adapters given later move it
    // to the CPU, which alone runs them.
    DeviceChoice device = DeviceChoice::Auto;
};

class ChatModel {
public:
    // Throws ChatModelError.
    explicit ChatModel(const ChatModelOptions& options);
    ~ChatModel();

    const std::string& path() const { return path_; }
    const engine::Vocab& vocab() const { return *vocab_; }
    engine::Model& model() { return *model_; }
    engine::ThreadPool& pool() { return pool_; }
    int context_tokens() const { return context_tokens_; }
    // Whether the file has a chat template (false: a base model continuing text).
    bool has_chat_template() const { return chat_template_.has_value(); }

    // Tokens of a piece of text inside a prompt (no BOS, special tokens as text).
    int count_tokens(std::string_view text) const;
    // The prompt's tokens: the messages in the model's turn format, the
    // assistant's turn opened, followed by `assistant_prefix` (text the
    // answer starts with, e.g. "{" for JSON).
    std::vector<std::int32_t> prompt_tokens(const std::vector<engine::ChatMessage>& messages,
                                            std::string_view assistant_prefix = {}) const;

    // Adapters every request runs with unless its options name others (a
    // domain pack's, load_pack_adapters).
    void set_default_adapters(engine::LoraSet adapters);
    // "cpu" or "cuda".
    const std::string& device() const { return device_; }
    const engine::LoraSet& default_adapters() const { return default_adapters_; }

    // Generates the assistant's reply to messages (prompt_tokens), reusing
    // the longest cached prefix. Throws engine::GenerationError (a prompt
    // longer than the context) and engine::ModelError.
    engine::GenerationResult generate(const std::vector<engine::ChatMessage>& messages,
                                      const engine::GenerationOptions& options,
                                      std::string_view assistant_prefix = {});
    engine::GenerationResult generate(std::span<const std::int32_t> prompt, const engine::GenerationOptions& options);

private:
    // The kept KV caches, made for where the model runs.
    void make_cache();

    std::string path_;
    std::optional<engine::GgufFile> file_;  // the mapping the weights point into
    std::unique_ptr<engine::Model> model_;
    std::unique_ptr<engine::Vocab> vocab_;
    std::optional<engine::ChatTemplate> chat_template_;
    int context_tokens_ = 0;
    engine::ThreadPool pool_;
    std::unique_ptr<engine::PrefixCache> cache_;
    std::string device_;  // "cpu" or "cuda"
    engine::KvType kv_type_ = engine::KvType::F16;
    std::size_t cache_budget_bytes_ = 0;
    engine::LoraSet default_adapters_;
};

}  // namespace folio::app
