//! `exp ui`: the JSON API over HTTP, and (with a browser, run by `.ci/run`)
//! the pages as Chromium renders them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use super::common::{self, Env, text};

/// The common tiny spec, trained two epochs (two points per curve).
fn tiny() -> String {
    common::TINY.replace("epochs = 1", "epochs = 2")
}

/// `exp ui --port 0` in `env`, and the address it serves.
struct Ui {
    child: Child,
    addr: String,
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env) -> Ui {
    let mut child = env
        .cmd(&["ui", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Ui { child, addr }
}

/// `(status, body)` of one request.
fn request(addr: &str, method: &str, path: &str) -> (u16, String) {
    request_as(addr, addr, method, path)
}

/// The same, with another `Host` header.
fn request_as(addr: &str, host: &str, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

fn json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = request(addr, "GET", path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn two_runs() -> (Env, Vec<String>) {
    let env = Env::new(&tiny());
    let out = env.exp(&["run", "spec.toml", "-s", "experiment.seed=1,2", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids = runs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    (env, ids)
}

#[test]
fn the_api_serves_runs_curves_and_logs() {
    let (env, ids) = two_runs();
    let ui = serve(&env);
    let runs = json(&ui.addr, "/api/runs");
    let listed: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in &ids {
        assert!(listed.contains(&id.as_str()), "{id} not in {listed:?}");
    }
    assert!(
        runs[0]["metrics"]["eval.mean_accuracy"].is_number(),
        "{}",
        runs[0]
    );
    assert_eq!(runs[0]["config"], "", "a seed is not a configuration");

    let run = json(&ui.addr, &format!("/api/run/{}", ids[0]));
    assert_eq!(run["status"], "ok");
    let curves = json(&ui.addr, &format!("/api/curves?runs={},{}", ids[0], ids[1]));
    let rows = curves[&ids[0]].as_array().unwrap();
    let val: Vec<_> = rows
        .iter()
        .filter(|r| r["stage"] == "train" && r["metric"] == "val_accuracy")
        .collect();
    assert_eq!(val.len(), 2, "one point per epoch: {rows:?}");
    let (status, log) = request(&ui.addr, "GET", &format!("/api/log/{}/train", ids[0]));
    assert_eq!(status, 200);
    assert!(log.contains("epoch 2"), "{log}");
    let (status, page) = request(&ui.addr, "GET", "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script>"));
}

#[test]
fn the_api_serves_a_reports_tables_of_chosen_runs() {
    let (env, ids) = two_runs();
    let ui = serve(&env);
    let tables = json(&ui.addr, &format!("/api/tables?runs={},{}", ids[0], ids[1]));
    let evals = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "Evaluations: mean accuracy (%)")
        .unwrap_or_else(|| panic!("{tables}"));
    // Both seeds pooled into the one `eval` row: mean ± std.
    let row = &evals["rows"][0];
    assert_eq!(row[0], "eval");
    assert!(row[4].as_str().unwrap().contains(" ± "), "{row}");
    // No runs asked for: no tables, not an error.
    assert_eq!(json(&ui.addr, "/api/tables"), serde_json::json!([]));
}

#[test]
fn the_ui_is_read_only_and_serves_nothing_outside_the_results() {
    let (env, ids) = two_runs();
    let ui = serve(&env);
    assert_eq!(request(&ui.addr, "POST", "/api/runs").0, 405);
    assert_eq!(
        request(&ui.addr, "GET", "/api/run/..%2F..%2Fetc%2Fpasswd").0,
        404
    );
    assert_eq!(request(&ui.addr, "GET", "/api/log/../spec.toml").0, 404);
    assert_eq!(
        request(
            &ui.addr,
            "GET",
            &format!("/api/log/{}/..%2F..%2Frun", ids[0])
        )
        .0,
        404
    );
    assert_eq!(request(&ui.addr, "GET", "/etc/passwd").0, 404);
    // DNS rebinding: a page on another name must not read the results.
    assert_eq!(
        request_as(&ui.addr, "evil.example:80", "GET", "/api/runs").0,
        403
    );
    let port = ui.addr.rsplit_once(':').unwrap().1;
    assert_eq!(
        request_as(&ui.addr, &format!("localhost:{port}"), "GET", "/api/runs").0,
        200
    );
}

/// Chromium's DOM of `url` after its scripts ran.
fn rendered(url: &str) -> String {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("no Chromium: `.ci/run` installs it (apt-get install chromium)");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=8000",
            "--dump-dom",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
#[ignore = "needs Chromium: .ci/run installs it"]
fn chromium_renders_the_runs_table_a_run_and_a_comparison() {
    let (env, ids) = two_runs();
    let ui = serve(&env);
    let base = format!("http://{}/", ui.addr);
    let table = rendered(&format!("{base}#/"));
    for id in &ids {
        assert!(
            table.contains(&format!("href=\"#/run/{id}\"")),
            "{id} missing:\n{table}"
        );
    }
    let run = rendered(&format!("{base}#/run/{}", ids[0]));
    assert!(run.contains("<polyline"), "no curve drawn:\n{run}");
    assert!(run.contains("evaluate"), "no stages table:\n{run}");
    let compare = rendered(&format!("{base}#/compare/{},{}", ids[0], ids[1]));
    assert!(compare.contains("Parameters that differ"), "{compare}");
    // One line per run and stage (train of each seed), overlaid.
    assert!(compare.matches("<polyline").count() >= 2, "{compare}");
}
