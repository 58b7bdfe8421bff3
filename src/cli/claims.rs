//! `exp claims`: every spec's `[[claim]]`s, judged on its runs as written.

use super::{Cli, exit, table};

/// Judge every spec's [[claim]]s (the paper's among them) on its latest runs, all seeds
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
    /// Count runs whose spec differs from their spec file as it now reads
    /// (by default an edited paper spec's older runs are left out)
    #[arg(long)]
    any_spec: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let runs = crate::runs::list(&cli.results);
    let (runs, skipped) = if args.any_spec {
        (runs, Vec::new())
    } else {
        crate::report::claims::as_the_files_read(runs)
    };
    let claims = crate::report::claims::check(&runs);
    // Which runs the verdicts rest on, spec by spec.
    let mut specs: Vec<&str> = Vec::new();
    for c in &claims {
        if !specs.contains(&c.spec.as_str()) {
            specs.push(&c.spec);
        }
    }
    let used: Vec<(String, Vec<String>)> = specs
        .iter()
        .map(|s| {
            let ids = crate::report::claims::latest_by_seed(&runs, s)
                .iter()
                .map(|r| r.id.clone())
                .collect();
            (s.to_string(), ids)
        })
        .collect();
    if args.json {
        let used: serde_json::Map<String, serde_json::Value> = used
            .into_iter()
            .map(|(s, ids)| (s, serde_json::json!(ids)))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "claims": claims,
                "runs": used,
                "skipped": skipped
                    .iter()
                    .map(|(id, why)| serde_json::json!({ "run": id, "why": why }))
                    .collect::<Vec<_>>(),
            }))?
        );
        return Ok(exit::OK);
    }
    let mut t = table(&[
        "claim",
        "seeds",
        "ours (mean ± std, %)",
        "tested: 95% interval",
        "paper",
        "verdict",
    ]);
    for c in &claims {
        t.add_row(vec![
            format!("{}\n({})", c.claim, c.spec),
            c.seeds.to_string(),
            c.ours.clone(),
            c.interval_cell(),
            c.paper.clone(),
            c.verdict.as_str().into(),
        ]);
    }
    println!("{t}");
    println!("{}", crate::report::claims::RULE);
    println!("runs used (the latest successful run of each seed of each spec as written):");
    for (spec, ids) in &used {
        let shown = if ids.is_empty() {
            "none yet".to_string()
        } else {
            ids.join(" ")
        };
        println!("  {spec}: {shown}");
    }
    if !skipped.is_empty() {
        println!("not counted (their spec file has changed since; --any-spec counts them):");
        for (id, why) in &skipped {
            println!("  {id}: {why}");
        }
    }
    Ok(exit::OK)
}
