//! Experiment specs: TOML in, a validated [`Spec`] out.
//!
//! Rough outline:
//! 1. read the file and every `extends` base, merge them (child wins; stages
//!    merge by `id`);
//! 2. apply `-s key=value` overrides to the merged document;
//! 3. deserialize into the raw [`schema`] (unknown keys rejected);
//! 4. resolve: fill defaults, validate values, turn the `[data]` table into
//!    the implicit stage `data`.
//!
//! Every error names the file, line and column, the key path and what is
//! allowed. Cross-stage checks (dangling references, cycles) live in `plan`.

pub mod claim;
pub mod executor;
pub mod locate;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use crate::kinds::{
    CamMap, CommandConfig, CompressConfig, CropConfig, DataSpec, EvalConfig, FrlConfig, Head,
    InitWeights, KeepEpoch, Kind, KindDef, LocalizeConfig, LossNormalization, LrSchedule,
    MEMBER_ROLE, Net, PartsConfig, PatchCentre, RealData, Split, StageConfig, StageKind, StageSpec,
    TrainConfig,
};
pub use executor::{ExecutorKind, ExecutorSpec};
use locate::{Seg, Source, display_path};
use schema::*;

/// A spec that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("failed to read spec `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("invalid override `-s {arg}`: {message}")]
    Override { arg: String, message: String },
}

/// A validated experiment: defaults filled in, every value checked.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub name: String,
    pub title: String,
    pub seed: u64,
    /// The spec file as given on the command line.
    pub path: PathBuf,
    /// `-s` overrides applied, as typed.
    pub overrides: Vec<String>,
    pub data: DataSpec,
    /// Stages in file order; `data` first.
    pub stages: Vec<StageSpec>,
    /// Sweep points of the spec's `[sweep]`, each a list of overrides.
    pub sweep: Vec<Vec<String>>,
    /// The overrides that made this spec one point of a sweep (empty otherwise).
    pub point: Vec<String>,
    /// How the sweep's best configuration is chosen, if it is.
    pub select: Option<Selection>,
    /// `file:line:column` of each stage's table, for errors found later (plan).
    #[serde(skip)]
    pub stage_locations: BTreeMap<String, String>,
    /// Where the stages run (`[executor]`); in no cache key.
    pub executor: ExecutorSpec,
    /// `exp run --stage` or the file's `[experiment] only`: the stages asked
    /// for (their upstream runs too); empty for the whole spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// The file's own `[experiment] only`. A run whose `only` differs (a
    /// `--stage` selection) is a partial run, not the spec as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared_only: Vec<String>,
    /// `[[claim]]`: what `exp claims` judges on this spec's runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<claim::ClaimSpec>,
}

impl Spec {
    /// Keep only the stages `ids` and the stages they read from, in order.
    pub fn select_stages(&mut self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for id in ids {
            if !self.stages.iter().any(|s| &s.id == id) {
                let known: Vec<String> =
                    self.stages.iter().map(|s| format!("`{}`", s.id)).collect();
                return Err(format!(
                    "no stage `{id}` in `{}`; its stages are {}",
                    self.path.display(),
                    known.join(", ")
                ));
            }
            todo.push(id.clone());
        }
        while let Some(id) = todo.pop() {
            if keep.insert(id.clone()) {
                if let Some(s) = self.stages.iter().find(|s| s.id == id) {
                    todo.extend(s.inputs.values().cloned());
                }
            }
        }
        self.stages.retain(|s| keep.contains(&s.id));
        self.only = ids.to_vec();
        Ok(())
    }
}

/// Load, merge, override and validate a spec file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
    let mut sources = Vec::new();
    let table = read_with_bases(path, &mut sources)?;
    load_read(path, table, &sources, overrides)
}

