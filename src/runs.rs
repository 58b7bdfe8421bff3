//! Run records under `results/runs/<run-id>/`: `run.json` (resolved spec,
//! every stage with its cache key, status, time and summary) and `logs/`.
//! Rewritten after every stage, so a killed run still says what it did.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::KeyInputs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub name: String,
    pub title: String,
    pub spec_path: String,
    pub overrides: Vec<String>,
    pub started: String,
    pub finished: Option<String>,
    pub device: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    /// `running`, `ok` or `failed`.
    pub status: String,
    pub spec: serde_json::Value,
    pub stages: Vec<StageRecord>,
    /// The sweep this run belongs to, if any (`exp ls --sweep`).
    #[serde(default)]
    pub sweep: Option<String>,
    /// The overrides that define this run's sweep point.
    #[serde(default)]
    pub point: Vec<String>,
    /// The process that wrote the record, to tell a live run from a killed one.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub host: Option<String>,
    /// The commit the `exp` binary was built from (`+dirty`: with
    /// uncommitted changes) — `git_commit` is the working tree's at run
    /// time, which a binary built elsewhere does not share. Absent from
    /// records written before 2026-12-01.
    #[serde(default)]
    pub exp_build: Option<String>,
}

/// The commit this binary was built from (see `build.rs`).
pub const BUILD_COMMIT: &str = env!("EXP_BUILD_COMMIT");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub id: String,
    pub kind: String,
    /// `pending`, `running`, `ran`, `cached`, `failed`, `skipped` or `cancelled`.
    pub status: String,
    pub key: Option<String>,
    pub key_inputs: Option<KeyInputs>,
    /// Artefact digest (what downstream keys use).
    pub digest: Option<String>,
    pub seconds: f64,
    pub summary: serde_json::Value,
    pub error: Option<String>,
    /// The stage's log, relative to the run folder; empty for a cache hit.
    pub log: String,
    /// The cluster job that computed it (`--executor slurm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("no run `{0}`; `exp ls` lists runs")]
    NotFound(String),
    #[error("`{query}` matches {count} runs; give more of the run id")]
    Ambiguous { query: String, count: usize },
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
}

pub fn runs_dir(results: &Path) -> PathBuf {
    results.join("runs")
}

impl RunRecord {
    pub fn dir(&self, results: &Path) -> PathBuf {
        runs_dir(results).join(&self.id)
    }

    /// Atomically replace `run.json`.
    pub fn save(&self, results: &Path) -> Result<(), RunsError> {
        let dir = self.dir(results);
        let path = dir.join("run.json");
        use crate::file_error::FileError;
        std::fs::create_dir_all(&dir).map_err(FileError::write(&dir))?;
        crate::atomic::write(
            &path,
            serde_json::to_string_pretty(self)
                .expect("serializable")
                .as_bytes(),
        )
        .map_err(FileError::write(&path))?;
        Ok(())
    }
}

/// A new run id: sortable by time, then the spec name, then a short nonce.
pub fn new_id(name: &str) -> String {
    let now = jiff::Zoned::now();
    let nonce = format!(
        "{:04x}",
        (std::process::id() as u64 ^ now.timestamp().subsec_nanosecond() as u64) & 0xffff
    );
    format!("{}-{name}-{nonce}", now.strftime("%Y%m%d-%H%M%S"))
}

/// Every readable run, newest first.
pub fn list(results: &Path) -> Vec<RunRecord> {
    let Ok(entries) = std::fs::read_dir(runs_dir(results)) else {
        return Vec::new();
    };
    let mut runs: Vec<RunRecord> = entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("run.json")).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    runs.sort_by(|a, b| b.started.cmp(&a.started).then(b.id.cmp(&a.id)));
    for r in runs.iter_mut().filter(|r| r.status == "running") {
        // A record left `running` by a process that is gone was interrupted
        // (killed, crashed, machine rebooted); its finished stages are cached.
        let here = r.host.as_deref() == Some(hostname().as_str());
        let alive = r
            .pid
            .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if here && !alive {
            r.status = "interrupted".into();
        }
    }
    runs
}

/// A run by id, unique id prefix, unique id suffix (the random part people
/// copy), or spec name (its latest successful run, else its latest run).
pub fn find(results: &Path, query: &str) -> Result<RunRecord, RunsError> {
    let runs = list(results);
    if let Some(r) = runs.iter().find(|r| r.id == query) {
        return Ok(r.clone());
    }
    let matching = |m: &dyn Fn(&RunRecord) -> bool| -> Vec<&RunRecord> {
        runs.iter().filter(|r| m(r)).collect()
    };
    let prefixed = matching(&|r| r.id.starts_with(query));
    if prefixed.len() == 1 {
        return Ok(prefixed[0].clone());
    }
    let named = matching(&|r| r.name == query);
    if let Some(r) = named.iter().find(|r| r.status == "ok").or(named.first()) {
        return Ok((*r).clone());
    }
    let suffixed = matching(&|r| !query.is_empty() && r.id.ends_with(&format!("-{query}")));
    if suffixed.len() == 1 && prefixed.is_empty() {
        return Ok(suffixed[0].clone());
    }
    let count = prefixed.len().max(suffixed.len());
    if count > 1 {
        return Err(RunsError::Ambiguous {
            query: query.to_string(),
            count,
        });
    }
    Err(RunsError::NotFound(query.to_string()))
}

/// The git commit of the working directory and whether tracked files changed.
/// Read once per process: every point of a sweep records the state the
/// sweep started from (and pays for two `git` calls once, not per point).
pub fn git_state() -> (Option<String>, Option<bool>) {
    static STATE: std::sync::OnceLock<(Option<String>, Option<bool>)> = std::sync::OnceLock::new();
    STATE.get_or_init(read_git_state).clone()
}

fn read_git_state() -> (Option<String>, Option<bool>) {
    let out = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = out(&["rev-parse", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| out(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    (commit, dirty)
}

/// This machine's name, as recorded in manifests and run records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(results: &Path, id: &str, name: &str, status: &str, started: &str) {
        let r: RunRecord = serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "title": name, "spec_path": "s.toml", "overrides": [],
            "started": started, "finished": null, "device": "cpu", "git_commit": null,
            "git_dirty": null, "status": status, "spec": {}, "stages": [],
        }))
        .unwrap();
        r.save(results).unwrap();
    }

    #[test]
    fn a_spec_name_finds_its_latest_successful_run_not_a_later_failure() {
        let dir = tempfile::tempdir().unwrap();
        save(
            dir.path(),
            "20260101-000000-q-aaaa",
            "q",
            "ok",
            "2026-01-01T00:00:00Z",
        );
        save(
            dir.path(),
            "20260102-000000-q-bbbb",
            "q",
            "failed",
            "2026-01-02T00:00:00Z",
        );
        assert_eq!(find(dir.path(), "q").unwrap().id, "20260101-000000-q-aaaa");
    }

    #[test]
    fn the_random_suffix_of_a_run_id_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        save(
            dir.path(),
            "20260101-000000-q-aaaa",
            "q",
            "ok",
            "2026-01-01T00:00:00Z",
        );
        save(
            dir.path(),
            "20260102-000000-q-bbbb",
            "q",
            "ok",
            "2026-01-02T00:00:00Z",
        );
        assert_eq!(
            find(dir.path(), "aaaa").unwrap().id,
            "20260101-000000-q-aaaa"
        );
        assert!(matches!(
            find(dir.path(), "cccc"),
            Err(RunsError::NotFound(_))
        ));
    }
}
