//! The scheduler: runs a spec's DAG with up to `jobs` stages at once, each
//! stage through the cache (hit: reuse; miss: compute under the key's lock,
//! commit atomically). A failed stage stops only its dependents. The run
//! record is saved after every stage.
//!
//! Rough outline:
//! 1. build the DAG, open the cache, write the run record (`running`);
//! 2. worker threads take ready stages (all inputs done), compute their key
//!    from the upstream artefact digests, and hand them to an [`Executor`]
//!    (this process, or a Slurm job), which hits or computes;
//! 3. after each stage: update the record; mark dependents of a failure
//!    `skipped`;
//! 4. print the summary table; exit non-zero if anything failed.
//!
//! After Ctrl-C (`RunOptions::cancel`) no stage starts; running ones finish
//! (or are cancelled by their executor) and pending ones end `cancelled`.

pub mod executor;
pub mod explain;
pub mod progress;
pub mod slurm;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheError, Entry, KeyInputs};
use crate::device::{DeviceChoice, Devices, Pool};
use crate::plan::{Dag, PlanError};
use crate::runs::{self, RunRecord, RunsError, StageRecord};
use crate::spec::{Spec, StageSpec};
pub use executor::{Done, Executor, Job, Local};

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
    /// Set by Ctrl-C: start no more stages; pending ones end `cancelled`.
    pub cancel: Arc<AtomicBool>,
    /// Shown before stage ids in progress lines (runs of a sweep at once).
    pub label: Option<String>,
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

/// Run `spec` in this process; returns the final record (its `status` says
/// whether all went well).
pub fn run(spec: &Spec, opts: &RunOptions) -> Result<RunRecord, ExecError> {
    let (git_commit, git_dirty) = runs::git_state();
    let local = Local {
        cache: Cache::open(&opts.cache_root)?,
        force: opts.force,
        git_commit,
        git_dirty,
    };
    run_with(spec, opts, &local)
}

/// Run `spec`, handing every ready stage to `executor`.
pub fn run_with(
    spec: &Spec,
    opts: &RunOptions,
    executor: &dyn Executor,
) -> Result<RunRecord, ExecError> {
    opts.devices.check()?;
    let dag = Dag::build(spec)?;
    Cache::open(&opts.cache_root)?;
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
        git_commit,
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
                job: None,
            })
            .collect(),
        sweep: opts.sweep.clone(),
        point: spec.point.clone(),
        pid: Some(std::process::id()),
        host: Some(runs::hostname()),
        exp_build: Some(runs::BUILD_COMMIT.to_string()),
    };
    record.save(&opts.results)?;
    // Created by a stage's first log line (a cache hit writes none).
    let logs = record.dir(&opts.results).join("logs");

    let bars = progress::Bars::new(opts.progress, dag.order.len());
    let shared = Mutex::new((vec![State::Pending; dag.order.len()], record));
    let wake = Condvar::new();
    let jobs = executor
        .parallelism(opts.jobs.max(1))
        .max(1)
        .min(dag.order.len().max(1));
    let pool = Pool::new(&opts.devices);
    let scheduler = Scheduler {
        dag: &dag,
        opts,
        executor,
        pool: &pool,
        prints: &prints,
        shared: &shared,
        wake: &wake,
        bars: &bars,
        logs: &logs,
        told: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| scheduler.worker());
        }
    });
    let (_, mut record) = shared
        .into_inner()
        .expect("no worker panicked holding the lock");
    bars.finish();
    record.finished = Some(jiff::Timestamp::now().to_string());
    let status = |want: &str| record.stages.iter().any(|s| s.status == want);
    record.status = if status("cancelled") {
        "cancelled"
    } else if status("failed") || status("skipped") {
        "failed"
    } else {
        "ok"
    }
    .into();
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

/// What the worker threads share.
struct Scheduler<'a> {
    dag: &'a Dag,
    opts: &'a RunOptions,
    executor: &'a dyn Executor,
    pool: &'a Pool,
    prints: &'a BTreeMap<String, String>,
    shared: &'a Mutex<(Vec<State>, RunRecord)>,
    wake: &'a Condvar,
    bars: &'a progress::Bars,
    logs: &'a std::path::Path,
    /// The user was told about the cancellation.
    told: AtomicBool,
}

/// What a worker does next.
enum Next {
    Stage(usize, BTreeMap<String, Entry>),
    Finished,
}

