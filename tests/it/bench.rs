//! `exp bench`: the net it times is the one asked for.

use super::common::{Env, TINY, text};

fn params(env: &Env, width: &str) -> u64 {
    let out = env.exp(&[
        "bench",
        "--net",
        "snet3",
        "--size",
        "16",
        "--batch",
        "2",
        "--attributes",
        "2",
        "--steps",
        "1",
        "--width",
        width,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["width"].as_f64().unwrap(), width.parse::<f64>().unwrap());
    v["params"].as_u64().unwrap()
}

#[test]
fn bench_times_snet3_at_the_width_asked_for() {
    let env = Env::new(TINY);
    // Width 0.25: convs 3→4→8→16→32 (3×3, biases), a 1×1 to 2 × 32 maps,
    // and the block-diagonal FC (32 weights + 1 bias per attribute).
    let convs = (3 * 4 * 9 + 4) + (4 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 32 * 9 + 32);
    assert_eq!(params(&env, "0.25"), convs + (32 * 64 + 64) + 2 * 33);
    assert!(params(&env, "1") > 10 * params(&env, "0.25"));
}

#[test]
fn bench_refuses_a_width_outside_its_range() {
    let env = Env::new(TINY);
    let out = env.exp(&["bench", "--width", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--width"), "{}", text(&out));
}
