#!/usr/bin/env python3
"""Golden outputs for the engine's dense decoders (tests/engine/tst_decoders.cpp),
made with the reference implementation, Hugging Face transformers.

  llama, qwen2, qwen3, gemma3, qwen3moe, qwen2moe, olmoe, mixtral,
  deepseek2, deepseek3
            A small random model of that architecture (fixed seed) written as
            a GGUF in llama.cpp's tensor layout and metadata (as
            convert_hf_to_gguf.py writes it), and its logits for a 64-token
            prompt: tests/data/<arch>_tiny/{model.gguf,golden.json}.
            gemma3_tiny has a 16-token sliding window, which the prompt
            crosses, and both local and global layers. qwen3moe_tiny has 8
            experts per layer, 2 chosen per token. mixtral_tiny is GGUF
            architecture llama with experts, as llama.cpp writes Mixtral.
            deepseek2_tiny (DeepseekV2ForCausalLM, V2-Lite's block) and
            deepseek3_tiny (DeepseekV3ForCausalLM) are both GGUF architecture
            deepseek2: multi-head latent attention, a leading dense layer,
            shared experts. deepseek2_tiny has YaRN with DeepSeek's mscale
            over an original context of 32 positions, which the prompt
            passes, and the older attn_kv_b layout; deepseek3_tiny has a q
            LoRA, sigmoid routing with a selection bias over groups of
            experts, renormalized and scaled weights, and the split
            attn_k_b/attn_v_b layout.
  smollm2   The installed SmolLM2-135M-Instruct Q4_1 GGUF, loaded by
            transformers (which dequantizes it to f32), and its logits for a
            fixed prompt: tests/data/llama_smollm2/golden.json
  gemma3_270m
            The installed gemma-3-270m Q4_K_M GGUF, the same way:
            tests/data/gemma3_270m/golden.json

Each golden holds the prompt ids, for every prompt position the top-10 token
ids and logits and the logit range (max - min), and the greedy continuation.

Needs the packages tools/requirements.txt lists for it (all from PyPI).
Run from the repository root:  python3 tools/make_decoder_goldens.py [NAME...]
(no NAME: all of them).
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("FOLIO_MODELS") or Path.home() / ".local/share/folio/models")
PROMPT_TOKENS = 64
CONTINUATION_TOKENS = 32
TOP_K = 10


def permute_for_gguf(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute: within each head, rows (i, i + d/2)
    (Hugging Face's rotate_half pairs) become adjacent rows (2i, 2i + 1), the
    pairs llama.cpp's normal RoPE rotates. Only llama is converted this way;
    qwen2, qwen3 and gemma3 keep Hugging Face's order and take NeoX RoPE."""
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


# Hugging Face module names -> llama.cpp's (gguf-py's tensor_mapping.py), per layer.
LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "mlp.gate": "ffn_gate_inp",  # a mixture of experts' router
    "mlp.shared_expert.gate_proj": "ffn_gate_shexp", "mlp.shared_expert.up_proj": "ffn_up_shexp",
    "mlp.shared_expert.down_proj": "ffn_down_shexp",
    "mlp.shared_expert_gate": "ffn_gate_inp_shexp",  # (1, n_embd): llama.cpp keeps it as a vector
    # DeepSeek's latent attention and shared experts
    "self_attn.q_a_proj": "attn_q_a", "self_attn.q_a_layernorm": "attn_q_a_norm", "self_attn.q_b_proj": "attn_q_b",
    "self_attn.kv_a_proj_with_mqa": "attn_kv_a_mqa", "self_attn.kv_a_layernorm": "attn_kv_a_norm",
    "self_attn.kv_b_proj": "attn_kv_b",
    "mlp.shared_experts.gate_proj": "ffn_gate_shexp", "mlp.shared_experts.up_proj": "ffn_up_shexp",
    "mlp.shared_experts.down_proj": "ffn_down_shexp",
}
# Gemma 3 normalizes both before and after attention and the feed-forward;
# llama and Qwen's post_attention_layernorm is the feed-forward's pre-norm.
LAYER_NORMS = {
    "llama": {"post_attention_layernorm": "ffn_norm"},
    "qwen2": {"post_attention_layernorm": "ffn_norm"},
    "qwen3": {"post_attention_layernorm": "ffn_norm"},
    "qwen3moe": {"post_attention_layernorm": "ffn_norm"},
    "qwen2moe": {"post_attention_layernorm": "ffn_norm"},
    "olmoe": {"post_attention_layernorm": "ffn_norm"},
    "deepseek2": {"post_attention_layernorm": "ffn_norm"},
    "gemma3": {"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
               "post_feedforward_layernorm": "post_ffw_norm"},
}


