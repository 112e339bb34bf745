#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one go, on a machine with an NVIDIA
# GPU and a build made with the CUDA toolkit (FOLIO_CUDA=AUTO found nvcc):
# the CUDA suite, compute-sanitizer's memcheck on a cross-section of it
# (skipped where compute-sanitizer is not installed), and `folio bench engine
# --device cuda` on random models of real shapes (docs/benchmarks.md).
#
#   tools/cuda_check.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, cuda-check)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
OUT_DIR=${2:-cuda-check}
mkdir -p "$OUT_DIR"
FOLIO="$BUILD_DIR/app/folio"
SUITE="$BUILD_DIR/tests/engine/engine_tst_cuda"

"$FOLIO" devices
echo "== CUDA suite"
"$SUITE" 2>&1 | tee "$OUT_DIR/cuda_suite.log" | grep -v "^PASS"

if command -v compute-sanitizer >/dev/null; then
    echo "== compute-sanitizer memcheck"
    compute-sanitizer --tool memcheck --print-limit 5 "$SUITE" \
        matmulMatchesDequantizedReference:Q4_K_x1 matmulMatchesDequantizedReference:Q6_K_x19 \
        matmulMatchesDequantizedReference:Q5_0_x3 tinyMatchesTransformers:gemma3 longPromptMatchesCpu:qwen2 \
        recordedDecodeStepsFollowMovedBuffers 2>&1 | tail -3
fi

echo "== bench"
"$FOLIO" model random --like qwen3-8b --quant Q4_K_M --layers 18 --out "$OUT_DIR/qwen3-8b-18l-q4_k_m.gguf"
"$FOLIO" bench engine --device cuda --model "$OUT_DIR/qwen3-8b-18l-q4_k_m.gguf" \
    --prefill-tokens 2048,8192,32768 --decode-contexts 0,4096,32768 --gen-tokens 64 | tee "$OUT_DIR/bench_qwen3_8b.txt"
"$FOLIO" model random --like llama-3.2-1b --quant Q4_K_M --out "$OUT_DIR/llama-3.2-1b-q4_k_m.gguf"
"$FOLIO" bench engine --device cuda --model "$OUT_DIR/llama-3.2-1b-q4_k_m.gguf" \
    --prefill-tokens 2048 --decode-contexts 0,4096 --gen-tokens 128 | tee "$OUT_DIR/bench_llama_1b.txt"
