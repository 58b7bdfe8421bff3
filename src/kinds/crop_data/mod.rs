//! `crop-data`: every image cropped to a box (the CAM box of `regions`,
//! the annotated box, or one centred box) as a new data set — Table 2's
//! crops on birds.

/// How it runs (burn).
pub mod run;

use serde::{Deserialize, Serialize};

use super::{
    Artefact, DATA_ROLE, Env, Kind, KindDef, Resolved, Role, StageKind, Upstream, standard,
};
use crate::spec::{SpecError, in_range};

pub struct CropData;

/// Crop every image to a box (the CAM box of `regions`, else the annotated
/// box) × `expand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CropConfig {
    pub expand: f64,
    /// The same centred box in every image (`box = "centre"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub centre: bool,
}

impl Kind for CropData {
    type Config = CropConfig;

    const DEF: KindDef = KindDef {
        name: "crop-data",
        version: 1,
        backend: true,
        keys: &[&["data", "regions", "expand", "box"]],
        roles: &[
            DATA_ROLE,
            Role {
                name: "regions",
                accepts: &[StageKind::Localize],
            },
        ],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<CropConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
            if s.regions.is_some() {
                t.require("regions", &s.regions)?;
            }
            let centre = match s.crop_box.as_deref() {
                None | Some("annotated") => false,
                Some("centre") if s.regions.is_some() => {
                    return Err(t.error(
                        &t.key("box"),
                        "`box = \"centre\"` crops without `regions`; remove one",
                    ));
                }
                Some("centre") => true,
                Some(other) => {
                    return Err(t.error(
                        &t.key("box"),
                        format!("unknown box `{other}`; allowed: `annotated`, `centre`"),
                    ));
                }
            };
            Ok(CropConfig {
                centre,
                expand: in_range(
                    s.expand.unwrap_or(1.0),
                    t.ctx,
                    &t.key("expand"),
                    "must be in [1, 4]",
                    |v| (1.0..=4.0).contains(&v),
                )?,
            })
        })
    }

    fn artefact(_: &CropConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        let Some((labels, cropped)) = up.data() else {
            return Ok(None);
        };
        if cropped {
            return Err(format!(
                "`crop-data` needs full images, and `data = \"{}\"` is already cropped (a `crop-data` stage, or CelebA read with `crop = \"bbox\"`)",
                up.id("data")
            ));
        }
        if let Some(Artefact::Regions { labels: r }) = up.input("regions")
            && !r.single
        {
            return Err(format!(
                "`regions = \"{}\"` localizes {} (one patch per attribute); `crop-data` needs one box per image, from a `localize` stage on single-label data (birds)",
                up.id("regions"),
                r.describe()
            ));
        }
        Ok(Some(Artefact::Data {
            labels: labels.clone(),
            cropped: true,
        }))
    }
}
