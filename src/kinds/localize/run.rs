//! `localize`: for every image and attribute, the FRL net's class
//! activation map H_j = Σ_i w_{j,i} F_i, upsampled (bilinear) to the input
//! size; its peak is the centre of a square patch of `patch` × side, moved
//! inside the image. Writes `boxes.tsv` (every image, every attribute),
//! `pointing.parquet` (pointing game per attribute on the test split, where
//! ground-truth regions exist) and heatmap overlays of sample test images.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use serde_json::json;

use crate::attributes::CELEBA;
use crate::data::celeba::{Celeba, read_regions};
use crate::data::{ImageSet, SquareBox, patch_around};
use crate::kinds;
use crate::metrics::store::{self, LocalisationRow};
use crate::models::AttrNet;
use crate::spec::LocalizeConfig;
use crate::spec::{CamMap, PatchCentre, Split};
use crate::stages::Run;
use crate::stages::{StageCtx, StageError, load_attr_net, write_json};
use crate::train::to_vec;

/// Upsampled CAMs of a batch, `[B, M, S, S]`.
pub fn upsampled_cams(model: &AttrNet, images: Tensor<4>) -> Tensor<4> {
    let size = images.dims()[2];
    let maps = model.forward(images).maps;
    let cams = model.cams(maps);
    let mut opts = InterpolateOptions::new(InterpolateMode::Bilinear);
    opts.align_corners = false;
    opts.output_size = Some([size, size]);
    interpolate(cams, opts)
}

/// Patch centres for the controls: every image's patch j at attribute j's
/// mean centre over the training images (`Mean`, from the CAM peaks;
/// `Truth`, from the ground-truth centres where present), or at the
/// ground-truth centre itself (`Truth`).
fn controlled_centres(
    centre: PatchCentre,
    peaks: &[(Vec<(usize, usize)>, bool)],
    truth: &[Vec<Option<(usize, usize)>>],
    m: usize,
    size: usize,
) -> Vec<Vec<(usize, usize)>> {
    let point = |i: usize, j: usize| -> Option<(usize, usize)> {
        match centre {
            PatchCentre::Truth => truth[i][j],
            _ => Some(peaks[i].0[j]),
        }
    };
    let mean: Vec<(usize, usize)> = (0..m)
        .map(|j| {
            let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0usize);
            for i in (0..peaks.len()).filter(|&i| peaks[i].1) {
                if let Some((x, y)) = point(i, j) {
                    sx += x as f64;
                    sy += y as f64;
                    n += 1;
                }
            }
            if n == 0 {
                (size / 2, size / 2)
            } else {
                (
                    (sx / n as f64).round() as usize,
                    (sy / n as f64).round() as usize,
                )
            }
        })
        .collect();
    (0..peaks.len())
        .map(|i| {
            (0..m)
                .map(|j| match centre {
                    PatchCentre::Truth => point(i, j).unwrap_or(mean[j]),
                    _ => mean[j],
                })
                .collect()
        })
        .collect()
}

/// Whether `(x, y)` lies within `tolerance` of region `b` (x0 y0 x1 y1):
/// the pointing game's hit.
fn points_into(x: usize, y: usize, b: &[f32; 4], tolerance: f32) -> bool {
    let (x, y, t) = (x as f32, y as f32, tolerance);
    x >= b[0] - t && x <= b[2] + t && y >= b[1] - t && y <= b[3] + t
}

/// Peak `(x, y)` of every map of a `[B, M, S, S]` tensor.
pub fn peaks(cams: Tensor<4>) -> Vec<Vec<(usize, usize)>> {
    let [b, m, s, _] = cams.dims();
    let idx = cams.reshape([b, m, s * s]).argmax(2);
    let flat: Vec<i64> = idx
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("int data");
    flat.chunks(m)
        .map(|row| {
            row.iter()
                .map(|&k| ((k as usize) % s, (k as usize) / s))
                .collect()
        })
        .collect()
}

impl Run for kinds::localize::Localize {
    fn run(ctx: &StageCtx, c: &LocalizeConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, c.patch, c.samples as usize, c.centre, c.cam)
    }
}

