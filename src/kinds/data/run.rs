//! `generate-data` writes a synthetic data set in its real on-disk layout;
//! `read-data` checks a real one (CelebA) and records what it holds. Its
//! cache key includes the data set's fingerprint (see `exec::key_inputs`).

use serde_json::json;

use crate::data;
use crate::kinds;
use crate::spec::DataSpec;
use crate::stages::Run;
use crate::stages::{StageCtx, StageError};

impl Run for kinds::data::GenerateData {
    fn run(ctx: &StageCtx, c: &DataSpec) -> Result<serde_json::Value, StageError> {
        run(ctx, c)
    }
}

impl Run for kinds::data::ReadData {
    fn run(ctx: &StageCtx, c: &DataSpec) -> Result<serde_json::Value, StageError> {
        read(ctx, c)
    }
}

fn run(ctx: &StageCtx, spec: &DataSpec) -> Result<serde_json::Value, StageError> {
    let total = (spec.train_images + spec.val_images + spec.test_images) as u64;
    ctx.progress.set_total(total);
    ctx.progress
        .set_message(format!("{} {}px", spec.dataset, spec.image_size));
    let source = crate::stages::synthetic_source(ctx.out, spec);
    let start = std::time::Instant::now();
    let set_position = |done| ctx.progress.set_position(done);
    let (n, layout) = if spec.single_label() {
        (
            data::generate_synthetic_birds(spec, &source.root, &set_position)?,
            "CUB-200-2011",
        )
    } else {
        (
            data::generate_synthetic_faces(spec, &source.root, &set_position)?,
            "CelebA",
        )
    };
    let secs = start.elapsed().as_secs_f64();
    ctx.progress.log(&format!(
        "wrote {n} images in {layout} layout in {secs:.1}s ({:.0} images/s)",
        n as f64 / secs
    ));
    write_shards(ctx, &source, spec)?;
    Ok(json!({
        "dataset": spec.dataset,
        "images": n,
        "train": spec.train_images,
        "val": spec.val_images,
        "test": spec.test_images,
        "image_size": spec.image_size,
    }))
}

pub fn read(ctx: &StageCtx, spec: &DataSpec) -> Result<serde_json::Value, StageError> {
    let source = crate::data::Source::real(spec).expect("read-data has a real data set");
    ctx.progress
        .set_message(format!("reading {}", source.root.display()));
    let items = source.items()?;
    let mut per_split = [0usize; 3];
    for r in &items {
        per_split[r.split as usize] += 1;
    }
    // Every listed image must exist, unless the spec says to skip (and count) missing ones.
    let missing: Vec<&str> = items
        .iter()
        .filter(|r| !source.images.join(&r.file).exists())
        .map(|r| r.file.as_str())
        .collect();
    if let (Some(first), false) = (missing.first(), source.skip_missing) {
        let listed = if source.single_label() {
            "images.txt"
        } else {
            "Anno/list_attr_celeba.txt"
        };
        return Err(StageError::Input {
            stage: ctx.stage.id.clone(),
            message: format!(
                "image `{}` is listed in `{listed}` but missing (set `skip-missing = true` in `[data]` to leave such images out)",
                source.images.join(first).display()
            ),
        });
    }
    for m in &missing {
        ctx.progress.log(&format!("skipped missing image `{m}`"));
    }
    let summary = json!({
        "dataset": spec.dataset,
        "root": source.root,
        "images": items.len(),
        "train": per_split[0],
        "val": per_split[1],
        "test": per_split[2],
        "skipped_missing": missing.len(),
        "image_size": spec.image_size,
    });
    let mut record = summary.clone();
    record["fingerprint"] = json!(ctx.fingerprint);
    crate::stages::write_json(&ctx.out.join("dataset.json"), &record)?;
    write_shards(ctx, &source, spec)?;
    ctx.progress.log(&format!(
        "{} images in `{}`: {} train / {} val / {} test",
        items.len(),
        source.root.display(),
        per_split[0],
        per_split[1],
        per_split[2]
    ));
    Ok(summary)
}

/// Decode + crop + resize once, for every later stage.
fn write_shards(
    ctx: &StageCtx,
    source: &crate::data::Source,
    spec: &DataSpec,
) -> Result<(), StageError> {
    let start = std::time::Instant::now();
    crate::data::shards::write(
        source,
        spec.image_size as usize,
        &ctx.out.join("shards"),
        &|split| {
            ctx.progress
                .set_message(format!("shards: {}", split.as_str()))
        },
    )?;
    ctx.progress.log(&format!(
        "wrote preprocessed shards at {} px in {:.1}s",
        spec.image_size,
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}
