//! `train-fusion` (the region switch and attribute relation layers on
//! frozen subnets) and `finetune-paw` (the whole PaW net end to end).

/// How it runs (burn).
pub mod run;

use super::training::{Net, OPTIMISER_KEYS, RUN_KEYS, TrainConfig};
use super::{
    Artefact, DATA_ROLE, Env, Kind, KindDef, Resolved, Role, StageKind, Upstream, standard,
};
use crate::spec::SpecError;

pub struct TrainFusion;
pub struct FinetunePaw;

impl Kind for TrainFusion {
    type Config = TrainConfig;

    const DEF: KindDef = KindDef {
        name: "train-fusion",
        version: 1,
        backend: true,
        keys: &[&["data", "parts"], OPTIMISER_KEYS, RUN_KEYS],
        roles: &[
            DATA_ROLE,
            Role {
                name: "parts",
                accepts: &[StageKind::TrainParts],
            },
        ],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<TrainConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            // The paper's learning rate for the fusion layers.
            let train = t.train(s, Net::Snet3, Some(0.1))?;
            t.require("parts", &s.parts)?;
            Ok(train)
        })
    }

    fn artefact(_: &TrainConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(fused(up, "parts"))
    }

    fn train(c: &TrainConfig) -> Option<&TrainConfig> {
        Some(c)
    }
}

impl Kind for FinetunePaw {
    type Config = TrainConfig;

    const DEF: KindDef = KindDef {
        name: "finetune-paw",
        // 2: every subnet's parameters have their own ids (they shared SNet3's,
        // so fine-tuning mixed their gradients).
        version: 2,
        backend: true,
        keys: &[&["data", "fusion"], OPTIMISER_KEYS, RUN_KEYS],
        roles: &[
            DATA_ROLE,
            Role {
                name: "fusion",
                accepts: &[StageKind::TrainFusion],
            },
        ],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<TrainConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            // The paper's learning rate for end-to-end fine-tuning.
            let train = t.train(s, Net::Snet3, Some(1e-3))?;
            t.require("fusion", &s.fusion)?;
            Ok(train)
        })
    }

    fn artefact(_: &TrainConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(fused(up, "fusion"))
    }

    fn train(c: &TrainConfig) -> Option<&TrainConfig> {
        Some(c)
    }
}

/// The upstream's PaW net, fused.
fn fused(up: &Upstream, role: &str) -> Option<Artefact> {
    match up.input(role)? {
        Artefact::Paw { labels, grid, .. } => Some(Artefact::Paw {
            labels: labels.clone(),
            fused: true,
            grid: *grid,
        }),
        _ => None,
    }
}
