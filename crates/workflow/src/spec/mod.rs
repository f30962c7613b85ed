//! The parse stage: the workflow file as written, typed. Unknown keys, wrong types and missing
//! fields are rejected by the YAML parser with their line and column; [`Workflow::parse`] then
//! checks what the types cannot (step ids, operation inputs and outputs, cycles), again with the
//! line and column of the offending step or input.
//!
//! Modules, in dependency order: `base` (positions, levels, queries, resources) → `opspec`
//! (what an operation declares) → `params_*` (each operation's parameters; `params_behaviour` the phenotype scores of
//! `params_crossover`; `params_report` those of the jobs the plan adds) → `op` (the
//! operations, one line of `ops!` each) → `format` (a workflow's steps and inputs) →
//! `check` (parsing and checking). This file only declares and re-exports.

mod base;
mod check;
mod format;
mod op;
mod opspec;
mod params_asl;
mod params_behaviour;
mod params_crossover;
mod params_paired;
mod params_receptor;
mod params_report;

pub use base::*;
pub use format::*;
pub use op::*;
pub use opspec::*;
pub use params_asl::*;
pub use params_behaviour::*;
pub use params_crossover::*;
pub use params_paired::*;
pub use params_receptor::*;
pub use params_report::*;
