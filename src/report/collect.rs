//! What a report is made of: every `evaluate` stage of the chosen runs,
//! described by the model it scored (read from the run's resolved spec).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cache::Cache;
use crate::runs::RunRecord;
use crate::spec::{Head, Net, PatchCentre, Split, StageConfig, StageKind, StageSpec};

/// How the evaluated images were cropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crop {
    /// Whole images.
    Full,
    /// A `crop-data` stage on CAM boxes (`regions`).
    Cam,
    /// A `crop-data` stage on the annotated boxes.
    Box,
}

/// A column of the paper's Table 5, found from how the scored model was
/// built, not from stage names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table5 {
    /// The standalone whole-image net a PaW was built from (its `whole`).
    WholeOnly,
    /// The part subnets on the FRL's CAM patches, before fusion.
    PartOnly,
    /// PaW on the FRL's CAM patches, fine-tuned end to end.
    Paw,
}

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
    pub head: Head,
    pub split: Split,
    /// The scored model's stage (an ensemble's joined by ` + `), kind
    /// (none for an ensemble: the paper's rows skip it) and details.
    pub model_stage: String,
    pub model_kind: Option<StageKind>,
    pub net: Option<Net>,
    pub mnl: Option<bool>,
    /// The model's `loss-scale` (1 unless it is a control such as a doubled loss).
    pub loss_scale: f64,
    pub grid: Option<u32>,
    /// Which of Table 5's columns it is, if any.
    pub table5: Option<Table5>,
    /// Single-label data (birds): `mean_accuracy` is top-1.
    pub single_label: bool,
    pub crop: Crop,
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

/// A run's stages as it resolved them, typed. A stage written by an older
/// `exp` that no longer reads is left out (with it, its evaluations).
pub fn stages(run: &RunRecord) -> BTreeMap<String, StageSpec> {
    run.spec["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_value::<StageSpec>(v.clone()).ok())
        .map(|s| (s.id.clone(), s))
        .collect()
}

/// The grid of a PaW model's parts, found through the stages it was built
/// from (finetune-paw → train-fusion → train-parts).
fn grid_of(stages: &BTreeMap<String, StageSpec>, id: &str) -> Option<u32> {
    let s = stages.get(id)?;
    match &s.config {
        StageConfig::TrainParts(p) => p.grid,
        _ => ["fusion", "parts"]
            .iter()
            .find_map(|role| s.inputs.get(*role))
            .and_then(|up| grid_of(stages, up)),
    }
}

/// The `train-parts` stage a PaW model (or parts stage) was built from.
fn parts_of<'a>(stages: &'a BTreeMap<String, StageSpec>, id: &str) -> Option<&'a StageSpec> {
    let s = stages.get(id)?;
    match &s.config {
        StageConfig::TrainParts(_) => Some(s),
        _ => ["fusion", "parts"]
            .iter()
            .find_map(|role| s.inputs.get(*role))
            .and_then(|up| parts_of(stages, up)),
    }
}

/// Whether a parts stage reads the FRL's own CAM patches (not a grid, not
/// a fixed or ground-truth control).
fn on_cam_patches(stages: &BTreeMap<String, StageSpec>, parts: &StageSpec) -> bool {
    let regions = parts.inputs.get("regions").and_then(|r| stages.get(r));
    matches!(regions.map(|r| &r.config), Some(StageConfig::Localize(l)) if l.centre == PatchCentre::Cam)
}

/// Table 5's column of an evaluation of `model` with `head`.
fn table5_of(
    stages: &BTreeMap<String, StageSpec>,
    model: &str,
    head: Head,
    ensemble: bool,
) -> Option<Table5> {
    let kind = stages.get(model)?.kind;
    match (head, kind) {
        _ if ensemble => None,
        (Head::Paw, StageKind::FinetunePaw) | (Head::PartOnly, StageKind::TrainParts) => {
            let parts = parts_of(stages, model)?;
            on_cam_patches(stages, parts).then_some(if head == Head::Paw {
                Table5::Paw
            } else {
                Table5::PartOnly
            })
        }
        (Head::Loc, StageKind::Compress) => stages
            .values()
            .any(|p| {
                p.kind == StageKind::TrainParts
                    && p.inputs.get("whole").is_some_and(|w| w == model)
                    && on_cam_patches(stages, p)
            })
            .then_some(Table5::WholeOnly),
        _ => None,
    }
}

