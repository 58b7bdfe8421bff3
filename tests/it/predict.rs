//! `kind = "predict"`: a trained net applied to the user's own images.

use super::common::{Env, stage_of, text};

const SPEC: &str = r#"
[experiment]
name = "mine"
seed = 3

[data]
image-size = 32
train-images = 64
val-images = 16
test-images = 16
attributes = ["Smiling", "Male"]

[train]
epochs = 1

[[stage]]
id = "net"
kind = "train"

[[stage]]
id = "mine"
kind = "predict"
model = "net"
images = "photos"
"#;

/// A 40×30 image of one colour (any size: predict resizes).
fn photo(env: &Env, name: &str, shade: u8) {
    let dir = env.path().join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    image::RgbImage::from_pixel(40, 30, image::Rgb([shade, 120, 200 - shade]))
        .save(dir.join(name))
        .unwrap();
}

fn predictions(env: &Env) -> String {
    let run = env.show("mine");
    let key = stage_of(&run, "mine")["key"].as_str().unwrap().to_string();
    let entry = env.path().join("results/cache").join(&key[..2]).join(key);
    std::fs::read_to_string(entry.join("predictions.csv")).unwrap()
}

#[test]
fn predict_writes_a_probability_per_image_and_attribute() {
    let env = Env::new(SPEC);
    photo(&env, "a.png", 10);
    photo(&env, "b.png", 200);
    std::fs::write(env.path().join("photos/notes.txt"), "not an image").unwrap();
    let out = env.exp(&["run", "spec.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = predictions(&env);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "image,Smiling,Male");
    assert_eq!(rows.len(), 3, "{csv}");
    for (row, name) in rows[1..].iter().zip(["a.png", "b.png"]) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[0], name);
        for p in &cells[1..] {
            let p: f64 = p.parse().unwrap();
            assert!((0.0..=1.0).contains(&p), "{row}");
        }
    }
}

#[test]
fn an_edited_image_reruns_only_predict() {
    let env = Env::new(SPEC);
    photo(&env, "a.png", 10);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    photo(&env, "a.png", 90);
    assert!(env.exp(&["run", "spec.toml"]).status.success());
    let run = env.show("mine");
    assert_eq!(stage_of(&run, "net")["status"], "cached");
    assert_eq!(stage_of(&run, "mine")["status"], "ran");
}

#[test]
fn a_folder_without_images_is_a_spec_error() {
    let env = Env::new(SPEC);
    std::fs::create_dir_all(env.path().join("photos")).unwrap();
    let out = env.exp(&["run", "spec.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = text(&out);
    assert!(err.contains("spec.toml:24:1: `stage[1].images`"), "{err}");
    assert!(err.contains("holds no JPEG or PNG image"), "{err}");
}
