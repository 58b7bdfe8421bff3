//! Data sets: the synthetic generator, the CelebA reader, and in-memory
//! image sets with seeded, thread-count-independent batching.

pub mod annotations;
pub mod celeba;
pub mod cub;
pub mod draw;
pub mod fingerprint;
pub mod shards;
pub mod spec;
pub mod synthetic_birds;
pub mod synthetic_faces;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::vocab::Split;
use annotations::AnnotationError;
use celeba::{Celeba, Record};
use cub::Cub;
pub use spec::{DataSpec, RealData};

/// Write a `synthetic-faces` set in CelebA's layout under `root`.
/// `progress` is called with the number of images done so far.
pub fn generate_synthetic_faces(
    spec: &DataSpec,
    root: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<usize, AnnotationError> {
    let total = (spec.train_images + spec.val_images + spec.test_images) as usize;
    let dir = Celeba::image_dir(root);
    std::fs::create_dir_all(&dir).map_err(|source| crate::file_error::FileError::Write {
        path: dir.clone(),
        source,
    })?;
    let size = spec.image_size as usize;
    let done = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<Result<(Record, Vec<(usize, [f32; 4])>), AnnotationError>> = (0..total)
        .into_par_iter()
        .map(|i| {
            let face = if spec.independent_parts {
                synthetic_faces::generate_independent_parts(
                    spec.seed,
                    i as u64,
                    size,
                    spec.generator,
                )
            } else {
                synthetic_faces::generate(spec.seed, i as u64, size, spec.generator)
            };
            let file = format!("{:06}.jpg", i + 1);
            let path = dir.join(&file);
            write_jpeg(&path, &face.rgb, size)?;
            let split = if i < spec.train_images as usize {
                0
            } else if i < (spec.train_images + spec.val_images) as usize {
                1
            } else {
                2
            };
            let lm = face.landmarks;
            let record = Record {
                file,
                split,
                labels: face.labels,
                bbox: Some(face.bbox),
                landmarks: Some([
                    lm[0].0, lm[0].1, lm[1].0, lm[1].1, lm[2].0, lm[2].1, lm[3].0, lm[3].1,
                    lm[4].0, lm[4].1,
                ]),
            };
            let regions = (0..40)
                .filter(|&j| face.labels[j])
                .map(|j| (j, face.regions[j]))
                .collect();
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 64 == 0 || n as usize == total {
                progress(n);
            }
            Ok((record, regions))
        })
        .collect();
    let (records, regions): (Vec<_>, Vec<_>) = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    celeba::write_annotations(root, &records, Some(&regions))?;
    Ok(total)
}

/// Write a `synthetic-birds` set in CUB-200-2011's layout under `root`:
/// `spec.classes` classes, images at twice the nets' input size (like real
/// photos, larger than the input, so a crop gains resolution), classes
/// assigned round-robin so every split holds every class.
pub fn generate_synthetic_birds(
    spec: &DataSpec,
    root: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<usize, AnnotationError> {
    let classes = spec.attributes.len();
    let train = spec.train_images as usize;
    let total = train + spec.test_images as usize;
    let size = 2 * spec.image_size as usize;
    // Label k is the generator's class `class_offset + k`.
    let drawn = |k: usize| spec.class_offset as usize + k;
    let names: Vec<String> = (0..classes)
        .map(|k| synthetic_birds::class_name(drawn(k)))
        .collect();
    let dir = Cub::image_dir(root);
    for name in &names {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|source| crate::file_error::FileError::Write {
            path: folder,
            source,
        })?;
    }
    let done = std::sync::atomic::AtomicU64::new(0);
    let records: Vec<cub::BirdRecord> = (0..total)
        .into_par_iter()
        .map(|i| {
            let class = class_of(spec.seed, i, classes);
            let bird =
                synthetic_birds::generate(spec.seed, i as u64, drawn(class), size, spec.generator);
            let file = format!("{}/{:05}.jpg", names[class], i + 1);
            let path = dir.join(&file);
            write_jpeg(&path, &bird.rgb, size)?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n % 64 == 0 || n as usize == total {
                progress(n);
            }
            Ok(cub::BirdRecord {
                id: i as u32 + 1,
                file,
                class,
                split: if i < train { 0 } else { 2 },
                bbox: bird.bbox,
                parts: bird.parts,
            })
        })
        .collect::<Result<_, AnnotationError>>()?;
    cub::write_annotations(root, &names, &records)?;
    Ok(total)
}

/// The class of bird `i`: every block of `classes` consecutive images holds
/// each class once, in a seeded order, so classes are balanced and CUB's
/// every-10th val rule does not pick one class.
fn class_of(seed: u64, i: usize, classes: usize) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC1A5_5E5 ^ (i / classes) as u64);
    let mut order: Vec<usize> = (0..classes).collect();
    order.shuffle(&mut rng);
    order[i % classes]
}

