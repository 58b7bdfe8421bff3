//! CUB-200-2011 on disk: the reader for real and synthetic copies, and the
//! writer used by `synthetic-birds`.
//!
//! Files (see `datasets.md`; all ids 1-based, whitespace separated):
//! `images.txt` (`<id> <class folder>/<file>`), `image_class_labels.txt`
//! (`<id> <class>`), `classes.txt` (`<class> <name>`), `train_test_split.txt`
//! (`<id> <1 train | 0 test>`), `bounding_boxes.txt` (`<id> x y w h`),
//! `parts/parts.txt` and `parts/part_locs.txt` (`<id> <part> x y visible`);
//! images under `images/`.
//!
//! CUB has no validation split: every [`VAL_EVERY`]-th training image (in id
//! order) is held out as `val`, so model choices never look at `test`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::annotations::{AnnotationError, malformed, read, rows, write};

/// CUB's 15 part names, in `parts/parts.txt` order.
pub const PARTS: [&str; 15] = [
    "back",
    "beak",
    "belly",
    "breast",
    "crown",
    "forehead",
    "left eye",
    "left leg",
    "left wing",
    "nape",
    "right eye",
    "right leg",
    "right wing",
    "tail",
    "throat",
];

/// The held-out rule: training images 10, 20, 30, … (by id order) are `val`.
pub const VAL_EVERY: usize = 10;

/// One image's annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct BirdRecord {
    pub id: u32,
    /// Path under `images/`.
    pub file: String,
    /// 0-based class index.
    pub class: usize,
    /// 0 train, 1 val (held out from train), 2 test.
    pub split: u8,
    /// `x, y, width, height` in image pixels.
    pub bbox: [f32; 4],
    /// Visible parts: `(part index, x, y)`.
    pub parts: Vec<(usize, f32, f32)>,
}

#[derive(Debug, Clone)]
pub struct Cub {
    pub root: PathBuf,
    /// Class names as in `classes.txt` (`001.Black_footed_Albatross`).
    pub classes: Vec<String>,
    pub records: Vec<BirdRecord>,
}

impl Cub {
    pub fn image_dir(root: &Path) -> PathBuf {
        root.join("images")
    }

    /// Whether `root` looks like a CUB-200-2011 folder.
    pub fn is_cub(root: &Path) -> bool {
        root.join("images.txt").exists()
    }