impl Scheduler<'_> {
    fn cancelled(&self) -> bool {
        self.opts.cancel.load(Ordering::SeqCst)
    }

    /// Take a ready stage, or mark stages whose inputs failed `skipped` (and
    /// pending ones `cancelled` after Ctrl-C), or finish.
    fn next(&self) -> Next {
        let dag = self.dag;
        let mut guard = self.shared.lock().expect("lock");
        loop {
            let (states, record) = &mut *guard;
            let cancelled = self.cancelled();
            let mut ready = None;
            let mut changed = false;
            for i in 0..states.len() {
                if !matches!(states[i], State::Pending) {
                    continue;
                }
                let up = dag.upstream(i);
                if cancelled {
                    states[i] = State::Failed;
                    record.stages[i].status = "cancelled".into();
                    changed = true;
                } else if let Some(&bad) = up.iter().find(|&&u| matches!(states[u], State::Failed))
                {
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
                if cancelled && !self.told.swap(true, Ordering::SeqCst) {
                    let running = states
                        .iter()
                        .filter(|s| matches!(s, State::Running))
                        .count();
                    eprintln!(
                        "cancelled: no more stages start; waiting for {running} running (Ctrl-C again to stop now)"
                    );
                }
                let _ = record.save(&self.opts.results);
                self.wake.notify_all();
                continue;
            }
            if let Some(i) = ready {
                states[i] = State::Running;
                record.stages[i].status = "running".into();
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
                return Next::Stage(i, inputs);
            }
            if states
                .iter()
                .all(|s| matches!(s, State::Done(_) | State::Failed))
            {
                return Next::Finished;
            }
            // Woken by a finished stage, or by the timeout to notice Ctrl-C.
            guard = self
                .wake
                .wait_timeout(guard, Duration::from_millis(200))
                .expect("lock")
                .0;
        }
    }

    fn worker(&self) {
        while let Next::Stage(i, inputs) = self.next() {
            self.execute(i, &inputs);
            self.wake.notify_all();
        }
    }

    fn execute(&self, i: usize, inputs: &BTreeMap<String, Entry>) {
        let stage = &self.dag.order[i];
        let digests = inputs
            .iter()
            .map(|(r, e)| (r.clone(), e.manifest.digest.clone()))
            .collect();
        // Every device of a run shares one backend, so the key does not depend on which one.
        let ki = key_inputs(
            stage,
            &digests,
            self.prints.get(&stage.id),
            self.opts.devices.first(),
        );
        let key = ki.key();
        let log_path = self.logs.join(format!("{}.log", stage.id));
        let shown = match &self.opts.label {
            Some(l) => format!("[{l}] {}", stage.id),
            None => stage.id.clone(),
        };
        let reporter = self.bars.stage(&shown, &log_path);
        let start = Instant::now();
        let computing = || {
            let mut guard = self.shared.lock().expect("lock");
            let (_, record) = &mut *guard;
            record.stages[i].key = Some(key.clone());
            let _ = record.save(&self.opts.results);
        };
        let job = Job {
            stage,
            key_inputs: &ki,
            key: &key,
            inputs,
            devices: self.pool,
            reporter: &reporter,
            computing: &computing,
        };
        let outcome = self.executor.execute(&job);
        // A computed stage's time is its compute time (from its manifest):
        // the wall time also counts waiting for a device or a cluster slot.
        let seconds = match &outcome {
            Ok(done) if !done.cached => done.entry.manifest.seconds,
            _ => start.elapsed().as_secs_f64(),
        };

        let mut guard = self.shared.lock().expect("lock");
        let (states, record) = &mut *guard;
        let rec = &mut record.stages[i];
        rec.key = Some(key);
        rec.key_inputs = Some(ki);
        rec.seconds = seconds;
        match outcome {
            Ok(done) => {
                rec.status = if done.cached { "cached" } else { "ran" }.into();
                if done.cached {
                    rec.log.clear(); // a cache hit writes no log
                }
                rec.job = done.job_id;
                rec.digest = Some(done.entry.manifest.digest.clone());
                rec.summary = done.entry.manifest.summary.clone();
                reporter.done(if done.cached { "cached" } else { "done" }, seconds);
                states[i] = State::Done(done.entry);
            }
            Err(message) => {
                use crate::progress::Progress;
                let cancelled = self.cancelled();
                reporter.log(&format!("error: {message}"));
                reporter.done(if cancelled { "CANCELLED" } else { "FAILED" }, seconds);
                rec.status = if cancelled { "cancelled" } else { "failed" }.into();
                rec.error = Some(message);
                states[i] = State::Failed;
            }
        }
        // Saved after every stage that computed or failed, so a killed run
        // still says what it did; a cache hit changes nothing on disk, and
        // the final save records it (this keeps a no-op sweep cheap).
        if record.stages[i].status != "cached" {
            let _ = record.save(&self.opts.results);
        }
    }
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
