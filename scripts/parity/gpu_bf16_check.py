"""On a CUDA machine: how far `rl logprobs` in bf16 (and f32) on the GPU is from the f32 CPU
reference of transformers, side by side with transformers' own bf16 on the same GPU.

    python scripts/parity/gpu_bf16_check.py --rl target/release/rl --model SmolLM2.gguf \
        --reference crates/rl-model/tests/fixtures/smollm2/reference.json

transformers reads the model from an HF directory that `rl convert` writes (so the GPU machine
needs no `gguf` package). Prints the max |error| per configuration over the reference texts.
"""

import argparse
import json
import subprocess
import tempfile

import torch
import transformers


def rl_logprobs(rl, model, text, device, dtype):
    out = subprocess.run(
        [rl, "logprobs", "--model", model, "--text", text, "--device", device, "--dtype", dtype],
        check=True, capture_output=True, text=True,
    ).stdout
    return [t["logprob"] for t in json.loads(out)["tokens"][1:]]


def hf_logprobs(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device="cuda")).logits.float()
    logp = logits[0, :-1].log_softmax(-1)
    return logp.gather(-1, torch.tensor(ids[1:], device="cuda")[:, None])[:, 0].tolist()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rl", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--reference", required=True)
    a = p.parse_args()
    ref = json.load(open(a.reference))
    texts = ref["texts"][:3]  # the plain texts (the 4th is chat-rendered)
    rows = []
    for i, text in enumerate(texts):
        ids = [t for t, m in zip(ref["input_ids"][i], ref["attention_mask"][i]) if m]
        want = ref["logprobs"][i][: len(ids) - 1]
        rows.append((text, ids, want))
    worst = {}
    for dtype in ("bf16", "f32"):
        errs = [max(abs(x - y) for x, y in zip(rl_logprobs(a.rl, a.model, t, "cuda", dtype), w)) for t, _, w in rows]
        worst[f"rl {dtype} cuda"] = max(errs)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([a.rl, "--quiet", "convert", a.model, d + "/hf"], check=True)
        for dtype in (torch.bfloat16, torch.float32):
            m = transformers.AutoModelForCausalLM.from_pretrained(d + "/hf", dtype=dtype).cuda().eval()
            errs = [max(abs(x - y) for x, y in zip(hf_logprobs(m, ids), w)) for _, ids, w in rows]
            worst[f"transformers {str(dtype).split('.')[-1]} cuda"] = max(errs)
    print(f"max |logprob error| vs transformers f32 CPU, {len(rows)} texts, {torch.cuda.get_device_name()}:")
    for k, v in worst.items():
        print(f"  {k:<30} {v:.2e}")
    print(json.dumps(worst))


if __name__ == "__main__":
    main()
