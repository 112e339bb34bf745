#!/usr/bin/env python3
"""Golden sentence embeddings for the engine's bert encoder and Embedder
(tests/engine/tst_embedder.cpp) and for `folio convert hf`
(tests/app/tst_convert_hf.cpp), made with the reference implementation,
sentence-transformers over Hugging Face transformers.

  tiny     A small random BERT (fixed seed) as a sentence-transformers folder,
           tests/data/bert_tiny_hf/ (config, safetensors with F32, F16 and
           BF16 tensors, WordPiece vocabulary, [CLS] pooling + Normalize), the
           same model as a GGUF written the way llama.cpp's
           convert_hf_to_gguf.py writes BERT (gguf-py's SpecialVocab and
           tensor map), tests/data/bert_tiny/model.gguf, and its embeddings
           of TEXTS: tests/data/bert_tiny/golden.json
  decoders The tiny random llama, qwen2 and qwen3 of make_decoder_goldens.py
           (same seed, so the same weights as tests/data/<arch>_tiny/model.gguf)
           as Hugging Face folders, tests/data/<arch>_tiny_hf/: config,
           safetensors (matrices F16, vectors F32, as that GGUF stores them)
           and a byte-level BPE tokenizer.json of the 256 bytes with the
           model's pre-tokenizer, for `folio convert hf`'s llama family.
  minilm   The installed all-MiniLM-L6-v2 folder (installer/models.tsv; mean
           pooling + Normalize) and its embeddings of TEXTS:
           tests/data/minilm/golden.json
  cross    A small random cross-encoder (BertForSequenceClassification, one
           label; the tiny BERT's shape and vocabulary),
           tests/data/bert_cross_tiny_hf/, the same as a GGUF the way
           llama.cpp writes a reranker (pooling rank, pooler and classifier
           as cls and cls.output), tests/data/bert_cross_tiny/model.gguf,
           and its scores of PAIRS (ids, token types, logit), the way
           sentence-transformers' CrossEncoder reads a pair:
           tests/data/bert_cross_tiny/golden.json
  msmarco  The installed ms-marco-MiniLM-L-12-v2 cross-encoder (its int8
           ONNX dequantized by installer/onnx_bert_to_hf.py) and its scores
           of PAIRS: tests/data/ms_marco/golden.json

The references cut texts where sentence-transformers does by default, at
sentence_bert_config.json's max_seq_length (all-MiniLM-L6-v2: 256 tokens of
its 512 positions), as Folio does from the folio.embedding.max_tokens key
that `folio convert hf` writes from that file. Each golden holds, per text,
the token ids and the embedding; LONG_TEXT is past either length.

Needs the packages tools/requirements.txt lists for it (all from PyPI).
Run from the repository root:  python3 tools/make_embedding_goldens.py tiny decoders minilm cross msmarco
"""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("FOLIO_MODELS") or
              Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "folio/models")
MINILM = MODELS / "all-MiniLM-L6-v2-hf"

