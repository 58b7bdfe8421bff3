//! What running a stage needs, whatever its kind: its context (inputs,
//! output folder, device, progress), its errors, the dispatch to its kind's
//! [`Run`] (in `kinds/<kind>/run.rs`) and the net files kinds pass on.
//!
//! Artefacts: attribute nets are `<name>.bpk` weights + `<name>.json`
//! ([`ModelInfo`]); `train-parts`, `train-fusion` and `finetune-paw` write a
//! [`PawInfo`] (`paw.json`) beside their subnets' weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::cache::Entry;
use crate::data::{Format, Source};
use crate::device::DeviceChoice;
use crate::kinds::crop_data;
use crate::models::{AttrNet, AttrNetConfig};
use crate::progress::Progress;
use crate::spec::{DataSpec, Net, StageConfig, StageSpec};

/// Everything a stage kind may touch.
pub struct StageCtx<'a> {
    pub stage: &'a StageSpec,
    /// Upstream entries by role (`data`, `model`).
    pub inputs: &'a BTreeMap<String, Entry>,
    /// Where to write; becomes the cache entry on success.
    pub out: &'a Path,
    pub device: DeviceChoice,
    pub progress: &'a dyn Progress,
    /// `read-data`: the sha256 fingerprint of the data set's files, which its
    /// artefact records so that its digest — what downstream keys use —
    /// changes with any file (class names too), not only with the images.
    pub fingerprint: Option<&'a str>,
}

impl StageCtx<'_> {
    pub(crate) fn input(&self, role: &str) -> &Entry {
        self.inputs
            .get(role)
            .expect("planner guarantees every input")
    }

    /// The data set spec and where its images come from.
    pub(crate) fn data(&self) -> Result<(DataSpec, Source), StageError> {
        let entry = self.input("data");
        // A derived set (`crop-data`) records its spec and source beside its shards.
        let derived = entry.dir.join(crop_data::run::SOURCE_FILE);
        let (spec, mut source) = if derived.exists() {
            let mut d: crop_data::run::Derived = read_json(&derived)?;
            crop_data::run::locate(&mut d.source, &entry.dir);
            (d.spec, d.source)
        } else {
            let spec: DataSpec = serde_json::from_value(entry.manifest.key_inputs.params.clone())
                .map_err(|e| StageError::Input {
                stage: self.stage.id.clone(),
                message: format!("`data` is not a data stage: {e}"),
            })?;
            let source = Source::real(&spec).unwrap_or_else(|| synthetic_source(&entry.dir, &spec));
            (spec, source)
        };
        source.shards = Some(entry.dir.join("shards"));
        Ok((spec, source))
    }

    /// A plain and an autodiff device. Not seeded: a stage's fresh weights
    /// come from [`fresh`], which seeds.
    pub(crate) fn devices(&self) -> (Device, Device) {
        let plain = self.device.device();
        let train = plain.clone().autodiff();
        (plain, train)
    }
}

/// `build()`'s module with every parameter drawn from burn's generator
/// seeded with `seed`.
///
/// Why a lock: burn draws random initial weights from one process-wide
/// generator, and draws each lazily, at the parameter's first use. Stages
/// that compute side by side — one thread per device lease, so on several
/// GPUs (`--device cuda:all`); the CPU is one lease — would interleave
/// their draws, and a net's initial weights (hence everything trained from
/// it, under a cache key that promises the same result) would depend on
/// timing. So seeding, building and drawing every parameter
/// happen under one lock. (Loading weights does not draw: burn fills a
/// lazy parameter from the file without initialising it.)
pub fn fresh<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A stage that panicked while holding it left nothing half-drawn that
    // matters to the next: it seeds afresh.
    let _lock = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let module = build();
    module.visit(&mut DrawAll);
    module
}

/// Initialises every lazy float parameter (reading a parameter draws it).
struct DrawAll;

impl burn::module::ModuleVisitor for DrawAll {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let _ = param.val();
    }
}

