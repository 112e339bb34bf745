#!/usr/bin/env python3
"""Golden outputs for LoRA adapters in the engine (tests/engine/tst_lora.cpp,
tests/app/tst_convert_hf.cpp), made with the reference implementation,
Hugging Face PEFT over transformers.

  tiny      Two random PEFT LoRA adapters (fixed seed, B not zero) on all seven
            projections (q, k, v, o, gate, up, down) of the tiny llama of
            tools/make_decoder_goldens.py, loaded from tests/data/llama_tiny_hf:
              plain   r 8, alpha 16 (scale alpha / r), saved as F32
              rslora  r 4, alpha 8, use_rslora (scale alpha / sqrt(r)), saved as F16
            Into tests/data/lora_tiny/<name>/:
              adapter_config.json, adapter_model.safetensors   the PEFT folder
              adapter.gguf   the adapter as llama.cpp's convert_lora_to_gguf.py
                             writes it at --outtype f16: lora_b of attn_q and
                             attn_k permuted like the base weights, and for
                             rslora an alpha of alpha * sqrt(r), so that
                             alpha / r is PEFT's scale
            and the logits for the llama_tiny golden's prompt, in
            tools/make_decoder_goldens.py's format, under
              golden_plain.json    plain at scale 1
              golden_rslora.json   rslora at scale 1
              golden_mixed.json    both at once, plain at 0.5, rslora at -0.75
            Each golden names its adapters and scales ("adapters").
  moe       A random PEFT adapter on the tiny qwen3moe, its experts
            included (make_moe); tests/data/lora_moe_tiny/
  moe_shared
            The same on the tiny qwen2moe, whose shared expert's gate, up
            and down projections are adapted too; tests/data/lora_moe_shared_tiny/
  smollm2_bench OUT_DIR
            A random rank-8 PEFT adapter on q_proj and v_proj of
            SmolLM2-135M's shapes, for measuring the adapters' cost (convert
            it with folio convert hf OUT_DIR --base the installed GGUF).

Needs the packages tools/requirements.txt lists for it (all from PyPI).
Run from the repository root:  python3 tools/make_lora_goldens.py [NAME...]
(no NAME: tiny).
"""
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_decoder_goldens as decoders  # noqa: E402

ROOT = decoders.ROOT
BASE_DIR = ROOT / "tests/data/llama_tiny_hf"
OUT_DIR = ROOT / "tests/data/lora_tiny"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# name: (r, lora_alpha, use_rslora, saved dtype)
ADAPTERS = {
    "plain": (8, 16, False, torch.float32),
    "rslora": (4, 8, True, torch.float16),
}
MIXED_SCALES = {"plain": 0.5, "rslora": -0.75}


def randomize_lora(model, seed: int):
    """Random A and B (PEFT starts B at zero, which would change nothing),
    rounded to F16 so that the converted adapter holds exactly these values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_((0.1 * torch.randn(param.shape, generator=generator)).half().float())


def save_peft_folder(model, adapter_name: str, folder: Path, dtype, base: str = "tests/data/llama_tiny_hf"):
    """The PEFT folder as save_pretrained writes it, with the weights in
    `dtype` and without the model card; the base is named relative to the
    repository, not by this machine's path."""
    from safetensors.torch import load_file, save_file

    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(str(folder), selected_adapters=[adapter_name])
    saved = folder if (folder / "adapter_config.json").exists() else folder / adapter_name
    if saved != folder:  # PEFT puts a non-default adapter in a subfolder
        for item in saved.iterdir():
            shutil.move(str(item), folder / item.name)
        saved.rmdir()
    (folder / "README.md").unlink(missing_ok=True)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base
    # PEFT saves target_modules as a set, in no fixed order; target_parameters
    # is a list whose order is how PEFT nests the wrappers of one module
    # (base_layer), so it stays.
    config["target_modules"] = sorted(config["target_modules"])
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    weights = folder / "adapter_model.safetensors"
    tensors = {name: tensor.to(dtype).contiguous() for name, tensor in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)