/// Which on-disk layout a source is in, and so which task it poses:
/// CelebA's 40 binary attributes, or CUB's single label out of C classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Celeba,
    Cub,
}

/// How each image is cropped before resizing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum Crop {
    /// The whole image.
    Full,
    /// A square of `expand` × the annotated box's longer side, centred on it
    /// (CelebA's face box, CUB's bird box).
    Bbox { expand: f32 },
    /// The same square around boxes from a file (`image x y w h` per line,
    /// tab-separated, in image pixels): CAM-estimated bird boxes.
    Boxes { path: PathBuf, expand: f32 },
}

/// Where a split's images come from: a root in a known layout, its image
/// folder, how to crop, and a cap on images per split (0 = all).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub root: PathBuf,
    pub images: PathBuf,
    pub format: Format,
    pub crop: Crop,
    /// Train, val, test caps.
    pub caps: [u32; 3],
    /// Preprocessed shards of this source, if written.
    #[serde(skip)]
    pub shards: Option<PathBuf>,
    /// Leave out (and report) images that are missing or cannot be decoded.
    pub skip_missing: bool,
    /// CUB: keep only the first N classes (and their images).
    #[serde(default)]
    pub classes: Option<usize>,
}

/// One image's annotations, whatever the layout.
#[derive(Debug, Clone)]
pub struct Item {
    /// Path under the image folder.
    pub file: String,
    /// 0 train, 1 val, 2 test.
    pub split: u8,
    /// One byte per label: CelebA's 40 attributes, or CUB's classes one-hot.
    pub labels: Vec<u8>,
    pub bbox: Option<[f32; 4]>,
    /// CelebA's five landmarks (eyes, nose, mouth corners) as x, y pairs.
    pub landmarks: Option<[f32; 10]>,
}

/// Report a skipped image on stderr; the data stage counts them in its summary.
fn skipped(path: &Path) {
    eprintln!(
        "warning: skipping missing or unreadable image `{}` (skip-missing = true)",
        path.display()
    );
}

impl Source {
    /// A generated set: images as written, no crop.
    pub fn synthetic(root: &Path, format: Format) -> Source {
        let images = match format {
            Format::Celeba => Celeba::image_dir(root),
            Format::Cub => Cub::image_dir(root),
        };
        Source {
            root: root.to_path_buf(),
            images,
            format,
            crop: Crop::Full,
            caps: [0; 3],
            shards: None,
            skip_missing: false,
            classes: None,
        }
    }

    /// A real data set (CelebA or CUB-200) as a spec describes it.
    pub fn real(spec: &DataSpec) -> Option<Source> {
        let real = spec.real.as_ref()?;
        let (format, images) = if spec.dataset == "cub200" {
            (Format::Cub, Cub::image_dir(&real.root))
        } else {
            let folder = if real.variant == "aligned" {
                "img_align_celeba"
            } else {
                "img_celeba"
            };
            (Format::Celeba, real.root.join("Img").join(folder))
        };
        Some(Source {
            root: real.root.clone(),
            images,
            format,
            crop: if real.crop == "bbox" {
                Crop::Bbox {
                    expand: real.expand as f32,
                }
            } else {
                Crop::Full
            },
            caps: [spec.train_images, spec.val_images, spec.test_images],
            shards: None,
            skip_missing: real.skip_missing,
            classes: (format == Format::Cub).then_some(spec.attributes.len()),
        })
    }

    pub fn single_label(&self) -> bool {
        self.format == Format::Cub
    }

