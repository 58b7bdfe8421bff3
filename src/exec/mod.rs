//! The scheduler: runs a spec's DAG with up to `jobs` stages at once, each
//! stage through the cache (hit: reuse; miss: compute under the key's lock,
//! commit atomically). A failed stage stops only its dependents. The run
//! record is saved after every stage.
//!
//! Rough outline:
//! 1. build the DAG, open the cache, write the run record (`running`);
//! 2. worker threads take ready stages (all inputs done), compute their key
//!    from the upstream artefact digests, and hit or compute;
//! 3. after each stage: update the record; mark dependents of a failure
//!    `skipped`;
//! 4. print the summary table; exit non-zero if anything failed.

pub mod explain;
pub mod progress;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::cache::{Cache, CacheError, CacheStatus, Entry, KeyInputs, Manifest};
use crate::device::{DeviceChoice, Devices, Pool};
use crate::plan::{Dag, PlanError};
use crate::progress::Progress;
use crate::runs::{self, RunRecord, RunsError, StageRecord};
use crate::spec::{Spec, StageSpec};
use crate::stages::{self, StageCtx};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub force: bool,
    pub jobs: usize,
    /// One device, or several GPUs: each running stage holds one.
    pub devices: Devices,
    pub cache_root: PathBuf,
    pub results: PathBuf,
    /// How progress is shown: bars on a terminal, plain lines when piped
    /// (a batch job's log), nothing for `--json`.
    pub progress: progress::Mode,
    /// Sweep id when this run is one point of a sweep.
    pub sweep: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Runs(#[from] RunsError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Fingerprint(#[from] crate::data::fingerprint::FingerprintError),
}

/// Fingerprints of the real data sets a DAG reads, by stage id. They go
/// into the data stage's key, so edited files mean a new key.
pub fn fingerprints(
    dag: &Dag,
    cache_root: &std::path::Path,
) -> Result<BTreeMap<String, String>, ExecError> {
    let mut out = BTreeMap::new();
    for stage in &dag.order {
        if let crate::spec::StageConfig::ReadData(spec) = &stage.config {
            let root = &spec.real.as_ref().expect("read-data is real").root;
            let memo = cache_root.join("fingerprints").join(format!(
                "{}.json",
                &crate::cache::key::sha256_hex(root.to_string_lossy().as_bytes())[..16]
            ));
            out.insert(
                stage.id.clone(),
                crate::data::fingerprint::fingerprint(root, &memo)?,
            );
        }
    }
    Ok(out)
}

/// The key inputs of `stage` given its upstream entries.
pub fn key_inputs(
    stage: &StageSpec,
    upstream: &BTreeMap<String, String>,
    fingerprint: Option<&String>,
    device: DeviceChoice,
) -> KeyInputs {
    let mut params = serde_json::to_value(&stage.config).expect("config serializes");
    if let Some(obj) = params.as_object_mut() {
        obj.remove("kind");
    }
    KeyInputs {
        kind: stage.kind.as_str().into(),
        kind_version: stage.kind.version(),
        params,
        dataset: upstream.get("data").or(fingerprint).cloned(),
        inputs: upstream
            .iter()
            .filter(|(role, _)| role.as_str() != "data")
            .map(|(r, d)| (r.clone(), d.clone()))
            .collect(),
        backend: stage
            .kind
            .depends_on_backend()
            .then(|| device.backend().to_string()),
    }
}

#[derive(Clone)]
enum State {
    Pending,
    Running,
    Done(Entry),
    Failed,
}

