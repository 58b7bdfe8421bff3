//! What the training kinds share: [`TrainConfig`], the hyperparameters
//! with `[train]`'s defaults, and how a stage's keys resolve into it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::spec::locate::Seg;
use crate::spec::schema::{RawStage, RawTrain};
use crate::spec::{Ctx, SpecError, backticked, choice, in_range, key, positive};
pub use crate::vocab::Net;

/// Keys of every training kind: the SGD run's length and settings.
pub const OPTIMISER_KEYS: &[&str] = &[
    "epochs",
    "batch-size",
    "lr",
    "momentum",
    "weight-decay",
    "flip",
];

/// Keys of every training kind: numerics, schedule, loss, seed.
pub const RUN_KEYS: &[&str] = &[
    "precision",
    "lr-schedule",
    "keep",
    "loss-normalization",
    "loss-scale",
    "grad-clip",
    "seed",
    "seed-offset",
];

/// Training hyperparameters, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrainConfig {
    pub net: Net,
    pub width: f64,
    pub epochs: u32,
    pub batch_size: u32,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub flip: bool,
    pub seed: u64,
    /// Maps per attribute or class in the last conv (N); absent = the paper's 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<u32>,
    /// `bf16`: libtorch convolutions in bf16 with fp32 master weights; absent = fp32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<crate::vocab::Precision>,
    /// Starting weights; their sha256 is part of the cache key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitWeights>,
    /// How the learning rate moves over a phase's epochs.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lr_schedule: LrSchedule,
    /// Which epoch's weights a phase keeps.
    #[serde(default, skip_serializing_if = "is_default")]
    pub keep: KeepEpoch,
    /// How the attribute loss is averaged.
    #[serde(default, skip_serializing_if = "is_default")]
    pub loss_normalization: LossNormalization,
    /// Multiplies the training loss (a gradient-matched control for MNL's two losses).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub loss_scale: f64,
    /// Each parameter's gradient is scaled down to at most this L2 norm
    /// before the SGD step; absent = no clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
}

pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn one() -> f64 {
    1.0
}
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

/// Learning-rate schedule of a training phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// `lr` throughout (the default).
    #[default]
    Constant,
    /// Cosine from `lr` to 0 over the phase's steps, so training settles.
    Cosine,
}

/// Which epoch's weights a training phase keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepEpoch {
    /// The last epoch's (the default).
    #[default]
    Last,
    /// The epoch with the best validation accuracy (model selection on val,
    /// never on test).
    Best,
}

/// How the sigmoid attribute loss is reduced (softmax losses are always a
/// mean over the batch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossNormalization {
    /// Mean over batch × attributes (the default).
    #[default]
    BatchAttributes,
    /// Sum over attributes, mean over the batch: Caffe's
    /// SigmoidCrossEntropyLoss, which the paper's learning rates assume.
    Batch,
}

/// User-provided starting weights (the paper starts from VGG-Face).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct InitWeights {
    pub path: PathBuf,
    pub sha256: String,
}

/// A gradient-clipping norm (`grad-clip`, `hint-grad-clip`): finite and > 0.
pub(crate) fn grad_clip_in_range(v: f64, ctx: &Ctx, key: &[Seg]) -> Result<f64, SpecError> {
    in_range(v, ctx, key, "must be > 0", |v| v > 0.0 && v.is_finite())
}

/// Where a training key was set: on the stage, else in `[train]`.
pub(crate) fn at(here: &[Seg], set_here: bool, name: &str) -> Vec<Seg> {
    if set_here {
        key(here, name)
    } else {
        key(&[Seg::Key("train".into())], name)
    }
}

/// What a training kind defaults to where neither the stage nor `[train]`
/// says.
pub(crate) struct Defaults {
    pub net: Net,
    /// The paper's learning rate for the kind, which wins over `[train]`'s.
    pub paper_lr: Option<f64>,
}