    /// Every image's annotations, in the layout's order.
    pub fn items(&self) -> Result<Vec<Item>, AnnotationError> {
        Ok(match self.format {
            Format::Celeba => Celeba::open(&self.root)?
                .records
                .into_iter()
                .map(|r| Item {
                    labels: r.labels.iter().map(|&l| l as u8).collect(),
                    file: r.file,
                    split: r.split,
                    bbox: r.bbox,
                    landmarks: r.landmarks,
                })
                .collect(),
            Format::Cub => {
                let cub = Cub::open(&self.root)?;
                let c = self
                    .classes
                    .unwrap_or(cub.classes.len())
                    .min(cub.classes.len());
                cub.records
                    .into_iter()
                    .filter(|r| r.class < c)
                    .map(|r| {
                        let mut labels = vec![0u8; c];
                        labels[r.class] = 1;
                        Item {
                            file: r.file,
                            split: r.split,
                            labels,
                            bbox: Some(r.bbox),
                            landmarks: None,
                        }
                    })
                    .collect()
            }
        })
    }

    /// The names of the labels (attributes or classes), in label order.
    pub fn label_names(&self) -> Result<Vec<String>, AnnotationError> {
        Ok(match self.format {
            Format::Celeba => crate::attributes::CELEBA
                .iter()
                .map(|s| s.to_string())
                .collect(),
            Format::Cub => {
                let mut names = Cub::open(&self.root)?.classes;
                names.truncate(self.classes.unwrap_or(usize::MAX));
                names
            }
        })
    }
}

/// A table of boxes per image: a header line naming the columns, then
/// `image<TAB>` and `N` numbers per row. The one format of every box file an
/// entry holds: `crops.tsv` (x y w h), `cam_boxes.tsv` (x0 y0 x1 y1) and
/// `boxes.tsv` (part x y side, one row per part).
fn read_rows<const N: usize, T: std::str::FromStr + Copy + Default>(
    path: &Path,
) -> Result<Vec<(String, [T; N])>, AnnotationError> {
    let text = annotations::read(path)?;
    let bad = |line: u64, row: &str| {
        annotations::malformed(
            path,
            line as usize,
            &format!("expected an image name and {N} numbers, tab-separated"),
            row,
        )
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for record in reader.records() {
        let r = record.map_err(|e| bad(e.position().map_or(0, |p| p.line()), &e.to_string()))?;
        let line = r.position().map_or(0, |p| p.line());
        let mut v = [T::default(); N];
        let ok = r.len() == N + 1
            && r.iter()
                .skip(1)
                .zip(v.iter_mut())
                .all(|(x, slot)| x.parse().map(|p| *slot = p).is_ok());
        if !ok {
            return Err(bad(line, &r.iter().collect::<Vec<_>>().join("\t")));
        }
        out.push((r[0].to_string(), v));
    }
    Ok(out)
}

fn write_rows<const N: usize, T: std::fmt::Display>(
    path: &Path,
    columns: [&str; N],
    rows: impl Iterator<Item = (String, [T; N])>,
) -> Result<(), AnnotationError> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b'\t')
        .from_writer(Vec::new());
    let io = |e: csv::Error| crate::file_error::FileError::Write {
        path: path.into(),
        source: std::io::Error::other(e),
    };
    w.write_record(std::iter::once("image").chain(columns))
        .map_err(io)?;
    for (f, v) in rows {
        w.write_record(std::iter::once(f).chain(v.iter().map(|x| x.to_string())))
            .map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| io(e.into_error().into()))?;
    annotations::write(
        path,
        &String::from_utf8(bytes).expect("UTF-8 in, UTF-8 out"),
    )
}

/// One box per image (`crops.tsv`, `cam_boxes.tsv`).
pub fn read_box_table(
    path: &Path,
) -> Result<std::collections::HashMap<String, [f32; 4]>, AnnotationError> {
    Ok(read_rows::<4, f32>(path)?.into_iter().collect())
}

pub fn write_box_table(
    path: &Path,
    columns: [&str; 4],
    boxes: &[(String, [f32; 4])],
) -> Result<(), AnnotationError> {
    write_rows(path, columns, boxes.iter().cloned())
}

/// Square patches per image and part (`boxes.tsv`: `image part x y side`).
pub fn write_part_boxes(
    path: &Path,
    files: &[String],
    boxes: &[Vec<SquareBox>],
) -> Result<(), AnnotationError> {
    let rows = files.iter().zip(boxes).flat_map(|(f, bs)| {
        bs.iter()
            .enumerate()
            .map(move |(p, b)| (f.clone(), [p as u16, b[0], b[1], b[2]]))
    });
    write_rows(path, ["part", "x", "y", "side"], rows)
}

