//! `crop-data`: every image cropped to a box (the CAM box of `regions`,
//! the annotated box, or one centred box) as a new data set — Table 2's
//! crops on birds.

use super::{DATA_ROLE, KindDef, Role, StageConfig, StageKind, Table};
use crate::spec::schema::RawStage;
use crate::spec::{SpecError, in_range};

pub const DEF: KindDef = KindDef {
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

pub(in crate::spec) fn resolve(s: &RawStage, t: &mut Table) -> Result<StageConfig, SpecError> {
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
    Ok(StageConfig::CropData {
        centre,
        expand: in_range(
            s.expand.unwrap_or(1.0),
            t.ctx,
            &t.key("expand"),
            "must be in [1, 4]",
            |v| (1.0..=4.0).contains(&v),
        )?,
    })
}
