//! The stage kinds, one folder each. A kind's `mod.rs` owns what the kind
//! *is*: its name, cache version, keys and input roles (with the kinds each
//! role accepts) in its [`KindDef`], its resolved configuration, how its
//! `[[stage]]` table resolves and what its output will hold for the plan's
//! checks — all as one [`Kind`] impl, without burn, so `spec` and `plan`
//! can use it. Its `run.rs` is how it runs: its `stages::Run` impl, the only
//! part that touches nets.
//!
//! Adding a kind: its folder here, and its registration in this file — its
//! `pub mod` line and its line in [`for_each_kind!`].

pub mod artefact;
pub mod command;
pub mod compress;
pub mod crop_data;
pub mod data;
pub mod evaluate;
pub mod localize;
pub mod parts;
pub mod paw;
pub mod predict;
pub mod train;
pub mod training;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::locate::Seg;
use crate::spec::schema::{RawStage, RawTrain};
use crate::spec::{Ctx, SpecError, backticked, key};
pub use artefact::{Artefact, Labels, Upstream};
pub use command::CommandConfig;
pub use compress::CompressConfig;
pub use crop_data::CropConfig;
pub use data::{DataSpec, RealData};
pub use evaluate::{EvalConfig, Head, Split};
pub use localize::{CamMap, LocalizeConfig, PatchCentre};
pub use parts::PartsConfig;
pub use train::FrlConfig;
pub use training::{InitWeights, KeepEpoch, LossNormalization, LrSchedule, Net, TrainConfig};

/// Every stage kind: its [`StageKind`] variant and the type that implements
/// [`Kind`] for it, in the order `exp` lists them. A new kind's one line
/// here is its registration: the kind enums, resolution, the plan's
/// artefact checks and `stages::run` are generated from this list.
macro_rules! for_each_kind {
    ($then:ident) => {
        $then! {
            GenerateData = $crate::kinds::data::GenerateData,
            ReadData = $crate::kinds::data::ReadData,
            Train = $crate::kinds::train::Train,
            TrainFrl = $crate::kinds::train::TrainFrl,
            Localize = $crate::kinds::localize::Localize,
            CropData = $crate::kinds::crop_data::CropData,
            Compress = $crate::kinds::compress::Compress,
            TrainParts = $crate::kinds::parts::TrainParts,
            TrainFusion = $crate::kinds::paw::TrainFusion,
            FinetunePaw = $crate::kinds::paw::FinetunePaw,
            Evaluate = $crate::kinds::evaluate::Evaluate,
            Predict = $crate::kinds::predict::Predict,
            Command = $crate::kinds::command::Command,
        }
    };
}
pub(crate) use for_each_kind;

/// What a stage kind is, implemented once in the kind's module.
pub trait Kind {
    /// Resolved parameters: what goes into the cache key.
    type Config: std::fmt::Debug + Clone + PartialEq + Serialize + for<'de> Deserialize<'de>;
    /// Name, cache version, keys and input roles.
    const DEF: KindDef;
    /// Resolve one `[[stage]]` table of this kind.
    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<Self::Config>, SpecError>;
    /// What the stage's entry will hold, from what its inputs will (checked
    /// at plan time); `None` where an input it needs is not known.
    fn artefact(config: &Self::Config, up: &Upstream) -> Result<Option<Artefact>, String>;
    /// The training hyperparameters of a training kind.
    fn train(_config: &Self::Config) -> Option<&TrainConfig> {
        None
    }
}

/// What a stage table resolves in.
pub struct Env<'a> {
    /// `[train]`: the training kinds' defaults.
    pub(crate) defaults: &'a RawTrain,
    /// The experiment's seed.
    pub(crate) seed: u64,
    /// Where the table is (errors point here).
    pub(crate) here: &'a [Seg],
    pub(crate) ctx: &'a Ctx<'a>,
}

/// A resolved stage table, before it is a [`StageSpec`].
pub struct Resolved<C> {
    pub id: String,
    pub inputs: BTreeMap<String, String>,
    pub config: C,
}

/// One stage of the DAG (also as run records store it: reports read it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageSpec {
    pub id: String,
    pub kind: StageKind,
    /// Upstream stages by role (`data`, `model`): the DAG's edges.
    pub inputs: BTreeMap<String, String>,
    pub config: StageConfig,
}

/// The kind enums and their dispatch, from [`for_each_kind!`]'s list.
macro_rules! define_kinds {
    ($($variant:ident = $ty:path,)*) => {
        /// The stage kinds `exp` can run.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum StageKind {
            $($variant,)*
        }

        impl StageKind {
            pub const ALL: &'static [StageKind] = &[$(StageKind::$variant,)*];

            pub fn def(self) -> &'static KindDef {
                match self {
                    $(StageKind::$variant => &<$ty as Kind>::DEF,)*
                }
            }

            /// Resolve a `[[stage]]` table of this kind.
            pub(crate) fn resolve(
                self,
                table: toml::Table,
                env: &Env,
            ) -> Result<StageSpec, SpecError> {
                match self {
                    $(StageKind::$variant => {
                        let r = <$ty as Kind>::resolve(table, env)?;
                        Ok(StageSpec {
                            id: r.id,
                            kind: self,
                            inputs: r.inputs,
                            config: StageConfig::$variant(r.config),
                        })
                    })*
                }
            }
        }

        /// Resolved parameters of a stage: what goes into its cache key.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum StageConfig {
            $($variant(<$ty as Kind>::Config),)*
        }

        impl StageConfig {
            /// The training hyperparameters of a training stage.
            pub fn train(&self) -> Option<&TrainConfig> {
                match self {
                    $(StageConfig::$variant(c) => <$ty as Kind>::train(c),)*
                }
            }

            /// What the stage's entry will hold (see [`Kind::artefact`]).
            pub fn artefact(&self, up: &Upstream) -> Result<Option<Artefact>, String> {
                match self {
                    $(StageConfig::$variant(c) => <$ty as Kind>::artefact(c, up),)*
                }
            }
        }
    };
}
for_each_kind!(define_kinds);

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
    /// [`training::RUN_KEYS`]); `command` and the data kinds check their own
    /// tables.
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

