//! `exp run SPEC`: execute (or reuse) every stage of a spec.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::{Cli, exit, percent, table};
use crate::device::DeviceChoice;
use crate::exec::{self, RunOptions, progress::human_seconds};

/// Run every stage of a spec, reusing cached results
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment spec (TOML)
    spec: PathBuf,
    /// Override a spec value: `train.lr=0.01`, `data.image-size=48`, `stage.<id>.epochs=2`
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Recompute every stage even when cached (replaces the entries)
    #[arg(long)]
    force: bool,
    /// Stages to run at once
    #[arg(short, long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// `cpu` (burn flex), `tch-cpu` or `cuda:N` (libtorch; build with `--features tch`)
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Print the run record as JSON instead of tables
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let (spec, _) = super::load_spec(&args.spec, &args.set)?;
    let opts = RunOptions {
        force: args.force,
        jobs: args.jobs as usize,
        device: args.device,
        cache_root: cli.cache_root(),
        results: cli.results.clone(),
        progress: !args.json && std::io::stderr().is_terminal(),
    };
    let record = exec::run(&spec, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        let mut t = table(&["stage", "kind", "status", "time", "result"]);
        for s in &record.stages {
            let result = match (&s.error, s.kind.as_str()) {
                (Some(e), _) => e.clone(),
                (None, "evaluate") => format!(
                    "mean acc {} (majority {}), balanced {}",
                    percent(s.summary["mean_accuracy"].as_f64()),
                    percent(s.summary["majority_accuracy"].as_f64()),
                    percent(s.summary["balanced_accuracy"].as_f64())
                ),
                (None, "train") => format!("val acc {}", percent(s.summary["val_accuracy"].as_f64())),
                (None, "generate-data") => format!("{} images", s.summary["images"]),
                _ => String::new(),
            };
            t.add_row(vec![s.id.clone(), s.kind.clone(), s.status.clone(), human_seconds(s.seconds), result]);
        }
        println!("{t}");
        let ran = record.stages.iter().filter(|s| s.status == "ran").count();
        let cached = record.stages.iter().filter(|s| s.status == "cached").count();
        println!("run {} {}: {ran} ran, {cached} cached; record in {}", record.id, record.status, record.dir(&cli.results).display());
    }
    Ok(if record.status == "ok" { exit::OK } else { exit::STAGE_FAILED })
}
