//! Spec errors name the file, line, column and key, and what is allowed.

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.toml", text);
    let e = load(&p, &[]).unwrap_err().to_string();
    e.replace(&p.display().to_string(), "s.toml")
}

const BASE: &str = "[experiment]\nname = \"t\"\n\n[[stage]]\nid = \"train\"\nkind = \"train\"\n";

#[test]
fn valid_spec_fills_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.toml", BASE);
    let spec = load(&p, &[]).unwrap();
    assert_eq!(spec.stages.len(), 2);
    assert_eq!(spec.stages[0].id, "data");
    let StageConfig::Train(t) = &spec.stages[1].config else {
        panic!()
    };
    assert_eq!(
        (
            t.net,
            t.epochs,
            t.lr,
            t.momentum,
            t.weight_decay,
            t.flip,
            t.width
        ),
        (Net::Snet3, 4, 1e-4, 0.9, 5e-4, true, 1.0)
    );
    assert_eq!(spec.stages[1].inputs["data"], "data");
}

#[test]
fn unknown_key_names_line_and_allowed_keys() {
    let e = err(&format!("{BASE}mnl = true\n"));
    assert_eq!(
        e,
        "s.toml:7:1: `stage[0].mnl`: unknown key `mnl` for kind `train`; allowed keys are `id`, `kind`, `data`, `net`, `width`, `maps`, `epochs`, `batch-size`, `lr`, `momentum`, `weight-decay`, `flip`, `init`, `backbone`, `from`, `precision`, `lr-schedule`, `keep`, `loss-normalization`, `loss-scale`, `grad-clip`, `seed`, `seed-offset`"
    );
    let e = err(&format!("{BASE}epoch = 3\n").replace("kind = \"train\"", "kind = \"train-frl\""));
    assert!(e.starts_with("s.toml:7:1: `stage[0].epoch`: unknown key `epoch` for kind `train-frl`; allowed keys are"), "{e}");
}

#[test]
fn wrong_type_names_key() {
    let e = err("[experiment]\nname = \"t\"\n\n[train]\nepochs = \"three\"\n");
    assert!(
        e.starts_with("s.toml:5:1: `train.epochs`: invalid type: string \"three\", expected u32"),
        "{e}"
    );
}

#[test]
fn bad_value_says_what_is_allowed() {
    assert_eq!(
        err(
            "[experiment]\nname = \"t\"\n\n[train]\nlr = -0.5\n\n[[stage]]\nid = \"a\"\nkind = \"train\"\n"
        ),
        "s.toml:5:1: `train.lr`: must be > 0, got -0.5"
    );
    assert_eq!(
        err(&format!("{BASE}epochs = 0\n")),
        "s.toml:7:1: `stage[0].epochs`: must be a positive integer, got 0"
    );
    assert_eq!(
        err("[experiment]\nname = \"t\"\n\n[[stage]]\nid = \"x\"\nkind = \"trian\"\n"),
        "s.toml:6:1: `stage[0].kind`: unknown stage kind `trian`; known kinds are `generate-data`, `read-data`, `train`, `train-frl`, `localize`, `crop-data`, `compress`, `train-parts`, `train-fusion`, `finetune-paw`, `evaluate`, `predict`, `command`"
    );
}

#[test]
fn toml_syntax_error_has_position() {
    let e = err("[experiment\nname = 1\n");
    assert!(e.starts_with("s.toml:1:"), "{e}");
}

#[test]
fn overrides_are_validated_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.toml", BASE);
    let spec = load(&p, &["train.lr=0.05".into(), "stage.train.epochs=2".into()]).unwrap();
    let StageConfig::Train(t) = &spec.stages[1].config else {
        panic!()
    };
    assert_eq!((t.lr, t.epochs), (0.05, 2));
    let e = load(&p, &["train.lr=-1".into()]).unwrap_err().to_string();
    assert_eq!(
        e,
        "invalid override `-s train.lr=-1`: `train.lr`: must be > 0, got -1"
    );
    let e = load(&p, &["stage.nope.epochs=2".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "invalid override `-s stage.nope.epochs=2`: no stage `nope`; stages are `train`"
    );
}