def write_adapter_gguf(path: Path, folder: Path, config):
    """convert_lora_to_gguf.py's output: adapter metadata, A and B as F16
    under the base tensor's GGUF name, B of q and k permuted by rows as
    LlamaModel.modify_tensors permutes the base weights."""
    import gguf
    from safetensors.numpy import load_file

    peft_config = json.loads((folder / "adapter_config.json").read_text())
    alpha = float(peft_config["lora_alpha"])
    if peft_config.get("use_rslora"):
        alpha *= math.sqrt(peft_config["r"])
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name, data in sorted(load_file(str(folder / "adapter_model.safetensors")).items()):
        # base_model.model.model.layers.<i>.<module>.lora_<A|B>.weight
        module, kind = name.removeprefix("base_model.model.").rsplit(".", 2)[0], name.rsplit(".", 2)[1]
        gguf_name = decoders.gguf_tensor_name(module + ".weight", "llama") + "." + kind.lower()
        data = data.astype(np.float32)
        if kind == "lora_B" and ".q_proj" in module:
            data = decoders.permute_for_gguf(data, config.num_attention_heads)
        elif kind == "lora_B" and ".k_proj" in module:
            data = decoders.permute_for_gguf(data, config.num_key_value_heads)
        writer.add_tensor(gguf_name, data.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def make_tiny():
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.tuners.lora import LoraLayer
    from transformers import LlamaForCausalLM

    def base_model():
        return LlamaForCausalLM.from_pretrained(str(BASE_DIR), dtype=torch.float32,
                                                attn_implementation="eager").eval()

    prompt_ids = decoders_prompt()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for seed, (name, (rank, alpha, rslora, dtype)) in enumerate(ADAPTERS.items(), start=11):
        config = LoraConfig(r=rank, lora_alpha=alpha, use_rslora=rslora, target_modules=TARGETS, lora_dropout=0.0,
                            bias="none")
        model = get_peft_model(base_model(), config, adapter_name=name)
        randomize_lora(model, seed)
        save_peft_folder(model, name, OUT_DIR / name, dtype)
        write_adapter_gguf(OUT_DIR / name / "adapter.gguf", OUT_DIR / name, model.config)

    # Every golden from adapters read back from their folders, as a user loads them.
    base = base_model()
    model = PeftModel.from_pretrained(base, str(OUT_DIR / "plain"), adapter_name="plain").eval()
    model.load_adapter(str(OUT_DIR / "rslora"), adapter_name="rslora")
    model.eval()

    def run(scales: dict, out_name: str):
        model.base_model.set_adapter(list(scales))
        for module in model.modules():
            if isinstance(module, LoraLayer):
                for adapter, scale in scales.items():
                    module.set_scale(adapter, scale)
        data = decoders.golden(model, prompt_ids)
        data["adapters"] = [{"folder": adapter, "scale": scale} for adapter, scale in scales.items()]
        decoders.write_json(OUT_DIR / out_name, data)

    run({"plain": 1.0}, "golden_plain.json")
    run({"rslora": 1.0}, "golden_rslora.json")
    run(MIXED_SCALES, "golden_mixed.json")
    size = sum(f.stat().st_size for f in OUT_DIR.rglob("*") if f.is_file())
    print(f"tests/data/lora_tiny: {size} bytes")


# name: (base architecture, folder, PEFT target_modules)
MOE_ADAPTERS = {
    "moe": ("qwen3moe", ROOT / "tests/data/lora_moe_tiny", ["q_proj", "v_proj"]),
    # gate_proj, up_proj and down_proj name the shared expert's projections
    # (transformers keeps the routed experts as stacked parameters).
    "moe_shared": ("qwen2moe", ROOT / "tests/data/lora_moe_shared_tiny",
                   ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]),
}


def expert_pairs(wrapper, adapter: str):
    """A PEFT ParamWrapper's pairs per expert, as A (E, r, in) and B (E,
    out, r): its lora_A (E·r, in) holds expert e's rows from e·r, its
    lora_B (out, r·E) expert e's columns r·E + e (get_delta_weight's
    reshapes), checked against get_delta_weight itself."""
    n_expert = wrapper.num_experts
    a = wrapper.lora_A[adapter].weight.detach()
    b = wrapper.lora_B[adapter].weight.detach()
    a = a.reshape(n_expert, -1, a.shape[-1])
    b = b.reshape(b.shape[0], -1, n_expert).permute(2, 0, 1)
    delta = torch.einsum("eor,eri->eoi", b, a) * wrapper.scaling[adapter]
    assert wrapper._did_swap_in_out_features  # transformers' experts are (E, out, in)
    assert torch.allclose(delta, wrapper.get_delta_weight(adapter), atol=1e-6)
    return a.numpy(), b.numpy()


