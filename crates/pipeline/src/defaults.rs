//! The group level's and the receptor step's defaults, written once: the workflow's parameters
//! (and so its schema and the built-in workflow) and the pipeline's own option defaults read
//! them from here.

/// Permutations (sign flips) per contrast of a voxelwise test.
pub const PERMUTATIONS: usize = 10_000;
/// Seed of every random draw of a group step.
pub const SEED: u64 = 1;
/// FWHM (mm) of the Gaussian smoothing of each template-space CBF map before a group test; the
/// receptor step's sign-flip null smooths the subjects' maps with the same value.
pub const SMOOTHING_FWHM_MM: f64 = 6.0;
/// Cluster-forming threshold (t) of the cluster-extent test.
pub const CLUSTER_THRESHOLD: f64 = 3.1;
/// Bootstrap resamples of the brain–behaviour correlations' confidence intervals.
pub const BOOTSTRAP_SAMPLES: usize = 10_000;
/// Null draws per receptor map and null model.
pub const RECEPTOR_NULLS: usize = 1000;
/// The receptor step's parcellation (registry name).
pub const RECEPTOR_PARCELLATION: &str = "schaefer200tian";
