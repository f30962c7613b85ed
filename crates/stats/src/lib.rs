//! cbflow-stats: voxelwise GLM with permutation inference (max-T, TFCE, cluster extent),
//! crossover design helpers, ROI statistics (paired tests, correlations with CIs, comparison of
//! dependent correlations, partial correlation, FDR) and a random-intercept linear mixed model.
//!
//! Pure numerics: arrays and typed parameters in, arrays and typed results out. Data layout for
//! voxelwise work: `ArrayView2<f32>` of shape (n_observations, n_masked_voxels) plus a
//! [`MaskGeometry`] that places each column on the image grid. See the README for conventions.

pub mod design;
pub mod error;
pub mod geometry;
pub mod glm;
pub mod lmm;
pub mod permutation;
pub mod roi;
mod simd;
pub mod tfce;

pub use design::{
    Covariate, CrossoverContrast, CrossoverMaps, Sequence, crossover_difference, crossover_test,
    difference_design,
};
pub use error::{Result, StatsError};
pub use geometry::{Connectivity, MaskGeometry, Neighbours, label_components};
pub use glm::{GlmDesign, GlmFit, glm_fit};
pub use lmm::{CrossoverObservation, LmmFit, Treatment, crossover_design, fit_random_intercept};
pub use permutation::{
    Cluster, ClusterResult, PermutationOptions, PermutationResult, Scheme, Shuffle, Tail,
    TfceResult, draw_shuffles, neg_log10, one_sample_sign_flip, permutation_test, t_to_p,
};
pub use roi::{
    Correlation, CorrelationMethod, DependentCorrelationTest, TTest, benjamini_hochberg,
    bootstrap_correlation_ci, compare_dependent_correlations, correlation, one_sample_t_test,
    one_sample_t_test_adjusted, paired_t_test, partial_correlation, pearson_r, ranks, residualise,
};
pub use tfce::{TfceParams, TfceStep, tfce};
