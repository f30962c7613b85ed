//! Registration and normalisation in native Rust: similarity metrics, rigid/affine and
//! diffeomorphic registration, transforms as values (compose, apply once, ITK text I/O), series
//! realignment, template-based brain extraction and ROI extraction.
//!
//! Conventions: world coordinates are NIfTI RAS+ millimetres; every transform maps FIXED-space
//! points to MOVING-space points (ITK/ANTs resampling convention); ITK text files use LPS and are
//! converted on reading/writing. See the crate README for details.

mod bias;
mod brain;
mod error;
mod linear;
mod metric;
mod normalise;
mod realign;
mod roi;
mod syn;
mod transform;
mod util;

pub use bias::{BiasCorrection, BiasOptions, correct_bias};
pub use brain::{
    BrainExtraction, BrainMaskOptions, brain_mask_from_template, brain_mask_from_transform,
};
pub use cbflow_image::Interp;
pub use error::{Error, Result};
pub use linear::{
    Initialisation, LinearMetric, LinearOptions, LinearResult, register_affine, register_rigid,
};
pub use metric::{lncc, mattes_mi, mean_squares, ncc};
pub use normalise::{Normalisation, NormaliseOptions, normalise_t1w};
pub use realign::{RealignOptions, Realignment, realign_series, realign_volume};
pub use roi::{
    Region, RoiStat, grey_matter_mask, labels_from_volume, labels_to_grid, mask_stats,
    parcel_table, roi_stats,
};
pub use syn::{SynOptions, SynResult, register_syn};
pub use transform::{
    AffineTransform, DisplacementField, Transform, TransformChain, apply, rotation_zyx,
};
