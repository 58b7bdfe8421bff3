//! Scores (accuracy, balanced accuracy, majority baseline) and the Parquet
//! tables they are stored in. Polars stays inside [`store`].

pub mod store;

/// What an `evaluate` stage records as its summary, typed for every reader
/// (run tables, reports, claims, the run index).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalSummary {
    /// `test` or `val`.
    pub split: String,
    /// The head scored: `loc`, `mnl`, `paw`, `whole-only`, `part-only`.
    pub head: String,
    pub images: usize,
    /// `mean` (mean accuracy over attributes) or `top1` (one class per image).
    pub metric: String,
    pub mean_accuracy: f64,
    /// Absent from summaries written before they were recorded.
    #[serde(default)]
    pub balanced_accuracy: Option<f64>,
    #[serde(default)]
    pub majority_accuracy: Option<f64>,
}

/// What `train` and `train-frl` record: the net and its kept epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSummary {
    pub net: String,
    /// Every parameter, the MNL branch included.
    pub params: u64,
    /// Without the MNL branch: the localisation net that is evaluated.
    pub params_loc: u64,
    pub epochs: u32,
    /// The epoch kept (`keep`; absent from summaries written before it
    /// was recorded), and how it did (a NaN loss is stored as null).
    #[serde(default)]
    pub epoch: Option<u32>,
    pub train_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_accuracy_mnl: Option<f64>,
}

/// What `compress` records: student and teacher sizes, the hint phase's loss.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompressSummary {
    pub net: String,
    pub params: u64,
    /// The teacher's localisation net (its MNL branch left out).
    pub teacher_params: u64,
    pub hint_loss_first: Option<f64>,
    pub hint_loss_last: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub epoch: Option<u32>,
}

/// What `train-fusion` and `finetune-paw` record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PawSummary {
    pub parts: usize,
    pub val_accuracy: Option<f64>,
    pub epoch: Option<u32>,
    /// Absent for parts on a grid (no attribute owns a block).
    pub rsl: Option<RslSummary>,
}

/// The region switch layer's weights (Figure 5): own part minus whole,
/// averaged over local and over global attributes (absent: none of them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RslSummary {
    pub local_part_minus_whole: Option<f64>,
    pub global_part_minus_whole: Option<f64>,
}

/// A stage summary as the JSON its manifest and run record store.
pub fn to_summary(s: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(s).expect("summaries are plain data")
}

/// A stage summary read back typed; `None` where it is another kind's.
pub fn summary_of<T: serde::de::DeserializeOwned>(summary: &serde_json::Value) -> Option<T> {
    serde_json::from_value(summary.clone()).ok()
}

impl EvalSummary {
    /// The evaluation in a stage's summary, if the stage is one.
    pub fn of(summary: &serde_json::Value) -> Option<Self> {
        summary.get("mean_accuracy")?;
        serde_json::from_value(summary.clone()).ok()
    }

    /// Single-label data (birds): `mean_accuracy` is top-1.
    pub fn single_label(&self) -> bool {
        self.metric == "top1"
    }
}

/// A row of logits as probabilities: a sigmoid per attribute, or a softmax
/// over a single-label net's classes.
pub fn probabilities(logits: &[f32], single_label: bool) -> Vec<f64> {
    if single_label {
        let max = logits.iter().copied().fold(f32::MIN, f32::max) as f64;
        let e: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
        let z: f64 = e.iter().sum();
        e.into_iter().map(|v| v / z).collect()
    } else {
        logits
            .iter()
            .map(|&v| 1.0 / (1.0 + (-v as f64).exp()))
            .collect()
    }
}

/// Per-attribute accuracy of logits (`n × m`) against 0/1 labels.
pub fn accuracy(logits: &[f32], labels: &[u8], m: usize) -> Vec<f64> {
    let n = labels.len() / m;
    (0..m)
        .map(|j| {
            let hits = (0..n)
                .filter(|&i| (logits[i * m + j] > 0.0) == (labels[i * m + j] == 1))
                .count();
            hits as f64 / n.max(1) as f64
        })
        .collect()
}

/// Per-attribute balanced accuracy: the mean of the true-positive and
/// true-negative rates (a class absent from the split counts as its other rate).
pub fn balanced_accuracy(logits: &[f32], labels: &[u8], m: usize) -> Vec<f64> {
    let n = labels.len() / m;
    (0..m)
        .map(|j| {
            let (mut tp, mut p, mut tn, mut neg) = (0, 0, 0, 0);
            for i in 0..n {
                let pred = logits[i * m + j] > 0.0;
                if labels[i * m + j] == 1 {
                    p += 1;
                    tp += pred as usize;
                } else {
                    neg += 1;
                    tn += !pred as usize;
                }
            }
            match (p, neg) {
                (0, 0) => 0.0,
                (0, _) => tn as f64 / neg as f64,
                (_, 0) => tp as f64 / p as f64,
                _ => 0.5 * (tp as f64 / p as f64 + tn as f64 / neg as f64),
            }
        })
        .collect()
}