#[test]
fn extends_merges_tables_and_stages_by_id() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "common.toml",
        &format!("{BASE}\n[train]\nlr = 0.01\nepochs = 3\n"),
    );
    let child = write(
        dir.path(),
        "child.toml",
        "extends = \"common.toml\"\n[experiment]\nname = \"child\"\n\n[train]\nepochs = 5\n\n[[stage]]\nid = \"train\"\nnet = \"snet2\"\n",
    );
    let spec = load(&child, &[]).unwrap();
    assert_eq!(spec.name, "child");
    let StageConfig::Train(t) = &spec.stages[1].config else {
        panic!()
    };
    assert_eq!((t.lr, t.epochs, t.net), (0.01, 5, Net::Snet2));
    // Errors in the child point at the child.
    let bad = write(
        dir.path(),
        "bad.toml",
        "extends = \"common.toml\"\n[train]\nmomentum = 1.5\n",
    );
    assert_eq!(
        load(&bad, &[])
            .unwrap_err()
            .to_string()
            .replace(&dir.path().display().to_string(), "D"),
        "D/bad.toml:3:1: `train.momentum`: must be in [0, 1), got 1.5"
    );
}

#[test]
fn an_error_in_a_stage_of_a_child_spec_points_at_that_stage_in_the_child() {
    // The base's two stages come first in the merged spec, so the child's
    // stages are stage[2] and stage[3] there but [0] and [1] in the file.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "common.toml",
        &format!("{BASE}\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"train\"\n"),
    );
    let child = write(
        dir.path(),
        "child.toml",
        "extends = \"common.toml\"\n\n[[stage]]\nid = \"a\"\nkind = \"train\"\n\n[[stage]]\nid = \"b\"\nkind = \"train\"\nlr = -1.0\n",
    );
    let e = load(&child, &[])
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "D");
    assert!(e.starts_with("D/child.toml:10:1: `stage["), "{e}");
    assert!(e.contains("].lr`"), "{e}");
}

#[test]
fn an_error_in_an_inherited_key_points_at_the_base_even_where_the_child_overrides_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "common.toml",
        &format!("{BASE}\n[[stage]]\nid = \"b\"\nkind = \"train\"\nlr = -1.0\n"),
    );
    let child = write(
        dir.path(),
        "child.toml",
        "extends = \"common.toml\"\n\n[[stage]]\nid = \"b\"\nepochs = 2\n",
    );
    let e = load(&child, &[])
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "D");
    let line = BASE.lines().count() + 5;
    assert!(
        e.starts_with(&format!("D/common.toml:{line}:1: `stage[")),
        "{e}"
    );
    assert!(e.contains("].lr`"), "{e}");
}

#[test]
fn duplicate_ids_are_rejected() {
    let e = err(&format!(
        "{BASE}\n[[stage]]\nid = \"train\"\nkind = \"evaluate\"\nmodel = \"train\"\n"
    ));
    assert_eq!(
        e,
        "s.toml:9:1: `stage[1].id`: duplicate stage id `train` (also stage[0])"
    );
}

#[test]
fn kinds_need_their_references_and_take_paper_defaults() {
    let e = err("[experiment]\nname = \"t\"\n\n[[stage]]\nid = \"c\"\nkind = \"compress\"\n");
    assert_eq!(
        e,
        "s.toml:4:1: `stage[0]`: kind `compress` needs `teacher = \"<stage id>\"`"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "s.toml",
        "[experiment]\nname = \"t\"\n[train]\nlr = 0.01\n[[stage]]\nid = \"f\"\nkind = \"train-frl\"\n[[stage]]\nid = \"fu\"\nkind = \"train-fusion\"\nparts = \"f\"\n",
    );
    let spec = load(&p, &[]).unwrap();
    let StageConfig::TrainFrl(f) = &spec.stages[1].config else {
        panic!()
    };
    assert_eq!(
        (f.train.net, f.train.lr, f.mnl, f.mnl_hidden),
        (Net::Tnet, 0.01, true, 512)
    );
    let StageConfig::TrainFusion(t) = &spec.stages[2].config else {
        panic!()
    };
    assert_eq!(
        t.lr, 0.1,
        "RSL/ARL use the paper's 0.1 unless the stage says otherwise"
    );
}

