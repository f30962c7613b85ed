//! Parameters of `receptor-correlation`.

use cbflow_pipeline::defaults;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::base::{Level, Resources};
use super::opspec::{OpSpec, Slot, SlotKind};
use super::params_asl::{OUT_CBF_TEMPLATE, OUT_STATMAPS};
use super::params_crossover::{CrossoverDesign, group_resources};

/// Name of the receptor-correlation tables output.
pub const OUT_RECEPTORS: &str = "receptor-tables";

/// Parameters of `receptor-correlation`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ReceptorCorrelationParams {
    /// Registry names of the maps (e.g. MOR, KOR, NMDA, mGluR5, GABAA, GABAA5, NET); empty =
    /// every map of the registry.
    pub maps: Vec<String>,
    /// Parcellation: schaefer100tian, schaefer200tian, schaefer400tian or neuromorphometrics.
    pub parcellation: String,
    /// `parcel` (correlate parcel means) or `voxel` (grey-matter voxels, sampled surrogates).
    pub level: ReceptorLevelSpec,
    /// `spearman` or `pearson`.
    pub method: MethodSpec,
    /// Null models, any of `variogram`, `juspace`, `signflip`.
    pub nulls: Vec<NullSpec>,
    /// Draws of each null model.
    pub n_null: usize,
    /// Seed of the surrogates and sign flips.
    pub seed: u64,
    /// Group map to correlate: `t` (the contrast's t map) or `mean` (mean ΔCBF).
    pub statistic: StatisticSpec,
    /// Also regress the group map on all maps and report dominance (Hansen et al. 2022).
    pub dominance: bool,
    /// The crossover design (for the sign-flip null, which recomputes the group map).
    pub design: CrossoverDesign,
    /// Smoothing of the subjects' maps in the sign-flip null (FWHM, mm); use the group step's.
    pub smoothing_fwhm_mm: f64,
}

impl Default for ReceptorCorrelationParams {
    fn default() -> Self {
        Self {
            maps: Vec::new(),
            parcellation: defaults::RECEPTOR_PARCELLATION.into(),
            level: ReceptorLevelSpec::Parcel,
            method: MethodSpec::Spearman,
            nulls: vec![NullSpec::Variogram, NullSpec::Juspace, NullSpec::Signflip],
            n_null: defaults::RECEPTOR_NULLS,
            seed: defaults::SEED,
            statistic: StatisticSpec::T,
            dominance: false,
            design: CrossoverDesign::default(),
            smoothing_fwhm_mm: defaults::SMOOTHING_FWHM_MM,
        }
    }
}

/// Where receptor maps and group maps are correlated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReceptorLevelSpec {
    /// Parcel means of the parcellation.
    Parcel,
    /// Grey-matter voxels (sampled variogram surrogates).
    Voxel,
}

/// Correlation coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MethodSpec {
    /// Rank correlation.
    Spearman,
    /// Linear correlation.
    Pearson,
}

/// A null model of the receptor step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NullSpec {
    /// Variogram-matching surrogates of the receptor map (Burt et al. 2020).
    Variogram,
    /// JuSpace's spatial permutation null maps (Dukart et al. 2021); parcel level only.
    Juspace,
    /// Sign flips of the subjects' ΔCBF maps, group map recomputed.
    Signflip,
}

/// Which group map is correlated with the receptor maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StatisticSpec {
    /// The contrast's t map.
    T,
    /// The mean ΔCBF (effect) map.
    Mean,
}

impl ReceptorCorrelationParams {
    /// The pipeline's options for these parameters (the paths and template come from the plan).
    pub fn apply(&self, opts: &mut cbflow_pipeline::ReceptorOptions) {
        use cbflow_pipeline::{CorrelationMethod, GroupStat, ReceptorLevel, ReceptorNull};
        opts.maps = self.maps.clone();
        opts.parcellation = self.parcellation.clone();
        opts.level = match self.level {
            ReceptorLevelSpec::Parcel => ReceptorLevel::Parcel,
            ReceptorLevelSpec::Voxel => ReceptorLevel::Voxel,
        };
        opts.method = match self.method {
            MethodSpec::Spearman => CorrelationMethod::Spearman,
            MethodSpec::Pearson => CorrelationMethod::Pearson,
        };
        opts.nulls = self
            .nulls
            .iter()
            .map(|n| match n {
                NullSpec::Variogram => ReceptorNull::Variogram,
                NullSpec::Juspace => ReceptorNull::Juspace,
                NullSpec::Signflip => ReceptorNull::SignFlip,
            })
            .collect();
        opts.n_null = self.n_null;
        opts.seed = self.seed;
        opts.statistic = match self.statistic {
            StatisticSpec::T => GroupStat::T,
            StatisticSpec::Mean => GroupStat::Mean,
        };
        opts.dominance = self.dominance;
        opts.design = self.design.study_design();
        opts.smoothing_fwhm_mm = self.smoothing_fwhm_mm;
    }
}

pub(super) const RECEPTOR_SLOTS: &[Slot] = &[
    Slot {
        name: "statmaps",
        required: true,
        kind: SlotKind::Output(&[OUT_STATMAPS]),
        doc: "group statistic maps of a crossover-group step",
    },
    Slot {
        name: "cbf",
        required: true,
        kind: SlotKind::Output(&[OUT_CBF_TEMPLATE]),
        doc: "template-space CBF maps of the participant level (for the sign-flip null)",
    },
];

impl OpSpec for ReceptorCorrelationParams {
    fn level(&self) -> Level {
        Level::Group
    }
    fn slots(&self) -> &'static [Slot] {
        RECEPTOR_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec![OUT_RECEPTORS]
    }
    fn default_resources(&self) -> Resources {
        group_resources()
    }
    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn check(&self) -> std::result::Result<(), String> {
        if self.n_null == 0 {
            return Err("n-null: must be at least 1".into());
        }
        if let Some(why) = self.design.problem() {
            return Err(why);
        }
        if !(self.smoothing_fwhm_mm.is_finite() && self.smoothing_fwhm_mm >= 0.0) {
            return Err(format!(
                "smoothing-fwhm-mm: {} must be 0 or more",
                self.smoothing_fwhm_mm
            ));
        }
        Ok(())
    }
}