/// How the data stage `id` crops its images.
fn crop_of(stages: &BTreeMap<String, StageSpec>, id: &str) -> Crop {
    match stages.get(id) {
        Some(d) if d.kind == StageKind::CropData => {
            if d.inputs.contains_key("regions") {
                Crop::Cam
            } else {
                Crop::Box
            }
        }
        _ => Crop::Full,
    }
}

/// Every successful evaluation of `runs`.
pub fn evaluations(runs: &[RunRecord], cache: &Cache) -> Vec<Evaluation> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let configs = configurations(runs);
    for run in runs {
        let stages = stages(run);
        for s in run
            .stages
            .iter()
            .filter(|s| s.kind == "evaluate" && (s.status == "ran" || s.status == "cached"))
        {
            // Two specs that share a stage share its cache entry: count it once.
            if !seen.insert(s.key.clone()) {
                continue;
            }
            let Some(spec) = stages.get(&s.id) else {
                continue;
            };
            let StageConfig::Evaluate(cfg) = &spec.config else {
                continue;
            };
            let Some(eval) = crate::metrics::EvalSummary::of(&s.summary) else {
                continue;
            };
            let members: Vec<&str> = spec
                .inputs
                .iter()
                .filter(|(role, _)| role.starts_with(crate::spec::MEMBER_ROLE))
                .map(|(_, id)| id.as_str())
                .collect();
            let model_stage = spec.inputs.get("model").cloned().unwrap_or_default();
            let model = stages.get(&model_stage);
            let train = model.and_then(|m| m.config.train());
            let model_summary = run.stages.iter().find(|x| x.id == model_stage);
            // The evaluated net's size: an FRL's without its MNL branch.
            let params = model_summary.and_then(|x| {
                let train = crate::metrics::summary_of::<crate::metrics::TrainSummary>(&x.summary);
                let compress =
                    crate::metrics::summary_of::<crate::metrics::CompressSummary>(&x.summary);
                train.map(|t| t.params_loc).or(compress.map(|c| c.params))
            });
            let attributes = entry_dir(cache, run, &s.id)
                .and_then(|d| {
                    crate::metrics::store::read_attributes(&d.join("attributes.parquet")).ok()
                })
                .unwrap_or_default();
            out.push(Evaluation {
                run: run.id.clone(),
                seed: run.spec["seed"].as_u64().unwrap_or(0),
                config: configs[&run.id].clone(),
                stage: s.id.clone(),
                head: cfg.head,
                split: cfg.split,
                // An ensemble shows every member.
                model_stage: std::iter::once(model_stage.as_str())
                    .chain(members.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" + "),
                // An ensemble is not its first member: the paper's rows skip it.
                model_kind: if members.is_empty() {
                    model.map(|m| m.kind)
                } else {
                    None
                },
                net: train.map(|t| t.net),
                mnl: model.and_then(|m| match &m.config {
                    StageConfig::TrainFrl(f) => Some(f.mnl),
                    _ => None,
                }),
                loss_scale: train.map_or(1.0, |t| t.loss_scale),
                grid: grid_of(&stages, &model_stage),
                table5: table5_of(&stages, &model_stage, cfg.head, !members.is_empty()),
                single_label: eval.single_label(),
                crop: crop_of(
                    &stages,
                    spec.inputs.get("data").map_or("data", |d| d.as_str()),
                ),
                mean_accuracy: eval.mean_accuracy,
                params: params.map(|p| p as f64),
                attributes,
            });
        }
    }
    out
}

