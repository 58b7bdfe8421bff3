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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::locate::Seg;
use super::{Ctx, SpecError, backticked, key};
use crate::kinds::{StageConfig, StageSpec};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawClaim {
    name: String,
    better: String,
    than: toml::Value,
    metric: Option<String>,
    margin: Option<f64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    paper: Option<String>,
    paper_difference: Option<f64>,
}

/// A resolved claim: `better − max(than) > margin`, per seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClaimSpec {
    pub name: String,
    pub better: String,
    pub than: Vec<String>,
    /// The number compared, from each stage's summary. `None`: an
    /// `evaluate` stage's mean accuracy (top-1 on birds). `evaluate`
    /// metrics are compared in percentage points, a command's as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default)]
    pub margin: f64,
    /// Names shown for stage ids.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_difference: Option<f64>,
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
        let than = match c.than {
            toml::Value::String(s) => vec![s],
            toml::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ctx.error(&key(&here, "than"), "expected stage ids (strings)"))?,
            _ => {
                return Err(ctx.error(
                    &key(&here, "than"),
                    "expected a stage id or a non-empty list of them",
                ));
            }
        };
        for (field, id) in
            std::iter::once(("better", &c.better)).chain(than.iter().map(|t| ("than", t)))
        {
            let Some(stage) = stages.iter().find(|s| &s.id == id) else {
                let ids: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
                return Err(ctx.error(
                    &key(&here, field),
                    format!("no stage `{id}`; stages are {}", backticked(&ids)),
                ));
            };
            match (&stage.config, &c.metric) {
                (StageConfig::Evaluate(_), _) | (StageConfig::Command(_), Some(_)) => {}
                (StageConfig::Command(_), None) => {
                    return Err(ctx.error(
                        &here,
                        format!("`{id}` is a command: give `metric`, the name of a number its metrics file writes"),
                    ));
                }
                _ => {
                    return Err(ctx.error(
                        &key(&here, field),
                        format!(
                            "`{id}` is a `{}` stage; a claim compares `evaluate` (or `command`) stages",
                            stage.kind.as_str()
                        ),
                    ));
                }
            }
        }
        out.push(ClaimSpec {
            name: c.name,
            better: c.better,
            than,
            metric: c.metric,
            margin: c.margin.unwrap_or(0.0),
            labels: c.labels,
            paper: c.paper,
            paper_difference: c.paper_difference,
        });
    }
    Ok(out)
}
