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
        "spec",
        "seeds",
        "ours (mean ± std, %)",
        "paper",
        "holds",
    ]);
    for c in &claims {
        let holds = match c.holds {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        t.add_row(vec![
            c.claim.clone(),
            c.spec.clone(),
            c.seeds.to_string(),
            c.ours.clone(),
            c.paper.clone(),
            holds.into(),
        ]);
    }
    println!("{t}");
    println!(
        "a comparison holds when the mean difference over seeds exceeds the pooled standard deviation"
    );
    Ok(exit::OK)
}