def gguf_tensor_name(hf_name: str, arch: str) -> str:
    top_level = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                 "lm_head.weight": "output.weight"}
    if hf_name in top_level:
        return top_level[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)  # model.layers.<i>.<module>.<weight|bias>
    module, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{({**LAYER_TENSORS, **LAYER_NORMS[arch]})[module]}.{kind}"


def write_tiny_gguf(path: Path, arch: str, model, config, add_extra=None):
    """The model as convert_hf_to_gguf.py would write it at --outtype f16:
    matrices F16, norms and biases F32. add_extra(writer), when given, adds
    further keys and tensors (make_rope_goldens.py: RoPE scaling)."""
    import gguf

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    gguf_arch = {"mixtral": "llama", "deepseek3": "deepseek2"}.get(arch, arch)
    writer = gguf.GGUFWriter(str(path), gguf_arch)
    writer.add_name(f"folio tiny random {arch}")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    if arch != "deepseek3":  # which writes its latent cache as one kv head
        writer.add_head_count_kv(config.num_key_value_heads)
    if gguf_arch == "deepseek2":
        add_deepseek2_parameters(writer, arch, config)
    elif arch == "gemma3":
        # Gemma3Model.set_gguf_parameters: the global layers' base; the local
        # layers' 10000 and the every-6th-layer-global pattern are implied.
        writer.add_rope_freq_base(config.rope_parameters["full_attention"]["rope_theta"])
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
        writer.add_sliding_window(config.sliding_window)
    else:
        writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
        writer.add_rope_dimension_count(head_dim)
        if head_dim != config.hidden_size // config.num_attention_heads:
            writer.add_key_length(head_dim)
            writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    if arch in ("qwen3moe", "qwen2moe", "olmoe"):
        writer.add_expert_count(config.num_experts)
        writer.add_expert_used_count(config.num_experts_per_tok)
    if arch in ("qwen3moe", "qwen2moe"):
        writer.add_expert_feed_forward_length(config.moe_intermediate_size)
    if arch == "mixtral":  # Mixtral: experts as wide as feed_forward_length
        writer.add_expert_count(config.num_local_experts)
        writer.add_expert_used_count(config.num_experts_per_tok)
    if arch == "qwen2moe":
        writer.add_expert_shared_feed_forward_length(config.shared_expert_intermediate_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    for name, param in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        data = param.numpy()
        if name.endswith("mlp.experts.gate_up_proj"):
            # (n_expert, 2 n_ff, n_embd), gate rows first: llama.cpp keeps
            # gate and up as two stacked tensors, (n_embd, n_ff, n_expert) in ggml's order.
            block = name.split(".")[2]
            gate, up = np.split(data, 2, axis=1)
            writer.add_tensor(f"blk.{block}.ffn_gate_exps.weight", gate.astype(np.float16))
            writer.add_tensor(f"blk.{block}.ffn_up_exps.weight", up.astype(np.float16))
            continue
        if name.endswith("mlp.experts.down_proj"):
            writer.add_tensor(f"blk.{name.split('.')[2]}.ffn_down_exps.weight", data.astype(np.float16))
            continue
        if gguf_arch == "llama" and ".q_proj." in name:
            data = permute_for_gguf(data, config.num_attention_heads)
        elif gguf_arch == "llama" and ".k_proj." in name:
            data = permute_for_gguf(data, config.num_key_value_heads)
        if name.endswith("mlp.shared_expert_gate.weight"):
            data = data.reshape(-1)
        if arch == "gemma3" and name.endswith("norm.weight"):
            data = data + 1  # Gemma3Model.norm_shift: Gemma's RMS norm scales by (1 + weight)
        # 1-D tensors stay F32, as convert_hf_to_gguf keeps them.
        if name.endswith("e_score_correction_bias"):
            writer.add_tensor(f"blk.{name.split('.')[2]}.exp_probs_b.bias", data.astype(np.float32))
            continue
        if name.endswith("kv_b_proj.weight") and arch == "deepseek3":
            # The split layout (DeepseekV2Model.modify_tensors): per head K_b
            # transposed to (kv_lora_rank, nope) and V_b (v, kv_lora_rank).
            block = name.split(".")[2]
            kv_b = data.reshape(config.num_attention_heads, config.qk_nope_head_dim + config.v_head_dim, -1)
            k_b = kv_b[:, :config.qk_nope_head_dim].transpose(0, 2, 1)
            v_b = kv_b[:, config.qk_nope_head_dim:]
            writer.add_tensor(f"blk.{block}.attn_k_b.weight", np.ascontiguousarray(k_b).astype(np.float16))
            writer.add_tensor(f"blk.{block}.attn_v_b.weight", np.ascontiguousarray(v_b).astype(np.float16))
            continue
        writer.add_tensor(gguf_tensor_name(name, gguf_arch if arch in ("mixtral", "deepseek3") else arch), data.astype(np.float16 if data.ndim >= 2 else np.float32))
    if add_extra:
        add_extra(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def add_deepseek2_parameters(writer, arch, config):
    """DeepseekV2Model.set_gguf_parameters of convert_hf_to_gguf.py; deepseek3
    as the newer converter writes it, with the per-head sizes in *_mla and
    the latent cache as one kv head."""
    import gguf

    rope = config.rope_parameters
    writer.add_rope_freq_base(rope["rope_theta"])
    writer.add_rope_dimension_count(config.qk_rope_head_dim)
    if arch == "deepseek3":
        writer.add_head_count_kv(1)
        writer.add_key_length(config.kv_lora_rank + config.qk_rope_head_dim)
        writer.add_value_length(config.kv_lora_rank)
        writer.add_key_length_mla(config.qk_nope_head_dim + config.qk_rope_head_dim)
        writer.add_value_length_mla(config.v_head_dim)
    else:
        writer.add_key_length(config.qk_nope_head_dim + config.qk_rope_head_dim)
        writer.add_value_length(config.v_head_dim)
    writer.add_leading_dense_block_count(config.first_k_dense_replace)
    if config.q_lora_rank is not None:
        writer.add_q_lora_rank(config.q_lora_rank)
    writer.add_kv_lora_rank(config.kv_lora_rank)
    writer.add_expert_count(config.n_routed_experts)
    writer.add_expert_used_count(config.num_experts_per_tok)
    writer.add_expert_feed_forward_length(config.moe_intermediate_size)
    writer.add_expert_shared_count(config.n_shared_experts)
    writer.add_expert_weights_scale(config.routed_scaling_factor)
    writer.add_expert_weights_norm(bool(config.norm_topk_prob) and arch == "deepseek3")
    writer.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID if arch == "deepseek3"
                                  else gguf.ExpertGatingFuncType.SOFTMAX)
    if config.n_group and config.n_group > 1:
        writer.add_expert_group_count(config.n_group)
        writer.add_expert_group_used_count(config.topk_group)
    if rope.get("rope_type") == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(rope["factor"])
        writer.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        writer.add_rope_scaling_yarn_log_mul(0.1 * rope["mscale_all_dim"])


def tiny_model(arch: str):
    from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, MixtralConfig,
                              MixtralForCausalLM, OlmoeConfig, OlmoeForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                              Qwen2MoeConfig, Qwen2MoeForCausalLM, Qwen3Config, Qwen3ForCausalLM, Qwen3MoeConfig,
                              Qwen3MoeForCausalLM)

    # Shared by every tiny model. initializer_range is wider than the default
    # 0.02 so that the logits spread out and the top 10 are not near-ties.
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, max_position_embeddings=256,
                  initializer_range=0.15, attn_implementation="eager")
    if arch == "llama":
        return LlamaForCausalLM, LlamaConfig(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
            rope_theta=10000.0, tie_word_embeddings=False)
    if arch == "qwen2":  # QKV biases; a tied head, as Qwen2.5-0.5B has
        return Qwen2ForCausalLM, Qwen2Config(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
            rope_theta=1000000.0, tie_word_embeddings=True)
    if arch == "qwen3":  # q/k norms; heads wider than hidden_size / n_heads, as every Qwen3 has
        return Qwen3ForCausalLM, Qwen3Config(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False)
    if arch == "qwen3moe":  # Qwen3-30B-A3B's block: 8 experts of 32, 2 per token, weights renormalized
        return Qwen3MoeForCausalLM, Qwen3MoeConfig(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            moe_intermediate_size=32, num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
            decoder_sparse_step=1, mlp_only_layers=[], rms_norm_eps=1e-6, rope_theta=1000000.0,
            tie_word_embeddings=False)
    if arch == "qwen2moe":  # Qwen1.5-MoE-A2.7B's block: QKV biases, 8 experts (2 per token) beside a shared one
        return Qwen2MoeForCausalLM, Qwen2MoeConfig(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, moe_intermediate_size=32,
            shared_expert_intermediate_size=48, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False,
            decoder_sparse_step=1, mlp_only_layers=[], rms_norm_eps=1e-6, rope_theta=1000000.0,
            tie_word_embeddings=False)
    if arch == "olmoe":  # OLMoE-1B-7B's block: q/k norms over all heads, 8 experts (2 per token), weights as chosen
        return OlmoeForCausalLM, OlmoeConfig(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, num_experts=8,
            num_experts_per_tok=2, norm_topk_prob=False, rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    if arch == "mixtral":  # Mixtral-8x7B's block: 8 experts of the full feed-forward width, 2 per token, renormalized
        return MixtralForCausalLM, MixtralConfig(
            **common, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, num_local_experts=8,
            num_experts_per_tok=2, rms_norm_eps=1e-5, rope_theta=1000000.0, tie_word_embeddings=False)
    if arch in ("deepseek2", "deepseek3"):
        from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config, DeepseekV3ForCausalLM

        mla = dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=64,
                   qk_nope_head_dim=32, qk_rope_head_dim=32, v_head_dim=24, moe_intermediate_size=32,
                   n_shared_experts=2, num_experts_per_tok=2, first_k_dense_replace=1, rms_norm_eps=1e-6,
                   tie_word_embeddings=False)
        if arch == "deepseek2":  # V2-Lite: no q LoRA, softmax routing, YaRN past 32 original positions
            return DeepseekV2ForCausalLM, DeepseekV2Config(
                **common, **mla, q_lora_rank=None, n_routed_experts=8, topk_method="greedy", n_group=1, topk_group=1,
                routed_scaling_factor=1.0, norm_topk_prob=False,
                rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 8.0,
                                 "original_max_position_embeddings": 32, "beta_fast": 32.0, "beta_slow": 1.0,
                                 "mscale": 0.707, "mscale_all_dim": 0.707})
        # V3: a q LoRA, sigmoid scores with a selection bias, 2 of 4 groups of 2 experts
        return DeepseekV3ForCausalLM, DeepseekV3Config(
            **common, **mla, q_lora_rank=48, n_routed_experts=8, n_group=4, topk_group=2, routed_scaling_factor=2.5,
            norm_topk_prob=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    if arch == "gemma3":
        # Six layers: five local (16-token window, RoPE base 10000) and one
        # global (base 1e6), Gemma 3's pattern. query_pre_attn_scalar is
        # head_dim, as llama.cpp assumes for every Gemma 3 but the 27B.
        return Gemma3ForCausalLM, Gemma3TextConfig(
            **common, num_hidden_layers=6, num_attention_heads=4, num_key_value_heads=1, head_dim=32,
            query_pre_attn_scalar=32, sliding_window=16, rms_norm_eps=1e-6, tie_word_embeddings=True)
    raise KeyError(arch)


def random_tiny_model(arch: str, model_class, config):
    """The tiny model's weights: fixed seed, spread-out norms and biases,
    matrices rounded to F16."""
    torch.manual_seed(1234)
    model = model_class(config).float().eval()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):  # DeepSeek-V3's selection bias: starts at 0
                buffer.copy_(0.3 * torch.randn_like(buffer))
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                # Gemma's norms scale by (1 + weight) and start at 0; the
                # others scale by weight and start at 1.
                param.copy_((0.0 if arch == "gemma3" else 1.0) + 0.2 * torch.randn_like(param))
            elif name.endswith(".bias"):
                param.copy_(0.5 * torch.randn_like(param))  # Hugging Face starts them at 0
            else:
                # Matrices are stored as F16: round them here so that the
                # reference computes with exactly the weights the file holds.
                param.copy_(param.half().float())
    return model