/// [`write_part_boxes`]'s table: each image's patches in part order.
pub fn read_part_boxes(
    path: &Path,
) -> Result<std::collections::BTreeMap<String, Vec<SquareBox>>, AnnotationError> {
    let mut out: std::collections::BTreeMap<String, Vec<SquareBox>> = Default::default();
    for (f, [_, x, y, side]) in read_rows::<4, u16>(path)? {
        out.entry(f).or_default().push([x, y, side]);
    }
    Ok(out)
}

/// Encode `rgb` (`size` × `size`) as a JPEG at `path`, as the synthetic sets are written.
fn write_jpeg(path: &Path, rgb: &[u8], size: usize) -> Result<(), AnnotationError> {
    let mut bytes = Vec::with_capacity(size * size);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode(
            rgb,
            size as u32,
            size as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| crate::file_error::FileError::Write {
            path: path.into(),
            source: std::io::Error::other(e),
        })?;
    std::fs::write(path, bytes).map_err(|source| {
        crate::file_error::FileError::Write {
            path: path.into(),
            source,
        }
        .into()
    })
}

/// Decoded images of one split, resized to a square side, with labels for
/// the selected attributes.
pub struct ImageSet {
    pub size: usize,
    /// `n × 3 × size × size`, channel-major per image.
    pub pixels: Pixels,
    /// `n × m` labels (0/1) for the selected attributes.
    pub labels: Vec<u8>,
    pub attributes: Vec<usize>,
    pub files: Vec<String>,
    /// Exactly one label per image is 1 (CUB's classes): softmax, top-1.
    pub single_label: bool,
}

/// Image bytes: decoded into memory, or a memory-mapped shard.
pub enum Pixels {
    Owned(Vec<u8>),
    Mapped(std::sync::Arc<memmap2::Mmap>, std::ops::Range<usize>),
}

