//! Reports over sweeps: seeds of one configuration are pooled, different
//! configurations never.

use super::common::{Env, TINY, text};

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
    // The spec stands for every configuration of it that ran: its own
    // sweep points and the `-s` ones, grouped by their overrides.
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| 2") && l.contains("-tiny-"))
            .count(),
        4,
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
    // The evaluations table aggregates each configuration's two seeds: mean ± sample std.
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
        md.lines().any(
            |l| l.starts_with("| train.lr=0.01 | eval | train | loc | test |") && l.contains(&cell)
        ),
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
fn a_spec_report_includes_runs_made_with_overrides_grouped_by_them() {
    let env = Env::new(TINY);
    let out = env.exp(&[
        "run",
        "spec.toml",
        "-s",
        "train.lr=0.1,0.01",
        "-s",
        "experiment.seed=1,2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.exp(&["report", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/tiny/index.md")).unwrap();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("| eval ") && l.contains("train.lr="))
        .collect();
    assert_eq!(rows.len(), 2, "{md}");
    assert!(rows.iter().all(|r| r.contains("(n=2)")), "{md}");
}

#[test]
fn cam_figures_are_enlarged_with_a_panel_per_attribute_and_a_colour_scale() {
    let spec = format!("{TINY}\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\n");
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.exp(&["report", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let figures = env.path().join("reports/tiny/figures");
    let cams: Vec<_> = std::fs::read_dir(&figures)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("cam_"))
        .collect();
    assert!(!cams.is_empty(), "no CAM figure in {}", figures.display());
    let md = std::fs::read_to_string(env.path().join("reports/tiny/index.md")).unwrap();
    let attributes = md
        .lines()
        .find(|l| l.contains("Figure 4: CAM heatmaps (image, then "))
        .unwrap_or_else(|| panic!("{md}"))
        .split_once("then ")
        .unwrap()
        .1
        .matches(", ")
        .count()
        + 1;
    // The image and one 160 px panel per attribute; a head and a foot for
    // the names and the colour scale.
    let (w, h) = read_png_size(&cams[0]);
    assert_eq!(w, 160 * (attributes as u32 + 1), "{}", cams[0].display());
    assert!(h > 160 + 40, "{h}");
}

/// Width and height from a PNG's IHDR chunk.
fn read_png_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn a_spec_report_keeps_runs_made_before_a_stage_was_added_as_claims_do() {
    let env = Env::new(TINY);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let spec = env.path().join("spec.toml");
    let before = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        format!("{before}\n[[stage]]\nid = \"more\"\nkind = \"evaluate\"\nmodel = \"train\"\nsplit = \"val\"\n"),
    )
    .unwrap();
    let out = env.exp(&["report", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("report of 1 run(s)"), "{}", text(&out));
    // A stage the run ran, changed: the run is another experiment.
    std::fs::write(&spec, before.replace("epochs = 1", "epochs = 2")).unwrap();
    let out = env.exp(&["report", "spec.toml"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("differ from the spec as it is now"),
        "{}",
        text(&out)
    );
}

#[test]
fn claims_leave_out_runs_of_a_paper_spec_edited_since() {
    // A tiny spec under a paper spec's name, so the claims read it.
    let claim = "\n[[stage]]\nid = \"val\"\nkind = \"evaluate\"\nmodel = \"train\"\nsplit = \"val\"\n\n[[claim]]\nname = \"test beats val\"\nbetter = \"eval\"\nthan = \"val\"\n";
    let env = Env::new(&format!(
        "{}{claim}",
        TINY.replace("name = \"tiny\"", "name = \"paw\"")
    ));
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let used = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["claims", "--json"];
        args.extend_from_slice(extra);
        let out = env.exp(&args);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let before = used(&[]);
    assert_eq!(
        before["runs"]["paw"].as_array().unwrap().len(),
        1,
        "{before}"
    );
    assert_eq!(before["skipped"], serde_json::json!([]));

    // Adding a stage keeps the run; changing one it ran does not.
    let spec = env.path().join("spec.toml");
    let text_ = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text_}\n[[stage]]\nid = \"more\"\nkind = \"evaluate\"\nmodel = \"train\"\nsplit = \"val\"\n")).unwrap();
    assert_eq!(used(&[])["runs"]["paw"].as_array().unwrap().len(), 1);
    std::fs::write(&spec, text_.replace("epochs = 1", "epochs = 2")).unwrap();
    let after = used(&[]);
    // No run is evidence any more (the claim has no runs to list).
    assert!(
        after["runs"]["paw"].as_array().is_none_or(|a| a.is_empty()),
        "{after}"
    );
    let why = after["skipped"][0]["why"].as_str().unwrap();
    assert!(why.contains("now differs: stage `train`"), "{why}");
    assert_eq!(
        used(&["--any-spec"])["runs"]["paw"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn localisation_is_never_pooled_across_configurations() {
    let spec = format!("{TINY}\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\n");
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml", "-s", "train.lr=0.1,0.01"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.exp(&["report", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/tiny/index.md")).unwrap();
    let table = md
        .split("### Localisation")
        .nth(1)
        .unwrap_or_else(|| panic!("no localisation table:\n{md}"));
    assert!(table.contains("| configuration | attribute |"), "{table}");
    assert!(
        table.contains("| train.lr=0.1 |") && table.contains("| train.lr=0.01 |"),
        "{table}"
    );
    assert!(
        !table.contains("| 2 |"),
        "one run per configuration, never pooled:\n{table}"
    );
}

