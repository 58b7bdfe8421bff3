//! What a report is made of: every `evaluate` stage of the chosen runs,
//! described by the model it scored (read from the run's resolved spec).

use std::path::PathBuf;

use crate::cache::Cache;
use crate::runs::RunRecord;

/// One scored model in one run.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub run: String,
    pub seed: u64,
    /// The run's configuration: its `-s` overrides and sweep values other
    /// than the seed (empty: the spec as written). Seeds of one
    /// configuration are pooled; different configurations never are.
    pub config: String,
    pub stage: String,
    pub head: String,
    pub split: String,
    /// The scored model's stage, kind, and details.
    pub model_stage: String,
    pub model_kind: String,
    pub net: Option<String>,
    pub mnl: Option<bool>,
    /// The model's `loss-scale` (1 unless it is a control such as a doubled loss).
    pub loss_scale: f64,
    pub grid: Option<u64>,
    /// Single-label data (birds): `mean_accuracy` is top-1.
    pub single_label: bool,
    /// How the evaluated images were cropped: `full`, `cam` (a `crop-data`
    /// stage on CAM boxes) or `box` (on the annotated boxes).
    pub crop: String,
    pub mean_accuracy: f64,
    pub params: Option<f64>,
    /// Per attribute (per class on birds): accuracy, balanced accuracy,
    /// majority baseline.
    pub attributes: Vec<crate::metrics::store::AttributeRow>,
}

/// An entry of a stage in a run, if cached.
pub fn entry_dir(cache: &Cache, run: &RunRecord, stage: &str) -> Option<PathBuf> {
    let key = run.stages.iter().find(|s| s.id == stage)?.key.clone()?;
    let dir = cache.entry_dir(&key);
    dir.exists().then_some(dir)
}

fn stage_config<'a>(run: &'a RunRecord, id: &str) -> Option<&'a serde_json::Value> {
    run.spec["stages"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == id)
}

fn model_stage_id(eval: &serde_json::Value) -> String {
    eval["inputs"]["model"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A config value of `stage` or, if absent, of the stages it was built from
/// (finetune-paw → train-fusion → train-parts).
fn upstream_value(run: &RunRecord, stage: &str, key: &str) -> Option<serde_json::Value> {
    let s = stage_config(run, stage)?;
    let v = &s["config"][key];
    if !v.is_null() {
        return Some(v.clone());
    }
    ["fusion", "parts"].iter().find_map(|role| {
        s["inputs"][role]
            .as_str()
            .and_then(|up| upstream_value(run, up, key))
    })
}

/// `cam`, `box` or `full`: whether the data stage `id` is a crop and of which boxes.
fn crop_of(run: &RunRecord, id: &str) -> String {
    match stage_config(run, id) {
        Some(d) if d["kind"] == "crop-data" => if d["inputs"]["regions"].is_string() {
            "cam"
        } else {
            "box"
        }
        .into(),
        _ => "full".into(),
    }
}

/// Every successful evaluation of `runs`.
pub fn evaluations(runs: &[RunRecord], cache: &Cache) -> Vec<Evaluation> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for run in runs {
        for s in run
            .stages
            .iter()
            .filter(|s| s.kind == "evaluate" && (s.status == "ran" || s.status == "cached"))
        {
            // Two specs that share a stage share its cache entry: count it once.
            if !seen.insert(s.key.clone()) {
                continue;
            }
            let Some(spec) = stage_config(run, &s.id) else {
                continue;
            };
            let Some(eval) = crate::metrics::EvalSummary::of(&s.summary) else {
                continue;
            };
            let ensemble = spec["inputs"]
                .as_object()
                .is_some_and(|i| i.keys().any(|k| k.starts_with(crate::spec::MEMBER_ROLE)));
            let model_stage = spec["inputs"]["model"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let model = stage_config(run, &model_stage);
            let cfg = model.map(|m| &m["config"]);
            let model_summary = run
                .stages
                .iter()
                .find(|x| x.id == model_stage)
                .map(|x| x.summary.clone())
                .unwrap_or_default();
            let attributes = entry_dir(cache, run, &s.id)
                .and_then(|d| {
                    crate::metrics::store::read_attributes(&d.join("attributes.parquet")).ok()
                })
                .unwrap_or_default();
            out.push(Evaluation {
                run: run.id.clone(),
                seed: run.spec["seed"].as_u64().unwrap_or(0),
                config: config_of(run),
                stage: s.id.clone(),
                head: eval.head.clone(),
                split: eval.split.clone(),
                // An ensemble shows every member.
                model_stage: if ensemble {
                    spec["inputs"]
                        .as_object()
                        .map(|i| {
                            std::iter::once(model_stage.as_str())
                                .chain(
                                    i.iter()
                                        .filter(|(k, _)| k.starts_with(crate::spec::MEMBER_ROLE))
                                        .filter_map(|(_, v)| v.as_str()),
                                )
                                .collect::<Vec<_>>()
                                .join(" + ")
                        })
                        .unwrap_or(model_stage)
                } else {
                    model_stage
                },
                // An ensemble is not its first member: the paper's rows skip it.
                model_kind: if ensemble {
                    "ensemble".to_string()
                } else {
                    cfg.and_then(|c| c["kind"].as_str())
                        .unwrap_or_default()
                        .to_string()
                },
                net: cfg.and_then(|c| c["net"].as_str()).map(String::from),
                mnl: cfg.and_then(|c| c["mnl"].as_bool()),
                loss_scale: cfg.and_then(|c| c["loss-scale"].as_f64()).unwrap_or(1.0),
                grid: upstream_value(run, &model_stage_id(spec), "grid").and_then(|v| v.as_u64()),
                single_label: eval.single_label(),
                crop: crop_of(run, spec["inputs"]["data"].as_str().unwrap_or("data")),
                mean_accuracy: eval.mean_accuracy,
                params: model_summary["params_loc"]
                    .as_f64()
                    .or(model_summary["params"].as_f64()),
                attributes,
            });
        }
    }
    out
}

/// A run's overrides other than the seed, as typed (`train.lr=0.1`).
pub fn config_of(run: &RunRecord) -> String {
    run.overrides
        .iter()
        .filter(|o| !o.starts_with("experiment.seed="))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Per-epoch `(stage, metric, epoch, value)` rows of every training stage of a run.
pub fn epochs(run: &RunRecord, cache: &Cache) -> Vec<(String, String, u32, f64)> {
    let mut out = Vec::new();
    for s in &run.stages {
        let Some(dir) = entry_dir(cache, run, &s.id) else {
            continue;
        };
        let path = dir.join("epochs.parquet");
        if path.exists() {
            if let Ok(rows) = crate::metrics::store::read_epochs(&path) {
                out.extend(rows.into_iter().map(|(m, e, v)| (s.id.clone(), m, e, v)));
            }
        }
    }
    out
}
