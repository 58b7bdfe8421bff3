//! sha256 of bytes, files, sorted file lists and folder trees: the one
//! place content is hashed (cache entries, data fingerprints, the files a
//! command stage names). A leaf: no other module of the crate.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn file_digest(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// sha256 over a sorted `(path, digest)` list: a tree's identity.
pub fn list_digest(files: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (path, digest) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(digest.as_bytes());
        h.update([b'\n']);
    }
    hex::encode(h.finalize())
}

/// Every file under `root`, as (`/`-separated path relative to `root`, path).
/// An error names the folder it could not read.
pub fn files_under(root: &Path) -> Result<Vec<(String, PathBuf)>, (PathBuf, std::io::Error)> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), (PathBuf, std::io::Error)> {
        let entries = std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
        for entry in entries {
            let path = entry.map_err(|e| (dir.to_path_buf(), e))?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// A file's sha256, or [`list_digest`] over a folder's files.
pub fn path_digest(path: &Path) -> std::io::Result<String> {
    if path.is_file() {
        return file_digest(path);
    }
    let mut files = BTreeMap::new();
    for (rel, p) in files_under(path).map_err(|(_, e)| e)? {
        files.insert(rel, file_digest(&p)?);
    }
    Ok(list_digest(&files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_digest_changes_with_a_file_and_with_a_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "one").unwrap();
        let before = path_digest(dir.path()).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "two").unwrap();
        let edited = path_digest(dir.path()).unwrap();
        std::fs::rename(dir.path().join("sub/a.txt"), dir.path().join("sub/b.txt")).unwrap();
        let renamed = path_digest(dir.path()).unwrap();
        assert_ne!(before, edited);
        assert_ne!(edited, renamed);
        assert_eq!(
            file_digest(&dir.path().join("sub/b.txt")).unwrap(),
            sha256_hex(b"two")
        );
    }
}
