//! The cache: reuse, corruption, concurrency, kills, bitwise reproducibility.

#[allow(unused_imports)]
use super::common::*;
#[allow(unused_imports)]
use std::path::{Path, PathBuf};
#[allow(unused_imports)]
use std::process::Command;

#[test]
fn run_then_cached_rerun_then_force() {
    let env = Env::new(TINY);
    let first = env.exp(&["run", "spec.toml"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("majority"),
        "summary prints the baseline: {}",
        text(&first)
    );
    assert!(
        all(&env.statuses("tiny"), "ran"),
        "{:?}",
        env.statuses("tiny")
    );

    let second = env.exp(&["run", "spec.toml"]);
    assert!(second.status.success());
    assert!(
        all(&env.statuses("tiny"), "cached"),
        "no stage executes on a rerun: {:?}",
        env.statuses("tiny")
    );

    let plan = env.exp(&["plan", "spec.toml", "-s", "train.lr=0.02"]);
    let plan = text(&plan);
    assert!(
        plan.contains("to run: params changed: lr 0.01 -> 0.02"),
        "{plan}"
    );
    assert!(plan.contains("cached"), "data is unaffected: {plan}");

    let forced = env.exp(&["run", "spec.toml", "--force"]);
    assert!(forced.status.success());
    assert!(
        all(&env.statuses("tiny"), "ran"),
        "{:?}",
        env.statuses("tiny")
    );

    let ls = text(&env.exp(&["ls"]));
    assert_eq!(ls.matches("-tiny-").count(), 3, "{ls}");
    let show = text(&env.exp(&["show", "tiny"]));
    assert!(
        show.contains("Smiling") && show.contains("cache key"),
        "{show}"
    );
}

#[test]
fn corrupt_entry_is_reported_and_recomputed() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let out = env.exp(&["show", "tiny", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["stages"][1]["key"].as_str().unwrap().to_string();
    let weights = env
        .path()
        .join("results/cache")
        .join(&key[..2])
        .join(&key)
        .join("model.bpk");
    // A cached rerun records what it verified, so later lookups skip
    // re-hashing unchanged files; a rewritten file is still caught.
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    assert!(
        env.path()
            .join("results/cache/verified")
            .join(format!("{key}.json"))
            .exists()
    );
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let again = env.exp(&["run", "spec.toml"]);
    assert!(again.status.success());
    assert!(
        text(&again).contains(&format!("cache entry {key} for stage `train` is corrupt (`model.bpk` does not match its recorded sha256); recomputing")),
        "{}",
        text(&again)
    );
    let st = env.statuses("tiny");
    assert_eq!(st[1], ("train".into(), "ran".into()));
}

#[test]
fn concurrent_runs_compute_each_stage_once() {
    let env = Env::new(TINY);
    let a = env
        .cmd(&["run", "spec.toml"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let b = env
        .cmd(&["run", "spec.toml"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    let out = env.exp(&["ls", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for stage in ["data", "train", "eval"] {
        let ran = runs
            .iter()
            .filter(|r| {
                r["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["id"] == stage && s["status"] == "ran")
            })
            .count();
        assert_eq!(
            ran, 1,
            "stage {stage} computed exactly once across both runs"
        );
    }
}

#[test]
fn killed_stage_leaves_no_entry_and_reruns() {
    let env = Env::new(&TINY.replace("epochs = 1", "epochs = 40"));
    let mut child = env
        .cmd(&["run", "spec.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = env.path().join("results/runs");
    let started = |p: &PathBuf| {
        std::fs::read_to_string(p)
            .map(|s| s.contains("computing train"))
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let log = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("logs/train.log"));
        if log.as_ref().is_some_and(started) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "train never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Only the data entry exists; the train output is a temp dir at most.
    let entries: Vec<_> = std::fs::read_dir(env.path().join("results/cache"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.len() == 2)
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let plan = text(&env.exp(&["plan", "spec.toml"]));
    assert!(plan.contains("to run"), "{plan}");
    let ls: serde_json::Value = serde_json::from_slice(&env.exp(&["ls", "--json"]).stdout).unwrap();
    assert_eq!(
        ls[0]["status"], "interrupted",
        "a killed run is not shown as running"
    );
    let lines: Vec<&str> = plan.lines().filter(|l| l.contains("train")).collect();
    assert!(lines.iter().any(|l| l.contains("to run")), "{plan}");
    let rerun = env.exp(&["run", "spec.toml"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    let st = env.statuses("tiny");
    assert_eq!(st[0], ("data".into(), "cached".into()));
    assert_eq!(st[1], ("train".into(), "ran".into()));
    assert_eq!(
        std::fs::read_dir(env.path().join("results/cache/tmp"))
            .unwrap()
            .count(),
        0,
        "stale temp dir removed"
    );
}

#[test]
fn two_fresh_clones_give_bitwise_equal_weights_and_the_same_keys() {
    // model.bpk used to carry random parameter ids and epochs.parquet the
    // epoch times, so each machine gave downstream stages other keys.
    let runs: Vec<serde_json::Value> = (0..2)
        .map(|_| {
            let env = Env::new(TINY);
            let out = env.exp(&["run", "spec.toml", "--json"]);
            assert!(out.status.success(), "{}", text(&out));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let stage = |run: &serde_json::Value, id: &str, field: &str| -> String {
        stage_of(&run, id)[field].as_str().unwrap().to_string()
    };
    assert_eq!(
        stage(&runs[0], "train", "digest"),
        stage(&runs[1], "train", "digest")
    );
    assert_eq!(
        stage(&runs[0], "eval", "key"),
        stage(&runs[1], "eval", "key")
    );
}

#[test]
fn a_stage_that_seeds_while_another_builds_its_net_waits_until_that_net_is_drawn() {
    // burn draws initial weights from one process-wide generator, lazily;
    // two stages on two threads (`--jobs 2`) used to interleave their
    // draws, so a stage's weights — under a key that promises them —
    // depended on timing. Here the second stage seeds while the first is
    // between seeding and drawing.
    use burn::tensor::Device;
    use exp::models::{AttrNet, AttrNetConfig};
    use exp::stages::fresh;
    let device = Device::flex().autodiff();
    let build = || AttrNetConfig::new(exp::spec::Net::Snet3, 3).init(32, &device);
    let weights = |net: &AttrNet| {
        net.fc_weight
            .val()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let alone = weights(&fresh(&device, 1, build));
    let barrier = std::sync::Barrier::new(2);
    let beside_another = std::thread::scope(|s| {
        let first = s.spawn(|| {
            fresh(&device, 1, || {
                barrier.wait();
                std::thread::sleep(std::time::Duration::from_millis(200));
                build()
            })
        });
        s.spawn(|| {
            barrier.wait();
            fresh(&device, 2, build)
        });
        weights(&first.join().unwrap())
    });
    assert_eq!(beside_another, alone);
}