/// Input roles `member-1`, `member-2`, …: an `evaluate` ensemble's other models.
pub const MEMBER_ROLE: &str = "member-";

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

    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// `[train]` checked as a `train` stage's keys would be: a typo there is a
/// typo even when no stage trains.
pub(crate) fn check_train_defaults(env: &Env) -> Result<(), SpecError> {
    let s = RawStage {
        id: "train-defaults".into(),
        kind: "train".into(),
        ..Default::default()
    };
    Table::new(train::Train::DEF.name, &s, env)?.train(&s, Net::Snet3, None)?;
    Ok(())
}

/// The usual resolution of a kind with a [`RawStage`] schema (not data
/// sets, not commands): its keys checked against the kind's `DEF`, then
/// `f` with the table read and its edges so far (`data`).
pub(crate) fn standard<C>(
    def: &KindDef,
    table: toml::Table,
    env: &Env,
    f: impl FnOnce(&RawStage, &mut Table) -> Result<C, SpecError>,
) -> Result<Resolved<C>, SpecError> {
    let keys: Vec<&str> = def.keys.iter().flat_map(|g| g.iter().copied()).collect();
    for k in table.keys() {
        if k != "id" && k != "kind" && !keys.contains(&k.as_str()) {
            let allowed: Vec<&str> = ["id", "kind"]
                .into_iter()
                .chain(keys.iter().copied())
                .collect();
            return Err(env.ctx.error(
                &key(env.here, k),
                format!(
                    "unknown key `{k}` for kind `{}`; allowed keys are {}",
                    def.name,
                    backticked(&allowed)
                ),
            ));
        }
    }
    let s: RawStage = env.ctx.deserialize(toml::Value::Table(table), env.here)?;
    let mut t = Table::new(def.name, &s, env)?;
    let config = f(&s, &mut t)?;
    Ok(Resolved {
        id: s.id,
        inputs: t.inputs,
        config,
    })
}

/// A stage table being resolved: where errors point, its seed, and its
/// edges so far.
pub(crate) struct Table<'a> {
    kind: &'static str,
    pub here: &'a [Seg],
    pub ctx: &'a Ctx<'a>,
    defaults: &'a RawTrain,
    /// `seed`, else the experiment's + `seed-offset`.
    seed: u64,
    pub inputs: BTreeMap<String, String>,
}

impl<'a> Table<'a> {
    fn new(kind: &'static str, s: &RawStage, env: &Env<'a>) -> Result<Self, SpecError> {
        let seed = match (s.seed, s.seed_offset) {
            (Some(_), Some(_)) => {
                return Err(env.ctx.error(
                    &key(env.here, "seed-offset"),
                    "give either `seed` (this stage's own) or `seed-offset` (added to the experiment's), not both",
                ));
            }
            (Some(v), None) => v,
            (None, offset) => env.seed + offset.unwrap_or(0),
        };
        Ok(Table {
            kind,
            here: env.here,
            ctx: env.ctx,
            defaults: env.defaults,
            seed,
            inputs: BTreeMap::from([(
                "data".to_string(),
                s.data.clone().unwrap_or_else(|| "data".into()),
            )]),
        })
    }

    /// The path of one of this table's keys.
    pub fn key(&self, name: &str) -> Vec<Seg> {
        key(self.here, name)
    }

    pub fn error(&self, path: &[Seg], message: impl std::fmt::Display) -> SpecError {
        self.ctx.error(path, message)
    }

    /// The stage's training hyperparameters: its own keys, else `[train]`'s,
    /// else the defaults — `net` and, where the paper fixes one for the
    /// kind, `paper_lr` (which wins over `[train]`'s).
    pub fn train(
        &self,
        s: &RawStage,
        net: Net,
        paper_lr: Option<f64>,
    ) -> Result<TrainConfig, SpecError> {
        training::resolve(
            s,
            self.defaults,
            self.seed,
            training::Defaults { net, paper_lr },
            self.here,
            self.ctx,
        )
    }

    /// An edge the kind cannot do without.
    pub fn require(&mut self, role: &str, value: &Option<String>) -> Result<(), SpecError> {
        let v = value.clone().ok_or_else(|| {
            self.ctx.error(
                self.here,
                format!("kind `{}` needs `{role} = \"<stage id>\"`", self.kind),
            )
        })?;
        self.inputs.insert(role.to_string(), v);
        Ok(())
    }
}
