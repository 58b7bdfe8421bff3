//! `generate-data` (the synthetic sets) and `read-data` (CelebA, CUB-200
//! on disk): the `[data]` table, or a `[[stage]]` of its keys plus `seed`.

/// How it runs (burn).
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Artefact, Env, Kind, KindDef, Labels, Resolved, Upstream};
use crate::attributes;
pub use crate::data::{DataSpec, RealData};
use crate::spec::locate::Seg;
use crate::spec::schema::RawData;
use crate::spec::{Ctx, SpecError, backticked, in_range, key, positive};

pub struct GenerateData;
pub struct ReadData;

impl Kind for GenerateData {
    type Config = DataSpec;

    const DEF: KindDef = KindDef {
        name: "generate-data",
        // 2: faces fill more of the frame (like the paper's detector crops);
        // 3: preprocessed shards in the entry.
        version: 3,
        // Data do not depend on the compute backend: a GPU run reuses the CPU's.
        backend: false,
        // `[data]`'s keys plus `seed`, checked by `RawData`.
        keys: &[],
        roles: &[],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<DataSpec>, SpecError> {
        resolve_data_stage(table, env, false)
    }

    fn artefact(d: &DataSpec, _: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(Some(data_artefact(d)))
    }
}

impl Kind for ReadData {
    type Config = DataSpec;

