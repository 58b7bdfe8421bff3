//! `predict`: an attribute (or class) net applied to your own images — a
//! folder of JPEG/PNG files, or one file. Each image is resized whole to
//! the net's input side (crop faces first, as the training data were) and
//! its probabilities written to `predictions.csv`. The images' contents are
//! in the key: adding or editing one reruns the stage, moving the folder
//! does not.
//!
//! ```toml
//! [[stage]]
//! id = "mine"
//! kind = "predict"
//! model = "frl"
//! images = "photos/"     # relative to the spec
//! ```

/// How it runs (burn).
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ATTRIBUTE_NETS, Artefact, Env, Kind, KindDef, Resolved, Role, Upstream};
use crate::spec::{SpecError, key};

pub struct Predict;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawPredict {
    id: String,
    #[allow(dead_code)]
    kind: String,
    /// The net: a `train`, `train-frl` or `compress` stage.
    model: String,
    /// A folder of images, or one image, relative to the spec.
    images: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PredictConfig {
    /// `images` as written in the spec.
    pub images: String,
    /// sha256 over the images' names and contents.
    pub sha256: String,
    /// `images` resolved against the spec's folder; not in the key, so a
    /// moved checkout keeps its cache.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Kind for Predict {
    type Config = PredictConfig;

    const DEF: KindDef = KindDef {
        name: "predict",
        version: 1,
        backend: true,
        keys: &[&["model", "images"]],
        roles: &[Role {
            name: "model",
            accepts: ATTRIBUTE_NETS,
        }],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<PredictConfig>, SpecError> {
        let raw: RawPredict = env.ctx.deserialize(toml::Value::Table(table), env.here)?;
        let folder = env.ctx.sources[0].path.parent().unwrap_or(Path::new(""));
        let path = std::path::absolute(folder.join(&raw.images))
            .unwrap_or_else(|_| folder.join(&raw.images));
        let at = key(env.here, "images");
        let files = image_files(&path).map_err(|e| env.ctx.error(&at, e))?;
        let mut digests = BTreeMap::new();
        for (name, file) in &files {
            let sha = crate::digest::file_digest(file).map_err(|e| {
                env.ctx
                    .error(&at, format!("cannot read `{}`: {e}", file.display()))
            })?;
            digests.insert(name.clone(), sha);
        }
        Ok(Resolved {
            id: raw.id,
            inputs: BTreeMap::from([("model".to_string(), raw.model)]),
            config: PredictConfig {
                images: raw.images,
                sha256: crate::digest::list_digest(&digests),
                path,
            },
        })
    }

    fn artefact(_: &PredictConfig, _: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(Some(Artefact::Scores))
    }
}

/// The JPEG and PNG files of `path` (a folder, searched recursively, or one
/// file) by name, sorted; an error when there are none.
pub fn image_files(path: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let is_image = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
    };
    let files: Vec<(String, PathBuf)> = if path.is_file() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        vec![(name.to_string(), path.to_path_buf())]
    } else if path.is_dir() {
        crate::digest::files_under(path)
            .map_err(|(dir, e)| format!("cannot read `{}`: {e}", dir.display()))?
    } else {
        return Err(format!("`{}` does not exist", path.display()));
    };
    let images: Vec<_> = files.into_iter().filter(|(_, p)| is_image(p)).collect();
    if images.is_empty() {
        return Err(format!("`{}` holds no JPEG or PNG image", path.display()));
    }
    Ok(images)
}
