"""The reference computation every parity check compares `rl` against: transformers' per-token
log-probs and entropies of a padded batch, with position ids taken from the attention mask (as rl
does, so left-padded rows score the same)."""

import torch


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """[b, t] attention mask -> [b, t] positions among each row's real tokens (pads: 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def token_stats(model, ids: torch.Tensor, mask: torch.Tensor):
    """(log-probs, entropies, valid), each [b, t-1]: log p(ids[:, i+1] | ids[:, :i+1]) and the
    next-token entropy, 0 where the context or the target token is padding."""
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits.float()
    logp = logits[:, :-1].log_softmax(-1)
    target = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    valid = (mask[:, :-1] * mask[:, 1:]).bool()
    return target.masked_fill(~valid, 0.0), entropy.masked_fill(~valid, 0.0), valid
