//! Scalar heads on a transformer backbone: the critic (a value per token, for GAE) and the reward
//! model (a score at the last real token). Weights follow HF `*ForSequenceClassification` with one
//! label — backbone plus `score.weight` `[1, hidden]`, no bias — so both load and export as
//! transformers expects.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor, nn, nn::VarStore};

use crate::{
    Backbone, ModelError,
    arch::ArchConfig,
    hf::{self, LoadedModel},
};

/// A backbone with a scalar head.
pub struct ScalarModel {
    /// The transformer stack.
    pub backbone: Box<dyn Backbone>,
    /// `[1, hidden]` projection to one number.
    pub score: Tensor,
    /// Its variables.
    pub vs: VarStore,
    /// Architecture config.
    pub config: ArchConfig,
    /// `config.json` (for export).
    pub config_json: serde_json::Value,
    /// Where the backbone came from.
    pub source: PathBuf,
}

impl ScalarModel {
    fn build(
        config: &ArchConfig,
        device: Device,
    ) -> Result<(VarStore, Box<dyn Backbone>, Tensor), ModelError> {
        let vs = VarStore::new(device);
        let root = vs.root();
        let backbone = config
            .build_backbone(&root)
            .map_err(|e| ModelError::Config {
                path: PathBuf::from("config.json"),
                message: format!("{e:?}"),
            })?;
        let stdev = 1.0 / (config.hidden_size() as f64 + 1.0); // OpenRLHF's value-head init
        let score = (&root / "score").var(
            "weight",
            &[1, config.hidden_size()],
            nn::Init::Randn { mean: 0.0, stdev },
        );
        Ok((vs, backbone, score))
    }

    /// A new critic or reward model initialised from `policy`'s backbone, with a fresh head.
    pub fn from_policy(policy: &LoadedModel, device: Device) -> Result<Self, ModelError> {
        let (vs, backbone, score) = Self::build(&policy.config, device)?; // f32: heads train in f32
        let source = policy.vs.variables();
        tch::no_grad(|| -> Result<(), ModelError> {
            for (name, mut var) in vs.variables() {
                if let Some(src) = source.get(&name) {
                    var.f_copy_(src)?;
                }
            }
            Ok(())
        })?;
        Ok(Self {
            backbone,
            score,
            vs,
            config: policy.config.clone(),
            config_json: policy.config_json.clone(),
            source: policy.source.clone(),
        })
    }

    /// Loads an HF sequence-classification directory (one label) onto `device` in `kind`.
    pub fn load_dir(dir: &Path, device: Device, kind: Kind) -> Result<Self, ModelError> {
        let (config, config_json) = hf::read_config(dir)?;
        let (mut vs, backbone, score) = Self::build(&config, device)?;
        hf::load_weights(&vs, dir, config.name())?;
        vs.set_kind(kind);
        Ok(Self {
            backbone,
            score,
            vs,
            config,
            config_json,
            source: dir.to_owned(),
        })
    }

    /// Critic values `[b, t]` f32 for every position (0 at pads).
    pub fn values(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let hidden = self.backbone.hidden_states(input_ids, attention_mask); // [b, t, h]
        let values = hidden
            .matmul(&self.score.tr())
            .squeeze_dim(-1)
            .to_kind(Kind::Float); // [b, t]
        values.masked_fill(&attention_mask.to_kind(Kind::Bool).logical_not(), 0.0)
    }

    /// Reward-model scores `[b]` f32, read at each row's last real token (left or right padding).
    pub fn rewards(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let t = attention_mask.size()[1];
        let index = Tensor::arange(t, (Kind::Int64, attention_mask.device()));
        let last = (attention_mask.to_kind(Kind::Int64) * index).argmax(-1, true); // [b, 1]
        self.values(input_ids, attention_mask)
            .gather(1, &last, false)
            .squeeze_dim(1)
    }
}
