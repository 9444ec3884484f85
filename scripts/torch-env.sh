#!/usr/bin/env bash
# torch-env.sh — create (once) and print the Python venv that provides libtorch for tch.
#
# The venv lives outside the checkout, keyed by the torch version, so every clone on this
# machine (CI's fresh ones too) shares it:
#     ${RL_CACHE:-$HOME/.cache/rl}/torch-<version>/venv
# It holds PyPI's torch wheel (libtorch for tch, CUDA-enabled) plus the Python tools the tests
# use to check our output against the reference implementations (scripts/requirements.txt).
# The requirements are re-applied whenever that file changes; torch itself is never re-fetched.
#
# Usage: scripts/torch-env.sh          # prints the venv path on stdout, progress on stderr
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
reqs="$here/requirements.txt"
torch_version=$(sed -n 's/^torch==\([0-9.]*\).*/\1/p' "$reqs")
[ -n "$torch_version" ] || { echo "torch-env: no 'torch==X.Y.Z' pin in $reqs" >&2; exit 1; }

cache=${RL_CACHE:-$HOME/.cache/rl}
root="$cache/torch-$torch_version"
venv="$root/venv"
stamp="$venv/.rl-requirements.sha256"
want=$(sha256sum "$reqs" | cut -d' ' -f1)

mkdir -p "$root"
exec 9>"$root/.lock"
flock 9 # one installer at a time; the others wait, then find it done

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv"
  exit 0
fi

python=${RL_PYTHON:-python3}
command -v "$python" >/dev/null || {
  echo "torch-env: '$python' not found; install Python 3.10+ or point RL_PYTHON at one" >&2
  exit 1
}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "torch-env: creating $venv with torch==$torch_version (about 4.6 GB, a few minutes)..." >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
fi
echo "torch-env: installing $reqs into $venv..." >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
"$venv/bin/python" -c 'import torch; print("torch-env: torch", torch.__version__, "ready", file=__import__("sys").stderr)'
echo "$want" >"$stamp"
echo "$venv"
