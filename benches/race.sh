#!/usr/bin/env bash
# The race against TRL in one command, from a fresh clone: installs TRL, datasets and matplotlib
# into the torch venv (once), fetches the model, builds `rl` (unless RL_BIN names one), then runs
# benches/race_trl.py with the arguments given (see its --help). About 15 minutes on 2 cores.
#
#   benches/race.sh [--steps 30] [--eval-every 5] [--png benches/race.png] [--smoke]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(scripts/torch-env.sh)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r benches/requirements-race.txt
RL_SMOLLM2_GGUF=${RL_SMOLLM2_GGUF:-$(scripts/fetch-model.sh)}
export RL_SMOLLM2_GGUF
if [ -z "${RL_BIN:-}" ]; then
  make build >&2
fi
exec scripts/with-torch.sh python benches/race_trl.py "$@"
