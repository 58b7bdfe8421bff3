//! `[executor]`: where a spec's stages run. Not part of any cache key: the
//! same stage computed locally or on a cluster is the same artefact.
//!
//! ```toml
//! [executor]
//! kind = "slurm"            # or "local" (default); `--executor` overrides
//! partition = "gpu"
//! time = "2:00:00"
//! cpus = 8
//! mem = "32G"
//! extra = ["--qos=normal"]  # any other sbatch arguments
//! parallelism = 32          # jobs in flight at once
//! [executor.kinds.train-frl]  # per stage kind: a GPU for training only
//! gpus = 1
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::locate::Seg;
use super::{Ctx, SpecError, StageKind, backticked, key};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawExecutor {
    /// `local` (default) or `slurm`.
    kind: Option<String>,
    // `Resources`' fields (serde's `flatten` cannot deny unknown keys).
    partition: Option<String>,
    time: Option<String>,
    cpus: Option<u32>,
    mem: Option<String>,
    gpus: Option<u32>,
    signal_before: Option<u32>,
    #[serde(default)]
    extra: Vec<String>,
    /// Slurm jobs in flight at once. Default: 64.
    parallelism: Option<u32>,
    /// Seconds between status queries (one `squeue` for all jobs). Default: 0.5.
    poll: Option<f64>,
    /// The `exp` binary jobs run (on a shared filesystem). Default: this one.
    exp: Option<String>,
    /// Resources per stage kind, over the ones above.
    #[serde(default)]
    kinds: BTreeMap<String, Resources>,
}

/// What one Slurm job asks for; unset = the cluster's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Resources {
    pub partition: Option<String>,
    /// `--time`, e.g. `30`, `2:00:00`, `1-00:00:00`.
    pub time: Option<String>,
    pub cpus: Option<u32>,
    /// `--mem`, e.g. `8G`.
    pub mem: Option<String>,
    /// GPUs per job (`--gres=gpu:N`).
    pub gpus: Option<u32>,
    /// With a `time` limit: seconds before it at which the job gets
    /// SIGUSR1 (`--signal=B:USR1@N`), checkpoints its training mid-epoch and
    /// requeues itself to resume. Default: 90.
    pub signal_before: Option<u32>,
    /// More sbatch arguments, as written.
    #[serde(default)]
    pub extra: Vec<String>,
}

impl Resources {
    /// `self`, with every field `over` sets replaced.
    pub fn merged(&self, over: &Resources) -> Resources {
        Resources {
            partition: over.partition.clone().or(self.partition.clone()),
            time: over.time.clone().or(self.time.clone()),
            cpus: over.cpus.or(self.cpus),
            mem: over.mem.clone().or(self.mem.clone()),
            gpus: over.gpus.or(self.gpus),
            signal_before: over.signal_before.or(self.signal_before),
            extra: self.extra.iter().chain(&over.extra).cloned().collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    #[default]
    Local,
    Slurm,
}

/// `[executor]`, resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExecutorSpec {
    pub kind: ExecutorKind,
    pub resources: Resources,
    pub parallelism: u32,
    pub poll: f64,
    pub exp: Option<String>,
    pub kinds: BTreeMap<String, Resources>,
}

impl ExecutorSpec {
    /// What a job of `kind` asks for.
    pub fn resources(&self, kind: StageKind) -> Resources {
        match self.kinds.get(kind.as_str()) {
            Some(over) => self.resources.merged(over),
            None => self.resources.clone(),
        }
    }
}

pub(super) fn resolve(raw: Option<RawExecutor>, ctx: &Ctx) -> Result<ExecutorSpec, SpecError> {
    let here = [Seg::Key("executor".into())];
    let raw = raw.unwrap_or_default();
    let kind = match raw.kind.as_deref() {
        None | Some("local") => ExecutorKind::Local,
        Some("slurm") => ExecutorKind::Slurm,
        Some(other) => {
            return Err(ctx.error(
                &key(&here, "kind"),
                format!("unknown executor `{other}`; allowed: `local`, `slurm`"),
            ));
        }
    };
    for k in raw.kinds.keys() {
        if !StageKind::ALL.iter().any(|s| s.as_str() == k) {
            let names: Vec<&str> = StageKind::ALL.iter().map(|s| s.as_str()).collect();
            let mut at = key(&here, "kinds");
            at.push(Seg::Key(k.clone()));
            return Err(ctx.error(
                &at,
                format!("unknown stage kind `{k}`; kinds are {}", backticked(&names)),
            ));
        }
    }
    let parallelism = raw.parallelism.unwrap_or(64);
    if parallelism == 0 {
        return Err(ctx.error(&key(&here, "parallelism"), "must be at least 1"));
    }
    let poll = raw.poll.unwrap_or(0.5);
    if !(0.05..=600.0).contains(&poll) {
        return Err(ctx.error(&key(&here, "poll"), "must be in [0.05, 600] seconds"));
    }
    Ok(ExecutorSpec {
        kind,
        resources: Resources {
            partition: raw.partition,
            time: raw.time,
            cpus: raw.cpus,
            mem: raw.mem,
            gpus: raw.gpus,
            signal_before: raw.signal_before,
            extra: raw.extra,
        },
        parallelism,
        poll,
        exp: raw.exp,
        kinds: raw.kinds,
    })
}
