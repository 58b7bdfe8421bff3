//! Data set fingerprints: sha256 over every annotation and image file of a
//! root, with a memo keyed by (path, size, mtime) so that fingerprinting
//! 200,000 unchanged files again only stats them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::file_error::FileError;

#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("data set root `{}` is not readable", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    /// Absolute path → (size, mtime in ns, sha256).
    files: BTreeMap<String, (u64, u128, String)>,
}

/// Fingerprint of every file under `root` (sorted by relative path).
/// `memo` is a JSON file that makes unchanged files free.
pub fn fingerprint(root: &Path, memo: &Path) -> Result<String, FingerprintError> {
    let files = crate::digest::files_under(root)
        .map_err(|(path, source)| FingerprintError::Root { path, source })?;
    let mut old: Memo = std::fs::read(memo)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let digests: Vec<(String, (u64, u128, String))> = files
        .par_iter()
        .map(|(rel, path)| {
            let meta = std::fs::metadata(path).map_err(FileError::read(path))?;
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let key = path.to_string_lossy().to_string();
            if let Some((size, m, sha)) = old.files.get(&key) {
                if *size == meta.len() && *m == mtime {
                    return Ok((rel.clone(), (meta.len(), mtime, sha.clone())));
                }
            }
            let sha = crate::digest::file_digest(path).map_err(FileError::read(path))?;
            Ok((rel.clone(), (meta.len(), mtime, sha)))
        })
        .collect::<Result<_, FingerprintError>>()?;
    let mut h = Sha256::new();
    for ((rel, entry), (_, path)) in digests.into_iter().zip(&files) {
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(entry.2.as_bytes());
        h.update([b'\n']);
        old.files.insert(path.to_string_lossy().to_string(), entry);
    }
    // A memo that cannot be written only costs time next run.
    if let Some(parent) = memo.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(memo, serde_json::to_vec(&old).unwrap_or_default());
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_content_and_reuses_the_memo() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        std::fs::create_dir_all(root.join("Img")).unwrap();
        std::fs::write(root.join("Img/a.jpg"), b"aaa").unwrap();
        std::fs::write(root.join("list.txt"), b"1").unwrap();
        let memo = dir.path().join("memo.json");
        let a = fingerprint(&root, &memo).unwrap();
        assert_eq!(a, fingerprint(&root, &memo).unwrap());
        assert!(std::fs::read_to_string(&memo).unwrap().contains("a.jpg"));
        std::fs::write(root.join("Img/a.jpg"), b"aab").unwrap();
        assert_ne!(a, fingerprint(&root, &memo).unwrap());
        assert!(
            fingerprint(&dir.path().join("missing"), &memo)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );
    }
}
