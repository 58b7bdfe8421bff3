//! Parquet tables through polars, in long ("tidy") form so any Parquet tool
//! reads them:
//!
//! - `epochs.parquet`: `stage, epoch, metric, value` — one row per epoch and
//!   metric (`train_loss`, `val_accuracy`, `val_accuracy_mnl`, `seconds`);
//! - `attributes.parquet`: `stage, split, attribute, accuracy,
//!   balanced_accuracy, majority_accuracy, positive_rate` — one row per
//!   attribute.
//! - `results/runs/index.parquet`: the run index, one row per run and stage:
//!   `run, name, run_status, started, sweep, point, stage, kind, status,
//!   seconds, key, mean_accuracy` (rewritten after every run).

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
pub struct AttributeRow {
    pub attribute: String,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub majority_accuracy: f64,
    pub positive_rate: f64,
}

pub fn write_epochs(path: &Path, stage: &str, rows: &[EpochRow]) -> Result<(), StoreError> {
    let mut df = df!(
        "stage" => vec![stage; rows.len()],
        "epoch" => rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        "metric" => rows.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>(),
        "value" => rows.iter().map(|r| r.value).collect::<Vec<_>>(),
    )
    .map_err(|source| StoreError::Write {
        path: path.into(),
        source,
    })?;
    write(path, &mut df)
}

pub fn write_attributes(
    path: &Path,
    stage: &str,
    split: &str,
    rows: &[AttributeRow],
) -> Result<(), StoreError> {
    let mut df = df!(
        "stage" => vec![stage; rows.len()],
        "split" => vec![split; rows.len()],
        "attribute" => rows.iter().map(|r| r.attribute.as_str()).collect::<Vec<_>>(),
        "accuracy" => rows.iter().map(|r| r.accuracy).collect::<Vec<_>>(),
        "balanced_accuracy" => rows.iter().map(|r| r.balanced_accuracy).collect::<Vec<_>>(),
        "majority_accuracy" => rows.iter().map(|r| r.majority_accuracy).collect::<Vec<_>>(),
        "positive_rate" => rows.iter().map(|r| r.positive_rate).collect::<Vec<_>>(),
    )
    .map_err(|source| StoreError::Write {
        path: path.into(),
        source,
    })?;
    write(path, &mut df)
}

fn write(path: &Path, df: &mut DataFrame) -> Result<(), StoreError> {
    let file = File::create(path).map_err(|e| StoreError::Write {
        path: path.into(),
        source: e.into(),
    })?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(|source| StoreError::Write {
            path: path.into(),
            source,
        })?;
    Ok(())
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

/// `(attribute, accuracy)` pairs from an `attributes.parquet`.
pub fn read_attribute_accuracy(path: &Path) -> Result<Vec<(String, f64)>, StoreError> {
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
    let acc = df
        .column("accuracy")
        .map_err(err)?
        .f64()
        .map_err(err)?
        .clone();
    Ok(names
        .iter()
        .zip(acc.iter())
        .map(|(n, a)| (n.unwrap_or_default().to_string(), a.unwrap_or(f64::NAN)))
        .collect())
}

/// Rewrite the run index (atomically: temp file + rename).
pub fn write_run_index(path: &Path, runs: &[crate::runs::RunRecord]) -> Result<(), StoreError> {
    let rows: Vec<(&crate::runs::RunRecord, &crate::runs::StageRecord)> = runs
        .iter()
        .flat_map(|r| r.stages.iter().map(move |s| (r, s)))
        .collect();
    let mut df = df!(
        "run" => rows.iter().map(|(r, _)| r.id.as_str()).collect::<Vec<_>>(),
        "name" => rows.iter().map(|(r, _)| r.name.as_str()).collect::<Vec<_>>(),
        "run_status" => rows.iter().map(|(r, _)| r.status.as_str()).collect::<Vec<_>>(),
        "started" => rows.iter().map(|(r, _)| r.started.as_str()).collect::<Vec<_>>(),
        "sweep" => rows.iter().map(|(r, _)| r.sweep.as_deref()).collect::<Vec<_>>(),
        "point" => rows.iter().map(|(r, _)| r.point.join(" ")).collect::<Vec<_>>(),
        "stage" => rows.iter().map(|(_, s)| s.id.as_str()).collect::<Vec<_>>(),
        "kind" => rows.iter().map(|(_, s)| s.kind.as_str()).collect::<Vec<_>>(),
        "status" => rows.iter().map(|(_, s)| s.status.as_str()).collect::<Vec<_>>(),
        "seconds" => rows.iter().map(|(_, s)| s.seconds).collect::<Vec<_>>(),
        "key" => rows.iter().map(|(_, s)| s.key.as_deref()).collect::<Vec<_>>(),
        "mean_accuracy" => rows.iter().map(|(_, s)| s.summary["mean_accuracy"].as_f64()).collect::<Vec<_>>(),
    )
    .map_err(|source| StoreError::Write { path: path.into(), source })?;
    let tmp = path.with_extension(format!("parquet.{}.tmp", std::process::id()));
    write(&tmp, &mut df)?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::Write {
        path: path.into(),
        source: e.into(),
    })
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
            read_attribute_accuracy(&p).unwrap(),
            vec![("Smiling".to_string(), 0.9), ("Male".to_string(), 0.8)]
        );
    }
}
