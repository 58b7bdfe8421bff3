//! `exp plan SPEC`: what is cached, what will run, and why.

use std::path::PathBuf;

use super::{Cli, exit, table};
use crate::cache::Cache;
use crate::device::Devices;
use crate::exec::explain;

/// Show every stage as cached or to run, and why
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment spec (TOML)
    spec: PathBuf,
    /// Override a spec value, as for `exp run` (`a,b` plans one run per value)
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Plan as `exp run --force` would (every stage reruns)
    #[arg(long)]
    force: bool,
    /// The device the run would use (part of training stages' keys)
    #[arg(long, default_value = "cpu")]
    device: Devices,
    /// Print the plan as JSON
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    args.device.check()?;
    let points = crate::spec::load_points(&args.spec, &args.set)?;
    let cache = Cache::open(&cli.cache_root())?;
    let previous = crate::runs::list(&cli.results);
    let mut plans = Vec::new();
    for spec in &points {
        let dag = super::dag_of(spec, &args.spec)?;
        plans.push((
            spec.point.clone(),
            explain::plan(
                spec,
                &dag,
                &cache,
                args.device.first(),
                &previous,
                args.force,
            )?,
        ));
    }
    if args.json {
        let out: Vec<_> = plans
            .iter()
            .map(|(p, l)| serde_json::json!({ "point": p, "stages": l }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&if out.len() == 1 {
                out[0]["stages"].clone()
            } else {
                serde_json::Value::Array(out)
            })?
        );
        return Ok(exit::OK);
    }
    for (point, lines) in &plans {
        if plans.len() > 1 {
            println!("sweep point: {}", point.join(" "));
        }
        print_plan(lines);
    }
    Ok(exit::OK)
}

fn print_plan(lines: &[explain::PlanLine]) {
    let mut t = table(&["stage", "kind", "inputs", "status", "key"]);
    for l in lines {
        let status = match &l.reason {
            None => "cached".to_string(),
            Some(r) => format!("to run: {r}"),
        };
        let inputs = l.inputs.values().cloned().collect::<Vec<_>>().join(", ");
        t.add_row(vec![
            l.stage.clone(),
            l.kind.clone(),
            inputs,
            status,
            l.key.as_deref().map_or("-".into(), |k| k[..12].to_string()),
        ]);
    }
    println!("{t}");
}
