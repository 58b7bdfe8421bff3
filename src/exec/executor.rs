//! The executor seam: the scheduler decides *which* stage is ready and what
//! its key is; an executor decides *where* it is hit or computed. [`Local`]
//! computes in this process (one thread per running stage); the Slurm
//! executor (`super::slurm`) sends each stage to a cluster job running `exp`
//! itself; tests use a fake that computes nothing.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::cache::{Cache, CacheStatus, Entry, KeyInputs, Manifest};
use crate::device::Pool;
use crate::runs;
use crate::spec::StageSpec;
use crate::stages::{self, StageCtx};

use super::chain;
use super::progress::StageReporter;

/// One ready stage: everything needed to hit or compute its entry.
pub struct Job<'a> {
    pub stage: &'a StageSpec,
    pub key_inputs: &'a KeyInputs,
    pub key: &'a str,
    /// Upstream entries by role.
    pub inputs: &'a BTreeMap<String, Entry>,
    /// This machine's devices: a stage computed here holds one (a cache hit
    /// holds none, so it never waits behind a training stage).
    pub devices: &'a Pool,
    pub reporter: &'a StageReporter,
    /// Called once the stage is known to compute (not a cache hit): the
    /// scheduler saves the run record then, so a live view shows it running.
    pub computing: &'a (dyn Fn() + Sync),
}

/// A finished stage: its entry, and whether it came from the cache.
pub struct Done {
    pub entry: Entry,
    pub cached: bool,
    /// Where it ran, when not in this process (a Slurm job id).
    pub job_id: Option<String>,
}

/// Where stages run. Errors are the full message shown to the user (the
/// cause chain, or a failed job's log tail).
pub trait Executor: Sync {
    fn execute(&self, job: &Job) -> Result<Done, String>;
    /// Stage workers worth running at once (a cluster takes every ready stage).
    fn parallelism(&self, jobs: usize) -> usize {
        jobs
    }
}

/// Computes in this process, through the cache.
pub struct Local {
    pub cache: Cache,
    pub force: bool,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
}

impl Executor for Local {
    fn execute(&self, job: &Job) -> Result<Done, String> {
        hit_or_compute(
            job,
            &self.cache,
            self.force,
            &self.git_commit,
            self.git_dirty,
        )
    }
}

/// Hit the cache or compute under the key's lock; what every executor ends
/// in, wherever it runs. A panic inside a stage becomes an error.
pub fn hit_or_compute(
    job: &Job,
    cache: &Cache,
    force: bool,
    git_commit: &Option<String>,
    git_dirty: Option<bool>,
) -> Result<Done, String> {
    let Job {
        stage,
        key_inputs,
        key,
        inputs,
        devices,
        reporter,
        computing,
    } = *job;
    let status = cache
        .acquire(key, force, |reason| {
            reporter.warn(&format!(
                "warning: cache entry {key} for stage `{}` is corrupt ({reason}); recomputing",
                stage.id
            ));
        })
        .map_err(|e| chain(&e))?;
    let lock = match status {
        CacheStatus::Hit(entry) => {
            reporter.cache_hit(key);
            return Ok(Done {
                entry,
                cached: true,
                job_id: None,
            });
        }
        CacheStatus::Miss(lock) => lock,
    };
    use crate::progress::Progress;
    let lease = devices.take();
    computing();
    reporter.log(&format!(
        "computing {} `{}` into cache key {key} on {}",
        stage.kind.as_str(),
        stage.id,
        lease.device
    ));
    let device = lease.device;
    let start = Instant::now();
    let ctx = StageCtx {
        stage,
        inputs,
        out: lock.dir(),
        device,
        progress: reporter,
        fingerprint: if stage.kind == crate::spec::StageKind::ReadData {
            key_inputs.dataset.as_deref()
        } else {
            None
        },
    };
    // Training phases checkpoint here, so a rerun of this key resumes them.
    let checkpoints = cache.root().join("checkpoints").join(key);
    // `--force` starts over — except in a Slurm job requeued to resume.
    let requeued = std::env::var("SLURM_RESTART_COUNT")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|n| n > 0);
    if force && !requeued {
        let _ = std::fs::remove_dir_all(&checkpoints);
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::train::checkpoint::with_root(checkpoints.clone(), || stages::run(&ctx))
    }));
    let summary = match result {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => return Err(chain(&e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(format!("stage `{}` panicked: {msg}", stage.id));
        }
    };
    let manifest = Manifest {
        key: key.to_string(),
        key_inputs: key_inputs.clone(),
        files: Default::default(),
        digest: String::new(),
        created: jiff::Timestamp::now().to_string(),
        seconds: start.elapsed().as_secs_f64(),
        host: runs::hostname(),
        versions: BTreeMap::from([
            ("exp".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("burn".to_string(), "0.22.1".to_string()),
        ]),
        git_commit: git_commit.clone(),
        git_dirty,
        summary,
    };
    let saved = lock.save(manifest);
    if saved.is_ok() {
        let _ = std::fs::remove_dir_all(&checkpoints);
    }
    saved
        .map(|entry| Done {
            entry,
            cached: false,
            job_id: None,
        })
        .map_err(|e| chain(&e))
}
