//! The study generator: subjects, sessions, runs, the ASL forward model and the truth.
//!
//! Modules: `model` (the protocol, the noise and the population), `study` (the study written:
//! top-level files and tables), `subject` (one subject's anatomy and sessions), `session` (one
//! session's ASL forward model). This file only declares and re-exports.

mod model;
mod session;
mod study;
mod subject;

pub use model::*;
pub use study::*;