/// [`load`] on a spec already read (with its bases): a sweep reads its
/// files once, not once per point.
fn load_read(
    path: &Path,
    mut table: toml::Table,
    sources: &[Source],
    overrides: &[String],
) -> Result<Spec, SpecError> {
    let sources = sources;
    let mut overridden = Vec::new();
    for arg in overrides {
        overridden.push(apply_override(&mut table, arg)?);
    }
    // A merged stage's index is not its index in any one file: errors find
    // it in each file by its `id`.
    let stage_ids: Vec<Option<String>> = match table.get("stage") {
        Some(toml::Value::Array(stages)) => stages
            .iter()
            .map(|s| s.get("id").and_then(|v| v.as_str()).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let ctx = Ctx {
        sources,
        overridden: &overridden,
        stage_ids: &stage_ids,
    };
    let raw: RawSpec = ctx.deserialize(toml::Value::Table(table), &[])?;
    resolve(raw, path, overrides, &ctx)
}

/// Where errors point: the files read (child first) and overridden paths.
pub(crate) struct Ctx<'a> {
    pub(crate) sources: &'a [Source],
    pub(crate) overridden: &'a [(Vec<Seg>, String)],
    /// The merged spec's stage ids, by index.
    pub(crate) stage_ids: &'a [Option<String>],
}

impl Ctx<'_> {
    /// `path` as it reads in `source`: a merged stage's index becomes that
    /// stage's index in this file (by `id`); `None` where the file does not
    /// have the stage.
    fn in_file(&self, source: &Source, path: &[Seg]) -> Option<Vec<Seg>> {
        let mut path = path.to_vec();
        if let [Seg::Key(stage), Seg::Index(i), ..] = path.as_mut_slice() {
            if stage == "stage" {
                if let Some(Some(id)) = self.stage_ids.get(*i) {
                    // The n-th stage of this id (a duplicate id is an error
                    // that must point at the duplicate).
                    let nth = self.stage_ids[..*i]
                        .iter()
                        .filter(|s| s.as_deref() == Some(id))
                        .count();
                    *i = source.stage_index(id, nth)?;
                }
            }
        }
        Some(path)
    }

    pub(crate) fn error(&self, path: &[Seg], message: impl std::fmt::Display) -> SpecError {
        let key = display_path(path);
        if let Some((_, arg)) = self
            .overridden
            .iter()
            .rev()
            // The override set this key, or a key inside this table.
            .find(|(p, _)| path.starts_with(p) || (!path.is_empty() && p.starts_with(path)))
        {
            return SpecError::Override {
                arg: arg.clone(),
                message: format!("`{key}`: {message}"),
            };
        }
        // The file that sets the key itself, child first; else the first
        // that has a table above it (a missing key points at its table).
        let in_files: Vec<Option<Vec<Seg>>> =
            self.sources.iter().map(|s| self.in_file(s, path)).collect();
        let setter = self
            .sources
            .iter()
            .zip(&in_files)
            .find(|(s, p)| p.as_deref().is_some_and(|p| s.sets(p)));
        let location = setter
            .and_then(|(s, p)| s.locate(p.as_deref()?))
            .or_else(|| {
                self.sources
                    .iter()
                    .zip(&in_files)
                    .find_map(|(s, p)| s.locate(p.as_deref()?))
            })
            .unwrap_or_else(|| self.sources[0].path.display().to_string());
        let message = if key.is_empty() {
            message.to_string()
        } else {
            format!("`{key}`: {message}")
        };
        SpecError::Invalid { location, message }
    }

    pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
        &self,
        value: toml::Value,
        base: &[Seg],
    ) -> Result<T, SpecError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let mut path = base.to_vec();
            for seg in e.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Seq { index } => path.push(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => path.push(Seg::Key(key.clone())),
                    _ => {}
                }
            }
            let inner = e.into_inner().to_string();
            // The path is already in front: drop toml's trailing "in `key`" and
            // our raw type names.
            let message: Vec<&str> = inner
                .lines()
                .filter(|l| !l.trim_start().starts_with("in `"))
                .collect();
            let mut message = message.join(" ").trim().to_string();
            if let Some(i) = message.find("expected struct Raw") {
                let rest = &message[i + "expected struct Raw".len()..];
                let end = rest
                    .find(|c: char| !c.is_alphanumeric())
                    .unwrap_or(rest.len());
                message = format!("{}expected a table{}", &message[..i], &rest[end..]);
            }
            self.error(&path, message)
        })
    }
}

