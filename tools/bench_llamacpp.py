#!/usr/bin/env python3
"""Folio's CPU engine against llama.cpp on the same GGUF files, in one run.

For each model: llama.cpp (through llama-cpp-python) prefills a prompt of
random token ids and decodes greedily (each step's argmax fed back, as
Folio's bench does), timed around llama-cpp-python's eval calls; then
`folio bench engine --json` runs the same prompt length, token count and
thread count. The two alternate, --rounds times, and the best of each is
kept, so a busy shared machine disturbs both alike.

Tools only, never CI. llama-cpp-python compiles llama.cpp at install; for a
CPU-only build with this machine's instructions, and ggml's own thread pool
rather than OpenMP (whose threads either sleep between calls, slowing
llama.cpp's decode 3-4x, or keep spinning while Folio runs):

    python3 -m venv /tmp/llamacpp-venv
    CMAKE_ARGS="-DGGML_CUDA=OFF -DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_OPENMP=OFF" \\
        /tmp/llamacpp-venv/bin/pip install llama-cpp-python
    /tmp/llamacpp-venv/bin/python tools/bench_llamacpp.py \\
        --folio build/app/folio --threads 2 MODEL.gguf [MODEL.gguf ...]

A model without a tokenizer (`folio model random` writes none for a zoo
layout) is copied for llama.cpp with a placeholder vocabulary added (see
with_tokenizer); the weights are the same bytes. OMP_WAIT_POLICY defaults
to passive (see main). Needs the gguf package beside llama-cpp-python.

Each engine's prefill and decode are its best over the rounds; Folio's
bandwidth and decode bandwidth fraction are those of its best decode round.

Prints one line per model and engine, and with --json one JSON object per
model: {model, threads, prompt_tokens, gen_tokens, llamacpp: {prefill_tps,
decode_tps}, folio: {prefill_tps, decode_tps, decode_bandwidth_fraction,
memory_read_gb_per_s}, ratio: {prefill, decode}} (ratio > 1: Folio faster).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time


def with_tokenizer(path, folder):
    """`path`, or when it has no tokenizer (folio model random writes none
    for a zoo layout) a copy in `folder` with a placeholder one: llama.cpp
    takes its vocabulary size from the token list, so the copy names one
    token per embedding row ("<0>", "<1>", ...) in a SentencePiece-type
    vocabulary. The benchmark feeds token ids; their text never matters."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(path)
    if "tokenizer.ggml.model" in reader.fields:
        return path
    out = os.path.join(folder, os.path.basename(path))
    if os.path.abspath(out) == os.path.abspath(path):
        raise SystemExit(f"--copies-dir must not be the folder of {path}")
    if not os.path.exists(out):
        n_vocab = next(int(t.shape[1]) for t in reader.tensors if t.name == "token_embd.weight")
        arch = reader.fields["general.architecture"].contents()
        writer = gguf.GGUFWriter(out, arch=arch, endianess=reader.endianess)
        alignment = reader.fields.get("general.alignment")
        if alignment is not None:
            writer.data_alignment = alignment.contents()
        copy_with_new_metadata(reader, writer, {
            "tokenizer.ggml.model": MetadataDetails(gguf.GGUFValueType.STRING, "llama"),
            "tokenizer.ggml.tokens": MetadataDetails(gguf.GGUFValueType.ARRAY, [f"<{i}>" for i in range(n_vocab)],
                                                     sub_type=gguf.GGUFValueType.STRING),
        }, [])
    return out


