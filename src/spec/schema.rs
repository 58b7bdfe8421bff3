//! The raw TOML schema: mirrors the file, every field optional, unknown keys
//! rejected. Defaults are filled in by [`super::resolve`], not here.

use serde::Deserialize;

/// Top level of a spec file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSpec {
    /// Path of a base spec, relative to this file. Removed before parsing.
    pub extends: Option<String>,
    /// Name, title and seed. Required.
    pub experiment: RawExperiment,
    /// The data set. Becomes the implicit stage `data`. Default: synthetic faces.
    pub data: Option<RawData>,
    /// Defaults for every training stage.
    pub train: Option<RawTrain>,
    /// The stages, in any order; references between them form the DAG.
    #[serde(default)]
    pub stage: Vec<toml::Table>,
    /// Run the spec once per point of a grid and per seed.
    pub sweep: Option<RawSweep>,
    /// Where stages run: this machine (default) or a Slurm cluster.
    pub executor: Option<super::executor::RawExecutor>,
    /// Hypotheses about this spec's runs, judged by `exp claims`.
    #[serde(default)]
    pub claim: Vec<super::claim::RawClaim>,
}

/// `[sweep]`: every combination of `grid` values and `seeds` is one run.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSweep {
    /// `experiment.seed` values. Default: the experiment's seed only.
    pub seeds: Option<Vec<u64>>,
    /// Key path (as in `-s`) → values, e.g. `{ "stage.frl.mnl" = [true, false] }`.
    pub grid: Option<toml::Table>,
    /// Random search: how many points to draw from `space`.
    pub samples: Option<u32>,
    /// Seed of the random search (not of training). Default: 0.
    pub search_seed: Option<u64>,
    /// Key path → a list of choices, or `{ uniform = [a, b] }`, or `{ log-uniform = [a, b] }`.
    pub space: Option<toml::Table>,
    /// An `evaluate` stage on `split = "val"` whose mean accuracy picks the
    /// best configuration (averaged over seeds); the others report it.
    pub select: Option<String>,
    /// `max` (default) or `min`.
    pub direction: Option<String>,
    /// Which number of `select`'s summary is compared. Default:
    /// `mean_accuracy` (a `command` stage's metrics file names its own).
    pub metric: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawExperiment {
    /// Run names start with it. Required.
    pub name: String,
    /// One line shown in `exp ls` and reports. Default: the name.
    pub title: Option<String>,
    /// Seed for data generation, initialisation and shuffling. Default: 0.
    pub seed: Option<u64>,
    /// Run only these stages and the stages they read from, as `exp run
    /// --stage` does (a calibration that shares a pipeline's stages).
    pub only: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawData {
    /// `synthetic-faces` (default), `celeba`, `synthetic-birds` or `cub200`.
    pub dataset: Option<String>,
    /// Root folder of a data set on disk (`celeba`), relative to the spec.
    pub root: Option<String>,
    /// `celeba`: `unaligned` (default; the paper's uCelebA) or `aligned`.
    pub variant: Option<String>,
    /// `celeba`: `bbox` (default for unaligned) or `none`.
    pub crop: Option<String>,
    /// `celeba`: side of the square crop as a multiple of the bbox's longer side. Default: 1.3.
    pub expand: Option<f64>,
    /// `celeba`: leave out missing or unreadable images (counted in the data
    /// stage's summary) instead of failing. Default: false.
    pub skip_missing: Option<bool>,
    /// Side of the square images fed to the nets. Default: 64.
    pub image_size: Option<u32>,
    /// Synthetic data: images per split. Defaults: 2000 / 400 / 400.
    /// Real data: a cap per split (default: all).
    pub train_images: Option<u32>,
    pub val_images: Option<u32>,
    pub test_images: Option<u32>,
    /// `"all"` (default) or a list of CelebA attribute names to model.
    pub attributes: Option<toml::Value>,
    /// `synthetic-birds`: how many of the 200 classes to generate. Default: 200.
    pub classes: Option<u32>,
    /// `synthetic-birds`: the first class generated, numbered from 1 as in
    /// CUB's `classes.txt` (default 1). `first-class = 21` with
    /// `classes = 180` gives the classes disjoint from `classes = 20`.
    pub first_class: Option<u32>,
    /// Generated sets: the generator version (1, the default, or 2: every
    /// class-telling feature at least 3 px across — faces at 128 px, birds
    /// at 64 px). Versions are frozen.
    pub generator: Option<u32>,
    /// `synthetic-faces`: draw every face-part attribute independently of
    /// the others (same prevalence, but for the derived No_Beard and
    /// Pointy_Nose), so no correlated cue tells it. Default false:
    /// CelebA-like correlations. A diagnostic, not the paper's data.
    pub independent_parts: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawTrain {
    /// Architecture: `tnet`, `snet1`, `snet2`, `snet3` (default).
    pub net: Option<String>,
    /// Channel multiplier for the conv layers (not the M×N maps). Default: 1.
    pub width: Option<f64>,
    /// Maps per attribute or class in the last conv (N). Default: 32 (the paper's).
    pub maps: Option<u32>,
    /// `fp32` (default) or `bf16` (libtorch devices: convolutions in bf16, fp32 master weights).
    pub precision: Option<String>,
    /// Default: 4.
    pub epochs: Option<u32>,
    /// Default: 32.
    pub batch_size: Option<u32>,
    /// Default: 1e-4 (the paper's FRL rate).
    pub lr: Option<f64>,
    /// SGD momentum. Default: 0.9.
    pub momentum: Option<f64>,
    /// L2 weight decay. Default: 5e-4.
    pub weight_decay: Option<f64>,
    /// Random horizontal flips. Default: true.
    pub flip: Option<bool>,
    /// `constant` (default) or `cosine` (to 0 over each phase).
    pub lr_schedule: Option<String>,
    /// `last` (default) or `best`: keep the epoch with the best validation accuracy.
    pub keep: Option<String>,
    /// `batch-attributes` (default: mean over both) or `batch` (Caffe's: sum
    /// over attributes, mean over the batch).
    pub loss_normalization: Option<String>,
    /// Multiplies the training loss. Default: 1.
    pub loss_scale: Option<f64>,
    /// Clip each parameter's gradient to this L2 norm. Default: no clipping.
    pub grad_clip: Option<f64>,
}

/// One `[[stage]]` table. Which keys a kind accepts is checked first
/// (`spec::KIND_KEYS`); this struct then catches typos and wrong types.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawStage {
    pub id: String,
    pub kind: String,
    // References to upstream stages (the DAG's edges).
    /// Data stage. Default: `data`.
    pub data: Option<String>,
    /// Trained model to score or localise with (`evaluate`, `localize`).
    pub model: Option<String>,
    /// Frozen FRL net to compress (`compress`).
    pub teacher: Option<String>,
    /// Compressed whole-image subnet (`train-parts`).
    pub whole: Option<String>,
    /// `localize` stage whose boxes are the parts (`train-parts`).
    pub regions: Option<String>,
    /// `train-parts` stage (`train-fusion`).
    pub parts: Option<String>,
    /// `train-fusion` stage (`finetune-paw`).
    pub fusion: Option<String>,
    // Training fields (defaults from `[train]`).
    pub net: Option<String>,
    pub width: Option<f64>,
    pub maps: Option<u32>,
    pub precision: Option<String>,
    pub epochs: Option<u32>,
    pub batch_size: Option<u32>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub flip: Option<bool>,
    pub lr_schedule: Option<String>,
    pub keep: Option<String>,
    pub loss_normalization: Option<String>,
    pub loss_scale: Option<f64>,
    pub grad_clip: Option<f64>,
    /// Training stages: this stage's own seed (initialisation, shuffling)
    /// instead of the experiment's, so every sweep seed shares the stage
    /// (a pretrained start paid once).
    pub seed: Option<u64>,
    /// Training stages: the experiment's seed plus this, so that nets which
    /// must differ (an ensemble's members) still vary with every sweep seed.
    pub seed_offset: Option<u64>,
    /// `evaluate`: more model stages; their probabilities are averaged with
    /// `model`'s (an ensemble).
    pub ensemble: Option<Vec<String>>,
    // Kind-specific.
    /// `train`, `train-frl`: start every conv layer except the last (the
    /// attribute maps) from this training stage's net: a pretrained
    /// backbone, as the paper starts from VGG-Face.
    pub backbone: Option<String>,
    /// `train`: continue training this stage's whole net (its architecture
    /// and every weight), e.g. SNet3 given more epochs as a control.
    pub from: Option<String>,
    /// `train`, `train-frl`: start from these weights (a burnpack file written
    /// by exp for the same architecture), relative to the spec. Default: from scratch.
    pub init: Option<String>,
    /// `train-frl`: train the multi-net-learning classification branch too. Default: true.
    pub mnl: Option<bool>,
    /// `train-frl`: hidden width of the MNL branch. Default: 512.
    pub mnl_hidden: Option<u32>,
    /// `localize`: patch side as a fraction of the image side. Default: 64/224.
    pub patch: Option<f64>,
    /// `localize`: where patches are centred: `cam` (default: each image's
    /// CAM peak), `mean` (the attribute's mean peak, a fixed patch) or
    /// `truth` (the ground-truth region, synthetic data: an oracle).
    pub centre: Option<String>,
    /// `localize`: the map whose peak is taken: `raw` (default: the paper's
    /// CAM) or `minus-mean` (the CAM less its mean over the training images,
    /// a diagnostic of whether the maps carry the location at all).
    pub cam: Option<String>,
    /// `localize`: images whose heatmaps are saved for reports. Default: 8.
    pub samples: Option<u32>,
    /// `compress`: epochs of hint-only training. Default: `epochs`.
    pub hint_epochs: Option<u32>,
    /// `compress`: learning rate of the hint phase (Caffe's Euclidean loss). Default: 1e-7.
    pub hint_lr: Option<f64>,
    /// `compress`: `euclidean` (default: Caffe's, the paper's) or `relative`
    /// (the same squared error over the teacher maps' own energy, so its
    /// scale does not depend on the teacher's; its lr defaults to `lr`).
    pub hint_loss: Option<String>,
    /// `compress`: clip each parameter's gradient to this L2 norm in the
    /// hint phase. Default: the stage's `grad-clip` (none).
    pub hint_grad_clip: Option<f64>,
    /// `train-parts`: side the patches are resized to. Default: 64.
    pub part_size: Option<u32>,
    /// `train-parts`: use a fixed `grid`×`grid` of blocks instead of `regions`.
    pub grid: Option<u32>,
    /// `crop-data`: side of the square crop as a multiple of the box's longer side. Default: 1.
    pub expand: Option<f64>,
    /// `crop-data` without `regions`: `annotated` (default: each image's
    /// annotated box) or `centre` (the same centred box in every image, of
    /// the training images' mean annotated size — a control).
    #[serde(rename = "box")]
    pub crop_box: Option<String>,
    /// `evaluate`: `test` (default) or `val`.
    pub split: Option<String>,
    /// `evaluate`: which output to score: `loc` (default), `mnl`, `paw`,
    /// `whole-only`, `part-only`.
    pub head: Option<String>,
}
