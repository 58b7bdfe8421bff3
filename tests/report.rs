//! Reports over sweeps: seeds of one configuration are pooled, different
//! configurations never.

mod common;

use common::{Env, text};

const TINY: &str = r#"
[experiment]
name = "tiny"
seed = 3

[data]
image-size = 32
train-images = 64
val-images = 16
test-images = 16

[train]
epochs = 1
batch-size = 16
lr = 0.01

[[stage]]
id = "train"
kind = "train"

[[stage]]
id = "eval"
kind = "evaluate"
model = "train"
"#;

#[test]
fn a_sweep_report_gives_each_configuration_its_own_mean() {
    let env = Env::new(TINY);
    let out = env.exp(&[
        "run",
        "spec.toml",
        "-s",
        "train.lr=0.1,0.01",
        "-s",
        "experiment.seed=1,2",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.len(), 4);
    let sweep = runs[0]["sweep"].as_str().unwrap();
    let out = env.exp(&["report", sweep, "--name", "sweep"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/sweep/index.md")).unwrap();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("| eval ") || l.contains("| eval|"))
        .filter(|l| l.contains("train.lr="))
        .collect();
    assert_eq!(rows.len(), 2, "one row per learning rate:\n{md}");
    for lr in ["train.lr=0.1 ", "train.lr=0.01 "] {
        let row = rows
            .iter()
            .find(|r| r.contains(lr))
            .unwrap_or_else(|| panic!("{lr}:\n{md}"));
        assert!(row.contains("(n=2)"), "two seeds each: {row}");
    }
    assert!(!md.contains("(n=4)"), "never pooled over both rates:\n{md}");
}
