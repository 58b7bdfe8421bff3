//! `exp job TICKET` (hidden): what a Slurm job runs — one stage of a spec,
//! through the shared cache. Written by the Slurm executor, not by hand.

use std::path::PathBuf;

use super::{Cli, exit};

/// Run one stage from a ticket written by `exp run --executor slurm`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ticket (`<cache>/slurm/tickets/<key>.json`)
    ticket: PathBuf,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    match crate::exec::slurm::run_ticket(&args.ticket, &cli.cache_root()) {
        Ok(true) => Ok(exit::OK),
        Ok(false) => Ok(exit::STAGE_FAILED),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::ERROR)
        }
    }
}
