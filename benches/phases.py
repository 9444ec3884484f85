"""Where a training step's time goes: runs `rl train` for a few steps (no evaluation, no
checkpoints) once per binary given, and prints the median time of each phase after the first
(warm-up) step, side by side. Compares builds of `rl` before and after a change on one machine.

    python benches/phases.py [--config configs/grpo.toml] [--steps 5] BIN[:LABEL] ... [-- --set KEY=VALUE ...]

Each BIN may carry extra `--set` overrides after a `+`: `target/release/rl+learner.shared_prefix=false`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

PHASES = ["gen", "gen_wait", "reward", "ref", "values", "update", "sync", "step"]


def measure(binary, overrides, config, steps, extra):
    with tempfile.TemporaryDirectory() as run:
        cmd = [binary, "train", config, "--run-dir", run, "-q", "--set", f"run.steps={steps}",
               "--set", "eval.every=0", "--set", "eval.tasks=1", "--set", "checkpoint.every=0"]
        for o in overrides:
            cmd += ["--set", o]
        cmd += extra
        subprocess.run(cmd, check=True)
        lines = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    steps = [l for l in lines if "timing_s/step" in l][1:]
    return {p: statistics.median(l.get(f"timing_s/{p}", 0.0) for l in steps) for p in PHASES}


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/grpo.toml")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("builds", nargs="+", help="BIN[+KEY=VALUE...][:LABEL]")
    args = p.parse_args(argv)
    rows = []
    for build in args.builds:
        spec, _, label = build.partition(":")
        binary, *overrides = spec.split("+")
        rows.append((label or spec, measure(binary, overrides, args.config, args.steps, extra)))
    print(f"# median seconds per phase, steps 2..{args.steps} of {args.config} {' '.join(extra)}")
    print("| build | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for label, times in rows:
        print(f"| {label} | " + " | ".join(f"{times[p]:.2f}" for p in PHASES) + " |")


if __name__ == "__main__":
    main()
