//! The scheduler through a fake executor: ordering, failure isolation,
//! `--jobs`, cache hits and cancellation, in milliseconds and without a net.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::cache::Manifest;

/// What the fake's manifests say a stage computed for.
const COMPUTE_SECONDS: f64 = 7.0;

/// Remembers what it was asked to do; "computes" by sleeping.
#[derive(Default)]
struct Fake {
    /// Stage ids that fail.
    fail: BTreeSet<String>,
    /// How long each stage "computes".
    sleep: Duration,
    /// Keys already "in the cache".
    cached: Mutex<BTreeSet<String>>,
    /// Stage ids in the order they started.
    started: Mutex<Vec<String>>,
    /// `start <id>` and `end <id>`, in order.
    events: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    /// Set this flag (Ctrl-C) when this stage starts.
    cancel_at: Option<(String, Arc<AtomicBool>)>,
}

impl Executor for Fake {
    fn execute(&self, job: &Job) -> Result<Done, String> {
        let id = job.stage.id.clone();
        self.started.lock().unwrap().push(id.clone());
        self.events.lock().unwrap().push(format!("start {id}"));
        if let Some((at, flag)) = &self.cancel_at {
            if at == &id {
                flag.store(true, Ordering::SeqCst);
            }
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.sleep);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.events.lock().unwrap().push(format!("end {id}"));
        if self.fail.contains(&id) {
            return Err(format!("{id} broke"));
        }
        let cached = !self.cached.lock().unwrap().insert(job.key.to_string());
        let manifest = Manifest {
            key: job.key.to_string(),
            key_inputs: job.key_inputs.clone(),
            files: Default::default(),
            // What downstream keys see: a function of this stage's key only.
            digest: crate::cache::key::sha256_hex(job.key.as_bytes()),
            created: String::new(),
            // The compute time a real executor records, apart from waiting.
            seconds: COMPUTE_SECONDS,
            host: String::new(),
            versions: BTreeMap::new(),
            git_commit: None,
            git_dirty: None,
            summary: serde_json::json!({ "stage": id }),
        };
        Ok(Done {
            entry: Entry {
                dir: std::path::PathBuf::from("/nonexistent"),
                manifest,
            },
            cached,
            job_id: None,
        })
    }
}

/// data → a → b; data → c; a → d (four trained stages and one evaluation).
const SPEC: &str = r#"
[experiment]
name = "sched"
[[stage]]
id = "a"
kind = "train"
[[stage]]
id = "b"
kind = "evaluate"
model = "a"
[[stage]]
id = "c"
kind = "train"
epochs = 2
[[stage]]
id = "d"
kind = "train-parts"
whole = "a"
grid = 2
"#;

struct Env {
    dir: tempfile::TempDir,
    spec: Spec,
}

fn env(toml: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, toml).unwrap();
    let spec = crate::spec::load(&path, &[]).unwrap();
    Env { dir, spec }
}

impl Env {
    fn opts(&self, jobs: usize) -> RunOptions {
        RunOptions {
            force: false,
            jobs,
            devices: "cpu".parse().unwrap(),
            cache_root: self.dir.path().join("cache"),
            results: self.dir.path().join("results"),
            progress: progress::Mode::Quiet,
            sweep: None,
            cancel: Arc::new(AtomicBool::new(false)),
            label: None,
        }
    }
}

fn statuses(r: &RunRecord) -> BTreeMap<&str, &str> {
    r.stages
        .iter()
        .map(|s| (s.id.as_str(), s.status.as_str()))
        .collect()
}

#[test]
fn every_stage_starts_after_its_inputs_finished() {
    let e = env(SPEC);
    let fake = Fake {
        sleep: Duration::from_millis(5),
        ..Default::default()
    };
    let record = run_with(&e.spec, &e.opts(3), &fake).unwrap();
    assert_eq!(record.status, "ok");
    let events = fake.events.lock().unwrap().clone();
    let at = |e: String| events.iter().position(|x| *x == e).unwrap();
    let dag = Dag::build(&e.spec).unwrap();
    assert_eq!(events.len(), 2 * dag.order.len());
    for (i, stage) in dag.order.iter().enumerate() {
        for u in dag.upstream(i) {
            let up = &dag.order[u].id;
            assert!(
                at(format!("end {up}")) < at(format!("start {}", stage.id)),
                "{} started before {up} finished: {events:?}",
                stage.id
            );
        }
    }
}

