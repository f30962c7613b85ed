//! What the receptor step is asked to do (maps, level, null models, statistic) and what it did.

use std::path::PathBuf;

use cbflow_receptor::{CorrelationMethod, CorrelationResult, GroupStat, NullModel};

use crate::group::StudyDesign;
use crate::template::Template;

pub use cbflow_receptor::{GM_THRESHOLD, MIN_PARCEL_VOXELS, SUPPORT_WEIGHT, VOXEL_SPACING_MM};

/// Where the correlation is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceptorLevel {
    /// Parcel means of a parcellation of the registry.
    Parcel,
    /// Grey-matter voxels on a [`VOXEL_SPACING_MM`] lattice.
    Voxel,
}

impl ReceptorLevel {
    /// Name in the tables (`parcel` | `voxel`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReceptorLevel::Parcel => "parcel",
            ReceptorLevel::Voxel => "voxel",
        }
    }

    /// Parses `parcel` | `voxel`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "parcel" => Some(Self::Parcel),
            "voxel" => Some(Self::Voxel),
            _ => None,
        }
    }
}

/// A null model of the receptor step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReceptorNull {
    /// Variogram-matching surrogates of the receptor map (Burt et al. 2020): the full method at
    /// parcel level, the sampled nearest-neighbour method at voxel level.
    Variogram,
    /// JuSpace's spatial permutation null maps with its grey-matter partial correlation (Dukart
    /// et al. 2021); parcel level only (`n/a` at voxel level).
    Juspace,
    /// Sign flips of the subjects' ΔCBF maps, group map recomputed (exact under the design).
    SignFlip,
}

impl ReceptorNull {
    /// Name in the tables (`variogram` | `juspace` | `signflip`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReceptorNull::Variogram => "variogram",
            ReceptorNull::Juspace => "juspace",
            ReceptorNull::SignFlip => "signflip",
        }
    }

    /// Parses a table name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "variogram" => Some(Self::Variogram),
            "juspace" => Some(Self::Juspace),
            "signflip" | "sign-flip" => Some(Self::SignFlip),
            _ => None,
        }
    }
}

/// Options of [`receptor_correlations`](super::receptor_correlations).
#[derive(Debug, Clone)]
pub struct ReceptorOptions {
    /// The input BIDS dataset (for the design in `sessions.tsv`).
    pub bids_dir: PathBuf,
    /// The derivatives directory: group maps at its root, template-space CBF maps of the
    /// participant level in `sub-*/ses-*/perf/`; the tables are written to its root.
    pub output_dir: PathBuf,
    /// The template the participant and group levels used.
    pub template: Template,
    /// Resource directory laid out like `shared/data` (registry paths are relative to it).
    pub resources: PathBuf,
    /// Registry names of the maps to test; empty = every registered map.
    pub maps: Vec<String>,
    /// Registry name of the parcellation (parcel level), e.g. `schaefer200tian`.
    pub parcellation: String,
    /// Parcel or voxel level.
    pub level: ReceptorLevel,
    /// Spearman (default) or Pearson.
    pub method: CorrelationMethod,
    /// Null models to compute (each gets `p_<null>` and `q_<null>` columns).
    pub nulls: Vec<ReceptorNull>,
    /// Draws of each null (surrogates, null maps, sign flips; sign flips are exhaustive when
    /// `2^subjects ≤ n_null`).
    pub n_null: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// The design (as the group level).
    pub design: StudyDesign,
    /// Multiple regression of the group map on all maps with dominance analysis (≤ 16 maps).
    pub dominance: bool,
    /// Group map: the t map (`GroupStat::T`, default) or the mean ΔCBF (`GroupStat::Mean`).
    pub statistic: GroupStat,
    /// Smoothing of the subjects' CBF maps for the sign-flip null (FWHM mm; use the group
    /// level's value, 6 mm by default).
    pub smoothing_fwhm_mm: f64,
}

impl ReceptorOptions {
    /// Defaults: all maps, `schaefer200tian`, parcel level, Spearman, all three nulls, 1 000
    /// draws, seed 1, t maps, 6 mm smoothing, no dominance analysis.
    pub fn new(
        bids_dir: PathBuf,
        output_dir: PathBuf,
        template: Template,
        resources: PathBuf,
    ) -> Self {
        Self {
            bids_dir,
            output_dir,
            template,
            resources,
            maps: Vec::new(),
            parcellation: crate::defaults::RECEPTOR_PARCELLATION.into(),
            level: ReceptorLevel::Parcel,
            method: CorrelationMethod::Spearman,
            nulls: vec![
                ReceptorNull::Variogram,
                ReceptorNull::Juspace,
                ReceptorNull::SignFlip,
            ],
            n_null: crate::defaults::RECEPTOR_NULLS,
            seed: crate::defaults::SEED,
            design: StudyDesign::default(),
            dominance: false,
            statistic: GroupStat::T,
            smoothing_fwhm_mm: crate::defaults::SMOOTHING_FWHM_MM,
        }
    }
}

/// The receptor results of one contrast.
#[derive(Debug, Clone)]
pub struct ContrastReceptors {
    /// Contrast name (`ketamineUnderPlacebo`, ...).
    pub contrast: String,
    /// One result per map, registry order; `p`/`p_fdr` keyed by the null models used
    /// (`Variogram`/`VariogramSampled`, `Juspace`, `SignFlip`).
    pub results: Vec<CorrelationResult>,
}

/// What [`receptor_correlations`](super::receptor_correlations) did.
#[derive(Debug, Clone)]
pub struct ReceptorSummary {
    /// Per contrast whose group map exists.
    pub contrasts: Vec<ContrastReceptors>,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Wall time of each part of the step (name, seconds), in the order the parts first ran; a
    /// part that runs once per map or contrast is summed.
    pub timings: Vec<(&'static str, f64)>,
}

/// The null model a requested null is at a level.
pub(super) fn null_model_of(n: ReceptorNull, level: ReceptorLevel) -> NullModel {
    match (n, level) {
        (ReceptorNull::Variogram, ReceptorLevel::Parcel) => NullModel::Variogram,
        (ReceptorNull::Variogram, ReceptorLevel::Voxel) => NullModel::VariogramSampled,
        (ReceptorNull::Juspace, _) => NullModel::Juspace,
        (ReceptorNull::SignFlip, _) => NullModel::SignFlip,
    }
}
