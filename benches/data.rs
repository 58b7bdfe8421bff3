//! Data-path throughput: synthetic generation (JPEG encode + write
//! included), decode + resize per core, shard reads against a plain memcpy,
//! and batch assembly (shard bytes → normalised, flipped f32 batches: what
//! the training loop feeds the device).
//! `cargo bench --bench data`; results go in `bench/results/`.

use std::time::Instant;

use exp::data::{ImageSet, Source, generate_synthetic_faces, shards};
use exp::spec::{DataSpec, Split};

fn spec(size: u32, n: u32) -> DataSpec {
    DataSpec {
        dataset: "synthetic-faces".into(),
        image_size: size,
        train_images: n,
        val_images: 1,
        test_images: 1,
        attributes: (0..40).collect(),
        seed: 1,
        generator: 1,
        class_offset: 0,
        real: None,
    }
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("machine: {threads} threads; {}", std::env::consts::ARCH);
    let dir = tempfile::tempdir().expect("temp dir");

    // 1. Generation at 128 px.
    let n = 6000;
    let root = dir.path().join("gen128");
    let t = Instant::now();
    generate_synthetic_faces(&spec(128, n), &root, &|_| {}).expect("generate");
    let s = t.elapsed().as_secs_f64();
    println!(
        "generate/128px: {:.0} images/s ({} images in {s:.2}s, JPEG encode + write included)",
        (n + 2) as f64 / s,
        n + 2
    );

    // 2. Decode + resize (128 → 64 px) on one core.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let src = Source::synthetic(&root, exp::data::Format::Celeba);
    let t = Instant::now();
    let set = one.install(|| ImageSet::decode(&src, Split::Train, 64, &[0]).expect("decode"));
    let s = t.elapsed().as_secs_f64();
    println!(
        "decode+resize/128->64px: {:.0} images/s per core",
        set.len() as f64 / s
    );

    // 3. Shard read vs memcpy, same bytes.
    let shard_dir = dir.path().join("shards");
    shards::write(&src, 128, &shard_dir, &|_| {}).expect("shards");
    let reps = 20;
    let t = Instant::now();
    let mut sum = 0u64;
    let mut bytes = 0usize;
    for _ in 0..reps {
        let set = shards::read(&shard_dir, Split::Train, 128, &[0])
            .expect("read")
            .expect("shard");
        sum += set
            .pixels
            .iter()
            .step_by(64)
            .map(|&b| b as u64)
            .sum::<u64>();
        let px: &[u8] = &set.pixels;
        let mut copy = vec![0u8; px.len()];
        copy.copy_from_slice(px);
        sum += copy[copy.len() / 2] as u64;
        bytes += px.len();
    }
    let s_read = t.elapsed().as_secs_f64();
    let src_buf = vec![1u8; bytes / reps];
    let t = Instant::now();
    for _ in 0..reps {
        let mut copy = vec![0u8; src_buf.len()];
        copy.copy_from_slice(&src_buf);
        sum += copy[copy.len() / 2] as u64;
    }
    let s_copy = t.elapsed().as_secs_f64();
    println!(
        "shard read (map + copy out)/128px: {:.2} GB/s; plain memcpy: {:.2} GB/s ({} MB x {reps}; checksum {sum})",
        bytes as f64 / s_read / 1e9,
        bytes as f64 / s_copy / 1e9,
        bytes / reps / 1_000_000
    );

    // 4. Batch assembly from the mapped shard, batches of 128 with flips.
    let set = shards::read(&shard_dir, Split::Train, 128, &[0])
        .expect("read")
        .expect("shard");
    let device = burn::tensor::Device::flex();
    let t = Instant::now();
    let mut assembled = 0;
    for _ in 0..3 {
        for (idx, flip) in exp::data::epoch_batches(set.len(), 128, 1, 1, true) {
            let batch = set.images(&idx, &flip, &device);
            assembled += batch.dims()[0];
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "batch assembly/128px (u8 shard -> f32 tensor, flips, {threads} threads): {:.0} images/s; at 224 px about {:.0} images/s",
        assembled as f64 / s,
        assembled as f64 / s * (128.0 * 128.0) / (224.0 * 224.0)
    );
}
