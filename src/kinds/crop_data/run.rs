//! `crop-data`: a new data set whose images are cropped to one box each —
//! the CAM-estimated bird box of a `localize` stage (`regions`; Table 2's
//! "crop" rows, on train and test alike) or, without `regions`, the
//! annotated box (`bounding_boxes.txt`, the ground-truth row) — then
//! resized into shards like any data stage. Downstream stages take it as
//! their `data`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::data::{self, Crop, Source, shards};
use crate::kinds;
use crate::spec::CropConfig;
use crate::spec::DataSpec;
use crate::stages::Run;
use crate::stages::{StageCtx, StageError, write_json};

/// Written into the entry: what [`StageCtx::data`] needs to read it back.
pub const SOURCE_FILE: &str = "source.json";
/// The boxes, in the upstream images' pixels.
pub const CROPS_FILE: &str = "crops.tsv";
/// `localize` on single-label data writes the CAM box of the predicted class here.
pub const CAM_BOXES_FILE: &str = "cam_boxes.tsv";

/// A derived data set: the upstream spec, and the upstream source with the
/// crop rule replaced (its box file relative to the entry).
#[derive(Debug, Serialize, Deserialize)]
pub struct Derived {
    pub spec: DataSpec,
    pub source: Source,
}

impl Run for kinds::crop_data::CropData {
    fn run(ctx: &StageCtx, c: &CropConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, c.expand, c.centre)
    }
}

fn run(ctx: &StageCtx, expand: f64, centre: bool) -> Result<serde_json::Value, StageError> {
    let (spec, upstream) = ctx.data()?;
    let fail = |message: String| StageError::Input {
        stage: ctx.stage.id.clone(),
        message,
    };
    if upstream.crop != Crop::Full {
        return Err(fail(
            "`crop-data` needs full images upstream (its `data` is already cropped)".into(),
        ));
    }
    let items = upstream.items()?;
    let size = spec.image_size as f32;
    let (boxes, rule): (Vec<(String, [f32; 4])>, &str) = match ctx.inputs.get("regions") {
        Some(entry) => {
            let path = entry.dir.join(CAM_BOXES_FILE);
            if !path.exists() {
                return Err(fail(format!(
                    "`regions` must be a `localize` stage on single-label data (birds); `{}` has no `{CAM_BOXES_FILE}`",
                    entry.dir.display()
                )));
            }
            let cam = data::read_box_table(&path)?;
            // CAM boxes are in input pixels (the full image resized to a square).
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                let Some(b) = cam.get(&item.file) else {
                    return Err(fail(format!(
                        "image `{}` has no CAM box in `{}`",
                        item.file,
                        path.display()
                    )));
                };
                let img = upstream.images.join(&item.file);
                let (w, h) = image::image_dimensions(&img).map_err(|e| {
                    crate::file_error::FileError::Read {
                        path: img.clone(),
                        source: std::io::Error::other(e),
                    }
                })?;
                let (sx, sy) = (w as f32 / size, h as f32 / size);
                out.push((
                    item.file.clone(),
                    [b[0] * sx, b[1] * sy, (b[2] - b[0]) * sx, (b[3] - b[1]) * sy],
                ));
            }
            (out, "cam")
        }
        None if centre => (
            centre_boxes(&items, &upstream.images, &ctx.stage.id)?,
            "centre",
        ),
        None => {
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                let b = item.bbox.ok_or_else(|| {
                    fail(format!(
                        "image `{}` has no annotated box to crop to",
                        item.file
                    ))
                })?;
                out.push((item.file.clone(), b));
            }
            (out, "annotated")
        }
    };
    data::write_box_table(&ctx.out.join(CROPS_FILE), ["x", "y", "w", "h"], &boxes)?;
    let source = Source {
        crop: Crop::Boxes {
            path: PathBuf::from(CROPS_FILE),
            expand: expand as f32,
        },
        shards: None,
        ..upstream
    };
    write_json(
        &ctx.out.join(SOURCE_FILE),
        &Derived {
            spec: spec.clone(),
            source: source.clone(),
        },
    )?;
    let absolute = Source {
        crop: Crop::Boxes {
            path: ctx.out.join(CROPS_FILE),
            expand: expand as f32,
        },
        ..source
    };
    ctx.progress
        .set_message(format!("cropping to {rule} boxes"));
    shards::write(
        &absolute,
        spec.image_size as usize,
        &ctx.out.join("shards"),
        &|split| {
            ctx.progress
                .set_message(format!("shards: {}", split.as_str()))
        },
    )?;
    ctx.progress.log(&format!(
        "cropped {} images to {rule} boxes × {expand}",
        boxes.len()
    ));
    Ok(json!({ "images": boxes.len(), "boxes": rule, "expand": expand }))
}

/// The same box in every image: centred, with the mean size of the
/// training images' annotated boxes relative to their image.
fn centre_boxes(
    items: &[data::Item],
    images: &Path,
    stage: &str,
) -> Result<Vec<(String, [f32; 4])>, StageError> {
    let dims = |file: &str| {
        let path = images.join(file);
        image::image_dimensions(&path).map_err(|e| crate::file_error::FileError::Read {
            path,
            source: std::io::Error::other(e),
        })
    };
    let (mut sw, mut sh, mut n) = (0.0f64, 0.0f64, 0usize);
    for item in items.iter().filter(|i| i.split == 0) {
        if let Some(b) = item.bbox {
            let (w, h) = dims(&item.file)?;
            sw += (b[2] / w as f32) as f64;
            sh += (b[3] / h as f32) as f64;
            n += 1;
        }
    }
    if n == 0 {
        return Err(StageError::Input {
            stage: stage.into(),
            message: "`box = \"centre\"` sizes its box from the annotated boxes of the training images, and there are none".into(),
        });
    }
    let (rw, rh) = ((sw / n as f64) as f32, (sh / n as f64) as f32);
    items
        .iter()
        .map(|item| {
            let (w, h) = dims(&item.file)?;
            let (bw, bh) = (rw * w as f32, rh * h as f32);
            Ok((
                item.file.clone(),
                [(w as f32 - bw) / 2.0, (h as f32 - bh) / 2.0, bw, bh],
            ))
        })
        .collect()
}

/// Resolve the box file of a derived source against its entry.
pub fn locate(source: &mut Source, entry: &Path) {
    if let Crop::Boxes { path, .. } = &mut source.crop {
        if path.is_relative() {
            *path = entry.join(&*path);
        }
    }
}
