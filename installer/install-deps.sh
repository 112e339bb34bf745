#!/usr/bin/env bash
# Installs every Debian package Folio's build, tests and benchmarks need.
# Idempotent: apt-get skips what is already there.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config git ca-certificates \
  qt6-base-dev qt6-base-dev-tools libgl-dev \
  libpoppler-cpp-dev libpoppler-qt6-dev poppler-utils \
  libtesseract-dev libleptonica-dev tesseract-ocr \
  tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd \
  libfaiss-dev libopenblas-dev libsqlite3-dev sqlite3 \
  nlohmann-json3-dev libsodium-dev libarchive-dev \
  libgtest-dev libbenchmark-dev \
  qpdf xvfb xauth fonts-dejavu-core fonts-noto-cjk \
  python3 python3-pip python3-onnx python3-numpy >/dev/null
