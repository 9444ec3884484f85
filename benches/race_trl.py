"""The race: TRL's GRPOTrainer and `rl train`, one after the other on this machine, on the same task.

Both train SmolLM2-135M-Instruct (the PyPI-shipped GGUF, f32) with GRPO on two-digit addition:
the same training problems, the same 200 held-out problems, the same prompt and chat template,
the same reward rule, group size, batch, learning rate and completion length, evaluated greedily
every --eval-every steps. Training time excludes evaluation and model loading on both sides.

Prints both accuracy-vs-training-time curves, the time each needs to reach each accuracy and the
ratio, and the median step time of each; writes race.json and race.png (accuracy against training
seconds, one line per system) into --out. On a GPU both sides train in bf16 (rl's dtype "auto").

    benches/race.sh [--steps 30] [--rl-steps N] [--eval-every 5] [--n-eval 200] [--seed 0] [--out DIR] [--only rl|trl]
                    [--preset cpu|gpu] [--png benches/race.png] [--smoke]

`benches/race.sh` installs what it needs and builds `rl`; this script expects both done (the
`rl` binary: --rl-bin, default target/release/rl).
"""

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUESTION = "What is {a} + {b}? Answer with just the number."
# The shared hyperparameters, per machine: `cpu` is the 2-core reference of TRL's run, `gpu` its
# H100 reference (128 completions a step). rl gets them as --set overrides of benches/race.toml.
PRESETS = {
    "cpu": dict(prompts=4, group=8, max_new_tokens=16, lr=2e-5, temperature=1.0),
    "gpu": dict(prompts=16, group=8, max_new_tokens=24, lr=1e-5, temperature=1.0),
}
SETTINGS = dict(PRESETS["cpu"])


# --- The reward rule: a port of rl's final-number extractor (crates/rl-reward/src/verifiers/
# extract.rs), so that both systems score a reply the same way. The first rule that finds a
# number wins: the last number in the last <answer>…</answer>, the last number in the last
# \boxed{…}, the first number after the last "answer is/answer:/answer =", the last number.
NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d+(?:\.\d+)?(?:/\d+)?")
PHRASE = re.compile(r"answer[\s*]*(?:is|:|=)", re.IGNORECASE)


def numbers(text):
    return [Fraction(m.replace(",", "")) for m in NUMBER.findall(text)]


def final_number(text):
    tagged = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    phrases = list(PHRASE.finditer(text))
    for candidates, pick in (
        (numbers(tagged[-1]) if tagged else [], -1),
        (numbers(boxed[-1]) if boxed else [], -1),
        (numbers(text[phrases[-1].end():]) if phrases else [], 0),
        (numbers(text), -1),
    ):
        if candidates:
            return candidates[pick]
    return None


def correct(reply, answer):
    return final_number(reply) == Fraction(answer)


# --- The data, drawn once for both systems (the seeds of ../shared/reference/trl_arith.py).
def problems(n_eval):
    rng = random.Random(0)
    train = [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(20000)]
    erng = random.Random(1234)
    held_out = [(erng.randint(10, 99), erng.randint(10, 99)) for _ in range(n_eval)]
    return train, held_out


def write_jsonl(path, pairs):
    with open(path, "w") as f:
        for a, b in pairs:
            f.write(json.dumps({"prompt": QUESTION.format(a=a, b=b), "answer": str(a + b)}) + "\n")


# --- TRL, in its own process (--trl-worker): one marked JSON line per evaluation on stdout (TRL
# prints its own dicts there too).
MARK = "RACE "


def report(record):
    print(MARK + json.dumps(record), flush=True)
    if "accuracy" in record:  # progress for the person waiting, on stderr
        print(f"trl: step {record['step']}, {record['train_s']:.0f} s of training, "
              f"held-out accuracy {100 * record['accuracy']:.1f}%", file=sys.stderr, flush=True)


