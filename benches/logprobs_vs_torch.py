"""Side by side: the per-token log-prob pass of `rl` (tch, chunked) against the same computation
written naively in PyTorch eager (full [batch, seq, vocab] f32 log-softmax), same model shape
(SmolLM2-135M by default), same batch, same device and dtype. Prints both and the ratios.

    python benches/logprobs_vs_torch.py --rl-bench <path to the logprobs bench binary> \
        [--batch 64] [--seq 512] [--dtype bf16] [--reps 5]

The rl binary: `cargo bench -p rl-model --bench logprobs --no-run` prints its path.
Memory is device memory in use (driver view, `total - free`) after the run minus before the model
was created: weights + activations + the caching allocator's reserve, measured the same way for both.
"""

import argparse
import json
import math
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F
from torch import nn

SMOLLM2 = dict(vocab=49152, hidden=576, inter=1536, layers=30, heads=9, kv_heads=3, eps=1e-5, theta=100000.0)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, d = c["hidden"], c["hidden"] // c["heads"]
        self.heads, self.kv_heads, self.d = c["heads"], c["kv_heads"], d
        self.q = nn.Linear(h, c["heads"] * d, bias=False)
        self.k = nn.Linear(h, c["kv_heads"] * d, bias=False)
        self.v = nn.Linear(h, c["kv_heads"] * d, bias=False)
        self.o = nn.Linear(c["heads"] * d, h, bias=False)
        self.gate = nn.Linear(h, c["inter"], bias=False)
        self.up = nn.Linear(h, c["inter"], bias=False)
        self.down = nn.Linear(c["inter"], h, bias=False)
        self.n1, self.n2 = RMSNorm(h, c["eps"]), RMSNorm(h, c["eps"])

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        y = self.n1(x)
        q = self.q(y).view(b, t, self.heads, self.d).transpose(1, 2)
        k = self.k(y).view(b, t, self.kv_heads, self.d).transpose(1, 2)
        v = self.v(y).view(b, t, self.kv_heads, self.d).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
        return x + self.down(F.silu(self.gate(self.n2(x))) * self.up(self.n2(x)))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["hidden"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"], c["eps"])
        d = c["hidden"] // c["heads"]
        self.register_buffer("inv_freq", 1.0 / c["theta"] ** (torch.arange(0, d, 2).float() / d), persistent=False)

    def logprobs(self, ids, attn):
        """The naive way: full logits, full f32 log-softmax, then gather."""
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        freqs = pos.float()[..., None] * self.inv_freq
        emb = torch.cat((freqs, freqs), -1)[:, None]
        x = self.embed(ids)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        t = ids.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
        mask = (causal[None] & attn.bool()[:, None, :])[:, None]
        for blk in self.blocks:
            x = blk(x, cos, sin, mask)
        logits = self.norm(x) @ self.embed.weight.T  # [b, t, vocab]
        logp = logits[:, :-1].float().log_softmax(-1)
        return logp.gather(-1, ids[:, 1:, None]).squeeze(-1)


def torch_side(a):
    dtype = {"bf16": torch.bfloat16, "f32": torch.float32}[a.dtype]
    dev = torch.device(a.device)
    torch.zeros(1, device=dev)
    torch.cuda.synchronize()
    before = torch.cuda.mem_get_info()
    model = Model(SMOLLM2).to(dev, dtype).eval()
    ids = torch.randint(0, SMOLLM2["vocab"], (a.batch, a.seq), device=dev)
    attn = torch.ones_like(ids)
    times = []
    with torch.no_grad():
        for rep in range(a.reps + 1):
            torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.logprobs(ids, attn)
            torch.cuda.synchronize()
            if rep:
                times.append(time.perf_counter() - start)
            del out
    after = torch.cuda.mem_get_info()
    med = statistics.median(times)
    return {
        "impl": "PyTorch eager (naive)",
        "median_s": med,
        "tokens_per_s": a.batch * a.seq / med,
        "device_mem_bytes": before[0] - after[0],
        "max_allocated_bytes": torch.cuda.max_memory_allocated(),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rl-bench", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--device", default="cuda")
    a = p.parse_args()
    cmd = [a.rl_bench, "--batch", str(a.batch), "--seq", str(a.seq), "--dtype", a.dtype, "--reps", str(a.reps), "--device", a.device]
    ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    theirs = torch_side(a)
    print(f"log-prob pass, SmolLM2-135M shape, batch {a.batch} x {a.seq} tokens, {a.dtype}, {torch.cuda.get_device_name()}")
    for r in (ours, theirs):
        print(f"  {r['impl']:<24} median {r['median_s'] * 1e3:8.1f} ms  {r['tokens_per_s']:>10.0f} tok/s  device memory {r['device_mem_bytes'] / 2**30:6.2f} GiB")
    print(f"  speed ratio rl/torch  {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x   (target >= 1.0)")
    print(f"  memory ratio rl/torch {ours['device_mem_bytes'] / theirs['device_mem_bytes']:.2f}    (target <= 0.50)")
    print(json.dumps({"rl": ours, "torch": theirs}))


if __name__ == "__main__":
    main()
