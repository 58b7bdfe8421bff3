//! `exp verify RUN`: recompute a run's stages into a scratch cache and
//! compare every file with the cached entry — the determinism contract,
//! checked (and a way to catch an entry corrupted in a way its size and
//! mtime hide).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use super::{Cli, exit};
use crate::cache::{Cache, Lookup};
use crate::exec::{self, Job, progress};

/// Recompute a run's stages in a scratch area and report any file that differs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, prefix, suffix or spec name
    run: String,
    /// Only these stages (default: every stage; a training stage retrains)
    #[arg(long = "stage", value_name = "ID")]
    stages: Vec<String>,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let record = crate::runs::find(&cli.results, &args.run)?;
    let spec = crate::spec::load(std::path::Path::new(&record.spec_path), &record.overrides)?;
    let dag = crate::plan::Dag::build(&spec)?;
    for id in &args.stages {
        anyhow::ensure!(
            dag.order.iter().any(|s| &s.id == id),
            "run {} has no stage `{id}`",
            record.id
        );
    }
    let cache = Cache::open(&cli.cache_root())?;
    // Not under `tmp/`, whose leftovers every run clears.
    let scratch_root = cache.root().join("verify");
    std::fs::create_dir_all(&scratch_root)?;
    let scratch_dir = tempfile::Builder::new()
        .prefix("verify-")
        .tempdir_in(&scratch_root)?;
    let scratch = Cache::open(scratch_dir.path())?;
    let devices: crate::device::Devices = record
        .device
        .parse()
        .map_err(|e| anyhow::anyhow!("run {} was on `{}`: {e}", record.id, record.device))?;
    devices.check()?;
    let pool = crate::device::Pool::new(&devices);
    let prints = exec::fingerprints(&dag, cache.root())?;
    let mode = if std::io::stderr().is_terminal() {
        progress::Mode::Bars
    } else {
        progress::Mode::Lines
    };
    let bars = progress::Bars::new(mode, dag.order.len());
    let mut entries: BTreeMap<String, crate::cache::Entry> = BTreeMap::new();
    let mut differing = 0;
    let mut t = super::table(&["stage", "files", "verdict"]);
    for stage in &dag.order {
        let recorded = record.stages.iter().find(|s| s.id == stage.id);
        let Some(key) = recorded.and_then(|s| s.key.clone()) else {
            t.add_row(vec![
                stage.id.clone(),
                "-".into(),
                "not run in this run".into(),
            ]);
            continue;
        };
        if let Some(bad) = stage.inputs.values().find(|id| !entries.contains_key(*id)) {
            t.add_row(vec![
                stage.id.clone(),
                "-".into(),
                format!("not checked: input `{bad}` is not usable"),
            ]);
            continue;
        }
        let inputs: BTreeMap<String, crate::cache::Entry> = stage
            .inputs
            .iter()
            .filter_map(|(role, id)| entries.get(id).map(|e| (role.clone(), e.clone())))
            .collect();
        let digests = inputs
            .iter()
            .map(|(r, e)| (r.clone(), e.manifest.digest.clone()))
            .collect();
        let ki = exec::key_inputs(stage, &digests, prints.get(&stage.id), devices.first());
        anyhow::ensure!(
            ki.key() == key,
            "stage `{}` no longer resolves to the key it had in run {} (the spec, its data or exp changed since): cannot verify it",
            stage.id,
            record.id
        );
        let cached = match cache.lookup(&key) {
            Lookup::Hit(e) => e,
            Lookup::Miss => anyhow::bail!(
                "entry {key} of stage `{}` is not in the cache (removed by `exp gc`?)",
                stage.id
            ),
            Lookup::Corrupt(why) => {
                // Its dependents cannot be recomputed from it: they are not listed.
                differing += 1;
                t.add_row(vec![
                    stage.id.clone(),
                    "-".into(),
                    format!("CORRUPT in the cache: {why}"),
                ]);
                continue;
            }
        };
        entries.insert(stage.id.clone(), cached.clone());
        if !args.stages.is_empty() && !args.stages.contains(&stage.id) {
            continue;
        }
        let reporter = bars.stage(
            &stage.id,
            &scratch_dir.path().join(format!("{}.log", stage.id)),
        );
        let job = Job {
            stage,
            key_inputs: &ki,
            key: &key,
            inputs: &inputs,
            devices: &pool,
            reporter: &reporter,
            computing: &|| {},
        };
        let again = exec::executor::hit_or_compute(&job, &scratch, true, &None, None)
            .map_err(|e| anyhow::anyhow!("recomputing `{}`: {e}", stage.id))?;
        reporter.done("recomputed", 0.0);
        // The cached files as they are on disk now, hashed afresh: the
        // size-and-mtime memo cannot hide a changed byte from this.
        let on_disk: BTreeMap<String, String> = cached
            .manifest
            .files
            .keys()
            .map(|f| {
                let d = crate::digest::file_digest(&cached.dir.join(f))
                    .unwrap_or_else(|e| format!("unreadable: {e}"));
                (f.clone(), d)
            })
            .collect();
        let (a, b) = (&on_disk, &again.entry.manifest.files);
        let diff: Vec<String> = a
            .keys()
            .chain(b.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|f| a.get(*f) != b.get(*f))
            .cloned()
            .collect();
        if diff.is_empty() {
            t.add_row(vec![
                stage.id.clone(),
                a.len().to_string(),
                "identical".into(),
            ]);
        } else {
            differing += 1;
            t.add_row(vec![
                stage.id.clone(),
                a.len().to_string(),
                format!("DIFFERS: {}", diff.join(", ")),
            ]);
        }
    }
    bars.finish();
    println!("{t}");
    if differing == 0 {
        println!(
            "run {}: every recomputed stage is bit for bit its cached entry",
            record.id
        );
        Ok(exit::OK)
    } else {
        println!(
            "run {}: {differing} stage(s) differ from their cached entries",
            record.id
        );
        Ok(exit::STAGE_FAILED)
    }
}
