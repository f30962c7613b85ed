//! HTML reports of cbflow: a participant report (`sub-<label>.html`) and a group report
//! (`group.html`), each one self-contained file: images are inline PNG (`data:` URIs), the
//! style sheet is inline, and there is no script and no external link.
//!
//! Brain slices are drawn here (`slices`), plots with `plotters` on its bitmap backend with the
//! embedded DejaVu Sans font (`plots`): no system font or font library is needed.

mod data;
pub mod encode;
mod error;
mod group;
pub mod html;
mod methods;
mod participant;
pub mod plots;
pub mod slices;

pub use error::{Error, Result};

/// What a report is drawn from, as the plan resolved it: the report looks none of it up again.
#[derive(Debug, Clone, Copy)]
pub struct ReportInputs<'a> {
    /// The level's output directory (the derivatives the report reads and is written into).
    pub output_dir: &'a std::path::Path,
    /// The input BIDS dataset (read only: sessions, phenotype, T1w sidecars).
    pub bids_dir: &'a std::path::Path,
    /// The study design the workflow's group step uses (level names, cells).
    pub design: &'a cbflow_pipeline::StudyDesign,
    /// The resource directory the plan resolved (the MNI template, atlases); `None` when the
    /// plan needed none, e.g. for the built-in phantom.
    pub resources: Option<&'a std::path::Path>,
}
pub use group::{
    REGIONS, RelationData, RoiLine, brain_behaviour_data, group_report, paired_report,
    regression_band, roi_lines,
};
pub use participant::{PX_PER_MM, participant_report};
