//! `generate-data` writes a synthetic data set in its real on-disk layout;
//! `read-data` checks a real one (CelebA) and records what it holds. Its
//! cache key includes the data set's fingerprint (see `exec::key_inputs`).

use serde_json::json;

use super::{StageCtx, StageError};
use crate::data;
use crate::spec::DataSpec;

pub fn run(ctx: &StageCtx, spec: &DataSpec) -> Result<serde_json::Value, StageError> {
    let total = (spec.train_images + spec.val_images + spec.test_images) as u64;
    ctx.progress.set_total(total);
    ctx.progress.set_message(format!("{} {}px", spec.dataset, spec.image_size));
    let root = ctx.out.join("celeba");
    let start = std::time::Instant::now();
    let n = data::generate_synthetic_faces(spec, &root, &|done| ctx.progress.set_position(done))?;
    let secs = start.elapsed().as_secs_f64();
    ctx.progress.log(&format!("wrote {n} images in CelebA layout in {secs:.1}s ({:.0} images/s)", n as f64 / secs));
    write_shards(ctx, &crate::data::Source::synthetic(&root), spec)?;
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
    let source = crate::data::Source::celeba(spec).expect("read-data has a real data set");
    ctx.progress.set_message(format!("reading {}", source.root.display()));
    let celeba = crate::data::celeba::Celeba::open(&source.root)?;
    let mut per_split = [0usize; 3];
    for r in &celeba.records {
        per_split[r.split as usize] += 1;
    }
    // Every listed image must exist, unless the spec says to skip (and count) missing ones.
    let missing: Vec<&str> = celeba.records.iter().filter(|r| !source.images.join(&r.file).exists()).map(|r| r.file.as_str()).collect();
    if let (Some(first), false) = (missing.first(), source.skip_missing) {
        return Err(StageError::Input { stage: ctx.stage.id.clone(), message: format!("image `{}` is listed in `Anno/list_attr_celeba.txt` but missing (set `skip-missing = true` in `[data]` to leave such images out)", source.images.join(first).display()) });
    }
    for m in &missing {
        ctx.progress.log(&format!("skipped missing image `{m}`"));
    }
    let summary = json!({
        "dataset": spec.dataset,
        "root": source.root,
        "images": celeba.records.len(),
        "train": per_split[0],
        "val": per_split[1],
        "test": per_split[2],
        "skipped_missing": missing.len(),
        "image_size": spec.image_size,
    });
    super::write_json(&ctx.out.join("dataset.json"), &summary)?;
    write_shards(ctx, &source, spec)?;
    ctx.progress.log(&format!("{} images in `{}`: {} train / {} val / {} test", celeba.records.len(), source.root.display(), per_split[0], per_split[1], per_split[2]));
    Ok(summary)
}

/// Decode + crop + resize once, for every later stage.
fn write_shards(ctx: &StageCtx, source: &crate::data::Source, spec: &DataSpec) -> Result<(), StageError> {
    let start = std::time::Instant::now();
    crate::data::shards::write(source, spec.image_size as usize, &ctx.out.join("shards"), &|split| ctx.progress.set_message(format!("shards: {}", split.as_str())))?;
    ctx.progress.log(&format!("wrote preprocessed shards at {} px in {:.1}s", spec.image_size, start.elapsed().as_secs_f64()));
    Ok(())
}
