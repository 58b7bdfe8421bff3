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
    /// One row per spec and configuration (overrides other than the seed):
    /// its runs and each evaluation's mean ± std over its seeds
    #[arg(long)]
    group: bool,
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
    if args.group {
        print_groups(&runs);
        return Ok(exit::OK);
    }
    // Runs sent to a cluster: their job ids too.
    let jobs = runs
        .iter()
        .any(|r| r.stages.iter().any(|s| s.job.is_some()));
    let mut head = vec!["run", "status", "stages", "ran", "mean acc", "overrides"];
    if jobs {
        head.push("slurm jobs");
    }
    let mut t = table(&head);
    for r in &runs {
        let ran = r.stages.iter().filter(|s| s.status == "ran").count();
        let acc = r
            .stages
            .iter()
            .rev()
            .find_map(|s| s.summary["mean_accuracy"].as_f64());
        let mut overrides = r.overrides.clone();
        overrides.extend(r.point.iter().filter(|p| !r.overrides.contains(p)).cloned());
        // A partial run (`--stage`) says which stages it was asked for.
        if let Some(only) = r.spec["only"].as_array() {
            overrides.extend(
                only.iter()
                    .filter_map(|s| s.as_str())
                    .map(|s| format!("--stage {s}")),
            );
        }
        let mut row = vec![
            r.id.clone(),
            r.status.clone(),
            r.stages.len().to_string(),
            ran.to_string(),
            percent(acc),
            overrides.join(" "),
        ];
        if jobs {
            let ids: Vec<&str> = r.stages.iter().filter_map(|s| s.job.as_deref()).collect();
            row.push(match ids.len() {
                0 => "-".into(),
                n if n > 3 => format!("{} … ({n})", ids[..3].join(" ")),
                _ => ids.join(" "),
            });
        }
        t.add_row(row);
    }
    println!("{t}");
    Ok(exit::OK)
}

/// Runs grouped by spec and configuration, newest group first; each
/// evaluation's mean accuracy as mean ± std over the latest successful run
/// of each seed.
fn print_groups(runs: &[crate::runs::RunRecord]) {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: std::collections::BTreeMap<(String, String), Vec<&crate::runs::RunRecord>> =
        Default::default();
    for r in runs {
        let k = (r.name.clone(), crate::report::collect::config_of(r));
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(r);
    }
    let mut t = table(&[
        "spec",
        "configuration",
        "runs",
        "seeds ok",
        "evaluations: mean accuracy (%), latest run of each seed",
    ]);
    for k in order {
        let g = &groups[&k];
        // The latest successful run of each seed (runs come newest first).
        let mut seeds = std::collections::BTreeSet::new();
        let ok: Vec<_> = g
            .iter()
            .filter(|r| r.status == "ok" && seeds.insert(r.spec["seed"].as_u64()))
            .collect();
        let mut evals: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
        for r in &ok {
            for s in &r.stages {
                if let Some(a) = s.summary["mean_accuracy"].as_f64() {
                    evals.entry(s.id.as_str()).or_default().push(100.0 * a);
                }
            }
        }
        let cells: Vec<String> = evals
            .iter()
            .map(|(id, v)| {
                let (m, sd) = crate::report::claims::mean_std(v);
                if v.len() > 1 {
                    format!("{id} {m:.2} ± {sd:.2} (n={})", v.len())
                } else {
                    format!("{id} {m:.2}")
                }
            })
            .collect();
        t.add_row(vec![
            k.0.clone(),
            if k.1.is_empty() {
                "(as written)".into()
            } else {
                k.1.clone()
            },
            g.len().to_string(),
            ok.len().to_string(),
            cells.join("\n"),
        ]);
    }
    println!("{t}");
}
