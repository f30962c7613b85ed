//! The catalogue of the derivatives: one typed descriptor per kind of file that a level writes,
//! giving its name from its entities and its path under an output directory.
//!
//! Every writer and every reader (the later steps, `cbflow-report`) names these files through
//! it, so each name is spelled here once and a rename fails this module's tests, not a reader at
//! run time. Two parts, independent of each other, each depending on no other module of the
//! crate but the error type:
//! - `participant`: the participant level's files of each ASL run ([`RunFile`], in `perf/`) and
//!   of each session's T1w ([`AnatFile`], in `anat/`), named from the run's or the T1w's
//!   entities; and the flat directory of `cbflow normalise` ([`NormaliseFile`]);
//! - `group`: the group steps' files at the root of OUTPUT_DIR ([`GroupFile`], with its
//!   [`StatMap`]s and their [`Inference`]).

mod group;
mod participant;

pub use group::{ContrastSpace, GroupFile, Inference, StatMap};
pub use participant::{AnatFile, NormaliseFile, RunFile, TemplateSpace};