impl std::ops::Deref for Pixels {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Pixels::Owned(v) => v,
            Pixels::Mapped(m, r) => &m[r.clone()],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Shard(#[from] shards::ShardError),
    #[error(transparent)]
    Annotations(#[from] AnnotationError),
    #[error("image `{}` could not be decoded", path.display())]
    Decode {
        path: std::path::PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("image `{file}` has no crop box in the crop stage's `crops.tsv`")]
    NoCropBox { file: String },
    #[error("split `{0}` has no images")]
    Empty(&'static str),
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// One split: from the source's shards when they exist at this size,
    /// else decoded from the images.
    pub fn load(
        src: &Source,
        split: Split,
        size: usize,
        attributes: &[usize],
    ) -> Result<ImageSet, LoadError> {
        if let Some(dir) = &src.shards {
            if let Some(set) = shards::read(dir, split, size, attributes)? {
                return Ok(set);
            }
        }
        Self::decode(src, split, size, attributes)
    }

    /// Read one split of a source, decoding, cropping and resizing in parallel.
    pub fn decode(
        src: &Source,
        split: Split,
        size: usize,
        attributes: &[usize],
    ) -> Result<ImageSet, LoadError> {
        let code = match split {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
        };
        let cap = match src.caps[code as usize] {
            0 => usize::MAX,
            n => n as usize,
        };
        let items: Vec<Item> = src
            .items()?
            .into_iter()
            .filter(|r| r.split == code)
            .take(cap)
            .collect();
        if items.is_empty() {
            return Err(LoadError::Empty(split.as_str()));
        }
        let (boxes, expand) = match &src.crop {
            Crop::Full => (None, 1.0),
            Crop::Bbox { expand } => (None, *expand),
            Crop::Boxes { path, expand } => (Some(read_box_table(path)?), *expand),
        };
        let decoded: Vec<Result<Vec<u8>, LoadError>> = items
            .par_iter()
            .map(|r| {
                let path = src.images.join(&r.file);
                let img = decode(&path)
                    .map_err(|source| LoadError::Decode {
                        path: path.clone(),
                        source,
                    })?
                    .to_rgb8();
                let bbox = match (&src.crop, &boxes) {
                    (Crop::Full, _) => None,
                    (_, Some(boxes)) => {
                        Some(*boxes.get(&r.file).ok_or_else(|| LoadError::NoCropBox {
                            file: r.file.clone(),
                        })?)
                    }
                    (_, None) => r.bbox,
                };
                let img = match bbox {
                    Some(b) => square_crop(&img, b, expand),
                    None => img,
                };
                Ok(resize_chw(&img, size))
            })
            .collect();
        // A missing or broken image is an error naming it, unless the spec
        // says `skip-missing = true`: then it is left out and reported.
        let mut images = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        for (r, d) in items.iter().zip(decoded) {
            match d {
                Ok(px) => {
                    images.push(px);
                    kept.push(r);
                }
                Err(LoadError::Decode { path, .. }) if src.skip_missing => skipped(&path),
                Err(e) => return Err(e),
            }
        }
        if kept.is_empty() {
            return Err(LoadError::Empty(split.as_str()));
        }
        let labels = kept
            .iter()
            .flat_map(|r| attributes.iter().map(|&j| r.labels[j]))
            .collect();
        Ok(ImageSet {
            size,
            pixels: Pixels::Owned(images.concat()),
            labels,
            attributes: attributes.to_vec(),
            files: kept.iter().map(|r| r.file.clone()).collect(),
            single_label: src.single_label(),
        })
    }

    /// Images `idx` as a normalised `[B, 3, S, S]` tensor, mirrored where `flip[i]`.
    pub fn images(&self, idx: &[usize], flip: &[bool], device: &Device) -> Tensor<4> {
        let s = self.size;
        let per = 3 * s * s;
        // One image per task: a GPU consumes thousands of images a second.
        let mut out = vec![0f32; idx.len() * per];
        out.par_chunks_mut(per)
            .zip(idx.par_iter())
            .enumerate()
            .for_each(|(k, (dst, &i))| {
                let img = &self.pixels[i * per..(i + 1) * per];
                if flip.get(k).copied().unwrap_or(false) {
                    for (d, row) in dst.chunks_exact_mut(s).zip(img.chunks_exact(s)) {
                        for (x, &p) in d.iter_mut().zip(row.iter().rev()) {
                            *x = normalise(p);
                        }
                    }
                } else {
                    for (x, &p) in dst.iter_mut().zip(img) {
                        *x = normalise(p);
                    }
                }
            });
        Tensor::from_data(TensorData::new(out, [idx.len(), 3, s, s]), device)
    }

    /// Labels of `idx` as a `[B, M]` float tensor of 0/1.
    pub fn targets(&self, idx: &[usize], device: &Device) -> Tensor<2> {
        let m = self.attributes.len();
        let v: Vec<f32> = idx
            .iter()
            .flat_map(|&i| self.labels[i * m..(i + 1) * m].iter().map(|&l| l as f32))
            .collect();
        Tensor::from_data(TensorData::new(v, [idx.len(), m]), device)
    }

    /// The fraction of positives per attribute.
    pub fn positive_rate(&self) -> Vec<f64> {
        let m = self.attributes.len();
        let n = self.len().max(1) as f64;
        (0..m)
            .map(|j| {
                self.labels
                    .iter()
                    .skip(j)
                    .step_by(m)
                    .map(|&l| l as f64)
                    .sum::<f64>()
                    / n
            })
            .collect()
    }
}

/// Resize to `size` × `size` (bilinear) and lay out channel-major.
pub fn resize_chw(img: &image::RgbImage, size: usize) -> Vec<u8> {
    let resized;
    let img = if img.width() as usize == size && img.height() as usize == size {
        img
    } else {
        resized = image::imageops::resize(
            img,
            size as u32,
            size as u32,
            image::imageops::FilterType::Triangle,
        );
        &resized
    };
    let mut chw = vec![0u8; 3 * size * size];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            chw[c * size * size + i] = p[c];
        }
    }
    chw
}

/// The square of side `expand` × the box's longer side, centred on the
/// box, clamped to the image (the crop rule is a recorded spec parameter):
/// `(x0, y0, side)` in whole pixels.
pub fn square_window(width: u32, height: u32, b: [f32; 4], expand: f32) -> (u32, u32, u32) {
    let (w, h) = (width as f32, height as f32);
    let side = (b[2].max(b[3]) * expand).min(w).min(h).max(1.0);
    let cx = b[0] + b[2] / 2.0;
    let cy = b[1] + b[3] / 2.0;
    let x0 = (cx - side / 2.0).clamp(0.0, w - side);
    let y0 = (cy - side / 2.0).clamp(0.0, h - side);
    (x0 as u32, y0 as u32, side as u32)
}

fn square_crop(img: &image::RgbImage, b: [f32; 4], expand: f32) -> image::RgbImage {
    let (x0, y0, side) = square_window(img.width(), img.height(), b, expand);
    image::imageops::crop_imm(img, x0, y0, side, side).to_image()
}

impl Source {
    /// Map a point in the pixels of image `item` (of `width` × `height`)
    /// to the net's `size` × `size` input, through this source's crop.
    pub fn to_input(
        &self,
        item: &Item,
        width: u32,
        height: u32,
        size: usize,
        (x, y): (f32, f32),
    ) -> (f32, f32) {
        let window = match (&self.crop, item.bbox) {
            (Crop::Bbox { expand }, Some(b)) => Some(square_window(width, height, b, *expand)),
            _ => None,
        };
        match window {
            Some((x0, y0, side)) => (
                (x - x0 as f32) * size as f32 / side as f32,
                (y - y0 as f32) * size as f32 / side as f32,
            ),
            None => (
                x * size as f32 / width as f32,
                y * size as f32 / height as f32,
            ),
        }
    }
}

fn normalise(p: u8) -> f32 {
    (p as f32 / 255.0 - 0.5) / 0.25
}

/// One epoch's batches: a seeded permutation and flip flags, drawn on one
/// thread from `(seed, epoch)` only, so the order never depends on threads.
pub fn epoch_batches(
    n: usize,
    batch: usize,
    seed: u64,
    epoch: u32,
    flip: bool,
) -> Vec<(Vec<usize>, Vec<bool>)> {
    use rand::Rng;
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
        .chunks(batch)
        .map(|c| {
            (
                c.to_vec(),
                c.iter().map(|_| flip && rng.random_bool(0.5)).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn part_boxes_round_trip_in_their_committed_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxes.tsv");
        let files = vec!["a.jpg".to_string(), "b.jpg".to_string()];
        write_part_boxes(
            &path,
            &files,
            &[vec![[1, 2, 3], [4, 5, 6]], vec![[7, 8, 9]]],
        )
        .unwrap();
        // The bytes are in cache entries (and so in downstream keys).
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "image\tpart\tx\ty\tside\na.jpg\t0\t1\t2\t3\na.jpg\t1\t4\t5\t6\nb.jpg\t0\t7\t8\t9\n"
        );
        let back = read_part_boxes(&path).unwrap();
        assert_eq!(back["a.jpg"], vec![[1, 2, 3], [4, 5, 6]]);
        assert_eq!(back["b.jpg"], vec![[7, 8, 9]]);
    }

    #[test]
    fn box_tables_with_crlf_endings_and_trailing_spaces_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxes.tsv");
        std::fs::write(&path, "image\tpart\tx\ty\tside\r\na.jpg\t0\t1\t2\t3 \r\n").unwrap();
        assert_eq!(read_part_boxes(&path).unwrap()["a.jpg"], vec![[1, 2, 3]]);
    }

    #[test]
    fn a_malformed_box_row_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boxes.tsv");
        std::fs::write(&path, "image\tpart\tx\ty\tside\na.jpg\t0\t1\t2\n").unwrap();
        let e = read_part_boxes(&path).unwrap_err().to_string();
        assert!(e.contains("boxes.tsv:2:"), "{e}");
        assert!(e.contains("an image name and 4 numbers"), "{e}");
    }

