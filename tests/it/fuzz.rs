//! Mutation fuzzing of everything a user types or a data set holds: the
//! spec loader (with `extends` and `-s`), the sweep expander, and the
//! CelebA and CUB annotation readers. Every input must give a value or an
//! error — never a panic, an abort or a hang (each execution is timed).
//!
//! `cargo test` runs a short pass (a few seconds) and every file in
//! `tests/fuzz-corpus/` (inputs that once broke exp). A long pass:
//! `EXP_FUZZ_EXECS=4750000 EXP_FUZZ_SPEC_EXECS=500000 cargo test --release
//! --test it -- --nocapture fuzz::` (executions per target; the totals are
//! printed; scratch files live in /dev/shm where there is one).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Longest any one execution may take: a hang or a blow-up, not a busy
/// machine (a 4,295-point sweep once took 19 s to expand; now 0.3 s).
const SLOW: Duration = Duration::from_secs(10);

/// Executions per target: `EXP_FUZZ_EXECS`, or for the (slower) spec
/// target `EXP_FUZZ_SPEC_EXECS` when set.
fn execs_of(var: &str) -> usize {
    std::env::var(var)
        .or_else(|_| std::env::var("EXP_FUZZ_EXECS"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn execs() -> usize {
    execs_of("EXP_FUZZ_EXECS")
}

/// Tokens that tend to break parsers: sizes, signs, NaN, nesting, paths.
const TOKENS: &[&str] = &[
    "4294967295",
    "18446744073709551615",
    "99999999999999",
    "-1",
    "0",
    "nan",
    "inf",
    "1e30",
    "-0.0",
    "[[stage]]\n",
    "[sweep]\n",
    "[executor]\n",
    "extends = \"spec.toml\"\n",
    "extends = \"../x/spec.toml\"\n",
    "seeds = [1, 2, 3]\n",
    "grid = { \"train.lr\" = [0.1, 0.2] }\n",
    "samples = 100000000\n",
    "{ log-uniform = [1e-9, 1] }",
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    "=",
    ",",
    "\n",
    "\r\n",
    " ",
    "\t",
    "..",
    "/",
    "/etc/passwd",
    "kind = \"command\"\n",
    "run = \"true {x}\"\n",
    "id = \"",
    "\u{feff}",
    "é",
    "\0",
];

fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = if v.is_empty() {
            0
        } else {
            rng.random_range(0..v.len())
        };
        match rng.random_range(0..6) {
            0 if !v.is_empty() => v[at] ^= 1 << rng.random_range(0..8),
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(at..at, t.bytes());
            }
            2 if !v.is_empty() => {
                let end = (at + rng.random_range(1..32)).min(v.len());
                v.drain(at..end);
            }
            3 if !v.is_empty() => {
                // Duplicate a slice (repeated tables, long lines).
                let end = (at + rng.random_range(1..64)).min(v.len());
                let s: Vec<u8> = v[at..end].to_vec();
                v.splice(at..at, s);
            }
            4 => {
                // Replace a number with an extreme one.
                if let Some(p) = v.iter().skip(at).position(|b| b.is_ascii_digit()) {
                    let p = at + p;
                    let t = [
                        "0",
                        "-1",
                        "4294967295",
                        "99999999999999999999",
                        "1e308",
                        "nan",
                    ][rng.random_range(0..6)];
                    v.splice(p..p + 1, t.bytes());
                }
            }
            _ => v.truncate(at),
        }
    }
    v
}

/// Run `f`; a panic or a slow execution fails the test with the input.
fn check(what: &str, input: &[u8], f: impl FnOnce()) {
    let start = Instant::now();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let took = start.elapsed();
    if r.is_err() || took > SLOW {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{what}-{}.bin", exp::digest::sha256_hex(input)));
        std::fs::write(&path, input).unwrap();
        panic!(
            "{what}: {} on an input saved to {} (copy it into tests/fuzz-corpus/)",
            if r.is_err() {
                "panicked"
            } else {
                "took too long"
            },
            path.display()
        );
    }
}

