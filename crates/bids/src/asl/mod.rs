//! Typed ASL metadata validated by the BIDS rules for arterial spin labelling, the
//! `aslcontext.tsv` volume types, and discovery of ASL runs with their M0 scans.
//!
//! The rules follow the BIDS specification, section "Arterial Spin Labeling perfusion data"
//! (modality-specific files, MRI), as encoded in the BIDS schema (`rules/sidecars/asl.yaml` and
//! `rules/sidecars/asl_validation.yaml`): REQUIRED fields missing are errors, RECOMMENDED ones
//! warnings.
//!
//! Modules: `types` (the typed metadata), `timing` (the rules for times in seconds), `fields`
//! (reading a sidecar's fields with issues), `parse` (the BIDS ASL rules), `context`
//! (`aslcontext.tsv`), `run` (a run with its files, found in a layout). This file only declares
//! and re-exports.

mod context;
mod fields;
mod parse;
mod run;
mod timing;
mod types;

pub use context::*;
pub use run::*;
pub use timing::*;
pub use types::*;
