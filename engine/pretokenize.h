#pragma once
#include <string_view>
#include <vector>

// Pre-tokenizers of byte-level BPE vocabularies: they split text into pieces
// that BPE then encodes one by one, so that no token crosses a piece
// boundary. Each is a hand-written scanner for the split regex of the
// Hugging Face tokenizer it reproduces (tokenizer.ggml.pre names it in a GGUF
// file); the regexes are quoted in pretokenize.cpp. A chain of splits (the
// DeepSeek tokenizers) runs each split on every piece the one before made. \s is Unicode White_Space
// and \p{L}, \p{N} are general categories (engine/unicode_data.h), as in the
// Oniguruma engine Hugging Face tokenizers runs.

namespace folio::engine {

enum class PreTokenizer {
    Gpt2,    // "gpt2", "gpt-2" or "olmo" (OLMo, OLMoE): the GPT-2 regex
    SmolLM,  // "smollm": every digit alone, then the GPT-2 regex
    Llama3,  // "llama-bpe": Llama 3, numbers in groups of up to three digits
    Qwen2,   // "qwen2": the Llama 3 regex with every digit alone
    DeepSeekLlm,  // "deepseek-llm": DeepSeek LLM, V2, V2-Lite, V2.5: a chain of five splits, digits alone
    DeepSeekV3,   // "deepseek-v3": DeepSeek-V3, R1: numbers by three, CJK and kana runs, then a Llama-3-like regex
};

// The pre-tokenizer a tokenizer.ggml.pre value names; throws
// std::invalid_argument for a name Folio does not implement.
PreTokenizer pre_tokenizer_from_name(std::string_view name);

// Appends text's pieces to `pieces`, in order; together they are all of
// text. Bytes that are not valid UTF-8 count as punctuation, one byte each.
void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace folio::engine
