//! `kind = "command"`: the user's own program as a stage.

use super::common::{Env, copy_example, stage_of, text};

/// `experiments/command.toml` at test size.
const SMALL: &[&str] = &[
    "-s",
    "data.image-size=32",
    "-s",
    "data.train-images=64",
    "-s",
    "data.val-images=16",
    "-s",
    "data.test-images=16",
    "-s",
    "train.epochs=1",
    "-s",
    "stage.landmarks.params.epochs=2",
];

fn run_example(env: &Env, more: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "command.toml"];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(more);
    env.exp(&args)
}

fn status_of(env: &Env, id: &str) -> String {
    env.statuses("command")
        .into_iter()
        .find(|(s, _)| s == id)
        .unwrap()
        .1
}

#[test]
fn the_example_runs_a_python_script_beside_built_in_stages() {
    let env = Env::new("");
    copy_example(&env, "command.toml");
    let out = run_example(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let run = env.show("command");
    let stage = stage_of(&run, "landmarks");
    assert_eq!(stage["status"], "ran");
    // Its metrics file is the stage's summary; its declared output is in the entry.
    let acc = stage["summary"]["mean_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{acc}");
    let key = stage["key"].as_str().unwrap();
    let entry = env.path().join("results/cache").join(&key[..2]).join(key);
    assert!(entry.join("weights.json").is_file());
    // Its output went to the stage log.
    let log = env.stage_log(run["id"].as_str().unwrap(), "landmarks");
    assert!(log.contains("mean accuracy"), "{log}");
}

#[test]
fn a_rerun_is_cached_and_a_param_reruns_only_the_command() {
    let env = Env::new("");
    copy_example(&env, "command.toml");
    assert!(run_example(&env, &[]).status.success());
    assert!(run_example(&env, &[]).status.success());
    assert!(env.statuses("command").iter().all(|(_, s)| s == "cached"));
    let out = run_example(&env, &["-s", "stage.landmarks.params.l2=0.5"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status_of(&env, "landmarks"), "ran");
    assert_eq!(status_of(&env, "train"), "cached");
}

#[test]
fn editing_the_script_reruns_only_the_command() {
    let env = Env::new("");
    copy_example(&env, "command.toml");
    assert!(run_example(&env, &[]).status.success());
    let script = env.path().join("scripts/landmark_baseline.py");
    let mut body = std::fs::read_to_string(&script).unwrap();
    body.push_str("\n# edited\n");
    std::fs::write(&script, body).unwrap();
    let out = run_example(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status_of(&env, "landmarks"), "ran");
    assert_eq!(status_of(&env, "eval"), "cached");
}

const FAILING: &str = r#"
[experiment]
name = "fails"

[[stage]]
id = "boom"
kind = "command"
run = ["python3", "-c", "import sys; print('line one'); print('it broke', file=sys.stderr); sys.exit(3)"]
"#;

#[test]
fn a_failing_command_shows_its_output_and_caches_nothing() {
    let env = Env::new(FAILING);
    for _ in 0..2 {
        let out = env.exp(&["run", "spec.toml"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("exited with status 3"), "{t}");
        assert!(t.contains("it broke"), "{t}");
        // Nothing cached: the second run computes (and fails) again.
        assert_eq!(env.statuses("fails"), [("boom".into(), "failed".into())]);
    }
}

#[test]
fn a_command_only_spec_generates_no_data() {
    let env = Env::new(
        r#"
[experiment]
name = "alone"

[[stage]]
id = "hello"
kind = "command"
run = "python3 -c 'import json, os; json.dump({{\"answer\": {n}}}, open(os.environ[\"EXP_OUT\"] + \"/metrics.json\", \"w\"))'"
params = { n = 42 }
"#,
    );
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = env.show("alone");
    let stages = run["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0]["summary"]["answer"], 42);
}

#[test]
fn a_missing_declared_output_fails_the_stage() {
    let env = Env::new(
        r#"
[experiment]
name = "lazy"

[[stage]]
id = "lazy"
kind = "command"
run = "python3 -c 'pass'"
outputs = ["model.bin"]
"#,
    );
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("did not write its declared output `model.bin`"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unknown_placeholder_is_a_spec_error_at_its_line() {
    let env = Env::new(
        r#"
[experiment]
name = "typo"

[[stage]]
id = "fit"
kind = "command"
run = "python3 fit.py --lr {rl}"
params = { lr = 0.1 }
"#,
    );
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("spec.toml:8"), "{t}");
    assert!(t.contains("unknown placeholder `{rl}`"), "{t}");
    assert!(t.contains("`{lr}`"), "{t}");
}

#[test]
fn a_built_in_stage_cannot_read_a_command_as_its_model() {
    let env = Env::new(
        r#"
[experiment]
name = "mixed"

[[stage]]
id = "mine"
kind = "command"
run = "python3 -c 'pass'"

[[stage]]
id = "eval"
kind = "evaluate"
model = "mine"
"#,
    );
    let out = env.exp(&["plan", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a `command` stage"), "{}", text(&out));
}

#[test]
fn braces_in_a_value_and_bytes_that_are_not_utf8_pass_through() {
    let env = Env::new(
        r#"
[experiment]
name = "raw"

[[stage]]
id = "echo"
kind = "command"
run = ["python3", "-c", "import json, os, sys; sys.stdout.buffer.write(b'\\xff\\xfe not utf-8\\n'); sys.stdout.flush(); print('after'); json.dump({{'msg': sys.argv[1]}}, open(os.environ['EXP_OUT'] + '/metrics.json', 'w'))", "{msg}"]
params = { msg = "{literal} }}" }
"#,
    );
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let run = env.show("raw");
    assert_eq!(run["stages"][0]["summary"]["msg"], "{literal} }}");
    let log = env.stage_log(run["id"].as_str().unwrap(), "echo");
    assert!(
        log.contains("after"),
        "output after a non-UTF-8 line is kept: {log}"
    );
}

#[test]
fn the_run_record_says_running_while_a_stage_computes() {
    let env = Env::new(
        r#"
[experiment]
name = "slowly"

[[stage]]
id = "nap"
kind = "command"
run = ["python3", "-c", "import time; time.sleep(3)"]
"#,
    );
    let mut child = env.cmd(&["run", "spec.toml"]).spawn().unwrap();
    let runs = env.path().join("results/runs");
    let start = std::time::Instant::now();
    let mut seen = false;
    while child.try_wait().unwrap().is_none() && !seen {
        seen = std::fs::read_dir(&runs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|d| {
                std::fs::read_to_string(d.path().join("run.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .is_some_and(|r| {
                        r["stages"][0]["status"] == "running" && r["stages"][0]["key"].is_string()
                    })
            });
        assert!(start.elapsed().as_secs() < 30, "the run never finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    assert!(
        seen,
        "run.json never said `running` while the stage computed"
    );
}
