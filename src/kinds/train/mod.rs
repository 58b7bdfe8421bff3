//! `train` and `train-frl`: an attribute (or class) net trained on a data
//! set; `train-frl` adds the paper's multi-net-learning branch.

/// How it runs (burn).
pub mod run;

use serde::{Deserialize, Serialize};

use super::training::{Net, OPTIMISER_KEYS, RUN_KEYS, TrainConfig};
use super::{
    ATTRIBUTE_NETS, Artefact, DATA_ROLE, Env, Kind, KindDef, Resolved, Role, StageKind, Table,
    Upstream, standard,
};
use crate::spec::schema::RawStage;
use crate::spec::{SpecError, positive};

pub struct Train;
pub struct TrainFrl;

/// `train-frl`'s configuration: `train`'s and the MNL branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrlConfig {
    #[serde(flatten)]
    pub train: TrainConfig,
    pub mnl: bool,
    pub mnl_hidden: u32,
}

const BACKBONE: Role = Role {
    name: "backbone",
    accepts: &[StageKind::TrainFrl, StageKind::Train],
};

impl Kind for Train {
    type Config = TrainConfig;

    const DEF: KindDef = KindDef {
        name: "train",
        // 2: score biases start at the log prior odds.
        version: 2,
        backend: true,
        keys: &[
            &["data", "net", "width", "maps"],
            OPTIMISER_KEYS,
            &["init", "backbone", "from"],
            RUN_KEYS,
        ],
        roles: &[
            DATA_ROLE,
            BACKBONE,
            Role {
                name: "from",
                accepts: ATTRIBUTE_NETS,
            },
        ],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<TrainConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            let train = t.train(s, Net::Snet3, None)?;
            edges(s, t)?;
            Ok(train)
        })
    }

    fn artefact(c: &TrainConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        net_artefact(c, false, up)
    }

    fn train(c: &TrainConfig) -> Option<&TrainConfig> {
        Some(c)
    }
}

impl Kind for TrainFrl {
    type Config = FrlConfig;

    const DEF: KindDef = KindDef {
        name: "train-frl",
        // 2: score biases start at the log prior odds.
        version: 2,
        backend: true,
        keys: &[
            &["data", "net", "width", "maps"],
            OPTIMISER_KEYS,
            &["mnl", "mnl-hidden", "init", "backbone"],
            RUN_KEYS,
        ],
        roles: &[DATA_ROLE, BACKBONE],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<FrlConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            let train = t.train(s, Net::Tnet, None)?;
            edges(s, t)?;
            let hidden = positive(s.mnl_hidden.unwrap_or(512), t.ctx, &t.key("mnl-hidden"))?;
            Ok(FrlConfig {
                train,
                mnl: s.mnl.unwrap_or(true),
                mnl_hidden: hidden,
            })
        })
    }

    fn artefact(c: &FrlConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        net_artefact(&c.train, c.mnl, up)
    }

    fn train(c: &FrlConfig) -> Option<&TrainConfig> {
        Some(&c.train)
    }
}

/// Where the net starts: `init` (weights of this architecture), `backbone`
/// (a stage's conv layers) or `from` (a stage's whole net, continued).
fn edges(s: &RawStage, t: &mut Table) -> Result<(), SpecError> {
    if let Some(b) = &s.backbone {
        if s.init.is_some() {
            return Err(t.error(
                &t.key("backbone"),
                "give either `init` (weights of this architecture) or `backbone` (a stage's conv layers), not both",
            ));
        }
        t.inputs.insert("backbone".into(), b.clone());
    }
    if let Some(f) = &s.from {
        if s.init.is_some() || s.backbone.is_some() {
            return Err(t.error(
                &t.key("from"),
                "`from` (continue a stage's whole net) excludes `init` and `backbone`",
            ));
        }
        t.inputs.insert("from".into(), f.clone());
    }
    Ok(())
}

/// The trained net: a backbone must match its architecture, a continued
/// net its labels (and it keeps its own architecture and branches).
fn net_artefact(t: &TrainConfig, mnl: bool, up: &Upstream) -> Result<Option<Artefact>, String> {
    let Some((labels, _)) = up.data() else {
        return Ok(None);
    };
    if let Some((net, width, _)) = up.model("backbone")
        && (net != t.net || width != t.width)
    {
        return Err(format!(
            "`backbone = \"{}\"` is a {} at width {width}, this stage trains a {} at width {}: they must match",
            up.id("backbone"),
            net.as_str(),
            t.net.as_str(),
            t.width
        ));
    }
    if let Some((_, _, from)) = up.model("from")
        && from != labels
    {
        return Err(format!(
            "`from = \"{}\"` predicts {}, this stage's data has {}: they must be the same labels",
            up.id("from"),
            from.describe(),
            labels.describe()
        ));
    }
    if let Some(Artefact::Model {
        net, width, mnl, ..
    }) = up.input("from")
    {
        return Ok(Some(Artefact::Model {
            net: *net,
            width: *width,
            labels: labels.clone(),
            mnl: *mnl,
        }));
    }
    Ok(Some(Artefact::Model {
        net: t.net,
        width: t.width,
        labels: labels.clone(),
        mnl,
    }))
}
