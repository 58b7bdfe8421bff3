//! `exp`: reproducible experiments for unaligned face-attribute
//! classification (FRL + PaW), as a TOML-spec → DAG → cached-stage pipeline.
//!
//! Modules: [`spec`] (TOML → validated spec), [`plan`] (stage DAG),
//! [`cache`] (content-addressed artefacts), [`exec`] (scheduler, progress,
//! plan explanations), [`stages`] (one file per stage kind), [`models`]
//! (burn nets), [`ops`] (conv/ReLU routed to libtorch's own backward under
//! `--features tch`), [`data`] (synthetic faces and birds, CelebA and CUB
//! readers, shards, batching),
//! [`train`] (training loop), [`metrics`] (scores, Parquet), [`runs`] (run
//! records), [`device`], [`cli`]; leaves [`digest`] (sha256 of files and
//! trees) and [`vocab`] (values shared without burn). The import rules are
//! in `docs/architecture.md`, enforced by `tests/it/architecture.rs`.
//!
//! Files on disk and their owners:
//! - `results/cache/<hh>/<key>/` — [`cache`]: one stage's artefact + `manifest.json`
//! - `results/cache/{tmp,locks}/` — [`cache`]: entries being written, per-key locks
//! - `results/runs/<run-id>/run.json`, `logs/<stage>.log` — [`runs`], [`exec`]
//! - `<entry>/epochs.parquet`, `<entry>/attributes.parquet` — [`metrics::store`]

pub mod atomic;
pub mod attributes;
pub mod cache;
pub mod cli;
pub mod colour;
pub mod data;
pub mod device;
pub mod digest;
pub mod exec;
pub mod file_error;
pub mod kinds;
pub mod metrics;
pub mod models;
pub mod ops;
pub mod plan;
pub mod progress;
pub mod report;
pub mod runs;
pub mod spec;
pub mod stages;
pub mod train;
pub mod ui;
pub mod vocab;