/// Run `spec`; returns the final record (its `status` says whether all went well).
pub fn run(spec: &Spec, opts: &RunOptions) -> Result<RunRecord, ExecError> {
    opts.devices.check()?;
    let dag = Dag::build(spec)?;
    let cache = Cache::open(&opts.cache_root)?;
    crate::cache::gc::clean_stale_tmp(&opts.cache_root);
    let prints = fingerprints(&dag, &opts.cache_root)?;
    let (git_commit, git_dirty) = runs::git_state();
    let id = runs::new_id(&spec.name);
    let record = RunRecord {
        id: id.clone(),
        name: spec.name.clone(),
        title: spec.title.clone(),
        spec_path: spec.path.display().to_string(),
        overrides: spec.overrides.clone(),
        started: jiff::Timestamp::now().to_string(),
        finished: None,
        device: opts.devices.to_string(),
        git_commit: git_commit.clone(),
        git_dirty,
        status: "running".into(),
        spec: serde_json::to_value(spec).expect("spec serializes"),
        stages: dag
            .order
            .iter()
            .map(|s| StageRecord {
                id: s.id.clone(),
                kind: s.kind.as_str().into(),
                status: "pending".into(),
                key: None,
                key_inputs: None,
                digest: None,
                seconds: 0.0,
                summary: serde_json::Value::Null,
                error: None,
                log: format!("logs/{}.log", s.id),
            })
            .collect(),
        sweep: opts.sweep.clone(),
        point: spec.point.clone(),
        pid: Some(std::process::id()),
        host: Some(runs::hostname()),
    };
    record.save(&opts.results)?;
    // Created by a stage's first log line (a cache hit writes none).
    let logs = record.dir(&opts.results).join("logs");

    let bars = progress::Bars::new(opts.progress, dag.order.len());
    let shared = Mutex::new((vec![State::Pending; dag.order.len()], record));
    let wake = Condvar::new();
    let jobs = opts.jobs.max(1).min(dag.order.len());
    let pool = Pool::new(&opts.devices);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                worker(
                    &dag,
                    &cache,
                    opts,
                    &pool,
                    &prints,
                    &shared,
                    &wake,
                    &bars,
                    &logs,
                    &git_commit,
                    git_dirty,
                )
            });
        }
    });
    let (_, mut record) = shared
        .into_inner()
        .expect("no worker panicked holding the lock");
    bars.finish();
    record.finished = Some(jiff::Timestamp::now().to_string());
    let failed = record
        .stages
        .iter()
        .any(|s| s.status == "failed" || s.status == "skipped");
    record.status = if failed { "failed" } else { "ok" }.into();
    record.save(&opts.results)?;
    // The index is a convenience copy of the run records: failing to write it
    // loses nothing. Appending this run's rows keeps the cost independent of
    // how many runs came before.
    if let Err(e) = crate::metrics::store::append_run_index(&runs::runs_dir(&opts.results), &record)
    {
        eprintln!("warning: {}", chain(&e));
    }
    Ok(record)
}

