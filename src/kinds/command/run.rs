//! `kind = "command"`: run the user's program (resolved by
//! `kinds::command`) with its output folder, upstream entries, seed and
//! parameters; stream its output into the stage log; check its declared
//! outputs; read its metrics as the stage's summary. A failure caches
//! nothing: the scheduler drops the partial output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::kinds;
use crate::kinds::command::{CommandConfig, fill, unescape};
use crate::stages::Run;
use crate::stages::{StageCtx, StageError};

/// Lines of output shown when the command fails.
const TAIL: usize = 20;

impl Run for kinds::command::Command {
    fn run(ctx: &StageCtx, c: &CommandConfig) -> Result<serde_json::Value, StageError> {
        run(ctx, c)
    }
}

fn run(ctx: &StageCtx, cfg: &CommandConfig) -> Result<serde_json::Value, StageError> {
    let input_error = |message: String| StageError::Input {
        stage: ctx.stage.id.clone(),
        message,
    };
    let out = std::path::absolute(ctx.out).map_err(|e| crate::file_error::FileError::Read {
        path: ctx.out.to_path_buf(),
        source: e,
    })?;
    // Absolute: the command runs in the spec's folder, not where exp was started.
    let input_dir = |role: &str| {
        ctx.inputs
            .get(role)
            .map(|e| std::path::absolute(&e.dir).unwrap_or_else(|_| e.dir.clone()))
    };
    let argv: Vec<String> = cfg
        .argv
        .iter()
        .map(|arg| {
            // Paths are escaped like values, so `unescape` restores them whole.
            let esc = |p: &std::path::Path| {
                p.display()
                    .to_string()
                    .replace('{', "{{")
                    .replace('}', "}}")
            };
            fill(arg, &|name| match name {
                "out" => Some(Ok(esc(&out))),
                n => n
                    .strip_prefix("inputs.")
                    .and_then(input_dir)
                    .map(|d| Ok(esc(&d))),
            })
            .map(|a| unescape(&a))
            .map_err(&input_error)
        })
        .collect::<Result<_, _>>()?;

    let mut command = Command::new(&cfg.program.path);
    command
        .args(&argv[1..])
        .current_dir(&cfg.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("EXP_OUT", &out)
        .env("EXP_STAGE", &ctx.stage.id)
        .env("EXP_SEED", cfg.seed.to_string())
        .env(
            "EXP_PARAMS",
            serde_json::to_string(&cfg.params).expect("params serialize"),
        )
        .envs(&cfg.env);
    for role in ctx.inputs.keys() {
        command.env(env_name(role), input_dir(role).expect("present"));
    }
    ctx.progress.log(&format!(
        "$ {}",
        shlex::try_join(argv.iter().map(|s| s.as_str())).unwrap_or_else(|_| argv.join(" "))
    ));
    let mut child = command.spawn().map_err(|e| {
        input_error(format!(
            "cannot start `{}`: {e}",
            cfg.program.path.display()
        ))
    })?;

    // Both pipes into the log as they come; the last lines kept for an error.
    let tail = Mutex::new(VecDeque::with_capacity(TAIL));
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    std::thread::scope(|scope| {
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let tail = &tail;
            scope.spawn(move || {
                // Bytes, not `lines()`: one invalid UTF-8 line must not stop the
                // reader (the child would then die of a closed pipe).
                let mut reader = BufReader::new(pipe);
                let mut buf = Vec::new();
                while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    buf.clear();
                    ctx.progress.log(&line);
                    let mut t = tail.lock().expect("tail lock");
                    if t.len() == TAIL {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        }
    });
    let status = child
        .wait()
        .map_err(|e| input_error(format!("waiting for `{}`: {e}", cfg.program.path.display())))?;
    if !status.success() {
        let tail: Vec<String> = tail.into_inner().expect("tail lock").into();
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(input_error(format!(
            "the command {how}; its last lines:\n{}",
            if tail.is_empty() {
                "(no output)".to_string()
            } else {
                tail.join("\n")
            }
        )));
    }
    for o in &cfg.outputs {
        if !out.join(o).exists() {
            return Err(input_error(format!(
                "the command did not write its declared output `{o}` into {{out}} ($EXP_OUT)"
            )));
        }
    }
    let metrics = cfg.metrics.as_deref().unwrap_or("metrics.json");
    let path = out.join(metrics);
    if !path.exists() {
        if cfg.metrics.is_some() {
            return Err(input_error(format!(
                "the command did not write its metrics file `{metrics}` into {{out}} ($EXP_OUT)"
            )));
        }
        return Ok(serde_json::json!({}));
    }
    read_metrics(&path).map_err(input_error)
}

/// `EXP_INPUT_<ROLE>`, the role upper-cased with `-` as `_`.
fn env_name(role: &str) -> String {
    format!(
        "EXP_INPUT_{}",
        role.to_ascii_uppercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// A JSON object, or the first row of a Parquet file, as a summary.
fn read_metrics(path: &Path) -> Result<serde_json::Value, String> {
    let shown = path.display();
    if path.extension().is_some_and(|e| e == "parquet") {
        use polars::prelude::*;
        let file = std::fs::File::open(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
        let df = ParquetReader::new(file)
            .finish()
            .map_err(|e| format!("metrics file `{shown}` is not Parquet: {e}"))?;
        let mut out = serde_json::Map::new();
        for col in df.columns() {
            let v = col
                .get(0)
                .map_err(|_| format!("metrics file `{shown}` has no rows"))?;
            let value = match v {
                AnyValue::String(s) => serde_json::json!(s),
                AnyValue::Boolean(b) => serde_json::json!(b),
                other => other
                    .extract::<f64>()
                    .map(|x| serde_json::json!(x))
                    .unwrap_or(serde_json::Value::Null),
            };
            out.insert(col.name().to_string(), value);
        }
        return Ok(serde_json::Value::Object(out));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(format!(
            "metrics file `{shown}` must hold a JSON object (name → number)"
        )),
        Err(e) => Err(format!("metrics file `{shown}` is not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_roles_become_environment_names() {
        assert_eq!(env_name("data"), "EXP_INPUT_DATA");
        assert_eq!(env_name("val-set"), "EXP_INPUT_VAL_SET");
    }

    #[test]
    fn metrics_must_be_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(&p, "[1, 2]").unwrap();
        assert!(read_metrics(&p).unwrap_err().contains("JSON object"));
        std::fs::write(&p, r#"{"loss": 0.5}"#).unwrap();
        assert_eq!(read_metrics(&p).unwrap()["loss"], 0.5);
    }
}
