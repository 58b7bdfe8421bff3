//! The Slurm executor: each ready stage that is not already cached becomes
//! one Slurm job running this same `exp` binary on that one stage
//! (`exp job TICKET`), against the same cache on a shared filesystem.
//!
//! Why stages are submitted when their inputs are ready, not all at once
//! with `--dependency=afterok`: a stage's key depends on its inputs'
//! artefact digests, known only once they exist. Submitting when ready lets
//! the submitter check the cache first (a cached stage costs no job), lets a
//! failure stop exactly its dependents, and keeps one rule for local and
//! cluster runs. The price is one scheduling round-trip per DAG level.
//!
//! Files, under `<cache>/slurm/` (shared by every node):
//! - `tickets/<key>.json`: what the job computes ([`Ticket`]);
//! - `jobs/<key>.json`: the job id computing it, so a restarted submitter
//!   attaches to a job still queued or running instead of submitting twice;
//! - `results/<key>.json`: the job's outcome, written last (temp + rename);
//! - `logs/<stage>-<key8>-<jobid>.log`: the job's stdout and stderr.
//!
//! Stages that become ready together (the same stage of every sweep point)
//! and ask for the same resources go out as one job array, each task
//! running its own stage's script.
//!
//! Status comes from one `squeue` for every job in flight, at most once per
//! `poll` seconds (no slurmdbd needed). A job that ends without a result
//! (time limit, out of memory, node failure, `scancel`) fails its stage with
//! its final state and the tail of its log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::executor::{Done, Executor, Job};
use crate::cache::{Cache, KeyInputs, Lookup};
use crate::progress::Progress;
use crate::spec::{ExecutorSpec, Spec};

/// What a job computes: enough to rebuild the stage and check that the
/// spec still resolves to the key the submitter computed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    /// Absolute path of the spec, and the overrides it was loaded with.
    pub spec: PathBuf,
    pub overrides: Vec<String>,
    pub stage: String,
    pub key: String,
    pub key_inputs: KeyInputs,
    /// Upstream cache keys by role.
    pub inputs: BTreeMap<String, String>,
    /// `--device` as given to the submitter.
    pub device: String,
    pub force: bool,
    /// Where the job writes its [`JobResult`].
    pub result: PathBuf,
}

/// A job's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    pub ok: bool,
    /// The entry was already in the cache when the job looked.
    pub cached: bool,
    pub error: Option<String>,
    pub host: String,
}

/// The job id computing a key (`jobs/<key>.json`): `123`, or `123_4` for
/// task 4 of job array 123.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Submitted {
    job: String,
    log: PathBuf,
}

/// Job states after which a job never runs again.
const FINAL: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "SPECIAL_EXIT",
];

/// Job states shared by every stage waiting on the cluster: one `squeue`
/// per poll interval for all of them.
pub struct Queue {
    poll: Duration,
    state: Mutex<QueueState>,
    cancel: Arc<AtomicBool>,
    /// Jobs in flight across every sweep point, at most `parallelism`.
    slots: Mutex<usize>,
    freed: std::sync::Condvar,
    parallelism: usize,
    /// Submissions waiting to go out together as one job array.
    batch: Mutex<Vec<(Request, Arc<Reply>)>>,
}

/// One stage's submission: its sbatch arguments (resources), job name,
/// script and log name.
pub struct Request {
    /// The stage's cache key: requests for one key share one job.
    key: String,
    args: Vec<String>,
    name: String,
    script: PathBuf,
    log_stem: String,
}

/// Where a batched submission's outcome is handed back.
#[derive(Default)]
struct Reply {
    value: Mutex<Option<Result<Submitted, String>>>,
    ready: std::sync::Condvar,
}

/// How long the first submission waits for others to join its job array:
/// the stages a finished stage makes ready (every point of a sweep) arrive
/// within milliseconds of each other.
const BATCH_WINDOW: Duration = Duration::from_millis(250);

