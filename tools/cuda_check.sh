#!/usr/bin/env bash
# The GPU checks of the CUDA backend in one go, on a machine with an NVIDIA
# GPU and a build made with the CUDA toolkit (FOLIO_CUDA=AUTO found nvcc):
# the CUDA suite one function at a time (a crash or a hang hides no other
# function), compute-sanitizer's memcheck on a cross-section of it (skipped
# where compute-sanitizer is not installed), `folio bench engine --device
# cuda` on random models of real shapes (docs/benchmarks.md), and, where
# Nsight Compute is installed, each kernel's time in a few decode steps of
# a mixture of experts.
#
#   tools/cuda_check.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, cuda-check)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
OUT_DIR=${2:-cuda-check}
mkdir -p "$OUT_DIR"
FOLIO="$BUILD_DIR/app/folio"
SUITE="$BUILD_DIR/tests/engine/engine_tst_cuda"
export FOLIO_TEST_DATA=${FOLIO_TEST_DATA:-$PWD/tests/data}

"$FOLIO" devices
echo "== CUDA suite"
failed=0
for function in $("$SUITE" -functions | sed 's/()//'); do
    if timeout 300 "$SUITE" "$function" >"$OUT_DIR/cuda_$function.log" 2>&1; then
        echo "pass  $function"
    else
        echo "FAIL  $function (exit $?)"
        grep -A2 -E '^FAIL!' "$OUT_DIR/cuda_$function.log" || tail -5 "$OUT_DIR/cuda_$function.log"
        failed=1
    fi
done

if command -v compute-sanitizer >/dev/null; then
    echo "== compute-sanitizer memcheck"
    compute-sanitizer --tool memcheck --print-limit 5 "$SUITE" \
        matmulMatchesDequantizedReference:Q4_K_x1 matmulMatchesDequantizedReference:Q6_K_x19 \
        matmulMatchesDequantizedReference:Q5_0_x3 tinyMatchesTransformers:gemma3 tinyMatchesTransformers:deepseek2 \
        longPromptMatchesCpu:qwen2 expertOpsMatchCpu recordedDecodeStepsFollowMovedBuffers 2>&1 | tail -3
fi

echo "== bench"
bench() {  # NAME LIKE LAYERS BENCH_OPTIONS...
    local name=$1 like=$2 layers=$3
    shift 3
    "$FOLIO" model random --like "$like" --quant Q4_K_M --layers "$layers" --out "$OUT_DIR/$name.gguf"
    "$FOLIO" bench engine --device cuda --model "$OUT_DIR/$name.gguf" "$@" | tee "$OUT_DIR/bench_$name.txt"
}
bench qwen3-8b-18l qwen3-8b 18 --prefill-tokens 2048,8192,32768 --decode-contexts 0,4096,32768 --gen-tokens 64
bench llama-3.2-1b llama-3.2-1b 16 --prefill-tokens 2048 --decode-contexts 0,4096 --gen-tokens 128
bench qwen3-30b-a3b-8l qwen3-30b-a3b 8 --prefill-tokens 2048,8192 --decode-contexts 0,4096,32768 --gen-tokens 64
bench deepseek-v2-lite-6l deepseek-v2-lite 6 --prefill-tokens 2048,8192 --decode-contexts 0,4096,32768 --gen-tokens 64

if command -v ncu >/dev/null; then
    echo "== kernel times (Nsight Compute): qwen3-30b-a3b shape, 2 layers, 16 decode steps"
    "$FOLIO" model random --like qwen3-30b-a3b --quant Q4_K_M --layers 2 --out "$OUT_DIR/qwen3-30b-a3b-2l.gguf"
    ncu --clock-control none --metrics gpu__time_duration.sum --print-summary per-kernel \
        "$FOLIO" bench engine --device cuda --model "$OUT_DIR/qwen3-30b-a3b-2l.gguf" --prefill-tokens 64 \
        --decode-contexts 0 --gen-tokens 16 >"$OUT_DIR/ncu_kernels.txt" 2>&1
    echo "per-kernel summary in $OUT_DIR/ncu_kernels.txt"
fi
exit $failed
