//! `[[claim]]`: a hypothesis a spec states about its own runs — one stage's
//! metric beats another's (or the best of several) by more than a margin —
//! judged by `exp claims` on the paired per-seed differences of the spec's
//! runs as written. Claims are the file's own: a spec that `extends` another
//! does not inherit them (a control or a calibration is another question).
//!
//! ```toml
//! [[claim]]
//! name = "PaW > max(Part-only, Whole-only)"
//! better = "eval-paw"
//! than = ["eval-part", "eval-whole"]      # one stage, or the best of several
//! labels = { eval-paw = "PaW", eval-part = "Part-only", eval-whole = "Whole-only" }
//! paper = "91.23 vs 90.46 / 90.60"        # optional: the paper's numbers
//! paper-difference = 0.63                 # optional: its value of the difference
//! ```
//!
//! Two claims are not differences of two stages' metrics, and say which
//! stage they read instead of `better`/`than`:
//!
//! ```toml
//! [[claim]]
//! name = "SNet3 has >= 50x fewer parameters than TNet"
//! fewer-parameters = "snet3"   # a `compress` stage: teacher / student parameters
//! at-least = 50
//!
//! [[claim]]
//! name = "RSL favours parts for local, the whole for global attributes"
//! rsl-weights = "paw"          # a `train-fusion` or `finetune-paw` stage
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::locate::Seg;
use super::{Ctx, SpecError, backticked, key};
use crate::kinds::{StageConfig, StageKind, StageSpec};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawClaim {
    name: String,
    better: Option<String>,
    than: Option<toml::Value>,
    metric: Option<String>,
    fewer_parameters: Option<String>,
    at_least: Option<f64>,
    rsl_weights: Option<String>,
    margin: Option<f64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    paper: Option<String>,
    paper_difference: Option<f64>,
}

/// A resolved claim: what it tests, how it is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClaimSpec {
    pub name: String,
    #[serde(flatten)]
    pub test: ClaimTest,
    /// Names shown for stage ids.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_difference: Option<f64>,
}

/// What a claim tests, on each seed's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClaimTest {
    /// `better − max(than) > margin`.
    #[serde(rename_all = "kebab-case")]
    Difference {
        better: String,
        than: Vec<String>,
        /// The number compared, from each stage's summary. `None`: an
        /// `evaluate` stage's mean accuracy (top-1 on birds). `evaluate`
        /// metrics are compared in percentage points, a command's as written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<String>,
        #[serde(default)]
        margin: f64,
    },
    /// A `compress` stage's teacher has at least `at_least` × its
    /// student's parameters (the nets that ran: no seed noise).
    #[serde(rename_all = "kebab-case")]
    FewerParameters {
        fewer_parameters: String,
        at_least: f64,
    },
    /// A PaW stage's region switch layer weighs each attribute's own part
    /// above the whole image for local attributes, below it for global ones.
    #[serde(rename_all = "kebab-case")]
    RslWeights { rsl_weights: String },
}

impl ClaimSpec {
    /// A stage's name in the claim's text.
    pub fn label<'a>(&'a self, stage: &'a str) -> &'a str {
        self.labels.get(stage).map_or(stage, String::as_str)
    }
}

/// Check every claim against the spec's stages: each names an `evaluate`
/// or `command` stage (a command with a `metric`), names are unique.
pub(super) fn resolve(
    raw: Vec<RawClaim>,
    stages: &[StageSpec],
    ctx: &Ctx,
) -> Result<Vec<ClaimSpec>, SpecError> {
    let mut out: Vec<ClaimSpec> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let here = [Seg::Key("claim".into()), Seg::Index(i)];
        if out.iter().any(|o| o.name == c.name) {
            return Err(ctx.error(&key(&here, "name"), format!("duplicate claim `{}`", c.name)));
        }
        // Keys that belong to another kind of claim would be ignored.
        let strays = [
            ("than", c.than.is_some() && c.better.is_none()),
            ("metric", c.metric.is_some() && c.better.is_none()),
            ("margin", c.margin.is_some() && c.better.is_none()),
            (
                "at-least",
                c.at_least.is_some() && c.fewer_parameters.is_none(),
            ),
        ];
        if let Some((k, _)) = strays.iter().find(|(_, stray)| *stray) {
            let owner = if *k == "at-least" {
                "fewer-parameters"
            } else {
                "better"
            };
            return Err(ctx.error(&key(&here, k), format!("`{k}` goes with `{owner}`")));
        }
        let test = match (&c.better, &c.fewer_parameters, &c.rsl_weights) {
            (Some(better), None, None) => {
                difference(better, c.than, c.metric, c.margin, stages, ctx, &here)?
            }
            (None, Some(stage), None) => {
                check_kind(
                    stage,
                    &[StageKind::Compress],
                    stages,
                    ctx,
                    &here,
                    "fewer-parameters",
                )?;
                let at_least = c.at_least.ok_or_else(|| {
                    ctx.error(&here, "`fewer-parameters` needs `at-least`: the smallest ratio that supports the claim")
                })?;
                ClaimTest::FewerParameters {
                    fewer_parameters: stage.clone(),
                    at_least,
                }
            }
            (None, None, Some(stage)) => {
                check_kind(
                    stage,
                    &[StageKind::TrainFusion, StageKind::FinetunePaw],
                    stages,
                    ctx,
                    &here,
                    "rsl-weights",
                )?;
                ClaimTest::RslWeights {
                    rsl_weights: stage.clone(),
                }
            }
            _ => {
                return Err(ctx.error(
                    &here,
                    "give one of `better` (with `than`), `fewer-parameters` or `rsl-weights`",
                ));
            }
        };
        out.push(ClaimSpec {
            name: c.name,
            test,
            labels: c.labels,
            paper: c.paper,
            paper_difference: c.paper_difference,
        });
    }
    Ok(out)
}

