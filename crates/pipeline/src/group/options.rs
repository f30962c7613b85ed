//! Options and summary of the crossover group level.

use std::path::PathBuf;

use cbflow_stats::TfceParams;
use serde::Serialize;

use super::covariates::GroupCovariate;
use super::design::{GroupContrast, StudyDesign};
use super::scores::BehaviourScores;
use crate::template::Template;

/// The default regions of the group level (rows of the participant ROI tables).
pub(crate) const DEFAULT_ROIS: [&str; 3] = ["ACC_sub", "ACC_pre", "ACC_sup"];

#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// The input BIDS dataset.
    pub bids_dir: PathBuf,
    /// The derivatives written by the participant level (the group outputs go to `group/` in it).
    pub output_dir: PathBuf,
    /// The template the participant level used.
    pub template: Template,
    /// The design.
    pub design: StudyDesign,
    /// Permutations (10 000 by default; exhaustive when fewer sign patterns exist).
    pub n_permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Smoothing of each template-space CBF map before the voxelwise test (FWHM, mm).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t).
    pub cluster_threshold: f64,
    /// TFCE settings (E = 0.5, H = 2, 26-connectivity, dh = max |t| / 100 by default).
    pub tfce: TfceParams,
    /// How the 95 % CIs of the brain–behaviour correlations are computed.
    pub correlation_ci: CorrelationCi,
    /// The contrasts tested ([`GroupContrast::defaults`] of the design by default).
    pub contrasts: Vec<GroupContrast>,
    /// Regions (of the participant level's ROI tables) for the ROI tests, the mixed model and
    /// the ΔCBF–subjective-effect correlations; `grey_matter` and `global` are always added.
    /// [`GroupOptions::default_rois`]: the three AAL3 anterior cingulate subdivisions.
    pub rois: Vec<String>,
    /// Region whose baseline CBF (adjusted for global CBF) is related to the day-1 change in
    /// depression scores (`ACC_sub`, the subgenual ACC, by default).
    pub baseline_roi: String,
    /// Covariates of the voxelwise GLM and the ROI tests (none by default): global CBF under
    /// each contrast's weights, or `participants.tsv` columns such as age and sex.
    pub covariates: Vec<GroupCovariate>,
    /// The phenotype scores of the brain–behaviour correlations (the study's by default).
    pub behaviour: BehaviourScores,
}

impl GroupOptions {
    /// The group level of the participant derivatives in `output_dir` (of the dataset
    /// `bids_dir`, in `template`'s space) with every other option at its default: the study's
    /// design and its four contrasts, [`crate::defaults`]' permutations, seed, smoothing and
    /// cluster threshold, TFCE E = 0.5 H = 2, Fisher-z CIs, the default regions with the
    /// subgenual ACC as baseline region, no covariates, the study's phenotype scores.
    pub fn new(bids_dir: PathBuf, output_dir: PathBuf, template: Template) -> Self {
        let design = StudyDesign::default();
        Self {
            bids_dir,
            output_dir,
            template,
            contrasts: GroupContrast::defaults(&design),
            design,
            n_permutations: crate::defaults::PERMUTATIONS,
            seed: crate::defaults::SEED,
            smoothing_fwhm_mm: crate::defaults::SMOOTHING_FWHM_MM,
            cluster_threshold: crate::defaults::CLUSTER_THRESHOLD,
            tfce: TfceParams::default(),
            correlation_ci: CorrelationCi::default(),
            rois: Self::default_rois(),
            baseline_roi: "ACC_sub".into(),
            covariates: Vec::new(),
            behaviour: BehaviourScores::default(),
        }
    }

    /// `ACC_sub`, `ACC_pre` and `ACC_sup`.
    pub fn default_rois() -> Vec<String> {
        DEFAULT_ROIS.iter().map(|s| s.to_string()).collect()
    }

    /// Why the group level's regions cannot be used, if they cannot: a name that is not a
    /// region name, `grey_matter` or `global` (always added), or a name twice. With
    /// `extracted` (the participant level's declared regions), also a region it does not
    /// extract. The workflow's checks and the group level share it.
    pub fn rois_problem(
        rois: &[String],
        baseline_roi: &str,
        extracted: Option<&[String]>,
    ) -> Option<String> {
        let reserved = crate::participant::RESERVED_ROIS;
        for (k, r) in rois.iter().enumerate() {
            if !crate::is_roi_name(r) {
                return Some(format!("rois: {r:?} is not a region name"));
            }
            if reserved.contains(&r.as_str()) {
                return Some(format!(
                    "rois: {r} is always added (with {}); list only declared regions",
                    reserved.join(" and ")
                ));
            }
            if rois[..k].contains(r) {
                return Some(format!("rois: {r} is listed twice"));
            }
        }
        if !crate::is_roi_name(baseline_roi) {
            return Some(format!(
                "baseline-roi: {baseline_roi:?} is not a region name"
            ));
        }
        let extracted = extracted?;
        let known = |r: &str| reserved.contains(&r) || extracted.iter().any(|e| e == r);
        let (key, missing) = match rois.iter().find(|r| !known(r)) {
            Some(r) => ("rois", r.as_str()),
            None if !known(baseline_roi) => ("baseline-roi", baseline_roi),
            None => return None,
        };
        Some(format!(
            "{key}: {missing} is not a region of the participant level (its regions: {})",
            extracted
                .iter()
                .map(String::as_str)
                .chain(reserved)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The 95 % confidence interval of a brain–behaviour correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum CorrelationCi {
    /// Fisher z (Bonett & Wright 2000 for Spearman): exact for bivariate normal data.
    #[default]
    FisherZ,
    /// Percentile bootstrap over subjects (Efron & Tibshirani 1993, ch. 13), seeded with the
    /// group seed: no normality assumption, for skewed scores or outliers.
    Bootstrap {
        /// Resamples.
        samples: usize,
    },
}

/// What the group level did.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    /// Subjects in the analysis.
    pub subjects: Vec<String>,
    /// Subjects left out, with the reason.
    pub excluded: Vec<(String, String)>,
    /// Per contrast: voxels with voxel-level FWE p < 0.05, with TFCE FWE p < 0.05, clusters.
    pub contrasts: Vec<(String, usize, usize, usize)>,
    /// Files written.
    pub files: Vec<PathBuf>,
}
