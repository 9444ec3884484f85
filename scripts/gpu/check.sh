#!/usr/bin/env bash
# Every GPU check of `rl`, each against its bar; exits non-zero when any bar is missed (a GPU
# session is rare: batch everything). Run from the repository root on the GPU machine with the
# carried folder .device/ holding: rl (stripped release binary), generate-bench and update-bench
# (the bench binaries of rl-rollout and rl-learner, stripped), and the SmolLM2 GGUF reassembled
# at /tmp/smollm2.gguf (it travels in two parts). The machine has torch, transformers and trl.
#
#   scripts/gpu/check.sh [engine|step|placement|async|nccl|race|all]  (default: all; each fits
#   one call). nccl also needs .device/group-test, rl-learner's tests/group.rs binary built with
#   NCCL (the venv's nvidia-cuda-cccl headers make the build include it).
#
# engine: CUDA graphs vs eager, greedy bf16 on 64 prompts: at least 95% identical completions;
#         batch 256 (64-token prompts, 256 new tokens) at >= 75,000 tokens/s with graphs, beside
#         transformers; batch 64; eager at 256; the learner update beside plain PyTorch.
# step:   one GRPO step of 8 x 8 samples with up to 256 new tokens (countdown): median <= 1.0 s.
# placement: the same step in placement.mode = "processes" (an rl rollout-worker and an rl
#         reward-server process, weights synced over gRPC) against one process: median step
#         time of each, processes at most 2x one process.
# async:  the same step with rollout.async = true (generation of step t+1 overlapping the update
#         of step t) against synchronous rollouts: median step time of each, async at most 1x.
# nccl:   a learner group of one rank over NCCL sums and broadcasts CUDA tensors (world size 1:
#         one GPU cannot hold two NCCL ranks).
# race:   benches/race_trl.py --preset gpu (TRL and rl, 128 completions a step, lr 1e-5, 24
#         tokens): rl reaches 95% within 300 s of training, and 85% at least 5x sooner than TRL.
set -uo pipefail
stage=${1:-all}
torch_lib=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
cuda_lib=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/../nvidia/cu13/lib")')
export LD_LIBRARY_PATH="$torch_lib:$cuda_lib:${LD_LIBRARY_PATH:-}"
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
missed=0
# bar NAME VALUE OP LIMIT: prints the verdict, counts a miss.
bar() {
  if python3 -c "import sys; v=float(sys.argv[1]); l=float(sys.argv[3]); sys.exit(0 if (v >= l if sys.argv[2] == '>=' else v <= l) else 1)" "$2" "$3" "$4"; then
    echo "BAR ok:     $1 = $2 ($3 $4)"
  else
    echo "BAR MISSED: $1 = $2 (needs $3 $4)"
    missed=$((missed + 1))
  fi
}

engine() {
  python3 - >"$out/prompts.jsonl" <<'PY'
import json
for i in range(64):
    print(json.dumps({"prompt": f"What is {i * 7 % 97} + {i * 13 % 89}? Answer with just the number."}))
PY
  gen() { .device/rl generate --model /tmp/smollm2.gguf --file "$out/prompts.jsonl" --chat --device cuda --dtype bf16 --max-new-tokens 48 --quiet "$@"; }
  gen --cuda-graphs --out "$out/graphs.jsonl" && gen --out "$out/eager.jsonl"
  same=$(python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
try:
    a = [json.loads(l)["token_ids"] for l in open(f"{d}/graphs.jsonl")]
    b = [json.loads(l)["token_ids"] for l in open(f"{d}/eager.jsonl")]
    print(sum(x == y for x, y in zip(a, b)) / max(len(a), 1))
except OSError:
    print(0)
PY
)
  bar "CUDA graphs vs eager, share of identical greedy completions" "$same" ">=" 0.95
  for batch in 256 64; do
    python3 benches/generate_vs_transformers.py --rl-bench .device/generate-bench --device cuda --dtype bf16 \
      --batch "$batch" --prompt 64 --new 256 --reps 3 --graphs 2>&1 | tee "$out/generate-$batch.txt"
  done
  rate=$(sed -n 's/^rl fixed: *\([0-9.]*\) tokens.*/\1/p' "$out/generate-256.txt" | head -1)
  bar "engine tokens/s at batch 256 with CUDA graphs" "${rate:-0}" ">=" 75000
  python3 benches/generate_vs_transformers.py --rl-bench .device/generate-bench --device cuda --dtype bf16 \
    --batch 256 --prompt 64 --new 256 --reps 3 --skip-transformers 2>&1 | tee "$out/generate-eager.txt"
  python3 benches/update_vs_torch.py --rl-bench .device/update-bench --device cuda --dtype bf16 \
    --batch 64 --seq 320 --response 256 --micro 16 --reps 3 2>&1 | tee "$out/update.txt"
  ratio=$(sed -n 's/^speed ratio rl \/ pytorch: *\([0-9.]*\) x/\1/p' "$out/update.txt")
  bar "learner update speed, rl / plain PyTorch" "${ratio:-0}" ">=" 1.0
}

