//! `exp ls`: runs, newest first.

use super::{Cli, exit, percent, table};

/// List runs, newest first
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only runs of this spec name
    #[arg(long)]
    name: Option<String>,
    /// Only the runs of one sweep (its id is printed by `exp run`)
    #[arg(long)]
    sweep: Option<String>,
    /// At most this many runs
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    // Reading every run anyway: bring `runs/index.parquet` up to date too.
    if let Err(e) = crate::metrics::store::compact_run_index(&crate::runs::runs_dir(&cli.results)) {
        eprintln!("warning: run index: {}", crate::exec::chain(&e));
    }
    let runs: Vec<_> = crate::runs::list(&cli.results)
        .into_iter()
        .filter(|r| args.name.as_ref().is_none_or(|n| &r.name == n))
        .filter(|r| {
            args.sweep
                .as_ref()
                .is_none_or(|s| r.sweep.as_ref() == Some(s))
        })
        .take(args.limit)
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(exit::OK);
    }
    if runs.is_empty() && (args.name.is_some() || args.sweep.is_some()) {
        println!("no runs match in `{}`", cli.results.display());
        return Ok(exit::OK);
    }
    if runs.is_empty() {
        println!(
            "no runs yet in `{}`; try `exp run experiments/quickstart.toml`",
            cli.results.display()
        );
        return Ok(exit::OK);
    }
    let mut t = table(&["run", "status", "stages", "ran", "mean acc", "overrides"]);
    for r in &runs {
        let ran = r.stages.iter().filter(|s| s.status == "ran").count();
        let acc = r
            .stages
            .iter()
            .rev()
            .find_map(|s| s.summary["mean_accuracy"].as_f64());
        let mut overrides = r.overrides.clone();
        overrides.extend(r.point.iter().filter(|p| !r.overrides.contains(p)).cloned());
        t.add_row(vec![
            r.id.clone(),
            r.status.clone(),
            r.stages.len().to_string(),
            ran.to_string(),
            percent(acc),
            overrides.join(" "),
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}
