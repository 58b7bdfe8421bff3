//! `kind = "command"`: the user's own program as a stage. This module reads
//! its table and resolves everything its result depends on into the cache
//! key: the command line with its `params` filled in, the program (path,
//! sha256 and, for interpreters, `--version`), the sha256 of every file the
//! command line names and of every declared `deps` path, the seed and the
//! extra environment. `stages::command` runs it.
//!
//! ```toml
//! [[stage]]
//! id = "baseline"
//! kind = "command"
//! run = "python3 scripts/prior.py --smoothing {smoothing} --out {out}"
//! params = { smoothing = 1.0 }
//! inputs = { data = "data" }     # upstream stages → {inputs.data}, $EXP_INPUT_DATA
//! deps = ["scripts/common.py"]   # more files or folders in the key
//! outputs = ["prior.json"]       # must exist in {out} afterwards
//! metrics = "metrics.json"       # in {out}: numbers shown and compared
//! ```

/// How it runs (burn).
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Artefact, Env, Kind, KindDef, Resolved, Upstream};
use crate::spec::locate::Seg;
use crate::spec::{Ctx, SpecError, backticked, key};

pub struct Command;

impl Kind for Command {
    type Config = CommandConfig;

    const DEF: KindDef = KindDef {
        name: "command",
        version: 1,
        // Whatever the program does, exp's backend is not part of it.
        backend: false,
        // Its own table type (`RawCommand`) checks its keys.
        keys: &[],
        // Its own roles, any upstream artefact.
        roles: &[],
    };

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<CommandConfig>, SpecError> {
        resolve(table, env.seed, env.here, env.ctx)
    }

    /// Its declared outputs: nothing the plan can check further.
    fn artefact(_: &CommandConfig, _: &Upstream) -> Result<Option<Artefact>, String> {
        Ok(Some(Artefact::Files))
    }
}

/// The raw `[[stage]]` table of a command stage.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawCommand {
    id: String,
    #[allow(dead_code)]
    kind: String,
    /// The command line: a string split like a POSIX shell does (no shell
    /// runs it), or a list of arguments.
    run: toml::Value,
    /// Values substituted for `{name}`; part of the key; sweepable as
    /// `stage.<id>.params.<name>`.
    #[serde(default)]
    params: toml::Table,
    /// Upstream stages by role: their entry folders as `{inputs.<role>}` and
    /// `$EXP_INPUT_<ROLE>`.
    #[serde(default)]
    inputs: BTreeMap<String, String>,
    /// Files or folders (relative to the spec) whose contents are in the key.
    #[serde(default)]
    deps: Vec<String>,
    /// Files the command must write into `{out}`.
    #[serde(default)]
    outputs: Vec<String>,
    /// A JSON object (or one-row Parquet file) the command writes into
    /// `{out}`. Default: `metrics.json` when it is written.
    metrics: Option<String>,
    /// Extra environment variables (in the key).
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Default: the experiment's seed (`{seed}`, `$EXP_SEED`).
    seed: Option<u64>,
}

/// A command stage, resolved: what goes into its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandConfig {
    /// Arguments with `params` and `{seed}` filled in; `{out}` and
    /// `{inputs.<role>}` are filled in when it runs.
    pub argv: Vec<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    pub program: Program,
    /// sha256 of each file named on the command line or in `deps`, by the
    /// path as written.
    pub files: BTreeMap<String, String>,
    pub outputs: Vec<String>,
    pub metrics: Option<String>,
    pub env: BTreeMap<String, String>,
    pub seed: u64,
    /// Where it runs (the spec's folder); not in the key, so a moved
    /// checkout keeps its cache.
    #[serde(skip)]
    pub workdir: PathBuf,
}

/// The program that runs, as found when the spec was loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub path: PathBuf,
    pub sha256: String,
    /// `--version` of a known interpreter (a pyenv or conda shim's sha256
    /// does not change when the interpreter behind it does).
    pub version: Option<String>,
}

/// Interpreters whose `--version` is asked (other programs are not run
/// while loading a spec: `--version` might mean anything to them).
const INTERPRETERS: &[&str] = &[
    "python", "python3", "Rscript", "julia", "node", "perl", "ruby", "bash", "sh",
];

