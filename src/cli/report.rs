//! `exp report SPEC|RUN…`: the paper's tables and figures from runs.

use std::path::{Path, PathBuf};

use super::{Cli, exit};
use crate::cache::Cache;
use crate::runs::{self, RunRecord};

/// Write a report (Markdown + HTML + figures) of a spec's latest runs, or of named runs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spec files (every configuration of the spec that ran — as written or with `-s` — the latest run of each seed), sweep ids (every run of the sweep) or run ids
    #[arg(required = true)]
    targets: Vec<String>,
    /// Report name [default: the first spec's or run's name]
    #[arg(long)]
    name: Option<String>,
    /// Where reports go
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

/// The runs a list of specs and run ids stands for.
pub fn select(results: &Path, targets: &[String]) -> anyhow::Result<Vec<RunRecord>> {
    let all = runs::list(results);
    let mut out: Vec<RunRecord> = Vec::new();
    for t in targets {
        if t.ends_with(".toml") && !Path::new(t).exists() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
            return Err(crate::spec::SpecError::Read {
                path: t.into(),
                source,
            }
            .into());
        }
        if t.ends_with(".toml") {
            // Every configuration of the spec that ran: runs as written and
            // runs made with `-s`, each checked against the spec as it is now
            // (loaded with that run's overrides), the latest of each seed.
            let name = crate::spec::load(Path::new(t), &[])?.name;
            let mut seen = std::collections::BTreeSet::new();
            let mut stale = 0;
            let mut found = 0;
            for r in all.iter().filter(|r| r.name == name && r.status == "ok") {
                // As `exp claims` reads them: the same data and the same
                // stages where both have them (adding a stage keeps runs).
                let same = crate::spec::load(Path::new(t), &r.overrides)
                    .ok()
                    .and_then(|p| serde_json::to_value(&p).ok())
                    .is_some_and(|now| {
                        crate::report::claims::spec_difference(&r.spec, &now).is_none()
                    });
                if !same {
                    stale += 1;
                    continue;
                }
                let mut config = r.overrides.clone();
                config.sort();
                if seen.insert((config, r.spec["seed"].as_u64())) {
                    out.push(r.clone());
                    found += 1;
                }
            }
            if found == 0 {
                let why = if stale > 0 {
                    format!(
                        "; {stale} successful run(s) of `{name}` differ from the spec as it is now (made before an edit): name them by id to report them"
                    )
                } else {
                    String::new()
                };
                eprintln!("warning: no successful run of `{name}`; run `exp run {t}`{why}");
            }
        } else if let Some(sweep) = {
            let of: Vec<&RunRecord> = all
                .iter()
                .filter(|r| r.sweep.as_deref() == Some(t))
                .collect();
            (!of.is_empty()).then_some(of)
        } {
            // A sweep id: its successful runs, every point and seed.
            out.extend(sweep.into_iter().filter(|r| r.status == "ok").cloned());
        } else {
            out.push(runs::find(results, t)?);
        }
    }
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let runs = select(&cli.results, &args.targets)?;
    let name = args
        .name
        .clone()
        .or_else(|| runs.first().map(|r| r.name.clone()))
        .unwrap_or_else(|| "report".into());
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Never write straight into the reports root.
    let safe = if safe.is_empty() {
        "report".to_string()
    } else {
        safe
    };
    let cache = Cache::open(&cli.cache_root())?;
    let written = crate::report::generate(&name, &runs, &cache, &args.out.join(safe))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        println!(
            "report of {} run(s) in {}:",
            runs.len(),
            written.dir.display()
        );
        println!(
            "  index.md, index.html; tables: {}",
            written.tables.join("; ")
        );
        println!("  figures: {}", written.figures.join(", "));
    }
    Ok(exit::OK)
}