LONG_TEXT = " ".join(
    f"Section {i}: revenue rose {i * 3 % 17}% while operating costs fell, and the board approved "
    f"a dividend of ${i}.{i % 10}0 per share." for i in range(1, 40))

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What was the company's net income in fiscal year 2023?",
    "Net income increased 12% year over year to $4.2 billion.",
    "Revenue | 2023 | 2022\nProduct sales | 1,234.5 | 1,101.2\nServices | 456.7 | 398.0",
    "Total assets\t$ 88,412\tTotal liabilities\t$ 51,090",
    "EBITDA margin (non-GAAP) was 23.4%, up 150 bps.",
    "Pt c/o SOB and CP x2 days. Hx of HTN, DM2, CHF; BP 150/95, HR 110, SpO2 91% on RA.",
    "Rx: metoprolol 25 mg PO BID; furosemide 40 mg IV q12h prn.",
    "Patient denies fever, chills, N/V/D. No known drug allergies (NKDA).",
    "Diagnosis: acute myocardial infarction (STEMI), status post PCI with DES to LAD.",
    "营业收入同比增长百分之十二。",
    "患者主诉胸痛三天，伴有呼吸困难。",
    "Apple 苹果公司 reported record 季度 revenue.",
    "Great results this quarter 🚀📈 — congrats team! 🎉",
    "Café résumé naïve façade Ångström",
    "Привет, как дела?",
    "こんにちは世界",
    "ÀÉÎÕÜ àéîõü ß ﬁ",
    "",
    "   ",
    "a",
    "[CLS] already framed [SEP] text",
    "unaffordable hyperinflationary counterproductiveness",
    "https://example.com/reports/2023/q4?id=123&lang=en",
    "user@example.com called +1 (555) 010-9999 on 2024-01-15",
    "Item 7. Management's Discussion and Analysis of Financial Condition and Results of Operations",
    "THE ANNUAL REPORT IS WRITTEN IN CAPITAL LETTERS",
    "tabs\tand\nnewlines\r\nmixed   spaces",
    "1234567890 3.14159 -42 1e-5 50%",
    LONG_TEXT,
]

# Query and passage pairs for the cross-encoders: matching and unrelated
# ones, and long texts cut longest first.
PAIRS = [
    (TEXTS[1], TEXTS[2]),
    (TEXTS[1], TEXTS[6]),
    (TEXTS[1], TEXTS[3]),
    ("What were Apple's total net sales in fiscal 2021?",
     "Total net sales | 365,817 | 274,515 | 260,174\nCost of sales | 212,981 | 169,559 | 161,782"),
    ("What were Apple's total net sales in fiscal 2021?",
     "The Company's fiscal year is the 52- or 53-week period that ends on the last Saturday of September."),
    ("What medication was the patient given for blood pressure?", TEXTS[7]),
    ("What medication was the patient given for blood pressure?", TEXTS[8]),
    ("chest pain", TEXTS[6]),
    ("dividend per share", LONG_TEXT),
    (LONG_TEXT, LONG_TEXT[::-1]),
    ("营业收入", TEXTS[10]),
]

TINY_DIR = ROOT / "tests/data/bert_tiny_hf"
TINY_GGUF_DIR = ROOT / "tests/data/bert_tiny"
TINY_VOCAB_SIZE = 2100  # [PAD], [unused]s, the special tokens, characters and the commonest words of BERT's vocabulary
TINY_POSITIONS = 64     # so that the long text is truncated
TINY_SEED = 1234


def write_golden(path: Path, model, name: str, max_seq_length: int):
    model.max_seq_length = max_seq_length
    features = model.tokenize(TEXTS)
    embeddings = model.encode(TEXTS, convert_to_numpy=True, batch_size=8)
    texts = []
    for i, text in enumerate(TEXTS):
        ids = [int(t) for t, m in zip(features["input_ids"][i], features["attention_mask"][i]) if m]
        untruncated = model.tokenizer(text)["input_ids"]
        texts.append({
            "text": text,
            "ids": ids,
            "truncated": len(untruncated) > len(ids),
            "embedding": [round(float(v), 7) for v in embeddings[i]],
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": name, "dimension": int(embeddings.shape[1]),
                                "max_tokens": max_seq_length, "texts": texts}, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)}: {len(texts)} texts, dimension {embeddings.shape[1]}")


def randomize(model):
    """Weights large enough that attention is far from uniform and every bias
    and LayerNorm parameter matters (the default init, std 0.02, is nearly
    the identity)."""
    generator = torch.Generator().manual_seed(TINY_SEED)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "LayerNorm.weight" in name:
                parameter.copy_(1 + 0.2 * noise)
            elif name.endswith(".bias"):
                parameter.copy_(0.1 * noise)
            else:
                parameter.copy_(0.25 * noise)


