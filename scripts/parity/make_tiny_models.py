"""Creates the tiny random checkpoints the rl-model tests load, and the reference per-token
log-probs and entropies transformers computes for them (f32, CPU).

Run on purpose when the fixtures need to change (CI runs the Rust side against what is stored):
    scripts/with-torch.sh python scripts/parity/make_tiny_models.py
Writes crates/rl-model/tests/fixtures/models/<name>/{config.json, model.safetensors, reference.json}.
"""

import json
import pathlib

import torch
import transformers
from reference import position_ids, token_stats

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/rl-model/tests/fixtures/models"
VOCAB = 128

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
)

MODELS = {
    "tiny-llama": transformers.LlamaConfig(**COMMON, tie_word_embeddings=False),
    "tiny-llama3-rope": transformers.LlamaConfig(
        **COMMON,
        tie_word_embeddings=True,
        rope_theta=500000.0,
        rope_scaling=dict(
            rope_type="llama3",
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=16,
        ),
    ),
    "tiny-qwen2": transformers.Qwen2Config(**COMMON, tie_word_embeddings=False),
    "tiny-mistral": transformers.MistralConfig(**COMMON, tie_word_embeddings=False, sliding_window=8),
    "tiny-gpt2": transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4),
}


def batch(seed: int):
    """Three rows of 40 tokens: full, right-padded, left-padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (3, 40), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 29:] = 0
    mask[2, :7] = 0
    ids = ids * mask  # pad id 0 where masked
    return ids, mask


def reward_model() -> None:
    """A one-label sequence classifier (reward model / critic layout): per-token values and the
    score at each row's last real token. Real tokens avoid the pad id, as transformers finds the
    last token by comparing with it."""
    config = transformers.LlamaConfig(**COMMON, tie_word_embeddings=False, num_labels=1, pad_token_id=0)
    torch.manual_seed(3000)
    model = transformers.AutoModelForSequenceClassification.from_config(config, torch_dtype=torch.float32).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            p.uniform_(0.5, 1.5) if "norm" in pname else p.normal_(0.0, 0.25 if p.dim() > 1 else 0.1)
    out = OUT / "tiny-llama-rm"
    model.save_pretrained(out, safe_serialization=True)
    ids, mask = batch(4000)
    ids = torch.where(mask.bool(), ids.clamp(min=1), torch.zeros_like(ids))
    positions = position_ids(mask)
    with torch.no_grad():
        rewards = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, 0]
        hidden = model.model(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        values = model.score(hidden)[..., 0].masked_fill(~mask.bool(), 0.0)
    (out / "reference.json").write_text(
        json.dumps(
            {
                "transformers": transformers.__version__,
                "input_ids": ids.tolist(),
                "attention_mask": mask.tolist(),
                "values": values.tolist(),
                "rewards": rewards.tolist(),
            }
        )
    )
    (out / "generation_config.json").unlink(missing_ok=True)
    print(f"tiny-llama-rm -> {out}")


def main() -> None:
    for i, (name, config) in enumerate(MODELS.items()):
        torch.manual_seed(1000 + i)
        model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        model.eval()
        # Default init (std 0.02) gives near-uniform outputs that would hide errors; use weights
        # large enough that attention, RoPE and every layer visibly shape the log-probs.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname or ".ln_" in pname:
                    p.uniform_(0.5, 1.5)
                else:
                    p.normal_(0.0, 0.25 if p.dim() > 1 else 0.1)
        out = OUT / name
        model.save_pretrained(out, safe_serialization=True)
        ids, mask = batch(2000 + i)
        logprobs, entropy, valid = token_stats(model, ids, mask)
        (out / "reference.json").write_text(
            json.dumps(
                {
                    "transformers": transformers.__version__,
                    "input_ids": ids.tolist(),
                    "attention_mask": mask.tolist(),
                    "valid": valid.int().tolist(),
                    "logprobs": logprobs.tolist(),
                    "entropy": entropy.tolist(),
                }
            )
        )
        (out / "generation_config.json").unlink(missing_ok=True)
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {out}")


if __name__ == "__main__":
    main()
    reward_model()