def llamacpp_run(path, threads, prompt_tokens, gen_tokens, seed):
    """Prefill and decode tokens/s of llama.cpp on `path`."""
    import llama_cpp

    n_ctx = prompt_tokens + gen_tokens + 8
    # n_batch = n_ctx: llama-cpp-python keeps one row of scores per batch
    # position and indexes it by sequence position.
    llm = llama_cpp.Llama(
        model_path=path,
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=prompt_tokens,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=False,
        verbose=False,
    )
    rng = random.Random(seed)
    n_vocab = llm.n_vocab()
    prompt = [rng.randrange(n_vocab) for _ in range(prompt_tokens)]
    # Warm-up: faults the mapped weights in, as Folio's bench does.
    llm.eval(prompt[:16])
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    prefill_seconds = time.perf_counter() - start
    start = time.perf_counter()
    token = int(llm.scores[llm.n_tokens - 1].argmax())
    for _ in range(gen_tokens):
        llm.eval([token])
        token = int(llm.scores[llm.n_tokens - 1].argmax())
    decode_seconds = time.perf_counter() - start
    return {"prefill_tps": prompt_tokens / prefill_seconds, "decode_tps": gen_tokens / decode_seconds}


def folio_run(folio, path, threads, prompt_tokens, gen_tokens):
    out = subprocess.run(
        [folio, "bench", "engine", "--model", path, "--threads", str(threads),
         "--prompt-tokens", str(prompt_tokens), "--gen-tokens", str(gen_tokens),
         "--context-tokens", "0", "--json"],
        check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    return {
        "prefill_tps": figures["prefill_tokens_per_second"],
        "decode_tps": figures["decode_tokens_per_second"],
        "decode_bandwidth_fraction": figures["decode_bandwidth_fraction"],
        "memory_read_gb_per_s": figures["memory_read_gb_per_s"],
    }


def best(runs, key):
    return max(run[key] for run in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--folio", default="build/app/folio")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--omp-wait-policy", default="passive", choices=["passive", "active"])
    parser.add_argument("--copies-dir", default=None,
                        help="where copies of tokenizer-less models for llama.cpp go (default: the temp folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    # OpenMP's default active waiting spins through every graph node's
    # barrier: on a machine shared with other work llama.cpp's decode falls
    # to a fraction of its speed. Passive waiting is its better setting there.
    os.environ.setdefault("OMP_WAIT_POLICY", args.omp_wait_policy)
    copies = tempfile.TemporaryDirectory(dir=args.copies_dir)
    for path in args.models:
        llama_path = with_tokenizer(path, copies.name)
        llama_runs, folio_runs = [], []
        for round_index in range(args.rounds):
            llama_runs.append(llamacpp_run(llama_path, args.threads, args.prompt_tokens, args.gen_tokens, round_index))
            folio_runs.append(folio_run(args.folio, path, args.threads, args.prompt_tokens, args.gen_tokens))
        llama = {key: best(llama_runs, key) for key in ("prefill_tps", "decode_tps")}
        # The bandwidth fraction and bandwidth of the round with the best decode.
        folio = dict(max(folio_runs, key=lambda run: run["decode_tps"]))
        folio["prefill_tps"] = best(folio_runs, "prefill_tps")
        result = {
            "model": path,
            "threads": args.threads,
            "prompt_tokens": args.prompt_tokens,
            "gen_tokens": args.gen_tokens,
            "llamacpp": llama,
            "folio": folio,
            "ratio": {
                "prefill": folio["prefill_tps"] / llama["prefill_tps"],
                "decode": folio["decode_tps"] / llama["decode_tps"],
            },
        }
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        name = os.path.basename(path)
        print(f"{name}: llama.cpp prefill {llama['prefill_tps']:.1f} tok/s, decode {llama['decode_tps']:.1f} tok/s")
        print(f"{name}: folio     prefill {folio['prefill_tps']:.1f} tok/s, decode {folio['decode_tps']:.1f} tok/s"
              f" ({100 * folio['decode_bandwidth_fraction']:.0f}% of {folio['memory_read_gb_per_s']:.1f} GB/s)")
        print(f"{name}: folio / llama.cpp: prefill {result['ratio']['prefill']:.2f}x,"
              f" decode {result['ratio']['decode']:.2f}x (best of {args.rounds}, {args.threads} threads)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
