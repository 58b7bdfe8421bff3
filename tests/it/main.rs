//! exp's end-to-end tests, one binary (one link, every test in parallel),
//! a module per area. Tests that need a Slurm cluster or Chromium are
//! `#[ignore]`d; `.ci/run` starts those and runs them.

mod architecture;
mod bench;
mod cache;
mod command;
mod common;
mod data;
mod fuzz;
mod maintenance;
mod oracle;
mod pipeline;
mod predict;
mod report;
mod resume;
mod slurm;
mod spec_errors;
mod ui;
