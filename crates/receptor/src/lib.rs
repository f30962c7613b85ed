//! Receptor-map correlation with spatial-autocorrelation-corrected p-values (pure numerics).
//!
//! * [`parcellate`], [`parcel_centroids`], [`masked_voxels`]: maps on one grid → parcel or voxel
//!   vectors (resampling is done by the caller, e.g. `cbflow-image`).
//! * [`map_support`]: where a PET map has data (its source's background left out);
//!   [`map_on_template`]: a PET map on a template grid (normalised interpolation, valid voxels,
//!   z-scores); [`Points`]: the parcels or lattice voxels a map is correlated over.
//! * [`zscore`], [`pearson`], [`spearman`], [`partial_correlation`], [`parametric_p`].
//! * Null models: [`VariogramSurrogates`] (full) and [`SampledSurrogates`] (voxels) after Burt
//!   et al. (2020); [`spatial_permutation_test`] / [`juspace_null_maps`] after JuSpace (Dukart et
//!   al. 2021) with its grey-matter partial correlation; [`sign_flip_null`] over subjects.
//! * Multiple maps: [`fdr_bh`], [`dominance_analysis`] (Hansen et al. 2022).
//! * Records: [`CorrelationResult`], [`NullModel`], [`apply_fdr`].
//!
//! Every random function takes a `seed`; resample `i` uses ChaCha8 stream `i` of that seed, so
//! results are bit-identical at any thread count.

mod corr;
mod dominance;
mod error;
mod fdr;
mod juspace;
mod on_template;
mod parcel;
mod points;
mod result;
mod signflip;
mod support;
mod variogram;

pub use corr::{
    CorrelationMethod, correlate, null_p_value, parametric_p, partial_correlation, pearson, ranks,
    spearman, zscore,
};
pub use dominance::{Dominance, MAX_PREDICTORS, dominance_analysis};
pub use error::{Error, Result};
pub use fdr::fdr_bh;
pub use juspace::{
    PermutationTest, juspace_null_maps, mirror_by_centroids, null_correlations,
    spatial_permutation_test,
};
pub use on_template::{
    GM_THRESHOLD, MIN_VALID_VOXELS, MapOnTemplate, SUPPORT_WEIGHT, map_on_template,
};
pub use parcel::{ParcelValues, masked_voxels, parcel_centroids, parcellate};
pub use points::{MIN_PARCEL_VOXELS, Points, VOXEL_SPACING_MM, flat_c};
pub use result::{CorrelationResult, NullModel, apply_fdr};
pub use signflip::{GroupStat, SignFlipNull, group_map, sign_flip_null};
pub use support::map_support;
pub use variogram::{
    DistanceMatrix, Kernel, SampledParams, SampledSurrogates, VariogramFit, VariogramParams,
    VariogramSurrogates,
};

/// ChaCha8 generator for resample `stream` of `seed`.
pub(crate) fn rng_for(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
