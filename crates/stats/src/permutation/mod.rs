//! Permutation inference for voxelwise GLMs: sign-flipping, permutation within exchangeability
//! blocks, max-statistic FWE, TFCE and cluster-extent FWE.
//!
//! # Counting convention
//! The unpermuted (identity) shuffle is always shuffle 0 and counts in every null distribution.
//! With `N` shuffles in total (identity included):
//! `p_uncorrected(v) = #{j : s_j(v) ≥ s_0(v)} / N`, `p_fwe(v) = #{j : max_u s_j(u) ≥ s_0(v)} / N`.
//! When shuffles are sampled, `N = 1 + n_permutations` and this is `(1 + #{null ≥ obs}) / (1 + n)`;
//! when all `2^n` sign patterns are enumerated (exhaustive), `N = 2^n` and `p` is the exact
//! permutation proportion. Comparisons allow a relative tolerance of 1e-10 for floating-point ties.
//!
//! # Speed
//! For the shuffle `P` (signs and/or row permutation), the statistic needs only `ã'W` and `Q̃'W`
//! where `ã = P'a`, `Q̃ = P'Q` (see [`crate::glm`]): `‖W‖²` is shuffle-invariant. A block of `B`
//! shuffles is therefore one matrix product `(B·r × n)·(n × V)`, tiled over voxels; blocks run in
//! parallel with rayon and are reduced in shuffle order (integer counts, per-shuffle maxima), so
//! results are bit-identical at any thread count.
//!
//! References: Winkler et al. (2014) NeuroImage 92, 381–397 (schemes, Freedman–Lane, counting);
//! Nichols & Holmes (2002) Hum. Brain Mapp. 15, 1–25 (max statistic); Smith & Nichols (2009)
//! NeuroImage 44, 83–98 (TFCE).
//!
//! Modules: `types` (tails, schemes, options and results), `shuffles` (the sign flips and
//! permutations drawn), `engine` (the blocked max-statistic scan), `spatial` (TFCE and clusters
//! per shuffle), `test` (the test itself and p-values). This file only declares and re-exports.

mod engine;
mod shuffles;
mod spatial;
mod test;
mod types;

pub use shuffles::*;
pub use test::*;
pub use types::*;