    const DEF: KindDef = KindDef {
        name: "read-data",
        // 3: truncated JPEGs are errors, not silently grey; the data's
        // fingerprint in the artefact.
        version: 3,
        backend: false,
        keys: &[],
        roles: &[],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<DataSpec>, SpecError> {
        resolve_data_stage(table, env, true)
    }

    fn artefact(d: &DataSpec, _: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(Some(data_artefact(d)))
    }
}

/// A data set: its labels, and whether its images are already crops.
fn data_artefact(d: &DataSpec) -> Artefact {
    Artefact::Data {
        labels: Labels {
            single: d.single_label(),
            ids: d.attributes.clone(),
            class_offset: d.class_offset,
        },
        cropped: d.real.as_ref().is_some_and(|r| r.crop == "bbox"),
    }
}

const DATASETS: [&str; 4] = ["synthetic-faces", "celeba", "synthetic-birds", "cub200"];

/// `[data]`, or a `generate-data` / `read-data` stage at `p`.
pub(crate) fn resolve_data(
    raw: Option<RawData>,
    seed: u64,
    ctx: &Ctx,
    p: &[Seg],
) -> Result<DataSpec, SpecError> {
    let RawData {
        dataset,
        root,
        variant,
        crop,
        expand,
        skip_missing,
        image_size,
        train_images,
        val_images,
        test_images,
        attributes,
        classes,
        first_class,
        generator,
        independent_parts,
    } = raw.unwrap_or_default();
    let dataset = dataset.unwrap_or_else(|| "synthetic-faces".into());
    if !DATASETS.contains(&dataset.as_str()) {
        return Err(ctx.error(
            &key(&p, "dataset"),
            format!(
                "unknown dataset `{dataset}`; known datasets are {}",
                backticked(&DATASETS)
            ),
        ));
    }
    let birds = matches!(dataset.as_str(), "synthetic-birds" | "cub200");
    let real = if dataset == "celeba" {
        let root = root.ok_or_else(|| {
            ctx.error(
                &p,
                "`celeba` needs `root = \"<folder with Img/, Anno/, Eval/>\"`",
            )
        })?;
        let variant = variant.unwrap_or_else(|| "unaligned".into());
        if !["unaligned", "aligned"].contains(&variant.as_str()) {
            return Err(ctx.error(
                &key(&p, "variant"),
                format!("unknown variant `{variant}`; allowed: `unaligned`, `aligned`"),
            ));
        }
        let default_crop = if variant == "unaligned" {
            "bbox"
        } else {
            "none"
        };
        let crop = crop.unwrap_or_else(|| default_crop.into());
        if !["bbox", "none"].contains(&crop.as_str()) {
            return Err(ctx.error(
                &key(&p, "crop"),
                format!("unknown crop `{crop}`; allowed: `bbox`, `none`"),
            ));
        }
        let expand = in_range(
            expand.unwrap_or(1.3),
            ctx,
            &key(&p, "expand"),
            "must be in [1, 4]",
            |v| (1.0..=4.0).contains(&v),
        )?;
        Some(RealData {
            root: real_root(root, ctx, p),
            variant,
            crop,
            expand,
            skip_missing: skip_missing.unwrap_or(false),
        })
    } else if dataset == "cub200" {
        let root = root.ok_or_else(|| {
            ctx.error(
                &p,
                "`cub200` needs `root = \"<CUB_200_2011 folder with images.txt, images/>\"`",
            )
        })?;
        if variant.is_some() {
            return Err(ctx.error(
                &key(&p, "variant"),
                "`cub200` has no variants; `crop` chooses full images or bird boxes",
            ));
        }
        let crop = crop.unwrap_or_else(|| "none".into());
        if !["bbox", "none"].contains(&crop.as_str()) {
            return Err(ctx.error(&key(&p, "crop"), format!("unknown crop `{crop}`; allowed: `none` (full image), `bbox` (bounding_boxes.txt)")));
        }
        let expand = in_range(
            expand.unwrap_or(1.0),
            ctx,
            &key(&p, "expand"),
            "must be in [1, 4]",
            |v| (1.0..=4.0).contains(&v),
        )?;
        Some(RealData {
            root: real_root(root, ctx, p),
            variant: "cub-200-2011".into(),
            crop,
            expand,
            skip_missing: skip_missing.unwrap_or(false),
        })
    } else {
        for (name, given) in [
            ("root", root.is_some()),
            ("variant", variant.is_some()),
            ("crop", crop.is_some()),
            ("expand", expand.is_some()),
            ("skip-missing", skip_missing.is_some()),
        ] {
            if given {
                return Err(ctx.error(
                    &key(&p, name),
                    format!("`{dataset}` is generated, it takes no `{name}`"),
                ));
            }
        }
        None
    };
    if birds && attributes.is_some() {
        return Err(ctx.error(&key(&p, "attributes"), format!("`{dataset}` has classes, not attributes (`classes = N` sets how many synthetic classes)")));
    }
    if birds && val_images.is_some() {
        return Err(ctx.error(&key(&p, "val-images"), format!("`{dataset}` has no val split of its own: every 10th training image is held out as `val`")));
    }
    if !birds && classes.is_some() {
        return Err(ctx.error(
            &key(&p, "classes"),
            format!("`{dataset}` takes no `classes`; it is for `synthetic-birds` and `cub200`"),
        ));
    }
    // Real sets: the counts cap each split (0 = all of it).
    let cap = |v: Option<u32>, default: u32, name: &str| -> Result<u32, SpecError> {
        match (&real, v) {
            (Some(_), v) => Ok(v.unwrap_or(0)),
            (None, v) => positive(v.unwrap_or(default), ctx, &key(&p, name)),
        }
    };
    let versions: &[u32] = match dataset.as_str() {
        "synthetic-faces" => &crate::data::synthetic_faces::VERSIONS,
        "synthetic-birds" => &crate::data::synthetic_birds::VERSIONS,
        _ => &[],
    };
    let generator = match generator {
        None => 1,
        Some(v) if versions.contains(&v) => v,
        Some(v) if !versions.is_empty() => {
            return Err(ctx.error(
                &key(&p, "generator"),
                format!("unknown generator version {v}; `{dataset}` has {versions:?}"),
            ));
        }
        Some(_) => {
            return Err(ctx.error(
                &key(&p, "generator"),
                format!("`{dataset}` is not generated; `generator` is for `synthetic-faces` and `synthetic-birds`"),
            ));
        }
    };
    if independent_parts.is_some() && dataset != "synthetic-faces" {
        return Err(ctx.error(
            &key(&p, "independent-parts"),
            format!("`{dataset}` takes no `independent-parts`; it is for `synthetic-faces`"),
        ));
    }
    if first_class.is_some() && dataset != "synthetic-birds" {
        return Err(ctx.error(
            &key(&p, "first-class"),
            format!("`{dataset}` takes no `first-class`; it is for `synthetic-birds`"),
        ));
    }
    let image_size = positive(image_size.unwrap_or(64), ctx, &key(&p, "image-size"))?;
    if !(32..=512).contains(&image_size) {
        return Err(ctx.error(
            &key(&p, "image-size"),
            format!("must be in 32..=512, got {image_size}"),
        ));
    }
    let attributes = match attributes {
        // Single-label sets: the outputs are the classes.
        None if dataset == "synthetic-birds" => {
            let all = crate::data::synthetic_birds::CLASSES as u32;
            let first = first_class.unwrap_or(1);
            if !(1..all).contains(&first) {
                return Err(ctx.error(
                    &key(&p, "first-class"),
                    format!("must be in 1..={}, got {first}", all - 1),
                ));
            }
            let left = all - (first - 1);
            let n = classes.unwrap_or(left);
            if !(2..=left).contains(&n) {
                return Err(ctx.error(
                    &key(&p, "classes"),
                    format!("must be in 2..={left} (classes {first}..={all}), got {n}"),
                ));
            }
            (0..n as usize).collect()
        }
        None if dataset == "cub200" => {
            let root = &real.as_ref().expect("cub200 is real").root;
            let all = crate::data::cub::Cub::open(root)
                .map_err(|e| {
                    ctx.error(
                        &key(&p, "root"),
                        format!("cannot read CUB-200 at `{}`: {e}", root.display()),
                    )
                })?
                .classes
                .len();
            // `classes = N` keeps the first N classes (a CPU-sized subset).
            let n = classes.map_or(all, |n| n as usize);
            if !(2..=all).contains(&n) {
                return Err(ctx.error(
                    &key(&p, "classes"),
                    format!("must be in 2..={all} (the classes in `classes.txt`), got {n}"),
                ));
            }
            (0..n).collect()
        }
        None => (0..40).collect(),
        Some(toml::Value::String(s)) if s == "all" => (0..40).collect(),
        Some(toml::Value::Array(names)) => {
            let mut out = Vec::new();
            for (i, v) in names.iter().enumerate() {
                let here = [
                    Seg::Key("data".into()),
                    Seg::Key("attributes".into()),
                    Seg::Index(i),
                ];
                let name = v
                    .as_str()
                    .ok_or_else(|| ctx.error(&here, "expected an attribute name"))?;
                let idx = attributes::index_of(name).ok_or_else(|| ctx.error(&here, format!("unknown attribute `{name}`; see `exp models --attribute-names` for the 40 names")))?;
                if out.contains(&idx) {
                    return Err(ctx.error(&here, format!("attribute `{name}` listed twice")));
                }
                out.push(idx);
            }
            if out.is_empty() {
                return Err(ctx.error(&key(&p, "attributes"), "needs at least one attribute"));
            }
            out
        }
        Some(_) => {
            return Err(ctx.error(
                &key(&p, "attributes"),
                "expected `\"all\"` or a list of attribute names",
            ));
        }
    };
    Ok(DataSpec {
        dataset,
        image_size,
        train_images: cap(train_images, 2000, "train-images")?,
        val_images: if birds {
            0
        } else {
            cap(val_images, 400, "val-images")?
        },
        test_images: cap(test_images, 400, "test-images")?,
        attributes,
        seed,
        generator,
        class_offset: first_class.map_or(0, |f| f - 1),
        independent_parts: independent_parts.unwrap_or(false),
        real,
    })
}

/// A `[[stage]]` of kind `generate-data` (`real` false) or `read-data`:
/// `[data]`'s keys, plus `seed` (default: the experiment's).
fn resolve_data_stage(
    mut table: toml::Table,
    env: &Env,
    real: bool,
) -> Result<Resolved<DataSpec>, SpecError> {
    let (here, ctx) = (env.here, env.ctx);
    let id = match table.remove("id") {
        Some(toml::Value::String(s)) => s,
        _ => return Err(ctx.error(here, "missing field `id` (a string)")),
    };
    table.remove("kind");
    let seed = match table.remove("seed") {
        None => env.seed,
        Some(toml::Value::Integer(v)) if v >= 0 => v as u64,
        Some(_) => {
            return Err(ctx.error(&key(here, "seed"), "must be a non-negative integer"));
        }
    };
    let raw: RawData = ctx.deserialize(toml::Value::Table(table), here)?;
    let data = resolve_data(Some(raw), seed, ctx, here)?;
    if data.real.is_some() != real {
        return Err(ctx.error(
            &key(here, "kind"),
            format!(
                "this data set is read by kind `{}` (`generate-data` makes synthetic sets, `read-data` reads real ones)",
                if data.real.is_some() { "read-data" } else { "generate-data" }
            ),
        ));
    }
    Ok(Resolved {
        id,
        inputs: BTreeMap::new(),
        config: data,
    })
}

/// Relative roots are relative to the spec file, like `extends`; a root
/// given with `-s data.root=` is relative to where the command runs.
fn real_root(root: String, ctx: &Ctx, at: &[Seg]) -> PathBuf {
    let from_cli = ctx.overridden.iter().any(|(p, _)| p == &key(at, "root"));
    if from_cli {
        PathBuf::from(root)
    } else {
        ctx.sources[0]
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .join(root)
    }
}

pub(crate) fn p_data() -> Vec<Seg> {
    vec![Seg::Key("data".into())]
}
