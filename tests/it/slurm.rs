//! `--executor slurm` against a real single-node Slurm cluster, started by
//! `.ci/slurm/start.sh` (`SLURM_CONF` set). Ignored by a plain `cargo test`:
//! `.ci/run` starts the cluster and runs them with `--ignored`; without a
//! cluster they fail (not pass) with a message that says so.

use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{self, Env, LONG, text};

fn require_slurm() {
    let ok = Command::new("sinfo")
        .arg("-h")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "no Slurm cluster answers (`sinfo` failed): start one with `.ci/slurm/start.sh` and `source /tmp/exp-slurm/env`"
    );
}

/// The common tiny spec, with status queries every 0.2 s.
fn tiny() -> String {
    format!("{}\n[executor]\npoll = 0.2\n", common::TINY)
}

fn stages(run: &serde_json::Value) -> Vec<serde_json::Value> {
    run["stages"].as_array().unwrap().clone()
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn every_stage_runs_as_a_job_and_a_rerun_submits_none() {
    require_slurm();
    let env = Env::new(&tiny());
    let out = env.exp(&["run", "spec.toml", "--executor", "slurm"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = env.show("tiny");
    for s in stages(&run) {
        assert_eq!(s["status"], "ran", "{s}");
        assert!(s["job"].as_str().is_some_and(|j| !j.is_empty()), "{s}");
    }
    let out = env.exp(&["run", "spec.toml", "--executor", "slurm"]);
    assert!(out.status.success(), "{}", text(&out));
    for s in stages(&env.show("tiny")) {
        assert_eq!(s["status"], "cached");
        assert!(s.get("job").is_none(), "a cached stage submits no job: {s}");
    }
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn an_eight_point_sweep_on_slurm_equals_the_local_run_bit_for_bit() {
    require_slurm();
    let seeds = "experiment.seed=1,2,3,4,5,6,7,8";
    let local = Env::new(&tiny());
    let out = local.exp(&["run", "spec.toml", "-s", seeds, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let a: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let cluster = Env::new(&tiny());
    let out = cluster.exp(&[
        "run",
        "spec.toml",
        "-s",
        seeds,
        "--executor",
        "slurm",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let b: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a.len(), 8);
    assert_eq!(b.len(), 8);
    let by_point = |runs: &[serde_json::Value]| {
        let mut m: Vec<(String, Vec<(String, String, String, String)>)> = runs
            .iter()
            .map(|r| {
                let stages = stages(r)
                    .iter()
                    .map(|s| {
                        (
                            s["id"].as_str().unwrap().to_string(),
                            s["key"].as_str().unwrap().to_string(),
                            s["digest"].as_str().unwrap().to_string(),
                            s["summary"].to_string(),
                        )
                    })
                    .collect();
                (r["point"].to_string(), stages)
            })
            .collect();
        m.sort();
        m
    };
    // Same keys, same artefact digests (every file bitwise equal), same metrics.
    assert_eq!(by_point(&a), by_point(&b));
    assert!(b.iter().flat_map(stages).all(|s| s["job"].is_string()));
    // Stages that became ready together went out as one job array (`id_task`).
    assert!(
        b.iter()
            .flat_map(stages)
            .any(|s| s["job"].as_str().is_some_and(|j| j.contains('_'))),
        "no job array"
    );
}

const FAILING: &str = r#"
[experiment]
name = "fails"

[executor]
kind = "slurm"
poll = 0.2

[[stage]]
id = "broken"
kind = "command"
run = ["sh", "-c", "echo about to fail; echo the reason >&2; exit 4"]

[[stage]]
id = "after"
kind = "command"
run = ["sh", "-c", "true"]
inputs = { up = "broken" }

[[stage]]
id = "fine"
kind = "command"
run = ["sh", "-c", "echo fine"]
"#;

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn a_failed_job_shows_its_output_and_stops_only_its_dependents() {
    require_slurm();
    let env = Env::new(FAILING);
    // `[executor] kind = "slurm"` in the spec: no flag needed.
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("the reason"), "{}", text(&out));
    let status: Vec<(String, String)> = env.statuses("fails");
    assert_eq!(
        status,
        [
            ("broken".to_string(), "failed".to_string()),
            ("after".to_string(), "skipped".to_string()),
            ("fine".to_string(), "ran".to_string())
        ]
    );
}

const SLOW: &str = r#"
[experiment]
name = "slow"

[executor]
kind = "slurm"
poll = 0.2

[[stage]]
id = "nap"
kind = "command"
run = ["sh", "-c", "sleep {secs}; echo rested"]
params = { secs = 6 }
"#;

/// Job ids Slurm knows by name, and their states.
fn jobs_named(name: &str) -> Vec<(String, String)> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-n", name, "-o", "%i|%T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn a_restarted_submitter_attaches_to_the_job_it_submitted() {
    require_slurm();
    // A name of its own, so other tests' jobs do not count.
    let spec = SLOW.replace("id = \"nap\"", "id = \"nap-restart\"");
    let env = Env::new(&spec);
    let before = jobs_named("exp:nap-restart").len();
    let mut first = env.cmd(&["run", "spec.toml"]).spawn().unwrap();
    wait_until("the job to be submitted", || {
        jobs_named("exp:nap-restart").len() > before
    });
    first.kill().unwrap(); // the submitter dies; the job goes on
    first.wait().unwrap();
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("attached to Slurm job"),
        "{}",
        text(&out)
    );
    assert_eq!(
        jobs_named("exp:nap-restart").len(),
        before + 1,
        "no second job"
    );
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn ctrl_c_cancels_the_jobs_it_submitted() {
    require_slurm();
    let spec = SLOW
        .replace("id = \"nap\"", "id = \"nap-cancel\"")
        .replace("secs = 6", "secs = 120");
    let env = Env::new(&spec);
    let mut run = env.cmd(&["run", "spec.toml"]).spawn().unwrap();
    wait_until("the job to run", || {
        jobs_named("exp:nap-cancel")
            .iter()
            .any(|(_, s)| s == "RUNNING")
    });
    unsafe {
        libc_kill(run.id() as i32, 2);
    }
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    wait_until("the job to be cancelled", || {
        jobs_named("exp:nap-cancel")
            .iter()
            .all(|(_, s)| s == "CANCELLED")
    });
    assert_eq!(
        env.statuses("slow"),
        [("nap-cancel".into(), "cancelled".into())]
    );
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn a_job_warned_before_its_time_limit_requeues_resumes_and_ends_equal() {
    require_slurm();
    let spec = LONG.replace("id = \"train\"", "id = \"train-requeue\"");
    let reference = Env::new(&spec);
    let out = reference.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let want = reference.show("long")["stages"][1].clone();

    // A time limit, so the job is told (SIGUSR1) before it; here we send the
    // warning at once instead of waiting out a limit.
    let env = Env::new(&format!(
        "{spec}\n[executor]\ntime = \"10:00\"\npoll = 0.2\n"
    ));
    let mut run = env
        .cmd(&["run", "spec.toml", "--executor", "slurm"])
        .spawn()
        .unwrap();
    wait_until("an epoch checkpoint", || {
        std::fs::read_dir(env.path().join("results/cache/checkpoints"))
            .map(|d| {
                d.flatten()
                    .any(|k| k.path().join("train/state.json").exists())
            })
            .unwrap_or(false)
    });
    let (job, _) = jobs_named("exp:train-requeue")
        .into_iter()
        .find(|(_, s)| s == "RUNNING")
        .expect("the training job runs");
    let warned = Command::new("scancel")
        .args(["--batch", "--signal=USR1", &job])
        .status()
        .unwrap();
    assert!(warned.success());
    // Slurm holds a requeued job for two minutes (its begin time); start it
    // sooner — but not at once, or slurmd refuses it ("Job credential
    // revoked": the first instance's credential is still being torn down).
    wait_until("the requeue", || {
        jobs_named("exp:train-requeue")
            .iter()
            .any(|(id, s)| id == &job && s == "PENDING")
    });
    let _ = Command::new("scontrol")
        .args(["update", &format!("JobId={job}"), "StartTime=now+10"])
        .status();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the requeued job never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let got = env.show("long")["stages"][1].clone();
    assert_eq!(
        got["job"].as_str(),
        Some(job.as_str()),
        "the same job, requeued"
    );
    assert_eq!(got["key"], want["key"]);
    assert_eq!(
        got["digest"], want["digest"],
        "bit for bit equal to the uninterrupted run"
    );
    let log = env.stage_log(env.show("long")["id"].as_str().unwrap(), "train-requeue");
    assert!(log.contains("resuming from its checkpoint"), "{log}");
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/run starts one"]
fn a_job_near_its_real_time_limit_checkpoints_requeues_and_ends_equal() {
    require_slurm();
    // 250 epochs (~70 s on 2 cores as of 2026-12-01; 150 took ~60 s before
    // the faster convolutions, too close to the 30 s below) under a
    // one-minute limit, warned 50 s before it. slurmctld checks time limits
    // every 30 s and warns up to 30 s early, so Slurm itself sends SIGUSR1
    // within the first 30 s, mid-training.
    let spec = LONG
        .replace("id = \"train\"", "id = \"train-limit\"")
        .replace("epochs = 8", "epochs = 250");
    let reference = Env::new(&spec);
    let out = reference.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let want = reference.show("long")["stages"][1].clone();

    let env = Env::new(&format!(
        "{spec}\n[executor]\ntime = \"1\"\nsignal-before = 50\npoll = 0.2\n"
    ));
    let mut run = env
        .cmd(&["run", "spec.toml", "--executor", "slurm"])
        .spawn()
        .unwrap();
    // Once the job is back in the queue: give the resumed instance ten
    // minutes, or it too is warned within 30 s and never gets far; and start
    // it 10 s later (Slurm holds a requeued job for two minutes, and at once
    // slurmd may refuse it: "Job credential revoked").
    let mut job = None;
    let mut requeued = false;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "never finished");
        let jobs = jobs_named("exp:train-limit");
        match &job {
            None => {
                job = jobs
                    .into_iter()
                    .find(|(_, s)| s == "RUNNING")
                    .map(|(id, _)| id)
            }
            Some(id) if !requeued => {
                if jobs.iter().any(|(j, s)| j == id && s == "PENDING") {
                    requeued = true;
                    let status = Command::new("scontrol")
                        .args([
                            "update",
                            &format!("JobId={id}"),
                            "TimeLimit=10",
                            "StartTime=now+10",
                        ])
                        .status()
                        .unwrap();
                    assert!(status.success(), "scontrol update {id}");
                }
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(requeued, "Slurm never warned the job before its time limit");
    assert!(status.success());
    let got = env.show("long")["stages"][1].clone();
    assert_eq!(
        got["digest"], want["digest"],
        "bit for bit equal to the uninterrupted run"
    );
    let log = env.stage_log(env.show("long")["id"].as_str().unwrap(), "train-limit");
    assert!(log.contains("resuming from its checkpoint"), "{log}");
}