# grpo_step DIR [--set ...]: the step configuration, 6 steps into DIR; prints the median step
# time after the first.
grpo_step() {
  local dir=$1; shift
  .device/rl train configs/grpo.toml --run-dir "$dir" --quiet --set model.path=\"/tmp/smollm2.gguf\" \
    --set env.name=\"countdown\" --set run.steps=6 --set eval.every=0 --set eval.tasks=8 \
    --set rollout.prompts_per_step=8 --set rollout.samples_per_prompt=8 --set rollout.max_new_tokens=256 \
    --set rollout.max_prompt_tokens=256 --set rollout.max_seq_len=512 \
    --set learner.mini_batch_size=64 --set learner.micro_batch_size=64 --set checkpoint.every=0 "$@" >&2
  python3 - "$dir/metrics.jsonl" <<'PY'
import json, statistics, sys
try:
    lines = [json.loads(l) for l in open(sys.argv[1])]
    steps = [l for l in lines if "timing_s/step" in l][1:]  # the first step warms up
    print(statistics.median(l["timing_s/step"] for l in steps))
    print(f"mean response length {statistics.mean(l['response_length/mean'] for l in steps):.0f} tokens", file=sys.stderr)
except (OSError, statistics.StatisticsError, KeyError):
    print(1e9)
PY
}

step() {
  median=$(grpo_step "$out/step")
  bar "GRPO step, 8 x 8 samples of up to 256 tokens, median seconds" "$median" "<=" 1.0
}

placement() {
  local one spread
  one=$(grpo_step "$out/one-process")
  spread=$(grpo_step "$out/processes" --set placement.mode=\"processes\")
  echo "median step: one process $one s, processes $spread s"
  bar "GRPO step in processes mode / one process" "$(python3 -c "print($spread / $one)")" "<=" 2.0
}

async_rollouts() {
  local sync overlapped
  sync=$(grpo_step "$out/sync")
  overlapped=$(grpo_step "$out/async" --set rollout.async=true)
  echo "median step: synchronous $sync s, asynchronous $overlapped s"
  bar "GRPO step with async rollouts / synchronous" "$(python3 -c "print($overlapped / $sync)")" "<=" 1.0
}

nccl() {
  if .device/group-test --ignored --exact nccl_world_of_one_sums_and_broadcasts_cuda_tensors; then
    bar "NCCL world of one: sums and broadcasts on the GPU (1 = passed)" 1 ">=" 1
  else
    bar "NCCL world of one: sums and broadcasts on the GPU (1 = passed)" 0 ">=" 1
  fi
}

race() {
  RL_BIN=.device/rl python3 benches/race_trl.py --preset gpu --steps 60 --eval-every 5 \
    --gguf /tmp/smollm2.gguf --out "$out/race" --png "$out/race.png"
  read -r at95 ratio85 < <(python3 - "$out/race/race.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except OSError:
    print(1e9, 0); sys.exit()
# One seed: its results are the only run's.
results = next(iter(r["runs"].values()))["results"]
rl = results["rl"]["curve"]
reach = lambda curve, level: next((t for _, t, a in curve if a >= level), None)
t95 = reach(rl, 0.95)
t85, trl85 = reach(rl, 0.85), reach(results["trl"]["curve"], 0.85)
# TRL not reaching 85% in the race counts as its time being at least the race's length.
trl85 = trl85 or results["trl"]["curve"][-1][1]
print(t95 if t95 is not None else 1e9, trl85 / t85 if t85 else 0)
PY
)
  bar "rl training seconds to 95% held-out accuracy" "$at95" "<=" 300
  bar "time to 85%, TRL / rl" "$ratio85" ">=" 5
}

case "$stage" in
  engine) engine ;;
  step) step ;;
  placement) placement ;;
  async) async_rollouts ;;
  nccl) nccl ;;
  race) race ;;
  all) engine; step; placement; async_rollouts; nccl; race ;;
  *) echo "usage: scripts/gpu/check.sh [engine|step|placement|async|nccl|race|all]" >&2; exit 2 ;;
esac
echo "$missed bar(s) missed"
[ "$missed" -eq 0 ]
