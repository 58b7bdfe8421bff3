//! `train-fusion` (the region switch and attribute relation layers on
//! frozen subnets) and `finetune-paw` (the whole PaW net end to end).

use super::training::{OPTIMISER_KEYS, RUN_KEYS, TrainConfig};
use super::{DATA_ROLE, KindDef, Role, StageConfig, StageKind, Table};
use crate::spec::SpecError;
use crate::spec::schema::RawStage;

pub const FUSION: KindDef = KindDef {
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

pub const FINETUNE: KindDef = KindDef {
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

pub(in crate::spec) fn resolve(
    s: &RawStage,
    train: TrainConfig,
    t: &mut Table,
) -> Result<StageConfig, SpecError> {
    if t.kind == StageKind::TrainFusion {
        t.require("parts", &s.parts)?;
        Ok(StageConfig::TrainFusion(train))
    } else {
        t.require("fusion", &s.fusion)?;
        Ok(StageConfig::FinetunePaw(train))
    }
}
