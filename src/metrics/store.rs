//! Parquet tables through polars, in long ("tidy") form so any Parquet tool
//! reads them:
//!
//! - `epochs.parquet`: `stage, epoch, metric, value` — one row per epoch and
//!   metric (`train_loss`, `val_accuracy`, `val_accuracy_mnl`; no timings, so the bytes are the same on every machine);
//! - `attributes.parquet`: `stage, split, attribute, accuracy,
//!   balanced_accuracy, majority_accuracy, positive_rate` — one row per
//!   attribute.
//! - `results/runs/index.parquet`: the run index, one row per run and stage:
//!   `run, name, run_status, started, sweep, point, stage, kind, status,
//!   seconds, key, mean_accuracy`. A finished run appends its own file to
//!   `runs/index.d/`; every [`COMPACT_AT`] files are merged into
//!   `index.parquet`, so a run's cost does not grow with history.
//!   [`read_run_index`] gives the merged view.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
}

/// One scalar: `(epoch, metric, value)`.
pub struct EpochRow {
    pub epoch: u32,
    pub metric: String,
    pub value: f64,
}

/// One attribute's scores on a split.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttributeRow {
    pub attribute: String,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub majority_accuracy: f64,
    pub positive_rate: f64,
}

pub fn write_epochs(path: &Path, stage: &str, rows: &[EpochRow]) -> Result<(), StoreError> {
    let df = df!(
        "stage" => vec![stage; rows.len()],
        "epoch" => rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        "metric" => rows.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.value).collect::<Vec<_>>(),
    );
    write(path, &mut frame(path, df)?)
}

pub fn write_attributes(
    path: &Path,
    stage: &str,
    split: &str,
    rows: &[AttributeRow],
) -> Result<(), StoreError> {
    let df = df!(
        "stage" => vec![stage; rows.len()],
        "split" => vec![split; rows.len()],
        "attribute" => rows.iter().map(|r| r.attribute.as_str()).collect::<Vec<_>>(),
        "accuracy" => rows.iter().map(|r| r.accuracy).collect::<Vec<_>>(),
        "balanced_accuracy" => rows.iter().map(|r| r.balanced_accuracy).collect::<Vec<_>>(),
        "majority_accuracy" => rows.iter().map(|r| r.majority_accuracy).collect::<Vec<_>>(),
        "positive_rate" => rows.iter().map(|r| r.positive_rate).collect::<Vec<_>>(),
    );
    write(path, &mut frame(path, df)?)
}

/// A table built for `path`, its column errors as a write error of `path`.
fn frame(path: &Path, df: PolarsResult<DataFrame>) -> Result<DataFrame, StoreError> {
    df.map_err(|source| StoreError::Write {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, df: &mut DataFrame) -> Result<(), StoreError> {
    let file = File::create(path).map_err(|e| StoreError::Write {
        path: path.into(),
        source: e.into(),
    })?;
    // Buffered: the Parquet writer emits its metadata a few bytes at a time.
    let mut out = std::io::BufWriter::new(file);
    ParquetWriter::new(&mut out)
        .finish(df)
        .map_err(|source| StoreError::Write {
            path: path.into(),
            source,
        })?;
    std::io::Write::flush(&mut out).map_err(|e| StoreError::Write {
        path: path.into(),
        source: e.into(),
    })
}

/// Read any of our tables, for `exp show` and reports.
pub fn read(path: &Path) -> Result<DataFrame, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::Read {
        path: path.into(),
        source: e.into(),
    })?;
    ParquetReader::new(file)
        .finish()
        .map_err(|source| StoreError::Read {
            path: path.into(),
            source,
        })
}