/// `better − max(than) > margin`: every stage an `evaluate`, a `command`
/// with `metric`, or a `localize` with one of its rates as `metric`.
fn difference(
    better: &str,
    than: Option<toml::Value>,
    metric: Option<String>,
    margin: Option<f64>,
    stages: &[StageSpec],
    ctx: &Ctx,
    here: &[Seg],
) -> Result<ClaimTest, SpecError> {
    let than = match than {
        Some(toml::Value::String(s)) => vec![s],
        Some(toml::Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ctx.error(&key(here, "than"), "expected stage ids (strings)"))?,
        _ => {
            return Err(ctx.error(
                &key(here, "than"),
                "expected a stage id or a non-empty list of them",
            ));
        }
    };
    for (field, id) in
        std::iter::once(("better", better)).chain(than.iter().map(|t| ("than", t.as_str())))
    {
        let stage = find(id, stages, ctx, &key(here, field))?;
        match (&stage.config, &metric) {
            (StageConfig::Evaluate(_), _) | (StageConfig::Command(_), Some(_)) => {}
            (StageConfig::Localize(_), Some(m)) if LOCALIZE_METRICS.contains(&m.as_str()) => {}
            (StageConfig::Localize(_), m) => {
                let at = match m {
                    Some(_) => key(here, "metric"),
                    None => here.to_vec(),
                };
                return Err(ctx.error(
                    &at,
                    format!(
                        "`{id}` is a `localize` stage: give `metric`, one of {}",
                        LOCALIZE_METRICS.map(|m| format!("`{m}`")).join(", ")
                    ),
                ));
            }
            (StageConfig::Command(_), None) => {
                return Err(ctx.error(
                    here,
                    format!("`{id}` is a command: give `metric`, the name of a number its metrics file writes"),
                ));
            }
            _ => {
                return Err(ctx.error(
                    &key(here, field),
                    format!(
                        "`{id}` is a `{}` stage; a claim compares `evaluate`, `command` or `localize` stages",
                        stage.kind.as_str()
                    ),
                ));
            }
        }
    }
    Ok(ClaimTest::Difference {
        better: better.to_string(),
        than,
        metric,
        margin: margin.unwrap_or(0.0),
    })
}

/// The rates a `localize` stage's summary holds (fractions; claims compare
/// them in percentage points).
const LOCALIZE_METRICS: [&str; 2] = ["pointing_game", "maxboxacc"];

fn find<'a>(
    id: &str,
    stages: &'a [StageSpec],
    ctx: &Ctx,
    at: &[Seg],
) -> Result<&'a StageSpec, SpecError> {
    stages.iter().find(|s| s.id == id).ok_or_else(|| {
        let ids: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
        ctx.error(
            at,
            format!("no stage `{id}`; stages are {}", backticked(&ids)),
        )
    })
}

/// The stage a claim reads is of one of `kinds`.
fn check_kind(
    id: &str,
    kinds: &[StageKind],
    stages: &[StageSpec],
    ctx: &Ctx,
    here: &[Seg],
    field: &str,
) -> Result<(), SpecError> {
    let at = key(here, field);
    let stage = find(id, stages, ctx, &at)?;
    if kinds.contains(&stage.kind) {
        return Ok(());
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    Err(ctx.error(
        &at,
        format!(
            "`{id}` is a `{}` stage; `{field}` reads a {} stage",
            stage.kind.as_str(),
            backticked(&names)
        ),
    ))
}