/// Where `generate-data` writes a synthetic set inside its entry.
pub fn synthetic_source(entry: &Path, spec: &DataSpec) -> Source {
    if spec.single_label() {
        Source::synthetic(&entry.join("cub"), Format::Cub)
    } else {
        Source::synthetic(&entry.join("celeba"), Format::Celeba)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Data(#[from] crate::data::LoadError),
    #[error(transparent)]
    Annotations(#[from] crate::data::annotations::AnnotationError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Store(#[from] crate::metrics::store::StoreError),
    #[error("failed to save model weights to `{}`: {message}", path.display())]
    SaveModel { path: PathBuf, message: String },
    #[error("failed to load model weights from `{}`: {message}", path.display())]
    LoadModel { path: PathBuf, message: String },
    #[error("stage `{stage}`: {message}")]
    Input { stage: String, message: String },
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
}

/// Run a stage; returns its summary (stored in the manifest).
pub fn run(ctx: &StageCtx) -> Result<serde_json::Value, StageError> {
    let precision = ctx
        .stage
        .config
        .train()
        .and_then(|t| t.precision)
        .unwrap_or_default();
    if precision != crate::ops::Precision::Fp32 && ctx.device == DeviceChoice::Cpu {
        return Err(StageError::Input {
            stage: ctx.stage.id.clone(),
            message: format!(
                "precision = \"{}\" needs a libtorch device (`--device tch-cpu` or `cuda:N`); burn's flex CPU backend computes in fp32",
                precision.as_str()
            ),
        });
    }
    crate::ops::with_precision(precision, || run_kind(ctx))
}

/// How a stage kind runs: implemented in `kinds/<kind>/run.rs` for the
/// type that implements [`crate::kinds::Kind`] for it.
pub trait Run: crate::kinds::Kind {
    /// Compute the stage into `ctx.out`; returns its summary (stored in
    /// the manifest).
    fn run(ctx: &StageCtx, config: &Self::Config) -> Result<serde_json::Value, StageError>;
}

/// `run_kind`: each [`StageConfig`] variant to its kind's [`Run`], from
/// `kinds::for_each_kind!`'s list.
macro_rules! define_run {
    ($($variant:ident = $ty:path,)*) => {
        fn run_kind(ctx: &StageCtx) -> Result<serde_json::Value, StageError> {
            match &ctx.stage.config {
                $(StageConfig::$variant(c) => <$ty as Run>::run(ctx, c),)*
            }
        }
    };
}
crate::kinds::for_each_kind!(define_run);

/// How to rebuild an attribute net: saved beside its weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub net: Net,
    pub width: f64,
    /// CelebA indices of the attributes it predicts, in output order.
    pub attributes: Vec<usize>,
    /// Side of its input images.
    pub image_size: usize,
    pub mnl_hidden: Option<usize>,
    pub params: usize,
    /// Maps per output in the last conv (N).
    #[serde(default = "paper_maps")]
    pub maps: usize,
    /// One class per image (softmax) instead of independent attributes.
    #[serde(default)]
    pub single_label: bool,
}

fn paper_maps() -> usize {
    32
}

impl ModelInfo {
    pub fn config(&self) -> AttrNetConfig {
        let cfg = AttrNetConfig::new(self.net, self.attributes.len())
            .with_width(self.width)
            .with_maps(self.maps);
        match self.mnl_hidden {
            Some(h) => cfg.with_mnl(h),
            None => cfg,
        }
    }
}

/// A PaW net (or its subnets before fusion): what `paw.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PawInfo {
    /// The whole-image subnet.
    pub whole: ModelInfo,
    /// The part subnets (all share one architecture, input `part.image_size`).
    pub part: ModelInfo,
    pub parts: usize,
    /// `Some(g)`: parts are a g×g grid of blocks; `None`: part j is attribute j's FRL patch.
    pub grid: Option<u32>,
    /// Whether `paw.bpk` holds fusion layers (after `train-fusion`).
    pub fused: bool,
}

pub fn save_attr_net(
    dir: &Path,
    name: &str,
    model: AttrNet,
    info: &ModelInfo,
) -> Result<(), StageError> {
    let weights = dir.join(format!("{name}.bpk"));
    stable_ids(model.valid())
        .save_file(&weights)
        .map_err(|e| StageError::SaveModel {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    write_json(&dir.join(format!("{name}.json")), info)
}

/// Give every parameter a new id from `next`, keeping its value and state.
fn renumber<M: Module>(module: M, next: impl FnMut() -> burn::module::ParamId) -> M {
    struct Ids<F>(F);
    impl<F: FnMut() -> burn::module::ParamId> burn::module::ModuleMapper for Ids<F> {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<D>> {
            let (_, value, mapper) = param.consume();
            burn::module::Param::from_mapped_value((self.0)(), value, mapper)
        }
    }
    module.map(&mut Ids(next))
}

/// Parameter ids numbered in module order before saving. burn draws them at
/// random and writes them into the burnpack, so two identical trainings
/// would give files with different bytes — and every downstream stage a
/// different cache key on another machine.
pub fn stable_ids<M: Module>(module: M) -> M {
    let mut n = 0u64;
    renumber(module, || {
        n += 1;
        burn::module::ParamId::from(n)
    })
}

/// Fresh ids after loading. burn gives a loaded parameter the id stored in
/// the file, so nets loaded from one file (PaW's part subnets all start from
/// SNet3) would share ids — and gradients and optimizer state, which are
/// keyed by id, would mix between them when PaW is fine-tuned end to end.
pub fn fresh_ids<M: Module>(module: M) -> M {
    renumber(module, burn::module::ParamId::new)
}

pub fn load_attr_net(
    dir: &Path,
    name: &str,
    device: &Device,
) -> Result<(AttrNet, ModelInfo), StageError> {
    let info: ModelInfo = read_json(&dir.join(format!("{name}.json")))?;
    let weights = dir.join(format!("{name}.bpk"));
    let model = info
        .config()
        .init(info.image_size, device)
        .try_load_file(&weights)
        .map_err(|e| StageError::LoadModel {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    Ok((fresh_ids(model), info))
}

pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), StageError> {
    let text = serde_json::to_string_pretty(value).expect("serializable");
    std::fs::write(path, text).map_err(|source| {
        crate::file_error::FileError::Write {
            path: path.into(),
            source,
        }
        .into()
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let bytes = std::fs::read(path).map_err(|source| crate::file_error::FileError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        crate::file_error::FileError::Read {
            path: path.into(),
            source: std::io::Error::other(e),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Net;

    fn ids<M: Module>(m: &M) -> Vec<u64> {
        struct Ids(Vec<u64>);
        impl burn::module::ModuleVisitor for Ids {
            fn visit_float<const D: usize>(
                &mut self,
                p: &burn::module::Param<burn::tensor::Tensor<D>>,
            ) {
                self.0.push(p.id.val());
            }
        }
        let mut v = Ids(Vec::new());
        m.visit(&mut v);
        v.0
    }

    fn info() -> ModelInfo {
        ModelInfo {
            net: Net::Snet3,
            width: 0.25,
            attributes: vec![0, 1],
            image_size: 32,
            mnl_hidden: None,
            params: 0,
            maps: 4,
            single_label: false,
        }
    }

    #[test]
    fn the_same_weights_save_to_the_same_bytes_whatever_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let d = Device::flex();
        save_attr_net(dir.path(), "a", info().config().init(32, &d), &info()).unwrap();
        // Loaded again, the net has other (fresh) ids but the same values.
        let (again, _) = load_attr_net(dir.path(), "a", &d).unwrap();
        save_attr_net(dir.path(), "b", again, &info()).unwrap();
        let bytes = |n: &str| std::fs::read(dir.path().join(format!("{n}.bpk"))).unwrap();
        assert!(bytes("a") == bytes("b"), "the files differ");
    }

    #[test]
    fn nets_loaded_from_one_file_get_distinct_parameter_ids() {
        let dir = tempfile::tempdir().unwrap();
        let d = Device::flex();
        save_attr_net(dir.path(), "model", info().config().init(32, &d), &info()).unwrap();
        let (x, _) = load_attr_net(dir.path(), "model", &d).unwrap();
        let (y, _) = load_attr_net(dir.path(), "model", &d).unwrap();
        let (ix, iy) = (ids(&x), ids(&y));
        assert!(ix.iter().all(|i| !iy.contains(i)), "{ix:?} vs {iy:?}");
        let w = |n: &AttrNet| n.fc_weight.val().into_data();
        assert_eq!(w(&x), w(&y));
    }
}
