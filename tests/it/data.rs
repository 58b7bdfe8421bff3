//! Real data layouts (CelebA, CUB-200) read from fixtures in their formats.

#[allow(unused_imports)]
use super::common::*;
#[allow(unused_imports)]
use std::path::{Path, PathBuf};
#[allow(unused_imports)]
use std::process::Command;

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
fn birds_table_2_pipeline_and_the_real_cub_reader() {
    let env = Env::new("");
    for file in ["cub_mnl.toml", "cub_common.toml"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("experiments")
                .join(file),
            env.path().join(file),
        )
        .unwrap();
    }
    let mut args = vec!["run", "cub_mnl.toml", "--json"];
    args.extend_from_slice(TINY_BIRDS);
    // The pretrained start (the face specs' one), as small.
    args.extend_from_slice(&[
        "-s",
        "stage.pretrain-data.image-size=32",
        "-s",
        "stage.pretrain-data.train-images=40",
        "-s",
        "stage.pretrain-data.val-images=10",
        "-s",
        "stage.pretrain-data.test-images=8",
        "-s",
        "stage.pretrain.epochs=1",
    ]);
    let out = env.exp(&args);
    assert!(out.status.success(), "{}", text(&out));
    // The spec sweeps three seeds; look at the first.
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    let run = runs[0].clone();
    let stage = |id: &str| stage_of(&run, id).clone();
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