def make_moe(which: str):
    """A PEFT adapter on a tiny MoE of make_decoder_goldens.py (the weights
    of tests/data/<arch>_tiny): r 4, alpha 8, on MOE_ADAPTERS' modules and
    on every expert's gate, up and down (target_parameters, the stacked
    expert tensors). Written as llama.cpp's convert_lora_to_gguf.py writes
    an expert adapter: ffn_{gate,up,down}_exps.weight.lora_a of ne {n_in,
    r, n_expert} and .lora_b of ne {r, n_out, n_expert} (gate and up share
    the fused tensor's A). Into the adapter's folder: adapter.gguf,
    golden.json (the base golden's prompt) and the PEFT folder peft/ (F16),
    which folio convert hf turns into adapter.gguf."""
    import gguf
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora.layer import ParamWrapper

    arch, out_dir, target_modules = MOE_ADAPTERS[which]
    model_class, config = decoders.tiny_model(arch)
    base = decoders.random_tiny_model(arch, model_class, config)
    base_golden = json.loads((ROOT / f"tests/data/{arch}_tiny/golden.json").read_text())
    prompt_ids = base_golden["prompt_ids"]
    # The same weights as the GGUF the engine reads: the base golden again.
    again = decoders.golden(base, prompt_ids)
    assert again["positions"][0]["top_ids"] == base_golden["positions"][0]["top_ids"]

    rank, alpha = 4, 8
    lora = LoraConfig(r=rank, lora_alpha=alpha, target_modules=target_modules,
                      target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], lora_dropout=0.0,
                      bias="none")
    model = get_peft_model(base, lora).eval()
    randomize_lora(model, 31)

    out_dir.mkdir(parents=True, exist_ok=True)
    save_peft_folder(model, "default", out_dir / "peft", torch.float16, base=f"tests/data/{arch}_tiny")
    path = out_dir / "adapter.gguf"
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, ParamWrapper):
            block = name.split(".layers.")[1].split(".")[0]
            a, b = expert_pairs(module, "default")
            if module.parameter_name == "gate_up_proj":
                n_ff = b.shape[1] // 2
                tensors[f"blk.{block}.ffn_gate_exps.weight"] = (a, b[:, :n_ff])
                tensors[f"blk.{block}.ffn_up_exps.weight"] = (a, b[:, n_ff:])
            else:
                tensors[f"blk.{block}.ffn_down_exps.weight"] = (a, b)
        elif name.endswith(tuple(target_modules)) and hasattr(module, "lora_A"):
            base_name = decoders.gguf_tensor_name(name.removeprefix("base_model.model.") + ".weight", arch)
            tensors[base_name] = (module.lora_A["default"].weight.detach().numpy(),
                                  module.lora_B["default"].weight.detach().numpy())
    for base_name, (a, b) in sorted(tensors.items()):
        writer.add_tensor(base_name + ".lora_a", np.ascontiguousarray(a).astype(np.float16))
        writer.add_tensor(base_name + ".lora_b", np.ascontiguousarray(b).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(tensors)} adapted tensors)")

    data = decoders.golden(model, prompt_ids)
    data["adapters"] = [{"file": "adapter.gguf", "scale": 1.0}]
    decoders.write_json(out_dir / "golden.json", data)


def decoders_prompt():
    """The llama_tiny golden's prompt, so that the adapters' logits can be
    read beside the base model's."""
    return json.loads((ROOT / "tests/data/llama_tiny/golden.json").read_text())["prompt_ids"]


def make_smollm2_bench(out: str):
    """PEFT's layout for SmolLM2-135M (30 layers, width 576, 3 kv heads of
    64): rank 8 on q_proj and v_proj, random A and B."""
    from safetensors.torch import save_file

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(5)
    n_embd, kv_width, rank = 576, 192, 8
    tensors = {}
    for layer in range(30):
        for module, n_out in (("q_proj", n_embd), ("v_proj", kv_width)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = 0.02 * torch.randn(rank, n_embd, generator=generator)
            tensors[f"{prefix}.lora_B.weight"] = 0.02 * torch.randn(n_out, rank, generator=generator)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    (folder / "adapter_model.safetensors").chmod(0o644)
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
              "bias": "none", "use_rslora": False, "use_dora": False, "fan_in_fan_out": False,
              "modules_to_save": None, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {folder}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    args = sys.argv[1:] or ["tiny"]
    if args[0] == "smollm2_bench":
        make_smollm2_bench(args[1])
    else:
        for which in args:
            if which in MOE_ADAPTERS:
                make_moe(which)
            else:
                {"tiny": make_tiny}[which]()