/// Each attribute's CAM, upsampled, averaged over the training images:
/// `[1, M, S, S]`.
fn mean_cam(
    stage: &str,
    model: &AttrNet,
    source: &crate::data::Source,
    info: &crate::stages::ModelInfo,
    device: &Device,
) -> Result<Tensor<4>, StageError> {
    let set = ImageSet::load(source, Split::Train, info.image_size, &info.attributes)?;
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut sum: Option<Tensor<4>> = None;
    for chunk in idx.chunks(64) {
        let part = upsampled_cams(model, set.images(chunk, &[], device)).sum_dim(0);
        sum = Some(match sum {
            Some(s) => s + part,
            None => part,
        });
    }
    let sum = sum.ok_or_else(|| StageError::Input {
        stage: stage.into(),
        message: "`cam = \"minus-mean\"` needs training images".into(),
    })?;
    Ok(sum / set.len() as f64)
}

fn run(
    ctx: &StageCtx,
    patch: f64,
    samples: usize,
    centre: PatchCentre,
    cam: CamMap,
) -> Result<serde_json::Value, StageError> {
    let (_, source) = ctx.data()?;
    let device: Device = ctx.device.device();
    let (model, info) = load_attr_net(&ctx.input("model").dir, "model", &device)?;
    if info.single_label {
        if cam != CamMap::Raw {
            return Err(StageError::Input {
                stage: ctx.stage.id.clone(),
                message: kinds::localize::SINGLE_LABEL_CAM.into(),
            });
        }
        return run_classes(ctx, &model, &info, &source, samples, &device);
    }
    let baseline = match cam {
        CamMap::Raw => None,
        CamMap::MinusMean => {
            ctx.progress
                .set_message("the mean CAM over training images".into());
            Some(mean_cam(&ctx.stage.id, &model, &source, &info, &device)?)
        }
    };
    let size = info.image_size;
    let m = info.attributes.len();
    let celeba = Celeba::open(&source.root)?;
    let regions = source
        .root
        .join("Anno/list_attr_regions.txt")
        .exists()
        .then(|| read_regions(&source.root, &celeba.records))
        .transpose()?;
    let row_of: std::collections::HashMap<&str, usize> = celeba
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.file.as_str(), i))
        .collect();
    // Without drawn regions (real CelebA), the landmarks score the eye, nose
    // and mouth attributes: a hit if the peak is within `tolerance` of one.
    let landmark_items: Option<std::collections::HashMap<String, crate::data::Item>> =
        (regions.is_none() && celeba.records.iter().any(|r| r.landmarks.is_some()))
            .then(|| {
                source
                    .items()
                    .map(|v| v.into_iter().map(|i| (i.file.clone(), i)).collect())
            })
            .transpose()?;
    let tolerance = 15.0 * size as f32 / 224.0;

    let mut files = Vec::new();
    let mut boxes: Vec<Vec<SquareBox>> = Vec::new();
    // Each image's patch centres and whether it is a training image.
    let mut centres: Vec<(Vec<(usize, usize)>, bool)> = Vec::new();
    let mut truth_centres: Vec<Vec<Option<(usize, usize)>>> = Vec::new();
    let mut tested: Vec<bool> = Vec::new();
    let (mut hits, mut counts) = (vec![0usize; m], vec![0usize; m]);
    let total = celeba.records.len() as u64;
    ctx.progress.set_total(total);
    let heat_dir = ctx.out.join("heatmaps");
    std::fs::create_dir_all(&heat_dir).map_err(|source| crate::file_error::FileError::Write {
        path: heat_dir.clone(),
        source,
    })?;
    let mut saved = Vec::new();
    // MaxBoxAcc: hits per (split: val, test) × threshold × attribute.
    let taus: Vec<f32> = (1..20).map(|k| k as f32 * 0.05).collect();
    let mut box_hits = vec![vec![vec![0usize; m]; taus.len()]; 2];
    let mut box_counts = vec![vec![0usize; m]; 2];
    for split in [Split::Train, Split::Val, Split::Test] {
        ctx.progress
            .set_message(format!("localising {}", split.as_str()));
        let set = ImageSet::load(&source, split, size, &info.attributes)?;
        let idx: Vec<usize> = (0..set.len()).collect();
        for chunk in idx.chunks(64) {
            let mut cams = upsampled_cams(&model, set.images(chunk, &[], &device));
            if let Some(b) = &baseline {
                cams = cams - b.clone();
            }
            if split == Split::Test && saved.len() < samples {
                let take = (samples - saved.len()).min(chunk.len());
                let values = to_vec(cams.clone().narrow(0, 0, take));
                for k in 0..take {
                    let file = &set.files[chunk[k]];
                    let path = heat_dir.join(file.replace(".jpg", ".png"));
                    overlay(
                        &set,
                        chunk[k],
                        &values[k * m * size * size..(k + 1) * m * size * size],
                        m,
                        &path,
                    )?;
                    saved.push(file.clone());
                }
            }
            if let (Split::Val | Split::Test, Some(regions)) = (split, &regions) {
                let si = (split == Split::Test) as usize;
                let values = to_vec(cams.clone());
                for (k, &i) in chunk.iter().enumerate() {
                    let rec = row_of[set.files[i].as_str()];
                    for j in 0..m {
                        let Some((_, gt)) =
                            regions[rec].iter().find(|(a, _)| *a == info.attributes[j])
                        else {
                            continue;
                        };
                        let map = &values[(k * m + j) * size * size..(k * m + j + 1) * size * size];
                        box_counts[si][j] += 1;
                        for (t, &tau) in taus.iter().enumerate() {
                            if largest_component_box(map, size, tau)
                                .is_some_and(|b| iou(&b, gt) >= 0.5)
                            {
                                box_hits[si][t][j] += 1;
                            }
                        }
                    }
                }
            }
            for (k, row) in peaks(cams).into_iter().enumerate() {
                let i = chunk[k];
                if centre == PatchCentre::Truth {
                    let regions = regions.as_ref().ok_or_else(|| StageError::Input {
                        stage: ctx.stage.id.clone(),
                        message: "`centre = \"truth\"` needs ground-truth regions (`Anno/list_attr_regions.txt`, synthetic faces)".into(),
                    })?;
                    let rec = row_of[set.files[i].as_str()];
                    let truth: Vec<Option<(usize, usize)>> = (0..m)
                        .map(|j| {
                            regions[rec]
                                .iter()
                                .find(|(a, _)| *a == info.attributes[j])
                                .map(|(_, b)| {
                                    let c = |lo: f32, hi: f32| {
                                        ((lo + hi) / 2.0).clamp(0.0, size as f32 - 1.0) as usize
                                    };
                                    (c(b[0], b[2]), c(b[1], b[3]))
                                })
                        })
                        .collect();
                    truth_centres.push(truth);
                }
                centres.push((row.clone(), split == Split::Train));
                boxes.push(
                    row.iter()
                        .map(|&(x, y)| patch_around(x, y, size, patch))
                        .collect(),
                );
                files.push(set.files[i].clone());
                tested.push(split == Split::Test);
                // Pointing game: a hit if the peak lies within `tolerance` of the region.
                if let (Split::Test, Some(items)) = (split, &landmark_items) {
                    let item = &items[&set.files[i]];
                    let Some(points) = item.landmarks else {
                        continue;
                    };
                    let path = source.images.join(&item.file);
                    let (w, h) = image::image_dimensions(&path).map_err(|e| {
                        crate::file_error::FileError::Read {
                            path: path.clone(),
                            source: std::io::Error::other(e),
                        }
                    })?;
                    for (j, &(x, y)) in row.iter().enumerate() {
                        let a = info.attributes[j];
                        let Some(group) =
                            crate::attributes::landmarks_of(a).filter(|_| item.labels[a] == 1)
                        else {
                            continue;
                        };
                        counts[j] += 1;
                        let near = |k: &usize| {
                            let (px, py) = source.to_input(
                                item,
                                w,
                                h,
                                size,
                                (points[2 * k], points[2 * k + 1]),
                            );
                            (x as f32 - px).hypot(y as f32 - py) <= tolerance
                        };
                        hits[j] += group.iter().any(near) as usize;
                    }
                }
                if let (Split::Test, Some(regions)) = (split, &regions) {
                    let rec = row_of[set.files[i].as_str()];
                    for (j, &(x, y)) in row.iter().enumerate() {
                        // Regions are in on-disk pixels; synthetic sets are written at the input size.
                        if let Some((_, b)) =
                            regions[rec].iter().find(|(a, _)| *a == info.attributes[j])
                        {
                            counts[j] += 1;
                            hits[j] += points_into(x, y, b, tolerance) as usize;
                        }
                    }
                }
            }
            ctx.progress.set_position(files.len() as u64);
        }
    }
    // A control's patches are not its CAM's: its pointing game is that of
    // the patch centres it uses (so the report does not repeat the CAM's),
    // and it has no CAM boxes (no MaxBoxAcc).
    let control = centre != PatchCentre::Cam;
    if control {
        let points = controlled_centres(centre, &centres, &truth_centres, m, size);
        boxes = points
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(x, y)| patch_around(x, y, size, patch))
                    .collect()
            })
            .collect();
        ctx.progress.log(&format!(
            "patches centred on {} (a control), not on each image's CAM peak",
            if centre == PatchCentre::Mean {
                "each attribute's mean CAM peak over the training images"
            } else {
                "the ground-truth regions"
            }
        ));
        (hits, counts) = (vec![0; m], vec![0; m]);
        box_counts = vec![vec![0; m]; 2];
        if let Some(regions) = &regions {
            for (i, f) in files.iter().enumerate().filter(|&(i, _)| tested[i]) {
                let rec = row_of[f.as_str()];
                for (j, &(x, y)) in points[i].iter().enumerate() {
                    if let Some((_, b)) =
                        regions[rec].iter().find(|(a, _)| *a == info.attributes[j])
                    {
                        counts[j] += 1;
                        hits[j] += points_into(x, y, b, tolerance) as usize;
                    }
                }
            }
        }
    }
    crate::data::write_part_boxes(&ctx.out.join("boxes.tsv"), &files, &boxes)?;
    write_json(
        &ctx.out.join("heatmaps.json"),
        &json!({ "images": saved, "attributes": info.attributes.iter().map(|&a| CELEBA[a]).collect::<Vec<_>>(), "image_size": size }),
    )?;
    let mut pointing = None;
    let mut maxboxacc = None;
    if (regions.is_some() || landmark_items.is_some()) && counts.iter().any(|&c| c > 0) {
        // Averages are over local attributes: a global attribute's region is
        // the whole face, which any peak hits.
        let local = |j: usize| crate::attributes::is_local(info.attributes[j]);
        // The threshold is chosen on val and reported on test.
        let mean_at = |si: usize, t: usize| {
            crate::metrics::mean(
                &(0..m)
                    .filter(|&j| local(j) && box_counts[si][j] > 0)
                    .map(|j| box_hits[si][t][j] as f64 / box_counts[si][j] as f64)
                    .collect::<Vec<_>>(),
            )
        };
        let best = (0..taus.len())
            .max_by(|&a, &b| mean_at(0, a).total_cmp(&mean_at(0, b)))
            .unwrap_or(0);
        if regions.is_some() && !control {
            let rows: Vec<LocalisationRow> = (0..m)
                .map(|j| LocalisationRow {
                    attribute: CELEBA[info.attributes[j]].to_string(),
                    rate: if box_counts[1][j] > 0 {
                        box_hits[1][best][j] as f64 / box_counts[1][j] as f64
                    } else {
                        f64::NAN
                    },
                    images: box_counts[1][j] as u32,
                })
                .collect();
            store::write_localisation(
                &ctx.out.join("maxboxacc.parquet"),
                &ctx.stage.id,
                "test",
                &rows,
            )?;
            maxboxacc = Some((mean_at(1, best), taus[best]));
            ctx.progress.log(&format!(
                "MaxBoxAcc on test: {:.2}% at threshold {:.2} of the max (chosen on val)",
                100.0 * mean_at(1, best),
                taus[best]
            ));
        }
        let rows: Vec<LocalisationRow> = (0..m)
            .map(|j| LocalisationRow {
                attribute: CELEBA[info.attributes[j]].to_string(),
                rate: if counts[j] > 0 {
                    hits[j] as f64 / counts[j] as f64
                } else {
                    f64::NAN
                },
                images: counts[j] as u32,
            })
            .collect();
        store::write_localisation(
            &ctx.out.join("pointing.parquet"),
            &ctx.stage.id,
            "test",
            &rows,
        )?;
        let scored: Vec<f64> = (0..m)
            .filter(|&j| local(j) && counts[j] > 0)
            .map(|j| hits[j] as f64 / counts[j] as f64)
            .collect();
        pointing = Some(crate::metrics::mean(&scored));
        let against = match (control, regions.is_some()) {
            (true, _) => "the control's patch centres against the drawn regions",
            (false, true) => "drawn regions",
            (false, false) => "landmarks",
        };
        ctx.progress.log(&format!(
            "pointing game on test ({against}): {:.2}% over {} local attributes",
            100.0 * pointing.unwrap(),
            scored.len()
        ));
    }
    Ok(
        json!({ "images": files.len(), "maxboxacc": maxboxacc.map(|m| m.0), "maxboxacc_threshold": maxboxacc.map(|m| m.1), "patch": patch, "patch_px": boxes.first().and_then(|b| b.first()).map(|b| b[2]), "pointing_game": pointing, "samples": saved.len() }),
    )
}

