//! Epoch checkpoints: a training stage killed mid-way resumes from its last
//! checkpoint and ends bit for bit where an uninterrupted run ends.

use std::time::{Duration, Instant};

use super::common::{Env, LONG, stage_of, text};

/// The deepest `state.json` under the cache's checkpoints, and its epochs.
fn epochs_checkpointed(env: &Env) -> u64 {
    let root = env.path().join("results/cache/checkpoints");
    let Ok(keys) = std::fs::read_dir(&root) else {
        return 0;
    };
    keys.flatten()
        .filter_map(|k| std::fs::read(k.path().join("train/state.json")).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter_map(|v| v["epochs_done"].as_u64())
        .max()
        .unwrap_or(0)
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
        let mut run = env.cmd(&["run", "spec.toml"]).spawn().unwrap();
        let start = Instant::now();
        while epochs_checkpointed(&env) < epochs {
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