fn read_with_bases(path: &Path, sources: &mut Vec<Source>) -> Result<toml::Table, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.into(),
        source,
    })?;
    let src = Source::new(path, text);
    let mut table: toml::Table = toml::from_str(&src.text).map_err(|e| {
        let location = e
            .span()
            .map_or_else(|| path.display().to_string(), |s| src.position(s.start));
        SpecError::Invalid {
            location,
            message: e.message().to_string(),
        }
    })?;
    let base = table.remove("extends");
    sources.push(src);
    let Some(base) = base else { return Ok(table) };
    let here = &sources[sources.len() - 1];
    let base_rel = match base {
        toml::Value::String(s) => s,
        other => {
            let location = here
                .locate(&[Seg::Key("extends".into())])
                .unwrap_or_default();
            return Err(SpecError::Invalid {
                location,
                message: format!(
                    "`extends`: expected a path string, found {}",
                    other.type_str()
                ),
            });
        }
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&base_rel);
    if sources.iter().any(|s| s.path == base_path) {
        let location = here
            .locate(&[Seg::Key("extends".into())])
            .unwrap_or_default();
        return Err(SpecError::Invalid {
            location,
            message: format!("`extends`: `{base_rel}` is already in the chain of bases (a cycle)"),
        });
    }
    let mut merged = read_with_bases(&base_path, sources)?;
    // `sources` must list the child first so its positions win.
    let base_sources = sources.split_off(sources.len() - 1);
    let child_index = sources.iter().position(|s| s.path == path).unwrap_or(0);
    let child = sources.remove(child_index);
    sources.insert(0, child);
    sources.extend(base_sources);
    // Claims are the file's own: a spec built on another asks its own questions.
    merged.remove("claim");
    merge(&mut merged, table);
    Ok(merged)
}

/// Deep merge: tables recursively, `stage` arrays by `id`, everything else replaced.
fn merge(base: &mut toml::Table, child: toml::Table) {
    for (key, value) in child {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(c)) => merge(b, c),
            (Some(toml::Value::Array(b)), toml::Value::Array(c)) if key == "stage" => {
                for stage in c {
                    let id = stage.get("id").cloned();
                    let existing = b
                        .iter_mut()
                        .find(|s| id.is_some() && s.get("id") == id.as_ref());
                    match (existing, stage) {
                        (Some(toml::Value::Table(bt)), toml::Value::Table(ct)) => merge(bt, ct),
                        (_, stage) => b.push(stage),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Apply `key.path=value`; `stage.<id>.<key>` addresses a stage by id.
/// Returns the table path it set, for error locations.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(Vec<Seg>, String), SpecError> {
    let err = |message: String| SpecError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected `key.path=value`".into()))?;
    let value = parse_value(raw.trim());
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(format!("`{key}` is not a key path")));
    }
    let mut path = Vec::new();
    let mut cursor = table;
    let mut rest = &parts[..];
    if parts[0] == "stage" {
        let [_, id, tail @ ..] = parts.as_slice() else {
            return Err(err("stage overrides are `stage.<id>.<key>=value`".into()));
        };
        let stages = cursor
            .get_mut("stage")
            .and_then(|v| v.as_array_mut())
            .ok_or_else(|| err("the spec has no stages".into()))?;
        let ids: Vec<String> = stages
            .iter()
            .filter_map(|s| s.get("id")?.as_str().map(String::from))
            .collect();
        let index = stages
            .iter()
            .position(|s| s.get("id").and_then(|v| v.as_str()) == Some(id))
            .ok_or_else(|| err(format!("no stage `{id}`; stages are {}", backticked(&ids))))?;
        if tail.is_empty() {
            return Err(err("stage overrides are `stage.<id>.<key>=value`".into()));
        }
        path.extend([Seg::Key("stage".into()), Seg::Index(index)]);
        cursor = stages[index]
            .as_table_mut()
            .ok_or_else(|| err(format!("stage `{id}` is not a table")))?;
        rest = tail;
    }
    let (last, dirs) = rest.split_last().expect("non-empty");
    for dir in dirs {
        path.push(Seg::Key(dir.to_string()));
        let entry = cursor
            .entry(dir.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cursor = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("`{dir}` is not a table")))?;
    }
    path.push(Seg::Key(last.to_string()));
    cursor.insert(last.to_string(), value);
    Ok((path, arg.to_string()))
}

