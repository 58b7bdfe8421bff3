//! `predict`'s run: the net's probabilities for each of the user's images.

use rayon::prelude::*;
use serde_json::json;

use crate::attributes::CELEBA;
use crate::data::{ImageSet, LoadError, Pixels, decode, resize_chw};
use crate::kinds::predict::{Predict, PredictConfig, image_files};
use crate::stages::{Run, StageCtx, StageError, load_attr_net};
use crate::train::predict;

impl Run for Predict {
    fn run(ctx: &StageCtx, c: &PredictConfig) -> Result<serde_json::Value, StageError> {
        let device = ctx.device.device();
        let (model, info) = load_attr_net(&ctx.input("model").dir, "model", &device)?;
        let files = image_files(&c.path).map_err(|message| StageError::Input {
            stage: ctx.stage.id.clone(),
            message,
        })?;
        let size = info.image_size;
        ctx.progress
            .set_message(format!("decoding {} images", files.len()));
        let pixels = files
            .par_iter()
            .map(|(_, path)| {
                decode(path)
                    .map(|img| resize_chw(&img.to_rgb8(), size))
                    .map_err(|source| LoadError::Decode {
                        path: path.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let m = info.attributes.len();
        let set = ImageSet {
            size,
            pixels: Pixels::Owned(pixels),
            labels: vec![0; files.len() * m],
            attributes: info.attributes.clone(),
            files: files.iter().map(|(name, _)| name.clone()).collect(),
            single_label: info.single_label,
        };
        let (logits, _) = predict(&model, &set, &device, 64);
        let names: Vec<String> = info
            .attributes
            .iter()
            .map(|&a| match (info.single_label, CELEBA.get(a)) {
                (false, Some(name)) => name.to_string(),
                _ => format!("class_{}", a + 1),
            })
            .collect();
        let rows = set.files.iter().zip(logits.chunks(m)).map(|(name, row)| {
            (
                name.as_str(),
                crate::metrics::probabilities(row, info.single_label),
            )
        });
        let csv = predictions_csv(&names, rows);
        let path = ctx.out.join("predictions.csv");
        std::fs::write(&path, csv)
            .map_err(|source| crate::file_error::FileError::Write { path, source })?;
        ctx.progress.log(&format!(
            "{} images × {m} labels → predictions.csv",
            set.len()
        ));
        Ok(json!({ "images": set.len(), "labels": m }))
    }
}

/// `predictions.csv`: a header (`image`, then the label names), then one
/// row per image with its probabilities to 6 decimals.
fn predictions_csv<'a>(
    names: &[String],
    rows: impl Iterator<Item = (&'a str, Vec<f64>)>,
) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = std::iter::once("image").chain(names.iter().map(String::as_str));
    // Writing into memory cannot fail.
    w.write_record(header).expect("in memory");
    for (name, probabilities) in rows {
        let cells = probabilities.iter().map(|p| format!("{p:.6}"));
        w.write_record(std::iter::once(name.to_string()).chain(cells))
            .expect("in memory");
    }
    w.into_inner().expect("in memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_sigmoids_or_a_softmax() {
        use crate::metrics::probabilities;
        let p = probabilities(&[0.0, 2.0], false);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.880797).abs() < 1e-6);
        let p = probabilities(&[1.0, 1.0, 1.0, 1.0], true);
        assert!(p.iter().all(|v| (v - 0.25).abs() < 1e-12));
    }

    #[test]
    fn file_names_with_commas_survive_a_csv_reader() {
        let names = vec!["Smiling".to_string()];
        let csv = predictions_csv(&names, [("me, 2024.jpg", vec![0.25])].into_iter());
        let mut r = csv::Reader::from_reader(csv.as_slice());
        assert_eq!(r.headers().unwrap(), vec!["image", "Smiling"]);
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(row, vec!["me, 2024.jpg", "0.250000"]);
    }
}
