//! The receptor step of the group level: correlates each contrast's group map with PET receptor
//! maps (registry of `cbflow-receptor`), with spatial-autocorrelation-aware null models, and
//! writes the receptor tables (the catalogue's `GroupFile::Receptors`, `ReceptorNulls` and
//! `ReceptorDominance`).
//!
//! * Maps come from the registry (`cbflow_resources::Registry::builtin()`); their files are
//!   resolved under the resource directory (the same one as the template: `--resources` or
//!   `CBFLOW_RESOURCES`).
//! * Each map is read (`cbflow_image::read`: byte order, scaling, LAS/RAS through the affine),
//!   resampled to the template grid (trilinear), restricted to grey matter (template GM
//!   probability ≥ [`GM_THRESHOLD`], inside the brain mask) and to the map's own support (see
//!   [`load_receptor_map`]), and z-scored over the voxels kept.
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
mod points;
mod run;
mod tables;
#[cfg(test)]
mod tests;

pub use load::*;
pub use options::*;
pub use run::*;
