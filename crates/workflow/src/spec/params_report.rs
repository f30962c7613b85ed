//! Parameters of the report jobs. A workflow does not declare them: the plan adds one
//! `participant-report` job per participant after its participant-level jobs, and one
//! `group-report` job after the group steps, with the design the workflow's group step uses,
//! resolved once by the plan. As jobs they are cached, published and recorded in the
//! provenance like every other.

use cbflow_pipeline::StudyDesign;
use serde::{Deserialize, Serialize};

use super::base::{Level, Resources};
use super::opspec::{OpSpec, Slot};

/// The step name of the report jobs the plan adds (a workflow's steps may not use it).
pub const REPORT_STEP: &str = "report";

/// Output name of a report job (its HTML file).
pub const OUT_REPORT: &str = "report";

/// Resources of one report job: one core (the slices and plots of one page), little memory.
fn report_resources() -> Resources {
    Resources {
        cpus: 1,
        mem_gb: 2.0,
        time_min: 30,
    }
}

/// Parameters of `participant-report`: the workflow's design (which runs are before and
/// during the drug, the pre-treatment column), for the wording of the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ParticipantReportParams {
    /// The study design of the workflow's group step (the default design when it has none).
    pub design: StudyDesign,
}

/// Which group report a `group-report` job draws.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum GroupReportKind {
    /// The crossover report (contrasts, ROI tests, brain–behaviour, receptors).
    #[default]
    Crossover,
    /// The one-session before/during report of the `paired-group` contrast named.
    Paired {
        /// The contrast's name (`contrast-<name>` in the file names).
        contrast: String,
    },
}

/// Parameters of `group-report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct GroupReportParams {
    /// The study design of the workflow's group step.
    pub design: StudyDesign,
    /// The report drawn: that of the crossover step, else of the paired step.
    pub report: GroupReportKind,
}

/// A report op's declarations: its level, no input slot (the plan wires its upstream jobs),
/// one output, the report resources.
macro_rules! report_spec {
    ($params:ty, $level:expr) => {
        impl OpSpec for $params {
            fn level(&self) -> Level {
                $level
            }
            fn slots(&self) -> &'static [Slot] {
                &[]
            }
            fn outputs(&self) -> Vec<&'static str> {
                vec![OUT_REPORT]
            }
            fn default_resources(&self) -> Resources {
                report_resources()
            }
        }
    };
}

report_spec!(ParticipantReportParams, Level::Participant);
report_spec!(GroupReportParams, Level::Group);
