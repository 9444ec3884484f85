//! `[algorithm]`: which PPO-family algorithm and its loss hyper-parameters. The math itself lives
//! in `algorithms/`; this is only its configuration.

use serde::{Deserialize, Serialize};

use super::{
    rollout::RolloutConfig,
    validate::{Validator, quoted},
};

crate::choice! {
    /// The algorithm; it decides the defaults of the keys below.
    pub enum AlgorithmName {
        /// PPO with a learned critic and GAE (Schulman et al. 2017).
        Ppo = "ppo",
        /// GRPO: group-normalised rewards, no critic (Shao et al. 2024).
        Grpo = "grpo",
        /// RLOO: leave-one-out baseline (Ahmadian et al. 2024).
        Rloo = "rloo",
        /// REINFORCE++: batch-normalised returns (Hu 2025).
        ReinforcePp = "reinforce_pp",
        /// DAPO: GRPO with decoupled clip and token-level loss (Yu et al. 2025).
        Dapo = "dapo",
    }
}

crate::choice! {
    /// How advantages are estimated (the tensor math is `rl_algorithms::math::advantage`).
    pub enum AdvantageEstimator {
        /// Generalised advantage estimation from a critic.
        Gae = "gae",
        /// Reward minus the group mean, divided by the group std (GRPO).
        GroupNorm = "group_norm",
        /// Reward minus the mean of the other samples of the prompt.
        Rloo = "rloo",
        /// Discounted return normalised over the whole batch.
        ReinforcePp = "reinforce_pp",
        /// REINFORCE++-baseline: the group's mean reward subtracted first, then as
        /// `reinforce_pp` (veRL's `reinforce_plus_plus_baseline`).
        ReinforcePpBaseline = "reinforce_pp_baseline",
    }
}

impl AlgorithmName {
    /// The advantage estimator `name` uses unless `algorithm.advantage` says otherwise.
    pub fn default_advantage(self) -> AdvantageEstimator {
        match self {
            Self::Ppo => AdvantageEstimator::Gae,
            Self::Grpo | Self::Dapo => AdvantageEstimator::GroupNorm,
            Self::Rloo => AdvantageEstimator::Rloo,
            Self::ReinforcePp => AdvantageEstimator::ReinforcePp,
        }
    }
}

impl AdvantageEstimator {
    /// Whether it needs a critic's values.
    pub fn needs_critic(self) -> bool {
        self == Self::Gae
    }

    /// Whether it compares samples of the same prompt (needs `rollout.samples_per_prompt >= 2`).
    pub fn needs_groups(self) -> bool {
        matches!(
            self,
            Self::GroupNorm | Self::Rloo | Self::ReinforcePpBaseline
        )
    }

    /// Whether per-token reward terms (a KL penalty in the reward) enter its advantages. The
    /// group estimators use only the outcome score: their KL term belongs in the loss, as GRPO
    /// puts it.
    pub fn uses_token_rewards(self) -> bool {
        matches!(
            self,
            Self::Gae | Self::ReinforcePp | Self::ReinforcePpBaseline
        )
    }
}

crate::choice! {
    /// Estimator of KL(policy || reference) per token (Schulman, "Approximating KL divergence").
    pub enum KlEstimator {
        /// `log r`.
        K1 = "k1",
        /// `(log r)^2 / 2`.
        K2 = "k2",
        /// `r - 1 - log r`, unbiased and non-negative.
        K3 = "k3",
    }
}

crate::choice! {
    /// How per-token losses are reduced to one number.
    pub enum LossAggregation {
        /// Mean over all valid tokens of the batch.
        TokenMean = "token_mean",
        /// Sum over tokens, mean over sequences.
        SeqMeanTokenSum = "seq_mean_token_sum",
        /// Mean over tokens, then mean over sequences.
        SeqMeanTokenMean = "seq_mean_token_mean",
    }
}

/// `[algorithm]` section. Keys left out take the defaults of `name` (see [`AlgorithmConfig::resolve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlgorithmConfig {
    /// The algorithm.
    pub name: AlgorithmName,
    /// Advantage estimator; default: the algorithm's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advantage: Option<AdvantageEstimator>,
    /// PPO ratio clip ε: ratios outside `[1-ε, 1+ε]` get no gradient.
    pub clip_ratio: f64,
    /// Upper clip ε_high (DAPO "clip-higher"); default: `clip_ratio`, or 0.28 for DAPO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_ratio_high: Option<f64>,
    /// Weight of the KL penalty against the reference model; 0 = no reference model.
    pub kl_coef: f64,
    /// KL estimator.
    pub kl_estimator: KlEstimator,
    /// Weight of the entropy bonus.
    pub entropy_coef: f64,
    /// Discount factor.
    pub gamma: f64,
    /// GAE λ.
    pub lam: f64,
    /// Loss reduction; default: `token_mean`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_agg: Option<LossAggregation>,
    /// Optimisation passes over each batch of experience.
    pub epochs: u32,
    /// Critic value clip (PPO only).
    pub value_clip: f64,
    /// Divide group-relative advantages by the group std (GRPO; Dr. GRPO turns this off).
    pub scale_by_std: bool,
    /// Target KL per token for the adaptive KL coefficient (Ziegler et al. 2019), for the
    /// algorithms with the KL in the reward (PPO, REINFORCE++); 0 = a fixed `kl_coef`.
    pub kl_target: f64,
    /// Horizon of the adaptive KL coefficient, in samples.
    pub kl_horizon: u64,
    /// Dual-clip constant c > 1 bounding the loss of negative-advantage tokens; 0 = off.
    pub dual_clip: f64,
    /// Weight of the critic's value loss (PPO).
    pub vf_coef: f64,
    /// Updates at the start during which only the critic learns (PPO).
    pub critic_warmup: u64,
    /// DAPO's soft overlong punishment (Yu et al. 2025, §3.4): the last this many tokens before
    /// `rollout.max_new_tokens`, over which a response's reward is reduced linearly; 0 = off.
    pub overlong_buffer: u32,
    /// The largest reduction of the overlong punishment, reached at `rollout.max_new_tokens`.
    pub overlong_penalty: f64,
}

