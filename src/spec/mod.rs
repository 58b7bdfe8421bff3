//! Experiment specs: TOML in, a validated [`Spec`] out.
//!
//! Rough outline:
//! 1. read the file and every `extends` base, merge them (child wins; stages
//!    merge by `id`);
//! 2. apply `-s key=value` overrides to the merged document;
//! 3. deserialize into the raw [`schema`] (unknown keys rejected);
//! 4. resolve: fill defaults, validate values, turn the `[data]` table into
//!    the implicit stage `data`.
//!
//! Every error names the file, line and column, the key path and what is
//! allowed. Cross-stage checks (dangling references, cycles) live in `plan`.

pub mod command;
pub mod executor;
pub mod locate;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attributes;
pub use command::CommandConfig;
pub use executor::{ExecutorKind, ExecutorSpec};
use locate::{Seg, Source, display_path};
use schema::*;

/// A spec that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("failed to read spec `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("invalid override `-s {arg}`: {message}")]
    Override { arg: String, message: String },
}

/// A validated experiment: defaults filled in, every value checked.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub name: String,
    pub title: String,
    pub seed: u64,
    /// The spec file as given on the command line.
    pub path: PathBuf,
    /// `-s` overrides applied, as typed.
    pub overrides: Vec<String>,
    pub data: DataSpec,
    /// Stages in file order; `data` first.
    pub stages: Vec<StageSpec>,
    /// Sweep points of the spec's `[sweep]`, each a list of overrides.
    pub sweep: Vec<Vec<String>>,
    /// The overrides that made this spec one point of a sweep (empty otherwise).
    pub point: Vec<String>,
    /// How the sweep's best configuration is chosen, if it is.
    pub select: Option<Selection>,
    /// `file:line:column` of each stage's table, for errors found later (plan).
    #[serde(skip)]
    pub stage_locations: BTreeMap<String, String>,
    /// Where the stages run (`[executor]`); in no cache key.
    pub executor: ExecutorSpec,
    /// `exp run --stage`: the stages asked for (their upstream runs too);
    /// empty for the whole spec. A partial run is not the spec as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

impl Spec {
    /// Keep only the stages `ids` and the stages they read from, in order.
    pub fn select_stages(&mut self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for id in ids {
            if !self.stages.iter().any(|s| &s.id == id) {
                let known: Vec<String> = self.stages.iter().map(|s| format!("`{}`", s.id)).collect();
                return Err(format!(
                    "no stage `{id}` in `{}`; its stages are {}",
                    self.path.display(),
                    known.join(", ")
                ));
            }
            todo.push(id.clone());
        }
        while let Some(id) = todo.pop() {
            if keep.insert(id.clone()) {
                if let Some(s) = self.stages.iter().find(|s| s.id == id) {
                    todo.extend(s.inputs.values().cloned());
                }
            }
        }
        self.stages.retain(|s| keep.contains(&s.id));
        self.only = ids.to_vec();
        Ok(())
    }
}

/// Input roles `member-1`, `member-2`, …: an `evaluate` ensemble's other models.
pub const MEMBER_ROLE: &str = "member-";

/// Which data set, at which size.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataSpec {
    pub dataset: String,
    pub image_size: u32,
    pub train_images: u32,
    pub val_images: u32,
    pub test_images: u32,
    /// The labels modelled: indices into [`attributes::CELEBA`], or for
    /// single-label sets (`synthetic-birds`, `cub200`) the classes `0..C`
    /// (label indices; see `class_offset`).
    pub attributes: Vec<usize>,
    pub seed: u64,
    /// Generated sets: the frozen generator version
    /// ([`crate::data::synthetic_faces::VERSIONS`]). Left out of the key at 1,
    /// so data sets made before versions existed keep their keys.
    #[serde(default = "first_generator", skip_serializing_if = "is_first_generator")]
    pub generator: u32,
    /// `synthetic-birds`: the generator's class of label 0, counted from 0
    /// (`[data] first-class` − 1). Left out of the key at 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub class_offset: u32,
    /// A data set on disk (`celeba`); absent for generated sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<RealData>,
}

impl StageConfig {
    /// The training hyperparameters of a training stage.
    pub fn train(&self) -> Option<&TrainConfig> {
        match self {
            StageConfig::Train(t) | StageConfig::TrainFusion(t) | StageConfig::FinetunePaw(t) => {
                Some(t)
            }
            StageConfig::TrainFrl { train, .. }
            | StageConfig::Compress { train, .. }
            | StageConfig::TrainParts { train, .. } => Some(train),
            _ => None,
        }
    }
}

fn first_generator() -> u32 {
    1
}

fn is_first_generator(v: &u32) -> bool {
    *v == 1
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl DataSpec {
    /// CUB-style data: one class per image (softmax, top-1 accuracy).
    pub fn single_label(&self) -> bool {
        matches!(self.dataset.as_str(), "synthetic-birds" | "cub200")
    }
}

/// Where a real data set lives and how its images are cropped.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RealData {
    pub root: PathBuf,
    /// `unaligned` (`Img/img_celeba`, the paper's uCelebA) or `aligned`.
    pub variant: String,
    /// `bbox` (square around `list_bbox_celeba.txt`'s box × `expand`) or `none`.
    pub crop: String,
    pub expand: f64,
    /// Leave out missing or unreadable images (counted) instead of failing.
    #[serde(default)]
    pub skip_missing: bool,
}

/// One stage of the DAG.
#[derive(Debug, Clone, Serialize)]
pub struct StageSpec {
    pub id: String,
    pub kind: StageKind,
    /// Upstream stages by role (`data`, `model`): the DAG's edges.
    pub inputs: BTreeMap<String, String>,
    pub config: StageConfig,
}

/// The stage kinds `exp` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    GenerateData,
    ReadData,
    Train,
    TrainFrl,
    Localize,
    Compress,
    TrainParts,
    TrainFusion,
    FinetunePaw,
    Evaluate,
    CropData,
    Command,
}