/// A TOML value if it parses as one (`0.1`, `true`, `[1, 2]`), else a string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

pub(crate) fn backticked(items: &[impl AsRef<str>]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn key(path: &[Seg], k: &str) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(Seg::Key(k.into()));
    p
}

fn resolve(raw: RawSpec, path: &Path, overrides: &[String], ctx: &Ctx) -> Result<Spec, SpecError> {
    let RawSpec {
        extends: _,
        experiment,
        data,
        train,
        stage,
        sweep,
        executor,
        claim,
    } = raw;
    let (sweep, select) = resolve_sweep(sweep, ctx)?;
    let executor = executor::resolve(executor, ctx)?;
    let has_data_table = data.is_some();
    let exp_path = [Seg::Key("experiment".into())];
    check_name(&experiment.name, ctx, &key(&exp_path, "name"))?;
    let seed = experiment.seed.unwrap_or(0);
    let data = crate::kinds::data::resolve_data(data, seed, ctx, &crate::kinds::data::p_data())?;
    let defaults = train.unwrap_or_default();
    crate::kinds::check_train_defaults(&crate::kinds::Env {
        defaults: &defaults,
        seed,
        here: &[Seg::Key("train".into())],
        ctx,
    })?;

    let (kind, config) = match data.real {
        None => (
            StageKind::GenerateData,
            StageConfig::GenerateData(data.clone()),
        ),
        Some(_) => (StageKind::ReadData, StageConfig::ReadData(data.clone())),
    };
    let mut stages = vec![StageSpec {
        id: "data".into(),
        kind,
        inputs: BTreeMap::new(),
        config,
    }];
    let mut stage_locations = BTreeMap::new();
    for (i, table) in stage.into_iter().enumerate() {
        let here = vec![Seg::Key("stage".into()), Seg::Index(i)];
        let kind_name = match table.get("kind") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(ctx.error(
                    &key(&here, "kind"),
                    format!("expected a string, found {}", other.type_str()),
                ));
            }
            None => return Err(ctx.error(&here, "missing field `kind`")),
        };
        let kind = StageKind::parse(&kind_name).ok_or_else(|| {
            let known: Vec<_> = StageKind::ALL.iter().map(|k| k.as_str()).collect();
            ctx.error(
                &key(&here, "kind"),
                format!(
                    "unknown stage kind `{kind_name}`; known kinds are {}",
                    backticked(&known)
                ),
            )
        })?;
        let env = crate::kinds::Env {
            defaults: &defaults,
            seed,
            here: &here,
            ctx,
        };
        let spec = kind.resolve(table, &env)?;
        if let Some(loc) = ctx
            .sources
            .iter()
            .find_map(|src| src.locate(&key(&here, "id")))
        {
            stage_locations.insert(spec.id.clone(), loc);
        }
        check_name(&spec.id, ctx, &key(&here, "id"))?;
        if let Some(first) = stages.iter().position(|s| s.id == spec.id) {
            let what = if first == 0 {
                "the implicit data stage".to_string()
            } else {
                format!("stage[{}]", first - 1)
            };
            return Err(ctx.error(
                &key(&here, "id"),
                format!("duplicate stage id `{}` (also {what})", spec.id),
            ));
        }
        stages.push(spec);
    }
    // A spec of command stages only needs no synthetic faces.
    if !has_data_table
        && !stages
            .iter()
            .any(|s| s.inputs.values().any(|t| t == "data"))
    {
        stages.remove(0);
    }
    if let Some(sel) = &select {
        // A command stage is trusted to score on validation data (its script says).
        let ok = stages.iter().any(|s| {
            s.id == sel.stage
                && match &s.config {
                    StageConfig::Evaluate(e) => e.split == Split::Val,
                    StageConfig::Command(_) => true,
                    _ => false,
                }
        });
        if !ok {
            return Err(ctx.error(
                &[Seg::Key("sweep".into()), Seg::Key("select".into())],
                format!("`{}` must be an `evaluate` stage with `split = \"val\"` (choices are made on validation, test is only reported) or a `command` stage", sel.stage),
            ));
        }
    }
    let claims = claim::resolve(claim, &stages, ctx)?;
    let mut spec = Spec {
        name: experiment.name.clone(),
        title: experiment.title.unwrap_or(experiment.name),
        seed,
        path: path.to_path_buf(),
        overrides: overrides.to_vec(),
        data,
        stages,
        sweep,
        select,
        point: Vec::new(),
        stage_locations,
        executor,
        only: Vec::new(),
        declared_only: Vec::new(),
        claims,
    };
    if let Some(only) = &experiment.only {
        spec.select_stages(only)
            .map_err(|e| ctx.error(&[Seg::Key("experiment".into()), Seg::Key("only".into())], e))?;
        spec.declared_only = spec.only.clone();
    }
    Ok(spec)
}

