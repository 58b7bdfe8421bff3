//! End-to-end tests of the `exp` binary on tiny synthetic configurations.
//! Each test works in its own temp dir (results, cache, specs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(spec: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.toml"), spec).unwrap();
        Env { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_exp"));
        c.current_dir(self.path())
            .args(args)
            .env_remove("EXP_CACHE_DIR")
            .env_remove("EXP_RESULTS_DIR");
        c
    }
    fn exp(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// `(stage, status)` of every stage in the latest run.
    fn statuses(&self) -> Vec<(String, String)> {
        let out = self.exp(&["show", "tiny", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["stages"]
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

fn all(statuses: &[(String, String)], want: &str) -> bool {
    statuses.iter().all(|(_, s)| s == want)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

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
    assert!(all(&env.statuses(), "ran"), "{:?}", env.statuses());

    let second = env.exp(&["run", "spec.toml"]);
    assert!(second.status.success());
    assert!(
        all(&env.statuses(), "cached"),
        "no stage executes on a rerun: {:?}",
        env.statuses()
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
    assert!(all(&env.statuses(), "ran"), "{:?}", env.statuses());

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
    let st = env.statuses();
    assert_eq!(st[1], ("train".into(), "ran".into()));
}

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
    let st = env.statuses();
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

/// Overrides that shrink the paper specs to seconds.
const TINY_PAPER: &[&str] = &[
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

fn copy_specs(env: &Env) {
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

#[test]
fn every_paper_stage_kind_runs_on_a_tiny_config() {
    let env = Env::new("");
    copy_specs(&env);
    let mut args = vec!["run", "block_baseline.toml", "--json"];
    args.extend_from_slice(TINY_PAPER);
    let out = env.exp(&args);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: std::collections::BTreeSet<&str> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for k in [
        "generate-data",
        "train-frl",
        "localize",
        "compress",
        "train-parts",
        "train-fusion",
        "finetune-paw",
        "evaluate",
    ] {
        assert!(kinds.contains(k), "kind {k} missing from {kinds:?}");
    }
    assert!(
        run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "ran"),
        "{run:#}"
    );
    let block_run = run.clone();
    // Part-only, Whole-only and PaW: one scored row each.
    for stage in ["eval-part", "eval-whole", "eval-paw", "eval-blocks"] {
        let s = run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == stage)
            .unwrap();
        let acc = s["summary"]["mean_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{stage}: {acc}");
    }
    // paw.toml shares every stage it has with block_baseline.toml: all cached.
    let mut args = vec!["run", "paw.toml", "--json"];
    args.extend_from_slice(TINY_PAPER.split_at(TINY_PAPER.len() - 8).0);
    let out = env.exp(&args);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "cached"),
        "{run:#}"
    );
    // The report's tables hold the same numbers as the evaluations' Parquet.
    let run = block_run;
    let out = env.exp(&["report", run["id"].as_str().unwrap(), "--name", "paper"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/paper/index.md")).unwrap();
    for t in ["Table 5:", "FRL patches vs 4x4 blocks"] {
        assert!(md.contains(t), "{t} missing:\n{md}");
    }
    let paw = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "eval-paw")
        .unwrap();
    let cell = format!(
        "{:.2}",
        100.0 * paw["summary"]["mean_accuracy"].as_f64().unwrap()
    );
    let avg = md.lines().find(|l| l.starts_with("| Average")).unwrap();
    assert!(avg.contains(&cell), "{avg} lacks {cell}");
    for f in ["rsl.png", "arl.png", "attributes.png", "curves.png"] {
        assert!(
            env.path().join("reports/paper/figures").join(f).exists(),
            "{f}"
        );
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&env.exp(&["claims", "--json"]).stdout).unwrap();
    let paw = claims
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["spec"] == "paw")
        .unwrap();
    // Runs with overrides beyond the seed are another experiment: no evidence.
    assert_eq!(paw["seeds"], 0, "{paw}");
    assert_eq!(paw["verdict"], "missing", "{paw}");

    // Tables 1 and 3 come from the ablation and compression specs.
    let base = &TINY_PAPER[..24]; // data, [train] and the pretrained start
    let mut ids = Vec::new();
    for spec in ["ablation_mnl.toml", "compression.toml"] {
        let mut args = vec!["run", spec, "--json"];
        args.extend_from_slice(base);
        let out = env.exp(&args);
        assert!(out.status.success(), "{}", text(&out));
        let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(run["id"].as_str().unwrap().to_string());
    }
    let out = env.exp(&["report", &ids[0], &ids[1], "--name", "tables"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/tables/index.md")).unwrap();
    let row = |prefix: &str| md.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(
        row("| Without MNL | Loc. Branch |")
            + row("| MNL | Classif. Branch |")
            + row("| MNL | Loc. Branch |"),
        3,
        "{md}"
    );
    // Table 3's four rows, plus SNet3's row in the paper-only Table 4.
    assert_eq!(
        row("| TNet |") + row("| SNet1 |") + row("| SNet2 |") + row("| SNet3 |"),
        5,
        "{md}"
    );
    assert!(
        !md.contains("(n=2)"),
        "one cache entry shared by two specs counts once:\n{md}"
    );
}

#[test]
fn real_celeba_layout_is_read_cropped_and_fingerprinted() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml", "--json"]).status.success());
    // Treat the generated set as a user's CelebA copy on disk.
    let out = env.exp(&["show", "tiny", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["stages"][0]["key"].as_str().unwrap();
    let generated = env
        .path()
        .join("results/cache")
        .join(&key[..2])
        .join(key)
        .join("celeba");
    let copy = env.path().join("mycelebA");
    copy_dir(&generated, &copy);
    // Real CelebA has no drawn regions: localize scores its landmarks instead.
    std::fs::remove_file(copy.join("Anno/list_attr_regions.txt")).unwrap();
    let spec =
        TINY.replace(
            "[data]\n",
            "[data]\ndataset = \"celeba\"\nroot = \"mycelebA\"\ncrop = \"bbox\"\n",
        )
        .replace(
            "train-images = 64\nval-images = 16\ntest-images = 16\n",
            "train-images = 40\n",
        ) + "\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\n";
    std::fs::write(env.path().join("real.toml"), spec).unwrap();
    let out = env.exp(&["run", "real.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["stages"][0]["kind"], "read-data");
    assert_eq!(run["stages"][0]["summary"]["test"], 16);
    assert!(
        run["stages"][2]["summary"]["mean_accuracy"]
            .as_f64()
            .is_some()
    );
    let pointing = run["stages"][3]["summary"]["pointing_game"]
        .as_f64()
        .expect("landmark pointing game");
    assert!((0.0..=1.0).contains(&pointing));
    assert!(
        run["stages"][3]["summary"]["maxboxacc"].is_null(),
        "no boxes to score against"
    );
    // A file that changes no pixel (class names, notes) still changes the
    // data's fingerprint, and now the downstream keys too: nothing stale.
    std::fs::write(copy.join("Anno/notes.txt"), "relabelled by hand\n").unwrap();
    let out = env.exp(&["run", "real.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rerun: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = rerun["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == "ran"), "{statuses:?}");
    // Editing one image changes the fingerprint: everything reruns.
    std::fs::write(
        copy.join("Img/img_celeba/000001.jpg"),
        std::fs::read(copy.join("Img/img_celeba/000002.jpg")).unwrap(),
    )
    .unwrap();
    let plan = text(&env.exp(&["plan", "real.toml"]));
    assert!(
        plan.lines().filter(|l| l.contains("to run")).count() >= 3,
        "{plan}"
    );
    // A missing image is an error naming it.
    std::fs::remove_file(copy.join("Img/img_celeba/000003.jpg")).unwrap();
    let out = env.exp(&["run", "real.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("000003.jpg"), "{}", text(&out));
    // … or, when asked, skipped and counted.
    let out = env.exp(&["run", "real.toml", "-s", "data.skip-missing=true", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["stages"][0]["summary"]["skipped_missing"], 1);
}

#[test]
fn training_can_start_from_user_weights() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&env.exp(&["show", "tiny", "--json"]).stdout).unwrap();
    let key = v["stages"][1]["key"].as_str().unwrap();
    std::fs::copy(
        env.path()
            .join("results/cache")
            .join(&key[..2])
            .join(key)
            .join("model.bpk"),
        env.path().join("start.bpk"),
    )
    .unwrap();
    std::fs::write(
        env.path().join("init.toml"),
        TINY.replace(
            "kind = \"train\"\n",
            "kind = \"train\"\ninit = \"start.bpk\"\n",
        ),
    )
    .unwrap();
    let out = env.exp(&["run", "init.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["stages"][1]["status"], "ran");
    assert_eq!(
        run["stages"][1]["key_inputs"]["params"]["init"]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    // Other weights, same path: a new key.
    std::fs::write(env.path().join("start.bpk"), b"not weights").unwrap();
    let plan = text(&env.exp(&["plan", "init.toml"]));
    assert!(plan.contains("params changed: init"), "{plan}");
    let out = env.exp(&["run", "init.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("start.bpk"), "{}", text(&out));
    std::fs::remove_file(env.path().join("start.bpk")).unwrap();
    let out = env.exp(&["plan", "init.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("`stage[0].init`: cannot read"),
        "{}",
        text(&out)
    );
}

fn copy_dir(from: &Path, to: &Path) {
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

#[test]
fn report_and_compare_over_a_tiny_sweep() {
    let env = Env::new(
        &TINY
            .replace(
                "name = \"tiny\"",
                "name = \"tiny\"\ntitle = \"<script>alert(1)</script>\"",
            )
            .replace("lr = 0.01", "lr = 0.01\n\n[sweep]\nseeds = [1, 2]"),
    );
    let out = env.exp(&["run", "spec.toml", "-s", "train.lr=0.01,0.02"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sweep point 4/4"), "{}", text(&out));
    let ls: serde_json::Value = serde_json::from_slice(&env.exp(&["ls", "--json"]).stdout).unwrap();
    let runs = ls.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    // The run index: one row per run and stage, in Parquet.
    let index = std::fs::read(env.path().join("results/runs/index.parquet")).unwrap();
    assert_eq!(&index[..4], b"PAR1");
    let sweep = runs[0]["sweep"].as_str().unwrap();
    assert_eq!(
        text(&env.exp(&["ls", "--sweep", sweep]))
            .matches("-tiny-")
            .count(),
        4
    );

    let out = env.exp(&["report", "spec.toml", "--name", "tiny-report"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = env.path().join("reports/tiny-report");
    for f in [
        "index.md",
        "index.html",
        "figures/curves.png",
        "figures/curves.svg",
        "figures/attributes.png",
        "figures/attributes.svg",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let md = std::fs::read_to_string(dir.join("index.md")).unwrap();
    // The spec stands for its own sweep points (2 seeds at its lr), not the -s sweep.
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| 2") && l.contains("-tiny-"))
            .count(),
        2,
        "{md}"
    );
    let mut args = vec!["report", "--name", "all"];
    args.extend(runs.iter().map(|r| r["id"].as_str().unwrap()));
    assert!(env.exp(&args).status.success());
    let md_all = std::fs::read_to_string(env.path().join("reports/all/index.md")).unwrap();
    assert_eq!(
        md_all
            .lines()
            .filter(|l| l.starts_with("| 2") && l.contains("-tiny-"))
            .count(),
        4,
        "{md_all}"
    );
    // The evaluations table aggregates the spec's two seeds: mean ± sample std.
    let accs: Vec<f64> = runs
        .iter()
        .filter(|r| {
            r["point"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "train.lr=0.01")
        })
        .map(|r| 100.0 * r["stages"][2]["summary"]["mean_accuracy"].as_f64().unwrap())
        .collect();
    let mean = (accs[0] + accs[1]) / 2.0;
    let std = ((accs[0] - mean).powi(2) + (accs[1] - mean).powi(2)).sqrt();
    let cell = format!("{mean:.2} ± {std:.2} (n=2)");
    assert!(
        md.lines()
            .any(|l| l.starts_with("| eval | train | loc | test |") && l.contains(&cell)),
        "{cell} not in\n{md}"
    );

    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let out = env.exp(&["compare", ids[3], ids[2], "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let cmp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changed: Vec<&String> = cmp["changed"].as_object().unwrap().keys().collect();
    // Runs 1 and 2 of the sweep differ only in the seed, which every stage records.
    assert!(changed.iter().all(|k| k.ends_with("seed")), "{changed:?}");
    assert!(
        changed.contains(&&"seed".to_string())
            && changed.contains(&&"stages.train.config.seed".to_string()),
        "{changed:?}"
    );
    assert!(
        cmp["deltas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["stage"] == "eval")
    );
}

#[test]
fn a_failed_stage_stops_only_its_dependents() {
    // `wild` diverges (NaN loss); `train` and `eval` are independent of it.
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"wild\"\nkind = \"train\"\nlr = 1e12\n\n[[stage]]\nid = \"eval-wild\"\nkind = \"evaluate\"\nmodel = \"wild\"\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let st: std::collections::BTreeMap<String, String> = env.statuses().into_iter().collect();
    assert_eq!(st["train"], "ran");
    assert_eq!(st["eval"], "ran");
    assert_eq!(st["wild"], "failed");
    assert_eq!(st["eval-wild"], "skipped");
    let out = text(&out);
    assert!(
        out.contains("loss became NaN") || out.contains("loss became inf"),
        "{out}"
    );
    assert!(
        out.contains("upstream stage `wild` did not finish"),
        "{out}"
    );
    // Nothing of the failed stage is cached; the good stages are.
    let again = env.exp(&["run", "spec.toml"]);
    assert_eq!(again.status.code(), Some(1));
    let st: std::collections::BTreeMap<String, String> = env.statuses().into_iter().collect();
    assert_eq!(
        (
            st["train"].as_str(),
            st["eval"].as_str(),
            st["wild"].as_str()
        ),
        ("cached", "cached", "failed")
    );
}

/// cub_mnl.toml shrunk to seconds: 4 classes, 32 px, one epoch.
const TINY_BIRDS: &[&str] = &[
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

#[test]
fn birds_table_2_pipeline_and_the_real_cub_reader() {
    let env = Env::new("");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/cub_mnl.toml"),
        env.path().join("cub_mnl.toml"),
    )
    .unwrap();
    let mut args = vec!["run", "cub_mnl.toml", "--json"];
    args.extend_from_slice(TINY_BIRDS);
    let out = env.exp(&args);
    assert!(out.status.success(), "{}", text(&out));
    // The spec sweeps three seeds; look at the first.
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    let run = runs[0].clone();
    let stage = |id: &str| {
        run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    let entry = |id: &str| {
        let key = stage(id)["key"].as_str().unwrap().to_string();
        env.path().join("results/cache").join(&key[..2]).join(key)
    };
    // CUB's layout, 40 + 12 images; every 10th training image is val.
    let cub = entry("data").join("cub");
    assert_eq!(
        std::fs::read_to_string(cub.join("images.txt"))
            .unwrap()
            .lines()
            .count(),
        52
    );
    assert_eq!(
        std::fs::read_to_string(cub.join("parts/parts.txt"))
            .unwrap()
            .lines()
            .count(),
        15
    );
    // One CAM box per image, turned into one crop per image.
    assert_eq!(
        std::fs::read_to_string(entry("loc").join("cam_boxes.tsv"))
            .unwrap()
            .lines()
            .count(),
        53
    );
    assert_eq!(
        std::fs::read_to_string(entry("crop").join("crops.tsv"))
            .unwrap()
            .lines()
            .count(),
        53
    );
    assert_eq!(stage("crop-gt")["summary"]["boxes"], "annotated");
    let loc = stage("loc")["summary"].clone();
    for k in ["pointing_game", "maxboxacc"] {
        assert!(
            (0.0..=1.0).contains(&loc[k].as_f64().unwrap()),
            "{k}: {loc}"
        );
    }
    for id in ["eval-plain", "eval-mnl", "eval-crop-loc", "eval-gt-mnl"] {
        let s = stage(id)["summary"].clone();
        assert_eq!(s["metric"], "top1", "{s}");
        assert_eq!(s["images"], 12, "{s}");
        assert!((0.0..=1.0).contains(&s["mean_accuracy"].as_f64().unwrap()));
    }
    let out = env.exp(&["report", run["id"].as_str().unwrap(), "--name", "birds"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/birds/index.md")).unwrap();
    let crop_mnl = format!(
        "{:.2}",
        100.0
            * stage("eval-crop-mnl")["summary"]["mean_accuracy"]
                .as_f64()
                .unwrap()
    );
    assert!(
        md.lines()
            .any(|l| l.starts_with("| MNL on crop | Classif. Branch | ")
                && l.contains(&crop_mnl)
                && l.ends_with("| 75.76 |")),
        "{md}"
    );
    assert!(!md.contains("Table 1:"), "bird runs are not Table 1:\n{md}");

    // The same files as a user's CUB-200-2011 copy: read, cropped to the
    // annotated boxes, first 3 classes only.
    copy_dir(&cub, &env.path().join("mycub"));
    let real = "[experiment]\nname = \"tiny\"\n\n[data]\ndataset = \"cub200\"\nroot = \"mycub\"\ncrop = \"bbox\"\nclasses = 3\nimage-size = 32\n\n[train]\nepochs = 1\nmaps = 2\n\n[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\nwidth = 0.25\nmnl-hidden = 16\n\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"frl\"\n";
    std::fs::write(env.path().join("real.toml"), real).unwrap();
    let out = env.exp(&["run", "real.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["stages"][0]["kind"], "read-data");
    assert_eq!(
        run["stages"][0]["summary"]["test"], 9,
        "3 of 4 classes' 12 test images"
    );
    assert_eq!(run["stages"][2]["summary"]["images"], 9);
    // A malformed line is an error with file, line and text.
    let labels = env.path().join("mycub/image_class_labels.txt");
    let text_before = std::fs::read_to_string(&labels).unwrap();
    std::fs::write(&labels, text_before.replacen("\n", "\n3 x\n", 1)).unwrap();
    let out = env.exp(&["run", "real.toml", "-s", "data.image-size=48"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("image_class_labels.txt:2: expected `<image_id> <class_id>`")
            || text(&out).contains("image_class_labels.txt:2: class must be"),
        "{}",
        text(&out)
    );
}

#[test]
fn crop_data_on_faces_and_what_a_stage_cannot_do() {
    // Faces cropped to their annotated boxes are a data set like any other.
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"faces\"\nkind = \"crop-data\"\nexpand = 1.2\n\n[[stage]]\nid = \"eval-crop\"\nkind = \"evaluate\"\ndata = \"faces\"\nmodel = \"train\"\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let crop = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "faces")
        .unwrap();
    assert_eq!(crop["summary"]["boxes"], "annotated");
    assert_eq!(crop["summary"]["images"], 96);
    // CAM boxes come only from a localize stage on single-label data.
    let bad = format!(
        "{spec}\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\n\n[[stage]]\nid = \"cam\"\nkind = \"crop-data\"\nregions = \"loc\"\n"
    );
    std::fs::write(env.path().join("bad.toml"), bad).unwrap();
    let out = env.exp(&["run", "bad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("`regions` must be a `localize` stage on single-label data"),
        "{}",
        text(&out)
    );
    // bf16 needs libtorch: the flex CPU backend says so instead of silently computing fp32.
    let out = env.exp(&["run", "spec.toml", "-s", "train.precision=bf16"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("precision = \"bf16\" needs a libtorch device"),
        "{}",
        text(&out)
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
        run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()[field]
            .as_str()
            .unwrap()
            .to_string()
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
