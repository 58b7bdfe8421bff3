//! Records the commit `exp` is built from, for `exp --version` and every run
//! record: the repository's HEAD, with `+dirty` when tracked files differed
//! from it (checked when `src/`, the manifests or git's index change), or
//! `unknown` outside a git checkout.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    for path in [".git/HEAD", ".git/index", "src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    let (full, short) = match commit {
        Some(c) => {
            let mark = if dirty == Some(true) { "+dirty" } else { "" };
            (
                format!("{c}{mark}"),
                format!("{}{mark}", &c[..c.len().min(10)]),
            )
        }
        None => ("unknown".to_string(), "unknown".to_string()),
    };
    println!("cargo:rustc-env=EXP_BUILD_COMMIT={full}");
    println!("cargo:rustc-env=EXP_BUILD_SHORT={short}");
}
