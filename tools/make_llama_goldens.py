#!/usr/bin/env python3
"""Golden outputs for the engine's llama forward pass (tests/engine/tst_llama.cpp),
made with the reference implementation, Hugging Face transformers.

  tiny      A small random LlamaForCausalLM (fixed seed) written as a GGUF in
            llama.cpp's layout, and its logits for a 64-token prompt:
            tests/data/llama_tiny/{model.gguf,golden.json}
  smollm2   The installed SmolLM2-135M-Instruct Q4_1 GGUF, loaded by
            transformers (which dequantizes it to f32), and its logits for a
            fixed prompt: tests/data/llama_smollm2/golden.json

Each golden holds the prompt ids, for every prompt position the top-10 token
ids and logits and the logit range (max - min), and the greedy continuation.

Needs the packages tools/requirements.txt lists for it (all from PyPI).
Run from the repository root:  python3 tools/make_llama_goldens.py tiny smollm2
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
PROMPT_TOKENS = 64
TINY_ROPE_THETA = 10000.0
CONTINUATION_TOKENS = 32
TOP_K = 10


def permute_for_gguf(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute: within each head, rows (i, i + d/2)
    (Hugging Face's rotate_half pairs) become adjacent rows (2i, 2i + 1), the
    pairs llama.cpp's normal RoPE rotates."""
    rows = weights.shape[0]
    return (weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


@torch.no_grad()
def golden(model, prompt_ids):
    logits = model(torch.tensor([prompt_ids])).logits[0].float()  # (n_prompt, n_vocab)
    positions = []
    for row in logits:
        values, ids = torch.topk(row, TOP_K + 1)
        positions.append({
            "top_ids": ids[:TOP_K].tolist(),
            "top_logits": [float(v) for v in values[:TOP_K]],
            "next_logit": float(values[TOP_K]),  # the 11th: the margin below the top 10
            "range": float(row.max() - row.min()),
        })
    # Greedy continuation, recomputing the whole sequence each step (no cache).
    sequence = list(prompt_ids)
    continuation = []
    for _ in range(CONTINUATION_TOKENS):
        next_id = int(model(torch.tensor([sequence])).logits[0, -1].argmax())
        continuation.append(next_id)
        sequence.append(next_id)
    return {"prompt_ids": list(prompt_ids), "positions": positions, "greedy_continuation": continuation}


def write_json(path: Path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        json.dump(data, out, separators=(",", ":"))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def make_tiny():
    import gguf
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1234)
    config = LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=TINY_ROPE_THETA, tie_word_embeddings=False,
        # Wider than the default 0.02 so that the logits spread out and the
        # top 10 are not near-ties.
        initializer_range=0.15, attn_implementation="eager")
    model = LlamaForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.2 * torch.randn_like(param))
            else:
                # Matrices are stored as F16: round them here so that the
                # reference computes with exactly the weights the file holds.
                param.copy_(param.half().float())

    out_dir = ROOT / "tests/data/llama_tiny"
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out_dir / "model.gguf"), "llama")
    writer.add_name("folio tiny random llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(TINY_ROPE_THETA)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    hf_to_gguf = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    for i in range(config.num_hidden_layers):
        for hf, gg in per_layer.items():
            hf_to_gguf[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for name, param in model.state_dict().items():
        data = param.numpy()
        if ".q_proj." in name:
            data = permute_for_gguf(data, config.num_attention_heads)
        elif ".k_proj." in name:
            data = permute_for_gguf(data, config.num_key_value_heads)
        # Norms stay F32, as convert_hf_to_gguf keeps 1-D tensors.
        writer.add_tensor(hf_to_gguf[name], data.astype(np.float16 if data.ndim == 2 else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {out_dir / 'model.gguf'} ({(out_dir / 'model.gguf').stat().st_size} bytes)")

    prompt_ids = torch.randint(0, config.vocab_size, (PROMPT_TOKENS,), generator=torch.Generator().manual_seed(99))
    write_json(out_dir / "golden.json", golden(model, prompt_ids.tolist()))


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PROMPT = (
    "<|im_start|>user\nThe quarterly report shows revenue of 4.2 million dollars, up twelve percent from the "
    "previous year, while operating costs rose by only three percent. The board approved a dividend and a new "
    "research budget. Summarize the report in two sentences and say whether the company is doing well.<|im_end|>\n"
    "<|im_start|>assistant\n")


def make_smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models_dir = Path(os.environ.get("FOLIO_MODELS") or Path.home() / ".local/share/folio/models")
    tokenizer = AutoTokenizer.from_pretrained(models_dir, gguf_file=SMOLLM2_FILE)
    model = AutoModelForCausalLM.from_pretrained(models_dir, gguf_file=SMOLLM2_FILE, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    prompt_ids = tokenizer(SMOLLM2_PROMPT, add_special_tokens=False)["input_ids"]
    assert len(prompt_ids) >= PROMPT_TOKENS, len(prompt_ids)
    data = golden(model, prompt_ids)
    data["model_file"] = SMOLLM2_FILE
    data["prompt_text"] = SMOLLM2_PROMPT
    data["continuation_text"] = tokenizer.decode(data["greedy_continuation"])
    print("continuation:", repr(data["continuation_text"]))
    write_json(ROOT / "tests/data/llama_smollm2/golden.json", data)


if __name__ == "__main__":
    makers = {"tiny": make_tiny, "smollm2": make_smollm2}
    for which in sys.argv[1:] or makers:
        makers[which]()
