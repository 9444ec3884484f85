//! The [`Algorithm`] trait: how a scored rollout batch becomes advantages (once per batch) and a
//! differentiable loss (once per micro-batch). The PPO family implements it in this crate, one
//! file each, over the pure functions of [`crate::math`]; users add their own algorithms the same
//! way.

use tch::Tensor;

/// Why an algorithm could not produce targets or a loss.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{algorithm}: {message}")]
pub struct AlgorithmError {
    /// The algorithm's name.
    pub algorithm: String,
    /// What is wrong with the batch and how to fix it.
    pub message: String,
}

/// The models an algorithm needs besides the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// A frozen reference policy (KL penalty or loss).
    pub reference: bool,
    /// A critic (value model).
    pub critic: bool,
}

/// A scored rollout batch on the learner's device. Sequence tensors are `[b, t]` (prompt and
/// response, right-padded); per-token tensors are `[b, n]` with `n = t - 1`, position `i` being
/// the prediction of token `i + 1`, so they line up with the policy's log-probs.
#[derive(Debug)]
pub struct Experience {
    /// `[b, t]` i64 token ids.
    pub input_ids: Tensor,
    /// `[b, t]` i64, 1 = token, 0 = padding.
    pub attention_mask: Tensor,
    /// `[b, n]` f32, 1 where the predicted token is a response token the loss trains on.
    pub mask: Tensor,
    /// `[b, n]` f32 log-probs of the tokens under the policy that sampled them.
    pub old_logprobs: Tensor,
    /// `[b, n]` f32 log-probs under the reference policy, when [`Needs::reference`].
    pub ref_logprobs: Option<Tensor>,
    /// `[b, n]` f32 critic values, when [`Needs::critic`].
    pub values: Option<Tensor>,
    /// `[b]` f32 outcome reward of each sequence.
    pub rewards: Tensor,
    /// `[b]` i64 group id: sequences sampled from the same prompt share one.
    pub groups: Tensor,
    /// `[b, n]` f32 importance weights of samples drawn by a stale policy (asynchronous
    /// rollouts, [`crate::math::importance`]): each token's policy-gradient term is multiplied
    /// by its weight. None = on-policy samples, weight 1.
    pub is_weights: Option<Tensor>,
}

/// What an algorithm derives from a batch before the update.
#[derive(Debug)]
pub struct Targets {
    /// `[b, n]` f32 advantage of each token (0 outside the mask).
    pub advantages: Tensor,
    /// `[b, n]` f32 critic targets, for algorithms with a critic.
    pub returns: Option<Tensor>,
    /// `[b]` bool, the sequences to train on (DAPO drops groups whose rewards are all equal);
    /// None = all.
    pub keep: Option<Tensor>,
    /// Batch-level metrics, veRL-style names (`critic/advantages/mean`, ...).
    pub metrics: Vec<(String, f64)>,
}

/// One micro-batch as the loss sees it: rows of the [`Experience`] and [`Targets`], and the
/// current model's outputs for them (differentiable).
#[derive(Debug)]
pub struct LossInputs<'a> {
    /// `[m, n]` current log-probs of the sampled tokens.
    pub logprobs: &'a Tensor,
    /// `[m, n]` current entropy of the policy at each position, when asked for.
    pub entropy: Option<&'a Tensor>,
    /// `[m, n]` current critic values.
    pub values: Option<&'a Tensor>,
    /// `[m, n]` rollout log-probs.
    pub old_logprobs: &'a Tensor,
    /// `[m, n]` importance weights of stale samples ([`Experience::is_weights`]).
    pub is_weights: Option<&'a Tensor>,
    /// `[m, n]` reference log-probs.
    pub ref_logprobs: Option<&'a Tensor>,
    /// `[m, n]` critic values at rollout time.
    pub old_values: Option<&'a Tensor>,
    /// `[m, n]` advantages.
    pub advantages: &'a Tensor,
    /// `[m, n]` critic targets.
    pub returns: Option<&'a Tensor>,
    /// `[m, n]` response-token mask.
    pub mask: &'a Tensor,
    /// Response tokens and sequences in the whole mini-batch this micro-batch belongs to: a
    /// loss normalised by these sums to the mini-batch loss over its micro-batches, exactly.
    pub minibatch_tokens: f64,
    /// Sequences in the mini-batch.
    pub minibatch_sequences: f64,
}

