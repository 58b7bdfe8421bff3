//! `train-fusion` (RSL + ARL on frozen subnets, lr 0.1 by default) and
//! `finetune-paw` (the whole PaW end to end, lr 0.001). Both write
//! `paw.bpk`, `paw.json` and `fusion.json` (the RSL and ARL weights, for
//! the paper's Figures 5 and 6). Flips are off: a mirrored face would move
//! its FRL patches.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use crate::data::{ImageSet, Source, SquareBox};
use crate::kinds;
use crate::kinds::train::run::write_epochs;
use crate::metrics;
use crate::models::{Fusion, Paw};
use crate::spec::{Split, TrainConfig};
use crate::stages::Run;
use crate::stages::{PawInfo, StageCtx, StageError, load_attr_net, read_json, write_json};
use crate::train::{self, Phase, attribute_loss, to_vec};

/// The whole images of a split and the patches of every part.
pub struct PawSets {
    pub whole: ImageSet,
    pub parts: Vec<ImageSet>,
}

impl PawSets {
    pub fn load(
        source: &Source,
        split: Split,
        info: &PawInfo,
        boxes: &BTreeMap<String, Vec<SquareBox>>,
    ) -> Result<PawSets, StageError> {
        let whole = ImageSet::load(source, split, info.whole.image_size, &info.whole.attributes)?;
        let mut parts = Vec::new();
        for p in 0..info.parts {
            let b: Vec<SquareBox> = whole
                .files
                .iter()
                .map(|f| {
                    boxes.get(f).and_then(|b| b.get(p).copied()).ok_or_else(|| {
                        crate::file_error::FileError::Read {
                            path: "boxes.tsv".into(),
                            source: std::io::Error::other(format!("no region {p} for `{f}`")),
                        }
                    })
                })
                .collect::<Result<_, _>>()?;
            parts.push(whole.crops(&b, info.part.image_size));
        }
        Ok(PawSets { whole, parts })
    }

    fn batch(&self, idx: &[usize], device: &Device) -> (Tensor<4>, Vec<Tensor<4>>) {
        (
            self.whole.images(idx, &[], device),
            self.parts
                .iter()
                .map(|p| p.images(idx, &[], device))
                .collect(),
        )
    }
}

/// Build a PaW from an entry: fused (`paw.bpk`) or from `whole` + `part_NN` weights.
pub fn load_paw(dir: &Path, device: &Device) -> Result<(Paw, PawInfo), StageError> {
    let info: PawInfo = read_json(&dir.join("paw.json"))?;
    let m = info.whole.attributes.len();
    if info.fused {
        let paw = Paw {
            whole: info.whole.config().init(info.whole.image_size, device),
            parts: (0..info.parts)
                .map(|_| info.part.config().init(info.part.image_size, device))
                .collect(),
            fusion: Fusion::init(info.parts + 1, m, device),
        };
        let path = dir.join("paw.bpk");
        let paw = paw
            .try_load_file(&path)
            .map_err(|e| StageError::LoadModel {
                path,
                message: e.to_string(),
            })?;
        return Ok((crate::stages::fresh_ids(paw), info));
    }
    let (whole, _) = load_attr_net(dir, "whole", device)?;
    let parts = (0..info.parts)
        .map(|p| load_attr_net(dir, &format!("part_{p:02}"), device).map(|x| x.0))
        .collect::<Result<_, _>>()?;
    Ok((
        Paw {
            whole,
            parts,
            fusion: Fusion::init(info.parts + 1, m, device),
        },
        info,
    ))
}

/// Every subnet's scores, `n × (P+1) × M`, row-major.
pub fn subnet_scores(paw: &Paw, sets: &PawSets, device: &Device) -> Vec<f32> {
    let n = sets.whole.len();
    let idx: Vec<usize> = (0..n).collect();
    let mut out = Vec::new();
    for chunk in idx.chunks(64) {
        let (w, p) = sets.batch(chunk, device);
        out.extend(to_vec(paw.subnet_scores(w, p)));
    }
    out
}