/// Every row of an `attributes.parquet` (files written before balanced
/// accuracy and the baseline existed read them as NaN).
pub fn read_attributes(path: &Path) -> Result<Vec<AttributeRow>, StoreError> {
    let df = read(path)?;
    let err = |source| StoreError::Read {
        path: path.into(),
        source,
    };
    let names = df
        .column("attribute")
        .map_err(err)?
        .str()
        .map_err(err)?
        .clone();
    let values = |c: &Column| -> Result<Vec<f64>, StoreError> {
        Ok(c.f64()
            .map_err(err)?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    // Accuracy is required; the other scores came later.
    let optional = |name: &str| match df.column(name) {
        Ok(c) => values(c),
        Err(_) => Ok(vec![f64::NAN; df.height()]),
    };
    let (acc, bal, maj, pos) = (
        values(df.column("accuracy").map_err(err)?)?,
        optional("balanced_accuracy")?,
        optional("majority_accuracy")?,
        optional("positive_rate")?,
    );
    Ok(names
        .iter()
        .enumerate()
        .map(|(i, n)| AttributeRow {
            attribute: n.unwrap_or_default().to_string(),
            accuracy: acc[i],
            balanced_accuracy: bal[i],
            majority_accuracy: maj[i],
            positive_rate: pos[i],
        })
        .collect())
}

/// One attribute's localisation score (pointing game, MaxBoxAcc): the
/// fraction of `images` that were hits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LocalisationRow {
    pub attribute: String,
    pub rate: f64,
    pub images: u32,
}

/// `pointing.parquet` / `maxboxacc.parquet`: stage, split, attribute, rate,
/// images.
pub fn write_localisation(
    path: &Path,
    stage: &str,
    split: &str,
    rows: &[LocalisationRow],
) -> Result<(), StoreError> {
    let df = df!(
        "stage" => vec![stage; rows.len()],
        "split" => vec![split; rows.len()],
        "attribute" => rows.iter().map(|r| r.attribute.as_str()).collect::<Vec<_>>(),
        "rate" => rows.iter().map(|r| r.rate).collect::<Vec<_>>(),
        "images" => rows.iter().map(|r| r.images).collect::<Vec<_>>(),
    );
    write(path, &mut frame(path, df)?)
}

/// Rows of a `pointing.parquet` / `maxboxacc.parquet`. Files written before
/// these had their own schema (the attributes schema: the rate as
/// `accuracy`, the image count in `positive_rate`) read the same.
pub fn read_localisation(path: &Path) -> Result<Vec<LocalisationRow>, StoreError> {
    let df = read(path)?;
    if df.column("rate").is_err() {
        return Ok(read_attributes(path)?
            .into_iter()
            .map(|r| LocalisationRow {
                attribute: r.attribute,
                rate: r.accuracy,
                images: if r.positive_rate.is_finite() {
                    r.positive_rate as u32
                } else {
                    0
                },
            })
            .collect());
    }
    let err = |source| StoreError::Read {
        path: path.into(),
        source,
    };
    let names = df
        .column("attribute")
        .map_err(err)?
        .str()
        .map_err(err)?
        .clone();
    let rates = df.column("rate").map_err(err)?.f64().map_err(err)?.clone();
    let images = df
        .column("images")
        .map_err(err)?
        .u32()
        .map_err(err)?
        .clone();
    Ok(names
        .iter()
        .zip(rates.iter())
        .zip(images.iter())
        .map(|((n, r), i)| LocalisationRow {
            attribute: n.unwrap_or_default().to_string(),
            rate: r.unwrap_or(f64::NAN),
            images: i.unwrap_or(0),
        })
        .collect())
}

/// One row of the run index: a stage of a run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct IndexRow {
    run: String,
    name: String,
    run_status: String,
    started: String,
    sweep: Option<String>,
    point: String,
    stage: String,
    kind: String,
    status: String,
    seconds: f64,
    key: Option<String>,
    mean_accuracy: Option<f64>,
    #[serde(default)]
    balanced_accuracy: Option<f64>,
    #[serde(default)]
    majority_accuracy: Option<f64>,
    /// The run's seed.
    #[serde(default)]
    seed: Option<u64>,
    /// Every `-s key=value` that made the run (overrides and sweep point), as
    /// a JSON object: one schema for every spec, so indexes always merge.
    #[serde(default)]
    params: String,
}

/// A run's overrides and sweep point as `{"key": "value"}` (later wins).
fn params_json(run: &crate::runs::RunRecord) -> String {
    let map: BTreeMap<&str, &str> = run
        .overrides
        .iter()
        .chain(&run.point)
        .filter_map(|o| o.split_once('='))
        .collect();
    serde_json::to_string(&map).expect("strings serialize")
}

fn index_rows(run: &crate::runs::RunRecord) -> Vec<IndexRow> {
    run.stages
        .iter()
        .map(|s| IndexRow {
            run: run.id.clone(),
            name: run.name.clone(),
            run_status: run.status.clone(),
            started: run.started.clone(),
            sweep: run.sweep.clone(),
            point: run.point.join(" "),
            stage: s.id.clone(),
            kind: s.kind.clone(),
            status: s.status.clone(),
            seconds: s.seconds,
            key: s.key.clone(),
            mean_accuracy: s.summary["mean_accuracy"].as_f64(),
            balanced_accuracy: s.summary["balanced_accuracy"].as_f64(),
            majority_accuracy: s.summary["majority_accuracy"].as_f64(),
            seed: run.spec["seed"].as_u64(),
            params: params_json(run),
        })
        .collect()
}

