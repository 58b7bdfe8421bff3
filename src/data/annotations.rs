//! What the CelebA and CUB-200 readers share: the error type (every
//! malformed line names its file, line and text) and tolerant line splitting
//! (runs of spaces, CRLF and trailing spaces all parse).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    #[error("{}:{line}: {message}: `{text}`", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
        text: String,
    },
    #[error("image `{name}` is listed in `{}` but has no {what}", path.display())]
    Missing {
        path: PathBuf,
        name: String,
        what: &'static str,
    },
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
}

pub fn read(path: &Path) -> Result<String, AnnotationError> {
    std::fs::read_to_string(path).map_err(|source| {
        crate::file_error::FileError::Read {
            path: path.into(),
            source,
        }
        .into()
    })
}

pub fn write(path: &Path, text: &str) -> Result<(), AnnotationError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| crate::file_error::FileError::Write {
        path: parent.into(),
        source,
    })?;
    std::fs::write(path, text).map_err(|source| {
        crate::file_error::FileError::Write {
            path: path.into(),
            source,
        }
        .into()
    })
}

/// Lines with 1-based numbers, CRLF and trailing spaces stripped.
pub fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end()))
}

/// Non-empty lines split on runs of whitespace, with their line numbers.
pub fn rows(text: &str) -> impl Iterator<Item = (usize, &str, Vec<&str>)> {
    numbered(text)
        .map(|(n, l)| (n, l, l.split_whitespace().collect::<Vec<_>>()))
        .filter(|(_, _, c)| !c.is_empty())
}

pub fn malformed(path: &Path, line: usize, message: &str, text: &str) -> AnnotationError {
    AnnotationError::Malformed {
        path: path.into(),
        line,
        message: message.into(),
        text: text.into(),
    }
}

/// Why annotation coordinates cannot be pixels, if they cannot: NaN,
/// infinite or beyond ±100,000; for a box `x y width height`, a width or
/// height that is not positive.
pub fn bad_coordinates(values: &[f32], is_box: bool) -> Option<&'static str> {
    if values.iter().any(|v| !v.is_finite() || v.abs() > 100_000.0) {
        return Some("coordinates must be finite numbers within ±100000");
    }
    if is_box && (values[2] <= 0.0 || values[3] <= 0.0) {
        return Some("box width and height must be > 0");
    }
    None
}

#[cfg(test)]
mod coordinate_tests {
    use super::bad_coordinates;

    #[test]
    fn nan_negative_zero_and_huge_boxes_are_refused() {
        for b in [
            [f32::NAN, 0.0, 5.0, 5.0],
            [0.0, 0.0, -3.0, 5.0],
            [0.0, 0.0, 5.0, 0.0],
            [1e30, 0.0, 5.0, 5.0],
        ] {
            assert!(bad_coordinates(&b, true).is_some(), "{b:?}");
        }
        assert_eq!(bad_coordinates(&[-2.0, 3.0, 5.0, 5.0], true), None);
        assert!(bad_coordinates(&[f32::NAN, 1.0], false).is_some());
    }
}
