//! `exp gc`: free the cache of entries no run record references.

use std::collections::BTreeSet;

use super::{Cli, exit};
use crate::cache::gc;

/// Remove cache entries no kept run references (a dry run unless --apply)
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove them (default: only say what would go and how much it frees)
    #[arg(long)]
    apply: bool,
    /// Only the newest N runs of each experiment keep their entries
    /// (default: every recorded run does)
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Print what would be (or was) removed as JSON
    #[arg(long)]
    json: bool,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let root = cli.cache_root();
    let runs = crate::runs::list(&cli.results);
    // A live run may be reading entries its record does not list yet.
    let live: Vec<&crate::runs::RunRecord> =
        runs.iter().filter(|r| r.status == "running").collect();
    let mut per_name: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut keep = BTreeSet::new();
    for r in &runs {
        // Newest first: the first N of each name are kept.
        let n = per_name.entry(r.name.as_str()).or_default();
        *n += 1;
        if args.keep_last.is_none_or(|k| *n <= k) {
            keep.extend(r.stages.iter().filter_map(|s| s.key.clone()));
        }
    }
    let tmp = if args.apply && live.is_empty() {
        gc::clean_stale_tmp(&root)
    } else {
        0
    };
    let garbage = gc::find(&root, &keep);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if args.apply && !live.is_empty() {
        eprintln!(
            "error: {} run(s) in progress ({}): nothing removed; run `exp gc --apply` when they end",
            live.len(),
            live.iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(exit::ERROR);
    }
    let freed = if args.apply {
        gc::remove(&root, &garbage)
    } else {
        0
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "applied": args.apply,
                "entries": garbage.entries,
                "checkpoints": garbage.checkpoints,
                "bytes": garbage.bytes,
                "freed": freed,
                "temp_dirs_removed": tmp,
            }))?
        );
    } else if args.apply {
        println!(
            "removed {} entries and {} stale checkpoints: {:.3} GiB freed ({} temp dirs of killed runs removed)",
            garbage.entries.len(),
            garbage.checkpoints.len(),
            gib(freed),
            tmp
        );
    } else {
        println!(
            "would remove {} entries no kept run references and {} stale checkpoints: {:.3} GiB (`exp gc --apply` removes them)",
            garbage.entries.len(),
            garbage.checkpoints.len(),
            gib(garbage.bytes)
        );
    }
    Ok(exit::OK)
}