/// The most runs one sweep may expand to (grid × samples × seeds).
pub const MAX_SWEEP_POINTS: usize = 10_000;

fn resolve_sweep(
    raw: Option<RawSweep>,
    ctx: &Ctx,
) -> Result<(Vec<Vec<String>>, Option<Selection>), SpecError> {
    let Some(RawSweep {
        seeds,
        grid,
        samples,
        search_seed,
        space,
        select,
        direction,
        metric,
    }) = raw
    else {
        return Ok((Vec::new(), None));
    };
    let sw = |k: &str| [Seg::Key("sweep".into()), Seg::Key(k.into())];
    let selection = match select {
        None => None,
        Some(stage) => {
            let maximise = match direction.as_deref() {
                None | Some("max") => true,
                Some("min") => false,
                Some(d) => {
                    return Err(ctx.error(
                        &sw("direction"),
                        format!("unknown direction `{d}`; allowed: `max`, `min`"),
                    ));
                }
            };
            Some(Selection {
                stage,
                maximise,
                metric: metric.unwrap_or_else(|| "mean_accuracy".into()),
            })
        }
    };
    let mut axes: Vec<Vec<String>> = Vec::new();
    // Random search draws whole points; it is one axis of the product.
    if let Some(space) = space {
        let n = samples.unwrap_or(4).max(1);
        if n as usize > MAX_SWEEP_POINTS {
            return Err(ctx.error(
                &sw("samples"),
                format!("at most {MAX_SWEEP_POINTS} points per sweep, got {n}"),
            ));
        }
        let mut rng =
            <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(search_seed.unwrap_or(0));
        let mut draws = vec![String::new(); n as usize];
        for (path, dist) in &space {
            let here = [
                Seg::Key("sweep".into()),
                Seg::Key("space".into()),
                Seg::Key(path.clone()),
            ];
            for d in draws.iter_mut() {
                let v = sample(dist, &mut rng).ok_or_else(|| ctx.error(&here, "expected a list of choices, `{ uniform = [a, b] }` or `{ log-uniform = [a, b] }` with a < b (log: a > 0)"))?;
                if !d.is_empty() {
                    d.push('\u{1f}');
                }
                d.push_str(&format!("{path}={v}"));
            }
        }
        axes.push(draws);
    } else if samples.is_some() {
        return Err(ctx.error(&sw("samples"), "random search needs a `space`"));
    }
    for (path, values) in grid.unwrap_or_default() {
        let here = [
            Seg::Key("sweep".into()),
            Seg::Key("grid".into()),
            Seg::Key(path.clone()),
        ];
        let toml::Value::Array(values) = values else {
            return Err(ctx.error(&here, "expected an array of values"));
        };
        if values.is_empty() {
            return Err(ctx.error(&here, "needs at least one value"));
        }
        axes.push(values.iter().map(|v| format!("{path}={v}")).collect());
    }
    if let Some(seeds) = seeds {
        if seeds.is_empty() {
            return Err(ctx.error(
                &[Seg::Key("sweep".into()), Seg::Key("seeds".into())],
                "needs at least one seed",
            ));
        }
        axes.push(
            seeds
                .iter()
                .map(|s| format!("experiment.seed={s}"))
                .collect(),
        );
    }
    // Checked before the product is built: a 1000 × 1000 grid must not
    // allocate a million points to say it is too large.
    let total = axes
        .iter()
        .try_fold(1usize, |acc, a| acc.checked_mul(a.len()))
        .filter(|&t| t <= MAX_SWEEP_POINTS);
    if total.is_none() {
        let sizes: Vec<String> = axes.iter().map(|a| a.len().to_string()).collect();
        return Err(ctx.error(
            &[Seg::Key("sweep".into())],
            format!(
                "at most {MAX_SWEEP_POINTS} points per sweep; this one has {} (axes of {})",
                axes.iter().map(|a| a.len() as f64).product::<f64>(),
                sizes.join(" × ")
            ),
        ));
    }
    // Random-search draws carry several overrides joined by U+001F.
    let points = cartesian(&axes)
        .into_iter()
        .map(|p| {
            p.iter()
                .flat_map(|x| x.split('\u{1f}').map(String::from).collect::<Vec<_>>())
                .collect()
        })
        .collect();
    Ok((points, selection))
}

