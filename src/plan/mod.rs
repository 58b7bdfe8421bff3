//! The stage DAG: references between stages become edges; dangling
//! references and cycles are errors that name the stages. Never touches a
//! tensor, so it is testable in milliseconds.

use std::collections::{BTreeMap, BTreeSet};

mod artefact;

use crate::spec::{Spec, StageSpec};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error(
        "stage `{stage}` refers to `{role} = \"{target}\"`, but there is no stage `{target}`; stages are {known}"
    )]
    Dangling {
        stage: String,
        role: String,
        target: String,
        known: String,
    },
    /// An edge whose upstream will not hold what the stage needs.
    #[error("stage `{stage}`: {message}")]
    Mismatch { stage: String, message: String },
    #[error("stages form a cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error(
        "stage `{stage}` has `{role} = \"{target}\"`, a `{found}` stage; `{role}` must be {allowed}"
    )]
    WrongKind {
        stage: String,
        role: String,
        target: String,
        found: String,
        allowed: String,
    },
}

impl PlanError {
    /// The stage whose table the error points at.
    pub fn stage(&self) -> &str {
        match self {
            Self::Dangling { stage, .. }
            | Self::WrongKind { stage, .. }
            | Self::Mismatch { stage, .. } => stage,
            Self::Cycle { cycle } => &cycle[0],
        }
    }
}

/// A role as the spec writes it: `member-N` is `ensemble[N-1]`.
fn written(role: &str) -> String {
    match role
        .strip_prefix(crate::spec::MEMBER_ROLE)
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) => format!("ensemble[{}]", n - 1),
        None => role.to_string(),
    }
}

/// Stages in an order where every stage comes after its inputs.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Topologically sorted; ties keep spec order.
    pub order: Vec<StageSpec>,
}

impl Dag {
    pub fn build(spec: &Spec) -> Result<Dag, PlanError> {
        order(&spec.stages).map(|order| Dag { order })
    }

    /// Indices (into `order`) of the stages `i` reads from.
    pub fn upstream(&self, i: usize) -> Vec<usize> {
        self.order[i]
            .inputs
            .values()
            .map(|id| {
                self.order
                    .iter()
                    .position(|s| &s.id == id)
                    .expect("validated")
            })
            .collect()
    }
}

/// Topological sort (Kahn), stable with respect to the given order.
pub fn order(stages: &[StageSpec]) -> Result<Vec<StageSpec>, PlanError> {
    let ids: Vec<&str> = stages.iter().map(|s| s.id.as_str()).collect();
    for s in stages {
        for (role, target) in &s.inputs {
            if !ids.contains(&target.as_str()) {
                return Err(PlanError::Dangling {
                    stage: s.id.clone(),
                    role: written(role),
                    target: target.clone(),
                    known: ids
                        .iter()
                        .map(|i| format!("`{i}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(stages.len());
    while out.len() < stages.len() {
        let next = stages.iter().find(|s| {
            !done.contains(s.id.as_str()) && s.inputs.values().all(|t| done.contains(t.as_str()))
        });
        match next {
            Some(s) => {
                done.insert(&s.id);
                out.push(s.clone());
            }
            None => {
                let left: Vec<&StageSpec> = stages
                    .iter()
                    .filter(|s| !done.contains(s.id.as_str()))
                    .collect();
                return Err(PlanError::Cycle {
                    cycle: find_cycle(&left),
                });
            }
        }
    }
    // Edges must join compatible kinds (a `model` must be a trained model,
    // …), as each kind's `KindDef` says. (A command stage names its own roles
    // and takes any artefact.)
    for s in stages {
        for (role, target) in &s.inputs {
            let t = stages
                .iter()
                .find(|x| &x.id == target)
                .expect("checked above");
            let ok = s.kind.accepts(role).unwrap_or_default();
            if !ok.is_empty() && !ok.contains(&t.kind) {
                let names: Vec<String> = ok.iter().map(|k| format!("`{}`", k.as_str())).collect();
                return Err(PlanError::WrongKind {
                    stage: s.id.clone(),
                    role: written(role),
                    target: target.clone(),
                    found: t.kind.as_str().into(),
                    allowed: format!("one of {}", names.join(", ")),
                });
            }
        }
    }
    artefact::check(&out).map_err(|(stage, message)| PlanError::Mismatch { stage, message })?;
    Ok(out)
}

/// Walk input edges among the stuck stages until one repeats.
fn find_cycle(left: &[&StageSpec]) -> Vec<String> {
    let by_id: BTreeMap<&str, &StageSpec> = left.iter().map(|s| (s.id.as_str(), *s)).collect();
    let mut path: Vec<&str> = vec![left[0].id.as_str()];
    loop {
        let cur = by_id[path.last().unwrap()];
        let next = cur
            .inputs
            .values()
            .find(|t| by_id.contains_key(t.as_str()))
            .expect("stuck stage has a stuck input");
        if let Some(start) = path.iter().position(|p| p == next) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.reverse(); // edges point from input to consumer
            // Start at the stage written first, so the message is stable.
            let first = left
                .iter()
                .position(|s| cycle.contains(&s.id))
                .map(|i| &left[i].id)
                .expect("cycle member");
            let at = cycle.iter().position(|c| c == first).expect("member");
            cycle.rotate_left(at);
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{EvalConfig, Split, StageConfig, StageKind};

    fn stage(id: &str, inputs: &[&str]) -> StageSpec {
        StageSpec {
            id: id.into(),
            kind: StageKind::Evaluate,
            inputs: inputs
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("in{i}"), t.to_string()))
                .collect(),
            config: StageConfig::Evaluate(EvalConfig {
                split: Split::Test,
                head: crate::spec::Head::Loc,
            }),
        }
    }

    #[test]
    fn orders_inputs_first_and_keeps_spec_order() {
        let s = [
            stage("eval", &["train"]),
            stage("data", &[]),
            stage("train", &["data"]),
            stage("other", &[]),
        ];
        let ids: Vec<_> = order(&s).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["data", "train", "eval", "other"]);
    }

    #[test]
    fn cycle_names_the_stages() {
        let s = [
            stage("data", &[]),
            stage("a", &["c"]),
            stage("b", &["a"]),
            stage("c", &["b"]),
        ];
        assert_eq!(
            order(&s).unwrap_err().to_string(),
            "stages form a cycle: a -> b -> c -> a"
        );
    }

    #[test]
    fn dangling_reference_names_both_stages() {
        let s = [stage("data", &[]), stage("eval", &["trian"])];
        assert_eq!(
            order(&s).unwrap_err().to_string(),
            "stage `eval` refers to `in0 = \"trian\"`, but there is no stage `trian`; stages are `data`, `eval`"
        );
    }
}
