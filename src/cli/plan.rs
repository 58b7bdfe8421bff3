//! `exp plan SPEC`: what is cached, what will run, and why.

use std::path::PathBuf;

use super::{Cli, exit, table};
use crate::cache::Cache;
use crate::device::DeviceChoice;
use crate::exec::explain;

/// Show every stage as cached or to run, and why
#[derive(Debug, clap::Args)]
pub struct Args {
    spec: PathBuf,
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long)]
    force: bool,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let (spec, dag) = super::load_spec(&args.spec, &args.set)?;
    let cache = Cache::open(&cli.cache_root())?;
    let previous = crate::runs::list(&cli.results);
    let lines = explain::plan(&spec, &dag, &cache, args.device, &previous, args.force)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(exit::OK);
    }
    let mut t = table(&["stage", "kind", "inputs", "status", "key"]);
    for l in &lines {
        let status = match &l.reason {
            None => "cached".to_string(),
            Some(r) => format!("to run: {r}"),
        };
        let inputs = l.inputs.values().cloned().collect::<Vec<_>>().join(", ");
        t.add_row(vec![l.stage.clone(), l.kind.clone(), inputs, status, l.key.as_deref().map_or("-".into(), |k| k[..12].to_string())]);
    }
    println!("{t}");
    Ok(exit::OK)
}