impl StageKind {
    pub const ALL: [StageKind; 12] = [
        Self::GenerateData,
        Self::ReadData,
        Self::Train,
        Self::TrainFrl,
        Self::Localize,
        Self::CropData,
        Self::Compress,
        Self::TrainParts,
        Self::TrainFusion,
        Self::FinetunePaw,
        Self::Evaluate,
        Self::Command,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerateData => "generate-data",
            Self::ReadData => "read-data",
            Self::Train => "train",
            Self::TrainFrl => "train-frl",
            Self::Localize => "localize",
            Self::Compress => "compress",
            Self::TrainParts => "train-parts",
            Self::TrainFusion => "train-fusion",
            Self::FinetunePaw => "finetune-paw",
            Self::Evaluate => "evaluate",
            Self::CropData => "crop-data",
            Self::Command => "command",
        }
    }

    /// Bump when a kind's output changes for the same inputs: old cache
    /// entries then stop matching.
    pub fn version(self) -> u32 {
        match self {
            // 2: faces fill more of the frame (like the paper's detector crops);
            // 3: preprocessed shards in the entry.
            Self::GenerateData => 3,
            // 3: truncated JPEGs are errors, not silently grey; the data's
            // fingerprint in the artefact.
            Self::ReadData => 3,
            // 2: MaxBoxAcc beside the pointing game; 3: averages over local
            // attributes only.
            Self::Localize => 3,
            // 2: score biases start at the log prior odds.
            Self::Train | Self::TrainFrl => 2,
            // 2: every subnet's parameters have their own ids (they shared
            // SNet3's, so fine-tuning mixed their gradients).
            Self::FinetunePaw => 2,
            _ => 1,
        }
    }

    /// Whether results depend on the compute backend and dtype. Data
    /// generation does not, so a GPU run reuses the CPU's data.
    pub fn depends_on_backend(self) -> bool {
        !matches!(self, Self::GenerateData | Self::ReadData | Self::Command)
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Keys a `[[stage]]` of this kind accepts, beyond `id` and `kind`.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::GenerateData | Self::ReadData => &[],
            Self::Train => &[
                "data",
                "net",
                "width",
                "maps",
                "epochs",
                "batch-size",
                "lr",
                "momentum",
                "weight-decay",
                "flip",
                "init",
                "backbone",
                "from",
                "precision",
                "lr-schedule",
                "keep",
                "loss-normalization",
                "loss-scale",
                "seed",
                "seed-offset",
            ],
            Self::TrainFrl => &[
                "data",
                "net",
                "width",
                "maps",
                "epochs",
                "batch-size",
                "lr",
                "momentum",
                "weight-decay",
                "flip",
                "mnl",
                "mnl-hidden",
                "init",
                "backbone",
                "precision",
                "lr-schedule",
                "keep",
                "loss-normalization",
                "loss-scale",
                "seed",
                "seed-offset",
            ],
            Self::Localize => &["data", "model", "patch", "samples", "centre"],
            Self::Compress => &[
                "data",
                "teacher",
                "net",
                "width",
                "epochs",
                "batch-size",
                "lr",
                "momentum",
                "weight-decay",
                "flip",
                "hint-epochs",
                "hint-lr",
                "precision",
                "lr-schedule",
                "keep",
                "loss-normalization",
                "loss-scale",
                "seed",
                "seed-offset",
            ],
            Self::TrainParts => &[
                "data",
                "whole",
                "regions",
                "grid",
                "part-size",
                "epochs",
                "batch-size",
                "lr",
                "momentum",
                "weight-decay",
                "flip",
                "precision",
                "lr-schedule",
                "keep",
                "loss-normalization",
                "loss-scale",
                "seed",
                "seed-offset",
            ],
            Self::TrainFusion => &[
                "data",
                "parts",
                "epochs",
                "batch-size",
                "lr",
                "momentum",
                "weight-decay",
                "flip",
                "precision",
                "lr-schedule",
                "keep",
                "loss-normalization",
                "loss-scale",
                "seed",
                "seed-offset",
            ],
            Self::FinetunePaw => &[
                "data",
                "fusion",
                "epochs",
                "batch-size",
                "lr",
                "momentum",
                "weight-decay",
                "flip",
                "precision",
                "lr-schedule",
                "keep",
                "loss-normalization",
                "loss-scale",
                "seed",
                "seed-offset",
            ],
            Self::Evaluate => &["data", "model", "ensemble", "split", "head"],
            Self::CropData => &["data", "regions", "expand", "box"],
            // Its own table type (`command::RawCommand`) checks its keys.
            Self::Command => &[],
        }
    }
}

/// Resolved parameters of a stage: what goes into its cache key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StageConfig {
    GenerateData(DataSpec),
    ReadData(DataSpec),
    Train(TrainConfig),
    TrainFrl {
        #[serde(flatten)]
        train: TrainConfig,
        mnl: bool,
        mnl_hidden: u32,
    },
    Localize {
        patch: f64,
        samples: u32,
        /// Where patches are centred (controls for the FRL's localisation).
        #[serde(default, skip_serializing_if = "is_default")]
        centre: PatchCentre,
    },
    Compress {
        #[serde(flatten)]
        train: TrainConfig,
        hint_epochs: u32,
        hint_lr: f64,
    },
    TrainParts {
        #[serde(flatten)]
        train: TrainConfig,
        part_size: u32,
        grid: Option<u32>,
    },
    TrainFusion(TrainConfig),
    FinetunePaw(TrainConfig),
    Evaluate(EvalConfig),
    /// Crop every image to a box (the CAM box of `regions`, else the
    /// annotated box) × `expand`, as a new data stage.
    CropData {
        expand: f64,
        /// The same centred box in every image (`box = "centre"`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        centre: bool,
    },
    /// The user's own program (`command.rs`).
    Command(CommandConfig),
}

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
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn one() -> f64 {
    1.0
}
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

/// Where `localize` centres each attribute's patch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchCentre {
    /// The CAM's peak in each image (the paper's FRL; the default).
    #[default]
    Cam,
    /// The attribute's mean CAM peak over the training images, the same in
    /// every image: does per-image localisation matter?
    Mean,
    /// The centre of the attribute's ground-truth region (synthetic data):
    /// an oracle localiser. Where an image has no region for the attribute,
    /// its mean ground-truth centre.
    Truth,
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

/// The architectures of the paper's Table 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Net {
    Tnet,
    Snet1,
    Snet2,
    Snet3,
}

impl Net {
    pub const ALL: [Net; 4] = [Net::Tnet, Net::Snet1, Net::Snet2, Net::Snet3];
    pub fn as_str(self) -> &'static str {
        match self {
            Net::Tnet => "tnet",
            Net::Snet1 => "snet1",
            Net::Snet2 => "snet2",
            Net::Snet3 => "snet3",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EvalConfig {
    pub split: Split,
    pub head: Head,
}

/// Which output of a model `evaluate` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// The localisation (GAP) branch of an attribute net: Table 1's "Loc. Branch".
    Loc,
    /// The MNL classification branch of an FRL net.
    Mnl,
    /// The whole PaW net (RSL + ARL).
    Paw,
    /// PaW's whole-image subnet alone.
    WholeOnly,
    /// Attribute j scored by part subnet j.
    PartOnly,
}

impl Head {
    pub const ALL: [Head; 5] = [
        Head::Loc,
        Head::Mnl,
        Head::Paw,
        Head::WholeOnly,
        Head::PartOnly,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Head::Loc => "loc",
            Head::Mnl => "mnl",
            Head::Paw => "paw",
            Head::WholeOnly => "whole-only",
            Head::PartOnly => "part-only",
        }
    }
}

/// Load, merge, override and validate a spec file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
    let mut sources = Vec::new();
    let table = read_with_bases(path, &mut sources)?;
    load_read(path, table, &sources, overrides)
}

