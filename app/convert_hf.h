#pragma once
// `folio convert hf`: a Hugging Face model folder (config.json,
// *.safetensors, the tokenizer files, sentence-transformers' modules and
// sentence_bert_config.json) to one GGUF file, written as llama.cpp's convert_hf_to_gguf.py writes it: the
// same metadata keys, tensor names and tensor types, so that llama.cpp and
// Folio read the result alike.
//
// Architectures: BERT (BertModel, BertForMaskedLM: sentence embedding
// encoders such as all-MiniLM-L6-v2, WordPiece tokenizer) and the llama
// family (LlamaForCausalLM with q/k rows permuted for llama.cpp's RoPE,
// Qwen2ForCausalLM, Qwen3ForCausalLM; byte-level BPE tokenizer with merges,
// its pre-tokenizer named from tokenizer.json's split rule, chat template).
// Another architecture, or RoPE scaling, is refused by name.
//
// A PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors)
// becomes a GGUF LoRA adapter as llama.cpp's convert_lora_to_gguf.py writes
// it (engine/lora.h), checked against its base model's GGUF: the seven
// projections' A and B under the base weights' names, llama's B of q and k
// permuted as its base weights are, rsLoRA's alpha / sqrt(r) kept as an
// alpha of alpha * sqrt(r). What a GGUF LoRA cannot hold (DoRA,
// modules_to_save, biases, Conv1D weights, per-module alphas, other
// targets) is refused by name.

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace folio::app {

// A folder that cannot be converted: a missing or malformed file, an
// architecture Folio does not convert, a tensor whose shape disagrees with
// config.json. what() is one line naming the file.
class ConvertError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The float type of the converted weight matrices. As llama.cpp does, 1-D
// tensors (norms, biases) and the position and token-type tables stay f32.
enum class ConvertedType { F32, F16 };

struct ConvertHfRequest {
    std::filesystem::path model_dir;
    std::filesystem::path out;
    ConvertedType type = ConvertedType::F16;
    // A PEFT adapter's base model (GGUF): its architecture is the adapter's,
    // and its weights' shapes are what the adapter must fit. Only for adapters.
    std::filesystem::path base;
};

struct ConvertHfResult {
    std::string hf_architecture;  // config.json's, e.g. "BertModel"; "PEFT LoRA" for an adapter
    std::string architecture;     // general.architecture written, e.g. "bert"
    int n_tensors = 0;
    std::uint64_t file_bytes = 0;
};

// Writes request.out through a temporary file beside it, renamed over it
// only once complete, so an existing file is either replaced whole or left
// as it was. Throws ConvertError, or std::system_error when a file cannot
// be read or written.
ConvertHfResult convert_hf(const ConvertHfRequest& request);

}  // namespace folio::app
