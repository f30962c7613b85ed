//! The participant and group stages of cbflow: typed adapters between BIDS files and the pure
//! numeric crates (the middle of the three layers: kernels → step adapters → wiring).
//!
//! Every stage checks all of its input before it writes anything, so bad input leaves the
//! output directory untouched; every file it writes goes through the atomic writers of
//! `cbflow-bids`. What the group steps write is named in one place, [`catalogue`].

mod anat;
mod asl;
pub mod catalogue;
pub mod defaults;
mod error;
mod group;
mod outputs;
mod participant;
mod receptors;
mod staging;
mod template;

pub use anat::{NormaliseSummary, normalise_image, normalise_to_dir};
pub use asl::{
    AslOptions, AslResult, MAX_UNUSABLE_FRACTION, NativeTissue, RunPlan, plan_run, process_run,
    quant_params, score_and_qc,
};
pub use cbflow_receptor::{CorrelationMethod, GroupStat, map_support};
pub use cbflow_register::Region;
pub use cbflow_stats::{Connectivity, CrossoverContrast, Tail, TfceParams, TfceStep};
pub use error::{Error, Result};
pub use group::{
    BehaviourScores, CorrelationCi, GLOBAL_CBF, GroupContrast, GroupCovariate, GroupOptions,
    GroupSummary, PairedGroupOptions, ResponseScores, SessionScores, StudyDesign,
    covariates_preflight, design_preflight, group, paired_group, written_contrasts,
};
pub use outputs::RunSelector;
pub use participant::{
    ParticipantOptions, ParticipantSummary, Preflight, default_rois, is_roi_name, participant,
    participant_preflight, rois_problem, template_preflight,
};
pub use receptors::{
    ContrastReceptors, GM_THRESHOLD, LoadedMap, MIN_PARCEL_VOXELS, ReceptorLevel, ReceptorNull,
    ReceptorOptions, ReceptorSummary, SUPPORT_WEIGHT, VOXEL_SPACING_MM, load_parcellation,
    load_receptor_map, receptor_correlations,
};
pub use template::{AtlasFiles, AtlasLabels, RESOURCES_ENV, Template, TemplateChoice};

/// Name and version written into `GeneratedBy` of every derivatives dataset.
pub fn generated_by() -> cbflow_bids::GeneratedBy {
    cbflow_bids::GeneratedBy {
        name: "cbflow".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        code_url: Some(env!("CARGO_PKG_REPOSITORY").into()),
    }
}

/// The input dataset as `SourceDatasets` of `dataset_description.json` (the same for every level,
/// so that the levels write the same file).
pub(crate) fn source_dataset(bids_dir: &std::path::Path) -> cbflow_bids::SourceDataset {
    cbflow_bids::SourceDataset {
        url: Some(format!(
            "file://{}",
            std::fs::canonicalize(bids_dir)
                .unwrap_or(bids_dir.to_path_buf())
                .display()
        )),
        ..cbflow_bids::SourceDataset::default()
    }
}
