//! Preprocessed shards: every split decoded, cropped and resized once into
//! raw u8 files inside the data stage's cache entry, then memory-mapped by
//! every stage that reads images.
//!
//! `shards/<split>.u8` — `n × 3 × S × S` pixels, channel-major per image;
//! `shards/<split>.labels` — `n × L` bytes (0/1: CelebA's 40 attributes, or
//!   CUB's classes one-hot);
//! `shards/<split>.files` — one image name per line;
//! `shards/meta.json` — `{ "image_size": S, "labels": L, "single_label": bool }`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ImageSet, LoadError, Pixels, Source};
use crate::file_error::FileError;
use crate::vocab::Split;

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    File(#[from] crate::file_error::FileError),
    #[error("shard `{}` is unreadable or inconsistent: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

/// Decode every split of `src` at `size` and write the shards under `dir`.
pub fn write(
    src: &Source,
    size: usize,
    dir: &Path,
    progress: &dyn Fn(Split),
) -> Result<(), LoadError> {
    let failed = |path: &Path| {
        let write = FileError::write(path);
        move |e| ShardError::File(write(e))
    };
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    let width = src.label_names()?.len();
    let all: Vec<usize> = (0..width).collect();
    for split in [Split::Train, Split::Val, Split::Test] {
        progress(split);
        let set = match ImageSet::decode(src, split, size, &all) {
            Ok(set) => set,
            Err(LoadError::Empty(_)) => continue,
            Err(e) => return Err(e),
        };
        let name = split.as_str();
        for (ext, bytes) in [
            ("u8", &set.pixels[..]),
            ("labels", &set.labels[..]),
            ("files", set.files.join("\n").as_bytes()),
        ] {
            let path = dir.join(format!("{name}.{ext}"));
            std::fs::write(&path, bytes).map_err(failed(&path))?;
        }
    }
    let meta = dir.join("meta.json");
    let text = serde_json::json!({ "image_size": size, "labels": width, "single_label": src.single_label() }).to_string();
    std::fs::write(&meta, text).map_err(failed(&meta))?;
    Ok(())
}

/// Map one split's shard, if `dir` holds one of side `size`.
pub fn read(
    dir: &Path,
    split: Split,
    size: usize,
    attributes: &[usize],
) -> Result<Option<ImageSet>, ShardError> {
    let meta: serde_json::Value = match std::fs::read(dir.join("meta.json")) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| ShardError::Read {
            path: dir.join("meta.json"),
            message: e.to_string(),
        })?,
        Err(_) => return Ok(None),
    };
    if meta["image_size"].as_u64() != Some(size as u64) {
        return Ok(None);
    }
    let path = |ext: &str| dir.join(format!("{}.{ext}", split.as_str()));
    let px = path("u8");
    let file = std::fs::File::open(&px).map_err(|e| ShardError::Read {
        path: px.clone(),
        message: e.to_string(),
    })?;
    // Safety: cache entries are immutable once committed (and verified by digest on lookup).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ShardError::Read {
        path: px.clone(),
        message: e.to_string(),
    })?;
    let files: Vec<String> = std::fs::read_to_string(path("files"))
        .map_err(|e| ShardError::Read {
            path: path("files"),
            message: e.to_string(),
        })?
        .lines()
        .map(String::from)
        .collect();
    let all = std::fs::read(path("labels")).map_err(|e| ShardError::Read {
        path: path("labels"),
        message: e.to_string(),
    })?;
    // Shards written before CUB support hold CelebA's 40 labels.
    let width = meta["labels"].as_u64().unwrap_or(40) as usize;
    let single_label = meta["single_label"].as_bool().unwrap_or(false);
    if let Some(&bad) = attributes.iter().find(|&&j| j >= width) {
        return Err(ShardError::Read {
            path: path("labels"),
            message: format!("label {bad} asked of a shard with {width} labels"),
        });
    }
    let per = 3 * size * size;
    if map.len() != files.len() * per || all.len() != files.len() * width {
        return Err(ShardError::Read {
            path: px,
            message: format!(
                "{} bytes and {} labels for {} images",
                map.len(),
                all.len(),
                files.len()
            ),
        });
    }
    let labels = (0..files.len())
        .flat_map(|i| attributes.iter().map(move |&j| (i, j)))
        .map(|(i, j)| all[i * width + j])
        .collect();
    let len = map.len();
    Ok(Some(ImageSet {
        size,
        pixels: Pixels::Mapped(Arc::new(map), 0..len),
        labels,
        attributes: attributes.to_vec(),
        files,
        single_label,
    }))
}
