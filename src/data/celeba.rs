//! CelebA on disk: the writer used by `synthetic-faces` and the reader for
//! real and synthetic copies alike.
//!
//! Files (see `datasets.md`): `Img/img_celeba/*.jpg`,
//! `Anno/list_attr_celeba.txt`, `Anno/list_bbox_celeba.txt`,
//! `Anno/list_landmarks_celeba.txt`, `Eval/list_eval_partition.txt`, and for
//! synthetic sets `Anno/list_attr_regions.txt` (our addition: the box of
//! every present attribute).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::annotations::{AnnotationError, malformed, numbered, read};
use crate::attributes::CELEBA;

/// One image's annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub file: String,
    /// 0 train, 1 val, 2 test.
    pub split: u8,
    pub labels: [bool; 40],
    pub bbox: Option<[f32; 4]>,
    pub landmarks: Option<[f32; 10]>,
}

/// Everything in a CelebA root except the pixels.
#[derive(Debug, Clone)]
pub struct Celeba {
    pub root: PathBuf,
    pub records: Vec<Record>,
}

impl Celeba {
    pub fn image_dir(root: &Path) -> PathBuf {
        root.join("Img").join("img_celeba")
    }

    pub fn image_path(&self, r: &Record) -> PathBuf {
        Self::image_dir(&self.root).join(&r.file)
    }

    /// Read the annotation files. Bbox and landmarks are optional files;
    /// when present they must cover every image.
    pub fn open(root: &Path) -> Result<Celeba, AnnotationError> {
        let attr_path = root.join("Anno/list_attr_celeba.txt");
        let attr = read(&attr_path)?;
        let mut lines = numbered(&attr);
        let (n_line, count) = lines
            .next()
            .ok_or_else(|| malformed(&attr_path, 1, "empty file", ""))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| malformed(&attr_path, n_line, "expected the image count", count))?;
        let (h_line, header) = lines
            .next()
            .ok_or_else(|| malformed(&attr_path, 2, "missing the attribute names", ""))?;
        let names: Vec<&str> = header.split_whitespace().collect();
        if names != CELEBA {
            return Err(malformed(
                &attr_path,
                h_line,
                "expected CelebA's 40 attribute names in order",
                header,
            ));
        }
        // The header's count is checked against the lines below; it only
        // sizes the first allocation, so a huge one must not abort.
        let mut records = Vec::with_capacity(count.min(1 << 20));
        for (line, text) in lines {
            let mut cols = text.split_whitespace();
            let Some(file) = cols.next() else { continue };
            let mut labels = [false; 40];
            let mut k = 0;
            for v in cols {
                if k == 40 {
                    return Err(malformed(&attr_path, line, "more than 40 labels", text));
                }
                labels[k] = match v {
                    "1" => true,
                    "-1" | "0" => false,
                    _ => {
                        return Err(malformed(
                            &attr_path,
                            line,
                            &format!("label {} is `{v}`, expected 1 or -1", k + 1),
                            text,
                        ));
                    }
                };
                k += 1;
            }
            if k != 40 {
                return Err(malformed(
                    &attr_path,
                    line,
                    &format!("expected 40 labels, found {k}"),
                    text,
                ));
            }
            records.push(Record {
                file: file.to_string(),
                split: 0,
                labels,
                bbox: None,
                landmarks: None,
            });
        }
        if records.len() != count {
            return Err(malformed(
                &attr_path,
                1,
                &format!("header says {count} images, file lists {}", records.len()),
                &count.to_string(),
            ));
        }
        let index: std::collections::HashMap<String, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.file.clone(), i))
            .collect();

        let part_path = root.join("Eval/list_eval_partition.txt");
        let part = read(&part_path)?;
        let mut seen = vec![false; records.len()];
        for (line, text) in numbered(&part) {
            let cols: Vec<&str> = text.split_whitespace().collect();
            if cols.is_empty() {
                continue;
            }
            let [file, split] = cols[..] else {
                return Err(malformed(
                    &part_path,
                    line,
                    "expected `<image> <0|1|2>`",
                    text,
                ));
            };
            let split: u8 = match split {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                _ => return Err(malformed(&part_path, line, "split must be 0, 1 or 2", text)),
            };
            let &i = index.get(file).ok_or_else(|| {
                malformed(&part_path, line, "image not in list_attr_celeba.txt", text)
            })?;
            records[i].split = split;
            seen[i] = true;
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(AnnotationError::Missing {
                path: part_path,
                name: records[i].file.clone(),
                what: "split",
            });
        }
        for (name, width) in [
            ("list_bbox_celeba.txt", 4),
            ("list_landmarks_celeba.txt", 10),
        ] {
            let path = root.join("Anno").join(name);
            if !path.exists() {
                continue;
            }
            let text = read(&path)?;
            let mut lines = numbered(&text).skip(2);
            let mut got = 0;
            for (line, row) in lines.by_ref() {
                let cols: Vec<&str> = row.split_whitespace().collect();
                if cols.is_empty() {
                    continue;
                }
                if cols.len() != width + 1 {
                    return Err(malformed(
                        &path,
                        line,
                        &format!("expected an image name and {width} numbers"),
                        row,
                    ));
                }
                let vals: Result<Vec<f32>, _> =
                    cols[1..].iter().map(|v| v.parse::<f32>()).collect();
                let vals = vals.map_err(|_| malformed(&path, line, "not a number", row))?;
                if let Some(why) = crate::data::annotations::bad_coordinates(&vals, width == 4) {
                    return Err(malformed(&path, line, why, row));
                }
                let &i = index.get(cols[0]).ok_or_else(|| {
                    malformed(&path, line, "image not in list_attr_celeba.txt", row)
                })?;
                if width == 4 {
                    records[i].bbox = Some([vals[0], vals[1], vals[2], vals[3]]);
                } else {
                    records[i].landmarks = Some(std::array::from_fn(|k| vals[k]));
                }
                got += 1;
            }
            if got != records.len() {
                let what = if width == 4 {
                    "bounding box"
                } else {
                    "landmarks"
                };
                let missing = records
                    .iter()
                    .find(|r| {
                        if width == 4 {
                            r.bbox.is_none()
                        } else {
                            r.landmarks.is_none()
                        }
                    })
                    .map(|r| r.file.clone())
                    .unwrap_or_default();
                return Err(AnnotationError::Missing {
                    path,
                    name: missing,
                    what,
                });
            }
        }
        Ok(Celeba {
            root: root.to_path_buf(),
            records,
        })
    }
}

