#!/usr/bin/env bash
# system-deps.sh — install (once) the Debian packages rl's build needs beyond the torch venv.
#
#   libgloo-dev: Gloo's headers, which libtorch's ProcessGroupGloo header includes. rl's learner
#                group compiles a small shim against them (crates/rl-learner/csrc/c10d.cpp);
#                only the headers are used, the collective code is libtorch's own.
#
# Does nothing when they are present. Installs with apt-get (through sudo when not root).
set -euo pipefail

missing=()
[ -f /usr/include/gloo/algorithm.h ] || missing+=(libgloo-dev)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "system-deps: need ${missing[*]} (apt-get install ${missing[*]}) and neither root nor sudo" >&2
        exit 1
    }
    sudo=sudo
fi
echo "system-deps: installing ${missing[*]}" >&2
$sudo apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
