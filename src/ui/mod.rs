//! `exp ui`: a read-only web view of the results folder — runs grouped by
//! spec and configuration, a run's stages, logs and curves, overlaid
//! curves of any runs, the claims — served on 127.0.0.1 by a small
//! synchronous HTTP server. One page (`app.html`, no outside scripts)
//! renders everything from the JSON API below; a running run's page polls
//! it, so progress and curves update without a reload.
//!
//! API (all GET, JSON unless said):
//! - `/api/runs`: one summary per run (newest first);
//! - `/api/run/<id>`: the run record;
//! - `/api/curves?runs=<id>,<id>`: per-epoch metrics of each run's stages;
//! - `/api/log/<id>/<stage>`: the stage log (text);
//! - `/api/tables?runs=<id>,<id>`: a report's tables on those runs (the
//!   paper's tables they fill, every evaluation, localisation, claims);
//! - `/api/claims`: every spec's claims on its runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::cache::Cache;
use crate::runs::{self, RunRecord};

const APP: &str = include_str!("app.html");

/// A run as the runs table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub name: String,
    pub title: String,
    pub status: String,
    pub started: String,
    pub finished: Option<String>,
    pub sweep: Option<String>,
    pub seed: u64,
    /// Overrides other than the seed: what the runs of one configuration share.
    pub config: String,
    /// Every parameter, flattened (`stage.train.lr` → `0.01`), for filters.
    pub params: BTreeMap<String, String>,
    /// Numbers of each stage's summary (`eval.mean_accuracy` → 0.81).
    pub metrics: BTreeMap<String, f64>,
    pub ran: usize,
    pub cached: usize,
    pub stages: usize,
    #[serde(skip)]
    pid: Option<u32>,
    #[serde(skip)]
    host: Option<String>,
}

impl RunSummary {
    pub fn of(r: &RunRecord) -> RunSummary {
        let mut params = BTreeMap::new();
        for s in r.spec["stages"].as_array().into_iter().flatten() {
            let id = s["id"].as_str().unwrap_or_default();
            for (k, v) in s["config"].as_object().into_iter().flatten() {
                if k != "kind" && !v.is_object() && !v.is_array() {
                    params.insert(format!("{id}.{k}"), plain(v));
                }
            }
        }
        let mut metrics = BTreeMap::new();
        for s in &r.stages {
            for (k, v) in s.summary.as_object().into_iter().flatten() {
                if let Some(x) = v.as_f64() {
                    metrics.insert(format!("{}.{k}", s.id), x);
                }
            }
        }
        RunSummary {
            id: r.id.clone(),
            name: r.name.clone(),
            title: r.title.clone(),
            status: r.status.clone(),
            started: r.started.clone(),
            finished: r.finished.clone(),
            sweep: r.sweep.clone(),
            seed: r.spec["seed"].as_u64().unwrap_or(0),
            config: crate::report::collect::config_of(r),
            params,
            metrics,
            ran: r.stages.iter().filter(|s| s.status == "ran").count(),
            cached: r.stages.iter().filter(|s| s.status == "cached").count(),
            stages: r.stages.len(),
            pid: r.pid,
            host: r.host.clone(),
        }
    }
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Summaries, re-read only for records whose `run.json` changed: a page of
/// thousands of runs costs a directory listing and a few stats.
pub struct Index {
    results: PathBuf,
    seen: Mutex<BTreeMap<String, (SystemTime, RunSummary)>>,
}

impl Index {
    pub fn new(results: &Path) -> Index {
        Index {
            results: results.to_path_buf(),
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn summaries(&self) -> Vec<RunSummary> {
        let dir = runs::runs_dir(&self.results);
        let mut seen = self.seen.lock().expect("index lock");
        let mut present = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path().join("run.json");
            let Ok(mtime) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
                continue;
            };
            let id = e.file_name().to_string_lossy().to_string();
            present.insert(id.clone());
            if seen.get(&id).is_some_and(|(t, _)| *t == mtime) {
                continue;
            }
            let record: Option<RunRecord> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(r) = record {
                seen.insert(id, (mtime, RunSummary::of(&r)));
            }
        }
        seen.retain(|id, _| present.contains(id));
        let mut out: Vec<RunSummary> = seen.values().map(|(_, s)| s.clone()).collect();
        for s in out.iter_mut().filter(|s| s.status == "running") {
            if !alive(s.pid, s.host.as_deref()) {
                s.status = "interrupted".into();
            }
        }
        out.sort_by(|a, b| b.started.cmp(&a.started).then(b.id.cmp(&a.id)));
        out
    }
}

/// A run by exact id (one file read), else as `exp show` finds it.
fn load_run(results: &Path, id: &str) -> Result<RunRecord, String> {
    let path = runs::runs_dir(results).join(id).join("run.json");
    if let Some(mut r) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok())
    {
        if r.status == "running" && !alive(r.pid, r.host.as_deref()) {
            r.status = "interrupted".into();
        }
        return Ok(r);
    }
    runs::find(results, id).map_err(|e| e.to_string())
}