#[test]
fn sweeps_expand_grid_seeds_and_comma_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "s.toml",
        &format!("{BASE}\n[sweep]\nseeds = [1, 2, 3]\ngrid = {{ \"train.lr\" = [0.1, 0.01] }}\n"),
    );
    let points = load_points(&p, &[]).unwrap();
    assert_eq!(points.len(), 6);
    assert_eq!(points[0].point, vec!["train.lr=0.1", "experiment.seed=1"]);
    assert_eq!(points[5].seed, 3);
    let StageConfig::Train(t) = &points[5].stages[1].config else {
        panic!()
    };
    assert_eq!(t.lr, 0.01);
    // A comma on the command line adds an axis; a fixed value replaces the spec's axis.
    let points = load_points(&p, &["train.epochs=1,2".into(), "train.lr=0.5".into()]).unwrap();
    assert_eq!(points.len(), 6);
    assert!(
        points
            .iter()
            .all(|s| matches!(&s.stages[1].config, StageConfig::Train(t) if t.lr == 0.5))
    );
    assert_eq!(points[1].point, vec!["experiment.seed=2", "train.epochs=1"]);
    let e = load_points(&p, &["train.lr=0.1,-1".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "invalid override `-s train.lr=-1`: `train.lr`: must be > 0, got -1"
    );
}

#[test]
fn random_search_is_seeded_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{BASE}\n[sweep]\nsamples = 3\nsearch-seed = 5\nseeds = [1, 2]\nspace = {{ \"train.lr\" = {{ log-uniform = [1e-3, 1e-1] }}, \"train.batch-size\" = [16, 32], \"train.epochs\" = {{ uniform = [1, 5] }} }}\nselect = \"v\"\n\n[[stage]]\nid = \"v\"\nkind = \"evaluate\"\nmodel = \"train\"\nsplit = \"val\"\n"
    );
    let p = write(dir.path(), "s.toml", &text);
    let a = load_points(&p, &[]).unwrap();
    let b = load_points(&p, &[]).unwrap();
    assert_eq!(a.len(), 6);
    assert_eq!(
        a.iter().map(|s| s.point.clone()).collect::<Vec<_>>(),
        b.iter().map(|s| s.point.clone()).collect::<Vec<_>>()
    );
    for s in &a {
        let StageConfig::Train(t) = &s.stages[1].config else {
            panic!()
        };
        assert!(
            (1e-3..=1e-1).contains(&t.lr)
                && [16, 32].contains(&t.batch_size)
                && (1..=5).contains(&t.epochs),
            "{t:?}"
        );
    }
    assert_eq!(
        a[0].select,
        Some(Selection {
            metric: "mean_accuracy".into(),
            stage: "v".into(),
            maximise: true
        })
    );
    let test_split = write(
        dir.path(),
        "t.toml",
        &format!("{BASE}\n[sweep]\nseeds = [1]\nselect = \"train\"\n"),
    );
    assert!(
        load(&test_split, &[])
            .unwrap_err()
            .to_string()
            .contains("`train` must be an `evaluate` stage with `split = \"val\"`")
    );
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!("{BASE}\n[sweep]\nspace = {{ \"train.lr\" = {{ log-uniform = [0.1, 0.01] }} }}\n"),
    );
    assert!(
        load(&bad, &[]).unwrap_err().to_string().starts_with(
            "D/bad.toml"
                .replace("D", &dir.path().display().to_string())
                .as_str()
        )
    );
}

fn ok(text: &str) -> Spec {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.toml", text);
    load(&p, &[]).unwrap()
}

