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
