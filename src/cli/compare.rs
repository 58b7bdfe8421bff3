//! `exp compare RUN RUN…`: what differs between runs, and what it changed.

use super::{Cli, exit, table};
use crate::report::compare::changed_params;
use crate::runs::{self, RunRecord};

/// Compare runs: the parameters that differ and the metric deltas
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Two or more run ids (or unique prefixes, or spec names for their latest run); the first is the baseline
    #[arg(required = true, num_args = 2..)]
    runs: Vec<String>,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let runs: Vec<RunRecord> = args
        .runs
        .iter()
        .map(|r| runs::find(&cli.results, r))
        .collect::<Result<_, _>>()?;
    let params = changed_params(&runs);
    let cache = crate::cache::Cache::open(&cli.cache_root())?;
    let evals = crate::report::collect::evaluations(&runs, &cache);
    // Metric deltas per evaluate stage: mean and per attribute, sorted by size.
    let mut deltas = Vec::new();
    for e in evals.iter().filter(|e| e.run == runs[0].id) {
        for other in evals
            .iter()
            .filter(|o| o.run != runs[0].id && o.stage == e.stage)
        {
            let mut attrs: Vec<(String, f64)> = e
                .attributes
                .iter()
                .filter_map(|a| {
                    other
                        .attributes
                        .iter()
                        .find(|b| b.attribute == a.attribute)
                        .map(|b| (a.attribute.clone(), 100.0 * (b.accuracy - a.accuracy)))
                })
                .collect();
            attrs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            deltas.push(serde_json::json!({ "stage": e.stage, "run": other.run, "mean_delta": 100.0 * (other.mean_accuracy - e.mean_accuracy), "baseline": 100.0 * e.mean_accuracy, "value": 100.0 * other.mean_accuracy, "attributes": attrs }));
        }
    }
    let localisation = localisation_deltas(&runs, &cache);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "runs": args.runs, "changed": params, "deltas": deltas, "localisation": localisation })
            )?
        );
        return Ok(exit::OK);
    }
    let mut header = vec!["parameter".to_string()];
    header.extend(runs.iter().map(|r| r.id.clone()));
    let mut t = table(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (k, vals) in &params {
        let mut row = vec![k.clone()];
        row.extend(vals.iter().cloned());
        t.add_row(row);
    }
    println!("parameters that differ ({}):\n{t}", params.len());
    for d in &deltas {
        let top = top_attributes(&d["attributes"]);
        println!(
            "{} ({}): mean {:.2} -> {:.2} ({:+.2}); largest per attribute: {}",
            d["stage"].as_str().unwrap_or(""),
            d["run"].as_str().unwrap_or(""),
            d["baseline"].as_f64().unwrap_or(0.0),
            d["value"].as_f64().unwrap_or(0.0),
            d["mean_delta"].as_f64().unwrap_or(0.0),
            top.join(", ")
        );
    }
    for d in &localisation {
        println!(
            "{} ({}): pointing game over local attributes {:.2} -> {:.2} ({:+.2}); largest per attribute: {}",
            d["stage"].as_str().unwrap_or(""),
            d["run"].as_str().unwrap_or(""),
            d["baseline"].as_f64().unwrap_or(f64::NAN),
            d["value"].as_f64().unwrap_or(f64::NAN),
            d["delta"].as_f64().unwrap_or(f64::NAN),
            top_attributes(&d["attributes"]).join(", ")
        );
    }
    Ok(exit::OK)
}

/// The first five `[name, delta]` pairs, as `name +1.23`.
fn top_attributes(attributes: &serde_json::Value) -> Vec<String> {
    attributes
        .as_array()
        .map(|a| {
            a.iter()
                .take(5)
                .map(|x| {
                    format!(
                        "{} {:+.2}",
                        x[0].as_str().unwrap_or(""),
                        x[1].as_f64().unwrap_or(0.0)
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Pointing-game deltas of each `localize` stage the baseline shares with
/// another run: the stage's mean over local attributes and each local
/// attribute (`pointing.parquet`), in points, largest first.
fn localisation_deltas(runs: &[RunRecord], cache: &crate::cache::Cache) -> Vec<serde_json::Value> {
    use crate::metrics::store::read_localisation;
    use crate::report::collect::entry_dir;
    let pointing = |run: &RunRecord, stage: &str| {
        let summary = run
            .stages
            .iter()
            .find(|s| s.id == stage)
            .and_then(|s| s.summary["pointing_game"].as_f64())?;
        let rows = entry_dir(cache, run, stage)
            .and_then(|d| read_localisation(&d.join("pointing.parquet")).ok())
            .unwrap_or_default();
        Some((summary, rows))
    };
    let base = &runs[0];
    let mut out = Vec::new();
    for stage in base.stages.iter().filter(|s| s.kind == "localize") {
        let Some((b, b_rows)) = pointing(base, &stage.id) else {
            continue;
        };
        for other in &runs[1..] {
            let Some((v, rows)) = pointing(other, &stage.id) else {
                continue;
            };
            let mut attrs: Vec<(String, f64)> = b_rows
                .iter()
                .filter(|a| {
                    a.rate.is_finite()
                        && crate::attributes::index_of(&a.attribute)
                            .is_some_and(crate::attributes::is_local)
                })
                .filter_map(|a| {
                    rows.iter()
                        .find(|r| r.attribute == a.attribute && r.rate.is_finite())
                        .map(|r| (a.attribute.clone(), 100.0 * (r.rate - a.rate)))
                })
                .collect();
            attrs.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
            out.push(serde_json::json!({ "stage": stage.id, "run": other.id, "baseline": 100.0 * b, "value": 100.0 * v, "delta": 100.0 * (v - b), "attributes": attrs }));
        }
    }
    out
}
