"""Side by side: generation throughput of `rl`'s engine against transformers' `generate`, same
model shape (SmolLM2-135M, random weights), same batch, prompt length and number of new tokens,
sampling at temperature 1 with no truncation and EOS ignored (fixed length). Prints both, the
ratio, and `rl`'s mixed-length rate (4 x batch requests of 16..new tokens through batch slots:
continuous batching) as a fraction of its fixed-length rate.

    python benches/generate_vs_transformers.py --rl-bench <path to the generate bench binary> \
        [--device cpu|cuda] [--dtype f32|bf16] [--batch 16] [--prompt 64] [--new 256] [--reps 3]

The rl binary: `cargo bench -p rl-rollout --bench generate --no-run` prints its path.
Tokens/s counts generated tokens only, over the wall time of the whole call (prefill included).
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
               tie_word_embeddings=True, max_position_embeddings=8192)


def transformers_rate(args, device, dtype):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**SMOLLM2)
    model = transformers.LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()
    ids = torch.randint(0, config.vocab_size, (args.batch, args.prompt), device=device)
    kwargs = dict(attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                  max_new_tokens=args.new, min_new_tokens=args.new, pad_token_id=0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        warm = {**kwargs, "attention_mask": kwargs["attention_mask"][:1], "max_new_tokens": 4, "min_new_tokens": 4}
        model.generate(ids[:1], **warm)  # warm-up
        times = []
        for _ in range(args.reps):
            sync()
            start = time.perf_counter()
            out = model.generate(ids, **kwargs)
            sync()
            times.append(time.perf_counter() - start)
    generated = (out.shape[1] - args.prompt) * args.batch
    median = statistics.median(times)
    return {"impl": "transformers " + transformers.__version__, "median_s": median, "tokens": generated,
            "tokens_per_s": generated / median}


def rl_rate(args, mixed):
    cmd = [args.rl_bench, "--bench", "--device", args.device, "--dtype", args.dtype, "--batch", str(args.batch),
           "--prompt", str(args.prompt), "--new", str(args.new), "--reps", str(args.reps)]
    if mixed:
        cmd.append("--mixed")
    if args.graphs:
        cmd.append("--graphs")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rl-bench", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="default: bf16 on cuda, f32 on cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--new", type=int, default=256)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--skip-transformers", action="store_true", help="only rl (e.g. a second batch size)")
    p.add_argument("--graphs", action="store_true", help="rl with CUDA graphs (experimental)")
    p.add_argument("--skip-rl", action="store_true", help="only transformers")
    args = p.parse_args()
    args.dtype = args.dtype or ("bf16" if args.device == "cuda" else "f32")
    device = torch.device(args.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]

    print(f"# {args.device} {args.dtype}, batch {args.batch}, prompt {args.prompt}, new {args.new}, "
          f"torch threads {torch.get_num_threads()}")
    ours = None
    if not args.skip_rl:
        ours = rl_rate(args, mixed=False)
        graphs = " (CUDA graphs)" if ours.get("cuda_graphs") else ""
        print(f"rl fixed:     {ours['tokens_per_s']:10.0f} tokens/s  (median {ours['median_s']:.2f} s){graphs}")
        mixed = rl_rate(args, mixed=True)
        print(f"rl mixed:     {mixed['tokens_per_s']:10.0f} tokens/s  ({mixed['requests']} requests, 16..{args.new} tokens) "
              f"= {mixed['tokens_per_s'] / ours['tokens_per_s']:.2f} x fixed")
    if not args.skip_transformers:
        theirs = transformers_rate(args, device, dtype)
        print(f"{theirs['impl']}: {theirs['tokens_per_s']:10.0f} tokens/s  (median {theirs['median_s']:.2f} s)")
        if ours:
            print(f"ratio rl / transformers: {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f} x")


if __name__ == "__main__":
    main()
