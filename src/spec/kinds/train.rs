//! `train` and `train-frl`: an attribute (or class) net trained on a data
//! set; `train-frl` adds the paper's multi-net-learning branch.

use super::training::{OPTIMISER_KEYS, RUN_KEYS, TrainConfig};
use super::{ATTRIBUTE_NETS, DATA_ROLE, KindDef, Role, StageConfig, StageKind, Table};
use crate::spec::SpecError;
use crate::spec::positive;
use crate::spec::schema::RawStage;

const BACKBONE: Role = Role {
    name: "backbone",
    accepts: &[StageKind::TrainFrl, StageKind::Train],
};

pub const TRAIN: KindDef = KindDef {
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

pub const TRAIN_FRL: KindDef = KindDef {
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

pub(in crate::spec) fn resolve(
    s: &RawStage,
    train: TrainConfig,
    t: &mut Table,
) -> Result<StageConfig, SpecError> {
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
    if t.kind == StageKind::Train {
        return Ok(StageConfig::Train(train));
    }
    let hidden = positive(s.mnl_hidden.unwrap_or(512), t.ctx, &t.key("mnl-hidden"))?;
    Ok(StageConfig::TrainFrl {
        train,
        mnl: s.mnl.unwrap_or(true),
        mnl_hidden: hidden,
    })
}
