//! The stage kinds. Each kind's module owns what the kind *is*: its name,
//! cache version, keys and input roles (with the kinds each role accepts) in
//! one [`KindDef`], its resolved configuration, and how its `[[stage]]` table
//! resolves. How it runs is `stages/<kind>.rs` (burn, which `spec` never
//! names); what its output holds for the plan's checks, `plan::artefact`.
//!
//! Adding a kind: a module here with its `DEF` and `resolve`, a variant in
//! [`StageKind`] and [`StageConfig`], its run in `stages`.

pub mod command;
pub mod compress;
pub mod crop_data;
pub mod data;
pub mod evaluate;
pub mod localize;
pub mod parts;
pub mod paw;
pub mod train;
pub mod training;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::locate::Seg;
use super::schema::{RawStage, RawTrain};
use super::{Ctx, SpecError, backticked, key};
pub use command::CommandConfig;
pub use data::{DataSpec, RealData};
pub use evaluate::{EvalConfig, Head, Split};
pub use localize::PatchCentre;
use training::is_default;
pub use training::{InitWeights, KeepEpoch, LossNormalization, LrSchedule, Net, TrainConfig};

/// Input roles `member-1`, `member-2`, …: an `evaluate` ensemble's other models.
pub const MEMBER_ROLE: &str = "member-";

/// One stage of the DAG (also as run records store it: reports read it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageSpec {
    pub id: String,
    pub kind: StageKind,
    /// Upstream stages by role (`data`, `model`): the DAG's edges.
    pub inputs: BTreeMap<String, String>,
    pub config: StageConfig,
}

/// The stage kinds `exp` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

/// What a stage kind is, in one place.
#[derive(Debug)]
pub struct KindDef {
    pub name: &'static str,
    /// Bump when the kind's output changes for the same inputs: old cache
    /// entries then stop matching. (Each module says why each bump was made.)
    pub version: u32,
    /// Whether results depend on the compute backend and dtype. Data
    /// generation does not, so a GPU run reuses the CPU's data.
    pub backend: bool,
    /// Keys a `[[stage]]` of this kind accepts, beyond `id` and `kind`, in
    /// groups (the training kinds share [`training::OPTIMISER_KEYS`] and
    /// [`training::RUN_KEYS`]); `command` checks its own table.
    pub keys: &'static [&'static [&'static str]],
    /// The upstream roles it reads and which kinds may fill each.
    pub roles: &'static [Role],
}

/// An input role and the kinds whose output it can read.
#[derive(Debug)]
pub struct Role {
    pub name: &'static str,
    /// Empty: any kind (a command's own roles).
    pub accepts: &'static [StageKind],
}

/// The roles every reader of a data set has.
pub const DATA_ROLE: Role = Role {
    name: "data",
    accepts: &[
        StageKind::GenerateData,
        StageKind::ReadData,
        StageKind::CropData,
    ],
};

/// Kinds whose output is one attribute (or class) net.
pub const ATTRIBUTE_NETS: &[StageKind] =
    &[StageKind::Train, StageKind::TrainFrl, StageKind::Compress];

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

    pub fn def(self) -> &'static KindDef {
        match self {
            Self::GenerateData => &data::GENERATE,
            Self::ReadData => &data::READ,
            Self::Train => &train::TRAIN,
            Self::TrainFrl => &train::TRAIN_FRL,
            Self::Localize => &localize::DEF,
            Self::Compress => &compress::DEF,
            Self::TrainParts => &parts::DEF,
            Self::TrainFusion => &paw::FUSION,
            Self::FinetunePaw => &paw::FINETUNE,
            Self::Evaluate => &evaluate::DEF,
            Self::CropData => &crop_data::DEF,
            Self::Command => &command::DEF,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.def().name
    }

    pub fn version(self) -> u32 {
        self.def().version
    }

    pub fn depends_on_backend(self) -> bool {
        self.def().backend
    }

