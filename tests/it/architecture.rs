//! The module map of `docs/architecture.md`, enforced: a module may import
//! only the modules below it, and only the modules that run nets may
//! import burn. Fails with the file and the import that breaks the rule.

use std::collections::BTreeMap;
use std::path::Path;

/// What running a stage may touch: each kind's `run.rs` and `stages`.
const RUNNING: &[&str] = &[
    "attributes",
    "cache",
    "colour",
    "data",
    "device",
    "digest",
    "file_error",
    "kinds",
    "metrics",
    "models",
    "ops",
    "progress",
    "spec",
    "stages",
    "train",
    "vocab",
];

/// Module → the crate modules it may import (`docs/architecture.md`).
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves.
    ("atomic", &[]),
    ("file_error", &[]),
    ("attributes", &[]),
    ("digest", &[]),
    ("vocab", &[]),
    ("colour", &[]),
    ("progress", &[]),
    ("device", &[]),
    ("ops", &["vocab"]),
    // Specs and plans: no nets, no cache, no files but the spec's own.
    ("spec", &["attributes", "digest", "vocab", "kinds"]),
    // What each stage kind is (`kinds/`, but its `run.rs`): the spec's
    // vocabulary. (`data`: a real CUB root is opened while validating, so
    // its errors come with file:line and exit 2 before anything runs.)
    ("kinds", &["attributes", "digest", "vocab", "spec", "data"]),
    ("plan", &["spec", "kinds"]),
    // Storage.
    ("cache", &["digest"]),
    ("runs", &["atomic", "cache", "file_error"]),
    ("metrics", &["atomic", "runs"]),
    // Data, nets, training.
    ("data", &["attributes", "digest", "file_error", "vocab"]),
    ("models", &["ops", "vocab"]),
    ("train", &["data", "metrics", "models", "progress", "spec"]),
    // How each kind runs (`kinds/<kind>/run.rs`) and what they share (`stages`).
    ("kinds::run", RUNNING),
    ("stages", RUNNING),
    // Running and reading results.
    (
        "exec",
        &[
            "atomic", "cache", "data", "device", "digest", "kinds", "metrics", "plan", "progress",
            "runs", "spec", "stages", "train",
        ],
    ),
    (
        "report",
        &[
            "attributes",
            "cache",
            "colour",
            "file_error",
            "metrics",
            "models",
            "runs",
            "spec",
        ],
    ),
    ("ui", &["cache", "report", "runs"]),
];

/// Modules that may name burn (they build or run nets).
const BURN: &[&str] = &[
    "ops",
    "device",
    "models",
    "train",
    "kinds::run",
    "stages",
    "data",
    "cli",
];

/// Top-level crate modules named by `crate::…` paths and `use crate::{…}` groups.
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Names at depth 1 of the group.
            let (mut depth, mut name, mut at_start) = (1, String::new(), true);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        if !name.is_empty() {
                            out.push(std::mem::take(&mut name));
                        }
                        at_start = true;
                    }
                    c if depth == 1 && at_start && (c.is_alphanumeric() || c == '_') => {
                        name.push(c)
                    }
                    _ if depth == 1 && at_start && !name.is_empty() => {
                        out.push(std::mem::take(&mut name));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_import_only_what_the_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut broken = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let mut module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // A kind's `run.rs` is where it may touch nets.
        if module == "kinds" && rel.ends_with("run.rs") {
            module = "kinds::run".into();
        }
        // Tests may reach anywhere; `cli`, `lib` and `main` sit on top.
        if rel.ends_with("tests.rs") || ["cli", "lib", "main"].contains(&module.as_str()) {
            continue;
        }
        let Some(ok) = allowed.get(module.as_str()) else {
            broken.push(format!(
                "{}: module `{module}` is not in the map",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        // Code under `#[cfg(test)]` at the end of a file is a test.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for m in imports(code) {
            let home = module.split("::").next().unwrap();
            if m != home && !ok.contains(&m.as_str()) {
                broken.push(format!("{}: imports `crate::{m}`", rel.display()));
            }
        }
        if !BURN.contains(&module.as_str()) && code.contains("burn::") {
            broken.push(format!("{}: uses burn", rel.display()));
        }
    }
    assert!(
        broken.is_empty(),
        "imports the architecture does not allow (docs/architecture.md):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_import_scanner_reads_paths_and_groups() {
    assert_eq!(imports("use crate::cache::Entry;"), ["cache"]);
    assert_eq!(
        imports("use crate::{cache::{A, B}, spec, data::x};"),
        ["cache", "spec", "data"]
    );
}

/// Modules that form one layer: a spec's stages are typed by the kinds, and
/// the kinds resolve their tables with the spec's error locations.
const LAYERS: &[(&str, &str)] = &[("kinds", "spec"), ("kinds::run", "stages")];

/// The layer a module belongs to.
fn layer(module: &str) -> &str {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .map_or(module, |(_, l)| l)
}

/// The allowed imports between layers have no cycle, so each layer can be
/// read (and tested) with only the layers below it.
#[test]
fn the_layers_import_one_another_without_a_cycle() {
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (module, deps) in ALLOWED {
        let from = layer(module);
        for d in deps.iter().map(|d| layer(d)).filter(|d| *d != from) {
            edges.entry(from).or_default().push(d);
        }
    }
    // Depth-first search; `path` is the chain being explored.
    fn visit<'a>(
        at: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<String> {
        if let Some(i) = path.iter().position(|p| *p == at) {
            return Some(format!("{} → {at}", path[i..].join(" → ")));
        }
        if done.contains(&at) {
            return None;
        }
        path.push(at);
        for next in edges.get(at).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.push(at);
        None
    }
    let (mut path, mut done) = (Vec::new(), Vec::new());
    for from in edges.keys() {
        if let Some(cycle) = visit(from, &edges, &mut path, &mut done) {
            panic!("the architecture's imports go round: {cycle}");
        }
    }
}
