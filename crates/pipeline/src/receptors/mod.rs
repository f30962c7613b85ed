//! The receptor step of the group level: correlates each contrast's group map with PET receptor
//! maps (registry of `cbflow-receptor`), with spatial-autocorrelation-aware null models, and
//! writes the receptor tables (the catalogue's `GroupFile::Receptors`, `ReceptorNulls` and
//! `ReceptorDominance`).
//!
//! * Maps come from the registry (`cbflow_resources::Registry::builtin()`); their files are
//!   resolved under the resource directory (the same one as the template: `--resources` or
//!   `CBFLOW_RESOURCES`).
//! * Each map is read (`cbflow_image::read`: byte order, scaling, LAS/RAS through the affine),
//!   then put on the template grid by `cbflow_receptor::map_on_template` (normalised trilinear
//!   interpolation, restricted to grey matter — template GM probability ≥ [`GM_THRESHOLD`],
//!   inside the brain mask — and to the map's own support, z-scored over the voxels kept); the
//!   points correlated are `cbflow_receptor::Points` (parcels or lattice voxels). This module
//!   reads and writes; the numerics are `cbflow-receptor`'s.
//! * Nulls: `variogram` (Burt et al. 2020: full method for parcels, sampled method for voxels),
//!   `juspace` (Dukart et al. 2021: spatially smoothed permutation null maps, mirrored across
//!   hemispheres, with the grey-matter partial correlation; parcels only), `signflip` (subjects'
//!   ΔCBF maps sign-flipped, group map recomputed).
//!
//! Modules: `options` (what is asked), `load` (maps onto the template grid), `run` (the
//! correlations and nulls), `tables` (what is written).

mod load;
#[cfg(test)]
pub(crate) mod mor_tests;
mod options;
mod run;
mod tables;
#[cfg(test)]
mod tests;

pub use load::*;
pub use options::*;
pub use run::*;
