//! `evaluate`: per-attribute accuracy, balanced accuracy and the majority-
//! class baseline on the test split (or `val`), for any model and head:
//! an attribute net's localisation (`loc`) or MNL (`mnl`) branch, or a
//! PaW's fused output (`paw`), whole subnet (`whole-only`) or part subnet j
//! for attribute j (`part-only`). Model and configuration choices are made
//! on `val`; `test` is only reported.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use crate::data::{ImageSet, Source};
use crate::kinds;
use crate::kinds::paw::run::{PawSets, load_paw, subnet_scores};
use crate::metrics::{self, store};
use crate::spec::{EvalConfig, Head, Split};
use crate::stages::Run;
use crate::stages::{StageCtx, StageError, load_attr_net};
use crate::train::{predict, to_vec};

impl Run for kinds::evaluate::Evaluate {
    fn run(ctx: &StageCtx, c: &EvalConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, c)
    }
}

fn run(ctx: &StageCtx, cfg: &EvalConfig) -> Result<serde_json::Value, StageError> {
    let (_, source) = ctx.data()?;
    let dir = ctx.input("model").dir.clone();
    let device = ctx.device.device();
    ctx.progress.set_message(format!(
        "scoring {} ({})",
        cfg.split.as_str(),
        cfg.head.as_str()
    ));
    let (attributes, mut scores, labels, train_rate) = scores(ctx, &dir, &source, cfg, &device)?;
    // An ensemble: every member scored the same way, probabilities averaged.
    let members: Vec<&std::path::PathBuf> = ctx
        .inputs
        .iter()
        .filter(|(role, _)| role.starts_with(crate::spec::MEMBER_ROLE))
        .map(|(_, entry)| &entry.dir)
        .collect();
    if !members.is_empty() {
        let mut all = vec![scores];
        for member in &members {
            let (a, s, l, _) = self::scores(ctx, member, &source, cfg, &device)?;
            if a != attributes || l != labels {
                return Err(StageError::Input {
                    stage: ctx.stage.id.clone(),
                    message: format!(
                        "ensemble member `{}` predicts other labels than `model`",
                        member.display()
                    ),
                });
            }
            all.push(s);
        }
        scores = average_probabilities(&all, source.single_label(), attributes.len());
    }
    let names = source.label_names()?;
    let m = attributes.len();
    let n = labels.len() / m;
    let pos: Vec<f64> = (0..m)
        .map(|j| (0..n).filter(|&i| labels[i * m + j] == 1).count() as f64 / n as f64)
        .collect();
    // Attributes: per-attribute accuracy, averaged. Classes (one label per
    // image): top-1 accuracy, with per-class recall in the table.
    let (rows, mean_acc, mean_bal, mean_maj) = if source.single_label() {
        let recall = metrics::per_class_recall(&scores, &labels, m);
        let majority = (0..m)
            .max_by(|&a, &b| train_rate[a].total_cmp(&train_rate[b]))
            .unwrap_or(0);
        let rows: Vec<store::AttributeRow> = (0..m)
            .map(|j| store::AttributeRow {
                attribute: names[attributes[j]].clone(),
                accuracy: recall[j],
                balanced_accuracy: recall[j],
                majority_accuracy: f64::NAN,
                positive_rate: pos[j],
            })
            .collect();
        let present: Vec<f64> = recall.into_iter().filter(|r| !r.is_nan()).collect();
        (
            rows,
            metrics::top1(&scores, &labels, m),
            metrics::mean(&present),
            pos[majority],
        )
    } else {
        let acc = metrics::accuracy(&scores, &labels, m);
        let bal = metrics::balanced_accuracy(&scores, &labels, m);
        let maj = metrics::majority_accuracy(&train_rate, &labels);
        let rows: Vec<store::AttributeRow> = (0..m)
            .map(|j| store::AttributeRow {
                attribute: names[attributes[j]].clone(),
                accuracy: acc[j],
                balanced_accuracy: bal[j],
                majority_accuracy: maj[j],
                positive_rate: pos[j],
            })
            .collect();
        (
            rows,
            metrics::mean(&acc),
            metrics::mean(&bal),
            metrics::mean(&maj),
        )
    };
    store::write_attributes(
        &ctx.out.join("attributes.parquet"),
        &ctx.stage.id,
        cfg.split.as_str(),
        &rows,
    )?;
    let what = if source.single_label() {
        "top-1 accuracy"
    } else {
        "mean accuracy"
    };
    ctx.progress.log(&format!(
        "{} ({}): {what} {:.2}%, balanced {:.2}%, majority baseline {:.2}%",
        cfg.split.as_str(),
        cfg.head.as_str(),
        100.0 * mean_acc,
        100.0 * mean_bal,
        100.0 * mean_maj
    ));
    let summary = metrics::EvalSummary {
        split: cfg.split.as_str().into(),
        head: cfg.head.as_str().into(),
        images: n,
        metric: if source.single_label() {
            "top1"
        } else {
            "mean"
        }
        .into(),
        mean_accuracy: mean_acc,
        balanced_accuracy: Some(mean_bal),
        majority_accuracy: Some(mean_maj),
    };
    Ok(serde_json::to_value(summary).expect("a summary serializes"))
}