#[test]
fn a_report_plots_each_claims_interval_once_two_seeds_give_one() {
    let claim = "\n[[stage]]\nid = \"val\"\nkind = \"evaluate\"\nmodel = \"train\"\nsplit = \"val\"\n\n[[claim]]\nname = \"test beats val\"\nbetter = \"eval\"\nthan = \"val\"\n";
    let env = Env::new(&format!("{TINY}{claim}"));
    let figure = env.path().join("reports/tiny/figures/claims.png");
    // One seed: no interval, so no figure.
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(env.exp(&["report", "spec.toml"]).status.success());
    assert!(!figure.exists());
    let out = env.exp(&["run", "spec.toml", "-s", "experiment.seed=4"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.exp(&["report", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(figure.exists(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/tiny/index.md")).unwrap();
    assert!(md.contains("](figures/claims.png)"), "{md}");
}

#[test]
fn a_claim_added_to_the_spec_after_its_runs_judges_them() {
    let stage =
        "\n[[stage]]\nid = \"val\"\nkind = \"evaluate\"\nmodel = \"train\"\nsplit = \"val\"\n";
    let env = Env::new(&format!("{TINY}{stage}"));
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let spec = env.path().join("spec.toml");
    let before = std::fs::read_to_string(&spec).unwrap();
    let claim = "\n[[claim]]\nname = \"test beats val\"\nbetter = \"eval\"\nthan = \"val\"\n";
    std::fs::write(&spec, format!("{before}{claim}")).unwrap();
    let out = env.exp(&["claims", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let added = v["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["claim"] == "test beats val")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(added["seeds"], 1, "{added}");
}

#[test]
fn the_runs_table_names_the_exp_build_each_run_ran_on() {
    let env = Env::new(TINY);
    let out = env.exp(&["run", "spec.toml", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let build = run["exp_build"].as_str().unwrap();
    let short = format!(
        "{}{}",
        &build[..build.len().min(10)],
        if build.ends_with("+dirty") {
            "+dirty"
        } else {
            ""
        }
    );
    assert!(
        env.exp(&["report", "spec.toml", "--name", "r"])
            .status
            .success()
    );
    let md = std::fs::read_to_string(env.path().join("reports/r/index.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.contains(run["id"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("no row for the run:\n{md}"));
    assert!(row.contains(&format!("| {short} |")), "{row}");
    assert!(md.contains("| exp build |"), "{md}");
}

#[test]
fn compare_gives_the_pointing_game_delta_of_a_shared_localize_stage() {
    let spec = format!("{TINY}\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"train\"\n");
    let env = Env::new(&spec);
    let out = env.exp(&["run", "spec.toml", "-s", "train.lr=0.1,0.01", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let pointing = |r: &serde_json::Value| {
        let stage = r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "loc")
            .unwrap();
        100.0 * stage["summary"]["pointing_game"].as_f64().unwrap()
    };
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let out = env.exp(&["compare", ids[0], ids[1], "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let loc = &json["localisation"][0];
    assert_eq!(loc["stage"], "loc");
    assert_eq!(loc["run"], ids[1]);
    let (b, v) = (pointing(&runs[0]), pointing(&runs[1]));
    assert!(
        (loc["baseline"].as_f64().unwrap() - b).abs() < 1e-9,
        "{loc}"
    );
    assert!(
        (loc["delta"].as_f64().unwrap() - (v - b)).abs() < 1e-9,
        "{loc}"
    );
    assert!(!loc["attributes"].as_array().unwrap().is_empty(), "{loc}");
    let out = env.exp(&["compare", ids[0], ids[1]]);
    assert!(text(&out).contains("loc ("), "{}", text(&out));
    assert!(
        text(&out).contains("pointing game over local attributes"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_report_never_pools_two_specs_whose_runs_of_one_seed_differ() {
    let env = Env::new(TINY);
    // Another spec, the same seed and stage ids, other data: a diagnostic
    // beside the spec it varies. Its numbers are not a second seed's.
    let other = TINY
        .replace("name = \"tiny\"", "name = \"other\"")
        .replace("train-images = 64", "train-images = 48");
    std::fs::write(env.path().join("other.toml"), other).unwrap();
    for spec in ["spec.toml", "other.toml"] {
        let out = env.exp(&["run", spec]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = env.exp(&["report", "spec.toml", "other.toml", "--name", "both"]);
    assert!(out.status.success(), "{}", text(&out));
    let md = std::fs::read_to_string(env.path().join("reports/both/index.md")).unwrap();
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.contains(" | eval | train | loc | test | "))
        .collect();
    assert_eq!(rows.len(), 2, "one row per spec:\n{md}");
    for name in ["| tiny |", "| other |"] {
        assert!(rows.iter().any(|r| r.starts_with(name)), "{name}:\n{md}");
    }
    assert!(!md.contains("(n=2)"), "never pooled over both specs:\n{md}");
}
