"""transformers' side of the BERT encoder and reward-model checks in crates/rl-model/tests/bert_minilm.rs
and tests/heads.rs.

    reward_model_reference.py hidden MODEL_DIR REQUEST.json   # BertModel's last_hidden_state
    reward_model_reference.py scores MODEL_DIR REQUEST.json   # AutoModelForSequenceClassification's scores

REQUEST holds the batch rl built: "input_ids" and "attention_mask" ([b, t]); optionally "texts"
(encoded alone) and "pairs" ([text, text_pair]) for transformers' tokenizer of MODEL_DIR to
encode, so the test can compare token ids. Prints one JSON object: "last_hidden_state"
[b, t, h] or "scores" [b], and "text_ids" / "pair_ids" when asked (f32, CPU, eval mode)."""

import json
import sys

import pathlib

import torch
import transformers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reference import position_ids  # noqa: E402


def main(mode: str, model_dir: str, request_path: str) -> None:
    req = json.load(open(request_path))
    ids = torch.tensor(req["input_ids"])
    mask = torch.tensor(req["attention_mask"])
    out = {}
    with torch.no_grad():
        if mode == "hidden":
            model = transformers.BertModel.from_pretrained(model_dir, dtype=torch.float32).eval()
            out["last_hidden_state"] = model(input_ids=ids, attention_mask=mask).last_hidden_state.tolist()
        elif mode == "scores":
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                model_dir, dtype=torch.float32
            ).eval()
            extra = {} if model.config.model_type == "bert" else {"position_ids": position_ids(mask)}
            out["scores"] = model(input_ids=ids, attention_mask=mask, **extra).logits[:, 0].tolist()
            out["class"] = type(model).__name__
        else:
            sys.exit(f"unknown mode {mode!r}: expected hidden or scores")
    if "texts" in req or "pairs" in req:
        tok = transformers.AutoTokenizer.from_pretrained(model_dir)
        out["text_ids"] = [tok(t)["input_ids"] for t in req.get("texts", [])]
        out["pair_ids"] = [tok(a, b)["input_ids"] for a, b in req.get("pairs", [])]
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