    use super::*;

    #[test]
    fn batches_are_seeded_and_cover_every_image_once() {
        let a = epoch_batches(103, 10, 5, 2, true);
        assert_eq!(a, epoch_batches(103, 10, 5, 2, true));
        assert_ne!(a, epoch_batches(103, 10, 5, 3, true));
        let mut all: Vec<usize> = a.iter().flat_map(|b| b.0.clone()).collect();
        all.sort();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
    }

    #[test]
    fn birds_from_a_class_offset_are_named_and_labelled_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DataSpec {
            dataset: "synthetic-birds".into(),
            image_size: 32,
            train_images: 6,
            val_images: 0,
            test_images: 3,
            attributes: (0..3).collect(),
            seed: 1,
            generator: 2,
            class_offset: 20,
            independent_parts: false,
            real: None,
        };
        generate_synthetic_birds(&spec, dir.path(), &|_| {}).unwrap();
        let classes = std::fs::read_to_string(dir.path().join("classes.txt")).unwrap();
        let names: Vec<&str> = classes.lines().collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[0], format!("1 {}", synthetic_birds::class_name(20)));
        assert!(names[0].starts_with("1 021."), "{}", names[0]);
    }

    #[test]
    fn generated_set_reads_back_through_the_celeba_reader() {
        let dir = tempfile::tempdir().unwrap();
        let spec = DataSpec {
            dataset: "synthetic-faces".into(),
            image_size: 32,
            train_images: 6,
            val_images: 2,
            test_images: 3,
            attributes: (0..40).collect(),
            seed: 1,
            generator: 1,
            class_offset: 0,
            independent_parts: false,
            real: None,
        };
        generate_synthetic_faces(&spec, dir.path(), &|_| {}).unwrap();
        let set = ImageSet::load(
            &Source::synthetic(dir.path(), Format::Celeba),
            Split::Test,
            32,
            &[20, 31],
        )
        .unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.labels.len(), 6);
        let face = synthetic_faces::generate(1, 8, 32, 1); // first test image
        assert_eq!(
            &set.labels[..2],
            &[face.labels[20] as u8, face.labels[31] as u8]
        );
        let regions =
            celeba::read_regions(dir.path(), &Celeba::open(dir.path()).unwrap().records).unwrap();
        assert_eq!(regions[8].len(), face.labels.iter().filter(|l| **l).count());
        // Shards hold exactly what decoding gives, and are read back mapped.
        let shard_dir = dir.path().join("shards");
        shards::write(
            &Source::synthetic(dir.path(), Format::Celeba),
            32,
            &shard_dir,
            &|_| {},
        )
        .unwrap();
        let src = Source {
            shards: Some(shard_dir.clone()),
            ..Source::synthetic(dir.path(), Format::Celeba)
        };
        let mapped = ImageSet::load(&src, Split::Test, 32, &[20, 31]).unwrap();
        assert!(matches!(mapped.pixels, Pixels::Mapped(..)));
        assert_eq!(
            (&mapped.pixels[..], &mapped.labels, &mapped.files),
            (&set.pixels[..], &set.labels, &set.files)
        );
        assert!(
            shards::read(&shard_dir, Split::Test, 48, &[20])
                .unwrap()
                .is_none(),
            "another size decodes"
        );
    }
}