    /// The kinds a role of this kind accepts; `None` for a role it does not
    /// have (`member-N` is the ensemble's `model`).
    pub fn accepts(self, role: &str) -> Option<&'static [StageKind]> {
        let role = if role.starts_with(MEMBER_ROLE) {
            "model"
        } else {
            role
        };
        self.def()
            .roles
            .iter()
            .find(|r| r.name == role)
            .map(|r| r.accepts)
    }

    pub(in crate::spec) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Resolved parameters of a stage: what goes into its cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One `[[stage]]` table of a kind with a [`RawStage`] schema (not data
/// sets, not commands): its keys checked against the kind's, its seed, its
/// training hyperparameters, then the kind's own `resolve`.
pub(in crate::spec) fn resolve(
    kind: StageKind,
    table: toml::Table,
    defaults: &RawTrain,
    experiment_seed: u64,
    here: &[Seg],
    ctx: &Ctx,
) -> Result<StageSpec, SpecError> {
    let keys: Vec<&str> = kind
        .def()
        .keys
        .iter()
        .flat_map(|g| g.iter().copied())
        .collect();
    for k in table.keys() {
        if k != "id" && k != "kind" && !keys.contains(&k.as_str()) {
            let allowed: Vec<&str> = ["id", "kind"]
                .into_iter()
                .chain(keys.iter().copied())
                .collect();
            return Err(ctx.error(
                &key(here, k),
                format!(
                    "unknown key `{k}` for kind `{}`; allowed keys are {}",
                    kind.as_str(),
                    backticked(&allowed)
                ),
            ));
        }
    }
    let s: RawStage = ctx.deserialize(toml::Value::Table(table), here)?;
    let seed = match (s.seed, s.seed_offset) {
        (Some(_), Some(_)) => {
            return Err(ctx.error(
                &key(here, "seed-offset"),
                "give either `seed` (this stage's own) or `seed-offset` (added to the experiment's), not both",
            ));
        }
        (Some(v), None) => v,
        (None, offset) => experiment_seed + offset.unwrap_or(0),
    };
    resolve_raw(kind, s, defaults, seed, here, ctx)
}

/// [`resolve`] once the table is read; `[train]` itself is checked through
/// it too.
pub(in crate::spec) fn resolve_raw(
    kind: StageKind,
    s: RawStage,
    defaults: &RawTrain,
    seed: u64,
    here: &[Seg],
    ctx: &Ctx,
) -> Result<StageSpec, SpecError> {
    let train = training::resolve(kind, &s, defaults, seed, here, ctx)?;
    let mut t = Table {
        kind,
        here,
        ctx,
        inputs: BTreeMap::from([(
            "data".to_string(),
            s.data.clone().unwrap_or_else(|| "data".into()),
        )]),
    };
    let config = match kind {
        StageKind::GenerateData | StageKind::ReadData | StageKind::Command => {
            unreachable!("resolved by their own modules")
        }
        StageKind::Train | StageKind::TrainFrl => train::resolve(&s, train, &mut t)?,
        StageKind::Localize => localize::resolve(&s, &mut t)?,
        StageKind::Compress => compress::resolve(&s, train, &mut t)?,
        StageKind::TrainParts => parts::resolve(&s, train, &mut t)?,
        StageKind::TrainFusion | StageKind::FinetunePaw => paw::resolve(&s, train, &mut t)?,
        StageKind::Evaluate => evaluate::resolve(&s, &mut t)?,
        StageKind::CropData => crop_data::resolve(&s, &mut t)?,
    };
    Ok(StageSpec {
        id: s.id,
        kind,
        inputs: t.inputs,
        config,
    })
}

/// A stage table being resolved: where errors point, and its edges so far.
pub(in crate::spec) struct Table<'a> {
    kind: StageKind,
    pub here: &'a [Seg],
    pub ctx: &'a Ctx<'a>,
    pub inputs: BTreeMap<String, String>,
}

impl Table<'_> {
    /// The path of one of this table's keys.
    pub fn key(&self, name: &str) -> Vec<Seg> {
        key(self.here, name)
    }

    pub fn error(&self, path: &[Seg], message: impl std::fmt::Display) -> SpecError {
        self.ctx.error(path, message)
    }

    /// An edge the kind cannot do without.
    pub fn require(&mut self, role: &str, value: &Option<String>) -> Result<(), SpecError> {
        let v = value.clone().ok_or_else(|| {
            self.ctx.error(
                self.here,
                format!(
                    "kind `{}` needs `{role} = \"<stage id>\"`",
                    self.kind.as_str()
                ),
            )
        })?;
        self.inputs.insert(role.to_string(), v);
        Ok(())
    }
}