#[test]
fn training_options_resolve_from_train_table_and_stage() {
    let text = format!("{BASE}lr-schedule = \"cosine\"\nloss-scale = 2.0\ngrad-clip = 5.0\n")
        .replace(
            "[[stage]]",
            "[train]\nkeep = \"best\"\nloss-normalization = \"batch\"\n\n[[stage]]",
        );
    let spec = ok(&text);
    let t = spec.stages[1].config.train().unwrap();
    assert_eq!(t.lr_schedule, LrSchedule::Cosine);
    assert_eq!(t.keep, KeepEpoch::Best);
    assert_eq!(t.loss_normalization, LossNormalization::Batch);
    assert_eq!(t.loss_scale, 2.0);
    assert_eq!(t.grad_clip, Some(5.0));
}

#[test]
fn a_non_positive_grad_clip_names_its_key() {
    let e = err(&format!("{BASE}grad-clip = 0.0\n"));
    assert!(e.contains("`stage[0].grad-clip`: must be > 0"), "{e}");
}

#[test]
fn unknown_schedule_names_the_key_and_the_choices() {
    let e = err(&format!("{BASE}lr-schedule = \"linear\"\n"));
    assert!(
        e.contains("`stage[0].lr-schedule`: unknown value `linear`; allowed: `constant`, `cosine`"),
        "{e}"
    );
}

#[test]
fn default_training_options_leave_cache_keys_unchanged() {
    // New options are left out of the key when at their defaults, so entries
    // cached before they existed still match.
    let spec = ok(BASE);
    let json = serde_json::to_string(&spec.stages[1].config).unwrap();
    for k in [
        "lr-schedule",
        "keep",
        "loss-normalization",
        "loss-scale",
        "grad-clip",
    ] {
        assert!(!json.contains(k), "{k} in {json}");
    }
}

#[test]
fn a_stage_seed_overrides_the_experiment_seed() {
    let text = format!("{BASE}seed = 1000\n").replace("name = \"t\"", "name = \"t\"\nseed = 4");
    let spec = ok(&text);
    assert_eq!(spec.stages[1].config.train().unwrap().seed, 1000);
}

#[test]
fn a_second_data_set_is_a_stage_with_its_own_seed() {
    let spec = ok(&format!(
        "{BASE}data = \"more\"\n\n[[stage]]\nid = \"more\"\nkind = \"generate-data\"\nseed = 9\ntrain-images = 100\nattributes = [\"Male\"]\n"
    ));
    let more = spec.stages.iter().find(|s| s.id == "more").unwrap();
    match &more.config {
        StageConfig::GenerateData(d) => {
            assert_eq!((d.seed, d.train_images, d.attributes.len()), (9, 100, 1));
        }
        other => panic!("{other:?}"),
    }
    let train = spec.stages.iter().find(|s| s.id == "train").unwrap();
    assert_eq!(train.inputs["data"], "more");
    // Nothing reads the implicit faces, so they are not generated.
    assert!(spec.stages.iter().all(|s| s.id != "data"));
}

#[test]
fn a_data_stage_reports_a_bad_key_at_its_own_path() {
    let e = err(&format!(
        "{BASE}\n[[stage]]\nid = \"more\"\nkind = \"generate-data\"\ntrain-images = 0\n"
    ));
    assert!(e.contains("`stage[1].train-images`"), "{e}");
    let e = err(&format!(
        "{BASE}\n[[stage]]\nid = \"more\"\nkind = \"read-data\"\n"
    ));
    assert!(
        e.contains("`stage[1].kind`") && e.contains("`generate-data`"),
        "{e}"
    );
}

#[test]
fn backbone_is_an_edge_and_excludes_init() {
    let spec = ok(&format!("{BASE}backbone = \"pre\"\n"));
    assert_eq!(spec.stages[1].inputs["backbone"], "pre");
    let e = err(&format!("{BASE}backbone = \"pre\"\ninit = \"w.bpk\"\n"));
    assert!(e.contains("init"), "{e}");
}