/// Which validation stage picks a sweep's best configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    pub stage: String,
    pub maximise: bool,
    /// The number in the stage's summary that is compared.
    pub metric: String,
}

/// One draw from a search-space entry, as a TOML literal.
fn sample(dist: &toml::Value, rng: &mut impl rand::Rng) -> Option<String> {
    match dist {
        toml::Value::Array(choices) if !choices.is_empty() => {
            Some(choices[rng.random_range(0..choices.len())].to_string())
        }
        toml::Value::Table(t) if t.len() == 1 => {
            let (kind, range) = t.iter().next()?;
            let r = range.as_array()?;
            let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
            let (a, b) = (num(r.first()?)?, num(r.get(1)?)?);
            if r.len() != 2 || a >= b {
                return None;
            }
            let ints = r.iter().all(|v| v.is_integer());
            let x = match kind.as_str() {
                "uniform" => a + (b - a) * rng.random::<f64>(),
                "log-uniform" if a > 0.0 => {
                    (a.ln() + (b.ln() - a.ln()) * rng.random::<f64>()).exp()
                }
                _ => return None,
            };
            Some(if ints {
                format!("{}", x.round() as i64)
            } else {
                format!("{x:.6e}")
            })
        }
        _ => None,
    }
}

/// Every combination, one value per axis, in axis order.
pub fn cartesian(axes: &[Vec<String>]) -> Vec<Vec<String>> {
    axes.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.iter()
                    .map(move |v| prefix.iter().cloned().chain([v.clone()]).collect())
            })
            .collect()
    })
}