fn index_frame(path: &Path, rows: &[IndexRow]) -> Result<DataFrame, StoreError> {
    let df = df!(
        "run" => rows.iter().map(|r| r.run.as_str()).collect::<Vec<_>>(),
        "name" => rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "run_status" => rows.iter().map(|r| r.run_status.as_str()).collect::<Vec<_>>(),
        "started" => rows.iter().map(|r| r.started.as_str()).collect::<Vec<_>>(),
        "sweep" => rows.iter().map(|r| r.sweep.as_deref()).collect::<Vec<_>>(),
        "point" => rows.iter().map(|r| r.point.as_str()).collect::<Vec<_>>(),
        "stage" => rows.iter().map(|r| r.stage.as_str()).collect::<Vec<_>>(),
        "kind" => rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        "status" => rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        "seconds" => rows.iter().map(|r| r.seconds).collect::<Vec<_>>(),
        "key" => rows.iter().map(|r| r.key.as_deref()).collect::<Vec<_>>(),
        "mean_accuracy" => rows.iter().map(|r| r.mean_accuracy).collect::<Vec<_>>(),
        "balanced_accuracy" => rows.iter().map(|r| r.balanced_accuracy).collect::<Vec<_>>(),
        "majority_accuracy" => rows.iter().map(|r| r.majority_accuracy).collect::<Vec<_>>(),
        "seed" => rows.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "params" => rows.iter().map(|r| r.params.as_str()).collect::<Vec<_>>(),
    );
    frame(path, df)
}

/// Pending per-run index files are merged into `index.parquet` once this many exist.
pub const COMPACT_AT: usize = 64;

/// Write `df` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, df: &mut DataFrame) -> Result<(), StoreError> {
    let tmp = crate::atomic::temp_beside(path);
    write(&tmp, df)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        StoreError::Write {
            path: path.into(),
            source: e.into(),
        }
    })
}

/// Add one finished run to the index under `runs_dir`: its rows as a small
/// JSON file in `index.d/` (no Parquet writer, no thread pool on the hot
/// path), merged into `index.parquet` every [`COMPACT_AT`] runs.
pub fn append_run_index(runs_dir: &Path, run: &crate::runs::RunRecord) -> Result<(), StoreError> {
    let pending = runs_dir.join("index.d");
    let io = |path: &Path, e: std::io::Error| StoreError::Write {
        path: path.into(),
        source: e.into(),
    };
    std::fs::create_dir_all(&pending).map_err(|e| io(&pending, e))?;
    let path = pending.join(format!("{}.json", run.id));
    let text = serde_json::to_vec(&index_rows(run)).expect("serializable");
    crate::atomic::write(&path, &text).map_err(|e| io(&path, e))?;
    let count = std::fs::read_dir(&pending).map_or(0, |d| d.count());
    if count >= COMPACT_AT {
        compact_run_index(runs_dir)?;
    }
    Ok(())
}