fn resolve(
    table: toml::Table,
    default_seed: u64,
    here: &[Seg],
    ctx: &Ctx,
) -> Result<Resolved<CommandConfig>, SpecError> {
    let raw: RawCommand = ctx.deserialize(toml::Value::Table(table), here)?;
    let parent = ctx.sources[0].path.parent().unwrap_or(Path::new(""));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    // Absolute, so the stage runs in the same place whoever starts it.
    let workdir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let at_run = key(here, "run");
    let template: Vec<String> = match &raw.run {
        toml::Value::String(s) => shlex::split(s)
            .ok_or_else(|| ctx.error(&at_run, "unbalanced quotes in the command line"))?,
        toml::Value::Array(items) => items
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s.clone()),
                other => Ok(other.to_string()),
            })
            .collect::<Result<_, SpecError>>()?,
        other => {
            return Err(ctx.error(
                &at_run,
                format!(
                    "expected a command line (a string or a list of strings), found {}",
                    other.type_str()
                ),
            ));
        }
    };
    if template.is_empty() {
        return Err(ctx.error(&at_run, "the command line is empty"));
    }
    let seed = raw.seed.unwrap_or(default_seed);
    let params: BTreeMap<String, serde_json::Value> = raw
        .params
        .iter()
        .map(|(k, v)| (k.clone(), toml_to_json(v)))
        .collect();
    let mut argv = Vec::with_capacity(template.len());
    for arg in &template {
        let filled = fill(arg, &|name| match name {
            "seed" => Some(Ok(seed.to_string())),
            "out" => Some(Err(())),
            // Filled in when it runs; an undeclared role is an unknown name.
            n if n.starts_with("inputs.") => raw
                .inputs
                .contains_key(&n["inputs.".len()..])
                .then_some(Err(())),
            // Braces in a value are literal: escaped here, restored when it runs.
            n => params
                .get(n)
                .map(|v| Ok(plain(v).replace('{', "{{").replace('}', "}}"))),
        })
        .map_err(|bad| {
            let names: Vec<String> = params.keys().map(|k| format!("{{{k}}}")).collect();
            let roles: Vec<String> = raw
                .inputs
                .keys()
                .map(|r| format!("{{inputs.{r}}}"))
                .collect();
            ctx.error(
                &at_run,
                format!(
                    "{bad}; placeholders are {}",
                    backticked(
                        &["{out}".to_string(), "{seed}".to_string()]
                            .into_iter()
                            .chain(roles)
                            .chain(names)
                            .collect::<Vec<_>>()
                    )
                ),
            )
        })?;
        argv.push(filled);
    }
    let program = find_program(&argv[0], &workdir).map_err(|e| ctx.error(&at_run, e))?;
    let mut files = BTreeMap::new();
    for arg in &argv[1..] {
        let path = workdir.join(arg);
        if !arg.contains('{') && path.is_file() {
            let sha = crate::digest::file_digest(&path)
                .map_err(|e| ctx.error(&at_run, format!("cannot read `{arg}`: {e}")))?;
            files.insert(arg.clone(), sha);
        }
    }
    for (i, dep) in raw.deps.iter().enumerate() {
        let at = {
            let mut p = key(here, "deps");
            p.push(Seg::Index(i));
            p
        };
        let digest = crate::digest::path_digest(&workdir.join(dep))
            .map_err(|e| ctx.error(&at, format!("cannot read `{dep}`: {e}")))?;
        files.insert(dep.clone(), digest);
    }
    for (i, out) in raw.outputs.iter().enumerate() {
        if !is_inside(out) {
            let mut at = key(here, "outputs");
            at.push(Seg::Index(i));
            return Err(ctx.error(
                &at,
                format!("`{out}` must be a relative path inside the stage's output folder"),
            ));
        }
    }
    if let Some(m) = &raw.metrics {
        if !is_inside(m) {
            return Err(ctx.error(
                &key(here, "metrics"),
                format!("`{m}` must be a relative path inside the stage's output folder"),
            ));
        }
    }
    Ok(Resolved {
        id: raw.id,
        inputs: raw.inputs,
        config: CommandConfig {
            argv,
            params,
            program,
            files,
            outputs: raw.outputs,
            metrics: raw.metrics,
            env: raw.env,
            seed,
            workdir,
        },
    })
}