/// Each run's configuration, by run id: its overrides other than the seed
/// ([`config_of`]). Specs that build on each other (the paper's, sharing
/// their FRL) pool into one configuration; but where two specs' runs of
/// one seed computed a stage of the same id differently (other data, other
/// settings), each spec's name leads its label, so their numbers are never
/// pooled as if they were seeds.
pub fn configurations(runs: &[RunRecord]) -> BTreeMap<String, String> {
    let seed = |r: &RunRecord| r.spec["seed"].as_u64();
    let differ = |a: &RunRecord, b: &RunRecord| {
        a.name != b.name
            && seed(a) == seed(b)
            && config_of(a) == config_of(b)
            && a.stages
                .iter()
                .any(|s| b.stages.iter().any(|t| t.id == s.id && t.key != s.key))
    };
    let named = runs
        .iter()
        .enumerate()
        .any(|(i, a)| runs[i + 1..].iter().any(|b| differ(a, b)));
    runs.iter()
        .map(|r| {
            let config = config_of(r);
            let label = match (named, config.is_empty()) {
                (false, _) => config,
                (true, true) => r.name.clone(),
                (true, false) => format!("{} {config}", r.name),
            };
            (r.id.clone(), label)
        })
        .collect()
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
        if dir.join("epochs.parquet").exists()
            && let Ok(rows) = read_epochs(&dir)
        {
            out.extend(rows.into_iter().map(|(m, e, v)| (s.id.clone(), m, e, v)));
        }
    }
    out
}

/// `(metric, epoch, value)` rows of an entry's `epochs.parquet`, part
/// subnets named by their attribute (`part-Smiling/val_accuracy`): the
/// entry numbers them (`part03/…`), its `paw.json` says which is which.
pub fn read_epochs(
    dir: &std::path::Path,
) -> Result<Vec<(String, u32, f64)>, crate::metrics::store::StoreError> {
    let rows = crate::metrics::store::read_epochs(&dir.join("epochs.parquet"))?;
    let info: Option<serde_json::Value> = std::fs::read(dir.join("paw.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let names: Vec<&str> = info
        .as_ref()
        .filter(|v| v["grid"].is_null())
        .and_then(|v| v["whole"]["attributes"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|i| crate::attributes::CELEBA.get(i.as_u64()? as usize).copied())
        .collect();
    Ok(rows
        .into_iter()
        .map(|(m, e, v)| (named_part(&m, &names).unwrap_or(m), e, v))
        .collect())
}

/// `part03/x` → `part-<attribute 3>/x`.
fn named_part(metric: &str, names: &[&str]) -> Option<String> {
    let rest = metric.strip_prefix("part")?;
    let (digits, tail) = rest.split_once('/')?;
    if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = names.get(digits.parse::<usize>().ok()?)?;
    Some(format!("part-{name}/{tail}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table5_columns_come_from_how_the_models_were_built() {
        let spec =
            crate::spec::load(std::path::Path::new("experiments/paw_controls.toml"), &[]).unwrap();
        let stages: BTreeMap<String, StageSpec> =
            spec.stages.into_iter().map(|s| (s.id.clone(), s)).collect();
        let col = |model: &str, head: Head| table5_of(&stages, model, head, false);
        assert_eq!(col("paw", Head::Paw), Some(Table5::Paw));
        assert_eq!(col("parts", Head::PartOnly), Some(Table5::PartOnly));
        assert_eq!(col("snet3", Head::Loc), Some(Table5::WholeOnly));
        // Controls and heads inside PaW are not the paper's columns.
        assert_eq!(col("paw-fixed", Head::Paw), None);
        assert_eq!(col("paw-oracle", Head::Paw), None);
        assert_eq!(col("parts-fixed", Head::PartOnly), None);
        assert_eq!(col("snet3-longer", Head::Loc), None);
        assert_eq!(col("paw", Head::WholeOnly), None);
        assert_eq!(table5_of(&stages, "snet3", Head::Loc, true), None);
    }

    use super::*;

    #[test]
    fn numbered_parts_of_older_entries_get_their_attribute_names() {
        let names = ["Eyeglasses", "Smiling"];
        assert_eq!(
            named_part("part01/val_accuracy", &names).as_deref(),
            Some("part-Smiling/val_accuracy")
        );
        // Already named, out of range, or not a part: unchanged.
        assert_eq!(named_part("part-Smiling/val_accuracy", &names), None);
        assert_eq!(named_part("part07/val_accuracy", &names), None);
        assert_eq!(named_part("hint/train_loss", &names), None);
    }
}