    /// Read every annotation file. `parts/part_locs.txt` is optional; the
    /// others must list every image exactly once.
    pub fn open(root: &Path) -> Result<Cub, AnnotationError> {
        let path = root.join("classes.txt");
        let text = read(&path)?;
        let mut classes = Vec::new();
        for (line, row, cols) in rows(&text) {
            let [id, name] = cols[..] else {
                return Err(malformed(
                    &path,
                    line,
                    "expected `<class_id> <class_name>`",
                    row,
                ));
            };
            if id.parse::<usize>().ok() != Some(classes.len() + 1) {
                return Err(malformed(
                    &path,
                    line,
                    &format!("expected class id {}", classes.len() + 1),
                    row,
                ));
            }
            classes.push(name.to_string());
        }
        if classes.is_empty() {
            return Err(malformed(&path, 1, "no classes", ""));
        }

        let path = root.join("images.txt");
        let text = read(&path)?;
        let mut records = Vec::new();
        let mut index = HashMap::new();
        for (line, row, cols) in rows(&text) {
            let [id, file] = cols[..] else {
                return Err(malformed(
                    &path,
                    line,
                    "expected `<image_id> <image_name>`",
                    row,
                ));
            };
            let id: u32 = id
                .parse()
                .map_err(|_| malformed(&path, line, "image id is not a number", row))?;
            if index.insert(id, records.len()).is_some() {
                return Err(malformed(&path, line, "image id listed twice", row));
            }
            // Images outside the root would escape its fingerprint (the
            // cache key): a replaced file would reuse stale results.
            let inside = std::path::Path::new(file)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !inside {
                return Err(malformed(
                    &path,
                    line,
                    "image path must be relative and inside `images/` (no `/…` or `..`)",
                    row,
                ));
            }
            records.push(BirdRecord {
                id,
                file: file.to_string(),
                class: usize::MAX,
                split: u8::MAX,
                bbox: [f32::NAN; 4],
                parts: Vec::new(),
            });
        }

        let lookup =
            |path: &Path, line: usize, row: &str, id: &str| -> Result<usize, AnnotationError> {
                let id: u32 = id
                    .parse()
                    .map_err(|_| malformed(path, line, "image id is not a number", row))?;
                index
                    .get(&id)
                    .copied()
                    .ok_or_else(|| malformed(path, line, "image id not in images.txt", row))
            };
        let path = root.join("image_class_labels.txt");
        for (line, row, cols) in rows(&read(&path)?) {
            let [id, class] = cols[..] else {
                return Err(malformed(
                    &path,
                    line,
                    "expected `<image_id> <class_id>`",
                    row,
                ));
            };
            let i = lookup(&path, line, row, id)?;
            let class: usize = class
                .parse()
                .ok()
                .filter(|c| (1..=classes.len()).contains(c))
                .ok_or_else(|| {
                    malformed(
                        &path,
                        line,
                        &format!("class must be 1..={}", classes.len()),
                        row,
                    )
                })?;
            records[i].class = class - 1;
        }
        let path = root.join("train_test_split.txt");
        for (line, row, cols) in rows(&read(&path)?) {
            let [id, train] = cols[..] else {
                return Err(malformed(
                    &path,
                    line,
                    "expected `<image_id> <is_training_image>`",
                    row,
                ));
            };
            let i = lookup(&path, line, row, id)?;
            records[i].split = match train {
                "1" => 0,
                "0" => 2,
                _ => {
                    return Err(malformed(
                        &path,
                        line,
                        "is_training_image must be 1 or 0",
                        row,
                    ));
                }
            };
        }
        let path = root.join("bounding_boxes.txt");
        for (line, row, cols) in rows(&read(&path)?) {
            if cols.len() != 5 {
                return Err(malformed(
                    &path,
                    line,
                    "expected `<image_id> <x> <y> <width> <height>`",
                    row,
                ));
            }
            let i = lookup(&path, line, row, cols[0])?;
            let v: Vec<f32> = cols[1..]
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()
                .map_err(|_| malformed(&path, line, "not a number", row))?;
            if let Some(why) = crate::data::annotations::bad_coordinates(&v, true) {
                return Err(malformed(&path, line, why, row));
            }
            records[i].bbox = [v[0], v[1], v[2], v[3]];
        }
        let path = root.join("parts/part_locs.txt");
        if path.exists() {
            for (line, row, cols) in rows(&read(&path)?) {
                if cols.len() != 5 {
                    return Err(malformed(
                        &path,
                        line,
                        "expected `<image_id> <part_id> <x> <y> <visible>`",
                        row,
                    ));
                }
                let i = lookup(&path, line, row, cols[0])?;
                let part: usize = cols[1]
                    .parse()
                    .ok()
                    .filter(|p| (1..=PARTS.len()).contains(p))
                    .ok_or_else(|| malformed(&path, line, "part id must be 1..=15", row))?;
                let v: Vec<f32> = cols[2..]
                    .iter()
                    .map(|c| c.parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| malformed(&path, line, "not a number", row))?;
                if let Some(why) = crate::data::annotations::bad_coordinates(&v[..2], false) {
                    return Err(malformed(&path, line, why, row));
                }
                if v[2] > 0.0 {
                    records[i].parts.push((part - 1, v[0], v[1]));
                }
            }
        }
        for (file, what, missing) in [
            (
                "image_class_labels.txt",
                "class",
                records.iter().find(|r| r.class == usize::MAX),
            ),
            (
                "train_test_split.txt",
                "split",
                records.iter().find(|r| r.split == u8::MAX),
            ),
            (
                "bounding_boxes.txt",
                "bounding box",
                records.iter().find(|r| r.bbox[0].is_nan()),
            ),
        ] {
            if let Some(r) = missing {
                return Err(AnnotationError::Missing {
                    path: root.join(file),
                    name: format!("{} ({})", r.id, r.file),
                    what,
                });
            }
        }
        records.sort_by_key(|r| r.id);
        let mut train_seen = 0;
        for r in records.iter_mut().filter(|r| r.split == 0) {
            train_seen += 1;
            if train_seen % VAL_EVERY == 0 {
                r.split = 1;
            }
        }
        Ok(Cub {
            root: root.to_path_buf(),
            classes,
            records,
        })
    }
}

