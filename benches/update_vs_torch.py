"""Side by side: one GRPO policy update of `rl`'s learner against a plain PyTorch eager loop
doing the same — transformers' Llama of SmolLM2-135M's shape (random weights), full logits,
f32 log-softmax and gather, PPO clipped surrogate on the response tokens, backward with
micro-batch gradient accumulation, torch.optim.AdamW step — same batch, sequence length,
micro-batch size, device and dtype. Prints both, and the speed and memory ratios.

    python benches/update_vs_torch.py --rl-bench <path to the update bench binary> \
        [--batch 64] [--seq 320] [--response 256] [--micro 16] [--dtype bf16] [--reps 3]

The rl binary: `cargo bench -p rl-learner --bench update --no-run` prints its path.
Memory is device memory in use (driver view, `total - free`) after the timed updates minus
before the model was created, measured the same way for both.
"""

import argparse
import json
import statistics
import subprocess
import time

import torch
import transformers

SMOLLM2 = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
               num_attention_heads=9, num_key_value_heads=3, rms_norm_eps=1e-5, rope_theta=100000.0,
               tie_word_embeddings=True)
TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)


def in_use(device):
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return total - free


def torch_update(args, device, dtype, shape):
    torch.manual_seed(0)
    before = in_use(device)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**shape)).to(device=device, dtype=dtype)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    b, t, r = args.batch, args.seq, args.response
    ids = torch.randint(0, shape["vocab_size"], (b, t), device=device)
    mask = torch.zeros(b, t - 1, device=device)
    mask[:, t - 1 - r:] = 1.0
    old = torch.full((b, t - 1), -2.0, device=device)
    rewards = torch.tensor([float(i % 2) for i in range(b)], device=device)
    groups = rewards.view(-1, 8) if b % 8 == 0 else rewards.view(1, -1)
    adv = ((groups - groups.mean(-1, keepdim=True)) / (groups.std(-1, keepdim=True) + 1e-6)).view(-1)
    adv = adv[:, None] * mask
    tokens = mask.sum()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def update():
        opt.zero_grad(set_to_none=True)
        for start in range(0, b, args.micro):
            sl = slice(start, start + args.micro)
            logits = model(ids[sl]).logits[:, :-1].float()
            logp = logits.log_softmax(-1).gather(-1, ids[sl, 1:, None]).squeeze(-1)
            ratio = (logp - old[sl]).exp()
            a = adv[sl]
            loss = -torch.minimum(ratio * a, ratio.clamp(0.8, 1.2) * a)
            ((loss * mask[sl]).sum() / tokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    update()  # warm-up
    times = []
    for _ in range(args.reps):
        sync()
        start = time.perf_counter()
        update()
        sync()
        times.append(time.perf_counter() - start)
    after = in_use(device)
    median = statistics.median(times)
    mem = None if before is None else (after - before) / 2**30
    return {"impl": "pytorch eager", "median_s": median, "tokens_per_s": b * t / median, "device_memory_gib": mem}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rl-bench", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="default: bf16 on cuda, f32 on cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=320)
    p.add_argument("--response", type=int, default=256)
    p.add_argument("--micro", type=int, default=16)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="a tiny model (a smoke run of the script)")
    args = p.parse_args()
    args.dtype = args.dtype or ("bf16" if args.device == "cuda" else "f32")
    device = torch.device(args.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    shape = TINY if args.tiny else SMOLLM2

    cmd = [args.rl_bench, "--bench", "--device", args.device, "--dtype", args.dtype, "--batch", str(args.batch),
           "--seq", str(args.seq), "--response", str(args.response), "--micro", str(args.micro), "--reps", str(args.reps)]
    if args.tiny:
        config = "/tmp/rl-update-tiny.json"
        with open(config, "w") as f:
            json.dump({"model_type": "llama", **shape}, f)
        cmd += ["--config", config]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    theirs = torch_update(args, device, dtype, shape)
    print(f"# {args.device} {args.dtype}, {args.batch} x {args.seq} tokens ({args.response} response), micro-batch {args.micro}")
    for r in (ours, theirs):
        mem = "" if r["device_memory_gib"] is None else f", {r['device_memory_gib']:.2f} GiB"
        print(f"{r['impl']:>14}: {r['tokens_per_s']:10.0f} tokens/s (median {r['median_s']:.3f} s){mem}")
    print(f"speed ratio rl / pytorch: {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f} x")
    if ours["device_memory_gib"] and theirs["device_memory_gib"]:
        print(f"memory ratio rl / pytorch: {ours['device_memory_gib'] / theirs['device_memory_gib']:.2f} x")


if __name__ == "__main__":
    main()
