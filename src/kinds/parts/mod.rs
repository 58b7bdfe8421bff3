//! `train-parts`: one part subnet per attribute on its region's patches
//! (or per block of a fixed grid, the paper's 4×4 baseline), each started
//! from the whole-image net.

/// How it runs (burn).
pub mod run;

use serde::{Deserialize, Serialize};

use super::training::{Net, OPTIMISER_KEYS, RUN_KEYS, TrainConfig};
use super::{
    Artefact, DATA_ROLE, Env, Kind, KindDef, Resolved, Role, StageKind, Upstream, standard,
};
use crate::spec::{SpecError, in_range, positive};

pub struct TrainParts;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartsConfig {
    #[serde(flatten)]
    pub train: TrainConfig,
    /// Side of the part subnets' input patches.
    pub part_size: u32,
    /// `Some(g)`: a fixed g×g grid of blocks instead of `regions`.
    pub grid: Option<u32>,
}

impl Kind for TrainParts {
    type Config = PartsConfig;

    const DEF: KindDef = KindDef {
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

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<PartsConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            let train = t.train(s, Net::Snet3, None)?;
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
            Ok(PartsConfig {
                train,
                part_size,
                grid,
            })
        })
    }

    fn artefact(c: &PartsConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        let Some((_, _, labels)) = up.model("whole") else {
            return Ok(None);
        };
        if let Some(Artefact::Regions { labels: r }) = up.input("regions")
            && r != labels
        {
            return Err(format!(
                "`regions = \"{}\"` localizes {}, `whole = \"{}\"` predicts {}: part subnets need a region for each of the whole net's labels",
                up.id("regions"),
                r.describe(),
                up.id("whole"),
                labels.describe()
            ));
        }
        Ok(Some(Artefact::Paw {
            labels: labels.clone(),
            fused: false,
            grid: c.grid.is_some(),
        }))
    }

    fn train(c: &PartsConfig) -> Option<&TrainConfig> {
        Some(&c.train)
    }
}
