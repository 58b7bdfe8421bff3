//! `compress`: hint-based compression of a frozen teacher into a small
//! student net (the paper's SNet1–3).

/// How it runs (burn).
pub mod run;

use serde::{Deserialize, Serialize};

use super::training::{Net, OPTIMISER_KEYS, RUN_KEYS, TrainConfig, at, grad_clip_in_range};
use super::{
    Artefact, DATA_ROLE, Env, Kind, KindDef, Resolved, Role, StageKind, Upstream, standard,
};
use crate::spec::{SpecError, choice, in_range};

pub struct Compress;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompressConfig {
    /// The student's training after the hint phase.
    #[serde(flatten)]
    pub train: TrainConfig,
    pub hint_epochs: u32,
    pub hint_lr: f64,
    /// Left out of the key when Euclidean, so keys made before it existed hold.
    #[serde(default, skip_serializing_if = "super::training::is_default")]
    pub hint_loss: HintLoss,
    /// The hint phase's gradient clipping; absent = the stage's `grad-clip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint_grad_clip: Option<f64>,
}

/// How the hint phase measures the student's maps against the teacher's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HintLoss {
    /// Caffe's EuclideanLoss, ‖T − S‖² / 2N (the paper's): its scale is the
    /// teacher's activations' squared, so its learning rate depends on the
    /// teacher (1e-5 at 64 px, NaN above 1e-7 at 128 px).
    #[default]
    Euclidean,
    /// ‖T − S‖² / ‖T‖² over the batch: 1 for a student that outputs zeros,
    /// whatever the teacher's scale, so one learning rate serves every
    /// teacher (by default the attribute phase's).
    Relative,
}

/// The hint lr of the Euclidean loss where a spec sets none (the paper's).
const EUCLIDEAN_HINT_LR: f64 = 1e-7;

/// Without a hint phase its settings change nothing, so they are reset to
/// their defaults: students that differ only in them share one cache key.
fn without_hint_phase(c: CompressConfig) -> CompressConfig {
    CompressConfig {
        hint_lr: EUCLIDEAN_HINT_LR,
        hint_loss: HintLoss::default(),
        hint_grad_clip: None,
        ..c
    }
}

impl Kind for Compress {
    type Config = CompressConfig;

    const DEF: KindDef = KindDef {
        name: "compress",
        version: 1,
        backend: true,
        keys: &[
            &["data", "teacher", "net", "width"],
            OPTIMISER_KEYS,
            &["hint-epochs", "hint-lr", "hint-loss", "hint-grad-clip"],
            RUN_KEYS,
        ],
        roles: &[
            DATA_ROLE,
            Role {
                name: "teacher",
                accepts: &[StageKind::TrainFrl, StageKind::Train],
            },
        ],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<CompressConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            let train = t.train(s, Net::Snet3, None)?;
            t.require("teacher", &s.teacher)?;
            let hint_loss = choice(
                s.hint_loss.as_ref(),
                &[
                    ("euclidean", HintLoss::Euclidean),
                    ("relative", HintLoss::Relative),
                ],
                t.ctx,
                &t.key("hint-loss"),
            )?;
            let default_lr = match hint_loss {
                HintLoss::Euclidean => EUCLIDEAN_HINT_LR,
                HintLoss::Relative => train.lr,
            };
            let hint_lr = in_range(
                s.hint_lr.unwrap_or(default_lr),
                t.ctx,
                &t.key("hint-lr"),
                "must be > 0",
                |v| v > 0.0,
            )?;
            let hint_epochs = s.hint_epochs.unwrap_or(train.epochs);
            let hint_grad_clip = s
                .hint_grad_clip
                .map(|v| grad_clip_in_range(v, t.ctx, &t.key("hint-grad-clip")))
                .transpose()?;
            if train.net == Net::Tnet {
                return Err(t.error(
                    &at(t.here, s.net.is_some(), "net"),
                    "the student of `compress` must be `snet1`, `snet2` or `snet3`",
                ));
            }
            let config = CompressConfig {
                train,
                hint_epochs,
                hint_lr,
                hint_loss,
                hint_grad_clip,
            };
            Ok(if hint_epochs == 0 {
                without_hint_phase(config)
            } else {
                config
            })
        })
    }

    /// The student learns the teacher's labels.
    fn artefact(c: &CompressConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(up.model("teacher").map(|(_, _, labels)| Artefact::Model {
            net: c.train.net,
            width: c.train.width,
            labels: labels.clone(),
            mnl: false,
        }))
    }

    fn train(c: &CompressConfig) -> Option<&TrainConfig> {
        Some(&c.train)
    }
}