fn corpus_specs() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [root.join("experiments"), root.join("tests/fuzz-corpus")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Spec files and overrides: `load_points` expands sweeps, so it covers
/// the loader, `extends`, `-s` and the sweep expander at once.
#[test]
fn specs_and_overrides_never_panic_or_hang() {
    let dir = scratch();
    // A base every mutated `extends = "spec.toml"` or "base.toml" can find.
    let base =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/base.toml")).unwrap();
    std::fs::write(dir.path().join("base.toml"), &base).unwrap();
    let seeds = corpus_specs();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let path = dir.path().join("spec.toml");
    let n = execs_of("EXP_FUZZ_SPEC_EXECS");
    for i in 0..n {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            let k = rng.random_range(0..seeds.len());
            mutate(&mut rng, &seeds[k])
        };
        let overrides: Vec<String> = if rng.random_bool(0.3) {
            let o = mutate(&mut rng, b"train.lr=0.1,0.2");
            vec![String::from_utf8_lossy(&o).to_string()]
        } else {
            vec![]
        };
        std::fs::write(&path, &input).unwrap();
        check("spec", &input, || {
            let _ = exp::spec::load_points(&path, &overrides);
        });
    }
    println!("specs: {n} executions");
}

/// A valid CelebA annotation set of `n` images under `root`.
fn celeba_seed(root: &Path, n: usize) -> Vec<PathBuf> {
    let records: Vec<exp::data::celeba::Record> = (0..n)
        .map(|i| exp::data::celeba::Record {
            file: format!("{:06}.jpg", i + 1),
            split: (i % 3) as u8,
            labels: std::array::from_fn(|k| (i + k) % 3 == 0),
            bbox: Some([1.0, 2.0, 30.0, 40.0]),
            landmarks: Some([5.0, 6.0, 9.0, 6.0, 7.0, 9.0, 5.0, 12.0, 9.0, 12.0]),
        })
        .collect();
    exp::data::celeba::write_annotations(root, &records, None).unwrap();
    exp::digest::files_under(root)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn cub_seed(root: &Path, n: usize) -> Vec<PathBuf> {
    let classes: Vec<String> = (1..=3).map(|c| format!("{c:03}.Bird_{c}")).collect();
    let records: Vec<exp::data::cub::BirdRecord> = (0..n)
        .map(|i| exp::data::cub::BirdRecord {
            id: i as u32 + 1,
            file: format!("{:03}.Bird/{i}.jpg", i % 3 + 1),
            class: i % 3,
            split: (i % 3) as u8,
            bbox: [1.0, 2.0, 20.0, 10.0],
            parts: vec![(1, 3.0, 4.0), (5, 6.0, 7.0)],
        })
        .collect();
    exp::data::cub::write_annotations(root, &classes, &records).unwrap();
    exp::digest::files_under(root)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// A scratch folder in memory where there is one (a fuzz pass writes
/// files millions of times).
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// Mutate one annotation file at a time and read the whole set.
fn fuzz_reader(name: &str, files: &[PathBuf], read: impl Fn()) {
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = execs();
    for _ in 0..n {
        let k = rng.random_range(0..files.len());
        let input = mutate(&mut rng, &originals[k]);
        std::fs::write(&files[k], &input).unwrap();
        check(name, &input, &read);
        std::fs::write(&files[k], &originals[k]).unwrap();
    }
    println!("{name}: {n} executions");
}

#[test]
fn celeba_annotations_never_panic_or_hang() {
    let dir = scratch();
    let files = celeba_seed(dir.path(), 12);
    assert!(
        exp::data::celeba::Celeba::open(dir.path()).is_ok(),
        "the seed is valid"
    );
    fuzz_reader("celeba", &files, || {
        let _ = exp::data::celeba::Celeba::open(dir.path());
    });
}

#[test]
fn cub_annotations_never_panic_or_hang() {
    let dir = scratch();
    let files = cub_seed(dir.path(), 12);
    assert!(
        exp::data::cub::Cub::open(dir.path()).is_ok(),
        "the seed is valid"
    );
    fuzz_reader("cub", &files, || {
        let _ = exp::data::cub::Cub::open(dir.path());
    });
}
