//! The group steps: the crossover design from `participants.tsv`/`sessions.tsv`
//! (`design`), what they read of the participant level (`maps`: the template-space CBF maps
//! and ROI tables), the covariates, voxelwise permutation inference written as statistic maps
//! (`statmaps`), the ROI and mixed-model tables (`tables`) and the brain–behaviour correlations
//! of the declared phenotype scores (`behaviour`), and the two
//! designs that use them: the crossover (`crossover`) and before/during in one session
//! (`paired`).
//!
//! The modules depend on one another in this order only (no cycles; `.ci/architecture.py` checks
//! it): `cells`, `scores`, `design` → `maps` → `covariates` → `options` → `statmaps`, `behaviour` →
//! `tables` → `crossover`, `paired`. This file only declares and re-exports.

mod behaviour;
mod cells;
mod covariates;
mod crossover;
pub(crate) mod design;
pub(crate) mod maps;
mod options;
mod paired;
#[cfg(test)]
mod points_tests;
mod scores;
pub(crate) mod statmaps;
mod tables;
#[cfg(test)]
mod tests;

pub use covariates::{GLOBAL_CBF, GroupCovariate, covariates_preflight};
pub use crossover::group;
pub use design::{GroupContrast, StudyDesign, design_preflight, written_contrasts};
pub use options::{CorrelationCi, GroupOptions, GroupSummary};
pub use paired::{PairedGroupOptions, paired_group};
pub use scores::{BehaviourScores, ResponseScores, SessionScores};
