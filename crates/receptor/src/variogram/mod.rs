//! Variogram-matching surrogate maps (Burt et al. 2020, BrainSMASH).
//!
//! A surrogate is made by randomly permuting the target map's values, smoothing the permuted map
//! with a distance kernel over its `k` nearest neighbours, and rescaling it,
//! `sqrt(|β|) · smoothed + sqrt(|α|) · N(0, 1)`, where `α, β` come from the least-squares fit of
//! the
//! target's smoothed variogram on the smoothed map's smoothed variogram; the neighbourhood size
//! `k = δ n` with the smallest residual over the candidate `δ`s is used. Optionally (the default
//! here) the surrogate's values are then replaced by the target's sorted values in the surrogate's
//! rank order ("resample"), so every surrogate has exactly the target's value distribution.
//!
//! [`VariogramSurrogates`] is the full method (all pairwise distances; parcels).
//! [`SampledSurrogates`] is the sampled method for dense maps (voxels): only the `knn` nearest
//! neighbours of each point are kept, and each surrogate's variograms are computed on a random
//! subset of `ns` points.
//!
//! Reference: Burt JB, Helmer M, Shinn M, Anticevic A, Murray JD. Generative modeling of brain
//! maps with spatial autocorrelation. *NeuroImage* 2020;220:117038.
//!
//! Modules: `params` (kernels and settings), `distance` (the distance matrix), `neighbours`
//! (exact nearest neighbours by a grid of cells), `smoother` (kernel smoothing over the nearest
//! neighbours, for every neighbourhood size and several maps at once), `fit` (variogram
//! estimation and the fit of a surrogate), `screen` (the full method's neighbourhood size
//! decided from binned variograms with error bounds), `full` (surrogates over every pair, parcels),
//! `sampled` (surrogates from sampled pairs, voxels); each uses only those before it. This file
//! only declares and re-exports.

mod distance;
mod fit;
mod full;
mod neighbours;
mod params;
mod sampled;
mod screen;
mod smoother;
#[cfg(test)]
mod tests;

pub use distance::*;
pub use fit::*;
pub use full::*;
pub use params::*;
pub use sampled::*;
