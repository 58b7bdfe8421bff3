//! Bad specs and arguments: exit 2 with the file, line and key.

#[allow(unused_imports)]
use super::common::*;
#[allow(unused_imports)]
use std::path::{Path, PathBuf};
#[allow(unused_imports)]
use std::process::Command;

#[test]
fn bad_spec_exits_2_with_location() {
    let env = Env::new(&TINY.replace("lr = 0.01", "lr = 0.01\nlearning-rate = 3"));
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "spec.toml:16:1: `train.learning-rate`: unknown field `learning-rate`, expected one of"
        ),
        "{err}"
    );

    let env = Env::new(&TINY.replace("model = \"train\"", "model = \"eval\""));
    let out = env.exp(&["plan", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("spec.toml:22:1: stages form a cycle: eval -> eval"),
        "{}",
        text(&out)
    );

    // An edge between incompatible kinds, located at the stage's table.
    let env = Env::new(&TINY.replace("model = \"train\"", "model = \"data\""));
    let out = env.exp(&["plan", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("spec.toml:22:1: stage `eval` has `model = \"data\"`, a `generate-data` stage; `model` must be one of `train`"),
        "{}",
        text(&out)
    );

    // An ambiguous run-id prefix says so.
    let env = Env::new(TINY);
    assert!(
        env.exp(&["run", "spec.toml", "-s", "train.lr=0.01,0.02"])
            .status
            .success()
    );
    let out = env.exp(&["show", "20"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("`20` matches 2 runs; give more of the run id"),
        "{}",
        text(&out)
    );
}

#[test]
fn completions_know_every_subcommand() {
    let env = Env::new("");
    let out = env.exp(&["completions", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "plan", "ls", "show", "report", "ui", "gc", "verify"] {
        assert!(
            script.contains(&format!("exp__subcmd__{sub}")),
            "{sub} missing"
        );
    }
    assert_eq!(env.exp(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn models_print_json_for_scripts() {
    let env = Env::new("");
    let out = env.exp(&["models", "--json", "--attributes", "10"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nets: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["net"].as_str().unwrap())
        .collect();
    assert_eq!(nets, ["tnet", "snet1", "snet2", "snet3", "paw"]);
    assert!(v[0]["params"].as_u64().unwrap() > v[3]["params"].as_u64().unwrap());
}
