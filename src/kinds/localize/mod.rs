//! `localize`: class activation maps of an attribute net, turned into one
//! patch per attribute and image (the parts PaW reads), with the pointing
//! game and MaxBoxAcc where regions are known.

/// How it runs (burn).
pub mod run;

use serde::Serialize;

use super::training::is_default;
use super::{
    ATTRIBUTE_NETS, Artefact, DATA_ROLE, Env, Kind, KindDef, Resolved, Role, Upstream, standard,
};
use crate::spec::{SpecError, choice, in_range};

pub struct Localize;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LocalizeConfig {
    /// Patch side as a fraction of the image side.
    pub patch: f64,
    /// Images per attribute drawn in the heatmap figure.
    pub samples: u32,
    /// Where patches are centred (controls for the FRL's localisation).
    #[serde(default, skip_serializing_if = "is_default")]
    pub centre: PatchCentre,
    /// Which map's peak (and boxes) are taken.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cam: CamMap,
}

/// Why a birds net takes only the raw CAM (a plan error, and the run's).
pub const SINGLE_LABEL_CAM: &str = "`cam = \"minus-mean\"` is for attribute nets; a single-label net's box comes from its predicted class's CAM";

/// The map `localize` reads each attribute's peak and boxes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CamMap {
    /// The class activation map, as the paper's FRL (the default).
    #[default]
    Raw,
    /// The CAM less the attribute's mean CAM over the training images: a
    /// map whose peak sits where a position's response is larger than it
    /// usually is there. A diagnostic: where the raw peak misses the
    /// region, does the map still carry its location?
    MinusMean,
}

/// Where `localize` centres each attribute's patch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchCentre {
    /// The CAM's peak in each image (the paper's FRL; the default).
    #[default]
    Cam,
    /// The attribute's mean CAM peak over the training images, the same in
    /// every image: does per-image localisation matter?
    Mean,
    /// The centre of the attribute's ground-truth region (synthetic data):
    /// an oracle localiser. Where an image has no region for the attribute,
    /// its mean ground-truth centre.
    Truth,
}

impl Kind for Localize {
    type Config = LocalizeConfig;

    const DEF: KindDef = KindDef {
        name: "localize",
        // 2: MaxBoxAcc beside the pointing game; 3: averages over local
        // attributes only; 4: a control's pointing game is its own patch
        // centres' (not its CAM's), and it has no MaxBoxAcc.
        version: 4,
        backend: true,
        keys: &[&["data", "model", "patch", "samples", "centre", "cam"]],
        roles: &[
            DATA_ROLE,
            Role {
                name: "model",
                accepts: ATTRIBUTE_NETS,
            },
        ],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<LocalizeConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            t.require("model", &s.model)?;
            let patch = in_range(
                s.patch.unwrap_or(64.0 / 224.0),
                t.ctx,
                &t.key("patch"),
                "must be in (0, 1]",
                |v| v > 0.0 && v <= 1.0,
            )?;
            let centre = choice(
                s.centre.as_ref(),
                &[
                    ("cam", PatchCentre::Cam),
                    ("mean", PatchCentre::Mean),
                    ("truth", PatchCentre::Truth),
                ],
                t.ctx,
                &t.key("centre"),
            )?;
            let cam = choice(
                s.cam.as_ref(),
                &[("raw", CamMap::Raw), ("minus-mean", CamMap::MinusMean)],
                t.ctx,
                &t.key("cam"),
            )?;
            Ok(LocalizeConfig {
                patch,
                samples: s.samples.unwrap_or(8),
                centre,
                cam,
            })
        })
    }

    /// The model's labels: it is the model's maps that are localised.
    fn artefact(c: &LocalizeConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        let Some((_, _, labels)) = up.model("model") else {
            return Ok(None);
        };
        if labels.single && c.cam != CamMap::Raw {
            return Err(SINGLE_LABEL_CAM.into());
        }
        Ok(Some(Artefact::Regions {
            labels: labels.clone(),
        }))
    }
}