/// The ensemble of several models' logits: the mean of their probabilities
/// (sigmoid per attribute, or softmax over the classes of single-label
/// data), returned as logits (log-odds, or log-probabilities) so every
/// metric reads them as it reads one model's.
fn average_probabilities(all: &[Vec<f32>], single_label: bool, m: usize) -> Vec<f32> {
    let k = all.len() as f64;
    let n = all[0].len();
    let mut mean = vec![0.0f64; n];
    for scores in all {
        for (row, out) in scores.chunks(m).zip(mean.chunks_mut(m)) {
            for (o, p) in out
                .iter_mut()
                .zip(metrics::probabilities(row, single_label))
            {
                *o += p / k;
            }
        }
    }
    mean.into_iter()
        .map(|p| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if single_label {
                p.ln() as f32
            } else {
                (p / (1.0 - p)).ln() as f32
            }
        })
        .collect()
}

type Scored = (Vec<usize>, Vec<f32>, Vec<u8>, Vec<f64>);

fn scores(
    ctx: &StageCtx,
    dir: &Path,
    source: &Source,
    cfg: &EvalConfig,
    device: &Device,
) -> Result<Scored, StageError> {
    let wrong = |what: &str| StageError::Input {
        stage: ctx.stage.id.clone(),
        message: format!("head `{}` {what}", cfg.head.as_str()),
    };
    if dir.join("model.json").exists() {
        let (model, info) = load_attr_net(dir, "model", device)?;
        let set = ImageSet::load(source, cfg.split, info.image_size, &info.attributes)?;
        let train = ImageSet::load(source, Split::Train, info.image_size, &info.attributes)?;
        let (loc, mnl) = predict(&model, &set, device, 64);
        let scores = match cfg.head {
            Head::Loc => loc,
            Head::Mnl => {
                mnl.ok_or_else(|| wrong("needs a `train-frl` model trained with `mnl = true`"))?
            }
            _ => {
                return Err(wrong(
                    "needs a PaW model (`train-parts`, `train-fusion` or `finetune-paw`)",
                ));
            }
        };
        return Ok((info.attributes, scores, set.labels, train.positive_rate()));
    }
    let (paw, info) = load_paw(dir, device)?;
    let boxes = crate::data::read_part_boxes(&dir.join("boxes.tsv"))?;
    let sets = PawSets::load(source, cfg.split, &info, &boxes)?;
    let train_rate = ImageSet::load(
        source,
        Split::Train,
        info.whole.image_size,
        &info.whole.attributes,
    )?
    .positive_rate();
    let (k, m, n) = (
        info.parts + 1,
        info.whole.attributes.len(),
        sets.whole.len(),
    );
    let all = subnet_scores(&paw, &sets, device);
    let scores = match cfg.head {
        Head::Paw if info.fused => to_vec(paw.fusion.forward(Tensor::<3>::from_data(
            TensorData::new(all, [n, k, m]),
            device,
        ))),
        Head::Paw => {
            return Err(wrong(
                "needs a fused model (`train-fusion` or `finetune-paw`)",
            ));
        }
        Head::WholeOnly => (0..n)
            .flat_map(|i| all[i * k * m..i * k * m + m].to_vec())
            .collect(),
        Head::PartOnly if info.grid.is_none() => (0..n)
            .flat_map(|i| (0..m).map(move |j| (i, j)))
            .map(|(i, j)| all[i * k * m + (j + 1) * m + j])
            .collect(),
        Head::PartOnly => {
            return Err(wrong(
                "needs attribute-linked parts (`regions`), not a grid",
            ));
        }
        Head::Loc | Head::Mnl => {
            return Err(wrong(
                "needs an attribute net (`train`, `train-frl` or `compress`)",
            ));
        }
    };
    Ok((info.whole.attributes, scores, sets.whole.labels, train_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ensemble_averages_probabilities_not_logits() {
        // Attributes: p = 0.5 (logit 0) and p = sigmoid(4) ≈ 0.982 average
        // to 0.741, logit ≈ 1.05 (the mean logit would be 2).
        let got = average_probabilities(&[vec![0.0], vec![4.0]], false, 1);
        assert!((got[0] - 1.0513).abs() < 1e-3, "{got:?}");
        // One model: its own logits back.
        let got = average_probabilities(&[vec![-2.0, 3.0]], false, 2);
        assert!((got[0] + 2.0).abs() < 1e-4 && (got[1] - 3.0).abs() < 1e-4);
        // Classes: the mean softmax, as log-probabilities.
        let got = average_probabilities(&[vec![0.0, 0.0], vec![10.0, 0.0]], true, 2);
        let p: Vec<f32> = got.iter().map(|v| v.exp()).collect();
        assert!(
            (p[0] - 0.75).abs() < 1e-3 && (p[1] - 0.25).abs() < 1e-3,
            "{p:?}"
        );
    }
}