#[test]
fn sweep_samples_4294967295_is_refused_not_allocated() {
    let e = err(&format!(
        "{BASE}\n[sweep]\nsamples = 4294967295\nspace = {{ \"train.lr\" = [0.1, 0.2] }}\n"
    ));
    assert!(
        e.contains("`sweep.samples`") && e.contains("at most 10000"),
        "{e}"
    );
}

#[test]
fn a_1000_by_1000_grid_is_refused_before_it_is_built() {
    let values: Vec<String> = (0..1000).map(|i| format!("{}", i + 1)).collect();
    let v = values.join(", ");
    let e = err(&format!(
        "{BASE}\n[sweep]\ngrid = {{ \"train.epochs\" = [{v}], \"train.batch-size\" = [{v}] }}\n"
    ));
    assert!(
        e.contains("at most 10000 points") && e.contains("1000 × 1000"),
        "{e}"
    );
}

#[test]
fn a_ten_megabyte_stage_id_is_refused_with_a_short_message() {
    let id = "a".repeat(10_000_000);
    let e = err(&BASE.replace("id = \"train\"", &format!("id = \"{id}\"")));
    assert!(
        e.contains("10000000 characters long; at most 100"),
        "{}",
        &e[..e.len().min(300)]
    );
    assert!(
        e.len() < 500,
        "the message repeats the id: {} bytes",
        e.len()
    );
}

#[test]
fn from_is_an_edge_and_excludes_init_and_backbone() {
    let spec = ok(&format!(
        "{BASE}\n[[stage]]\nid = \"more\"\nkind = \"train\"\nfrom = \"train\"\n"
    ));
    let more = spec.stages.iter().find(|s| s.id == "more").unwrap();
    assert_eq!(more.inputs["from"], "train");
    let e = err(&format!(
        "{BASE}\n[[stage]]\nid = \"more\"\nkind = \"train\"\nfrom = \"train\"\nbackbone = \"train\"\n"
    ));
    assert!(
        e.contains("`from` (continue a stage's whole net) excludes"),
        "{e}"
    );
}

#[test]
fn generator_versions_are_checked_and_keyed_only_past_the_first() {
    let e = err(&format!("{BASE}\n[data]\ngenerator = 3\n"));
    assert!(
        e.contains("`data.generator`: unknown generator version 3"),
        "{e}"
    );
    let e = err(&format!(
        "{BASE}\n[data]\ndataset = \"synthetic-birds\"\ngenerator = 3\n"
    ));
    assert!(e.contains("`synthetic-birds` has [1, 2]"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let data = |text: &str| {
        let p = write(dir.path(), "s.toml", &format!("{BASE}\n[data]\n{text}"));
        let spec = load(&p, &[]).unwrap();
        serde_json::to_value(&spec.data).unwrap()
    };
    assert!(
        data("").get("generator").is_none(),
        "version 1 keeps old keys"
    );
    assert_eq!(data("generator = 2\n")["generator"], 2);
}

#[test]
fn independent_parts_is_in_the_key_only_when_set_and_only_for_faces() {
    let dir = tempfile::tempdir().unwrap();
    let data = |text: &str| {
        let p = write(dir.path(), "s.toml", &format!("{BASE}\n[data]\n{text}"));
        serde_json::to_value(&load(&p, &[]).unwrap().data).unwrap()
    };
    assert!(data("").get("independent-parts").is_none(), "old keys kept");
    assert!(
        data("independent-parts = false\n")
            .get("independent-parts")
            .is_none()
    );
    assert_eq!(
        data("independent-parts = true\n")["independent-parts"],
        true
    );
    let e = err(&format!(
        "{BASE}\n[data]\ndataset = \"synthetic-birds\"\nindependent-parts = true\n"
    ));
    assert!(
        e.contains("`data.independent-parts`") && e.contains("is for `synthetic-faces`"),
        "{e}"
    );
}

#[test]
fn first_class_gives_birds_disjoint_from_the_first_ones() {
    let dir = tempfile::tempdir().unwrap();
    let classes = |text: &str| {
        let p = write(
            dir.path(),
            "s.toml",
            &format!("{BASE}\n[data]\ndataset = \"synthetic-birds\"\n{text}"),
        );
        let data = load(&p, &[]).unwrap().data;
        (data.class_offset, data.attributes.len())
    };
    assert_eq!(classes("classes = 20\n"), (0, 20));
    assert_eq!(classes("first-class = 21\n"), (20, 180));
    assert_eq!(classes("first-class = 21\nclasses = 5\n"), (20, 5));
    let e = err(&format!(
        "{BASE}\n[data]\ndataset = \"synthetic-birds\"\nfirst-class = 191\nclasses = 20\n"
    ));
    assert!(
        e.contains("`data.classes`: must be in 2..=10 (classes 191..=200)"),
        "{e}"
    );
    let e = err(&format!("{BASE}\n[data]\nfirst-class = 2\n"));
    assert!(e.contains("takes no `first-class`"), "{e}");
}

#[test]
fn only_keeps_the_named_stages_and_what_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{BASE}\n[[stage]]\nid = \"other\"\nkind = \"train\"\n\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"train\"\n"
    );
    let p = write(
        dir.path(),
        "s.toml",
        &text.replace("name = \"t\"", "name = \"t\"\nonly = [\"eval\"]"),
    );
    let spec = load(&p, &[]).unwrap();
    let ids: Vec<&str> = spec.stages.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["data", "train", "eval"]);
    assert_eq!(spec.only, ["eval"]);
    let e = err(&text.replace("name = \"t\"", "name = \"t\"\nonly = [\"nope\"]"));
    assert!(
        e.contains("s.toml:3:") && e.contains("`experiment.only`: no stage `nope`"),
        "{e}"
    );
}

