//! `evaluate`: a model's scores on a split — one head of it, or an
//! ensemble's averaged probabilities.

use serde::Serialize;

pub use crate::vocab::Split;

use super::{DATA_ROLE, KindDef, MEMBER_ROLE, Role, StageConfig, StageKind, Table};
use crate::spec::schema::RawStage;
use crate::spec::{SpecError, backticked};

pub const DEF: KindDef = KindDef {
    name: "evaluate",
    version: 1,
    backend: true,
    keys: &[&["data", "model", "ensemble", "split", "head"]],
    roles: &[
        DATA_ROLE,
        // `member-N` (the ensemble's other models) takes what `model` takes.
        Role {
            name: "model",
            accepts: &[
                StageKind::Train,
                StageKind::TrainFrl,
                StageKind::Compress,
                StageKind::TrainParts,
                StageKind::TrainFusion,
                StageKind::FinetunePaw,
            ],
        },
    ],
};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EvalConfig {
    pub split: Split,
    pub head: Head,
}

/// Which output of a model `evaluate` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// The localisation (GAP) branch of an attribute net: Table 1's "Loc. Branch".
    Loc,
    /// The MNL classification branch of an FRL net.
    Mnl,
    /// The whole PaW net (RSL + ARL).
    Paw,
    /// PaW's whole-image subnet alone.
    WholeOnly,
    /// Attribute j scored by part subnet j.
    PartOnly,
}

impl Head {
    pub const ALL: [Head; 5] = [
        Head::Loc,
        Head::Mnl,
        Head::Paw,
        Head::WholeOnly,
        Head::PartOnly,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Head::Loc => "loc",
            Head::Mnl => "mnl",
            Head::Paw => "paw",
            Head::WholeOnly => "whole-only",
            Head::PartOnly => "part-only",
        }
    }
}

pub(in crate::spec) fn resolve(s: &RawStage, t: &mut Table) -> Result<StageConfig, SpecError> {
    t.require("model", &s.model)?;
    // An ensemble: more models, their probabilities averaged with `model`'s.
    for (i, member) in s.ensemble.iter().flatten().enumerate() {
        t.inputs
            .insert(format!("{}{}", MEMBER_ROLE, i + 1), member.clone());
    }
    let split = match s.split.as_deref() {
        None | Some("test") => Split::Test,
        Some("val") => Split::Val,
        Some(other) => {
            return Err(t.error(
                &t.key("split"),
                format!("unknown split `{other}`; allowed: `test`, `val`"),
            ));
        }
    };
    let head = match s.head.as_deref() {
        None => Head::Loc,
        Some(h) => Head::ALL
            .into_iter()
            .find(|x| x.as_str() == h)
            .ok_or_else(|| {
                let names: Vec<_> = Head::ALL.iter().map(|h| h.as_str()).collect();
                t.error(
                    &t.key("head"),
                    format!("unknown head `{h}`; allowed: {}", backticked(&names)),
                )
            })?,
    };
    Ok(StageConfig::Evaluate(EvalConfig { split, head }))
}
