//! Epoch checkpoints: a training stage killed mid-way resumes from its last
//! checkpoint and ends bit for bit where an uninterrupted run ends.

use std::time::{Duration, Instant};

use super::common::{Env, LONG, stage_of, text};

/// The `train` phase's `state.json` files under the cache's checkpoints.
fn states(env: &Env) -> Vec<(std::path::PathBuf, serde_json::Value)> {
    let root = env.path().join("results/cache/checkpoints");
    let Ok(keys) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    // A kill between `save`'s two renames leaves only `train.old`.
    keys.flatten()
        .map(|k| k.path().join("train/state.json"))
        .map(|p| match p.exists() {
            true => p,
            false => old_state(&p),
        })
        .filter_map(|p| Some((p.clone(), std::fs::read(&p).ok()?)))
        .filter_map(|(p, b)| Some((p, serde_json::from_slice(&b).ok()?)))
        .collect()
}

fn old_state(state: &std::path::Path) -> std::path::PathBuf {
    let phase = state.parent().unwrap();
    phase.with_extension("old").join("state.json")
}

/// The deepest checkpoint's epochs.
fn epochs_checkpointed(env: &Env) -> u64 {
    states(env)
        .iter()
        .filter_map(|(_, v)| v["epochs_done"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Runs `spec.toml` and kills it once a checkpoint holds `epochs` epochs.
fn kill_after(env: &Env, epochs: u64) {
    let mut run = env.cmd(&["run", "spec.toml"]).spawn().unwrap();
    let start = Instant::now();
    while epochs_checkpointed(env) < epochs {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after {epochs} epochs"
        );
        assert!(
            run.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    run.kill().unwrap();
    run.wait().unwrap();
}

fn train_stage(env: &Env) -> serde_json::Value {
    stage_of(&env.show("long"), "train").clone()
}

#[test]
fn a_killed_training_resumes_from_its_checkpoint_and_ends_equal() {
    let reference = Env::new(LONG);
    let out = reference.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let want = train_stage(&reference);

    let env = Env::new(LONG);
    // Killed twice: after its second epoch, then (resumed) after its fifth.
    for epochs in [2, 5] {
        kill_after(&env, epochs);
    }

    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let got = train_stage(&env);
    assert_eq!(got["status"], "ran");
    let log = env.stage_log(env.show("long")["id"].as_str().unwrap(), "train");
    assert!(
        log.contains("resuming from its checkpoint after epoch"),
        "{log}"
    );
    // Same key, same bytes, same figures as the run nobody interrupted.
    let ref_log = reference.stage_log(reference.show("long")["id"].as_str().unwrap(), "train");
    assert_eq!(got["summary"], want["summary"], "{log}\n---\n{ref_log}");
    assert_eq!(got["key"], want["key"]);
    assert_eq!(got["digest"], want["digest"]);
    // The checkpoint is gone once the entry is saved.
    assert_eq!(epochs_checkpointed(&env), 0);
}

#[test]
fn a_checkpoint_from_another_build_resumes_and_the_log_names_both_builds() {
    let env = Env::new(LONG);
    kill_after(&env, 2);
    let (path, mut state) = states(&env).pop().expect("a checkpoint");
    let version = text(&env.exp(&["--version"]));
    let this = state["build"]
        .as_str()
        .expect("the writer's build")
        .to_string();
    assert!(
        version.contains(&this[..this.len().min(10)]),
        "{this} vs {version}"
    );
    // As if an older binary had written it.
    state["build"] = "0123456789abcdef".into();
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();

    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = env.stage_log(env.show("long")["id"].as_str().unwrap(), "train");
    assert!(
        log.contains("resuming from its checkpoint after epoch"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "(written by exp build 0123456789abcdef; this is {this})"
        )),
        "{log}"
    );
}