/// The threshold of Zhou et al. (2016) for CAM boxes: 20% of the map's range.
pub const CAM_BOX_THRESHOLD: f32 = 0.2;

/// Single-label data (birds): per image, the CAM of the predicted class
/// boxed at [`CAM_BOX_THRESHOLD`] (the crop of Table 2, `cam_boxes.tsv`),
/// and where the source has full images and boxes, localisation of the
/// true class's CAM against the annotated box: the pointing game and
/// MaxBoxAcc (threshold chosen on val, reported on test).
fn run_classes(
    ctx: &StageCtx,
    model: &AttrNet,
    info: &crate::stages::ModelInfo,
    source: &crate::data::Source,
    samples: usize,
    device: &Device,
) -> Result<serde_json::Value, StageError> {
    let size = info.image_size;
    let m = info.attributes.len();
    let scored = source.crop == crate::data::Crop::Full;
    let bbox_of: std::collections::HashMap<String, [f32; 4]> = if scored {
        source
            .items()?
            .into_iter()
            .filter_map(|i| Some((i.file, i.bbox?)))
            .collect()
    } else {
        Default::default()
    };
    let tolerance = 15.0 * size as f32 / 224.0;
    let taus: Vec<f32> = (1..20).map(|k| k as f32 * 0.05).collect();
    // [val, test]: MaxBoxAcc hits per threshold, pointing hits, count.
    let mut box_hits = [vec![0usize; taus.len()], vec![0usize; taus.len()]];
    let (mut point_hits, mut counts) = ([0usize; 2], [0usize; 2]);
    let mut cam_boxes = Vec::new();
    let heat_dir = ctx.out.join("heatmaps");
    std::fs::create_dir_all(&heat_dir).map_err(|source| crate::file_error::FileError::Write {
        path: heat_dir.clone(),
        source,
    })?;
    let mut saved = Vec::new();
    for split in [Split::Train, Split::Val, Split::Test] {
        ctx.progress
            .set_message(format!("localising {}", split.as_str()));
        let set = ImageSet::load(source, split, size, &info.attributes)?;
        let idx: Vec<usize> = (0..set.len()).collect();
        for chunk in idx.chunks(64) {
            let out = model.forward(set.images(chunk, &[], device));
            let predicted = crate::metrics::predicted_classes(&to_vec(out.scores), m);
            let truth: Vec<usize> = chunk
                .iter()
                .map(|&i| {
                    set.labels[i * m..(i + 1) * m]
                        .iter()
                        .position(|&l| l == 1)
                        .unwrap_or(0)
                })
                .collect();
            // The CAMs of the predicted and the true class, upsampled.
            let cams = model.cams(out.maps);
            let [b, _, h, w] = cams.dims();
            let low = to_vec(cams);
            let pick: Vec<f32> = (0..b)
                .flat_map(|k| {
                    [predicted[k], truth[k]]
                        .into_iter()
                        .flat_map(|c| low[(k * m + c) * h * w..(k * m + c + 1) * h * w].to_vec())
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut opts = InterpolateOptions::new(InterpolateMode::Bilinear);
            opts.align_corners = false;
            opts.output_size = Some([size, size]);
            let up = to_vec(interpolate(
                Tensor::<1>::from_floats(pick.as_slice(), device).reshape([b, 2, h, w]),
                opts,
            ));
            let plane =
                |k: usize, t: usize| &up[(k * 2 + t) * size * size..(k * 2 + t + 1) * size * size];
            for (k, &i) in chunk.iter().enumerate() {
                let file = &set.files[i];
                let bx = largest_component_box(plane(k, 0), size, CAM_BOX_THRESHOLD).unwrap_or([
                    0.0,
                    0.0,
                    size as f32,
                    size as f32,
                ]);
                cam_boxes.push((file.clone(), bx));
                if split == Split::Test && saved.len() < samples {
                    let path = heat_dir.join(format!("{}.png", file.replace(['/', '.'], "_")));
                    overlay(&set, i, plane(k, 1), 1, &path)?;
                    saved.push(file.clone());
                }
                let (Split::Val | Split::Test, Some(gt)) = (split, bbox_of.get(file)) else {
                    continue;
                };
                let si = (split == Split::Test) as usize;
                let img = source.images.join(file);
                let (iw, ih) = image::image_dimensions(&img).map_err(|e| {
                    crate::file_error::FileError::Read {
                        path: img.clone(),
                        source: std::io::Error::other(e),
                    }
                })?;
                let (sx, sy) = (size as f32 / iw as f32, size as f32 / ih as f32);
                let gt = [
                    gt[0] * sx,
                    gt[1] * sy,
                    (gt[0] + gt[2]) * sx,
                    (gt[1] + gt[3]) * sy,
                ];
                let map = plane(k, 1);
                counts[si] += 1;
                let peak = map
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |a, (p, &v)| if v > a.1 { (p, v) } else { a },
                    )
                    .0;
                let (x, y) = ((peak % size) as f32, (peak / size) as f32);
                point_hits[si] += (x >= gt[0] - tolerance
                    && x <= gt[2] + tolerance
                    && y >= gt[1] - tolerance
                    && y <= gt[3] + tolerance) as usize;
                for (t, &tau) in taus.iter().enumerate() {
                    if largest_component_box(map, size, tau).is_some_and(|b| iou(&b, &gt) >= 0.5) {
                        box_hits[si][t] += 1;
                    }
                }
            }
            ctx.progress.set_position(cam_boxes.len() as u64);
        }
    }
    crate::data::write_box_table(
        &ctx.out.join(crate::kinds::crop_data::run::CAM_BOXES_FILE),
        ["x0", "y0", "x1", "y1"],
        &cam_boxes,
    )?;
    write_json(
        &ctx.out.join("heatmaps.json"),
        &json!({ "images": saved, "attributes": ["true class"], "image_size": size }),
    )?;
    let (mut pointing, mut maxboxacc) = (None, None);
    if counts[1] > 0 {
        let rate = |hits: usize, si: usize| hits as f64 / counts[si].max(1) as f64;
        let best = (0..taus.len())
            .max_by(|&a, &b| box_hits[0][a].cmp(&box_hits[0][b]))
            .unwrap_or(0);
        maxboxacc = Some((rate(box_hits[1][best], 1), taus[best]));
        pointing = Some(rate(point_hits[1], 1));
        let row = |rate: f64| {
            vec![LocalisationRow {
                attribute: "bird".into(),
                rate,
                images: counts[1] as u32,
            }]
        };
        store::write_localisation(
            &ctx.out.join("maxboxacc.parquet"),
            &ctx.stage.id,
            "test",
            &row(rate(box_hits[1][best], 1)),
        )?;
        store::write_localisation(
            &ctx.out.join("pointing.parquet"),
            &ctx.stage.id,
            "test",
            &row(rate(point_hits[1], 1)),
        )?;
        ctx.progress.log(&format!(
            "true-class CAM on test: pointing game {:.2}%, MaxBoxAcc {:.2}% at threshold {:.2} (chosen on val)",
            100.0 * rate(point_hits[1], 1),
            100.0 * rate(box_hits[1][best], 1),
            taus[best]
        ));
    }
    Ok(
        json!({ "images": cam_boxes.len(), "cam_box_threshold": CAM_BOX_THRESHOLD, "maxboxacc": maxboxacc.map(|m| m.0), "maxboxacc_threshold": maxboxacc.map(|m| m.1), "pointing_game": pointing, "samples": saved.len() }),
    )
}

/// Box `[x0, y0, x1, y1]` of the largest 4-connected region of `map` at or
/// above `tau` × its range above the minimum (Zhou et al. 2016; Choe et al. 2020).
pub fn largest_component_box(map: &[f32], size: usize, tau: f32) -> Option<[f32; 4]> {
    let (lo, hi) = map
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if hi <= lo {
        return None;
    }
    let thr = lo + tau * (hi - lo);
    let mut seen = vec![false; map.len()];
    let mut best: Option<(usize, [usize; 4])> = None;
    for start in 0..map.len() {
        if seen[start] || map[start] < thr {
            continue;
        }
        let (mut n, mut b) = (0, [usize::MAX, usize::MAX, 0, 0]);
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(p) = stack.pop() {
            let (x, y) = (p % size, p / size);
            n += 1;
            b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            let neighbours = [
                (x > 0).then(|| p - 1),
                (x + 1 < size).then(|| p + 1),
                (y > 0).then(|| p - size),
                (y + 1 < size).then(|| p + size),
            ];
            for q in neighbours.into_iter().flatten() {
                if !seen[q] && map[q] >= thr {
                    seen[q] = true;
                    stack.push(q);
                }
            }
        }
        if best.is_none_or(|(m, _)| n > m) {
            best = Some((n, b));
        }
    }
    best.map(|(_, b)| {
        [
            b[0] as f32,
            b[1] as f32,
            b[2] as f32 + 1.0,
            b[3] as f32 + 1.0,
        ]
    })
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// A strip: the image, then one jet-coloured CAM overlay per attribute.
fn overlay(
    set: &ImageSet,
    i: usize,
    cams: &[f32],
    m: usize,
    path: &std::path::Path,
) -> Result<(), StageError> {
    let s = set.size;
    let per = 3 * s * s;
    let img = &set.pixels[i * per..(i + 1) * per];
    let mut out = image::RgbImage::new((s * (m + 1)) as u32, s as u32);
    for t in 0..=m {
        let cam = (t > 0).then(|| &cams[(t - 1) * s * s..t * s * s]);
        let (lo, hi) = cam.map_or((0.0, 1.0), |c| {
            c.iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)))
        });
        for y in 0..s {
            for x in 0..s {
                let px = [0, 1, 2].map(|c| img[c * s * s + y * s + x] as f32);
                let rgb = match cam {
                    None => px,
                    Some(c) => {
                        let v = (c[y * s + x] - lo) / (hi - lo).max(1e-6);
                        let j = crate::colour::jet(v);
                        [0, 1, 2].map(|k| 0.5 * px[k] + 0.5 * j[k])
                    }
                };
                out.put_pixel(
                    (t * s + x) as u32,
                    y as u32,
                    image::Rgb(rgb.map(|v| v.clamp(0.0, 255.0) as u8)),
                );
            }
        }
    }
    out.save(path).map_err(|e| {
        crate::file_error::FileError::Write {
            path: path.into(),
            source: std::io::Error::other(e),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_of_a_planted_heatmap() {
        let d = Device::flex();
        let mut v = vec![0f32; 2 * 8 * 8];
        v[3 * 8 + 5] = 1.0; // map 0 peak at x=5, y=3
        v[64 + 7 * 8] = 2.0; // map 1 peak at the border x=0, y=7
        let t = Tensor::<1>::from_floats(v.as_slice(), &d).reshape([1, 2, 8, 8]);
        assert_eq!(peaks(t), vec![vec![(5, 3), (0, 7)]]);
        assert_eq!(patch_around(0, 7, 8, 0.5), [0, 4, 4]);
    }

    #[test]
    fn largest_component_and_iou() {
        // Two blobs on an 8×8 map: a 3×2 one (6 px) and a single hot pixel.
        let mut map = vec![0f32; 64];
        for (x, y) in [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)] {
            map[y * 8 + x] = 0.6;
        }
        map[6 * 8 + 6] = 1.0;
        assert_eq!(
            largest_component_box(&map, 8, 0.5),
            Some([1.0, 1.0, 4.0, 3.0])
        );
        assert_eq!(
            largest_component_box(&map, 8, 0.9),
            Some([6.0, 6.0, 7.0, 7.0])
        );
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
    }
}
