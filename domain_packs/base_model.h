#pragma once
// Which base model a GGUF file is, in the terms a pack manifest names
// compatible models by (pack_manifest.h BaseModel):
//   architecture      general.architecture
//   tokenizer_sha256  SHA-256 of every tokenizer.ggml.* metadata entry, by
//                     key in byte order: key, value type and value (see
//                     base_model.cpp). Re-quantizing a model keeps it, so a
//                     prompt or adapter made for one quantization fits them all.
//   weights_sha256    SHA-256 of the file's tensor data section: these exact weights.

#include <filesystem>

#include "domain_packs/pack_manifest.h"

namespace folio::packs {

// Throws PackError (field "base model") when the file is not a readable GGUF.
BaseModel identify_base_model(const std::filesystem::path& gguf_file, bool with_weights);

// True when `model` is one the manifest entry `wanted` allows: the same
// architecture and tokenizer, and the same weights when `wanted` pins them
// (then `model` must carry its weights hash).
bool base_model_fits(const BaseModel& wanted, const BaseModel& model);

}  // namespace folio::packs
