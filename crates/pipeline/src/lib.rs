//! The participant and group stages of cbflow: typed adapters between BIDS files and the pure
//! numeric crates (the middle of the three layers: kernels → step adapters → wiring).
//!
//! Every stage checks all of its input before it writes anything, so bad input leaves the
//! output directory untouched; every file it writes goes through the atomic writers of
//! `cbflow-bids`.

mod anat;
mod asl;
mod error;
mod group;
mod group_tables;
mod outputs;
mod participant;
mod template;

pub use asl::{AslOptions, AslResult, NativeTissue, process_run, quant_params, score_and_qc};
pub use error::{Error, Result};
pub use group::{GroupOptions, GroupSummary, StudyDesign, group};
pub use participant::{ParticipantOptions, ParticipantSummary, participant};
pub use template::{RESOURCES_ENV, Template, TemplateChoice};

/// Name and version written into `GeneratedBy` of every derivatives dataset.
pub fn generated_by() -> cbflow_bids::GeneratedBy {
    cbflow_bids::GeneratedBy {
        name: "cbflow".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        code_url: Some(env!("CARGO_PKG_REPOSITORY").into()),
    }
}