def trl_worker(args):
    import datasets
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()

    torch.manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    train, held_out = problems(args.n_eval)
    folder, name = os.path.split(args.gguf)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # GRPOTrainer refuses a model that says it is quantized; the GGUF was dequantized on load.
    model.config.quantization_config = None
    model.hf_quantizer = None
    plain = tempfile.mkdtemp(prefix="race-trl-")
    model.save_pretrained(plain)
    # transformers' GGUF reader takes <|im_start|> for the end token; the chat template ends a
    # reply with <|im_end|> (id 2), where rl stops too. Without this TRL samples past the reply.
    tok.eos_token = tok.pad_token = "<|im_end|>"
    tok.save_pretrained(plain)
    del model

    def chat(a, b):
        return [{"role": "user", "content": QUESTION.format(a=a, b=b)}]

    data = Dataset.from_dict({"prompt": [chat(a, b) for a, b in train], "answer": [str(a + b) for a, b in train]})

    def reward(completions, answer, **_):
        return [1.0 if correct(c[-1]["content"], ans) else 0.0 for c, ans in zip(completions, answer)]

    etok = AutoTokenizer.from_pretrained(plain)
    etok.padding_side = "left"
    texts = [etok.apply_chat_template(chat(a, b), add_generation_prompt=True, tokenize=False) for a, b in held_out]

    def evaluate(model):
        model.eval()
        right = 0
        with torch.no_grad():
            for i in range(0, len(texts), 100):
                enc = etok(texts[i:i + 100], return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
                out = model.generate(**enc, max_new_tokens=SETTINGS["max_new_tokens"], do_sample=False,
                                     pad_token_id=etok.pad_token_id, eos_token_id=etok.eos_token_id)
                for j, seq in enumerate(out[:, enc["input_ids"].shape[1]:]):
                    a, b = held_out[i + j]
                    right += correct(etok.decode(seq, skip_special_tokens=True), a + b)
        model.train()
        return right / len(texts)

    clock = {"start": None, "eval": 0.0, "last": None, "steps": []}

    def emit(step, acc):
        report({"step": step, "train_s": round(time.time() - clock["start"] - clock["eval"], 2), "accuracy": acc})

    class Timing(TrainerCallback):
        def on_train_begin(self, *_, **__):
            clock["start"] = clock["last"] = time.time()

        def on_step_end(self, _args, state, _control, model=None, **_):
            now = time.time()
            clock["steps"].append(now - clock["last"])
            if state.global_step % args.eval_every == 0 or state.global_step == args.steps:
                t = time.time()
                acc = evaluate(model)
                clock["eval"] += time.time() - t
                emit(state.global_step, acc)
            clock["last"] = time.time()

    config = GRPOConfig(
        output_dir=os.path.join(plain, "out"), per_device_train_batch_size=SETTINGS["prompts"] * SETTINGS["group"],
        num_generations=SETTINGS["group"], max_completion_length=SETTINGS["max_new_tokens"],
        max_steps=args.steps, learning_rate=SETTINGS["lr"], lr_scheduler_type="constant", warmup_steps=0,
        temperature=SETTINGS["temperature"], beta=0.0, use_cpu=not cuda, bf16=cuda, save_strategy="no",
        report_to=[], logging_steps=10**9, seed=args.seed, disable_tqdm=True,
        # TRL checkpoints activations by default; rl does not, and recomputing would only slow TRL.
        gradient_checkpointing=False,
    )
    trainer = GRPOTrainer(model=plain, reward_funcs=reward, args=config, train_dataset=data, processing_class=tok)
    trainer.add_callback(Timing())
    report({"step": 0, "train_s": 0.0, "accuracy": evaluate(trainer.model)})
    trainer.train()
    report({"step_times": clock["steps"]})
    shutil.rmtree(plain, ignore_errors=True)


def run_trl(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--trl-worker", "--gguf", args.gguf, "--steps", str(args.steps),
           "--eval-every", str(args.eval_every), "--n-eval", str(args.n_eval), "--preset", args.preset,
           "--seed", str(args.seed)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [json.loads(l[len(MARK):]) for l in proc.stdout.splitlines() if l.startswith(MARK)]
    if proc.returncode != 0:
        sys.exit(f"race: the TRL half failed (exit {proc.returncode}); its errors are above")
    curve = [(l["step"], l["train_s"], l["accuracy"]) for l in lines if "accuracy" in l]
    steps = next((l["step_times"] for l in lines if "step_times" in l), [])
    return {"curve": curve, "step_times": steps}


# --- rl, through its CLI as a user runs it.
def run_rl(args, data, out):
    run_dir = os.path.join(out, "rl")
    cmd = [args.rl_bin, "train", os.path.join(ROOT, "benches/race.toml"), "--run-dir", run_dir,
           "--set", f"model.path=\"{args.gguf}\"",
           "--set", f"env.path=\"{data['train']}\"", "--set", f"env.eval_path=\"{data['eval']}\"",
           "--set", f"run.steps={args.rl_steps}", "--set", f"run.seed={args.seed}",
           "--set", f"eval.every={args.eval_every}",
           "--set", f"eval.tasks={args.n_eval}",
           "--set", f"rollout.prompts_per_step={SETTINGS['prompts']}",
           "--set", f"rollout.samples_per_prompt={SETTINGS['group']}",
           "--set", f"rollout.max_new_tokens={SETTINGS['max_new_tokens']}",
           "--set", f"rollout.temperature={SETTINGS['temperature']}",
           "--set", f"learner.lr={SETTINGS['lr']}",
           "--set", f"learner.mini_batch_size={SETTINGS['prompts'] * SETTINGS['group']}",
           "--set", f"learner.micro_batch_size={SETTINGS['prompts'] * SETTINGS['group']}"]
    if subprocess.run(cmd).returncode != 0:
        sys.exit("race: the rl half failed; its errors are above")
    curve, steps, train_s = [], [], 0.0
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if "timing_s/step" in m:
                train_s += m["timing_s/step"]
                steps.append(m["timing_s/step"])
            if "eval/accuracy" in m:
                curve.append((m["step"], round(train_s, 2), m["eval/accuracy"]))
    return {"curve": curve, "step_times": steps}


def first_reach(curve, level):
    return next((t for _, t, acc in curve if acc >= level), None)


def summarize(results):
    """Times to reach each level both systems reach, and the ratios."""
    rl, trl = results.get("rl"), results.get("trl")
    out = {"median_step_s": {k: statistics.median(v["step_times"]) for k, v in results.items() if v["step_times"]}}
    if rl and trl:
        best = min(max(a for *_, a in rl["curve"]), max(a for *_, a in trl["curve"]))
        levels = sorted({0.5, 0.6, best})
        out["reach"] = []
        for level in levels:
            t_rl, t_trl = first_reach(rl["curve"], level), first_reach(trl["curve"], level)
            ratio = t_trl / t_rl if t_rl and t_trl else None
            out["reach"].append({"accuracy": level, "rl_s": t_rl, "trl_s": t_trl, "trl_over_rl": ratio})
    return out


def draw(runs, path, title):
    """Accuracy against training seconds: one line per system and seed, a system's seeds in one colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    markers = "os^Dv<>"
    for i, (seed, run) in enumerate(runs.items()):
        for name, color in (("rl", "tab:orange"), ("trl", "tab:blue")):
            if name in run["results"]:
                _, t, acc = zip(*run["results"][name]["curve"])
                label = "rl" if name == "rl" else "TRL GRPOTrainer"
                if len(runs) > 1:
                    label += f", seed {seed}"
                ax.plot(t, [100 * a for a in acc], marker=markers[i % len(markers)], color=color, label=label,
                        alpha=1.0 if len(runs) == 1 else 0.75, markersize=4)
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel("held-out greedy accuracy, %")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def versions():
    out = {"python": platform.python_version()}
    for mod in ("torch", "transformers", "trl"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def gpu():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rl-steps", type=int, help="steps of rl (default: --steps); more steps give rl the "
                   "training time TRL's --steps take, so both curves span the same time")
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="one race per seed, each seeding both "
                   "systems' sampling and shuffling (TRL's GRPOConfig.seed, rl's run.seed; the problems stay the "
                   "same); with several, the times to each accuracy are also given as medians over the seeds")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--n-eval", type=int, default=200)
    p.add_argument("--out", default=os.path.join("runs", time.strftime("race-%Y%m%d-%H%M%S", time.gmtime())))
    p.add_argument("--only", choices=["rl", "trl"])
    p.add_argument("--png", help="also copy the picture here (the README shows benches/race.png)")
    p.add_argument("--smoke", action="store_true", help="2 steps, eval every step on 20 problems: a quick check")
    p.add_argument("--rl-bin", default=os.environ.get("RL_BIN", os.path.join(ROOT, "target/release/rl")))
    p.add_argument("--gguf", default=os.environ.get("RL_SMOLLM2_GGUF"))
    p.add_argument("--preset", choices=sorted(PRESETS), default="gpu" if gpu() else "cpu",
                   help="shared hyperparameters (default: gpu when CUDA is available)")
    p.add_argument("--trl-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    SETTINGS.update(PRESETS[args.preset])
    if args.smoke:
        args.steps, args.eval_every, args.n_eval, args.rl_steps = 2, 1, 20, None
    args.rl_steps = args.rl_steps or args.steps
    if not args.gguf:
        fetch = subprocess.run([os.path.join(ROOT, "scripts/fetch-model.sh")], stdout=subprocess.PIPE, text=True)
        args.gguf = fetch.stdout.strip()
    if not args.gguf or not os.path.exists(args.gguf):
        sys.exit("race: no SmolLM2 GGUF: pass --gguf or set RL_SMOLLM2_GGUF (scripts/fetch-model.sh fetches it)")
    if args.trl_worker:
        return trl_worker(args)
    if args.only != "trl" and not os.access(args.rl_bin, os.X_OK):
        sys.exit(f"race: no rl binary at {args.rl_bin}: run `make build` or pass --rl-bin")

    os.makedirs(args.out, exist_ok=True)
    train, held_out = problems(args.n_eval)
    data = {"train": os.path.abspath(os.path.join(args.out, "train.jsonl")),
            "eval": os.path.abspath(os.path.join(args.out, "eval.jsonl"))}
    write_jsonl(data["train"], train)
    write_jsonl(data["eval"], held_out)
    machine = f"{cpu_name()}, {os.cpu_count()} cores"
    if gpu():
        import torch
        machine += f", {torch.cuda.get_device_name(0)}"
    header = {"machine": machine, **versions(), **SETTINGS, "steps": args.steps, "rl_steps": args.rl_steps,
              "eval_every": args.eval_every, "held_out": args.n_eval, "seeds": args.seeds}
    print("# race: " + ", ".join(f"{k}={v}" for k, v in header.items()), flush=True)
    print("# both: GRPO, group-normalised advantages (std-scaled), token-mean loss, clip 0.2, no KL, "
          "AdamW (0.9, 0.999, eps 1e-8, no weight decay), grad-norm clip 1.0, constant lr", flush=True)
    print("# not matched: each system orders the training problems and samples with its own random "
          "streams; the group std gets +1e-4 in TRL, +1e-6 in rl; rl's old log-probs are its sampler's "
          "(ratio ~1), TRL's its own (ratio 1); TRL evaluates in left-padded batches of 100", flush=True)

    runs = {}
    for seed in args.seeds:
        args.seed = seed
        runs[seed] = race(args, data, os.path.join(args.out, f"seed-{seed}") if len(args.seeds) > 1 else args.out)
    overall = over_seeds(runs) if len(runs) > 1 else None
    if overall:
        print(f"\nover seeds {', '.join(map(str, runs))} (median time to reach; not reached counts as never):")
        for r in overall:
            print(f"reach {100 * r['accuracy']:.1f}%: rl {fmt(r['rl_s'])}, TRL {fmt(r['trl_s'])}{ratio(r)}")

    with open(os.path.join(args.out, "race.json"), "w") as f:
        json.dump({"settings": header, "runs": runs, "over_seeds": overall}, f, indent=1)
    png = os.path.join(args.out, "race.png")
    title = (f"GRPO, SmolLM2-135M-Instruct, 2-digit addition: {SETTINGS['prompts']}x{SETTINGS['group']} samples/step, "
             f"{SETTINGS['max_new_tokens']} tokens, lr {SETTINGS['lr']:g}\n{header['machine']}")
    draw(runs, png, title)
    if args.png:
        shutil.copyfile(png, args.png)
    print(f"\nwrote {args.out}/race.json and {png}" + (f" (and {args.png})" if args.png else ""))


def fmt(t):
    return "not reached" if t is None else f"{t:.0f} s"


def ratio(r):
    return "" if r["trl_over_rl"] is None else f"  ratio TRL / rl: {r['trl_over_rl']:.2f} x"


def race(args, data, out):
    """One race at args.seed: TRL then rl, their curves and the summary printed; the results."""
    os.makedirs(out, exist_ok=True)
    print(f"\n# seed {args.seed}", flush=True)
    results = {}
    if args.only != "rl":
        print("# TRL GRPOTrainer ...", flush=True)
        results["trl"] = run_trl(args)
    if args.only != "trl":
        print("# rl train benches/race.toml ...", flush=True)
        results["rl"] = run_rl(args, data, out)

    for name, r in results.items():
        print(f"\n{name} (seed {args.seed}): step  train_s  accuracy")
        for step, t, acc in r["curve"]:
            print(f"{'':>{len(name) + 9 + len(str(args.seed))}}  {step:4d}  {t:7.1f}  {100 * acc:6.1f}%")
    summary = summarize(results)
    print()
    for name, med in summary["median_step_s"].items():
        print(f"median step, {name}: {med:.2f} s")
    if "rl" in summary["median_step_s"] and "trl" in summary["median_step_s"]:
        print(f"step time ratio TRL / rl: {summary['median_step_s']['trl'] / summary['median_step_s']['rl']:.2f} x")
    for r in summary.get("reach", []):
        print(f"reach {100 * r['accuracy']:.1f}%: rl {fmt(r['rl_s'])}, TRL {fmt(r['trl_s'])}{ratio(r)}")
    return {"results": results, "summary": summary}


def over_seeds(runs):
    """Median over the seeds of each system's time to reach 50%, 60% and 65% (a seed that never
    reaches a level counts as infinitely late), and their ratio."""
    both = [r["results"] for r in runs.values() if "rl" in r["results"] and "trl" in r["results"]]
    if not both:
        return None
    out = []
    for level in (0.5, 0.6, 0.65):
        times = {k: [first_reach(r[k]["curve"], level) for r in both] for k in ("rl", "trl")}
        med = {k: statistics.median(float("inf") if t is None else t for t in v) for k, v in times.items()}
        med = {k: None if v == float("inf") else v for k, v in med.items()}
        out.append({"accuracy": level, "rl_s": med["rl"], "trl_s": med["trl"],
                    "trl_over_rl": med["trl"] / med["rl"] if med["rl"] and med["trl"] else None,
                    "per_seed": times})
    return out


if __name__ == "__main__":
    main()