/// [`load`] on a spec already read (with its bases): a sweep reads its
/// files once, not once per point.
fn load_read(
    path: &Path,
    mut table: toml::Table,
    sources: &[Source],
    overrides: &[String],
) -> Result<Spec, SpecError> {
    let sources = sources;
    let mut overridden = Vec::new();
    for arg in overrides {
        overridden.push(apply_override(&mut table, arg)?);
    }
    let ctx = Ctx {
        sources,
        overridden: &overridden,
    };
    let raw: RawSpec = ctx.deserialize(toml::Value::Table(table), &[])?;
    resolve(raw, path, overrides, &ctx)
}

/// Where errors point: the files read (child first) and overridden paths.
struct Ctx<'a> {
    sources: &'a [Source],
    overridden: &'a [(Vec<Seg>, String)],
}

impl Ctx<'_> {
    fn error(&self, path: &[Seg], message: impl std::fmt::Display) -> SpecError {
        let key = display_path(path);
        if let Some((_, arg)) = self
            .overridden
            .iter()
            .rev()
            // The override set this key, or a key inside this table.
            .find(|(p, _)| path.starts_with(p) || (!path.is_empty() && p.starts_with(path)))
        {
            return SpecError::Override {
                arg: arg.clone(),
                message: format!("`{key}`: {message}"),
            };
        }
        let location = self
            .sources
            .iter()
            .find_map(|s| s.locate(path))
            .unwrap_or_else(|| self.sources[0].path.display().to_string());
        let message = if key.is_empty() {
            message.to_string()
        } else {
            format!("`{key}`: {message}")
        };
        SpecError::Invalid { location, message }
    }

    fn deserialize<T: serde::de::DeserializeOwned>(
        &self,
        value: toml::Value,
        base: &[Seg],
    ) -> Result<T, SpecError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path = base.to_vec();
            for seg in e.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Seq { index } => path.push(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => path.push(Seg::Key(key.clone())),
                    _ => {}
                }
            }
            let inner = e.into_inner().to_string();
            // The path is already in front: drop toml's trailing "in `key`" and
            // our raw type names.
            let message: Vec<&str> = inner
                .lines()
                .filter(|l| !l.trim_start().starts_with("in `"))
                .collect();
            let mut message = message.join(" ").trim().to_string();
            if let Some(i) = message.find("expected struct Raw") {
                let rest = &message[i + "expected struct Raw".len()..];
                let end = rest
                    .find(|c: char| !c.is_alphanumeric())
                    .unwrap_or(rest.len());
                message = format!("{}expected a table{}", &message[..i], &rest[end..]);
            }
            self.error(&path, message)
        })
    }
}

fn read_with_bases(path: &Path, sources: &mut Vec<Source>) -> Result<toml::Table, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.into(),
        source,
    })?;
    let src = Source::new(path, text);
    let mut table: toml::Table = toml::from_str(&src.text).map_err(|e| {
        let location = e
            .span()
            .map_or_else(|| path.display().to_string(), |s| src.position(s.start));
        SpecError::Invalid {
            location,
            message: e.message().to_string(),
        }
    })?;
    let base = table.remove("extends");
    sources.push(src);
    let Some(base) = base else { return Ok(table) };
    let here = &sources[sources.len() - 1];
    let base_rel = match base {
        toml::Value::String(s) => s,
        other => {
            let location = here
                .locate(&[Seg::Key("extends".into())])
                .unwrap_or_default();
            return Err(SpecError::Invalid {
                location,
                message: format!(
                    "`extends`: expected a path string, found {}",
                    other.type_str()
                ),
            });
        }
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&base_rel);
    if sources.iter().any(|s| s.path == base_path) {
        let location = here
            .locate(&[Seg::Key("extends".into())])
            .unwrap_or_default();
        return Err(SpecError::Invalid {
            location,
            message: format!("`extends`: `{base_rel}` is already in the chain of bases (a cycle)"),
        });
    }
    let mut merged = read_with_bases(&base_path, sources)?;
    // `sources` must list the child first so its positions win.
    let base_sources = sources.split_off(sources.len() - 1);
    let child_index = sources.iter().position(|s| s.path == path).unwrap_or(0);
    let child = sources.remove(child_index);
    sources.insert(0, child);
    sources.extend(base_sources);
    merge(&mut merged, table);
    Ok(merged)
}

/// Deep merge: tables recursively, `stage` arrays by `id`, everything else replaced.
fn merge(base: &mut toml::Table, child: toml::Table) {
    for (key, value) in child {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(c)) => merge(b, c),
            (Some(toml::Value::Array(b)), toml::Value::Array(c)) if key == "stage" => {
                for stage in c {
                    let id = stage.get("id").cloned();
                    let existing = b
                        .iter_mut()
                        .find(|s| id.is_some() && s.get("id") == id.as_ref());
                    match (existing, stage) {
                        (Some(toml::Value::Table(bt)), toml::Value::Table(ct)) => merge(bt, ct),
                        (_, stage) => b.push(stage),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Apply `key.path=value`; `stage.<id>.<key>` addresses a stage by id.
/// Returns the table path it set, for error locations.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(Vec<Seg>, String), SpecError> {
    let err = |message: String| SpecError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected `key.path=value`".into()))?;
    let value = parse_value(raw.trim());
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(format!("`{key}` is not a key path")));
    }
    let mut path = Vec::new();
    let mut cursor = table;
    let mut rest = &parts[..];
    if parts[0] == "stage" {
        let [_, id, tail @ ..] = parts.as_slice() else {
            return Err(err("stage overrides are `stage.<id>.<key>=value`".into()));
        };
        let stages = cursor
            .get_mut("stage")
            .and_then(|v| v.as_array_mut())
            .ok_or_else(|| err("the spec has no stages".into()))?;
        let ids: Vec<String> = stages
            .iter()
            .filter_map(|s| s.get("id")?.as_str().map(String::from))
            .collect();
        let index = stages
            .iter()
            .position(|s| s.get("id").and_then(|v| v.as_str()) == Some(id))
            .ok_or_else(|| err(format!("no stage `{id}`; stages are {}", backticked(&ids))))?;
        if tail.is_empty() {
            return Err(err("stage overrides are `stage.<id>.<key>=value`".into()));
        }
        path.extend([Seg::Key("stage".into()), Seg::Index(index)]);
        cursor = stages[index]
            .as_table_mut()
            .ok_or_else(|| err(format!("stage `{id}` is not a table")))?;
        rest = tail;
    }
    let (last, dirs) = rest.split_last().expect("non-empty");
    for dir in dirs {
        path.push(Seg::Key(dir.to_string()));
        let entry = cursor
            .entry(dir.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cursor = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("`{dir}` is not a table")))?;
    }
    path.push(Seg::Key(last.to_string()));
    cursor.insert(last.to_string(), value);
    Ok((path, arg.to_string()))
}

/// A TOML value if it parses as one (`0.1`, `true`, `[1, 2]`), else a string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn backticked(items: &[impl AsRef<str>]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn key(path: &[Seg], k: &str) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(Seg::Key(k.into()));
    p
}

const DATASETS: [&str; 4] = ["synthetic-faces", "celeba", "synthetic-birds", "cub200"];

