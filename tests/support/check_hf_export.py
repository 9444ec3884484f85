"""Loads an HF directory written by `rl convert` with transformers and checks its per-token
log-probs against the reference values stored beside the source fixture. Prints the max error."""

import json
import sys

import torch
import transformers


def main(model_dir: str, reference_path: str) -> None:
    ref = json.load(open(reference_path))
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    ids = torch.tensor(ref["input_ids"])
    mask = torch.tensor(ref["attention_mask"])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
    logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    valid = torch.tensor(ref["valid"]).bool()
    err = (logp - torch.tensor(ref["logprobs"])).abs().masked_fill(~valid, 0).max().item()
    print(json.dumps({"max_abs_err": err}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