impl Default for AlgorithmConfig {
    fn default() -> Self {
        Self {
            name: AlgorithmName::Grpo,
            advantage: None,
            clip_ratio: 0.2,
            clip_ratio_high: None,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            entropy_coef: 0.0,
            gamma: 1.0,
            lam: 0.95,
            loss_agg: None,
            epochs: 1,
            value_clip: 0.2,
            scale_by_std: true,
            kl_target: 0.0,
            kl_horizon: 10_000,
            dual_clip: 0.0,
            vf_coef: 1.0,
            critic_warmup: 0,
            overlong_buffer: 0,
            overlong_penalty: 1.0,
        }
    }
}

impl AlgorithmConfig {
    /// Fills the keys left out with the defaults of `name`.
    pub fn resolve(&mut self) {
        self.advantage.get_or_insert(self.name.default_advantage());
        let high = if self.name == AlgorithmName::Dapo {
            0.28
        } else {
            self.clip_ratio
        };
        self.clip_ratio_high.get_or_insert(high);
        self.loss_agg.get_or_insert(LossAggregation::TokenMean);
    }

    /// The advantage estimator: `algorithm.advantage`, else the algorithm's default.
    pub fn advantage(&self) -> AdvantageEstimator {
        self.advantage
            .unwrap_or_else(|| self.name.default_advantage())
    }

    /// Whether this configuration trains a critic.
    pub fn needs_critic(&self) -> bool {
        self.advantage().needs_critic()
    }

    pub(crate) fn validate(&self, v: &mut Validator, rollout: &RolloutConfig) {
        v.open_range("algorithm.clip_ratio", self.clip_ratio, 0.0, 1.0);
        if let Some(high) = self.clip_ratio_high {
            v.open_range("algorithm.clip_ratio_high", high, 0.0, 1.0);
        }
        v.non_negative("algorithm.kl_coef", self.kl_coef);
        v.non_negative("algorithm.entropy_coef", self.entropy_coef);
        v.closed_range("algorithm.gamma", self.gamma, 0.0, 1.0);
        v.closed_range("algorithm.lam", self.lam, 0.0, 1.0);
        v.at_least_one("algorithm.epochs", self.epochs.into());
        v.positive("algorithm.value_clip", self.value_clip);
        v.non_negative("algorithm.kl_target", self.kl_target);
        v.at_least_one("algorithm.kl_horizon", self.kl_horizon);
        let ok = self.dual_clip == 0.0 || self.dual_clip > 1.0;
        v.require(
            ok,
            "algorithm.dual_clip",
            self.dual_clip,
            "must be 0 (off) or > 1",
        );
        v.non_negative("algorithm.vf_coef", self.vf_coef);
        v.non_negative("algorithm.overlong_penalty", self.overlong_penalty);
        if self.overlong_buffer > 0 {
            self.validate_overlong(v, rollout.max_new_tokens);
        }
        let samples_per_prompt = rollout.samples_per_prompt;
        if let Some(adv) = self.advantage {
            let grouped = adv.needs_groups();
            let rule = format!(
                "algorithm.advantage = \"{adv}\" compares samples of the same prompt: set rollout.samples_per_prompt >= 2"
            );
            v.require(
                !grouped || samples_per_prompt >= 2,
                "rollout.samples_per_prompt",
                samples_per_prompt,
                rule,
            );
            let rule = "GAE needs a critic, which only algorithm.name = \"ppo\" trains";
            v.require(
                adv != AdvantageEstimator::Gae || self.name == AlgorithmName::Ppo,
                "algorithm.advantage",
                quoted(adv.as_str()),
                rule,
            );
        }
    }

    /// The overlong punishment is DAPO's reward shaping (the only algorithm that applies it),
    /// and its interval must fit under the length limit.
    fn validate_overlong(&self, v: &mut Validator, max_new_tokens: u32) {
        let dapo =
            self.name == AlgorithmName::Dapo && self.advantage() == AdvantageEstimator::GroupNorm;
        v.require(
            dapo,
            "algorithm.overlong_buffer",
            self.overlong_buffer,
            "only algorithm.name = \"dapo\" (with its advantage, \"group_norm\") applies the overlong punishment: set algorithm.overlong_buffer = 0 or algorithm.name = \"dapo\"",
        );
        v.require(
            self.overlong_buffer < max_new_tokens,
            "algorithm.overlong_buffer",
            self.overlong_buffer,
            format!(
                "the punished interval ends at rollout.max_new_tokens = {max_new_tokens} and must be shorter: lower algorithm.overlong_buffer or raise rollout.max_new_tokens"
            ),
        );
    }
}
