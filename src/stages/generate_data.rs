//! `generate-data`: writes a synthetic data set in its real on-disk layout.

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
    Ok(json!({
        "dataset": spec.dataset,
        "images": n,
        "train": spec.train_images,
        "val": spec.val_images,
        "test": spec.test_images,
        "image_size": spec.image_size,
    }))
}
