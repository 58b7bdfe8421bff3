//! The command line: clap definitions, one file per subcommand, printing.
//! Each `exec` calls a library operation and returns an exit code.

mod bench;
mod claims;
mod compare;
mod gc;
mod job;
mod ls;
mod models;
mod plan;
mod report;
mod run;
mod show;
mod ui;
mod verify;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit codes, documented in `exp --help` and the README.
pub mod exit {
    /// Everything ran (or was cached).
    pub const OK: i32 = 0;
    /// At least one stage failed or was skipped because an input failed.
    pub const STAGE_FAILED: i32 = 1;
    /// Bad command line or spec (names the file, line, column and key).
    pub const BAD_INPUT: i32 = 2;
    /// I/O or other environment error (disk full, permissions, …).
    pub const ERROR: i32 = 3;
    /// Stopped by Ctrl-C (128 + SIGINT, as shells report it).
    pub const CANCELLED: i32 = 130;
}

const AFTER_HELP: &str = "\
Examples:
  exp run experiments/quickstart.toml       run (or reuse) every stage
  exp run SPEC -s train.lr=0.02 -s stage.train.epochs=2
  exp run SPEC -s train.lr=0.1,0.2          a sweep: one run per value
  exp plan SPEC                             what is cached, what runs, and why
  exp ls                                    runs, newest first
  exp show quickstart                       a spec's latest run, or a run id
  exp compare RUN_A RUN_B                   parameters that differ, metric deltas
  exp report experiments/paw.toml           reports/paw/index.{md,html} + figures
  exp claims                                every spec's [[claim]]s on its runs
  exp models                                architectures and parameter counts
  exp bench --net tnet --device cuda:0      training-step images/s (benchmarks)

Exit codes: 0 ok, 1 a stage failed, 2 bad spec or arguments, 3 I/O or environment error.
Environment: EXP_CACHE_DIR (artefact cache, shareable by a lab), EXP_RESULTS_DIR (run records),
EXP_REHASH=1 (hash every cached file on every lookup instead of trusting unchanged size and mtime).";

#[derive(Debug, Parser)]
#[command(name = "exp", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("EXP_BUILD_SHORT"), ")"), about = "Reproducible experiments for the FRL + PaW face-attribute system", after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Artefact cache root [default: <results>/cache]
    #[arg(long, global = true, env = "EXP_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Where run records live
    #[arg(
        long,
        global = true,
        env = "EXP_RESULTS_DIR",
        value_name = "DIR",
        default_value = "results"
    )]
    results: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(after_help = "Examples:
  exp run experiments/quickstart.toml
  exp run experiments/paw.toml -s experiment.seed=1        one seed of the spec's sweep
  exp run spec.toml -s train.lr=0.1,0.01 -s experiment.seed=1,2   a 2 x 2 sweep
  exp run experiments/paw.toml --stage localize            that stage and what it reads from
  exp run spec.toml --executor slurm                       one cluster job per stage")]
    Run(run::Args),
    #[command(after_help = "Examples:
  exp plan experiments/paw.toml                      what is cached, what would run and why
  exp plan experiments/paw.toml -s train.epochs=10   which stages an edit reruns")]
    Plan(plan::Args),
    #[command(after_help = "Examples:
  exp ls
  exp ls --name paw --group      seeds of each configuration together
  exp ls --sweep 20261201-0740-paw-1a2b --json")]
    Ls(ls::Args),
    #[command(after_help = "Examples:
  exp show paw                   the latest run of spec `paw`
  exp show 1a2b                  a run by a unique part of its id
  exp show paw --json | jq '.stages[] | {id, status, summary}'")]
    Show(show::Args),
    #[command(after_help = "Examples:
  exp models
  exp models --attributes 10 --json")]
    Models(models::Args),
    #[command(after_help = "Examples:
  exp claims
  exp claims --json | jq '.claims[] | {claim, verdict}'")]
    Claims(claims::Args),
    #[command(after_help = "Examples:
  exp report experiments/paw.toml          every configuration of the spec that ran
  exp report 20261201-0740-paw-1a2b        one sweep
  exp report RUN RUN --name mine --out /tmp/reports")]
    Report(report::Args),
    #[command(after_help = "Examples:
  exp compare paw ablation_mnl
  exp compare 1a2b 3c4d --json")]
    Compare(compare::Args),
    #[command(after_help = "Examples:
  exp bench --net snet3 --size 64 --batch 32
  exp bench --net tnet --size 128 --device cuda:0 --precision bf16")]
    Bench(bench::Args),
    #[command(after_help = "Examples:
  exp ui                         http://127.0.0.1:8765/
  exp ui --port 9000")]
    Ui(ui::Args),
    /// Print a shell completion script: `exp completions bash > /etc/bash_completion.d/exp`
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    #[command(after_help = "Examples:
  exp gc                         what would be freed (a dry run)
  exp gc --keep-last 5 --apply   keep the last 5 runs of each spec")]
    Gc(gc::Args),
    #[command(after_help = "Examples:
  exp verify paw                 recompute every stage of the latest `paw` run
  exp verify paw --stage frl")]
    Verify(verify::Args),
    #[command(hide = true)]
    Job(job::Args),
}

impl Cli {
    fn cache_root(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.results.join("cache"))
    }
}

/// Parse arguments and run; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let result = match &cli.command {
        Command::Run(a) => run::exec(&cli, a),
        Command::Job(a) => job::exec(&cli, a),
        Command::Ui(a) => ui::exec(&cli, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "exp", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Gc(a) => gc::exec(&cli, a),
        Command::Verify(a) => verify::exec(&cli, a),
        Command::Plan(a) => plan::exec(&cli, a),
        Command::Ls(a) => ls::exec(&cli, a),
        Command::Show(a) => show::exec(&cli, a),
        Command::Models(a) => models::exec(a),
        Command::Claims(a) => claims::exec(&cli, a),
        Command::Report(a) => report::exec(&cli, a),
        Command::Compare(a) => compare::exec(&cli, a),
        Command::Bench(a) => bench::exec(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            classify(&e)
        }
    }
}

/// Bad input (spec, plan, run name, device) is 2; anything else is 3.
fn classify(e: &anyhow::Error) -> i32 {
    let bad_input = e.chain().any(|c| {
        c.is::<crate::spec::SpecError>()
            || c.is::<crate::plan::PlanError>()
            || c.downcast_ref::<crate::runs::RunsError>().is_some_and(|r| {
                matches!(
                    r,
                    crate::runs::RunsError::NotFound(_) | crate::runs::RunsError::Ambiguous { .. }
                )
            })
            || c.is::<crate::device::DeviceError>()
    });
    if bad_input {
        exit::BAD_INPUT
    } else {
        exit::ERROR
    }
}

/// The DAG of a loaded spec; errors point at the offending stage's table.
fn dag_of(spec: &crate::spec::Spec, path: &std::path::Path) -> anyhow::Result<crate::plan::Dag> {
    crate::plan::Dag::build(spec).map_err(|e| {
        let at = spec
            .stage_locations
            .get(e.stage())
            .cloned()
            .unwrap_or_else(|| path.display().to_string());
        anyhow::Error::new(e).context(at)
    })
}

/// A terminal-width table with our house style.
fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    // Piped output has no terminal width: keep it readable in a 120-column pager.
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        t.set_width(120);
    }
    t.set_header(header.to_vec());
    t
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}
