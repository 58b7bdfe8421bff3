//! `train` (a whole-image attribute net, SNet3 by default) and `train-frl`
//! (the FRL net = TNet, with the MNL classification branch when `mnl`).
//! Writes `model.bpk`, `model.json` and `epochs.parquet`.

use crate::metrics;

use crate::data::ImageSet;
use crate::kinds;
use crate::metrics::store::{self, EpochRow};
use crate::models::AttrNetConfig;
use crate::spec::FrlConfig;
use crate::spec::{Split, TrainConfig};
use crate::stages::Run;
use crate::stages::{ModelInfo, StageCtx, StageError, load_attr_net, save_attr_net};
use crate::train::{EpochRecord, Phase};
use burn::module::Module;

impl Run for kinds::train::Train {
    fn run(ctx: &StageCtx, c: &TrainConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, c, None)
    }
}

impl Run for kinds::train::TrainFrl {
    fn run(ctx: &StageCtx, c: &FrlConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, &c.train, c.mnl.then_some(c.mnl_hidden as usize))
    }
}

fn run(
    ctx: &StageCtx,
    cfg: &TrainConfig,
    mnl_hidden: Option<usize>,
) -> Result<serde_json::Value, StageError> {
    let (data, source) = ctx.data()?;
    let size = data.image_size as usize;
    ctx.progress.set_message("decoding images".into());
    let train = ImageSet::load(&source, Split::Train, size, &data.attributes)?;
    let val = ImageSet::load(&source, Split::Val, size, &data.attributes)?;
    let (plain, device) = ctx.devices();
    let maps = cfg.maps.unwrap_or(32) as usize;
    let mut net_cfg = AttrNetConfig::new(cfg.net, data.attributes.len())
        .with_width(cfg.width)
        .with_maps(maps);
    if let Some(h) = mnl_hidden {
        net_cfg = net_cfg.with_mnl(h);
    }
    let mut model = crate::stages::fresh(&device, cfg.seed, || net_cfg.init(size, &device));
    // `from`: the upstream net as it is, architecture included.
    let mut continued = None;
    if let Some(entry) = ctx.inputs.get("from") {
        let (m, info) = crate::stages::load_attr_net(&entry.dir, "model", &device)?;
        ctx.progress.log(&format!(
            "continuing {} (width {}) from stage `{}`",
            info.net.as_str(),
            info.width,
            ctx.stage.inputs["from"]
        ));
        if info.attributes != data.attributes {
            return Err(StageError::Input {
                stage: ctx.stage.id.clone(),
                message: format!(
                    "`from = \"{}\"` predicts other attributes or classes than this stage's data",
                    ctx.stage.inputs["from"]
                ),
            });
        }
        model = m;
        continued = Some(info);
    } else if let Some(init) = &cfg.init {
        model = crate::stages::fresh_ids(model.try_load_file(&init.path).map_err(|e| {
            StageError::LoadModel {
                path: init.path.clone(),
                message: format!(
                    "{e} (init weights must be an exp burnpack of the same architecture)"
                ),
            }
        })?);
        ctx.progress.log(&format!(
            "starting from `{}` (sha256 {})",
            init.path.display(),
            &init.sha256[..12]
        ));
    } else {
        // Start every score at its attribute's log prior odds: the nets begin at
        // the majority baseline instead of spending epochs learning the priors
        // (our choice for training from scratch; the paper starts from VGG-Face).
        // For one class per image the prior is the class's log frequency (softmax).
        let prior: Vec<f32> = train
            .positive_rate()
            .iter()
            .map(|&p| {
                if train.single_label {
                    p.max(1e-3).ln() as f32
                } else {
                    (p.clamp(0.01, 0.99) / (1.0 - p.clamp(0.01, 0.99))).ln() as f32
                }
            })
            .collect();
        let prior_param = || {
            burn::module::Param::from_tensor(burn::tensor::Tensor::from_floats(
                prior.as_slice(),
                &device,
            ))
        };
        model.fc_bias = prior_param();
        if let Some(bias) = model.mnl.as_mut().and_then(|b| b.fc2.bias.as_mut()) {
            *bias = prior_param();
        }
    }
    if let Some(entry) = ctx.inputs.get("backbone") {
        model = with_backbone(ctx, model, &entry.dir, cfg, &device)?;
    }
    let params = model.num_params();
    // The MNL branch is dropped after training: report the net without it too.
    let params_loc = params - model.mnl.as_ref().map_or(0, |b| b.num_params());
    let (net, width) = continued
        .as_ref()
        .map_or((cfg.net, cfg.width), |i| (i.net, i.width));
    ctx.progress.log(&format!(
        "{} (width {}) with {params} parameters{}, {} train / {} val images of {size}px",
        net.as_str(),
        width,
        if mnl_hidden.is_some() {
            " incl. the MNL branch"
        } else {
            ""
        },
        train.len(),
        val.len()
    ));
    let phase = Phase {
        name: "train".into(),
        cfg,
        lr: cfg.lr,
        epochs: cfg.epochs,
        n: train.len(),
        progress: ctx.progress,
    };
    let (model, history) =
        crate::train::train_attr_net(model, &phase, &train, &val, &device, &plain)?;
    let info = match continued {
        Some(upstream) => ModelInfo { params, ..upstream },
        None => ModelInfo {
            net: cfg.net,
            width: cfg.width,
            attributes: data.attributes.clone(),
            image_size: size,
            mnl_hidden,
            params,
            maps,
            single_label: train.single_label,
        },
    };
    save_attr_net(ctx.out, "model", model, &info)?;
    write_epochs(ctx, &history)?;
    let kept = crate::train::kept_epoch(&history, cfg.keep).expect("epochs >= 1");
    Ok(metrics::to_summary(&metrics::TrainSummary {
        net: info.net.as_str().into(),
        params: params as u64,
        params_loc: params_loc as u64,
        epochs: cfg.epochs,
        epoch: Some(kept.epoch),
        train_loss: Some(kept.train_loss),
        val_accuracy: Some(kept.val_accuracy),
        val_accuracy_mnl: kept.val_accuracy_mnl,
    }))
}

