//! The paper's stage kinds end to end on tiny configurations.

#[allow(unused_imports)]
use super::common::*;
#[allow(unused_imports)]
use std::path::{Path, PathBuf};
#[allow(unused_imports)]
use std::process::Command;

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
        let s = stage_of(&run, stage);
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
    let paw = stage_of(&run, "eval-paw");
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
    // Runs with overrides are not among the runs used.
    assert_eq!(claims["runs"]["paw"], serde_json::json!([]), "{claims}");
    let paw = claims["claims"]
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

#[test]
fn a_failed_stage_stops_only_its_dependents() {
    // `boom` fails by design (its program exits 3); `after-boom` needs it;
    // `train` and `eval` are independent of it. (The NaN guard that stops a
    // diverging training is a unit test of `train::fit`.)
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"boom\"\nkind = \"command\"\nrun = [\"python3\", \"-c\", \"import sys; sys.exit(3)\"]\n\n[[stage]]\nid = \"after-boom\"\nkind = \"command\"\nrun = [\"python3\", \"-c\", \"pass\"]\ninputs = {{ up = \"boom\" }}\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let st: std::collections::BTreeMap<String, String> = env.statuses("tiny").into_iter().collect();
    assert_eq!(st["train"], "ran");
    assert_eq!(st["eval"], "ran");
    assert_eq!(st["boom"], "failed");
    assert_eq!(st["after-boom"], "skipped");
    let out = text(&out);
    assert!(out.contains("exited with status 3"), "{out}");
    assert!(
        out.contains("upstream stage `boom` did not finish"),
        "{out}"
    );
    // Nothing of the failed stage is cached; the good stages are.
    let again = env.exp(&["run", "spec.toml"]);
    assert_eq!(again.status.code(), Some(1));
    let st: std::collections::BTreeMap<String, String> = env.statuses("tiny").into_iter().collect();
    assert_eq!(
        (
            st["train"].as_str(),
            st["eval"].as_str(),
            st["boom"].as_str(),
            st["after-boom"].as_str()
        ),
        ("cached", "cached", "failed", "skipped")
    );
}