/// Accuracy of always predicting the training split's majority class.
pub fn majority_accuracy(train_positive_rate: &[f64], labels: &[u8]) -> Vec<f64> {
    let m = train_positive_rate.len();
    let n = labels.len() / m;
    (0..m)
        .map(|j| {
            let majority = (train_positive_rate[j] > 0.5) as u8;
            (0..n).filter(|&i| labels[i * m + j] == majority).count() as f64 / n.max(1) as f64
        })
        .collect()
}

/// The arg-max of each row of `n × m` scores.
pub fn predicted_classes(logits: &[f32], m: usize) -> Vec<usize> {
    logits
        .chunks(m)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (j, &v)| {
                    if v > best.1 { (j, v) } else { best }
                })
                .0
        })
        .collect()
}

/// Single-label data: the fraction of images whose arg-max is the 1 label.
pub fn top1(logits: &[f32], labels: &[u8], m: usize) -> f64 {
    let hits = predicted_classes(logits, m)
        .iter()
        .enumerate()
        .filter(|&(i, &c)| labels[i * m + c] == 1)
        .count();
    hits as f64 / (labels.len() / m).max(1) as f64
}

/// Single-label data: per class, the fraction of its images classified as
/// it (recall); a class absent from the split scores NaN.
pub fn per_class_recall(logits: &[f32], labels: &[u8], m: usize) -> Vec<f64> {
    let (mut hits, mut count) = (vec![0usize; m], vec![0usize; m]);
    for (i, c) in predicted_classes(logits, m).into_iter().enumerate() {
        if let Some(t) = labels[i * m..(i + 1) * m].iter().position(|&l| l == 1) {
            count[t] += 1;
            hits[t] += (c == t) as usize;
        }
    }
    (0..m)
        .map(|j| {
            if count[j] > 0 {
                hits[j] as f64 / count[j] as f64
            } else {
                f64::NAN
            }
        })
        .collect()
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn summaries_stored_by_earlier_runs_read_back_typed() {
        // As run records of 2026-12-01 store them.
        let old: TrainSummary = summary_of(&serde_json::json!({"epochs": 6, "net": "tnet", "params": 10, "params_loc": 10, "train_loss": null, "val_accuracy": 0.5, "val_accuracy_mnl": null})).unwrap();
        assert_eq!((old.epoch, old.train_loss), (None, None));
        let train: TrainSummary = summary_of(&serde_json::json!({"epoch": 6, "epochs": 6, "net": "tnet", "params": 1596678, "params_loc": 1596678, "train_loss": 0.2767, "val_accuracy": 0.8745, "val_accuracy_mnl": null})).unwrap();
        assert_eq!((train.params_loc, train.val_accuracy_mnl), (1596678, None));
        let compress: CompressSummary = summary_of(&serde_json::json!({"epoch": 21, "hint_loss_first": 917974.2, "hint_loss_last": 865554.1, "net": "snet3", "params": 139050, "teacher_params": 858098, "val_accuracy": 0.8236})).unwrap();
        assert_eq!(compress.teacher_params, 858098);
        let paw: PawSummary = summary_of(&serde_json::json!({"epoch": 1, "parts": 10, "rsl": {"global_part_minus_whole": -0.19, "local_part_minus_whole": -0.16}, "val_accuracy": 0.8452})).unwrap();
        assert_eq!(paw.rsl.unwrap().local_part_minus_whole, Some(-0.16));
        // Another kind's summary is not this one.
        assert!(
            summary_of::<CompressSummary>(
                &serde_json::json!({"epoch": 1, "parts": 10, "rsl": null})
            )
            .is_none()
        );
    }

    use super::*;

    #[test]
    fn accuracy_balanced_and_majority_on_a_hand_example() {
        // 4 images, 2 attributes. Attribute 0: labels 1,0,0,0; predictions 1,1,0,0.
        let logits = [2.0, -1.0, 0.5, -1.0, -3.0, 1.0, -0.1, 1.0];
        let labels = [1, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(accuracy(&logits, &labels, 2), vec![0.75, 1.0]);
        let bal = balanced_accuracy(&logits, &labels, 2);
        assert!((bal[0] - 0.5 * (1.0 + 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(majority_accuracy(&[0.2, 0.6], &labels), vec![0.75, 0.5]);
    }

    #[test]
    fn top1_and_per_class_recall() {
        // 3 images, 3 classes: true 0, 2, 2; predicted 0, 1, 2.
        let logits = [3.0, 1.0, 0.0, 0.0, 2.0, 1.0, -1.0, 0.0, 5.0];
        let labels = [1, 0, 0, 0, 0, 1, 0, 0, 1];
        assert!((top1(&logits, &labels, 3) - 2.0 / 3.0).abs() < 1e-12);
        let r = per_class_recall(&logits, &labels, 3);
        assert_eq!((r[0], r[2]), (1.0, 0.5));
        assert!(r[1].is_nan());
    }
}
