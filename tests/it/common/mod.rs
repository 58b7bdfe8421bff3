//! What the end-to-end tests share: a temp dir with a spec, and `exp` run in it.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A temp dir with `spec.toml` holding `spec`.
    pub fn new(spec: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.toml"), spec).unwrap();
        Env { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_exp"));
        c.current_dir(self.path())
            .args(args)
            .env_remove("EXP_CACHE_DIR")
            .env_remove("EXP_RESULTS_DIR");
        c
    }

    pub fn exp(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// The latest run of experiment `name`, as `exp show --json` prints it.
    pub fn show(&self, name: &str) -> serde_json::Value {
        let out = self.exp(&["show", name, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The log a stage wrote in run `run_id`.
    pub fn stage_log(&self, run_id: &str, stage: &str) -> String {
        let path = self
            .path()
            .join("results/runs")
            .join(run_id)
            .join("logs")
            .join(format!("{stage}.log"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `stage id → status` in the latest run of `name`.
    pub fn statuses(&self, name: &str) -> Vec<(String, String)> {
        self.show(name)["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copy `experiments/<file>` (and `experiments/scripts/`) of this checkout into `env`.
pub fn copy_example(env: &Env, file: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    std::fs::copy(root.join(file), env.path().join(file)).unwrap();
    let scripts = env.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for f in std::fs::read_dir(root.join("scripts")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, scripts.join(f.file_name().unwrap())).unwrap();
    }
}

/// A training stage long enough (8 epochs) to be interrupted after its second.
pub const LONG: &str = r#"
[experiment]
name = "long"
seed = 5

[data]
image-size = 32
train-images = 256
val-images = 32
test-images = 16

[train]
epochs = 8
batch-size = 32
lr = 0.05
lr-schedule = "cosine"
keep = "best"

[[stage]]
id = "train"
kind = "train"
"#;

/// The smallest face pipeline: data, a one-epoch SNet3, its evaluation.
pub const TINY: &str = r#"
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

/// Stage `id` of a run record (`exp run --json`, `exp show --json`).
pub fn stage_of<'a>(run: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    run["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no stage `{id}` in {run}"))
}

/// Whether every stage has status `want`.
pub fn all(statuses: &[(String, String)], want: &str) -> bool {
    statuses.iter().all(|(_, s)| s == want)
}

/// Overrides that shrink the paper specs to seconds.
pub const TINY_PAPER: &[&str] = &[
    "-s",
    "experiment.seed=1",
    "-s",
    "data.image-size=32",
    "-s",
    "data.train-images=48",
    "-s",
    "data.val-images=16",
    "-s",
    "data.test-images=16",
    "-s",
    "train.epochs=1",
    "-s",
    "train.batch-size=16",
    "-s",
    "stage.pretrain-data.image-size=32",
    "-s",
    "stage.pretrain-data.train-images=48",
    "-s",
    "stage.pretrain-data.val-images=16",
    "-s",
    "stage.pretrain-data.test-images=16",
    "-s",
    "stage.pretrain.epochs=1",
    "-s",
    "stage.snet3.hint-epochs=1",
    "-s",
    "stage.parts.epochs=1",
    "-s",
    "stage.parts.part-size=16",
    "-s",
    "stage.fusion.epochs=1",
    "-s",
    "stage.paw.epochs=1",
    "-s",
    "stage.blocks.epochs=1",
    "-s",
    "stage.blocks.part-size=16",
    "-s",
    "stage.blocks-fusion.epochs=1",
    "-s",
    "stage.blocks-paw.epochs=1",
];

pub fn copy_specs(env: &Env) {
    for f in [
        "base.toml",
        "common.toml",
        "paw.toml",
        "block_baseline.toml",
        "ablation_mnl.toml",
        "compression.toml",
    ] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("experiments")
                .join(f),
            env.path().join(f),
        )
        .unwrap();
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// cub_mnl.toml shrunk to seconds: 4 classes, 32 px, one epoch.
pub const TINY_BIRDS: &[&str] = &[
    "-s",
    "data.classes=4",
    "-s",
    "data.image-size=32",
    "-s",
    "data.train-images=40",
    "-s",
    "data.test-images=12",
    "-s",
    "train.epochs=1",
    "-s",
    "train.maps=2",
    "-s",
    "train.batch-size=8",
    "-s",
    "stage.frl.mnl-hidden=16",
    "-s",
    "stage.frl-crop.mnl-hidden=16",
    "-s",
    "stage.frl-gt.mnl-hidden=16",
];
