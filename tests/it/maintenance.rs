//! `exp gc` and `exp verify`.

use std::time::{Duration, Instant};

use super::common::{Env, LONG, TINY, text};

fn gc(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    let out = env.exp(&all);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn keys_of(env: &Env) -> Vec<(String, String)> {
    env.show("tiny")["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["key"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn gc_frees_only_what_no_kept_run_references_and_only_with_apply() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let old = keys_of(&env);
    assert!(
        env.exp(&["run", "spec.toml", "-s", "train.lr=0.5"])
            .status
            .success()
    );
    let new = keys_of(&env);
    // With only the newest run kept, the old train and eval entries go; the
    // data entry both runs share stays.
    let dry = gc(&env, &["--keep-last", "1"]);
    let listed: Vec<&str> = dry["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    let old_only: Vec<&str> = old
        .iter()
        .filter(|(id, _)| id != "data")
        .map(|(_, k)| k.as_str())
        .collect();
    let mut want = old_only.clone();
    want.sort();
    assert_eq!(listed, want);
    assert!(dry["bytes"].as_u64().unwrap() > 0);
    let entry = |k: &str| env.path().join("results/cache").join(&k[..2]).join(k);
    assert!(
        old_only.iter().all(|k| entry(k).exists()),
        "a dry run removes nothing"
    );

    let applied = gc(&env, &["--keep-last", "1", "--apply"]);
    assert_eq!(applied["freed"], dry["bytes"]);
    assert!(old_only.iter().all(|k| !entry(k).exists()));
    assert!(new.iter().all(|(_, k)| entry(k).exists()));
    // Every recorded run keeps its entries by default: nothing more to free.
    assert_eq!(gc(&env, &[])["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn gc_removes_nothing_while_a_run_is_in_progress() {
    let env = Env::new(LONG);
    let mut run = env.cmd(&["run", "spec.toml"]).spawn().unwrap();
    let start = Instant::now();
    while !env.path().join("results/cache/checkpoints").exists() {
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = env.exp(&["gc", "--apply"]);
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("in progress"), "{}", text(&out));
}

#[test]
fn verify_recomputes_a_run_bit_for_bit() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let out = env.exp(&["verify", "tiny"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).matches("identical").count(), 3, "{}", text(&out));
}

#[test]
fn verify_finds_a_flipped_byte_that_size_and_mtime_hide() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    // The rerun hashes every file and memoises its size and mtime.
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let (_, key) = keys_of(&env)
        .into_iter()
        .find(|(id, _)| id == "train")
        .unwrap();
    let file = env
        .path()
        .join("results/cache")
        .join(&key[..2])
        .join(&key)
        .join("model.bpk");
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    // A plain rerun trusts the unchanged size and mtime (the documented memo)...
    let rerun = env.exp(&["run", "spec.toml"]);
    assert!(rerun.status.success());
    assert!(env.statuses("tiny").iter().all(|(_, s)| s == "cached"));
    // ... `exp verify` hashes afresh and says which file differs ...
    let out = env.exp(&["verify", "tiny", "--stage", "train"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("DIFFERS: model.bpk"), "{}", text(&out));
    // ... and told to hash every file, a run recomputes the entry.
    let paranoid = env
        .cmd(&["run", "spec.toml"])
        .env("EXP_REHASH", "1")
        .output()
        .unwrap();
    assert!(paranoid.status.success());
    assert!(
        text(&paranoid).contains("does not match its recorded sha256"),
        "{}",
        text(&paranoid)
    );
    assert_eq!(
        env.statuses("tiny")[1],
        ("train".to_string(), "ran".to_string())
    );
}

#[test]
fn one_thread_or_two_and_any_jobs_give_the_same_bytes() {
    let digests = |threads: &str, jobs: &str| {
        let env = Env::new(TINY);
        let out = env
            .cmd(&["run", "spec.toml", "--jobs", jobs, "--json"])
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["key"].to_string(), s["digest"].to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(digests("1", "1"), digests("2", "3"));
}