fn resolve(raw: RawSpec, path: &Path, overrides: &[String], ctx: &Ctx) -> Result<Spec, SpecError> {
    let RawSpec {
        extends: _,
        experiment,
        data,
        train,
        stage,
        sweep,
        executor,
    } = raw;
    let (sweep, select) = resolve_sweep(sweep, ctx)?;
    let executor = executor::resolve(executor, ctx)?;
    let has_data_table = data.is_some();
    let exp_path = [Seg::Key("experiment".into())];
    check_name(&experiment.name, ctx, &key(&exp_path, "name"))?;
    let seed = experiment.seed.unwrap_or(0);
    let data = resolve_data(data, seed, ctx, &p_data())?;
    let defaults = train.unwrap_or_default();
    // `[train]` is checked even when no stage uses it: a typo there is a typo.
    resolve_stage(
        StageKind::Train,
        RawStage {
            id: "train-defaults".into(),
            kind: "train".into(),
            ..Default::default()
        },
        &defaults,
        seed,
        &[Seg::Key("train".into())],
        ctx,
    )?;

    let (kind, config) = match data.real {
        None => (
            StageKind::GenerateData,
            StageConfig::GenerateData(data.clone()),
        ),
        Some(_) => (StageKind::ReadData, StageConfig::ReadData(data.clone())),
    };
    let mut stages = vec![StageSpec {
        id: "data".into(),
        kind,
        inputs: BTreeMap::new(),
        config,
    }];
    let mut stage_locations = BTreeMap::new();
    for (i, table) in stage.into_iter().enumerate() {
        let here = vec![Seg::Key("stage".into()), Seg::Index(i)];
        let kind_name = match table.get("kind") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(ctx.error(
                    &key(&here, "kind"),
                    format!("expected a string, found {}", other.type_str()),
                ));
            }
            None => return Err(ctx.error(&here, "missing field `kind`")),
        };
        let kind = StageKind::parse(&kind_name).ok_or_else(|| {
            let known: Vec<_> = StageKind::ALL
                .iter()
                .filter(|k| !matches!(k, StageKind::GenerateData | StageKind::ReadData))
                .map(|k| k.as_str())
                .collect();
            ctx.error(
                &key(&here, "kind"),
                format!(
                    "unknown stage kind `{kind_name}`; known kinds are {}",
                    backticked(&known)
                ),
            )
        })?;
        if matches!(kind, StageKind::GenerateData | StageKind::ReadData) {
            // A second data set (e.g. a pretraining task): `[data]`'s keys, plus
            // `seed` (default: the experiment's).
            let spec = resolve_data_stage(table, seed, &here, ctx)?;
            check_name(&spec.id, ctx, &key(&here, "id"))?;
            if stages.iter().any(|s| s.id == spec.id) {
                return Err(ctx.error(
                    &key(&here, "id"),
                    format!("duplicate stage id `{}`", spec.id),
                ));
            }
            stages.push(spec);
            continue;
        }
        if kind == StageKind::Command {
            let spec = command::resolve(table, seed, &here, ctx)?;
            check_name(&spec.id, ctx, &key(&here, "id"))?;
            if stages.iter().any(|s| s.id == spec.id) {
                return Err(ctx.error(
                    &key(&here, "id"),
                    format!("duplicate stage id `{}`", spec.id),
                ));
            }
            if let Some(loc) = ctx
                .sources
                .iter()
                .find_map(|src| src.locate(&key(&here, "id")))
            {
                stage_locations.insert(spec.id.clone(), loc);
            }
            stages.push(spec);
            continue;
        }
        for k in table.keys() {
            if k != "id" && k != "kind" && !kind.keys().contains(&k.as_str()) {
                let allowed: Vec<&str> = ["id", "kind"]
                    .into_iter()
                    .chain(kind.keys().iter().copied())
                    .collect();
                return Err(ctx.error(
                    &key(&here, k),
                    format!(
                        "unknown key `{k}` for kind `{kind_name}`; allowed keys are {}",
                        backticked(&allowed)
                    ),
                ));
            }
        }
        let s: RawStage = ctx.deserialize(toml::Value::Table(table), &here)?;
        let stage_seed = match (s.seed, s.seed_offset) {
            (Some(_), Some(_)) => {
                return Err(ctx.error(
                    &key(&here, "seed-offset"),
                    "give either `seed` (this stage's own) or `seed-offset` (added to the experiment's), not both",
                ));
            }
            (Some(v), None) => v,
            (None, offset) => seed + offset.unwrap_or(0),
        };
        let spec = resolve_stage(kind, s, &defaults, stage_seed, &here, ctx)?;
        if let Some(loc) = ctx
            .sources
            .iter()
            .find_map(|src| src.locate(&key(&here, "id")))
        {
            stage_locations.insert(spec.id.clone(), loc);
        }
        check_name(&spec.id, ctx, &key(&here, "id"))?;
        if let Some(first) = stages.iter().position(|s| s.id == spec.id) {
            let what = if first == 0 {
                "the implicit data stage".to_string()
            } else {
                format!("stage[{}]", first - 1)
            };
            return Err(ctx.error(
                &key(&here, "id"),
                format!("duplicate stage id `{}` (also {what})", spec.id),
            ));
        }
        stages.push(spec);
    }
    // A spec of command stages only needs no synthetic faces.
    if !has_data_table
        && !stages
            .iter()
            .any(|s| s.inputs.values().any(|t| t == "data"))
    {
        stages.remove(0);
    }
    if let Some(sel) = &select {
        // A command stage is trusted to score on validation data (its script says).
        let ok = stages.iter().any(|s| {
            s.id == sel.stage
                && match &s.config {
                    StageConfig::Evaluate(e) => e.split == Split::Val,
                    StageConfig::Command(_) => true,
                    _ => false,
                }
        });
        if !ok {
            return Err(ctx.error(
                &[Seg::Key("sweep".into()), Seg::Key("select".into())],
                format!("`{}` must be an `evaluate` stage with `split = \"val\"` (choices are made on validation, test is only reported) or a `command` stage", sel.stage),
            ));
        }
    }
    let mut spec = Spec {
        name: experiment.name.clone(),
        title: experiment.title.unwrap_or(experiment.name),
        seed,
        path: path.to_path_buf(),
        overrides: overrides.to_vec(),
        data,
        stages,
        sweep,
        select,
        point: Vec::new(),
        stage_locations,
        executor,
        only: Vec::new(),
    };
    if let Some(only) = &experiment.only {
        spec.select_stages(only)
            .map_err(|e| ctx.error(&[Seg::Key("experiment".into()), Seg::Key("only".into())], e))?;
    }
    Ok(spec)
}

/// The most runs one sweep may expand to (grid × samples × seeds).
pub const MAX_SWEEP_POINTS: usize = 10_000;