#[derive(Default)]
struct QueueState {
    /// Jobs this process waits on, since when.
    watched: BTreeMap<String, Instant>,
    /// Their states at the last query; a job squeue no longer knows is absent.
    states: BTreeMap<String, String>,
    last: Option<Instant>,
    /// Jobs already `scancel`ed.
    cancelled: std::collections::BTreeSet<String>,
}

impl Queue {
    pub fn new(poll: f64, parallelism: u32, cancel: Arc<AtomicBool>) -> Arc<Queue> {
        Arc::new(Queue {
            poll: Duration::from_secs_f64(poll),
            state: Mutex::new(QueueState::default()),
            cancel,
            slots: Mutex::new(0),
            freed: std::sync::Condvar::new(),
            parallelism: parallelism.max(1) as usize,
            batch: Mutex::new(Vec::new()),
        })
    }

    /// Submit `req`, together with the requests that arrive within
    /// [`BATCH_WINDOW`] and ask for the same resources: one sbatch for all,
    /// a job array when there are several (`--array=0-N%parallelism`).
    fn submit(&self, req: Request, logs: &Path, scripts: &Path) -> Result<Submitted, String> {
        let reply = Arc::new(Reply::default());
        let leader = {
            let mut batch = self.batch.lock().expect("batch lock");
            batch.push((req, reply.clone()));
            batch.len() == 1
        };
        if leader {
            std::thread::sleep(BATCH_WINDOW);
            let all: Vec<(Request, Arc<Reply>)> =
                std::mem::take(&mut *self.batch.lock().expect("batch lock"));
            // Same resources, same array.
            let mut groups: BTreeMap<Vec<String>, Vec<(Request, Arc<Reply>)>> = BTreeMap::new();
            for (r, reply) in all {
                groups.entry(r.args.clone()).or_default().push((r, reply));
            }
            for (_, group) in groups {
                // Sweep points that share a stage (one key) share its job.
                let mut unique: Vec<(Request, Arc<Reply>)> = Vec::new();
                let mut task_of = Vec::with_capacity(group.len());
                let mut replies = Vec::with_capacity(group.len());
                for (r, reply) in group {
                    let i = match unique.iter().position(|(u, _)| u.key == r.key) {
                        Some(i) => i,
                        None => {
                            unique.push((r, reply.clone()));
                            unique.len() - 1
                        }
                    };
                    task_of.push(i);
                    replies.push(reply);
                }
                let outcome = self.sbatch(&unique, logs, scripts);
                for (reply, i) in replies.iter().zip(task_of) {
                    *reply.value.lock().expect("reply lock") =
                        Some(outcome.as_ref().map(|s| s[i].clone()).map_err(Clone::clone));
                    reply.ready.notify_all();
                }
            }
        }
        let mut value = reply.value.lock().expect("reply lock");
        loop {
            if let Some(v) = value.take() {
                return v;
            }
            value = reply.ready.wait(value).expect("reply lock");
        }
    }