#[test]
fn the_birds_share_the_face_specs_pretrained_start() {
    // cub_mnl.toml repeats base.toml's pretrain stages so that both train
    // them once: their resolved configurations must stay equal.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let stage = |spec: &str, id: &str| {
        let spec = load(&dir.join(spec), &[]).unwrap();
        let s = spec.stages.iter().find(|s| s.id == id).unwrap();
        (serde_json::to_value(&s.config).unwrap(), s.inputs.clone())
    };
    for id in ["pretrain-data", "pretrain"] {
        assert_eq!(stage("cub_mnl.toml", id), stage("base.toml", id), "{id}");
    }
}

#[test]
fn every_edge_a_kind_makes_is_a_role_its_def_declares() {
    // The plan checks edges by the kinds each role accepts: a role the
    // resolver adds but the `KindDef` lacks would go unchecked.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut edges = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let Ok(spec) = load(&entry.unwrap().path(), &[]) else {
            continue;
        };
        for s in spec.stages.iter().filter(|s| s.kind != StageKind::Command) {
            for role in s.inputs.keys() {
                assert!(
                    s.kind.accepts(role).is_some_and(|k| !k.is_empty()),
                    "{}: `{role}` of kind `{}`",
                    s.id,
                    s.kind.as_str()
                );
                edges += 1;
            }
        }
    }
    assert!(edges > 50, "{edges}");
}

#[test]
fn every_kind_is_defined_once_under_its_own_name() {
    let names: BTreeSet<&str> = StageKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), StageKind::ALL.len());
    for &k in StageKind::ALL {
        assert_eq!(StageKind::parse(k.as_str()), Some(k));
        // The serialised name (in cache keys and run records) is the def's.
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
}

#[test]
fn resolved_stages_read_back_as_run_records_store_them() {
    // Reports read a run's stages back typed from its record (JSON).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let Ok(spec) = load(&entry.unwrap().path(), &[]) else {
            continue;
        };
        for s in &spec.stages {
            let stored = serde_json::to_value(s).unwrap();
            let back: StageSpec = serde_json::from_value(stored.clone()).unwrap();
            assert_eq!(serde_json::to_value(&back).unwrap(), stored);
            read += 1;
        }
    }
    assert!(read > 100, "{read}");
}

