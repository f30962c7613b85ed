//! Parameters of `paired-group` and the covariates the group steps share.

use std::collections::BTreeMap;

use cbflow_pipeline::defaults;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::base::{Level, Resources};
use super::opspec::{OpSpec, Slot};
use super::params_asl::{OUT_STATMAPS, OUT_TABLES};
use super::params_crossover::{
    GROUP_SLOTS, RunFields, RunPair, TailSpec, TfceSpec, check_covariates, check_group, covariates,
    group_resources, group_test_spec, run_pair,
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

run_pair!(PairedDesign);

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
    /// The pipeline's options of a job of this step (as
    /// [`CrossoverGroupParams::group_options`](super::CrossoverGroupParams::group_options)).
    pub fn group_options(
        &self,
        bids_dir: std::path::PathBuf,
        output_dir: std::path::PathBuf,
        template: cbflow_pipeline::Template,
    ) -> cbflow_pipeline::PairedGroupOptions {
        let (before, during) = self.design.selectors();
        cbflow_pipeline::PairedGroupOptions {
            bids_dir,
            output_dir,
            template,
            session: self.design.session.clone(),
            before,
            during,
            contrast: self.contrast.clone(),
            tail: self.tail.tail(),
            n_permutations: self.permutations,
            seed: self.seed,
            smoothing_fwhm_mm: self.smoothing_fwhm_mm,
            cluster_threshold: self.cluster_threshold,
            tfce: self.tfce.params(),
            covariates: self.group_covariates(),
        }
    }

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
    group_test_spec!();
}

impl PairedGroupParams {
    /// The checks of [`OpSpec::check`] beyond those of every group test.
    fn check_step(&self) -> std::result::Result<(), String> {
        if cbflow_bids::validate_label(&self.contrast).is_err() {
            return Err(format!(
                "contrast: {:?} must be letters and digits only (it becomes the BIDS entity contrast-<name>)",
                self.contrast
            ));
        }
        if let Some(why) = self.design.selection_problem() {
            return Err(why);
        }
        check_covariates(&self.covariates)
    }
}