/// The runs a command line asks for: the spec's `[sweep]` points times the
/// comma-separated `-s` values (`-s train.lr=0.1,0.01`), each a full spec
/// loaded and validated with its point's overrides. No sweep: one spec.
pub fn load_points(path: &Path, overrides: &[String]) -> Result<Vec<Spec>, SpecError> {
    let mut fixed = Vec::new();
    let mut axes = Vec::new();
    for arg in overrides {
        match arg.split_once('=') {
            Some((k, v)) if is_multi(v) => {
                axes.push(v.split(',').map(|x| format!("{k}={}", x.trim())).collect())
            }
            _ => fixed.push(arg.clone()),
        }
    }
    let mut sources = Vec::new();
    let read = read_with_bases(path, &mut sources)?;
    let base = load_read(path, read.clone(), &sources, &fixed)?;
    // A point is one run: it keeps the sweep's selection rule but does not
    // expand the sweep again (that was quadratic in the number of points).
    let mut read = read;
    if let Some(sweep) = read.get_mut("sweep").and_then(|v| v.as_table_mut()) {
        for k in ["grid", "space", "samples", "seeds", "search-seed"] {
            sweep.remove(k);
        }
    }
    let mut points = Vec::new();
    let spec_points = if base.sweep.is_empty() {
        vec![Vec::new()]
    } else {
        base.sweep.clone()
    };
    for cli_point in cartesian(&axes) {
        for spec_point in &spec_points {
            // Command-line values win over the spec's sweep values.
            let cli_keys: Vec<&str> = fixed.iter().chain(&cli_point).map(|a| key_of(a)).collect();
            let kept: Vec<String> = spec_point
                .iter()
                .filter(|p| !cli_keys.contains(&key_of(p)))
                .cloned()
                .collect();
            let point: Vec<String> = kept.iter().chain(&cli_point).cloned().collect();
            if points.iter().any(|s: &Spec| s.point == point) {
                continue;
            }
            let all: Vec<String> = kept
                .iter()
                .chain(&fixed)
                .chain(&cli_point)
                .cloned()
                .collect();
            let mut spec = load_read(path, read.clone(), &sources, &all)?;
            spec.point = point;
            points.push(spec);
        }
    }
    Ok(points)
}

fn key_of(arg: &str) -> &str {
    arg.split_once('=').map_or(arg, |(k, _)| k)
}

/// `0.1,0.01` is two values; `[1, 2]` and `"a,b"` are one.
fn is_multi(v: &str) -> bool {
    let v = v.trim();
    v.contains(',')
        && !v.starts_with('[')
        && !v.starts_with('{')
        && !v.starts_with('"')
        && !v.starts_with('\'')
}

/// One of a closed set of names; absent = the type's default.
pub(crate) fn choice<T: Copy + Default>(
    value: Option<&String>,
    allowed: &[(&str, T)],
    ctx: &Ctx,
    path: &[Seg],
) -> Result<T, SpecError> {
    let Some(v) = value else {
        return Ok(T::default());
    };
    allowed
        .iter()
        .find(|(name, _)| name == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            ctx.error(
                path,
                format!("unknown value `{v}`; allowed: {}", backticked(&names)),
            )
        })
}

pub(crate) fn positive(v: u32, ctx: &Ctx, path: &[Seg]) -> Result<u32, SpecError> {
    if v == 0 {
        Err(ctx.error(path, "must be a positive integer, got 0"))
    } else {
        Ok(v)
    }
}

pub(crate) fn in_range(
    v: f64,
    ctx: &Ctx,
    path: &[Seg],
    rule: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, SpecError> {
    if v.is_finite() && ok(v) {
        Ok(v)
    } else {
        Err(ctx.error(path, format!("{rule}, got {v}")))
    }
}

/// The longest experiment name or stage id (they name folders and table rows).
pub const MAX_NAME_LEN: usize = 100;

pub(crate) fn check_name(name: &str, ctx: &Ctx, path: &[Seg]) -> Result<(), SpecError> {
    if name.chars().count() > MAX_NAME_LEN {
        let head: String = name.chars().take(24).collect();
        return Err(ctx.error(
            path,
            format!(
                "`{head}…` is {} characters long; at most {MAX_NAME_LEN}",
                name.chars().count()
            ),
        ));
    }
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ctx.error(
            path,
            format!("`{name}` must be non-empty and use only letters, digits, `-` and `_`"),
        ))
    }
}

#[cfg(test)]
mod tests;
