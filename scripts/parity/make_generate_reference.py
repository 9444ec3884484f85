"""Reference greedy completions of SmolLM2-135M-Instruct (the PyPI GGUF, dequantised to f32 by
transformers) for 50 chat prompts, for crates/rl-rollout/tests/smollm2_generate.rs: each
prompt's ids, transformers' greedy `generate` ids (32 new tokens, EOS ignored, one prompt at a
time so no padding enters), and at each step the gap between the two largest logits, which tells
a near-tie from a real disagreement.

    gguf=$(scripts/fetch-model.sh) && scripts/with-torch.sh python scripts/parity/make_generate_reference.py "$gguf"
"""

import json
import pathlib
import sys

import torch
import transformers

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/rl-rollout/tests/fixtures/smollm2_greedy.json"
NEW_TOKENS = 32

QUESTIONS = [f"What is {a} + {b}? Answer with just the number." for a, b in
             [(17, 25), (3, 4), (120, 37), (9, 99), (250, 250), (41, 8), (1000, 1), (63, 29)]]
QUESTIONS += [f"What is {a} times {b}?" for a, b in [(6, 7), (12, 12), (3, 15), (8, 9)]]
QUESTIONS += [
    "Name three primary colours.",
    "Write a haiku about the sea.",
    "What is the capital of France?",
    "Explain what a neural network is in one sentence.",
    "Translate 'good morning' into Spanish.",
    "Give me a synonym for happy.",
    "What is the boiling point of water in Celsius?",
    "Write a Python function that adds two numbers.",
    "List the first five prime numbers.",
    "Who wrote Romeo and Juliet?",
    "What does CPU stand for?",
    "Describe a cat in five words.",
    "How many days are in a leap year?",
    "Suggest a name for a pet goldfish.",
    "What is photosynthesis?",
    "Finish the sentence: The early bird",
    "Is the sun a star?",
    "What colour is the sky on a clear day?",
    "Give one tip for learning a language.",
    "What is 2 to the power of 10?",
    "Spell the word 'necessary' backwards.",
    "What is the largest planet in our solar system?",
    "Write a short greeting for a birthday card.",
    "What is the opposite of cold?",
    "How many legs does a spider have?",
    "Summarise the plot of Cinderella in one sentence.",
    "What is the chemical symbol for gold?",
    "Recommend a book for a long flight.",
    "Why do leaves change colour in autumn?",
    "Convert 5 kilometres to metres.",
    "What is a verb?",
    "Tell me a fun fact about octopuses.",
    "What is the square root of 81?",
    "Write a SQL query that counts rows in a table named users.",
    "In which continent is Kenya?",
    "What is the freezing point of water in Fahrenheit?",
    "Give an example of a mammal that can fly.",
    "What does HTML stand for?",
]
assert len(QUESTIONS) == 50, len(QUESTIONS)


def main(gguf_path: str) -> None:
    path = pathlib.Path(gguf_path)
    tok = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, torch_dtype=torch.float32
    ).eval()
    rows = []
    for q in QUESTIONS:
        text = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS, eos_token_id=None, pad_token_id=0,
                output_scores=True, return_dict_in_generate=True,
            )
        scores = torch.stack(out.scores, 0)[:, 0]  # [steps, vocab]
        top2 = scores.topk(2, -1).values
        rows.append({
            "question": q,
            "prompt_ids": ids[0].tolist(),
            "output_ids": out.sequences[0, ids.shape[1]:].tolist(),
            "top2_gap": [round(v, 5) for v in (top2[:, 0] - top2[:, 1]).tolist()],
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"transformers": transformers.__version__, "new_tokens": NEW_TOKENS, "prompts": rows}))
    print(f"wrote {OUT}: {len(rows)} prompts x {NEW_TOKENS} tokens")


if __name__ == "__main__":
    main(sys.argv[1])