fn resolve_sweep(
    raw: Option<RawSweep>,
    ctx: &Ctx,
) -> Result<(Vec<Vec<String>>, Option<Selection>), SpecError> {
    let Some(RawSweep {
        seeds,
        grid,
        samples,
        search_seed,
        space,
        select,
        direction,
        metric,
    }) = raw
    else {
        return Ok((Vec::new(), None));
    };
    let sw = |k: &str| [Seg::Key("sweep".into()), Seg::Key(k.into())];
    let selection = match select {
        None => None,
        Some(stage) => {
            let maximise = match direction.as_deref() {
                None | Some("max") => true,
                Some("min") => false,
                Some(d) => {
                    return Err(ctx.error(
                        &sw("direction"),
                        format!("unknown direction `{d}`; allowed: `max`, `min`"),
                    ));
                }
            };
            Some(Selection {
                stage,
                maximise,
                metric: metric.unwrap_or_else(|| "mean_accuracy".into()),
            })
        }
    };
    let mut axes: Vec<Vec<String>> = Vec::new();
    // Random search draws whole points; it is one axis of the product.
    if let Some(space) = space {
        let n = samples.unwrap_or(4).max(1);
        if n as usize > MAX_SWEEP_POINTS {
            return Err(ctx.error(
                &sw("samples"),
                format!("at most {MAX_SWEEP_POINTS} points per sweep, got {n}"),
            ));
        }
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(search_seed.unwrap_or(0));
        let mut draws = vec![String::new(); n as usize];
        for (path, dist) in &space {
            let here = [
                Seg::Key("sweep".into()),
                Seg::Key("space".into()),
                Seg::Key(path.clone()),
            ];
            for d in draws.iter_mut() {
                let v = sample(dist, &mut rng).ok_or_else(|| ctx.error(&here, "expected a list of choices, `{ uniform = [a, b] }` or `{ log-uniform = [a, b] }` with a < b (log: a > 0)"))?;
                if !d.is_empty() {
                    d.push('\u{1f}');
                }
                d.push_str(&format!("{path}={v}"));
            }
        }
        axes.push(draws);
    } else if samples.is_some() {
        return Err(ctx.error(&sw("samples"), "random search needs a `space`"));
    }
    for (path, values) in grid.unwrap_or_default() {
        let here = [
            Seg::Key("sweep".into()),
            Seg::Key("grid".into()),
            Seg::Key(path.clone()),
        ];
        let toml::Value::Array(values) = values else {
            return Err(ctx.error(&here, "expected an array of values"));
        };
        if values.is_empty() {
            return Err(ctx.error(&here, "needs at least one value"));
        }
        axes.push(values.iter().map(|v| format!("{path}={v}")).collect());
    }
    if let Some(seeds) = seeds {
        if seeds.is_empty() {
            return Err(ctx.error(
                &[Seg::Key("sweep".into()), Seg::Key("seeds".into())],
                "needs at least one seed",
            ));
        }
        axes.push(
            seeds
                .iter()
                .map(|s| format!("experiment.seed={s}"))
                .collect(),
        );
    }
    // Checked before the product is built: a 1000 × 1000 grid must not
    // allocate a million points to say it is too large.
    let total = axes
        .iter()
        .try_fold(1usize, |acc, a| acc.checked_mul(a.len()))
        .filter(|&t| t <= MAX_SWEEP_POINTS);
    if total.is_none() {
        let sizes: Vec<String> = axes.iter().map(|a| a.len().to_string()).collect();
        return Err(ctx.error(
            &[Seg::Key("sweep".into())],
            format!(
                "at most {MAX_SWEEP_POINTS} points per sweep; this one has {} (axes of {})",
                axes.iter().map(|a| a.len() as f64).product::<f64>(),
                sizes.join(" × ")
            ),
        ));
    }
    // Random-search draws carry several overrides joined by U+001F.
    let points = cartesian(&axes)
        .into_iter()
        .map(|p| {
            p.iter()
                .flat_map(|x| x.split('\u{1f}').map(String::from).collect::<Vec<_>>())
                .collect()
        })
        .collect();
    Ok((points, selection))
}

/// Which validation stage picks a sweep's best configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub stage: String,
    pub maximise: bool,
    /// The number in the stage's summary that is compared.
    pub metric: String,
}

/// One draw from a search-space entry, as a TOML literal.
fn sample(dist: &toml::Value, rng: &mut impl rand::Rng) -> Option<String> {
    match dist {
        toml::Value::Array(choices) if !choices.is_empty() => {
            Some(choices[rng.random_range(0..choices.len())].to_string())
        }
        toml::Value::Table(t) if t.len() == 1 => {
            let (kind, range) = t.iter().next()?;
            let r = range.as_array()?;
            let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
            let (a, b) = (num(r.first()?)?, num(r.get(1)?)?);
            if r.len() != 2 || a >= b {
                return None;
            }
            let ints = r.iter().all(|v| v.is_integer());
            let x = match kind.as_str() {
                "uniform" => a + (b - a) * rng.random::<f64>(),
                "log-uniform" if a > 0.0 => {
                    (a.ln() + (b.ln() - a.ln()) * rng.random::<f64>()).exp()
                }
                _ => return None,
            };
            Some(if ints {
                format!("{}", x.round() as i64)
            } else {
                format!("{x:.6e}")
            })
        }
        _ => None,
    }
}

/// Every combination, one value per axis, in axis order.
pub fn cartesian(axes: &[Vec<String>]) -> Vec<Vec<String>> {
    axes.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.iter()
                    .map(move |v| prefix.iter().cloned().chain([v.clone()]).collect())
            })
            .collect()
    })
}

/// The runs a command line asks for: the spec's `[sweep]` points times the
/// comma-separated `-s` values (`-s train.lr=0.1,0.01`), each a full spec
/// loaded and validated with its point's overrides. No sweep: one spec.
pub fn load_points(path: &Path, overrides: &[String]) -> Result<Vec<Spec>, SpecError> {
    let mut fixed = Vec::new();
    let mut axes = Vec::new();
    for arg in overrides {
        match arg.split_once('=') {
            Some((k, v)) if is_multi(v) => {
                axes.push(v.split(',').map(|x| format!("{k}={}", x.trim())).collect())
            }
            _ => fixed.push(arg.clone()),
        }
    }
    let mut sources = Vec::new();
    let read = read_with_bases(path, &mut sources)?;
    let base = load_read(path, read.clone(), &sources, &fixed)?;
    // A point is one run: it keeps the sweep's selection rule but does not
    // expand the sweep again (that was quadratic in the number of points).
    let mut read = read;
    if let Some(sweep) = read.get_mut("sweep").and_then(|v| v.as_table_mut()) {
        for k in ["grid", "space", "samples", "seeds", "search-seed"] {
            sweep.remove(k);
        }
    }
    let mut points = Vec::new();
    let spec_points = if base.sweep.is_empty() {
        vec![Vec::new()]
    } else {
        base.sweep.clone()
    };
    for cli_point in cartesian(&axes) {
        for spec_point in &spec_points {
            // Command-line values win over the spec's sweep values.
            let cli_keys: Vec<&str> = fixed.iter().chain(&cli_point).map(|a| key_of(a)).collect();
            let kept: Vec<String> = spec_point
                .iter()
                .filter(|p| !cli_keys.contains(&key_of(p)))
                .cloned()
                .collect();
            let point: Vec<String> = kept.iter().chain(&cli_point).cloned().collect();
            if points.iter().any(|s: &Spec| s.point == point) {
                continue;
            }
            let all: Vec<String> = kept
                .iter()
                .chain(&fixed)
                .chain(&cli_point)
                .cloned()
                .collect();
            let mut spec = load_read(path, read.clone(), &sources, &all)?;
            spec.point = point;
            points.push(spec);
        }
    }
    Ok(points)
}