    /// One sbatch for `group`: a plain job for one request, an array for more.
    fn sbatch(
        &self,
        group: &[(Request, Arc<Reply>)],
        logs: &Path,
        scripts: &Path,
    ) -> Result<Vec<Submitted>, String> {
        let first = &group[0].0;
        let mut cmd = slurm_command("sbatch");
        cmd.arg("--parsable").args(&first.args);
        let (script, logs_of): (PathBuf, Box<dyn Fn(&str, usize) -> (String, PathBuf)>) = if group
            .len()
            == 1
        {
            let pattern = logs.join(format!("{}-%j.log", first.log_stem));
            cmd.arg(format!("--job-name=exp:{}", first.name))
                .arg(format!("--output={}", pattern.display()));
            let p = pattern.display().to_string();
            (
                first.script.clone(),
                Box::new(move |id: &str, _| (id.to_string(), PathBuf::from(p.replace("%j", id)))),
            )
        } else {
            // Task i runs the i-th stage's own script.
            let list: Vec<String> = group
                .iter()
                .map(|(r, _)| r.script.display().to_string())
                .collect();
            let stem = format!(
                "array-{}",
                crate::digest::sha256_hex(list.join("\n").as_bytes())
            );
            let list_path = scripts.join(format!("{}.txt", &stem[..22]));
            write_atomic(&list_path, list.join("\n").as_bytes())?;
            let script = scripts.join(format!("{}.sh", &stem[..22]));
            write_atomic(
                    &script,
                    format!(
                        "#!/bin/sh\n# exp: {} stages as one job array\nexec sh \"$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\"\n",
                        group.len(),
                        quote(&list_path)
                    )
                    .as_bytes(),
                )?;
            let pattern = logs.join("array-%A_%a.log");
            cmd.arg(format!("--job-name=exp:{}", first.name))
                .arg(format!(
                    "--array=0-{}%{}",
                    group.len() - 1,
                    self.parallelism
                ))
                .arg(format!("--output={}", pattern.display()));
            let p = pattern.display().to_string();
            (
                script,
                Box::new(move |id: &str, i| {
                    let task = format!("{id}_{i}");
                    let log = p.replace("%A", id).replace("%a", &i.to_string());
                    (task, PathBuf::from(log))
                }),
            )
        };
        let out = cmd.arg(&script).output().map_err(|e| {
            format!("cannot run `sbatch` (is Slurm installed and SLURM_CONF set?): {e}")
        })?;
        if !out.status.success() {
            return Err(format!(
                "sbatch refused the job: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // `--parsable` prints `jobid` or `jobid;cluster`.
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        if id.is_empty() {
            return Err("sbatch printed no job id".into());
        }
        Ok((0..group.len())
            .map(|i| {
                let (job, log) = logs_of(&id, i);
                Submitted { job, log }
            })
            .collect())
    }

    /// Wait for a free slot (false: cancelled meanwhile); give it back with `release`.
    fn acquire(&self) -> bool {
        let mut used = self.slots.lock().expect("slots lock");
        while *used >= self.parallelism {
            if self.cancel.load(Ordering::SeqCst) {
                return false;
            }
            used = self
                .freed
                .wait_timeout(used, Duration::from_millis(200))
                .expect("slots lock")
                .0;
        }
        *used += 1;
        true
    }

    fn release(&self) {
        *self.slots.lock().expect("slots lock") -= 1;
        self.freed.notify_one();
    }

    /// The job's state, refreshing every watched job's if the last query is
    /// older than the poll interval. `None`: squeue does not know it (long gone).
    /// Start watching `job` (right after it is submitted, so Ctrl-C can
    /// cancel it even before its first status query).
    fn watch(&self, job: &str) {
        let mut st = self.state.lock().expect("queue lock");
        st.watched
            .entry(job.to_string())
            .or_insert_with(Instant::now);
    }

    /// The job's state, refreshing every watched job's if the last query is
    /// older than the poll interval, or older than the job itself. `None`:
    /// squeue, asked after the job was submitted, does not know it (gone);
    /// `UNKNOWN`: squeue did not answer (the controller is busy): not final.
    fn state_of(&self, job: &str) -> Result<Option<String>, String> {
        let mut st = self.state.lock().expect("queue lock");
        let since = *st
            .watched
            .entry(job.to_string())
            .or_insert_with(Instant::now);
        let stale = st
            .last
            .is_none_or(|t| t.elapsed() >= self.poll || t < since);
        if stale {
            let ids: Vec<&str> = st.watched.keys().map(|s| s.as_str()).collect();
            let out = slurm_command("squeue")
                .args(["-h", "-r", "-t", "all", "-o", "%i|%T", "-j", &ids.join(",")])
                .output()
                .map_err(|e| format!("cannot run `squeue`: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let states: BTreeMap<String, String> = text
                .lines()
                .filter_map(|l| l.split_once('|'))
                .map(|(id, s)| (id.trim().to_string(), s.trim().to_string()))
                .collect();
            // squeue exits non-zero when every listed id is unknown ("Invalid
            // job id"): that is an answer. Any other failure is not.
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && !stderr.contains("Invalid job id") {
                return Ok(Some("UNKNOWN".into()));
            }
            st.states = states;
            st.last = Some(Instant::now());
        }
        Ok(st.states.get(job).cloned())
    }

    fn forget(&self, job: &str) {
        let mut st = self.state.lock().expect("queue lock");
        st.watched.remove(job);
        st.states.remove(job);
    }

    /// After Ctrl-C: `scancel` every watched job not cancelled yet.
    fn cancel_all(&self) {
        let mut st = self.state.lock().expect("queue lock");
        let ids: Vec<String> = st
            .watched
            .keys()
            .filter(|id| !st.cancelled.contains(*id))
            .cloned()
            .collect();
        if ids.is_empty() {
            return;
        }
        let _ = slurm_command("scancel").args(&ids).status();
        eprintln!("cancelled Slurm jobs {}", ids.join(", "));
        st.cancelled.extend(ids);
    }
}

/// A Slurm command; `SLURM_CONF` and the rest of the environment pass through.
fn slurm_command(name: &str) -> Command {
    Command::new(name)
}

/// One spec point's stages, sent to the cluster.
pub struct Slurm {
    pub cache: Cache,
    pub queue: Arc<Queue>,
    pub executor: ExecutorSpec,
    pub spec_path: PathBuf,
    pub overrides: Vec<String>,
    pub device: String,
    pub force: bool,
    /// The binary jobs run.
    pub exe: PathBuf,
}

impl Slurm {
    pub fn new(
        spec: &Spec,
        cache: Cache,
        queue: Arc<Queue>,
        device: String,
        force: bool,
    ) -> Result<Slurm, String> {
        let exe = match &spec.executor.exp {
            Some(p) => PathBuf::from(p),
            None => {
                std::env::current_exe().map_err(|e| format!("cannot find this exp binary: {e}"))?
            }
        };
        let spec_path = std::path::absolute(&spec.path)
            .map_err(|e| format!("`{}`: {e}", spec.path.display()))?;
        for dir in ["tickets", "jobs", "results", "logs", "scripts"] {
            let d = cache.root().join("slurm").join(dir);
            std::fs::create_dir_all(&d)
                .map_err(|e| format!("cannot create `{}`: {e}", d.display()))?;
        }
        Ok(Slurm {
            cache,
            queue,
            executor: spec.executor.clone(),
            spec_path,
            overrides: spec.overrides.clone(),
            device,
            force,
            exe,
        })
    }

    fn dir(&self, sub: &str) -> PathBuf {
        self.cache.root().join("slurm").join(sub)
    }

    /// Submit `job`'s stage; returns the Slurm job id and its log.
    fn submit(&self, job: &Job) -> Result<Submitted, String> {
        let key = job.key;
        let result = self.dir("results").join(format!("{key}.json"));
        let _ = std::fs::remove_file(&result);
        let ticket = Ticket {
            spec: self.spec_path.clone(),
            overrides: self.overrides.clone(),
            stage: job.stage.id.clone(),
            key: key.to_string(),
            key_inputs: job.key_inputs.clone(),
            inputs: job
                .inputs
                .iter()
                .map(|(role, e)| (role.clone(), e.manifest.key.clone()))
                .collect(),
            device: self.device.clone(),
            force: self.force,
            result,
        };
        let ticket_path = self.dir("tickets").join(format!("{key}.json"));
        write_atomic(
            &ticket_path,
            &serde_json::to_vec_pretty(&ticket).expect("ticket serializes"),
        )?;
        let script = self.dir("scripts").join(format!("{key}.sh"));
        let cache_root = std::path::absolute(self.cache.root()).map_err(|e| e.to_string())?;
        write_atomic(
            &script,
            format!(
                "#!/bin/sh\n# exp: stage `{}` of {}\nexec {} --cache-dir {} job {}\n",
                job.stage.id,
                self.spec_path.display(),
                quote(&self.exe),
                quote(&cache_root),
                quote(&ticket_path)
            )
            .as_bytes(),
        )?;
        let r = self.executor.resources(job.stage.kind);
        let mut args = vec![format!(
            "--chdir={}",
            std::env::current_dir()
                .map_err(|e| e.to_string())?
                .display()
        )];
        if let Some(p) = &r.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(t) = &r.time {
            // Warned before the limit, a training stage checkpoints and
            // requeues itself (`run_ticket`), then resumes.
            args.push(format!("--time={t}"));
            args.push(format!("--signal=B:USR1@{}", r.signal_before.unwrap_or(90)));
        }
        args.push("--requeue".into());
        if let Some(c) = r.cpus {
            args.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &r.mem {
            args.push(format!("--mem={m}"));
        }
        if let Some(g) = r.gpus.filter(|&g| g > 0) {
            args.push(format!("--gres=gpu:{g}"));
        }
        args.extend(r.extra.iter().cloned());
        let submitted = self.queue.submit(
            Request {
                key: key.to_string(),
                args,
                name: job.stage.id.clone(),
                script,
                log_stem: format!("{}-{}", job.stage.id, &key[..8]),
            },
            &self.dir("logs"),
            &self.dir("scripts"),
        )?;
        write_atomic(
            &self.dir("jobs").join(format!("{key}.json")),
            &serde_json::to_vec(&submitted).expect("serializes"),
        )?;
        Ok(submitted)
    }

    /// A job submitted earlier for this key (by a submitter that died) that
    /// is still queued or running.
    fn live_job(&self, key: &str) -> Result<Option<Submitted>, String> {
        let path = self.dir("jobs").join(format!("{key}.json"));
        let Some(s) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Submitted>(&b).ok())
        else {
            return Ok(None);
        };
        match self.queue.state_of(&s.job)? {
            Some(state) if !FINAL.contains(&state.as_str()) => Ok(Some(s)),
            _ => {
                self.queue.forget(&s.job);
                Ok(None)
            }
        }
    }

    fn wait(&self, job: &Job, s: &Submitted) -> Result<JobResult, String> {
        let result_path = self.dir("results").join(format!("{}.json", job.key));
        let mut last_state = String::new();
        let mut ended_at: Option<Instant> = None;
        loop {
            if self.queue.cancel.load(Ordering::SeqCst) {
                self.queue.cancel_all();
                return Err(format!("cancelled (Slurm job {} was scancelled)", s.job));
            }
            if let Some(r) = read_result(&result_path) {
                return Ok(r);
            }
            let state = self.queue.state_of(&s.job)?;
            let shown = state.clone().unwrap_or_else(|| "ENDED".into());
            if shown != last_state {
                job.reporter
                    .set_message(format!("slurm job {} {}", s.job, shown.to_lowercase()));
                job.reporter.log(&format!("slurm job {}: {shown}", s.job));
                last_state = shown.clone();
            }
            let ended = state.as_deref().is_none_or(|st| FINAL.contains(&st));
            if !ended {
                ended_at = None; // back in the queue (requeued)
            } else {
                // The result may trail the state on a network filesystem: give it a moment.
                let t = *ended_at.get_or_insert_with(Instant::now);
                if t.elapsed() > Duration::from_secs(5).max(2 * self.queue.poll) {
                    return Err(format!(
                        "Slurm job {} ended {shown} without a result; last lines of {}:\n{}",
                        s.job,
                        s.log.display(),
                        tail(&s.log, 20)
                    ));
                }
            }
            std::thread::sleep(
                self.queue
                    .poll
                    .min(Duration::from_millis(200))
                    .max(Duration::from_millis(20)),
            );
        }
    }
}

impl Executor for Slurm {
    fn execute(&self, job: &Job) -> Result<Done, String> {
        // A cached stage costs no job.
        if !self.force {
            if let Lookup::Hit(entry) = self.cache.lookup(job.key) {
                job.reporter.cache_hit(job.key);
                return Ok(Done {
                    entry,
                    cached: true,
                    job_id: None,
                });
            }
        }
        if !self.queue.acquire() {
            return Err("cancelled before it was submitted".into());
        }
        // Another sweep point may have computed it while this one waited for a slot.
        if !self.force {
            if let Lookup::Hit(entry) = self.cache.lookup(job.key) {
                self.queue.release();
                job.reporter.cache_hit(job.key);
                return Ok(Done {
                    entry,
                    cached: true,
                    job_id: None,
                });
            }
        }
        let outcome = self.submit_and_wait(job);
        self.queue.release();
        outcome
    }

    fn parallelism(&self, _jobs: usize) -> usize {
        self.executor.parallelism as usize
    }
}

impl Slurm {
    fn submit_and_wait(&self, job: &Job) -> Result<Done, String> {
        let start = Instant::now();
        let submitted = match self.live_job(job.key)? {
            Some(s) => {
                job.reporter.log(&format!(
                    "attached to Slurm job {} (submitted earlier)",
                    s.job
                ));
                s
            }
            None => {
                let s = self.submit(job)?;
                job.reporter.log(&format!(
                    "submitted Slurm job {} (log {})",
                    s.job,
                    s.log.display()
                ));
                (job.computing)();
                s
            }
        };
        self.queue.watch(&submitted.job);
        let outcome = self.wait(job, &submitted);
        self.queue.forget(&submitted.job);
        job.reporter.log(&format!(
            "slurm job {}: result after {:.2} s (submit to result)",
            submitted.job,
            start.elapsed().as_secs_f64()
        ));
        let result = outcome?;
        // The job's output into the stage log (it was not on this terminal).
        if let Ok(text) = std::fs::read_to_string(&submitted.log) {
            for line in text.lines() {
                job.reporter
                    .log_quietly(&format!("[job {}] {line}", submitted.job));
            }
        }
        if !result.ok {
            return Err(result
                .error
                .unwrap_or_else(|| format!("Slurm job {} failed", submitted.job)));
        }
        match self.cache.lookup(job.key) {
            Lookup::Hit(entry) => Ok(Done {
                entry,
                cached: result.cached,
                job_id: Some(submitted.job),
            }),
            Lookup::Miss => Err(format!(
                "Slurm job {} reported success but cache entry {} is missing (is the cache on a filesystem every node shares?)",
                submitted.job, job.key
            )),
            Lookup::Corrupt(why) => Err(format!(
                "Slurm job {} wrote cache entry {} but it is corrupt: {why}",
                submitted.job, job.key
            )),
        }
    }
}

fn read_result(path: &Path) -> Option<JobResult> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Whole or not at all, for readers on other nodes too.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::atomic::write(path, bytes).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Single-quoted for sh.
fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The last `n` lines of a file, or why there are none.
fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(no log: {e})"),
    }
}

/// `exp job TICKET`, inside the Slurm job: rebuild the stage, check its key,
/// hit or compute it through the cache, write the result. Returns whether
/// the stage succeeded.
pub fn run_ticket(ticket_path: &Path, cache_root: &Path) -> Result<bool, String> {
    let ticket: Ticket = serde_json::from_slice(
        &std::fs::read(ticket_path)
            .map_err(|e| format!("cannot read ticket `{}`: {e}", ticket_path.display()))?,
    )
    .map_err(|e| format!("ticket `{}` is not valid: {e}", ticket_path.display()))?;
    // SIGUSR1 (Slurm's warning before the time limit, or `scancel
    // --signal=USR1`): training checkpoints after its current batch.
    use crate::train::checkpoint::STOP;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let _ = unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGUSR1, || {
            STOP.store(true, Ordering::SeqCst)
        })
    };
    let outcome = compute(&ticket, cache_root);
    if STOP.load(Ordering::SeqCst) && outcome.is_err() {
        return requeue();
    }
    let result = JobResult {
        ok: outcome.is_ok(),
        cached: *outcome.as_ref().unwrap_or(&false),
        error: outcome.as_ref().err().cloned(),
        host: crate::runs::hostname(),
    };
    if let Some(e) = &result.error {
        eprintln!("error: {e}");
    }
    write_atomic(
        &ticket.result,
        &serde_json::to_vec_pretty(&result).expect("result serializes"),
    )?;
    Ok(result.ok)
}

/// Put this job back in the queue (same id; the submitter keeps waiting on
/// it) and wait to be stopped; the requeued job resumes from the checkpoint.
fn requeue() -> Result<bool, String> {
    let id = std::env::var("SLURM_JOB_ID")
        .map_err(|_| "asked to stop, but not inside a Slurm job (no SLURM_JOB_ID)".to_string())?;
    eprintln!("checkpointed; requeueing Slurm job {id}");
    let status = slurm_command("scontrol")
        .args(["requeue", &id])
        .status()
        .map_err(|e| format!("cannot run `scontrol requeue {id}`: {e}"))?;
    if !status.success() {
        return Err(format!("`scontrol requeue {id}` failed"));
    }
    // Slurm stops this instance; exiting first could end the job COMPLETED.
    std::thread::sleep(Duration::from_secs(60));
    Err(format!("Slurm job {id} was requeued but not stopped"))
}

fn compute(ticket: &Ticket, cache_root: &Path) -> Result<bool, String> {
    let spec = crate::spec::load(&ticket.spec, &ticket.overrides).map_err(|e| e.to_string())?;
    let stage = spec
        .stages
        .iter()
        .find(|s| s.id == ticket.stage)
        .ok_or_else(|| format!("the spec no longer has stage `{}`", ticket.stage))?;
    let mut params = serde_json::to_value(&stage.config).expect("config serializes");
    if let Some(obj) = params.as_object_mut() {
        obj.remove("kind");
    }
    if params != ticket.key_inputs.params || ticket.key_inputs.key() != ticket.key {
        return Err(format!(
            "`{}` changed since the job was submitted: stage `{}` no longer resolves to key {}",
            ticket.spec.display(),
            ticket.stage,
            ticket.key
        ));
    }
    let cache = Cache::open(cache_root).map_err(|e| super::chain(&e))?;
    let mut inputs = BTreeMap::new();
    for (role, key) in &ticket.inputs {
        match cache.lookup(key) {
            Lookup::Hit(e) => {
                inputs.insert(role.clone(), e);
            }
            _ => {
                return Err(format!(
                    "input `{role}` (cache entry {key}) is not in the cache at `{}`",
                    cache_root.display()
                ));
            }
        }
    }
    let devices: crate::device::Devices = ticket.device.parse().map_err(|e| format!("{e}"))?;
    devices.check().map_err(|e| e.to_string())?;
    let pool = crate::device::Pool::new(&devices);
    let bars = super::progress::Bars::new(super::progress::Mode::Lines, 1);
    let log = ticket.result.with_extension("log");
    let reporter = bars.stage(&stage.id, &log);
    let job = Job {
        stage,
        key_inputs: &ticket.key_inputs,
        key: &ticket.key,
        inputs: &inputs,
        devices: &pool,
        reporter: &reporter,
        // The submitter keeps the run record; nothing to save in the job.
        computing: &|| {},
    };
    let (commit, dirty) = crate::runs::git_state();
    super::executor::hit_or_compute(&job, &cache, ticket.force, &commit, dirty).map(|d| d.cached)
}
