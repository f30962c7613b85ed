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
pub use group::{
    REGIONS, RelationData, RoiLine, brain_behaviour_data, group_report, paired_report,
    regression_band, roi_lines,
};
pub use participant::{PX_PER_MM, participant_report};