fn key_of(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(k, _)| k)
}

/// `0.1,0.01` is two values; `[1, 2]` and `"a,b"` are one.
fn is_multi(v: &str) -> bool {
    let v = v.trim();
    v.contains(',')
        && !v.starts_with('[')
        && !v.starts_with('{')
        && !v.starts_with('"')
        && !v.starts_with('\'')
}

/// Defaults, validation and edges of one stage.
fn resolve_stage(
    kind: StageKind,
    s: RawStage,
    d: &RawTrain,
    seed: u64,
    here: &[Seg],
    ctx: &Ctx,
) -> Result<StageSpec, SpecError> {
    let train_path = [Seg::Key("train".into())];
    // A value set on the stage wins over `[train]`; errors point where it was set.
    let at = |set_here: bool, name: &str| {
        if set_here {
            key(here, name)
        } else {
            key(&train_path, name)
        }
    };
    let paper_lr = match kind {
        StageKind::TrainFusion => Some(0.1),
        StageKind::FinetunePaw => Some(1e-3),
        _ => None,
    };
    let default_net = if kind == StageKind::TrainFrl {
        Net::Tnet
    } else {
        Net::Snet3
    };
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
    let train = TrainConfig {
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
    };

    let mut inputs = BTreeMap::from([(
        "data".to_string(),
        s.data.clone().unwrap_or_else(|| "data".into()),
    )]);
    if let Some(b) = &s.backbone {
        if s.init.is_some() {
            return Err(ctx.error(
                &key(here, "backbone"),
                "give either `init` (weights of this architecture) or `backbone` (a stage's conv layers), not both",
            ));
        }
        inputs.insert("backbone".into(), b.clone());
    }
    if let Some(f) = &s.from {
        if s.init.is_some() || s.backbone.is_some() {
            return Err(ctx.error(
                &key(here, "from"),
                "`from` (continue a stage's whole net) excludes `init` and `backbone`",
            ));
        }
        inputs.insert("from".into(), f.clone());
    }
    let mut require = |role: &str, value: &Option<String>| -> Result<(), SpecError> {
        let v = value.clone().ok_or_else(|| {
            ctx.error(
                here,
                format!("kind `{}` needs `{role} = \"<stage id>\"`", kind.as_str()),
            )
        })?;
        inputs.insert(role.to_string(), v);
        Ok(())
    };
    let config = match kind {
        StageKind::GenerateData | StageKind::ReadData | StageKind::Command => {
            unreachable!("resolved by the caller")
        }
        StageKind::Train => StageConfig::Train(train),
        StageKind::TrainFrl => {
            let hidden = positive(s.mnl_hidden.unwrap_or(512), ctx, &key(here, "mnl-hidden"))?;
            StageConfig::TrainFrl {
                train,
                mnl: s.mnl.unwrap_or(true),
                mnl_hidden: hidden,
            }
        }
        StageKind::Localize => {
            require("model", &s.model)?;
            let patch = in_range(
                s.patch.unwrap_or(64.0 / 224.0),
                ctx,
                &key(here, "patch"),
                "must be in (0, 1]",
                |v| v > 0.0 && v <= 1.0,
            )?;
            let centre = choice(
                s.centre.as_ref(),
                &[
                    ("cam", PatchCentre::Cam),
                    ("mean", PatchCentre::Mean),
                    ("truth", PatchCentre::Truth),
                ],
                ctx,
                &key(here, "centre"),
            )?;
            StageConfig::Localize {
                patch,
                samples: s.samples.unwrap_or(8),
                centre,
            }
        }
        StageKind::Compress => {
            require("teacher", &s.teacher)?;
            let hint_lr = in_range(
                s.hint_lr.unwrap_or(1e-7),
                ctx,
                &key(here, "hint-lr"),
                "must be > 0",
                |v| v > 0.0,
            )?;
            let hint_epochs = s.hint_epochs.unwrap_or(epochs);
            if net == Net::Tnet {
                return Err(ctx.error(
                    &at(s.net.is_some(), "net"),
                    "the student of `compress` must be `snet1`, `snet2` or `snet3`",
                ));
            }
            StageConfig::Compress {
                train,
                hint_epochs,
                hint_lr,
            }
        }
        StageKind::TrainParts => {
            require("whole", &s.whole)?;
            let grid =
                match (&s.regions, s.grid) {
                    (Some(_), Some(_)) => {
                        return Err(ctx.error(
                            &key(here, "grid"),
                            "give either `regions` (a localize stage) or `grid`, not both",
                        ));
                    }
                    (None, None) => return Err(ctx.error(
                        here,
                        "kind `train-parts` needs `regions = \"<localize stage>\"` or `grid = 4`",
                    )),
                    (Some(_), None) => {
                        require("regions", &s.regions)?;
                        None
                    }
                    (None, Some(g)) => {
                        Some(
                            in_range(g as f64, ctx, &key(here, "grid"), "must be in 1..=8", |v| {
                                (1.0..=8.0).contains(&v)
                            })? as u32,
                        )
                    }
                };
            let part_size = positive(s.part_size.unwrap_or(64), ctx, &key(here, "part-size"))?;
            if part_size < 16 || part_size % 16 != 0 {
                return Err(ctx.error(
                    &key(here, "part-size"),
                    format!("must be a multiple of 16 (four 2x2 pools), got {part_size}"),
                ));
            }
            StageConfig::TrainParts {
                train,
                part_size,
                grid,
            }
        }
        StageKind::TrainFusion => {
            require("parts", &s.parts)?;
            StageConfig::TrainFusion(train)
        }
        StageKind::FinetunePaw => {
            require("fusion", &s.fusion)?;
            StageConfig::FinetunePaw(train)
        }
        StageKind::Evaluate => {
            require("model", &s.model)?;
            // An ensemble: more models, their probabilities averaged with `model`'s.
            for (i, member) in s.ensemble.iter().flatten().enumerate() {
                inputs.insert(format!("{}{}", MEMBER_ROLE, i + 1), member.clone());
            }
            let split = match s.split.as_deref() {
                None | Some("test") => Split::Test,
                Some("val") => Split::Val,
                Some(other) => {
                    return Err(ctx.error(
                        &key(here, "split"),
                        format!("unknown split `{other}`; allowed: `test`, `val`"),
                    ));
                }
            };
            let head = match s.head.as_deref() {
                None => Head::Loc,
                Some(h) => Head::ALL
                    .into_iter()
                    .find(|x| x.as_str() == h)
                    .ok_or_else(|| {
                        let names: Vec<_> = Head::ALL.iter().map(|h| h.as_str()).collect();
                        ctx.error(
                            &key(here, "head"),
                            format!("unknown head `{h}`; allowed: {}", backticked(&names)),
                        )
                    })?,
            };
            StageConfig::Evaluate(EvalConfig { split, head })
        }
        StageKind::CropData => {
            if s.regions.is_some() {
                require("regions", &s.regions)?;
            }
            let centre = match s.crop_box.as_deref() {
                None | Some("annotated") => false,
                Some("centre") if s.regions.is_some() => {
                    return Err(ctx.error(
                        &key(here, "box"),
                        "`box = \"centre\"` crops without `regions`; remove one",
                    ));
                }
                Some("centre") => true,
                Some(other) => {
                    return Err(ctx.error(
                        &key(here, "box"),
                        format!("unknown box `{other}`; allowed: `annotated`, `centre`"),
                    ));
                }
            };
            StageConfig::CropData {
                centre,
                expand: in_range(
                    s.expand.unwrap_or(1.0),
                    ctx,
                    &key(here, "expand"),
                    "must be in [1, 4]",
                    |v| (1.0..=4.0).contains(&v),
                )?,
            }
        }
    };
    Ok(StageSpec {
        id: s.id,
        kind,
        inputs,
        config,
    })
}

