//! The one error of reading or writing a file: what a stage, an annotation
//! reader and a report writer fail with when the file system says no, each
//! wrapping it (`#[from]`) rather than repeating its two variants. A leaf.

use std::path::PathBuf;

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