/// Replace `{name}` by `value(name)`: `Some(Ok(v))` substitutes, `Some(Err)`
/// keeps the placeholder for later, `None` is an unknown name. `{{` and `}}`
/// are literal braces.
pub fn fill(
    arg: &str,
    value: &dyn Fn(&str) -> Option<Result<String, ()>>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..2]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(format!(
                "unmatched `}}` in `{arg}` (write `}}}}` for a brace)"
            ));
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{arg}` (write `{{{{` for a brace)"))?;
        let name = &tail[1..end];
        match value(name) {
            Some(Ok(v)) => out.push_str(&v),
            Some(Err(())) => out.push_str(&tail[..=end]),
            None => return Err(format!("unknown placeholder `{{{name}}}` in `{arg}`")),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `{{`/`}}` back to single braces, once every placeholder is filled.
pub fn unescape(arg: &str) -> String {
    arg.replace("{{", "{").replace("}}", "}")
}

/// A parameter as it appears on a command line: strings without quotes.
fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// A relative path without `..`: stays inside the folder it is joined to.
fn is_inside(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty()
        && path.is_relative()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

/// The program as `PATH` (or the spec's folder, for a path with a `/`) finds it.
fn find_program(name: &str, workdir: &Path) -> Result<Program, String> {
    let path = if name.contains('/') {
        let p = workdir.join(name);
        p.is_file()
            .then_some(p)
            .ok_or_else(|| format!("program `{name}` not found (relative to the spec's folder)"))?
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| format!("program `{name}` not found on PATH"))?
    };
    let sha256 = crate::digest::file_digest(&path)
        .map_err(|e| format!("cannot read program `{}`: {e}", path.display()))?;
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let interpreter = INTERPRETERS.iter().any(|i| {
        base == *i
            || (base.starts_with(i)
                && base[i.len()..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.'))
    });
    let version = if interpreter {
        Some(version_memo(&path, &sha256)?)
    } else {
        None
    };
    Ok(Program {
        path,
        sha256,
        version,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// [`version_of`], asked once per process for each program file (a
/// sweep loads its spec once per point; a pyenv shim takes ~0.1 s).
fn version_memo(program: &Path, sha256: &str) -> Result<String, String> {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<BTreeMap<(PathBuf, String), String>>> =
        std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let k = (program.to_path_buf(), sha256.to_string());
    if let Some(v) = seen.lock().expect("memo lock").get(&k) {
        return Ok(v.clone());
    }
    let v = version_of(program)?;
    seen.lock().expect("memo lock").insert(k, v.clone());
    Ok(v)
}

/// `program --version` (stdout and stderr: Python 2 printed to stderr),
/// given 10 seconds.
fn version_of(program: &Path) -> Result<String, String> {
    let mut child = Process::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{} --version`: {e}", program.display()))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                return Err(format!(
                    "`{} --version` did not answer within 10 s",
                    program.display()
                ));
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{} --version`: {e}", program.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str) -> Option<Result<String, ()>> {
        match name {
            "lr" => Some(Ok("0.1".into())),
            "out" => Some(Err(())),
            _ => None,
        }
    }

    #[test]
    fn fill_substitutes_params_and_keeps_runtime_placeholders() {
        assert_eq!(fill("--lr={lr}", &params).unwrap(), "--lr=0.1");
        assert_eq!(fill("{out}/m.json", &params).unwrap(), "{out}/m.json");
        assert_eq!(fill("{{lr}}", &params).unwrap(), "{{lr}}");
        assert_eq!(unescape("{{lr}}"), "{lr}");
    }

    #[test]
    fn fill_names_an_unknown_placeholder() {
        assert_eq!(
            fill("--lr={rl}", &params).unwrap_err(),
            "unknown placeholder `{rl}` in `--lr={rl}`"
        );
        assert!(fill("{lr", &params).unwrap_err().contains("unclosed"));
    }

    #[test]
    fn outputs_must_stay_inside() {
        assert!(is_inside("model.json"));
        assert!(is_inside("sub/model.json"));
        assert!(!is_inside("../model.json"));
        assert!(!is_inside("/tmp/model.json"));
        assert!(!is_inside(""));
    }
}