/// `[data]`, or a `generate-data` / `read-data` stage at `p`.
fn resolve_data(
    raw: Option<RawData>,
    seed: u64,
    ctx: &Ctx,
    p: &[Seg],
) -> Result<DataSpec, SpecError> {
    let RawData {
        dataset,
        root,
        variant,
        crop,
        expand,
        skip_missing,
        image_size,
        train_images,
        val_images,
        test_images,
        attributes,
        classes,
        first_class,
        generator,
    } = raw.unwrap_or_default();
    let dataset = dataset.unwrap_or_else(|| "synthetic-faces".into());
    if !DATASETS.contains(&dataset.as_str()) {
        return Err(ctx.error(
            &key(&p, "dataset"),
            format!(
                "unknown dataset `{dataset}`; known datasets are {}",
                backticked(&DATASETS)
            ),
        ));
    }
    let birds = matches!(dataset.as_str(), "synthetic-birds" | "cub200");
    let real = if dataset == "celeba" {
        let root = root.ok_or_else(|| {
            ctx.error(
                &p,
                "`celeba` needs `root = \"<folder with Img/, Anno/, Eval/>\"`",
            )
        })?;
        let variant = variant.unwrap_or_else(|| "unaligned".into());
        if !["unaligned", "aligned"].contains(&variant.as_str()) {
            return Err(ctx.error(
                &key(&p, "variant"),
                format!("unknown variant `{variant}`; allowed: `unaligned`, `aligned`"),
            ));
        }
        let default_crop = if variant == "unaligned" {
            "bbox"
        } else {
            "none"
        };
        let crop = crop.unwrap_or_else(|| default_crop.into());
        if !["bbox", "none"].contains(&crop.as_str()) {
            return Err(ctx.error(
                &key(&p, "crop"),
                format!("unknown crop `{crop}`; allowed: `bbox`, `none`"),
            ));
        }
        let expand = in_range(
            expand.unwrap_or(1.3),
            ctx,
            &key(&p, "expand"),
            "must be in [1, 4]",
            |v| (1.0..=4.0).contains(&v),
        )?;
        Some(RealData {
            root: real_root(root, ctx, p),
            variant,
            crop,
            expand,
            skip_missing: skip_missing.unwrap_or(false),
        })
    } else if dataset == "cub200" {
        let root = root.ok_or_else(|| {
            ctx.error(
                &p,
                "`cub200` needs `root = \"<CUB_200_2011 folder with images.txt, images/>\"`",
            )
        })?;
        if variant.is_some() {
            return Err(ctx.error(
                &key(&p, "variant"),
                "`cub200` has no variants; `crop` chooses full images or bird boxes",
            ));
        }
        let crop = crop.unwrap_or_else(|| "none".into());
        if !["bbox", "none"].contains(&crop.as_str()) {
            return Err(ctx.error(&key(&p, "crop"), format!("unknown crop `{crop}`; allowed: `none` (full image), `bbox` (bounding_boxes.txt)")));
        }
        let expand = in_range(
            expand.unwrap_or(1.0),
            ctx,
            &key(&p, "expand"),
            "must be in [1, 4]",
            |v| (1.0..=4.0).contains(&v),
        )?;
        Some(RealData {
            root: real_root(root, ctx, p),
            variant: "cub-200-2011".into(),
            crop,
            expand,
            skip_missing: skip_missing.unwrap_or(false),
        })
    } else {
        for (name, given) in [
            ("root", root.is_some()),
            ("variant", variant.is_some()),
            ("crop", crop.is_some()),
            ("expand", expand.is_some()),
            ("skip-missing", skip_missing.is_some()),
        ] {
            if given {
                return Err(ctx.error(
                    &key(&p, name),
                    format!("`{dataset}` is generated, it takes no `{name}`"),
                ));
            }
        }
        None
    };
    if birds && attributes.is_some() {
        return Err(ctx.error(&key(&p, "attributes"), format!("`{dataset}` has classes, not attributes (`classes = N` sets how many synthetic classes)")));
    }
    if birds && val_images.is_some() {
        return Err(ctx.error(&key(&p, "val-images"), format!("`{dataset}` has no val split of its own: every 10th training image is held out as `val`")));
    }
    if !birds && classes.is_some() {
        return Err(ctx.error(
            &key(&p, "classes"),
            format!("`{dataset}` takes no `classes`; it is for `synthetic-birds` and `cub200`"),
        ));
    }
    // Real sets: the counts cap each split (0 = all of it).
    let cap = |v: Option<u32>, default: u32, name: &str| -> Result<u32, SpecError> {
        match (&real, v) {
            (Some(_), v) => Ok(v.unwrap_or(0)),
            (None, v) => positive(v.unwrap_or(default), ctx, &key(&p, name)),
        }
    };
    let versions: &[u32] = match dataset.as_str() {
        "synthetic-faces" => &crate::data::synthetic_faces::VERSIONS,
        "synthetic-birds" => &crate::data::synthetic_birds::VERSIONS,
        _ => &[],
    };
    let generator = match generator {
        None => 1,
        Some(v) if versions.contains(&v) => v,
        Some(v) if !versions.is_empty() => {
            return Err(ctx.error(
                &key(&p, "generator"),
                format!("unknown generator version {v}; `{dataset}` has {versions:?}"),
            ));
        }
        Some(_) => {
            return Err(ctx.error(
                &key(&p, "generator"),
                format!("`{dataset}` is not generated; `generator` is for `synthetic-faces` and `synthetic-birds`"),
            ));
        }
    };
    if first_class.is_some() && dataset != "synthetic-birds" {
        return Err(ctx.error(
            &key(&p, "first-class"),
            format!("`{dataset}` takes no `first-class`; it is for `synthetic-birds`"),
        ));
    }
    let image_size = positive(image_size.unwrap_or(64), ctx, &key(&p, "image-size"))?;
    if !(32..=512).contains(&image_size) {
        return Err(ctx.error(
            &key(&p, "image-size"),
            format!("must be in 32..=512, got {image_size}"),
        ));
    }
    let attributes = match attributes {
        // Single-label sets: the outputs are the classes.
        None if dataset == "synthetic-birds" => {
            let all = crate::data::synthetic_birds::CLASSES as u32;
            let first = first_class.unwrap_or(1);
            if !(1..all).contains(&first) {
                return Err(ctx.error(
                    &key(&p, "first-class"),
                    format!("must be in 1..={}, got {first}", all - 1),
                ));
            }
            let left = all - (first - 1);
            let n = classes.unwrap_or(left);
            if !(2..=left).contains(&n) {
                return Err(ctx.error(
                    &key(&p, "classes"),
                    format!("must be in 2..={left} (classes {first}..={all}), got {n}"),
                ));
            }
            (0..n as usize).collect()
        }
        None if dataset == "cub200" => {
            let root = &real.as_ref().expect("cub200 is real").root;
            let all = crate::data::cub::Cub::open(root)
                .map_err(|e| {
                    ctx.error(
                        &key(&p, "root"),
                        format!("cannot read CUB-200 at `{}`: {e}", root.display()),
                    )
                })?
                .classes
                .len();
            // `classes = N` keeps the first N classes (a CPU-sized subset).
            let n = classes.map_or(all, |n| n as usize);
            if !(2..=all).contains(&n) {
                return Err(ctx.error(
                    &key(&p, "classes"),
                    format!("must be in 2..={all} (the classes in `classes.txt`), got {n}"),
                ));
            }
            (0..n).collect()
        }
        None => (0..40).collect(),
        Some(toml::Value::String(s)) if s == "all" => (0..40).collect(),
        Some(toml::Value::Array(names)) => {
            let mut out = Vec::new();
            for (i, v) in names.iter().enumerate() {
                let here = [
                    Seg::Key("data".into()),
                    Seg::Key("attributes".into()),
                    Seg::Index(i),
                ];
                let name = v
                    .as_str()
                    .ok_or_else(|| ctx.error(&here, "expected an attribute name"))?;
                let idx = attributes::index_of(name).ok_or_else(|| ctx.error(&here, format!("unknown attribute `{name}`; see `exp models --attribute-names` for the 40 names")))?;
                if out.contains(&idx) {
                    return Err(ctx.error(&here, format!("attribute `{name}` listed twice")));
                }
                out.push(idx);
            }
            if out.is_empty() {
                return Err(ctx.error(&key(&p, "attributes"), "needs at least one attribute"));
            }
            out
        }
        Some(_) => {
            return Err(ctx.error(
                &key(&p, "attributes"),
                "expected `\"all\"` or a list of attribute names",
            ));
        }
    };
    Ok(DataSpec {
        dataset,
        image_size,
        train_images: cap(train_images, 2000, "train-images")?,
        val_images: if birds {
            0
        } else {
            cap(val_images, 400, "val-images")?
        },
        test_images: cap(test_images, 400, "test-images")?,
        attributes,
        seed,
        generator,
        class_offset: first_class.map_or(0, |f| f - 1),
        real,
    })
}

