//! `train-parts`: P part subnets, each initialised from the compressed
//! whole-image subnet and trained on its region's patches (resized to
//! `part-size`) to predict all M attributes. Regions are attribute j's FRL
//! patch (`regions = "<localize stage>"`, P = M) or a fixed grid of blocks
//! (`grid = 4`, P = 16: the block baseline).
//!
//! Writes `whole.*` (a copy of the whole subnet), `part_NN.*`, `boxes.tsv`
//! (the regions used, every image) and `paw.json` (unfused).

use serde_json::json;

use crate::attributes::CELEBA;
use crate::data::celeba::Celeba;
use crate::data::{ImageSet, grid_boxes};
use crate::kinds;
use crate::kinds::train::run::write_epochs;
use crate::metrics;
use crate::spec::PartsConfig;
use crate::spec::{Split, TrainConfig};
use crate::stages::Run;
use crate::stages::{PawInfo, StageCtx, StageError, load_attr_net, save_attr_net, write_json};
use crate::train::{self, Phase};

impl Run for kinds::parts::TrainParts {
    fn run(ctx: &StageCtx, c: &PartsConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, &c.train, c.part_size as usize, c.grid)
    }
}

fn run(
    ctx: &StageCtx,
    cfg: &TrainConfig,
    part_size: usize,
    grid: Option<u32>,
) -> Result<serde_json::Value, StageError> {
    let (_, source) = ctx.data()?;
    let (plain, device) = ctx.devices();
    let whole_dir = &ctx.input("whole").dir;
    let (whole, whole_info) = load_attr_net(whole_dir, "model", &plain)?;
    let size = whole_info.image_size;
    let m = whole_info.attributes.len();
    let boxes = match grid {
        Some(g) => {
            let all = Celeba::open(&source.root)?
                .records
                .into_iter()
                .map(|r| (r.file, grid_boxes(size, g as usize)))
                .collect();
            all
        }
        None => crate::data::read_part_boxes(&ctx.input("regions").dir.join("boxes.tsv"))?,
    };
    let parts = grid.map_or(m, |g| (g * g) as usize);
    ctx.progress.set_message("decoding images".into());
    let train_set = ImageSet::load(&source, Split::Train, size, &whole_info.attributes)?;
    let val_set = ImageSet::load(&source, Split::Val, size, &whole_info.attributes)?;
    let lookup = |set: &ImageSet, p: usize| -> Result<Vec<crate::data::SquareBox>, StageError> {
        set.files
            .iter()
            .map(|f| {
                boxes
                    .get(f)
                    .and_then(|b| b.get(p).copied())
                    .ok_or_else(|| StageError::Input {
                        stage: ctx.stage.id.clone(),
                        message: format!("no region {p} for image `{f}` in the regions input"),
                    })
            })
            .collect()
    };
    let mut part_info = whole_info.clone();
    part_info.image_size = part_size;
    let mut history = Vec::new();
    let mut own = Vec::new();
    for p in 0..parts {
        let train_p = train_set.crops(&lookup(&train_set, p)?, part_size);
        let val_p = val_set.crops(&lookup(&val_set, p)?, part_size);
        // Each part subnet starts from the compressed whole-image subnet.
        let (net, _) = load_attr_net(whole_dir, "model", &device)?;
        let name = match grid {
            Some(_) => format!("block{:02}", p),
            None => format!("part-{}", CELEBA[whole_info.attributes[p]]),
        };
        let phase = Phase {
            name: format!("part{p:02}"),
            cfg,
            lr: cfg.lr,
            epochs: cfg.epochs,
            n: train_p.len(),
            progress: ctx.progress,
        };
        ctx.progress.log(&format!(
            "{name}: {} patches of {part_size}px",
            train_p.len()
        ));
        let (net, h) = train::train_attr_net(net, &phase, &train_p, &val_p, &device, &plain)?;
        if grid.is_none() {
            let (scores, _) =
                train::predict(&burn::module::Module::valid(&net), &val_p, &plain, 64);
            own.push(metrics::accuracy(&scores, &val_p.labels, m)[p]);
        }
        // Curves stay `partNN/…` in the entry (its bytes are its digest);
        // readers name them by attribute (`report::collect::read_epochs`).
        history.extend(h);
        save_attr_net(ctx.out, &format!("part_{p:02}"), net, &part_info)?;
    }
    save_attr_net(ctx.out, "whole", whole, &whole_info)?;
    let files: Vec<String> = boxes.keys().cloned().collect();
    let all: Vec<Vec<_>> = files.iter().map(|f| boxes[f].clone()).collect();
    crate::data::write_part_boxes(&ctx.out.join("boxes.tsv"), &files, &all)?;
    write_json(
        &ctx.out.join("paw.json"),
        &PawInfo {
            whole: whole_info.clone(),
            part: part_info,
            parts,
            grid,
            fused: false,
        },
    )?;
    write_epochs(ctx, &history)?;
    Ok(
        json!({ "parts": parts, "part_size": part_size, "grid": grid, "val_accuracy_own_attribute": if own.is_empty() { None } else { Some(metrics::mean(&own)) } }),
    )
}
