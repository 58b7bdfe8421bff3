//! `exp claims`: the paper's claims, checked on the runs of its specs.

use super::{Cli, exit, table};

/// Check the paper's claims on the latest runs of the paper's specs (all seeds)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let claims = crate::report::claims::check(&crate::runs::list(&cli.results));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&claims)?);
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
    Ok(exit::OK)
}