#[test]
fn resolved_configs_serialise_as_cache_keys_expect() {
    // The resolved config is hashed into the cache key: its JSON shape
    // (the `kind` tag, snake_case kind fields beside the kebab-case training
    // keys) must not change when the Rust types behind it do.
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "s.toml",
        "[experiment]\nname = \"t\"\n[[stage]]\nid = \"f\"\nkind = \"train-frl\"\nepochs = 1\n[[stage]]\nid = \"l\"\nkind = \"localize\"\nmodel = \"f\"\ncentre = \"mean\"\n[[stage]]\nid = \"s\"\nkind = \"compress\"\nteacher = \"f\"\n[[stage]]\nid = \"p\"\nkind = \"train-parts\"\nwhole = \"s\"\nregions = \"l\"\n[[stage]]\nid = \"c\"\nkind = \"crop-data\"\n",
    );
    let spec = load(&p, &[]).unwrap();
    let json = |i: usize| serde_json::to_value(&spec.stages[i].config).unwrap();
    let keys = |i: usize| -> Vec<String> { json(i).as_object().unwrap().keys().cloned().collect() };
    assert_eq!(json(1)["kind"], "train-frl");
    assert!(keys(1).contains(&"mnl_hidden".to_string()), "{:?}", keys(1));
    assert!(keys(1).contains(&"batch-size".to_string()), "{:?}", keys(1));
    assert_eq!(
        json(2),
        serde_json::json!({"kind": "localize", "patch": 64.0 / 224.0, "samples": 8, "centre": "mean"})
    );
    assert!(
        keys(3).contains(&"hint_epochs".to_string()) && keys(3).contains(&"hint_lr".to_string())
    );
    assert_eq!(json(4)["part_size"], 64);
    assert_eq!(json(4)["grid"], serde_json::Value::Null);
    assert_eq!(
        json(5),
        serde_json::json!({"kind": "crop-data", "expand": 1.0})
    );
    // And it reads back as the same config (run records are read back).
    for s in &spec.stages {
        let back: StageConfig =
            serde_json::from_value(serde_json::to_value(&s.config).unwrap()).unwrap();
        assert_eq!(back, s.config);
    }
}

#[test]
fn a_claim_on_a_stage_that_does_not_exist_is_an_error_at_its_line() {
    let e = err(
        "[experiment]\nname = \"t\"\n[[stage]]\nid = \"m\"\nkind = \"train\"\n[[stage]]\nid = \"e\"\nkind = \"evaluate\"\nmodel = \"m\"\n[[claim]]\nname = \"c\"\nbetter = \"e\"\nthan = \"nope\"\n",
    );
    assert!(
        e.starts_with("s.toml:13:1: `claim[0].than`: no stage `nope`"),
        "{e}"
    );
    let e = err(
        "[experiment]\nname = \"t\"\n[[stage]]\nid = \"m\"\nkind = \"train\"\n[[claim]]\nname = \"c\"\nbetter = \"m\"\nthan = \"data\"\n",
    );
    assert!(
        e.contains("`m` is a `train` stage; a claim compares `evaluate`"),
        "{e}"
    );
}

#[test]
fn a_parameter_ratio_claim_must_read_a_compress_stage() {
    let e = err(
        "[experiment]\nname = \"t\"\n[[stage]]\nid = \"m\"\nkind = \"train\"\n[[claim]]\nname = \"c\"\nfewer-parameters = \"m\"\nat-least = 50\n",
    );
    assert!(
        e.starts_with("s.toml:8:1: `claim[0].fewer-parameters`: `m` is a `train` stage; `fewer-parameters` reads a `compress` stage"),
        "{e}"
    );
}

