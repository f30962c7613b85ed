//! Parameters of `paired-group` and the covariates the group steps share.

use std::collections::BTreeMap;

use cbflow_pipeline::defaults;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::base::{Level, Resources};
use super::opspec::{OpSpec, Slot};
use super::params_asl::{OUT_STATMAPS, OUT_TABLES};
use super::params_crossover::{
    GROUP_SLOTS, TailSpec, TfceSpec, check_covariates, check_group, covariates, group_resources,
    run_selection_problem, run_selectors,
};

/// A one-session before/during design.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PairedDesign {
    /// `run` entity of the scan before the drug; unset: `1` (or `before`).
    pub run_before: Option<String>,
    /// `run` entity of the scan during the drug; unset: `2` (or `during`).
    pub run_during: Option<String>,
    /// The scan before the drug by any entities of its file name, e.g. `{acq: pre}`, in place
    /// of `run-before`.
    pub before: Option<BTreeMap<String, String>>,
    /// The scan during the drug by any entities, in place of `run-during`.
    pub during: Option<BTreeMap<String, String>>,
    /// `ses` entity of the session to use; unset = the subject's only session (or no
    /// session directory).
    pub session: Option<String>,
}

impl PairedDesign {
    /// The before and during run selectors.
    pub fn selectors(&self) -> (cbflow_pipeline::RunSelector, cbflow_pipeline::RunSelector) {
        run_selectors(
            &self.run_before,
            &self.run_during,
            &self.before,
            &self.during,
        )
    }
}

/// Parameters of `paired-group`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PairedGroupParams {
    /// Which runs are before and during the drug.
    pub design: PairedDesign,
    /// Name of the during − before contrast in the output names (`contrast-<name>`; letters
    /// and digits), e.g. the drug's name.
    pub contrast: String,
    /// Alternative hypothesis of the voxelwise test of during − before.
    pub tail: TailSpec,
    /// Sign-flip permutations (exhaustive when fewer sign patterns exist).
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Gaussian smoothing of each template-space CBF map (FWHM, mm; 0 = none).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t).
    pub cluster_threshold: f64,
    /// TFCE settings.
    pub tfce: TfceSpec,
    /// Covariates of the voxelwise GLM and the ROI tests (none by default): `global-cbf` (the
    /// change of global CBF, uncentred: the change is tested at no change of global CBF) or a
    /// column of participants.tsv (centred).
    pub covariates: Vec<String>,
}

impl PairedGroupParams {
    /// The pipeline's covariates.
    pub fn group_covariates(&self) -> Vec<cbflow_pipeline::GroupCovariate> {
        covariates(&self.covariates)
    }
}

impl Default for PairedGroupParams {
    fn default() -> Self {
        Self {
            design: PairedDesign::default(),
            contrast: "drug".into(),
            tail: TailSpec::TwoSided,
            permutations: defaults::PERMUTATIONS,
            seed: defaults::SEED,
            smoothing_fwhm_mm: defaults::SMOOTHING_FWHM_MM,
            cluster_threshold: defaults::CLUSTER_THRESHOLD,
            tfce: TfceSpec::default(),
            covariates: Vec::new(),
        }
    }
}

impl OpSpec for PairedGroupParams {
    fn level(&self) -> Level {
        Level::Group
    }
    fn slots(&self) -> &'static [Slot] {
        GROUP_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec![OUT_STATMAPS, OUT_TABLES]
    }
    fn default_resources(&self) -> Resources {
        group_resources()
    }
    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn check(&self) -> std::result::Result<(), String> {
        check_group(
            self.permutations,
            self.smoothing_fwhm_mm,
            self.cluster_threshold,
            &self.tfce,
        )?;
        if cbflow_bids::validate_label(&self.contrast).is_err() {
            return Err(format!(
                "contrast: {:?} must be letters and digits only (it becomes the BIDS entity contrast-<name>)",
                self.contrast
            ));
        }
        let d = &self.design;
        if let Some(why) = run_selection_problem(&d.run_before, &d.run_during, &d.before, &d.during)
        {
            return Err(why);
        }
        check_covariates(&self.covariates)
    }
}