def write_classic_modules(folder: Path, dimension: int):
    """modules.json and 1_Pooling/config.json as sentence-transformers 2.x
    wrote them, the form models on the Hub (all-MiniLM-L6-v2 included) and
    llama.cpp's converter know; sentence-transformers 6 still reads it."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    pooling = {"word_embedding_dimension": dimension, "pooling_mode_cls_token": True,
               "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    (folder / "1_Pooling/config.json").write_text(json.dumps(pooling, indent=2) + "\n")
    shutil.rmtree(folder / "2_Normalize", ignore_errors=True)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": TINY_POSITIONS,
                                                                   "do_lower_case": False}, indent=2) + "\n")


def store_mixed_precision(folder: Path):
    """Rewrites model.safetensors with the word embeddings in F16 and layer 1
    in BF16 (the rest F32), so the converter reads all three types."""
    from safetensors.torch import load_file, save_file
    tensors = load_file(folder / "model.safetensors")
    for name in list(tensors):
        if name.endswith("word_embeddings.weight"):
            tensors[name] = tensors[name].to(torch.float16)
        elif ".layer.1." in name:
            tensors[name] = tensors[name].to(torch.bfloat16)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


def write_llama_cpp_gguf(folder: Path, out: Path):
    """The GGUF llama.cpp's convert_hf_to_gguf.py (BertModel, --outtype f16)
    writes for the folder: its metadata keys, phantom-space tokens, special
    tokens by gguf-py's SpecialVocab and tensor names by gguf-py's map."""
    import gguf
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    config = json.loads((folder / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    writer = gguf.GGUFWriter(out, "bert")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_causal_attention(False)
    classifier = config.get("architectures") == ["BertForSequenceClassification"]
    if classifier:
        writer.add_pooling_type(gguf.PoolingType.RANK)
    else:
        modules = json.loads((folder / "modules.json").read_text())
        pooling_path = next(m["path"] for m in modules if m["type"] == "sentence_transformers.models.Pooling")
        pooling = json.loads((folder / pooling_path / "config.json").read_text())
        writer.add_pooling_type(gguf.PoolingType.MEAN if pooling["pooling_mode_mean_tokens"]
                                else gguf.PoolingType.CLS)

    # get_vocab_base: ids in order; added tokens that are special are CONTROL.
    vocab = tokenizer.get_vocab()
    reverse = {i: t for t, i in vocab.items()}
    added = tokenizer.get_added_vocab()
    tokens, types = [], []
    for i in range(config["vocab_size"]):
        token = reverse[i]
        tokens.append(token)
        types.append(gguf.TokenType.CONTROL if token in added else gguf.TokenType.NORMAL)
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    phantom = [t if (t.startswith("[") and t.endswith("]")) else t[2:] if t.startswith("##") else "\u2581" + t
               for t in tokens]
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("bert-bge")
    writer.add_token_list(phantom)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, n_vocab=len(tokens)).add_to_gguf(writer)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
    # llama.cpp's rerankers: the pooler as cls (tanh after it), the classifier as cls.output.
    head = {"bert.pooler.dense.weight": "cls.weight", "bert.pooler.dense.bias": "cls.bias",
            "classifier.weight": "cls.output.weight", "classifier.bias": "cls.output.bias"}
    for name, tensor in load_file(folder / "model.safetensors").items():
        if classifier and name in head:
            data = tensor.to(torch.float32).numpy()
            writer.add_tensor(head[name], data if data.ndim <= 1 else data.astype(np.float16))
            continue
        name = name.removeprefix("bert.")
        if name in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"):
            continue
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        data = tensor.to(torch.float32).numpy()
        keep_f32 = (data.ndim <= 1 or new_name.endswith("_norm.weight") or not new_name.endswith(".weight")
                    or new_name in ("position_embd.weight", "token_types.weight"))
        writer.add_tensor(new_name, data if keep_f32 else data.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")


def new_tiny_folder(folder: Path, vocab_source: Path):
    """An empty folder holding the first TINY_VOCAB_SIZE words of a BERT
    vocabulary; returns them and their tokenizer."""
    from transformers import BertTokenizerFast
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    vocab = vocab_source.read_text(encoding="utf-8").split("\n")[:TINY_VOCAB_SIZE]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True,
                                  model_max_length=TINY_POSITIONS)
    return vocab, tokenizer


def make_tiny():
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    vocab, tokenizer = new_tiny_folder(TINY_DIR, MINILM / "vocab.txt")
    torch.manual_seed(TINY_SEED)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=TINY_POSITIONS, type_vocab_size=2,
                        layer_norm_eps=1e-12, hidden_act="gelu")
    bert = BertModel(config, add_pooling_layer=False).eval()
    randomize(bert)
    bert.save_pretrained(TINY_DIR)
    tokenizer.save_pretrained(TINY_DIR)
    transformer = models.Transformer(str(TINY_DIR), max_seq_length=TINY_POSITIONS)
    pooling = models.Pooling(config.hidden_size, pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(TINY_DIR))
    # Only what a converter reads stays: no README or model card.
    for extra in ("README.md", "config_sentence_transformers.json"):
        (TINY_DIR / extra).unlink(missing_ok=True)
    write_classic_modules(TINY_DIR, config.hidden_size)
    store_mixed_precision(TINY_DIR)

    reference = SentenceTransformer(str(TINY_DIR), device="cpu")
    reference.to(torch.float32)
    write_golden(TINY_GGUF_DIR / "golden.json", reference, "bert_tiny_hf", TINY_POSITIONS)
    write_llama_cpp_gguf(TINY_DIR, TINY_GGUF_DIR / "model.gguf")


# The split regexes of Llama 3 (numbers in groups of three) and Qwen2 (each digit alone).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")


def byte_level_tokenizer(split: str, bos: str, eos: str):
    """A byte-level BPE of the 256 bytes (GPT-2's bytes_to_unicode alphabet),
    no merges, the last two bytes' tokens standing in for BOS and EOS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    # GPT-2's bytes_to_unicode: printable bytes stand for themselves, the
    # others for code points from U+0100 up.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    alphabet = [chr(b) if b in printable else chr(next(extra)) for b in range(256)]
    vocab = {char: i for i, char in enumerate(alphabet[:254])}
    vocab[bos], vocab[eos] = 254, 255
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([bos, eos])
    return tokenizer


def make_decoders():
    from safetensors.torch import save_file
    sys.path.insert(0, str(ROOT / "tools"))
    import make_decoder_goldens as decoders

    for arch in ("llama", "qwen2", "qwen3"):
        model_class, config = decoders.tiny_model(arch)
        model = decoders.random_tiny_model(arch, model_class, config)
        folder = ROOT / f"tests/data/{arch}_tiny_hf"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        config.bos_token_id, config.eos_token_id = 254, 255
        config.architectures = [model_class.__name__]
        config.save_pretrained(folder)
        tensors = {name: (param.half() if param.ndim == 2 else param).contiguous()
                   for name, param in model.state_dict().items()
                   if not (name == "lm_head.weight" and config.tie_word_embeddings)}
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        bos, eos = ("<|begin_of_text|>", "<|end_of_text|>") if arch == "llama" else ("<|im_start|>", "<|im_end|>")
        byte_level_tokenizer(LLAMA3_SPLIT if arch == "llama" else QWEN2_SPLIT, bos, eos).save(
            str(folder / "tokenizer.json"))
        tokenizer_config = {"bos_token": bos, "eos_token": eos, "add_bos_token": arch == "llama",
                            "model_max_length": config.max_position_embeddings,
                            "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                                             "{{ m['content'] }}<|im_end|>\n{% endfor %}"}
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"wrote {folder.relative_to(ROOT)} ({size} bytes)")


def write_pair_golden(path: Path, folder: Path, name: str, f16_cache: bool = False):
    """Scores of PAIRS as sentence-transformers' CrossEncoder computes them:
    the tokenizer reads query and passage as a pair, cut longest first to
    the model's positions, and the first label's logit is the score.
    f16_cache adds score_f16_cache, the same with every key and value rounded
    to f16 as the engine's cache stores them: a random model's scores lie so
    close together that this rounding alone is a visible share of their range."""
    from transformers import AutoTokenizer, BertForSequenceClassification
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder, torch_dtype=torch.float32).eval()
    max_length = model.config.max_position_embeddings

    def round_to_f16(module, inputs, output):
        return output.half().float()

    def scores(encoded):
        with torch.no_grad():
            plain = model(**encoded).logits[0, 0].item()
            if not f16_cache:
                return {"score": round(plain, 6)}
            hooks = [projection.register_forward_hook(round_to_f16) for layer in model.bert.encoder.layer
                     for projection in (layer.attention.self.key, layer.attention.self.value)]
            cached = model(**encoded).logits[0, 0].item()
            for hook in hooks:
                hook.remove()
            return {"score": round(plain, 6), "score_f16_cache": round(cached, 6)}

    pairs = []
    for query, passage in PAIRS:
        # Lists, as CrossEncoder passes its batches.
        encoded = tokenizer([query], [passage], truncation="longest_first", max_length=max_length, return_tensors="pt")
        untruncated = tokenizer([query], [passage])["input_ids"][0]
        pairs.append({"query": query, "passage": passage,
                      "ids": encoded["input_ids"][0].tolist(), "types": encoded["token_type_ids"][0].tolist(),
                      "truncated": len(untruncated) > encoded["input_ids"].shape[1],
                      **scores(encoded)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": name, "pairs": pairs}, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)}: {len(pairs)} pairs")


CROSS_DIR = ROOT / "tests/data/bert_cross_tiny_hf"


def make_cross():
    from transformers import BertConfig, BertForSequenceClassification
    vocab, tokenizer = new_tiny_folder(CROSS_DIR, TINY_DIR / "vocab.txt")
    torch.manual_seed(TINY_SEED + 1)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=TINY_POSITIONS, type_vocab_size=2,
                        layer_norm_eps=1e-12, hidden_act="gelu", num_labels=1)
    model = BertForSequenceClassification(config).eval()
    randomize(model)
    # The matrices a GGUF stores as f16, rounded to f16 here too, so that the
    # reference computes with the weights the engine reads.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.ndim == 2 and "position_embeddings" not in name and "token_type" not in name:
                parameter.copy_(parameter.half().float())
    model.save_pretrained(CROSS_DIR)
    tokenizer.save_pretrained(CROSS_DIR)
    store_mixed_precision(CROSS_DIR)
    write_pair_golden(ROOT / "tests/data/bert_cross_tiny/golden.json", CROSS_DIR, "bert_cross_tiny_hf", f16_cache=True)
    write_llama_cpp_gguf(CROSS_DIR, ROOT / "tests/data/bert_cross_tiny/model.gguf")


def make_msmarco():
    import subprocess
    import tempfile
    source = MODELS / "ms-marco-MiniLM-L-12-v2-onnx"
    if not source.is_dir():
        sys.exit(f"{source} is missing: run installer/fetch-models.sh first")
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, str(ROOT / "installer/onnx_bert_to_hf.py"), str(source), work], check=True)
        write_pair_golden(ROOT / "tests/data/ms_marco/golden.json", Path(work), "ms-marco-MiniLM-L-12-v2")


def make_minilm():
    from sentence_transformers import SentenceTransformer
    if not MINILM.is_dir():
        sys.exit(f"{MINILM} is missing: run installer/fetch-models.sh first")
    model = SentenceTransformer(str(MINILM), device="cpu")
    write_golden(ROOT / "tests/data/minilm/golden.json", model, "all-MiniLM-L6-v2", model.max_seq_length)


if __name__ == "__main__":
    torch.set_num_threads(2)
    jobs = {"tiny": make_tiny, "decoders": make_decoders, "minilm": make_minilm, "cross": make_cross,
            "msmarco": make_msmarco}
    for job in sys.argv[1:] or jobs:
        jobs[job]()