fn save(ctx: &StageCtx, paw: Paw, mut info: PawInfo) -> Result<(), StageError> {
    info.fused = true;
    let rsl = to_vec(paw.fusion.rsl_weight.val());
    let arl = to_vec(paw.fusion.arl.weight.val());
    let m = info.whole.attributes.len();
    // ARL's burn weight is [in, out]; report it as [out][in] (row j: inputs to attribute j).
    let arl_rows: Vec<Vec<f32>> = (0..m)
        .map(|j| (0..m).map(|i| arl[i * m + j]).collect())
        .collect();
    let rsl_rows: Vec<Vec<f32>> = rsl.chunks(m).map(|r| r.to_vec()).collect();
    let names: Vec<&str> = info
        .whole
        .attributes
        .iter()
        .map(|&a| crate::attributes::CELEBA[a])
        .collect();
    write_json(
        &ctx.out.join("fusion.json"),
        &json!({ "attributes": names, "grid": info.grid, "rsl": rsl_rows, "arl": arl_rows }),
    )?;
    let path = ctx.out.join("paw.bpk");
    crate::stages::stable_ids(paw.valid())
        .save_file(&path)
        .map_err(|e| StageError::SaveModel {
            path: path.clone(),
            message: e.to_string(),
        })?;
    write_json(&ctx.out.join("paw.json"), &info)
}