/// Every conv layer but the last (the attribute maps, which depend on the
/// task) from the net in `dir`: a pretrained start, like the paper's
/// VGG-Face conv layers. The heads keep their fresh initialisation.
fn with_backbone(
    ctx: &StageCtx,
    mut model: crate::models::AttrNet,
    dir: &std::path::Path,
    cfg: &TrainConfig,
    device: &burn::tensor::Device,
) -> Result<crate::models::AttrNet, StageError> {
    let (source, info) = load_attr_net(dir, "model", device)?;
    if info.net != cfg.net || info.width != cfg.width {
        return Err(StageError::Input {
            stage: ctx.stage.id.clone(),
            message: format!(
                "`backbone` is a {} at width {}, this stage trains a {} at width {}: they must match",
                info.net.as_str(),
                info.width,
                cfg.net.as_str(),
                cfg.width
            ),
        });
    }
    model.pooled = source.pooled;
    let last = model.top.len() - 1;
    for (i, block) in source.top.into_iter().enumerate().take(last) {
        model.top[i] = block;
    }
    ctx.progress.log(&format!(
        "conv layers (all but the last) from the backbone `{}` ({} attributes)",
        ctx.stage.inputs["backbone"],
        info.attributes.len()
    ));
    Ok(model)
}

/// `epochs.parquet`: one row per epoch and metric; phases prefix the metric.
/// No timings: the file is part of the entry's digest, which must be the
/// same on every machine (epoch times are in the stage's log).
pub fn write_epochs(ctx: &StageCtx, history: &[EpochRecord]) -> Result<(), StageError> {
    let mut rows = Vec::new();
    for h in history {
        let p = |m: &str| {
            if h.phase == "train" {
                m.to_string()
            } else {
                format!("{}/{m}", h.phase)
            }
        };
        rows.push(EpochRow {
            epoch: h.epoch,
            metric: p("train_loss"),
            value: h.train_loss,
        });
        rows.push(EpochRow {
            epoch: h.epoch,
            metric: p("val_accuracy"),
            value: h.val_accuracy,
        });
        if let Some(a) = h.val_accuracy_mnl {
            rows.push(EpochRow {
                epoch: h.epoch,
                metric: p("val_accuracy_mnl"),
                value: a,
            });
        }
    }
    store::write_epochs(&ctx.out.join("epochs.parquet"), &ctx.stage.id, &rows)?;
    Ok(())
}