/// A micro-batch's loss and what to log about it.
#[derive(Debug)]
pub struct Loss {
    /// Scalar to back-propagate (already scaled for gradient accumulation).
    pub loss: Tensor,
    /// Metrics, veRL-style names (`actor/pg_loss`, `actor/pg_clipfrac`, `actor/ppo_kl`, ...),
    /// as this micro-batch's share of the mini-batch value (they are summed over micro-batches).
    pub metrics: Vec<(String, f64)>,
}

/// An RL algorithm: targets from a scored batch, then a loss per micro-batch.
///
/// A user-defined algorithm, in the user's own crate — REINFORCE with the batch-mean baseline:
///
/// ```
/// use rl_algorithms::{Algorithm, AlgorithmError, Experience, Loss, LossInputs, Needs, Targets};
/// use tch::{Kind, Tensor};
///
/// struct Reinforce;
///
/// impl Algorithm for Reinforce {
///     fn name(&self) -> &str {
///         "reinforce"
///     }
///
///     fn needs(&self) -> Needs {
///         Needs::default()
///     }
///
///     fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError> {
///         let centred = &batch.rewards - batch.rewards.mean(Kind::Float);
///         Ok(Targets {
///             advantages: centred.unsqueeze(1) * &batch.mask,
///             returns: None,
///             keep: None,
///             metrics: vec![],
///         })
///     }
///
///     fn loss(&self, x: &LossInputs<'_>) -> Result<Loss, AlgorithmError> {
///         let loss = -(x.logprobs * x.advantages * x.mask).sum(Kind::Float) / x.minibatch_tokens;
///         let value = loss.double_value(&[]);
///         Ok(Loss { loss, metrics: vec![("actor/pg_loss".into(), value)] })
///     }
/// }
///
/// // Two sequences of three tokens (the first is the prompt), rewards 1 and 0.
/// let mask = Tensor::from_slice(&[1f32, 1., 1., 1.]).view([2, 2]);
/// let batch = Experience {
///     input_ids: Tensor::from_slice(&[5i64, 6, 7, 5, 8, 9]).view([2, 3]),
///     attention_mask: Tensor::ones([2, 3], (Kind::Int64, tch::Device::Cpu)),
///     mask: mask.shallow_clone(),
///     old_logprobs: Tensor::full([2, 2], -1.0, (Kind::Float, tch::Device::Cpu)),
///     ref_logprobs: None,
///     values: None,
///     rewards: Tensor::from_slice(&[1f32, 0.]),
///     groups: Tensor::from_slice(&[0i64, 0]),
///     is_weights: None,
/// };
/// let mut algo = Reinforce;
/// let targets = algo.targets(&batch).unwrap();
/// assert_eq!(targets.advantages.double_value(&[0, 0]), 0.5);
/// assert_eq!(targets.advantages.double_value(&[1, 1]), -0.5);
/// ```
pub trait Algorithm: Send {
    /// Name used in configs and metrics.
    fn name(&self) -> &str;

    /// The models it needs besides the policy.
    fn needs(&self) -> Needs;

    /// Advantages (and critic targets) for a whole batch; may update internal state such as an
    /// adaptive KL coefficient.
    fn targets(&mut self, batch: &Experience) -> Result<Targets, AlgorithmError>;

    /// The loss of one micro-batch.
    fn loss(&self, inputs: &LossInputs<'_>) -> Result<Loss, AlgorithmError>;

    /// Whether a sequence whose advantages are all zero adds nothing to the gradient of
    /// [`loss`](Self::loss): true for a policy-gradient term alone (no KL to a reference, no
    /// entropy bonus), since `−A · f(ratio)` is then 0 whatever the ratio. The learner leaves
    /// such sequences out of the forward and backward passes while still counting them in the
    /// normalisers, so the update is the same, only cheaper. Default: false, every sequence runs.
    fn zero_advantage_is_inert(&self) -> bool {
        false
    }

    /// What [`targets`](Self::targets) has changed so far (an adaptive KL coefficient, a count
    /// of updates), for a checkpoint; Null for an algorithm without such state. Numbers are
    /// stored as they are, so they survive JSON text exactly (with serde_json's
    /// `float_roundtrip`).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores [`state`](Self::state) into an algorithm built from the same configuration, so
    /// that a resumed run computes what an uninterrupted one would. A state that does not fit
    /// is an error and changes nothing.
    fn load_state(&mut self, _state: &serde_json::Value) -> Result<(), AlgorithmError> {
        Ok(())
    }
}