#[test]
fn a_diverging_training_fails_with_its_loss_and_caches_nothing() {
    let spec = format!("{TINY}\n[[stage]]\nid = \"wild\"\nkind = \"train\"\nlr = 1e12\n");
    let env = Env::new(&spec);
    for _ in 0..2 {
        let out = env.exp(&["run", "spec.toml"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let out = text(&out);
        assert!(
            out.contains("loss became NaN") || out.contains("loss became inf"),
            "{out}"
        );
        let st: std::collections::BTreeMap<String, String> =
            env.statuses("tiny").into_iter().collect();
        assert_eq!(st["wild"], "failed");
    }
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
    let crop = stage_of(&run, "faces");
    assert_eq!(crop["summary"]["boxes"], "annotated");
    assert_eq!(crop["summary"]["images"], 96);
    // CAM boxes come only from a localize stage on single-label data: a plan
    // error at the stage's table, before anything runs.
    let bad = format!(
        "{spec}\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\n\n[[stage]]\nid = \"cam\"\nkind = \"crop-data\"\nregions = \"loc\"\n"
    );
    std::fs::write(env.path().join("bad.toml"), bad).unwrap();
    let out = env.exp(&["run", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("bad.toml:")
            && text(&out).contains(
                "`crop-data` needs one box per image, from a `localize` stage on single-label data"
            ),
        "{}",
        text(&out)
    );
    // bf16 needs libtorch: the flex CPU backend says so instead of silently
    // computing fp32 — before anything runs, naming the stage.
    let out = env.exp(&["run", "spec.toml", "-s", "train.precision=bf16"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("stage `train`: precision = \"bf16\" needs a libtorch device"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_train_stage_can_continue_another_stages_whole_net() {
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"longer\"\nkind = \"train\"\nfrom = \"train\"\nwidth = 0.5\nepochs = 1\n\n[[stage]]\nid = \"eval-longer\"\nkind = \"evaluate\"\nmodel = \"longer\"\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = env.show("tiny");
    let stage = |id: &str| stage_of(&run, id).clone();
    // The upstream net as it was (width 1, not this stage's 0.5), trained on.
    assert_eq!(
        stage("longer")["summary"]["params"],
        stage("train")["summary"]["params"]
    );
    let log = env.stage_log(run["id"].as_str().unwrap(), "longer");
    assert!(
        log.contains("continuing snet3 (width 1) from stage `train`"),
        "{log}"
    );
    assert!(stage("eval-longer")["summary"]["mean_accuracy"].is_number());
}

#[test]
fn run_stage_runs_that_stage_and_its_upstream_only() {
    let env = Env::new(TINY);
    let out = env.exp(&["run", "spec.toml", "--stage", "train"]);
    assert!(out.status.success(), "{}", text(&out));
    let ran: Vec<String> = env.show("tiny")["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, ["data", "train"]);
    assert_eq!(
        env.show("tiny")["spec"]["only"],
        serde_json::json!(["train"])
    );
    // The rest of the spec then reuses what the partial run computed.
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let statuses = env.statuses("tiny");
    assert!(
        statuses.contains(&("train".into(), "cached".into())),
        "{statuses:?}"
    );

    let out = env.exp(&["run", "spec.toml", "--stage", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--stage: no stage `nope`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_localize_stage_can_take_its_peaks_from_the_cam_less_its_training_mean() {
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"raw\"\nkind = \"localize\"\nmodel = \"train\"\n\
         [[stage]]\nid = \"minus\"\nkind = \"localize\"\nmodel = \"train\"\ncam = \"minus-mean\"\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let boxes = |id: &str| {
        let key = stage_of(&run, id)["key"].as_str().unwrap().to_string();
        std::fs::read_to_string(
            env.path()
                .join("results/cache")
                .join(&key[..2])
                .join(&key)
                .join("boxes.tsv"),
        )
        .unwrap()
    };
    // Another map, so other peaks and other patches; scored the same way.
    assert_ne!(boxes("raw"), boxes("minus"));
    assert!(
        stage_of(&run, "minus")["summary"]["pointing_game"].is_number(),
        "{run}"
    );
    let bad = spec.replace("cam = \"minus-mean\"", "cam = \"diff\"");
    let env = Env::new(&bad);
    let out = env.exp(&["run", "spec.toml"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("`stage[3].cam`: unknown value `diff`; allowed: `raw`, `minus-mean`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_birds_localize_stage_with_the_cam_less_its_mean_is_a_plan_error() {
    let birds = TINY.replace(
        "val-images = 16\n",
        "dataset = \"synthetic-birds\"\nclasses = 4\n",
    );
    let spec = format!(
        "{birds}\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\ncam = \"minus-mean\"\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("spec.toml:") && text(&out).contains("is for attribute nets"),
        "{}",
        text(&out)
    );
    let ls: serde_json::Value = serde_json::from_slice(&env.exp(&["ls", "--json"]).stdout).unwrap();
    assert_eq!(ls.as_array().map(Vec::len), Some(0), "nothing ran: {ls}");
}

#[test]
fn a_localize_control_scores_its_own_patches_not_its_cam() {
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"cam\"\nkind = \"localize\"\nmodel = \"train\"\n\
         [[stage]]\nid = \"truth\"\nkind = \"localize\"\nmodel = \"train\"\ncentre = \"truth\"\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (cam, truth) = (
        &stage_of(&run, "cam")["summary"],
        &stage_of(&run, "truth")["summary"],
    );
    // Patches centred on the drawn regions point into them, every one.
    assert_eq!(truth["pointing_game"], 1.0, "{truth}");
    assert!(truth["maxboxacc"].is_null(), "{truth}");
    // The CAM's own localisation is the plain stage's.
    assert!(cam["maxboxacc"].is_number(), "{cam}");
}

#[test]
fn crop_data_centre_box_is_the_same_centred_box_in_every_image() {
    let spec =
        format!("{TINY}\n[[stage]]\nid = \"centre\"\nkind = \"crop-data\"\nbox = \"centre\"\n");
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stage = stage_of(&run, "centre");
    assert_eq!(stage["summary"]["boxes"], "centre");
    let key = stage["key"].as_str().unwrap();
    let crops = std::fs::read_to_string(
        env.path()
            .join("results/cache")
            .join(&key[..2])
            .join(key)
            .join("crops.tsv"),
    )
    .unwrap();
    let boxes: std::collections::BTreeSet<&str> = crops
        .lines()
        .skip(1)
        .map(|l| l.split_once('\t').unwrap().1)
        .collect();
    assert_eq!(boxes.len(), 1, "one box for every image: {boxes:?}");
    let b: Vec<f32> = boxes
        .first()
        .unwrap()
        .split('\t')
        .map(|v| v.parse().unwrap())
        .collect();
    // Centred in the 32 px images.
    assert!(
        (b[0] + b[2] / 2.0 - 16.0).abs() < 1e-3 && (b[1] + b[3] / 2.0 - 16.0).abs() < 1e-3,
        "{b:?}"
    );

    let both = format!("{spec}regions = \"centre\"\n");
    std::fs::write(env.path().join("both.toml"), both).unwrap();
    let out = env.exp(&["run", "both.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`box = \"centre\"` crops without `regions`"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_ensemble_evaluates_members_that_differ_by_seed_offset() {
    let spec = format!(
        "{TINY}\n[[stage]]\nid = \"train-b\"\nkind = \"train\"\nseed-offset = 1\n\n[[stage]]\nid = \"eval-both\"\nkind = \"evaluate\"\nmodel = \"train\"\nensemble = [\"train-b\"]\n"
    );
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = env.show("tiny");
    let stage = |id: &str| stage_of(&run, id).clone();
    assert_ne!(
        stage("train")["digest"],
        stage("train-b")["digest"],
        "another seed, another net"
    );
    let both = stage("eval-both");
    assert_eq!(
        both["key_inputs"]["inputs"]["member-1"],
        stage("train-b")["digest"]
    );
    let acc = both["summary"]["mean_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{both}");
    // The report shows the ensemble as its own row, every member named.
    let out = env.exp(&["report", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/tiny/index.md")).unwrap();
    assert!(md.contains("| eval-both | train + train-b |"), "{md}");

    // A member must be a model; `seed` and `seed-offset` exclude each other.
    for (bad, says) in [
        (
            "ensemble = [\"data\"]",
            "`ensemble[0] = \"data\"`, a `generate-data` stage",
        ),
        ("seed-offset = 1\nseed = 4", "give either `seed`"),
    ] {
        let text_ = if bad.starts_with("ensemble") {
            format!(
                "{TINY}\n[[stage]]\nid = \"e\"\nkind = \"evaluate\"\nmodel = \"train\"\n{bad}\n"
            )
        } else {
            format!("{TINY}\n[[stage]]\nid = \"t\"\nkind = \"train\"\n{bad}\n")
        };
        std::fs::write(env.path().join("bad.toml"), text_).unwrap();
        let out = env.exp(&["run", "bad.toml"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(says), "{}", text(&out));
    }
}

#[test]
fn a_run_records_the_commit_its_exp_was_built_from() {
    let env = Env::new(TINY);
    let version = env.exp(&["--version"]);
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(
        version.starts_with("exp ") && version.contains(" ("),
        "{version}"
    );
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let run = env.show("tiny");
    let build = run["exp_build"].as_str().unwrap().to_string();
    // The short form in `--version` is the record's commit, shortened.
    let short = version
        .trim()
        .rsplit_once(" (")
        .unwrap()
        .1
        .trim_end_matches(')');
    assert!(
        build.starts_with(short.trim_end_matches("+dirty")),
        "{build} vs {short}"
    );
    // The test's folder is no git checkout: `show` says what the binary was built from.
    let shown = text(&env.exp(&["show", "tiny"]));
    assert!(shown.contains(&format!("built from {build}")), "{shown}");
}
