//! `compress`: hint-based compression of a frozen teacher into a small
//! student net (the paper's SNet1–3).

use super::training::{Net, OPTIMISER_KEYS, RUN_KEYS, TrainConfig, at};
use super::{DATA_ROLE, KindDef, Role, StageConfig, StageKind, Table};
use crate::spec::schema::RawStage;
use crate::spec::{SpecError, in_range};

pub const DEF: KindDef = KindDef {
    name: "compress",
    version: 1,
    backend: true,
    keys: &[
        &["data", "teacher", "net", "width"],
        OPTIMISER_KEYS,
        &["hint-epochs", "hint-lr"],
        RUN_KEYS,
    ],
    roles: &[
        DATA_ROLE,
        Role {
            name: "teacher",
            accepts: &[StageKind::TrainFrl, StageKind::Train],
        },
    ],
};

pub(in crate::spec) fn resolve(
    s: &RawStage,
    train: TrainConfig,
    t: &mut Table,
) -> Result<StageConfig, SpecError> {
    t.require("teacher", &s.teacher)?;
    let hint_lr = in_range(
        s.hint_lr.unwrap_or(1e-7),
        t.ctx,
        &t.key("hint-lr"),
        "must be > 0",
        |v| v > 0.0,
    )?;
    let hint_epochs = s.hint_epochs.unwrap_or(train.epochs);
    if train.net == Net::Tnet {
        return Err(t.error(
            &at(t.here, s.net.is_some(), "net"),
            "the student of `compress` must be `snet1`, `snet2` or `snet3`",
        ));
    }
    Ok(StageConfig::Compress {
        train,
        hint_epochs,
        hint_lr,
    })
}