/// Whether a run's process still lives (a run on another host is assumed to).
fn alive(pid: Option<u32>, host: Option<&str>) -> bool {
    host != Some(runs::hostname().as_str())
        || pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
}

/// A run id as exp makes them: no path can hide in one.
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a request gets: status, content type, body.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(v: &impl Serialize) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: serde_json::to_vec(v).expect("serializes"),
        }
    }
    fn text(status: u16, s: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: s.into().into_bytes(),
        }
    }
}

/// Answer one GET (`url` with its query string).
pub fn route(url: &str, index: &Index, results: &Path, cache: &Cache) -> Reply {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: APP.as_bytes().to_vec(),
        },
        ["api", "runs"] => Reply::json(&index.summaries()),
        ["api", "run", id] if is_id(id) => match load_run(results, id) {
            Ok(r) => Reply::json(&r),
            Err(e) => Reply::text(404, e),
        },
        ["api", "curves"] => {
            let mut out = BTreeMap::new();
            for id in ids_of(query) {
                if let Ok(r) = load_run(results, id) {
                    let rows: Vec<_> = crate::report::collect::epochs(&r, cache)
                        .into_iter()
                        .map(|(stage, metric, epoch, value)| {
                            serde_json::json!({"stage": stage, "metric": metric, "epoch": epoch, "value": value})
                        })
                        .collect();
                    out.insert(r.id.clone(), rows);
                }
            }
            Reply::json(&out)
        }
        ["api", "tables"] => {
            let runs: Vec<RunRecord> = ids_of(query)
                .filter_map(|id| load_run(results, id).ok())
                .collect();
            if runs.is_empty() {
                return Reply::json(&Vec::<()>::new());
            }
            Reply::json(&crate::report::tables(&runs, cache))
        }
        ["api", "log", id, stage] if is_id(id) && is_id(stage) => match load_run(results, id)
            .and_then(|r| {
                // The record's own id names the folder: it must be an id too.
                if is_id(&r.id) {
                    Ok(r)
                } else {
                    Err(format!("run record `{id}` has a malformed id"))
                }
            }) {
            Ok(r) => {
                let path = runs::runs_dir(results)
                    .join(&r.id)
                    .join("logs")
                    .join(format!("{stage}.log"));
                match std::fs::read_to_string(&path) {
                    Ok(t) => Reply::text(200, t),
                    Err(_) => Reply::text(
                        404,
                        format!("no log for stage `{stage}` (a cache hit writes none)"),
                    ),
                }
            }
            Err(e) => Reply::text(404, e),
        },
        ["api", "claims"] => {
            let (all, _) = crate::report::claims::as_the_files_read(runs::list(results));
            let claims: Vec<serde_json::Value> = crate::report::claims::check(&all)
                .iter()
                .filter(|c| c.seeds > 0)
                .map(|c| {
                    serde_json::json!({
                        "claim": c.claim, "spec": c.spec, "seeds": c.seeds, "ours": c.ours,
                        "interval": c.interval_cell(), "paper": c.paper,
                        "verdict": c.verdict.as_str(),
                    })
                })
                .collect();
            Reply::json(&claims)
        }
        _ => Reply::text(404, format!("nothing at `{path}`")),
    }
}

/// The run ids of a `runs=<id>,<id>` query (at most 50).
fn ids_of(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("runs="))
        .unwrap_or_default()
        .split(',')
        .filter(|i| is_id(i))
        .take(50)
}

/// `127.0.0.1:…`, `localhost:…` or `[::1]:…` (no Host at all: a plain client).
fn loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    host.is_empty() || matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Serve until killed. `on_ready` gets the address actually bound (port 0
/// picks a free one).
pub fn serve(
    bind: &str,
    port: u16,
    results: &Path,
    cache: Cache,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    let server = tiny_http::Server::http((bind, port))
        .map_err(|e| format!("cannot listen on {bind}:{port}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or("the server has no IP address")?;
    on_ready(addr);
    let index = Index::new(results);
    std::thread::scope(|scope| {
        // A few workers: a slow curves request does not block the table.
        for _ in 0..4 {
            scope.spawn(|| {
                for request in server.incoming_requests() {
                    // A page elsewhere cannot read the results through DNS
                    // rebinding: on loopback, only a loopback Host is served.
                    let host = request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Host"))
                        .map(|h| h.value.as_str().to_string())
                        .unwrap_or_default();
                    let reply = if addr.ip().is_loopback() && !loopback_host(&host) {
                        Reply::text(403, "this server answers only to 127.0.0.1 and localhost")
                    } else if *request.method() == tiny_http::Method::Get {
                        route(request.url(), &index, results, &cache)
                    } else {
                        Reply::text(405, "read-only: GET only")
                    };
                    let header = tiny_http::Header::from_bytes("Content-Type", reply.content_type)
                        .expect("valid header");
                    let response = tiny_http::Response::from_data(reply.body)
                        .with_status_code(reply.status)
                        .with_header(header);
                    let _ = request.respond(response);
                }
            });
        }
    });
    Ok(())
}
