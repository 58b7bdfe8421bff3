//! `exp show RUN`: the resolved spec, stages, cache keys and metrics.

use super::{Cli, exit, percent, table};
use crate::cache::Cache;
use crate::exec::progress::human_seconds;
use crate::metrics::store;

/// Show a run: resolved spec, stages, cache keys, metrics
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, a unique prefix of one, or a spec name (its latest run)
    run: String,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let record = crate::runs::find(&cli.results, &args.run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(exit::OK);
    }
    println!("run      {}\ntitle    {}\nspec     {} {}\nstatus   {}\nstarted  {}\ndevice   {}\ncommit   {}{}", record.id, record.title, record.spec_path, record.overrides.join(" "), record.status, record.started, record.device, record.git_commit.as_deref().unwrap_or("-"), if record.git_dirty == Some(true) { " (dirty)" } else { "" });
    println!("\nresolved spec:\n{}", serde_json::to_string_pretty(&record.spec)?);
    let mut t = table(&["stage", "kind", "status", "time", "cache key"]);
    for s in &record.stages {
        t.add_row(vec![s.id.clone(), s.kind.clone(), s.status.clone(), human_seconds(s.seconds), s.key.clone().unwrap_or_else(|| "-".into())]);
    }
    println!("\n{t}");
    let cache = Cache::open(&cli.cache_root())?;
    for s in &record.stages {
        if let Some(e) = &s.error {
            println!("\n{}: {e}", s.id);
        }
        let Some(key) = &s.key else { continue };
        let dir = cache.entry_dir(key);
        let attrs = dir.join("attributes.parquet");
        if attrs.exists() {
            println!("\n{} ({}): mean accuracy {}, balanced {}, majority baseline {}", s.id, s.summary["split"].as_str().unwrap_or("test"), percent(s.summary["mean_accuracy"].as_f64()), percent(s.summary["balanced_accuracy"].as_f64()), percent(s.summary["majority_accuracy"].as_f64()));
            let rows = store::read_attribute_accuracy(&attrs)?;
            // Three attributes per line keeps 40 rows on one screen.
            let mut t = table(&["attribute", "acc", "attribute", "acc", "attribute", "acc"]);
            for chunk in rows.chunks(3) {
                t.add_row(chunk.iter().flat_map(|(n, a)| [n.clone(), percent(Some(*a))]).collect::<Vec<_>>());
            }
            println!("{t}");
        }
        let epochs = dir.join("epochs.parquet");
        if epochs.exists() {
            println!("\n{} per epoch:\n{}", s.id, store::read(&epochs)?);
        }
    }
    Ok(exit::OK)
}