/// A square box in image pixels: left, top, side.
pub type SquareBox = [u16; 3];

impl ImageSet {
    /// Crop `boxes[i]` from image `i` and resize to `out` pixels (bilinear):
    /// the patch set of one part.
    pub fn crops(&self, boxes: &[SquareBox], out: usize) -> ImageSet {
        let s = self.size;
        let per = 3 * s * s;
        let pixels: Vec<u8> = (0..self.len())
            .into_par_iter()
            .flat_map_iter(|i| {
                let img = &self.pixels[i * per..(i + 1) * per];
                let [x0, y0, side] = boxes[i].map(|v| v as f32);
                let scale = side / out as f32;
                let mut patch = vec![0u8; 3 * out * out];
                for c in 0..3 {
                    let plane = &img[c * s * s..(c + 1) * s * s];
                    for oy in 0..out {
                        let fy = (y0 + (oy as f32 + 0.5) * scale - 0.5).clamp(0.0, (s - 1) as f32);
                        let (y_lo, wy) = (fy.floor() as usize, fy.fract());
                        let y_hi = (y_lo + 1).min(s - 1);
                        for ox in 0..out {
                            let fx =
                                (x0 + (ox as f32 + 0.5) * scale - 0.5).clamp(0.0, (s - 1) as f32);
                            let (x_lo, wx) = (fx.floor() as usize, fx.fract());
                            let x_hi = (x_lo + 1).min(s - 1);
                            let p = |y: usize, x: usize| plane[y * s + x] as f32;
                            let top = p(y_lo, x_lo) * (1.0 - wx) + p(y_lo, x_hi) * wx;
                            let bottom = p(y_hi, x_lo) * (1.0 - wx) + p(y_hi, x_hi) * wx;
                            patch[c * out * out + oy * out + ox] =
                                (top * (1.0 - wy) + bottom * wy).round() as u8;
                        }
                    }
                }
                patch
            })
            .collect();
        ImageSet {
            size: out,
            pixels: Pixels::Owned(pixels),
            labels: self.labels.clone(),
            attributes: self.attributes.clone(),
            files: self.files.clone(),
            single_label: self.single_label,
        }
    }
}

