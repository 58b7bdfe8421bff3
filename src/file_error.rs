//! The one error of reading or writing a file: what a stage, an annotation
//! reader, a report writer, a run record, a shard and a data fingerprint
//! fail with when the file system says no, each wrapping it (`#[from]`)
//! rather than repeating its two variants. A leaf. (A spec's read error
//! keeps its own message; the Parquet store's carry polars' errors.)

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    /// For `map_err`: a failed read of `path`.
    pub fn read(path: &Path) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| FileError::Read { path, source }
    }

    /// For `map_err`: a failed write of `path`.
    pub fn write(path: &Path) -> impl FnOnce(std::io::Error) -> Self + use<> {
        let path = path.to_path_buf();
        move |source| FileError::Write { path, source }
    }
}
