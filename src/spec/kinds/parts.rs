//! `train-parts`: one part subnet per attribute on its region's patches
//! (or per block of a fixed grid, the paper's 4×4 baseline), each started
//! from the whole-image net.

use super::training::{OPTIMISER_KEYS, RUN_KEYS, TrainConfig};
use super::{DATA_ROLE, KindDef, Role, StageConfig, StageKind, Table};
use crate::spec::schema::RawStage;
use crate::spec::{SpecError, in_range, positive};

pub const DEF: KindDef = KindDef {
    name: "train-parts",
    version: 1,
    backend: true,
    keys: &[
        &["data", "whole", "regions", "grid", "part-size"],
        OPTIMISER_KEYS,
        RUN_KEYS,
    ],
    roles: &[
        DATA_ROLE,
        Role {
            name: "whole",
            accepts: &[StageKind::Compress, StageKind::Train],
        },
        Role {
            name: "regions",
            accepts: &[StageKind::Localize],
        },
    ],
};

pub(in crate::spec) fn resolve(
    s: &RawStage,
    train: TrainConfig,
    t: &mut Table,
) -> Result<StageConfig, SpecError> {
    t.require("whole", &s.whole)?;
    let grid = match (&s.regions, s.grid) {
        (Some(_), Some(_)) => {
            return Err(t.error(
                &t.key("grid"),
                "give either `regions` (a localize stage) or `grid`, not both",
            ));
        }
        (None, None) => {
            return Err(t.error(
                t.here,
                "kind `train-parts` needs `regions = \"<localize stage>\"` or `grid = 4`",
            ));
        }
        (Some(_), None) => {
            t.require("regions", &s.regions)?;
            None
        }
        (None, Some(g)) => {
            Some(
                in_range(g as f64, t.ctx, &t.key("grid"), "must be in 1..=8", |v| {
                    (1.0..=8.0).contains(&v)
                })? as u32,
            )
        }
    };
    let part_size = positive(s.part_size.unwrap_or(64), t.ctx, &t.key("part-size"))?;
    if part_size < 16 || part_size % 16 != 0 {
        return Err(t.error(
            &t.key("part-size"),
            format!("must be a multiple of 16 (four 2x2 pools), got {part_size}"),
        ));
    }
    Ok(StageConfig::TrainParts {
        train,
        part_size,
        grid,
    })
}