/// The box of side `round(fraction · size)` centred on `(cx, cy)`, moved
/// (not shrunk) to lie inside the image.
pub fn patch_around(cx: usize, cy: usize, size: usize, fraction: f64) -> SquareBox {
    let side = ((fraction * size as f64).round() as usize).clamp(1, size);
    let start = |c: usize| c.saturating_sub(side / 2).min(size - side);
    [start(cx) as u16, start(cy) as u16, side as u16]
}

/// The `grid`×`grid` fixed blocks of the block baseline, row-major.
pub fn grid_boxes(size: usize, grid: usize) -> Vec<SquareBox> {
    let side = size / grid;
    (0..grid * grid)
        .map(|k| {
            [
                ((k % grid) * side) as u16,
                ((k / grid) * side) as u16,
                side as u16,
            ]
        })
        .collect()
}

#[cfg(test)]
mod patch_tests {
    use super::*;

    #[test]
    fn patch_is_centred_and_clamped_at_borders() {
        assert_eq!(patch_around(32, 32, 64, 0.25), [24, 24, 16]);
        assert_eq!(patch_around(2, 63, 64, 0.25), [0, 48, 16]);
        assert_eq!(patch_around(63, 0, 224, 64.0 / 224.0), [31, 0, 64]);
        assert_eq!(grid_boxes(64, 4)[5], [16, 16, 16]);
    }

    #[test]
    fn points_follow_the_crop_into_the_input() {
        let item = Item {
            file: "a.jpg".into(),
            split: 2,
            labels: vec![],
            bbox: Some([40.0, 20.0, 60.0, 80.0]),
            landmarks: None,
        };
        let full = Source::synthetic(Path::new("."), Format::Celeba);
        assert_eq!(
            full.to_input(&item, 200, 100, 50, (100.0, 50.0)),
            (25.0, 25.0)
        );
        // Square of 80 px around the box's centre (70, 60): x from 30, y from 20.
        let cropped = Source {
            crop: Crop::Bbox { expand: 1.0 },
            ..full
        };
        assert_eq!(
            square_window(200, 100, [40.0, 20.0, 60.0, 80.0], 1.0),
            (30, 20, 80)
        );
        assert_eq!(
            cropped.to_input(&item, 200, 100, 40, (70.0, 60.0)),
            (20.0, 20.0)
        );
    }

    #[test]
    fn crop_of_a_planted_square_finds_it() {
        let s = 16;
        let mut pixels = vec![0u8; 3 * s * s];
        for y in 4..8 {
            for x in 8..12 {
                pixels[y * s + x] = 200;
            }
        }
        let set = ImageSet {
            size: s,
            pixels: Pixels::Owned(pixels),
            labels: vec![0],
            attributes: vec![0],
            files: vec!["a".into()],
            single_label: false,
        };
        let c = set.crops(&[[8, 4, 4]], 4);
        assert!(
            c.pixels[..16].iter().all(|&p| p == 200),
            "{:?}",
            &c.pixels[..16]
        );
        assert!(c.pixels[16..].iter().all(|&p| p == 0));
    }
}

/// Decode an image file, refusing a truncated JPEG: the decoder fills what
/// is missing with grey and says nothing, so the run's numbers would change
/// silently. A complete JPEG ends with the end-of-image marker FF D9 (which
/// cannot occur inside entropy-coded data); only padding may follow it.
pub fn decode(path: &Path) -> Result<image::DynamicImage, image::ImageError> {
    let bytes = std::fs::read(path).map_err(image::ImageError::IoError)?;
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err(image::ImageError::Decoding(
                image::error::DecodingError::new(
                    image::error::ImageFormatHint::Exact(image::ImageFormat::Jpeg),
                    "truncated: no end-of-image marker (FF D9)",
                ),
            ));
        }
    }
    image::load_from_memory(&bytes)
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    fn jpeg(dir: &Path) -> PathBuf {
        let img =
            image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]));
        let p = dir.join("a.jpg");
        img.save(&p).unwrap();
        p
    }

    #[test]
    fn a_complete_jpeg_decodes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(decode(&jpeg(dir.path())).unwrap().width(), 32);
    }

    #[test]
    fn a_truncated_jpeg_is_an_error_not_grey_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let p = jpeg(dir.path());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = decode(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
