//! The content-addressed artefact store under `results/cache/`.
//!
//! Layout: `<root>/<hh>/<key>/` holds a stage's files and `manifest.json`;
//! `<root>/tmp/` holds entries being written (same filesystem, so the final
//! `rename` is atomic); `<root>/locks/<key>.lock` serialises writers of one
//! key across processes. A crash leaves only a temp dir, never an entry.

pub mod gc;
pub mod key;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use key::KeyInputs;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache I/O on `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cache manifest `{}` is not valid JSON", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Written beside every artefact: how it was made and what it contains.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    pub key_inputs: KeyInputs,
    /// sha256 of every file, by path relative to the entry.
    pub files: BTreeMap<String, String>,
    /// sha256 over `files`: what downstream keys depend on.
    pub digest: String,
    pub created: String,
    pub seconds: f64,
    pub host: String,
    pub versions: BTreeMap<String, String>,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    /// Small results a stage wants to show without opening files.
    pub summary: serde_json::Value,
}

/// A verified entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// What is in the cache for a key, without taking its lock.
#[derive(Debug)]
pub enum Lookup {
    Hit(Entry),
    Miss,
    /// Present but unusable (files changed, manifest broken): the reason.
    Corrupt(String),
}

/// After taking a key's lock: reuse the entry, or compute it and `save`.
pub enum CacheStatus {
    Hit(Entry),
    Miss(CacheLock),
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        for sub in ["tmp", "locks"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(Cache {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join(&key[..2]).join(key)
    }

    /// Look without locking (for `exp plan`). Verifies every file digest,
    /// except files whose size and mtime are those recorded when they were
    /// last hashed (`verified/<key>.json`): an unchanged 30 GB shard is not
    /// re-read on every run, while any rewrite of a file is caught.
    pub fn lookup(&self, key: &str) -> Lookup {
        let dir = self.entry_dir(key);
        let manifest_path = dir.join("manifest.json");
        if !manifest_path.exists() {
            return Lookup::Miss;
        }
        let manifest: Manifest = match fs::read(&manifest_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return Lookup::Corrupt(format!("unreadable manifest: {e}")),
        };
        if manifest.key != key {
            return Lookup::Corrupt(format!("manifest names key {}", manifest.key));
        }
        let memo_path = self.root.join("verified").join(format!("{key}.json"));
        // `EXP_REHASH=1`: trust no memo (a changed byte restored to the same
        // size and mtime is caught, at the price of reading every file).
        let memo: BTreeMap<String, (u64, u128)> = if rehash() {
            BTreeMap::new()
        } else {
            fs::read(&memo_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        };
        let mut stamps = BTreeMap::new();
        for (rel, want) in &manifest.files {
            let path = dir.join(rel);
            let Some(stamp) = stamp(&path) else {
                return Lookup::Corrupt(format!("`{rel}` is missing"));
            };
            if memo.get(rel) != Some(&stamp) {
                match file_digest(&path) {
                    Ok(got) if &got == want => {}
                    Ok(_) => {
                        return Lookup::Corrupt(format!(
                            "`{rel}` does not match its recorded sha256"
                        ));
                    }
                    Err(_) => return Lookup::Corrupt(format!("`{rel}` is missing")),
                }
            }
            stamps.insert(rel.clone(), stamp);
        }
        if stamps != memo {
            // Best effort: without the memo the next lookup hashes again.
            let _ = fs::create_dir_all(self.root.join("verified")).and_then(|_| {
                fs::write(
                    &memo_path,
                    serde_json::to_vec(&stamps).expect("stamps serialize"),
                )
            });
        }
        Lookup::Hit(Entry { dir, manifest })
    }

    /// Block until this process holds `key`'s lock, then report a verified
    /// hit (perhaps written meanwhile by another process) or a miss. A corrupt
    /// entry is reported through `on_corrupt`, removed and treated as a miss.
    /// With `force`, an existing entry is recomputed and replaced on save.
    pub fn acquire(
        &self,
        key: &str,
        force: bool,
        on_corrupt: impl FnOnce(&str),
    ) -> Result<CacheStatus, CacheError> {
        let lock_path = self.root.join("locks").join(format!("{key}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        file.lock().map_err(io(&lock_path))?;
        match self.lookup(key) {
            Lookup::Hit(entry) if !force => return Ok(CacheStatus::Hit(entry)),
            Lookup::Hit(_) | Lookup::Miss => {}
            Lookup::Corrupt(reason) => {
                on_corrupt(&reason);
                let dir = self.entry_dir(key);
                let trash = self
                    .root
                    .join("tmp")
                    .join(format!("corrupt-{key}-{}", std::process::id()));
                fs::rename(&dir, &trash).map_err(io(&dir))?;
                let _ = fs::remove_dir_all(&trash);
            }
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{key}-"))
            .tempdir_in(self.root.join("tmp"))
            .map_err(io(&self.root))?;
        Ok(CacheStatus::Miss(CacheLock {
            key: key.to_string(),
            _file: file,
            tmp,
            cache: self.clone(),
        }))
    }
}

/// Held while a stage computes an entry. Dropping it without `save` deletes
/// the partial output; a killed process leaves a temp dir that `gc` removes.
pub struct CacheLock {
    key: String,
    _file: File,
    tmp: tempfile::TempDir,
    cache: Cache,
}

impl CacheLock {
    /// Where the stage writes its files.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Digest every file, write the manifest, fsync and rename into place.
    pub fn save(self, mut manifest: Manifest) -> Result<Entry, CacheError> {
        let dir = self.tmp.path().to_path_buf();
        manifest.key = self.key.clone();
        manifest.files = digest_tree(&dir)?;
        manifest.digest = artefact_digest(&manifest.files);
        let path = dir.join("manifest.json");
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(
            serde_json::to_string_pretty(&manifest)
                .expect("manifest serializes")
                .as_bytes(),
        )
        .map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        let dest = self.cache.entry_dir(&self.key);
        let parent = dest.parent().expect("entry has a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        let kept = self.tmp.keep();
        if dest.exists() {
            // `--force`: move the old entry aside first; rename cannot replace a non-empty dir.
            let old = self.cache.root.join("tmp").join(format!(
                "replaced-{}-{}",
                self.key,
                std::process::id()
            ));
            fs::rename(&dest, &old).map_err(io(&dest))?;
            let _ = fs::remove_dir_all(&old);
        }
        fs::rename(&kept, &dest).map_err(io(&dest))?;
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(Entry {
            dir: dest,
            manifest,
        })
    }
}

/// Whether `EXP_REHASH` asks to hash every file on every lookup.
fn rehash() -> bool {
    std::env::var("EXP_REHASH").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `(size, mtime in ns)` of a file, if it exists.
fn stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((meta.len(), mtime))
}

pub use crate::digest::{file_digest, list_digest as artefact_digest};

/// Digest of every regular file under `dir` except the manifest.
fn digest_tree(dir: &Path) -> Result<BTreeMap<String, String>, CacheError> {
    let files = crate::digest::files_under(dir).map_err(|(p, e)| io(&p)(e))?;
    use rayon::prelude::*;
    files
        .par_iter()
        .filter(|(rel, _)| rel != "manifest.json")
        .map(|(rel, path)| {
            file_digest(path)
                .map(|d| (rel.clone(), d))
                .map_err(io(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            key: String::new(),
            key_inputs: KeyInputs {
                kind: "t".into(),
                kind_version: 1,
                params: serde_json::json!({}),
                inputs: Default::default(),
                dataset: None,
                backend: None,
            },
            files: Default::default(),
            digest: String::new(),
            created: String::new(),
            seconds: 0.0,
            host: String::new(),
            versions: Default::default(),
            git_commit: None,
            git_dirty: None,
            summary: serde_json::Value::Null,
        }
    }

    #[test]
    fn save_then_hit_then_corruption_is_a_miss() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::open(root.path()).unwrap();
        let key = "ab".repeat(32);
        let CacheStatus::Miss(lock) = cache.acquire(&key, false, |_| panic!()).unwrap() else {
            panic!("expected miss")
        };
        fs::write(lock.dir().join("weights.bin"), b"1234").unwrap();
        let entry = lock.save(manifest()).unwrap();
        assert_eq!(entry.manifest.files.len(), 1);
        assert!(matches!(cache.lookup(&key), Lookup::Hit(_)));

        fs::write(entry.dir.join("weights.bin"), b"4321").unwrap();
        assert!(matches!(cache.lookup(&key), Lookup::Corrupt(r) if r.contains("weights.bin")));
        let mut reported = String::new();
        let status = cache
            .acquire(&key, false, |r| reported = r.to_string())
            .unwrap();
        assert!(matches!(status, CacheStatus::Miss(_)));
        assert!(reported.contains("does not match"));
        assert!(!entry.dir.exists(), "corrupt entry removed");
    }

    #[test]
    fn dropped_lock_leaves_no_entry() {
        let root = tempfile::tempdir().unwrap();
        let cache = Cache::open(root.path()).unwrap();
        let key = "cd".repeat(32);
        let CacheStatus::Miss(lock) = cache.acquire(&key, false, |_| {}).unwrap() else {
            panic!()
        };
        fs::write(lock.dir().join("partial"), b"x").unwrap();
        drop(lock);
        assert!(matches!(cache.lookup(&key), Lookup::Miss));
        assert_eq!(fs::read_dir(root.path().join("tmp")).unwrap().count(), 0);
    }
}
