//! A job of the plan: one step for one participant (or the group), with its resolved
//! parameters, the files it reads, its dependencies and its resources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::{Level, Op, Resources, TemplateName};

/// One job of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// `step/sub-<label>` at the participant level, `step` at the group level.
    pub id: String,
    /// The step it comes from.
    pub step: String,
    /// Its level.
    pub level: Level,
    /// The participant (without `sub-`), at the participant level.
    pub participant: Option<String>,
    /// The operation with its resolved parameters (overrides applied).
    #[serde(flatten)]
    pub op: Op,
    /// The template space of its (upstream) participant-level maps.
    pub template: Option<TemplateName>,
    /// Every file whose content the job depends on (absolute, sorted): the participant's
    /// BIDS files and the dataset's top-level files, tables and template resources.
    pub inputs: Vec<PathBuf>,
    /// The BIDS files its input queries matched, by slot (relative to the dataset).
    pub matched: BTreeMap<String, Vec<PathBuf>>,
    /// Indices of the jobs it reads from (earlier in the plan).
    pub deps: Vec<usize>,
    /// Its resources.
    pub resources: Resources,
    /// True for jobs of another level that this level reads (from the cache or OUTPUT_DIR; never
    /// run by this level).
    pub prerequisite: bool,
}
