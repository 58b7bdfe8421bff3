//! Removing what crashed runs leave behind: temp dirs whose writer is gone.

use std::path::Path;

/// Remove temp dirs in `<root>/tmp` whose key lock nobody holds.
pub fn clean_stale_tmp(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root.join("tmp")) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let key = name.split('-').next().unwrap_or_default();
        let lock = root.join("locks").join(format!("{key}.lock"));
        let free = match std::fs::File::open(&lock) {
            Ok(f) => match f.try_lock() {
                Ok(()) => true,
                Err(_) => false,
            },
            Err(_) => true,
        };
        if free && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// What `exp gc` would remove.
#[derive(Debug, Default, serde::Serialize)]
pub struct Garbage {
    /// Entries no kept run references: `(key, bytes)`.
    pub entries: Vec<(String, u64)>,
    /// Checkpoints of keys whose entry was saved (left by a crash after the save).
    pub checkpoints: Vec<(String, u64)>,
    pub bytes: u64,
}

/// Bytes under `path` (0 if unreadable).
pub fn size_of(path: &Path) -> u64 {
    crate::digest::files_under(path)
        .map(|files| {
            files
                .iter()
                .filter_map(|(_, p)| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or_else(|_| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
}

/// Entries under `root` not in `keep`, and checkpoints that are no longer needed.
pub fn find(root: &Path, keep: &std::collections::BTreeSet<String>) -> Garbage {
    let mut g = Garbage::default();
    let is_key = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    for shard in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = shard.file_name().to_string_lossy().to_string();
        if name.len() != 2 || !shard.path().is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let key = entry.file_name().to_string_lossy().to_string();
            if is_key(&key) && !keep.contains(&key) {
                let bytes = size_of(&entry.path());
                g.bytes += bytes;
                g.entries.push((key, bytes));
            }
        }
    }
    for ck in std::fs::read_dir(root.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let key = ck.file_name().to_string_lossy().to_string();
        // A checkpoint without an entry is resumable work: kept.
        if is_key(&key) && root.join(&key[..2]).join(&key).exists() {
            let bytes = size_of(&ck.path());
            g.bytes += bytes;
            g.checkpoints.push((key, bytes));
        }
    }
    g.entries.sort();
    g
}

/// Remove what [`find`] found, each entry under its key's lock (an entry a
/// process is writing is skipped). Returns the bytes freed.
pub fn remove(root: &Path, garbage: &Garbage) -> u64 {
    let mut freed = 0;
    for (key, bytes) in &garbage.entries {
        let lock = root.join("locks").join(format!("{key}.lock"));
        let held = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .and_then(|f| f.try_lock().map(|_| f).map_err(std::io::Error::other));
        let Ok(_guard) = held else { continue };
        let dir = root.join(&key[..2]).join(key);
        // Renamed first, so no reader ever sees half an entry.
        let trash = root
            .join("tmp")
            .join(format!("gc-{key}-{}", std::process::id()));
        if std::fs::rename(&dir, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
            let _ = std::fs::remove_file(root.join("verified").join(format!("{key}.json")));
            freed += bytes;
        }
    }
    for (key, bytes) in &garbage.checkpoints {
        if std::fs::remove_dir_all(root.join("checkpoints").join(key)).is_ok() {
            freed += bytes;
        }
    }
    freed
}
