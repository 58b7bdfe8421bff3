//! `evaluate`: a model's scores on a split — one head of it, or an
//! ensemble's averaged probabilities.

/// How it runs (burn).
pub mod run;

use serde::Serialize;

pub use crate::vocab::Split;

use super::{
    Artefact, DATA_ROLE, Env, Kind, KindDef, MEMBER_ROLE, Resolved, Role, StageKind, Upstream,
    artefact::labels_of, standard,
};
use crate::spec::{SpecError, backticked};

pub struct Evaluate;

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

impl Kind for Evaluate {
    type Config = EvalConfig;

    const DEF: KindDef = KindDef {
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

    fn resolve(table: toml::Table, env: &Env) -> Result<Resolved<EvalConfig>, SpecError> {
        standard(&Self::DEF, table, env, |s, t| {
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
            Ok(EvalConfig { split, head })
        })
    }

    /// The head must fit the model and every ensemble member, and the
    /// members predict the model's labels.
    fn artefact(c: &EvalConfig, up: &Upstream) -> Result<Option<Artefact>, String> {
        let Some(m) = up.input("model") else {
            return Ok(Some(Artefact::Scores));
        };
        head_fits(c.head, m).map_err(|why| {
            format!(
                "head `{}` {why}, and `model = \"{}\"` is not one",
                c.head.as_str(),
                up.id("model")
            )
        })?;
        let labels = labels_of(m);
        for (role, id, member) in up.members() {
            let Some(member) = member else {
                continue;
            };
            // Every member is scored with the same head.
            head_fits(c.head, member).map_err(|why| {
                format!(
                    "head `{}` {why}, and ensemble member `{id}` is not one",
                    c.head.as_str()
                )
            })?;
            if let (Some(a), Some(b)) = (&labels, labels_of(member))
                && a != &b
            {
                return Err(format!(
                    "ensemble member `{id}` ({role}) predicts {}, `model` predicts {}: an ensemble averages the same labels",
                    b.describe(),
                    a.describe()
                ));
            }
        }
        Ok(Some(Artefact::Scores))
    }
}

/// Whether `evaluate`'s head can score this model; else what it needs.
fn head_fits(head: Head, model: &Artefact) -> Result<(), &'static str> {
    match (head, model) {
        (Head::Loc, Artefact::Model { .. }) => Ok(()),
        (Head::Loc, _) => Err("needs an attribute net (`train`, `train-frl` or `compress`)"),
        (Head::Mnl, Artefact::Model { mnl: true, .. }) => Ok(()),
        (Head::Mnl, _) => Err("needs a `train-frl` model trained with `mnl = true`"),
        (Head::Paw, Artefact::Paw { fused: true, .. }) => Ok(()),
        (Head::Paw, _) => Err("needs a fused model (`train-fusion` or `finetune-paw`)"),
        (Head::WholeOnly, Artefact::Paw { .. }) => Ok(()),
        (Head::PartOnly, Artefact::Paw { grid: false, .. }) => Ok(()),
        (Head::PartOnly, Artefact::Paw { grid: true, .. }) => {
            Err("needs attribute-linked parts (`train-parts` with `regions`, not `grid`)")
        }
        (Head::WholeOnly | Head::PartOnly, _) => {
            Err("needs a PaW model (`train-parts`, `train-fusion` or `finetune-paw`)")
        }
    }
}
