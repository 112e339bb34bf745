#!/usr/bin/env python3
"""Folio's quantizer against llama.cpp's, on the same F32 model, in one run.

For each scheme, the F32 file is quantized twice, by `folio model quantize`
and by llama.cpp's llama_model_quantize (default parameters: its mixes, no
importance matrix); the two files' tensor types and bytes are compared, and
the perplexity of each is measured over a text by both engines: Folio's
`folio bench perplexity` and llama.cpp (through llama-cpp-python) scoring
the same windows the way llama-perplexity does (windows of --ctx tokens,
the second half of each scored). The F32 file's own perplexity is the base
the increases are measured from.

Folio's plain types are llama-quantize --pure (every matrix the one type),
compared with llama.cpp's default for the same ftype (for Q4_K its Q4_K_S
mix, which Folio names Q4_K_S). Folio fits Q4_1 and Q5_1 blocks
where llama.cpp spans min to max, so a scheme with such tensors (Q5_K's
fallback for rows that are not whole 256-blocks) differs there by design.

Tools only, never CI. Needs llama-cpp-python and the gguf package, as
tools/bench_llamacpp.py says; for example:

    build/app/folio model quantize SmolLM2-135M-Instruct.Q4_1.gguf --quant F32 --out f32.gguf
    /tmp/llamacpp-venv/bin/python tools/quant_llamacpp.py --folio build/app/folio \\
        --text tests/data/perplexity/apple-2021-mdna.txt --ctx 256 f32.gguf

Prints one line per scheme, and with --json one JSON object per scheme:
{scheme, llamacpp_ftype, types_identical, bytes_differ_in (the types of the
tensors whose bytes differ), folio_file: {folio_ppl, llamacpp_ppl},
llamacpp_file: {...}, f32: {folio_ppl, llamacpp_ppl}}.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

# Folio's scheme name → llama.cpp's llama_ftype.
SCHEMES = {
    "Q8_0": 7,
    "Q6_K": 18,
    "Q5_K_M": 17,
    "Q5_K_S": 16,
    "Q5_K": 16,
    "Q4_K_M": 15,
    "Q4_K_S": 14,
    "Q4_K": 14,
    "Q5_1": 9,
    "Q5_0": 8,
    "Q4_1": 3,
    "Q4_0": 2,
}


def folio_quantize(folio, src, scheme, dst):
    subprocess.run([folio, "model", "quantize", src, "--quant", scheme, "--out", dst], check=True,
                   stdout=subprocess.DEVNULL)


def llamacpp_quantize(src, ftype, dst, threads):
    import ctypes
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)) != 0:
        sys.exit(f"quant_llamacpp: llama.cpp could not quantize {src} to ftype {ftype}")


def compare_tensors(a, b):
    """(whether every tensor has the same type in both, the types of the
    tensors whose bytes differ)."""
    import gguf
    ta = {t.name: t for t in gguf.GGUFReader(a).tensors}
    tb = {t.name: t for t in gguf.GGUFReader(b).tensors}
    if ta.keys() != tb.keys():
        return False, []
    same_types = all(ta[n].tensor_type == tb[n].tensor_type for n in ta)
    differing = sorted({ta[n].tensor_type.name for n in ta
                        if ta[n].tensor_type != tb[n].tensor_type or not np.array_equal(ta[n].data, tb[n].data)})
    return same_types, differing


def folio_perplexity(folio, model, text, ctx):
    out = subprocess.run([folio, "bench", "perplexity", "--model", model, "--text", text, "--ctx", str(ctx),
                          "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["perplexity"]


def llamacpp_perplexity(model, text, ctx, threads):
    """llama-perplexity's windows: BOS first when the model adds one, the
    second half of each window scored."""
    import llama_cpp
    llm = llama_cpp.Llama(model_path=model, n_ctx=ctx, n_batch=ctx, n_threads=threads, logits_all=True,
                          verbose=False)
    with open(text, "rb") as f:
        tokens = llm.tokenize(f.read(), add_bos=False, special=False)
    bos = llm.token_bos() if llm._model.add_bos_token() else None
    nll, scored = 0.0, 0
    for w in range(len(tokens) // ctx):
        window = list(tokens[w * ctx:(w + 1) * ctx])
        if bos is not None:
            window[0] = bos
        llm.reset()
        llm.eval(window)
        logits = np.asarray(llm.scores[:ctx], dtype=np.float64)
        for j in range(ctx // 2, ctx - 1):
            row = logits[j]
            top = row.max()
            nll += math.log(np.exp(row - top).sum()) + top - row[window[j + 1]]
            scored += 1
    return math.exp(nll / scored)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("f32", help="the model as F32 GGUF")
    parser.add_argument("--folio", required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--ctx", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--schemes", default="Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q4_K")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    base = {"folio_ppl": folio_perplexity(args.folio, args.f32, args.text, args.ctx),
            "llamacpp_ppl": llamacpp_perplexity(args.f32, args.text, args.ctx, args.threads)}
    if not args.json:
        print(f"F32: Folio {base['folio_ppl']:.4f}, llama.cpp {base['llamacpp_ppl']:.4f}")
    with tempfile.TemporaryDirectory() as folder:
        for scheme in args.schemes.split(","):
            ftype = SCHEMES[scheme]
            ours, theirs = os.path.join(folder, "folio.gguf"), os.path.join(folder, "llamacpp.gguf")
            folio_quantize(args.folio, args.f32, scheme, ours)
            llamacpp_quantize(args.f32, ftype, theirs, args.threads)
            same_types, differing = compare_tensors(ours, theirs)
            row = {"scheme": scheme, "llamacpp_ftype": ftype, "types_identical": same_types,
                   "bytes_differ_in": differing, "f32": base}
            for key, path in (("folio_file", ours), ("llamacpp_file", theirs)):
                row[key] = {"folio_ppl": folio_perplexity(args.folio, path, args.text, args.ctx),
                            "llamacpp_ppl": llamacpp_perplexity(path, args.text, args.ctx, args.threads)}
            if args.json:
                print(json.dumps(row))
                continue
            pct = lambda ppl, ref: f"{100 * (ppl / ref - 1):+.2f}%"
            tensors = ("identical" if same_types and not differing else
                       f"types {'identical' if same_types else 'differ'}, bytes differ in {', '.join(differing) or 'none'}")
            print(f"{scheme} (llama.cpp ftype {ftype}): tensors {tensors}; "
                  f"Folio's file {pct(row['folio_file']['folio_ppl'], base['folio_ppl'])} in Folio, "
                  f"{pct(row['folio_file']['llamacpp_ppl'], base['llamacpp_ppl'])} in llama.cpp; "
                  f"llama.cpp's file {pct(row['llamacpp_file']['folio_ppl'], base['folio_ppl'])} in Folio, "
                  f"{pct(row['llamacpp_file']['llamacpp_ppl'], base['llamacpp_ppl'])} in llama.cpp")


if __name__ == "__main__":
    main()