/// Weight of the whole subnet vs attribute j's own part subnet in RSL,
/// averaged over local and global attributes (the paper's Figure 5 claim).
fn rsl_summary(paw: &Paw, info: &PawInfo) -> Option<metrics::RslSummary> {
    if info.grid.is_some() {
        return None;
    }
    let m = info.whole.attributes.len();
    let w = to_vec(paw.fusion.rsl_weight.val());
    let (mut local, mut global) = (Vec::new(), Vec::new());
    for j in 0..m {
        let diff = (w[(j + 1) * m + j] - w[j]) as f64; // own part − whole
        if crate::attributes::is_local(info.whole.attributes[j]) {
            local.push(diff)
        } else {
            global.push(diff)
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| metrics::mean(v));
    Some(metrics::RslSummary {
        local_part_minus_whole: mean(&local),
        global_part_minus_whole: mean(&global),
    })
}

impl Run for kinds::paw::TrainFusion {
    fn run(ctx: &StageCtx, c: &TrainConfig) -> Result<serde_json::Value, StageError> {
        fusion(ctx, c)
    }
}

impl Run for kinds::paw::FinetunePaw {
    fn run(ctx: &StageCtx, c: &TrainConfig) -> Result<serde_json::Value, StageError> {
        finetune(ctx, c)
    }
}

pub fn fusion(ctx: &StageCtx, cfg: &TrainConfig) -> Result<serde_json::Value, StageError> {
    let (_, source) = ctx.data()?;
    let (plain, device) = ctx.devices();
    let parts_dir = &ctx.input("parts").dir;
    let (paw, info) = load_paw(parts_dir, &plain)?;
    let boxes = crate::data::read_part_boxes(&parts_dir.join("boxes.tsv"))?;
    ctx.progress.set_message("scoring subnets".into());
    let train_sets = PawSets::load(&source, Split::Train, &info, &boxes)?;
    let val_sets = PawSets::load(&source, Split::Val, &info, &boxes)?;
    // Subnets are frozen: score every image once, then learn RSL + ARL on the scores.
    let (k, m) = (info.parts + 1, info.whole.attributes.len());
    let train_scores = subnet_scores(&paw, &train_sets, &plain);
    let val_scores = subnet_scores(&paw, &val_sets, &plain);
    let rows = |s: &[f32], idx: &[usize], d: &Device| {
        let v: Vec<f32> = idx
            .iter()
            .flat_map(|&i| s[i * k * m..(i + 1) * k * m].iter().copied())
            .collect();
        Tensor::<3>::from_data(TensorData::new(v, [idx.len(), k, m]), d)
    };
    let no_flip = TrainConfig {
        flip: false,
        ..cfg.clone()
    };
    let phase = Phase {
        name: "fusion".into(),
        cfg: &no_flip,
        lr: cfg.lr,
        epochs: cfg.epochs,
        n: train_sets.whole.len(),
        progress: ctx.progress,
    };
    let val_idx: Vec<usize> = (0..val_sets.whole.len()).collect();
    let fusion = crate::stages::fresh(&device, cfg.seed, || Fusion::init(k, m, &device));
    let (fusion, history) = train::fit(
        fusion,
        &phase,
        |f, idx, _| {
            attribute_loss(
                f.forward(rows(&train_scores, idx, &device)),
                train_sets.whole.targets(idx, &device),
                cfg.loss_normalization,
            )
        },
        |f| {
            let logits = to_vec(f.valid().forward(rows(&val_scores, &val_idx, &plain)));
            (
                metrics::mean(&metrics::accuracy(&logits, &val_sets.whole.labels, m)),
                None,
            )
        },
    )?;
    let paw = Paw {
        whole: paw.whole,
        parts: paw.parts,
        fusion: fusion.valid(),
    };
    let summary = metrics::to_summary(&metrics::PawSummary {
        parts: info.parts,
        val_accuracy: train::kept_epoch(&history, cfg.keep).map(|h| h.val_accuracy),
        epoch: train::kept_epoch(&history, cfg.keep).map(|h| h.epoch),
        rsl: rsl_summary(&paw, &info),
    });
    save(ctx, paw, info)?;
    write_boxes_copy(parts_dir, ctx.out)?;
    write_epochs(ctx, &history)?;
    Ok(summary)
}

pub fn finetune(ctx: &StageCtx, cfg: &TrainConfig) -> Result<serde_json::Value, StageError> {
    let (_, source) = ctx.data()?;
    let (plain, device) = ctx.devices();
    let dir = &ctx.input("fusion").dir;
    let info: PawInfo = read_json(&dir.join("paw.json"))?;
    if !info.fused {
        return Err(StageError::Input {
            stage: ctx.stage.id.clone(),
            message: "`fusion` must be a `train-fusion` stage".into(),
        });
    }
    let (paw, info) = load_paw(dir, &device)?;
    let boxes = crate::data::read_part_boxes(&dir.join("boxes.tsv"))?;
    ctx.progress.set_message("decoding images".into());
    let train_sets = PawSets::load(&source, Split::Train, &info, &boxes)?;
    let val_sets = PawSets::load(&source, Split::Val, &info, &boxes)?;
    let m = info.whole.attributes.len();
    let no_flip = TrainConfig {
        flip: false,
        ..cfg.clone()
    };
    let phase = Phase {
        name: "finetune".into(),
        cfg: &no_flip,
        lr: cfg.lr,
        epochs: cfg.epochs,
        n: train_sets.whole.len(),
        progress: ctx.progress,
    };
    let (paw, history) = train::fit(
        paw,
        &phase,
        |p, idx, _| {
            let (w, parts) = train_sets.batch(idx, &device);
            attribute_loss(
                p.forward(w, parts),
                train_sets.whole.targets(idx, &device),
                cfg.loss_normalization,
            )
        },
        |p| {
            let v = p.valid();
            let scores = subnet_scores(&v, &val_sets, &plain);
            let n = val_sets.whole.len();
            let logits = to_vec(v.fusion.forward(Tensor::<3>::from_data(
                TensorData::new(scores, [n, info.parts + 1, m]),
                &plain,
            )));
            (
                metrics::mean(&metrics::accuracy(&logits, &val_sets.whole.labels, m)),
                None,
            )
        },
    )?;
    let paw = paw.valid();
    let summary = metrics::to_summary(&metrics::PawSummary {
        parts: info.parts,
        val_accuracy: train::kept_epoch(&history, cfg.keep).map(|h| h.val_accuracy),
        epoch: train::kept_epoch(&history, cfg.keep).map(|h| h.epoch),
        rsl: rsl_summary(&paw, &info),
    });
    save(ctx, paw, info)?;
    write_boxes_copy(dir, ctx.out)?;
    write_epochs(ctx, &history)?;
    Ok(summary)
}

/// Fused entries carry their boxes so evaluation needs no other input.
fn write_boxes_copy(from: &Path, to: &Path) -> Result<(), StageError> {
    let (src, dst) = (from.join("boxes.tsv"), to.join("boxes.tsv"));
    std::fs::copy(&src, &dst)
        .map(|_| ())
        .map_err(|source| crate::file_error::FileError::Write { path: dst, source }.into())
}