def make_tiny(arch: str):
    model_class, config = tiny_model(arch)
    model = random_tiny_model(arch, model_class, config)
    if arch == "gemma3":
        assert "sliding_attention" in config.layer_types and "full_attention" in config.layer_types

    out_dir = ROOT / f"tests/data/{arch}_tiny"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tiny_gguf(out_dir / "model.gguf", arch, model, config)
    prompt_ids = torch.randint(0, config.vocab_size, (PROMPT_TOKENS,), generator=torch.Generator().manual_seed(99))
    write_json(out_dir / "golden.json", golden(model, prompt_ids.tolist()))


def make_installed(model_file: str, prompt: str, out: Path):
    """An installed GGUF as transformers loads it (dequantized to f32)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODELS_DIR, gguf_file=model_file)
    model = AutoModelForCausalLM.from_pretrained(MODELS_DIR, gguf_file=model_file, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert len(prompt_ids) >= PROMPT_TOKENS, len(prompt_ids)
    data = golden(model, prompt_ids)
    data["model_file"] = model_file
    data["prompt_text"] = prompt
    data["continuation_text"] = tokenizer.decode(data["greedy_continuation"])
    print("continuation:", repr(data["continuation_text"]))
    write_json(out, data)


REPORT_QUESTION = (
    "The quarterly report shows revenue of 4.2 million dollars, up twelve percent from the previous year, while "
    "operating costs rose by only three percent. The board approved a dividend and a new research budget. "
    "Summarize the report in two sentences and say whether the company is doing well.")


def make_smollm2():
    prompt = f"<|im_start|>user\n{REPORT_QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    make_installed("SmolLM2-135M-Instruct.Q4_1.gguf", prompt, ROOT / "tests/data/llama_smollm2/golden.json")


def make_gemma3_270m():
    # Gemma's chat format (engine/chat_template.cpp), BOS written as text.
    prompt = f"<bos><start_of_turn>user\n{REPORT_QUESTION}<end_of_turn>\n<start_of_turn>model\n"
    make_installed("gemma-3-270m-q4_k_m.gguf", prompt, ROOT / "tests/data/gemma3_270m/golden.json")


if __name__ == "__main__":
    makers = {arch: (lambda a=arch: make_tiny(a)) for arch in ("llama", "qwen2", "qwen3", "gemma3", "qwen3moe", "qwen2moe", "olmoe", "mixtral",
                                                            "deepseek2", "deepseek3")}
    makers.update({"smollm2": make_smollm2, "gemma3_270m": make_gemma3_270m})
    for which in sys.argv[1:] or makers:
        makers[which]()
