"""Loads an HF directory written by `rl convert` with transformers and checks its per-token
log-probs against the reference values stored beside the source fixture; where the reference
holds the texts, also that transformers' tokenizer loaded from the export gives the same ids and
that the exported chat template renders. Prints the max error and the tokenizer verdict."""

import json
import pathlib
import sys

import torch
import transformers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts/parity"))
from reference import token_stats  # noqa: E402


def main(model_dir: str, reference_path: str) -> None:
    ref = json.load(open(reference_path))
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    ids = torch.tensor(ref["input_ids"])
    mask = torch.tensor(ref["attention_mask"])
    logp, _, _ = token_stats(model, ids, mask)
    valid = torch.tensor(ref["valid"]).bool()
    err = (logp - torch.tensor(ref["logprobs"])).abs().masked_fill(~valid, 0).max().item()
    result = {"max_abs_err": err}
    if "texts" in ref:
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        rows = [[t for t, m in zip(r, mk) if m] for r, mk in zip(ref["input_ids"], ref["attention_mask"])]
        result["tokenizer_ids_equal"] = all(
            tok(text, add_special_tokens=False)["input_ids"] == row for text, row in zip(ref["texts"], rows)
        )
        chat = tok.apply_chat_template([{"role": "user", "content": ref["texts"][0]}], tokenize=False, add_generation_prompt=True)
        result["chat_equal"] = chat == ref["texts"][-1]
        result["eos_token"] = tok.eos_token
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
