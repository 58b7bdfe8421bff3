//! `exp plan`: every stage as cached or to run, and why — compared with the
//! latest run of the same spec name that recorded the stage.

use std::collections::BTreeMap;

use serde::Serialize;

use super::key_inputs;
use crate::cache::{Cache, KeyInputs, Lookup};
use crate::device::DeviceChoice;
use crate::plan::Dag;
use crate::runs::RunRecord;
use crate::spec::Spec;

/// Why a stage will run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum DirtyReason {
    /// No earlier run recorded this stage.
    NeverRun,
    /// An upstream stage runs first, so this key is not known yet.
    UpstreamRuns {
        stage: String,
    },
    ParamsChanged {
        changes: Vec<String>,
    },
    UpstreamChanged {
        role: String,
    },
    DatasetChanged,
    KindVersionChanged {
        from: u32,
        to: u32,
    },
    BackendChanged {
        from: Option<String>,
        to: Option<String>,
    },
    /// Same inputs as before, but the entry is gone (gc, other cache dir).
    EntryMissing,
    Corrupt {
        detail: String,
    },
    Forced,
}

impl std::fmt::Display for DirtyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Self::NeverRun => write!(f, "never run"),
            Self::UpstreamRuns { stage } => write!(f, "upstream `{stage}` runs first"),
            Self::ParamsChanged { changes } => write!(f, "params changed: {}", changes.join(", ")),
            Self::UpstreamChanged { role } => write!(f, "upstream `{role}` output changed"),
            Self::DatasetChanged => write!(f, "data set changed"),
            Self::KindVersionChanged { from, to } => write!(f, "stage kind version {from} -> {to}"),
            Self::BackendChanged { from, to } => write!(
                f,
                "backend {} -> {}",
                from.as_deref().unwrap_or("-"),
                to.as_deref().unwrap_or("-")
            ),
            Self::EntryMissing => write!(f, "cache entry missing"),
            Self::Corrupt { detail } => write!(f, "cache entry corrupt: {detail}"),
            Self::Forced => write!(f, "--force"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanLine {
    pub stage: String,
    pub kind: String,
    pub inputs: BTreeMap<String, String>,
    pub key: Option<String>,
    pub cached: bool,
    pub reason: Option<DirtyReason>,
}

pub fn plan(
    spec: &Spec,
    dag: &Dag,
    cache: &Cache,
    device: DeviceChoice,
    previous: &[RunRecord],
    force: bool,
) -> Result<Vec<PlanLine>, super::ExecError> {
    let prints = super::fingerprints(dag, cache.root())?;
    let mut digests: Vec<Option<String>> = vec![None; dag.order.len()];
    let mut lines = Vec::new();
    for (i, stage) in dag.order.iter().enumerate() {
        let mut upstream = BTreeMap::new();
        let mut blocked = None;
        for (role, id) in &stage.inputs {
            let u = dag
                .order
                .iter()
                .position(|s| &s.id == id)
                .expect("validated");
            match &digests[u] {
                Some(d) => {
                    upstream.insert(role.clone(), d.clone());
                }
                None => blocked = Some(id.clone()),
            }
        }
        let line = |key: Option<String>, cached: bool, reason: Option<DirtyReason>| PlanLine {
            stage: stage.id.clone(),
            kind: stage.kind.as_str().into(),
            inputs: stage.inputs.clone(),
            key,
            cached,
            reason,
        };
        if let Some(up) = blocked {
            lines.push(line(
                None,
                false,
                Some(DirtyReason::UpstreamRuns { stage: up }),
            ));
            continue;
        }
        let ki = key_inputs(stage, &upstream, prints.get(&stage.id), device);
        let key = ki.key();
        let last = previous
            .iter()
            .filter(|r| r.name == spec.name)
            .find_map(|r| {
                r.stages
                    .iter()
                    .find(|s| s.id == stage.id)
                    .and_then(|s| s.key_inputs.clone())
            });
        match cache.lookup(&key) {
            Lookup::Hit(entry) if !force => {
                digests[i] = Some(entry.manifest.digest.clone());
                lines.push(line(Some(key), true, None));
            }
            Lookup::Hit(_) => lines.push(line(Some(key), false, Some(DirtyReason::Forced))),
            Lookup::Corrupt(detail) => lines.push(line(
                Some(key),
                false,
                Some(DirtyReason::Corrupt { detail }),
            )),
            Lookup::Miss => {
                let reason = match last {
                    None => DirtyReason::NeverRun,
                    Some(prev) => diff(&prev, &ki),
                };
                lines.push(line(Some(key), false, Some(reason)));
            }
        }
    }
    Ok(lines)
}

/// The first difference between the inputs of the last run and now.
fn diff(prev: &KeyInputs, now: &KeyInputs) -> DirtyReason {
    if prev.kind_version != now.kind_version {
        return DirtyReason::KindVersionChanged {
            from: prev.kind_version,
            to: now.kind_version,
        };
    }
    if prev.params != now.params {
        let mut changes = Vec::new();
        let (a, b) = (prev.params.as_object(), now.params.as_object());
        if let (Some(a), Some(b)) = (a, b) {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (a.get(k), b.get(k));
                if x != y {
                    let show = |v: Option<&serde_json::Value>| {
                        v.map_or("-".to_string(), |v| v.to_string())
                    };
                    changes.push(format!("{k} {} -> {}", show(x), show(y)));
                }
            }
        }
        return DirtyReason::ParamsChanged { changes };
    }
    if prev.dataset != now.dataset {
        return DirtyReason::DatasetChanged;
    }
    if let Some(role) = now
        .inputs
        .keys()
        .find(|r| prev.inputs.get(*r) != now.inputs.get(*r))
    {
        return DirtyReason::UpstreamChanged { role: role.clone() };
    }
    if prev.backend != now.backend {
        return DirtyReason::BackendChanged {
            from: prev.backend.clone(),
            to: now.backend.clone(),
        };
    }
    DirtyReason::EntryMissing
}
