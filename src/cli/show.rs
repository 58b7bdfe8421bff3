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
        // The record, and each evaluation's per-attribute scores.
        let cache = Cache::open(&cli.cache_root())?;
        let mut value = serde_json::to_value(&record)?;
        for (s, v) in record
            .stages
            .iter()
            .zip(value["stages"].as_array_mut().expect("a record has stages"))
        {
            let Some(key) = &s.key else { continue };
            let attrs = cache.entry_dir(key).join("attributes.parquet");
            if attrs.exists() {
                v["attributes"] = serde_json::to_value(store::read_attributes(&attrs)?)?;
            }
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(exit::OK);
    }
    println!(
        "run      {}\ntitle    {}\nspec     {} {}\nstatus   {}\nstarted  {}\ndevice   {}\ncommit   {}{}",
        record.id,
        record.title,
        record.spec_path,
        record.overrides.join(" "),
        record.status,
        record.started,
        record.device,
        record.git_commit.as_deref().unwrap_or("-"),
        if record.git_dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        }
    );
    // A binary built from another commit than the tree it ran in.
    if let Some(build) = &record.exp_build {
        let head = record.git_commit.as_deref().unwrap_or("-");
        if build.trim_end_matches("+dirty") != head || build.ends_with("+dirty") {
            println!("exp      built from {build}");
        }
    }
    // The resolved spec, one line per stage (`--json` has all of it).
    let mut t = table(&["stage", "kind", "inputs", "resolved parameters"]);
    for s in record.spec["stages"].as_array().into_iter().flatten() {
        let inputs = s["inputs"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        // Birds model classes, not CelebA's 40 attributes.
        let birds = matches!(
            s["config"]["dataset"].as_str(),
            Some("synthetic-birds" | "cub200")
        );
        let params = s["config"].as_object().map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "kind")
                .map(|(k, v)| match (k.as_str(), v) {
                    ("attributes", serde_json::Value::Array(a)) if birds => {
                        format!("classes={}", a.len())
                    }
                    ("attributes", serde_json::Value::Array(a)) => {
                        format!("attributes=[{} of 40]", a.len())
                    }
                    _ => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        t.add_row(vec![
            s["id"].as_str().unwrap_or("").to_string(),
            s["kind"].as_str().unwrap_or("").to_string(),
            inputs,
            params.unwrap_or_default(),
        ]);
    }
    println!("\nresolved spec:\n{t}");
    // Where a stage ran, when a cluster ran it.
    let jobs = record.stages.iter().any(|s| s.job.is_some());
    let mut head = vec!["stage", "kind", "status", "time", "cache key"];
    if jobs {
        head.push("slurm job");
    }
    let mut t = table(&head);
    for s in &record.stages {
        // 16 hex digits identify an entry in practice; `--json` has the full key.
        let mut row = vec![
            s.id.clone(),
            s.kind.clone(),
            s.status.clone(),
            human_seconds(s.seconds),
            s.key.as_deref().map_or("-".into(), |k| k[..16].to_string()),
        ];
        if jobs {
            row.push(s.job.clone().unwrap_or_else(|| "-".into()));
        }
        t.add_row(row);
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
            let eval = crate::metrics::EvalSummary::of(&s.summary);
            println!(
                "\n{} ({}): mean accuracy {}, balanced {}, majority baseline {}",
                s.id,
                eval.as_ref().map_or("test", |e| e.split.as_str()),
                percent(eval.as_ref().map(|e| e.mean_accuracy)),
                percent(eval.as_ref().and_then(|e| e.balanced_accuracy)),
                percent(eval.as_ref().and_then(|e| e.majority_accuracy))
            );
            let rows = store::read_attributes(&attrs)?;
            // Accuracy and balanced accuracy, two attributes per line: 40
            // rows on one screen, 80 columns.
            let mut t = table(&["attribute", "acc", "bal", "attribute", "acc", "bal"]);
            for chunk in rows.chunks(2) {
                t.add_row(
                    chunk
                        .iter()
                        .flat_map(|r| {
                            [
                                r.attribute.clone(),
                                percent(Some(r.accuracy)),
                                percent(Some(r.balanced_accuracy).filter(|b| !b.is_nan())),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
            println!("{t}");
        }
        let epochs = dir.join("epochs.parquet");
        if epochs.exists() {
            // Pivot: one row per epoch, one column per metric.
            let rows = crate::report::collect::read_epochs(&dir)?;
            let mut metrics: Vec<String> = Vec::new();
            for (m, _, _) in &rows {
                if !metrics.contains(m) && !m.ends_with("seconds") {
                    metrics.push(m.clone());
                }
            }
            let mut header = vec!["epoch".to_string()];
            header.extend(metrics.iter().cloned());
            let mut t = table(&header.iter().map(String::as_str).collect::<Vec<_>>());
            let epochs_seen: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.1).collect();
            if metrics.len() <= 8 {
                for e in epochs_seen {
                    let mut row = vec![e.to_string()];
                    for m in &metrics {
                        let v = rows.iter().find(|r| r.1 == e && &r.0 == m).map(|r| r.2);
                        row.push(v.map_or("-".into(), |v| {
                            if m.contains("accuracy") {
                                format!("{:.2}%", 100.0 * v)
                            } else {
                                format!("{v:.4}")
                            }
                        }));
                    }
                    t.add_row(row);
                }
                println!("\n{} per epoch:\n{t}", s.id);
            } else {
                println!(
                    "\n{}: {} metrics over {} epochs in {}",
                    s.id,
                    metrics.len(),
                    epochs_seen.len(),
                    epochs.display()
                );
            }
        }
    }
    Ok(exit::OK)
}