/// Write every annotation file for `records` (the images are written by the
/// caller); `split` 1 (val) is written as a training image.
pub fn write_annotations(
    root: &Path,
    classes: &[String],
    records: &[BirdRecord],
) -> Result<(), AnnotationError> {
    let mut s = String::new();
    for (k, c) in classes.iter().enumerate() {
        let _ = writeln!(s, "{} {c}", k + 1);
    }
    write(&root.join("classes.txt"), &s)?;
    let mut s = String::new();
    for (k, p) in PARTS.iter().enumerate() {
        let _ = writeln!(s, "{} {p}", k + 1);
    }
    write(&root.join("parts/parts.txt"), &s)?;
    let (mut images, mut labels, mut split, mut boxes, mut parts) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    );
    for r in records {
        let _ = writeln!(images, "{} {}", r.id, r.file);
        let _ = writeln!(labels, "{} {}", r.id, r.class + 1);
        let _ = writeln!(split, "{} {}", r.id, (r.split != 2) as u8);
        let b = r.bbox;
        let _ = writeln!(
            boxes,
            "{} {:.1} {:.1} {:.1} {:.1}",
            r.id, b[0], b[1], b[2], b[3]
        );
        for p in 0..PARTS.len() {
            match r.parts.iter().find(|q| q.0 == p) {
                Some(&(_, x, y)) => _ = writeln!(parts, "{} {} {:.1} {:.1} 1", r.id, p + 1, x, y),
                None => _ = writeln!(parts, "{} {} 0.0 0.0 0", r.id, p + 1),
            }
        }
    }
    for (file, text) in [
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", split),
        ("bounding_boxes.txt", boxes),
        ("parts/part_locs.txt", parts),
    ] {
        write(&root.join(file), &text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A three-image fixture in the exact real format, with CRLF, runs of
    /// spaces and trailing spaces.
    fn fixture(dir: &Path) {
        let files = [
            (
                "classes.txt",
                "1 001.Black_footed_Albatross\r\n2   002.Laysan_Albatross  \r\n",
            ),
            (
                "images.txt",
                "1 001.Black_footed_Albatross/a.jpg\n2 002.Laysan_Albatross/b.jpg\n3 002.Laysan_Albatross/c.jpg\n\n",
            ),
            ("image_class_labels.txt", "1 1\n2 2\n3 2\n"),
            ("train_test_split.txt", "1 1\n2 0\n3 1\n"),
            (
                "bounding_boxes.txt",
                "1 60.0 27.0 325.0 304.0\n2 139.0 30.0 153.0 264.0\n3 14.0 112.0 388.0 186.0\n",
            ),
            ("parts/part_locs.txt", "1 2 312.0 182.0 1\n1 3 0.0 0.0 0\n"),
        ];
        for (f, t) in files {
            write(&dir.join(f), t).unwrap();
        }
    }

    #[test]
    fn reads_the_real_format() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let cub = Cub::open(dir.path()).unwrap();
        assert_eq!(
            cub.classes,
            ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
        );
        assert_eq!(cub.records.len(), 3);
        let r = &cub.records[0];
        assert_eq!(
            (r.class, r.split, r.bbox, r.parts.clone()),
            (0, 0, [60.0, 27.0, 325.0, 304.0], vec![(1, 312.0, 182.0)])
        );
        assert_eq!((cub.records[1].class, cub.records[1].split), (1, 2));
    }

    #[test]
    fn a_nan_box_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        write(
            &dir.path().join("bounding_boxes.txt"),
            "1 60.0 27.0 325.0 304.0\n2 nan 30.0 153.0 264.0\n3 14.0 112.0 388.0 186.0\n",
        )
        .unwrap();
        let err = Cub::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bounding_boxes.txt:2: coordinates must be finite"),
            "{err}"
        );
    }

    #[test]
    fn images_outside_the_root_are_refused_with_their_line() {
        for bad in ["/data/elsewhere/a.jpg", "../a.jpg", "001.X/../../a.jpg"] {
            let dir = tempfile::tempdir().unwrap();
            fixture(dir.path());
            let text = format!(
                "1 001.Black_footed_Albatross/a.jpg\n2 {bad}\n3 002.Laysan_Albatross/c.jpg\n"
            );
            write(&dir.path().join("images.txt"), &text).unwrap();
            let err = Cub::open(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains("images.txt:2: image path must be relative"),
                "{err}"
            );
        }
    }

    #[test]
    fn malformed_lines_name_file_line_and_text() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        write(
            &dir.path().join("image_class_labels.txt"),
            "1 1\n2 7\n3 2\n",
        )
        .unwrap();
        let err = Cub::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("image_class_labels.txt:2: class must be 1..=2: `2 7`"),
            "{err}"
        );
        fixture(dir.path());
        write(
            &dir.path().join("bounding_boxes.txt"),
            "1 60.0 27.0 325.0 304.0\n3 14 112 388 186\n",
        )
        .unwrap();
        let err = Cub::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bounding_boxes.txt` but has no bounding box")
                && err.contains("2 (002.Laysan_Albatross/b.jpg)"),
            "{err}"
        );
    }

    #[test]
    fn every_tenth_training_image_is_val_and_writer_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let classes = vec!["001.A".to_string(), "002.B".to_string()];
        let records: Vec<BirdRecord> = (1..=25)
            .map(|id| BirdRecord {
                id,
                file: format!("00{}.X/{id}.jpg", 1 + id % 2),
                class: (id % 2) as usize,
                split: if id > 22 { 2 } else { 0 },
                bbox: [1.0, 2.0, 3.0, 4.0],
                parts: vec![(4, 5.0, 6.0)],
            })
            .collect();
        write_annotations(dir.path(), &classes, &records).unwrap();
        let cub = Cub::open(dir.path()).unwrap();
        let val: Vec<u32> = cub
            .records
            .iter()
            .filter(|r| r.split == 1)
            .map(|r| r.id)
            .collect();
        assert_eq!(val, [10, 20]);
        assert_eq!(cub.records[0].parts, records[0].parts);
        assert_eq!(cub.records.iter().filter(|r| r.split == 2).count(), 3);
    }
}
