#!/usr/bin/env bash
# Retakes docs/screenshots/*.png: folio-gui's main views at 1440x900 under
# Xvfb, each after doing its job on the bundled samples with the default
# models (installer/install.sh first). Usage: tools/gui_screenshots.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
cmake --build "$BUILD_DIR" --target gui_screenshots
QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1440x900x24 -dpi 96" \
  "$BUILD_DIR/tests/ui/gui_screenshots" docs/screenshots