#[allow(clippy::too_many_arguments)]
fn worker(
    dag: &Dag,
    cache: &Cache,
    opts: &RunOptions,
    pool: &Pool,
    prints: &BTreeMap<String, String>,
    shared: &Mutex<(Vec<State>, RunRecord)>,
    wake: &Condvar,
    bars: &progress::Bars,
    logs: &std::path::Path,
    git_commit: &Option<String>,
    git_dirty: Option<bool>,
) {
    loop {
        // Take a ready stage, or skip stages whose inputs failed, or finish.
        let mut guard = shared.lock().expect("lock");
        let (i, inputs) = loop {
            let (states, record) = &mut *guard;
            let mut ready = None;
            let mut changed = false;
            for i in 0..states.len() {
                if !matches!(states[i], State::Pending) {
                    continue;
                }
                let up = dag.upstream(i);
                if let Some(&bad) = up.iter().find(|&&u| matches!(states[u], State::Failed)) {
                    states[i] = State::Failed;
                    let rec = &mut record.stages[i];
                    rec.status = "skipped".into();
                    rec.error = Some(format!(
                        "upstream stage `{}` did not finish",
                        dag.order[bad].id
                    ));
                    changed = true;
                } else if up.iter().all(|&u| matches!(states[u], State::Done(_))) && ready.is_none()
                {
                    ready = Some(i);
                }
            }
            if changed {
                let _ = record.save(&opts.results);
                wake.notify_all();
                continue;
            }
            if let Some(i) = ready {
                states[i] = State::Running;
                let inputs: BTreeMap<String, Entry> = dag.order[i]
                    .inputs
                    .iter()
                    .map(|(role, id)| {
                        let u = dag
                            .order
                            .iter()
                            .position(|s| &s.id == id)
                            .expect("validated");
                        let State::Done(e) = &states[u] else {
                            unreachable!("checked ready")
                        };
                        (role.clone(), e.clone())
                    })
                    .collect();
                break (i, inputs);
            }
            if states
                .iter()
                .all(|s| matches!(s, State::Done(_) | State::Failed))
            {
                return;
            }
            guard = wake.wait(guard).expect("lock");
        };
        drop(guard);

        let stage = &dag.order[i];
        let digests = inputs
            .iter()
            .map(|(r, e)| (r.clone(), e.manifest.digest.clone()))
            .collect();
        // Every device of a run shares one backend, so the key does not depend on which one.
        let ki = key_inputs(stage, &digests, prints.get(&stage.id), opts.devices.first());
        let key = ki.key();
        let log_path = logs.join(format!("{}.log", stage.id));
        let reporter = bars.stage(&stage.id, &log_path);
        let start = Instant::now();
        let lease = pool.take();
        if opts.devices.list().len() > 1 {
            reporter.log(&format!("on {}", lease.device));
        }
        let outcome = run_one(
            stage,
            &ki,
            &key,
            &inputs,
            cache,
            opts,
            lease.device,
            &reporter,
            git_commit,
            git_dirty,
        );
        drop(lease);
        let seconds = start.elapsed().as_secs_f64();

        let mut guard = shared.lock().expect("lock");
        let (states, record) = &mut *guard;
        let rec = &mut record.stages[i];
        rec.key = Some(key);
        rec.key_inputs = Some(ki);
        rec.seconds = seconds;
        match outcome {
            Ok((entry, cached)) => {
                rec.status = if cached { "cached" } else { "ran" }.into();
                if cached {
                    rec.log.clear(); // a cache hit writes no log
                }
                rec.digest = Some(entry.manifest.digest.clone());
                rec.summary = entry.manifest.summary.clone();
                reporter.done(if cached { "cached" } else { "done" }, seconds);
                states[i] = State::Done(entry);
            }
            Err(message) => {
                reporter.log(&format!("error: {message}"));
                reporter.done("FAILED", seconds);
                rec.status = "failed".into();
                rec.error = Some(message);
                states[i] = State::Failed;
            }
        }
        // Saved after every stage that computed or failed, so a killed run
        // still says what it did; a cache hit changes nothing on disk, and
        // the final save records it (this keeps a no-op sweep cheap).
        if record.stages[i].status != "cached" {
            let _ = record.save(&opts.results);
        }
        wake.notify_all();
    }
}

/// Hit the cache or compute under the key's lock. Errors come back as the
/// full cause chain; a panic inside a stage becomes an error too.
#[allow(clippy::too_many_arguments)]
fn run_one(
    stage: &StageSpec,
    ki: &KeyInputs,
    key: &str,
    inputs: &BTreeMap<String, Entry>,
    cache: &Cache,
    opts: &RunOptions,
    device: DeviceChoice,
    reporter: &progress::StageReporter,
    git_commit: &Option<String>,
    git_dirty: Option<bool>,
) -> Result<(Entry, bool), String> {
    let status = cache
        .acquire(key, opts.force, |reason| {
            let msg = format!(
                "warning: cache entry {key} for stage `{}` is corrupt ({reason}); recomputing",
                stage.id
            );
            reporter.warn(&msg);
        })
        .map_err(|e| chain(&e))?;
    let lock = match status {
        CacheStatus::Hit(entry) => {
            reporter.cache_hit(key);
            return Ok((entry, true));
        }
        CacheStatus::Miss(lock) => lock,
    };
    reporter.log(&format!(
        "computing {} `{}` into cache key {key}",
        stage.kind.as_str(),
        stage.id
    ));
    let start = Instant::now();
    let ctx = StageCtx {
        stage,
        inputs,
        out: lock.dir(),
        device,
        progress: reporter,
        fingerprint: if stage.kind == crate::spec::StageKind::ReadData {
            ki.dataset.as_deref()
        } else {
            None
        },
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stages::run(&ctx)));
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
        key_inputs: ki.clone(),
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
    lock.save(manifest)
        .map(|e| (e, false))
        .map_err(|e| chain(&e))
}

/// An error and its causes, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}