/// A stage's training hyperparameters: its own keys, else `[train]`'s, else
/// the kind's defaults.
pub(crate) fn resolve(
    s: &RawStage,
    d: &RawTrain,
    seed: u64,
    kind: Defaults,
    here: &[Seg],
    ctx: &Ctx,
) -> Result<TrainConfig, SpecError> {
    // A value set on the stage wins over `[train]`; errors point where it was set.
    let at = |set_here: bool, name: &str| at(here, set_here, name);
    let (paper_lr, default_net) = (kind.paper_lr, kind.net);
    let net = match s.net.as_ref().or(d.net.as_ref()) {
        None => default_net,
        Some(n) => Net::ALL
            .into_iter()
            .find(|x| x.as_str() == n)
            .ok_or_else(|| {
                let names: Vec<_> = Net::ALL.iter().map(|n| n.as_str()).collect();
                ctx.error(
                    &at(s.net.is_some(), "net"),
                    format!("unknown net `{n}`; known nets are {}", backticked(&names)),
                )
            })?,
    };
    let width = in_range(
        s.width.or(d.width).unwrap_or(1.0),
        ctx,
        &at(s.width.is_some(), "width"),
        "must be in (0, 4]",
        |v| v > 0.0 && v <= 4.0,
    )?;
    let epochs = positive(
        s.epochs.or(d.epochs).unwrap_or(4),
        ctx,
        &at(s.epochs.is_some(), "epochs"),
    )?;
    let batch_size = positive(
        s.batch_size.or(d.batch_size).unwrap_or(32),
        ctx,
        &at(s.batch_size.is_some(), "batch-size"),
    )?;
    let lr = match (s.lr, paper_lr) {
        (Some(v), _) => v,
        (None, Some(p)) => p,
        (None, None) => d.lr.unwrap_or(1e-4),
    };
    let lr = in_range(
        lr,
        ctx,
        &at(s.lr.is_some() || paper_lr.is_some(), "lr"),
        "must be > 0",
        |v| v > 0.0,
    )?;
    let momentum = in_range(
        s.momentum.or(d.momentum).unwrap_or(0.9),
        ctx,
        &at(s.momentum.is_some(), "momentum"),
        "must be in [0, 1)",
        |v| (0.0..1.0).contains(&v),
    )?;
    let weight_decay = in_range(
        s.weight_decay.or(d.weight_decay).unwrap_or(5e-4),
        ctx,
        &at(s.weight_decay.is_some(), "weight-decay"),
        "must be >= 0",
        |v| v >= 0.0,
    )?;
    let flip = s.flip.or(d.flip).unwrap_or(true);
    let init = match &s.init {
        None => None,
        Some(rel) => {
            let path = ctx.sources[0]
                .path
                .parent()
                .unwrap_or(Path::new("."))
                .join(rel);
            let sha256 = crate::digest::file_digest(&path).map_err(|e| {
                ctx.error(
                    &key(here, "init"),
                    format!("cannot read `{}`: {e}", path.display()),
                )
            })?;
            Some(InitWeights { path, sha256 })
        }
    };
    let maps = match s.maps.or(d.maps) {
        None | Some(32) => None,
        Some(n) => Some(in_range(
            n as f64,
            ctx,
            &at(s.maps.is_some(), "maps"),
            "must be in 1..=64",
            |v| (1.0..=64.0).contains(&v),
        )? as u32),
    };
    let precision = match s.precision.as_deref().or(d.precision.as_deref()) {
        None | Some("fp32") => None,
        Some("bf16") => Some(crate::vocab::Precision::Bf16),
        Some(other) => {
            return Err(ctx.error(
                &at(s.precision.is_some(), "precision"),
                format!("unknown precision `{other}`; allowed: `fp32`, `bf16`"),
            ));
        }
    };
    let lr_schedule = choice(
        s.lr_schedule.as_ref().or(d.lr_schedule.as_ref()),
        &[
            ("constant", LrSchedule::Constant),
            ("cosine", LrSchedule::Cosine),
        ],
        ctx,
        &at(s.lr_schedule.is_some(), "lr-schedule"),
    )?;
    let keep = choice(
        s.keep.as_ref().or(d.keep.as_ref()),
        &[("last", KeepEpoch::Last), ("best", KeepEpoch::Best)],
        ctx,
        &at(s.keep.is_some(), "keep"),
    )?;
    let loss_normalization = choice(
        s.loss_normalization
            .as_ref()
            .or(d.loss_normalization.as_ref()),
        &[
            ("batch-attributes", LossNormalization::BatchAttributes),
            ("batch", LossNormalization::Batch),
        ],
        ctx,
        &at(s.loss_normalization.is_some(), "loss-normalization"),
    )?;
    let loss_scale = in_range(
        s.loss_scale.or(d.loss_scale).unwrap_or(1.0),
        ctx,
        &at(s.loss_scale.is_some(), "loss-scale"),
        "must be in (0, 100]",
        |v| v > 0.0 && v <= 100.0,
    )?;
    let grad_clip = s
        .grad_clip
        .or(d.grad_clip)
        .map(|v| grad_clip_in_range(v, ctx, &at(s.grad_clip.is_some(), "grad-clip")))
        .transpose()?;
    Ok(TrainConfig {
        net,
        width,
        epochs,
        batch_size,
        lr,
        momentum,
        weight_decay,
        flip,
        seed,
        maps,
        precision,
        init,
        lr_schedule,
        keep,
        loss_normalization,
        loss_scale,
        grad_clip,
    })
}