fn pending_files(runs_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(runs_dir.join("index.d"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `index.parquet` with every pending run file merged in; a run in both
/// (a compaction interrupted before it removed its inputs) counts once. An
/// unreadable pending file (a crash mid-write cannot leave one: it is
/// renamed into place) is skipped with a warning: the index is a copy of
/// the run records, which stay the truth.
fn merged_index(runs_dir: &Path, pending: &[PathBuf]) -> Result<Option<DataFrame>, StoreError> {
    let base = runs_dir.join("index.parquet");
    let mut rows: Vec<IndexRow> = Vec::new();
    for p in pending {
        match std::fs::read(p).map(|b| serde_json::from_slice::<Vec<IndexRow>>(&b)) {
            Ok(Ok(r)) => rows.extend(r),
            _ => eprintln!(
                "warning: skipping unreadable run index file `{}`",
                p.display()
            ),
        }
    }
    let fresh: std::collections::HashSet<&str> = rows.iter().map(|r| r.run.as_str()).collect();
    let mut all: Option<DataFrame> = None;
    if base.exists() {
        let df = read(&base)?;
        let err = |source| StoreError::Read {
            path: base.clone(),
            source,
        };
        let run = df
            .column("run")
            .and_then(|c| c.str().cloned())
            .map_err(err)?;
        let keep: BooleanChunked = run
            .iter()
            .map(|r| !r.is_some_and(|r| fresh.contains(r)))
            .collect();
        all = Some(df.filter(&keep).map_err(err)?);
    }
    if !rows.is_empty() {
        let new = index_frame(&base, &rows)?;
        all = Some(match all {
            Some(mut df) => {
                // An index written before a column existed has nulls there.
                for field in new.schema().iter_fields() {
                    if df.column(field.name()).is_err() {
                        let nulls =
                            Series::full_null(field.name().clone(), df.height(), field.dtype());
                        df.with_column(nulls.into_column())
                            .map_err(|source| StoreError::Read {
                                path: base.clone(),
                                source,
                            })?;
                    }
                }
                let df =
                    df.select(new.get_column_names_owned())
                        .map_err(|source| StoreError::Read {
                            path: base.clone(),
                            source,
                        })?;
                let mut df = df;
                df.vstack_mut(&new).map_err(|source| StoreError::Read {
                    path: base.clone(),
                    source,
                })?;
                df
            }
            None => new,
        });
    }
    Ok(all)
}

/// Merge the pending run files into `index.parquet` (`exp ls` does, as
/// does every [`COMPACT_AT`]-th run), under a lock so two processes never
/// drop each other's rows.
pub fn compact_run_index(runs_dir: &Path) -> Result<(), StoreError> {
    if pending_files(runs_dir).is_empty() {
        return Ok(());
    }
    let lock_path = runs_dir.join("index.lock");
    let lock = File::create(&lock_path).map_err(|e| StoreError::Write {
        path: lock_path.clone(),
        source: e.into(),
    })?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `lock` drops.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    let pending = pending_files(runs_dir);
    if pending.is_empty() {
        return Ok(());
    }
    if let Some(mut all) = merged_index(runs_dir, &pending)? {
        all.rechunk_mut();
        write_atomic(&runs_dir.join("index.parquet"), &mut all)?;
        for p in &pending {
            let _ = std::fs::remove_file(p);
        }
    }
    drop(lock);
    Ok(())
}

/// The whole run index (compacted and pending runs), or `None` when no run
/// has finished yet.
pub fn read_run_index(runs_dir: &Path) -> Result<Option<DataFrame>, StoreError> {
    merged_index(runs_dir, &pending_files(runs_dir))
}

/// `(metric, epoch, value)` rows of an `epochs.parquet`.
pub fn read_epochs(path: &Path) -> Result<Vec<(String, u32, f64)>, StoreError> {
    let df = read(path)?;
    let err = |source| StoreError::Read {
        path: path.into(),
        source,
    };
    let metric = df
        .column("metric")
        .map_err(err)?
        .str()
        .map_err(err)?
        .clone();
    let epoch = df.column("epoch").map_err(err)?.u32().map_err(err)?.clone();
    let value = df.column("value").map_err(err)?.f64().map_err(err)?.clone();
    Ok(metric
        .iter()
        .zip(epoch.iter())
        .zip(value.iter())
        .map(|((m, e), v)| {
            (
                m.unwrap_or_default().to_string(),
                e.unwrap_or(0),
                v.unwrap_or(f64::NAN),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_table_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.parquet");
        let rows = vec![
            AttributeRow {
                attribute: "Smiling".into(),
                accuracy: 0.9,
                balanced_accuracy: 0.85,
                majority_accuracy: 0.52,
                positive_rate: 0.48,
            },
            AttributeRow {
                attribute: "Male".into(),
                accuracy: 0.8,
                balanced_accuracy: 0.8,
                majority_accuracy: 0.58,
                positive_rate: 0.42,
            },
        ];
        write_attributes(&p, "eval", "test", &rows).unwrap();
        assert_eq!(
            read_attributes(&p)
                .unwrap()
                .into_iter()
                .map(|r| (r.attribute, r.accuracy))
                .collect::<Vec<_>>(),
            vec![("Smiling".to_string(), 0.9), ("Male".to_string(), 0.8)]
        );
    }

    #[test]
    fn localisation_tables_have_their_own_columns_and_old_files_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            LocalisationRow {
                attribute: "Eyeglasses".into(),
                rate: 0.25,
                images: 120,
            },
            LocalisationRow {
                attribute: "Goatee".into(),
                rate: f64::NAN,
                images: 0,
            },
        ];
        let new = dir.path().join("pointing.parquet");
        write_localisation(&new, "localize", "test", &rows).unwrap();
        let columns: Vec<String> = read(&new)
            .unwrap()
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(columns, ["stage", "split", "attribute", "rate", "images"]);
        // Entries cached before: the attributes schema, count in `positive_rate`.
        let old = dir.path().join("old.parquet");
        let as_attributes: Vec<AttributeRow> = rows
            .iter()
            .map(|r| AttributeRow {
                attribute: r.attribute.clone(),
                accuracy: r.rate,
                balanced_accuracy: f64::NAN,
                majority_accuracy: f64::NAN,
                positive_rate: r.images as f64,
            })
            .collect();
        write_attributes(&old, "localize", "test", &as_attributes).unwrap();
        for p in [&new, &old] {
            let back = read_localisation(p).unwrap();
            assert_eq!(back.len(), 2);
            assert_eq!(
                (back[0].attribute.as_str(), back[0].rate, back[0].images),
                ("Eyeglasses", 0.25, 120)
            );
            assert!(back[1].rate.is_nan() && back[1].images == 0);
        }
    }

    fn run(id: &str) -> crate::runs::RunRecord {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": "n", "title": "t", "spec_path": "s.toml", "overrides": [],
            "started": id, "finished": null, "device": "cpu", "git_commit": null,
            "git_dirty": null, "status": "ok", "spec": {},
            "stages": [{ "id": "train", "kind": "train", "status": "cached", "key": "k",
                "key_inputs": null, "digest": null, "seconds": 0.5,
                "summary": { "mean_accuracy": 0.9 }, "error": null, "log": "" }],
        }))
        .unwrap()
    }

    fn runs_in(df: &DataFrame) -> Vec<String> {
        let mut v: Vec<String> = df
            .column("run")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_index_has_seed_params_and_merges_with_an_older_schema() {
        let dir = tempfile::tempdir().unwrap();
        // An index.parquet from before `seed`, `params` and the baselines.
        let mut old = df!(
            "run" => ["old"], "name" => ["n"], "run_status" => ["ok"], "started" => ["0"],
            "sweep" => [None::<&str>], "point" => [""], "stage" => ["train"],
            "kind" => ["train"], "status" => ["ran"], "seconds" => [1.0],
            "key" => [Some("k")], "mean_accuracy" => [Some(0.8)],
        )
        .unwrap();
        write(&dir.path().join("index.parquet"), &mut old).unwrap();
        let mut new = run("new");
        new.overrides = vec!["train.lr=0.1".into()];
        new.point = vec!["experiment.seed=2".into()];
        new.spec = serde_json::json!({ "seed": 2 });
        append_run_index(dir.path(), &new).unwrap();
        let df = read_run_index(dir.path()).unwrap().unwrap();
        assert_eq!(runs_in(&df), ["new", "old"]);
        let at = |run: &str, col: &str| {
            let i = df
                .column("run")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .position(|r| r == Some(run))
                .unwrap();
            df.column(col).unwrap().get(i).unwrap().to_string()
        };
        assert_eq!(at("new", "seed"), "2");
        assert_eq!(at("old", "seed"), "null");
        assert_eq!(
            at("new", "params"),
            r#""{"experiment.seed":"2","train.lr":"0.1"}""#
        );
    }

    #[test]
    fn run_index_appends_then_compacts_without_losing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..COMPACT_AT + 3).map(|i| format!("r{i:03}")).collect();
        for id in &ids {
            append_run_index(dir.path(), &run(id)).unwrap();
        }
        // One compaction happened at COMPACT_AT; three runs are still pending.
        assert!(dir.path().join("index.parquet").exists());
        assert_eq!(pending_files(dir.path()).len(), 3);
        assert_eq!(runs_in(&read_run_index(dir.path()).unwrap().unwrap()), ids);
        compact_run_index(dir.path()).unwrap();
        assert!(pending_files(dir.path()).is_empty());
        assert_eq!(
            runs_in(&read(&dir.path().join("index.parquet")).unwrap()),
            ids
        );
    }

    #[test]
    fn a_run_both_compacted_and_pending_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        append_run_index(dir.path(), &run("a")).unwrap();
        compact_run_index(dir.path()).unwrap();
        // As if a compaction died after writing the base, before removing its inputs.
        append_run_index(dir.path(), &run("a")).unwrap();
        append_run_index(dir.path(), &run("b")).unwrap();
        assert_eq!(
            runs_in(&read_run_index(dir.path()).unwrap().unwrap()),
            ["a", "b"]
        );
    }
}
