#!/usr/bin/env bash
# Every GPU check of the rollout engine and the learner in one call of the device tool (a GPU
# session is rare: batch everything). Run from the repository root on the GPU machine with the
# carried folder .device/ holding: rl (stripped release binary), generate-bench and update-bench
# (the bench binaries of rl-rollout and rl-learner, stripped), and the SmolLM2 GGUF already
# reassembled at /tmp/smollm2.gguf (it travels in two parts).
#
#   1. CUDA graphs vs eager: rl generate greedy bf16 on 64 prompts, both ways; prints the share of
#      identical completions (same kernels, so expect all or nearly all).
#   2. Throughput beside transformers (benches/generate_vs_transformers.py): batch 256 and 64,
#      fixed length and mixed lengths, bf16, with CUDA graphs; plus eager rl at batch 256 for the
#      graph speed-up.
#   3. Policy update beside a plain PyTorch loop (benches/update_vs_torch.py): 64 x 320 tokens,
#      bf16: tokens/s and device memory.
set -uo pipefail
torch_lib=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
cuda_lib=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/../nvidia/cu13/lib")')
export LD_LIBRARY_PATH="$torch_lib:$cuda_lib:${LD_LIBRARY_PATH:-}"
out=${OUT:-/tmp/rollout-check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

python3 - >"$out/prompts.jsonl" <<'PY'
import json
for i in range(64):
    print(json.dumps({"prompt": f"What is {i * 7 % 97} + {i * 13 % 89}? Answer with just the number."}))
PY
gen() { .device/rl generate --model /tmp/smollm2.gguf --file "$out/prompts.jsonl" --chat --device cuda --dtype bf16 --max-new-tokens 48 --quiet "$@"; }
gen --cuda-graphs --out "$out/graphs.jsonl" && gen --out "$out/eager.jsonl"
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
a = [json.loads(l)["token_ids"] for l in open(f"{d}/graphs.jsonl")]
b = [json.loads(l)["token_ids"] for l in open(f"{d}/eager.jsonl")]
print(f"graphs vs eager greedy bf16: {sum(x == y for x, y in zip(a, b))}/{len(a)} identical")
PY

for batch in 256 64; do
  python3 benches/generate_vs_transformers.py --rl-bench .device/generate-bench --device cuda --dtype bf16 \
    --batch "$batch" --prompt 64 --new 256 --reps 3 --graphs 2>&1 | tee -a "$out/bench.txt"
done
python3 benches/generate_vs_transformers.py --rl-bench .device/generate-bench --device cuda --dtype bf16 \
  --batch 256 --prompt 64 --new 256 --reps 3 --skip-transformers 2>&1 | tee -a "$out/bench.txt"

python3 benches/update_vs_torch.py --rl-bench .device/update-bench --device cuda --dtype bf16 \
  --batch 64 --seq 320 --response 256 --micro 16 --reps 3 2>&1 | tee -a "$out/bench.txt"