#[test]
fn a_failed_stage_skips_only_its_dependents() {
    let e = env(SPEC);
    let fake = Fake {
        fail: ["a".to_string()].into(),
        ..Default::default()
    };
    let record = run_with(&e.spec, &e.opts(2), &fake).unwrap();
    let st = statuses(&record);
    assert_eq!(st["a"], "failed");
    assert_eq!(st["b"], "skipped");
    assert_eq!(st["d"], "skipped");
    assert_eq!(st["c"], "ran");
    assert_eq!(record.status, "failed");
    let b = record.stages.iter().find(|s| s.id == "b").unwrap();
    assert_eq!(
        b.error.as_deref(),
        Some("upstream stage `a` did not finish")
    );
    assert!(!fake.started.lock().unwrap().contains(&"b".to_string()));
}

#[test]
fn jobs_bounds_the_stages_running_at_once() {
    let wide = "[experiment]\nname = \"wide\"\n".to_string()
        + &(0..6)
            .map(|i| format!("[[stage]]\nid = \"t{i}\"\nkind = \"train\"\nseed = {i}\n"))
            .collect::<String>();
    for jobs in [1, 3] {
        let e = env(&wide);
        let fake = Fake {
            sleep: Duration::from_millis(30),
            ..Default::default()
        };
        run_with(&e.spec, &e.opts(jobs), &fake).unwrap();
        assert_eq!(fake.max_running.load(Ordering::SeqCst), jobs);
    }
}

#[test]
fn a_rerun_asks_for_the_same_keys_and_reports_hits() {
    let e = env(SPEC);
    let fake = Fake::default();
    let first = run_with(&e.spec, &e.opts(2), &fake).unwrap();
    let second = run_with(&e.spec, &e.opts(2), &fake).unwrap();
    assert!(first.stages.iter().all(|s| s.status == "ran"));
    assert!(second.stages.iter().all(|s| s.status == "cached"));
    let keys = |r: &RunRecord| r.stages.iter().map(|s| s.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&first), keys(&second));
    // A cache hit writes no log.
    assert!(second.stages.iter().all(|s| s.log.is_empty()));
}

#[test]
fn a_stage_that_ran_reports_its_compute_time_not_its_wait() {
    // A stage waits for a device while another computes; its time is the
    // compute time its executor recorded, not the wall time since it was ready.
    let e = env(SPEC);
    let fake = Fake::default();
    let first = run_with(&e.spec, &e.opts(2), &fake).unwrap();
    assert!(
        first.stages.iter().all(|s| s.seconds == COMPUTE_SECONDS),
        "{:?}",
        first.stages.iter().map(|s| s.seconds).collect::<Vec<_>>()
    );
    let second = run_with(&e.spec, &e.opts(2), &fake).unwrap();
    assert!(second.stages.iter().all(|s| s.seconds < COMPUTE_SECONDS));
}

#[test]
fn an_upstream_change_changes_every_downstream_key_only() {
    let e = env(SPEC);
    let fake = Fake::default();
    let before = run_with(&e.spec, &e.opts(2), &fake).unwrap();
    let path = e.dir.path().join("spec.toml");
    let changed = crate::spec::load(&path, &["stage.a.lr=0.5".to_string()]).unwrap();
    let after = run_with(&changed, &e.opts(2), &fake).unwrap();
    let key = |r: &RunRecord, id: &str| r.stages.iter().find(|s| s.id == id).unwrap().key.clone();
    for id in ["a", "b", "d"] {
        assert_ne!(key(&before, id), key(&after, id), "{id}");
    }
    for id in ["data", "c"] {
        assert_eq!(key(&before, id), key(&after, id), "{id}");
    }
    assert_eq!(statuses(&after)["c"], "cached");
}

#[test]
fn cancelling_starts_nothing_more_and_says_so() {
    let e = env(SPEC);
    let opts = e.opts(1);
    let fake = Fake {
        cancel_at: Some(("data".into(), opts.cancel.clone())),
        ..Default::default()
    };
    let record = run_with(&e.spec, &opts, &fake).unwrap();
    assert_eq!(*fake.started.lock().unwrap(), ["data"]);
    let st = statuses(&record);
    assert_eq!(st["data"], "ran");
    for id in ["a", "b", "c", "d"] {
        assert_eq!(st[id], "cancelled", "{id}");
    }
    assert_eq!(record.status, "cancelled");
}
