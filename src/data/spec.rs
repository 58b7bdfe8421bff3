//! What a data set is: the `[data]` table (or a data stage) resolved. No
//! burn, so the stage kinds and the spec can name it; `kinds::data`
//! resolves it, this module's readers and generators take it.

use std::path::PathBuf;

use serde::Serialize;

/// Which data set, at which size.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataSpec {
    pub dataset: String,
    pub image_size: u32,
    pub train_images: u32,
    pub val_images: u32,
    pub test_images: u32,
    /// The labels modelled: indices into [`crate::attributes::CELEBA`], or for
    /// single-label sets (`synthetic-birds`, `cub200`) the classes `0..C`
    /// (label indices; see `class_offset`).
    pub attributes: Vec<usize>,
    pub seed: u64,
    /// Generated sets: the frozen generator version
    /// ([`super::synthetic_faces::VERSIONS`]). Left out of the key at 1,
    /// so data sets made before versions existed keep their keys.
    #[serde(
        default = "first_generator",
        skip_serializing_if = "is_first_generator"
    )]
    pub generator: u32,
    /// `synthetic-birds`: the generator's class of label 0, counted from 0
    /// (`[data] first-class` − 1). Left out of the key at 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub class_offset: u32,
    /// `synthetic-faces`: the face-part attributes drawn independently of
    /// every other attribute (a diagnostic; see
    /// [`super::synthetic_faces::generate_independent_parts`]). Left out of
    /// the key when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub independent_parts: bool,
    /// A data set on disk (`celeba`); absent for generated sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<RealData>,
}

fn first_generator() -> u32 {
    1
}

fn is_first_generator(v: &u32) -> bool {
    *v == 1
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl DataSpec {
    /// CUB-style data: one class per image (softmax, top-1 accuracy).
    pub fn single_label(&self) -> bool {
        matches!(self.dataset.as_str(), "synthetic-birds" | "cub200")
    }
}

/// Where a real data set lives and how its images are cropped.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RealData {
    pub root: PathBuf,
    /// `unaligned` (`Img/img_celeba`, the paper's uCelebA) or `aligned`.
    pub variant: String,
    /// `bbox` (square around `list_bbox_celeba.txt`'s box × `expand`) or `none`.
    pub crop: String,
    pub expand: f64,
    /// Leave out missing or unreadable images (counted) instead of failing.
    #[serde(default)]
    pub skip_missing: bool,
}