#[test]
fn a_key_of_another_kind_of_claim_is_an_error_not_ignored() {
    let e = err(
        "[experiment]\nname = \"t\"\n[[stage]]\nid = \"m\"\nkind = \"train\"\n[[stage]]\nid = \"e\"\nkind = \"evaluate\"\nmodel = \"m\"\n[[claim]]\nname = \"c\"\nbetter = \"e\"\nthan = \"e\"\nat-least = 2\n",
    );
    assert!(
        e.contains("`claim[0].at-least`: `at-least` goes with `fewer-parameters`"),
        "{e}"
    );
}

#[test]
fn claims_are_not_inherited_through_extends() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "base.toml",
        "[experiment]\nname = \"b\"\n[[stage]]\nid = \"m\"\nkind = \"train\"\n[[stage]]\nid = \"e\"\nkind = \"evaluate\"\nmodel = \"m\"\n[[stage]]\nid = \"f\"\nkind = \"evaluate\"\nmodel = \"m\"\nsplit = \"val\"\n[[claim]]\nname = \"c\"\nbetter = \"e\"\nthan = \"f\"\n",
    );
    let child = write(
        dir.path(),
        "child.toml",
        "extends = \"base.toml\"\n[experiment]\nname = \"child\"\n",
    );
    assert_eq!(
        load(&dir.path().join("base.toml"), &[])
            .unwrap()
            .claims
            .len(),
        1
    );
    assert!(load(&child, &[]).unwrap().claims.is_empty());
}

#[test]
fn hint_grad_clip_is_the_hint_phases_own_and_absent_by_default() {
    let text = "[experiment]\nname = \"t\"\n\n[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\n\n[[stage]]\nid = \"s\"\nkind = \"compress\"\nteacher = \"frl\"\n";
    let StageConfig::Compress(c) = &ok(text).stages[2].config else {
        panic!()
    };
    assert_eq!((c.hint_grad_clip, c.train.grad_clip), (None, None));
    let spec = ok(&format!("{text}hint-grad-clip = 2.0\n"));
    let StageConfig::Compress(c) = &spec.stages[2].config else {
        panic!()
    };
    assert_eq!((c.hint_grad_clip, c.train.grad_clip), (Some(2.0), None));
}

#[test]
fn without_a_hint_phase_its_settings_leave_the_key_alone() {
    let text = "[experiment]\nname = \"t\"\n\n[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\n\n[[stage]]\nid = \"s\"\nkind = \"compress\"\nteacher = \"frl\"\nhint-epochs = 0\n";
    let plain = ok(text).stages[2].config.clone();
    let set = ok(&format!("{text}hint-lr = 1e-6\nhint-grad-clip = 1.0\n")).stages[2]
        .config
        .clone();
    assert_eq!(plain, set);
    let with_phase = ok(&text.replace("hint-epochs = 0", "hint-epochs = 1")).stages[2]
        .config
        .clone();
    let with_phase_set = ok(&format!(
        "{}hint-lr = 1e-6\n",
        text.replace("hint-epochs = 0", "hint-epochs = 1")
    ))
    .stages[2]
        .config
        .clone();
    assert_ne!(with_phase, with_phase_set);
}

#[test]
fn a_claim_on_a_localize_stage_names_the_rate_it_compares() {
    let spec = |claim: &str| {
        format!(
            "[experiment]\nname = \"t\"\n[[stage]]\nid = \"m\"\nkind = \"train-frl\"\nnet = \"tnet\"\n[[stage]]\nid = \"a\"\nkind = \"localize\"\nmodel = \"m\"\n[[stage]]\nid = \"b\"\nkind = \"localize\"\nmodel = \"m\"\n[[claim]]\nname = \"c\"\nbetter = \"a\"\nthan = \"b\"\n{claim}"
        )
    };
    let e = err(&spec(""));
    assert!(
        e.contains("`a` is a `localize` stage: give `metric`, one of `pointing_game`, `maxboxacc`"),
        "{e}"
    );
    let e = err(&spec("metric = \"loss\"\n"));
    assert!(e.starts_with("s.toml:19:"), "{e}");
    assert!(ok(&spec("metric = \"pointing_game\"\n")).claims.len() == 1);
}
