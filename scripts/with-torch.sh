#!/usr/bin/env bash
# with-torch.sh CMD [ARGS...] — run CMD with the project's libtorch venv set up for tch.
#
# Creates the venv first if it is missing (scripts/torch-env.sh), then exports what torch-sys's
# build script and our tests look for: VIRTUAL_ENV and PATH (torch-sys runs `python` from the
# venv to find libtorch), LIBTORCH_USE_PYTORCH=1, and RL_TORCH_VENV (the Python the tests use).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$("$here/torch-env.sh") || {
  echo "error: the libtorch venv could not be created (see above). It needs Python 3.10+ and access to PyPI;" >&2
  echo "       set RL_CACHE to a folder that already holds torch-<version>/venv to reuse one." >&2
  exit 1
}
export VIRTUAL_ENV="$venv" RL_TORCH_VENV="$venv" LIBTORCH_USE_PYTORCH=1
export PATH="$venv/bin:$PATH"
exec "$@"