/// A `[[stage]]` of kind `generate-data` or `read-data`.
fn resolve_data_stage(
    mut table: toml::Table,
    seed: u64,
    here: &[Seg],
    ctx: &Ctx,
) -> Result<StageSpec, SpecError> {
    let id = match table.remove("id") {
        Some(toml::Value::String(s)) => s,
        _ => return Err(ctx.error(here, "missing field `id` (a string)")),
    };
    let kind_name = table.remove("kind");
    let seed = match table.remove("seed") {
        None => seed,
        Some(toml::Value::Integer(v)) if v >= 0 => v as u64,
        Some(_) => {
            return Err(ctx.error(&key(here, "seed"), "must be a non-negative integer"));
        }
    };
    let raw: RawData = ctx.deserialize(toml::Value::Table(table), here)?;
    let data = resolve_data(Some(raw), seed, ctx, here)?;
    let (kind, config) = match data.real {
        None => (StageKind::GenerateData, StageConfig::GenerateData(data)),
        Some(_) => (StageKind::ReadData, StageConfig::ReadData(data)),
    };
    if kind_name.as_ref().and_then(|k| k.as_str()) != Some(kind.as_str()) {
        return Err(ctx.error(
            &key(here, "kind"),
            format!(
                "this data set is read by kind `{}` (`generate-data` makes synthetic sets, `read-data` reads real ones)",
                kind.as_str()
            ),
        ));
    }
    Ok(StageSpec {
        id,
        kind,
        inputs: BTreeMap::new(),
        config,
    })
}

/// Relative roots are relative to the spec file, like `extends`; a root
/// given with `-s data.root=` is relative to where the command runs.
fn real_root(root: String, ctx: &Ctx, at: &[Seg]) -> PathBuf {
    let from_cli = ctx.overridden.iter().any(|(p, _)| p == &key(at, "root"));
    if from_cli {
        PathBuf::from(root)
    } else {
        ctx.sources[0]
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join(root)
    }
}

fn p_data() -> Vec<Seg> {
    vec![Seg::Key("data".into())]
}

/// One of a closed set of names; absent = the type's default.
fn choice<T: Copy + Default>(
    value: Option<&String>,
    allowed: &[(&str, T)],
    ctx: &Ctx,
    path: &[Seg],
) -> Result<T, SpecError> {
    let Some(v) = value else {
        return Ok(T::default());
    };
    allowed
        .iter()
        .find(|(name, _)| name == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            ctx.error(
                path,
                format!("unknown value `{v}`; allowed: {}", backticked(&names)),
            )
        })
}

fn positive(v: u32, ctx: &Ctx, path: &[Seg]) -> Result<u32, SpecError> {
    if v == 0 {
        Err(ctx.error(path, "must be a positive integer, got 0"))
    } else {
        Ok(v)
    }
}

fn in_range(
    v: f64,
    ctx: &Ctx,
    path: &[Seg],
    rule: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, SpecError> {
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(ctx.error(path, format!("{rule}, got {v}")))
    }
}

/// The longest experiment name or stage id (they name folders and table rows).
pub const MAX_NAME_LEN: usize = 100;

fn check_name(name: &str, ctx: &Ctx, path: &[Seg]) -> Result<(), SpecError> {
    if name.chars().count() > MAX_NAME_LEN {
        let head: String = name.chars().take(24).collect();
        return Err(ctx.error(
            path,
            format!(
                "`{head}…` is {} characters long; at most {MAX_NAME_LEN}",
                name.chars().count()
            ),
        ));
    }
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ctx.error(
            path,
            format!("`{name}` must be non-empty and use only letters, digits, `-` and `_`"),
        ))
    }
}

#[cfg(test)]
mod tests;