/// Writes the annotation files for `records` (images are written by the caller).
pub fn write_annotations(
    root: &Path,
    records: &[Record],
    regions: Option<&[Vec<(usize, [f32; 4])>]>,
) -> Result<(), AnnotationError> {
    let mut attr = format!("{}\n{}\n", records.len(), CELEBA.join(" "));
    let mut part = String::new();
    let mut bbox = format!("{}\nimage_id x_1 y_1 width height\n", records.len());
    let mut lm = format!(
        "{}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n",
        records.len()
    );
    for r in records {
        attr.push_str(&r.file);
        for &l in &r.labels {
            attr.push_str(if l { "  1" } else { " -1" });
        }
        attr.push('\n');
        let _ = writeln!(part, "{} {}", r.file, r.split);
        if let Some(b) = r.bbox {
            let _ = writeln!(
                bbox,
                "{:<10} {:>5} {:>5} {:>5} {:>5}",
                r.file,
                b[0].round(),
                b[1].round(),
                b[2].round(),
                b[3].round()
            );
        }
        if let Some(l) = r.landmarks {
            let _ = write!(lm, "{:<10}", r.file);
            for v in l {
                let _ = write!(lm, " {:>5}", v.round());
            }
            lm.push('\n');
        }
    }
    let mut files = vec![
        ("Anno/list_attr_celeba.txt", attr),
        ("Eval/list_eval_partition.txt", part),
        ("Anno/list_bbox_celeba.txt", bbox),
        ("Anno/list_landmarks_celeba.txt", lm),
    ];
    let mut reg = String::from("image_id attribute x_1 y_1 width height\n");
    if let Some(regions) = regions {
        for (r, boxes) in records.iter().zip(regions) {
            for (j, b) in boxes {
                let _ = writeln!(
                    reg,
                    "{} {} {:.1} {:.1} {:.1} {:.1}",
                    r.file,
                    CELEBA[*j],
                    b[0],
                    b[1],
                    b[2] - b[0],
                    b[3] - b[1]
                );
            }
        }
        files.push(("Anno/list_attr_regions.txt", reg));
    }
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).map_err(|source| {
            crate::file_error::FileError::Write {
                path: path.clone(),
                source,
            }
        })?;
        std::fs::write(&path, text).map_err(|source| crate::file_error::FileError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Ground-truth regions of a synthetic set: per image, `(attribute, [x0, y0, x1, y1])`.
pub fn read_regions(
    root: &Path,
    records: &[Record],
) -> Result<Vec<Vec<(usize, [f32; 4])>>, AnnotationError> {
    let path = root.join("Anno/list_attr_regions.txt");
    let text = read(&path)?;
    let index: std::collections::HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.file.as_str(), i))
        .collect();
    let mut out = vec![Vec::new(); records.len()];
    for (line, row) in numbered(&text).skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        let bad = || malformed(&path, line, "expected `<image> <attribute> x y w h`", row);
        if cols.len() != 6 {
            return Err(bad());
        }
        let &i = index.get(cols[0]).ok_or_else(bad)?;
        let j = crate::attributes::index_of(cols[1]).ok_or_else(bad)?;
        let v: Vec<f32> = cols[2..]
            .iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        out[i].push((j, [v[0], v[1], v[0] + v[2], v[1] + v[3]]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &Path, attr_rows: &str) {
        std::fs::create_dir_all(dir.join("Anno")).unwrap();
        std::fs::create_dir_all(dir.join("Eval")).unwrap();
        let header = format!("2\r\n{}  \r\n", CELEBA.join(" "));
        std::fs::write(dir.join("Anno/list_attr_celeba.txt"), header + attr_rows).unwrap();
        std::fs::write(
            dir.join("Eval/list_eval_partition.txt"),
            "000001.jpg 0\n000002.jpg 2\n",
        )
        .unwrap();
    }

    fn row(name: &str, first: &str) -> String {
        format!("{name} {first}{}\r\n", "  -1".repeat(39))
    }

    #[test]
    fn parses_runs_of_spaces_crlf_and_trailing_spaces() {
        let dir = tempfile::tempdir().unwrap();
        fixture(
            dir.path(),
            &(row("000001.jpg", " 1") + &row("000002.jpg", "-1") + "   \r\n"),
        );
        let c = Celeba::open(dir.path()).unwrap();
        assert_eq!(c.records.len(), 2);
        assert!(c.records[0].labels[0] && !c.records[1].labels[0]);
        assert_eq!(c.records[1].split, 2);
    }

    #[test]
    fn malformed_label_names_file_line_and_text() {
        let dir = tempfile::tempdir().unwrap();
        fixture(
            dir.path(),
            &(row("000001.jpg", " 1") + &row("000002.jpg", " 2")),
        );
        let err = Celeba::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(
                "list_attr_celeba.txt:4: label 1 is `2`, expected 1 or -1: `000002.jpg  2  -1"
            ),
            "{err}"
        );
    }

    #[test]
    fn count_line_99999999999999_is_an_error_not_an_abort() {
        for count in ["99999999999999", "18446744073709551615"] {
            let dir = tempfile::tempdir().unwrap();
            fixture(dir.path(), &row("000001.jpg", " 1"));
            let p = dir.path().join("Anno/list_attr_celeba.txt");
            let text =
                std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen("2\r\n", &format!("{count}\r\n"), 1);
            std::fs::write(&p, text).unwrap();
            let err = Celeba::open(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains(&format!("header says {count} images, file lists 1")),
                "{err}"
            );
        }
    }
}
