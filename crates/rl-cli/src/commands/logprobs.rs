//! `rl logprobs --model M --text T | --file F [--chat]`: per-token log-probabilities and
//! entropies of a text under a model, printed as JSON.

use rl_model::{
    device_name,
    tokenizer::{Message, Role},
};
use serde_json::json;
use tch::{Kind, Tensor};

use super::UsageError;
use crate::{cli::LogprobsArgs, console::Console};

/// Runs `rl logprobs`.
pub fn run(args: LogprobsArgs, _console: Console) -> anyhow::Result<()> {
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| UsageError(format!("cannot read --file {}: {e}", f.display())))?,
        (None, None) => {
            return Err(UsageError(
                "give the text to score with --text TEXT or --file FILE".into(),
            )
            .into());
        }
    };
    let (device, kind) = super::placement(&args.placement)?;
    let tokenizer = rl_model::load_tokenizer(&args.model)?;
    let ids = if args.chat {
        tokenizer.encode_chat(
            &[Message {
                role: Role::User,
                content: text.clone(),
            }],
            false,
        )?
    } else {
        tokenizer.encode(&text, true)?.ids
    };
    if ids.len() < 2 {
        let n = ids.len();
        let msg = format!(
            "the text is {n} token(s) long; scoring needs at least 2 (each token is scored given those before it)"
        );
        return Err(UsageError(msg).into());
    }
    let model = rl_model::load(&args.model, device, kind)?;
    let input = Tensor::from_slice(&ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>())
        .unsqueeze(0)
        .to_device(device);
    let mask = input.ones_like();
    let stats = tch::no_grad(|| {
        rl_model::token_logprobs(
            model.model.as_ref(),
            &input,
            &mask,
            1.0,
            true,
            rl_model::logprobs::DEFAULT_CHUNK_TOKENS,
        )
    });
    let to_vec = |t: &Tensor| -> anyhow::Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(
            t.to_kind(Kind::Double)
                .to_device(tch::Device::Cpu)
                .reshape([-1]),
        )?)
    };
    let logprobs = to_vec(&stats.logprobs)?;
    let entropy = stats
        .entropy
        .as_ref()
        .map(to_vec)
        .transpose()?
        .unwrap_or_default();
    let tokens: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let scored = i.checked_sub(1);
            json!({
                "id": id,
                "token": tokenizer.id_to_token(id),
                "text": tokenizer.decode(&[id], false).ok(),
                "logprob": scored.map(|j| logprobs[j]),
                "entropy": scored.map(|j| entropy[j]),
            })
        })
        .collect();
    let total: f64 = logprobs.iter().sum();
    let out = json!({
        "model": args.model,
        "device": device_name(device),
        "dtype": format!("{kind:?}"),
        "chat": args.chat,
        "n_tokens": ids.len(),
        "sum_logprob": total,
        "mean_logprob": total / logprobs.len() as f64,
        "tokens": tokens,
    });
    crate::console::out(serde_json::to_string_pretty(&out)?)
}
