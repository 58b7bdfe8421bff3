//! `exp ui`: browse runs, curves and claims in a browser.

use super::{Cli, exit};

/// Serve a read-only web view of the results (runs, curves, compare, claims)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port (0: any free port)
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Address to listen on (default: this machine only)
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let cache = crate::cache::Cache::open(&cli.cache_root())?;
    let results = cli.results.clone();
    let served = crate::ui::serve(&args.bind, args.port, &results, cache, |addr| {
        // The first stdout line is the address (scripts and tests read it).
        println!(
            "serving {} at http://{addr}/ (Ctrl-C stops)",
            results.display()
        );
    });
    match served {
        Ok(()) => Ok(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::ERROR)
        }
    }
}
