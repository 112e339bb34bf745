#!/usr/bin/env bash
# Runs Folio's whole test suite from a fresh clone: installs the build
# dependencies and the default models, builds with the tests, and runs CTest
# (summary at the end).
# FOLIO_CUDA_ARCHITECTURES narrows the GPU code built (CI: one architecture).
set -euo pipefail
cd "$(dirname "$0")/.."
bash installer/install-deps.sh
BUILD_DIR=${FOLIO_BUILD_DIR:-build}
# ccache hits across clones in different folders (CI builds a fresh clone).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOLIO_BUILD_TESTS=ON \
  ${FOLIO_CUDA_ARCHITECTURES:+-DFOLIO_CUDA_ARCHITECTURES=$FOLIO_CUDA_ARCHITECTURES}
cmake --build "$BUILD_DIR" -j "$(nproc)"
# The real default models, for the suites that check against them (skipped
# when absent); after the build, whose folio converts the embedding model to GGUF.
FOLIO_BIN="$BUILD_DIR/app/folio" bash installer/fetch-models.sh
ctest --test-dir "$BUILD_DIR" -j "$(nproc)" --output-on-failure --timeout 900 "$@"
