#!/usr/bin/env python3
"""Golden outputs for the engine's RoPE scaling (tests/engine/tst_rope.cpp),
made with the reference implementation, Hugging Face transformers.

Each is make_decoder_goldens.py's tiny random llama (same seed and weights)
with rope_parameters of one scaling type and an original context of 32
positions, written as a GGUF the way llama.cpp's convert_hf_to_gguf.py writes
the scaling (TextModel.set_gguf_parameters: rope.scaling.*; for llama3,
LlamaModel.generate_extra_tensors: rope_freqs.weight), and its logits for a
96-token prompt, 64 of whose positions lie beyond the original context:

  linear        factor 4
  yarn          factor 4, transformers' defaults (beta_fast 32, beta_slow 1,
                attention factor 1 + 0.1 ln 4)
  yarn_params   factor 8, beta_fast 16, beta_slow 2, attention_factor 1.3
  llama3        factor 8, low_freq_factor 1, high_freq_factor 4

into tests/data/rope_<name>/{model.gguf,golden.json}.

Needs the packages tools/requirements.txt lists for make_decoder_goldens.py.
Run from the repository root:  python3 tools/make_rope_goldens.py [NAME...]
(no NAME: all of them).
"""
import math
import sys

import numpy as np
import torch

from make_decoder_goldens import ROOT, golden, random_tiny_model, tiny_model, write_json, write_tiny_gguf

PROMPT_TOKENS = 96
ORIGINAL_CONTEXT = 32

SCALINGS = {
    "linear": {"rope_type": "linear", "factor": 4.0},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIGINAL_CONTEXT},
    "yarn_params": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": ORIGINAL_CONTEXT,
                    "beta_fast": 16.0, "beta_slow": 2.0, "attention_factor": 1.3},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": ORIGINAL_CONTEXT},
}


def llama3_rope_freqs(rope: dict, head_dim: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.generate_extra_tensors: the factor each
    pair's angle is divided by (1 short wavelengths, factor long ones)."""
    freqs = 1.0 / (rope["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_context_len = rope["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context_len / low, old_context_len / high
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def add_rope_scaling(writer, rope: dict, head_dim: int):
    """TextModel.set_gguf_parameters' rope.scaling.* keys (and llama3's tensor)."""
    import gguf

    if rope["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rope["factor"])
    elif rope["rope_type"] == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(rope["factor"])
        writer.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        if "attention_factor" in rope:
            writer.add_rope_scaling_yarn_attn_factor(rope["attention_factor"])
        if "beta_fast" in rope:
            writer.add_rope_scaling_yarn_beta_fast(rope["beta_fast"])
        if "beta_slow" in rope:
            writer.add_rope_scaling_yarn_beta_slow(rope["beta_slow"])
    elif rope["rope_type"] == "llama3":
        writer.add_tensor("rope_freqs.weight", llama3_rope_freqs(rope, head_dim))


def make(name: str):
    model_class, config = tiny_model("llama")
    config.rope_parameters = {"rope_theta": config.rope_parameters["rope_theta"], **SCALINGS[name]}
    model = random_tiny_model("llama", model_class, config)
    head_dim = config.hidden_size // config.num_attention_heads
    out_dir = ROOT / f"tests/data/rope_{name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tiny_gguf(out_dir / "model.gguf", "llama", model, config,
                    add_extra=lambda writer: add_rope_scaling(writer, config.rope_parameters, head_dim))
    prompt_ids = torch.randint(0, config.vocab_size, (PROMPT_TOKENS,), generator=torch.Generator().manual_seed(99))
    data = golden(model, prompt_ids.tolist())
    data["rope_parameters"] = config.rope_parameters
    write_json(out_dir / "golden.json", data)


if __name__ == "__main__":
    for which in sys.argv[1:] or SCALINGS:
        make(which)
