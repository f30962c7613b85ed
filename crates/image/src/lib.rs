//! NIfTI volumes for cbflow: the [`Volume`] type (an ndarray plus its voxel-to-world affine),
//! reading and writing `.nii`/`.nii.gz`, resampling through affines, smoothing and masks.
//!
//! Knows nothing of BIDS or YAML. World coordinates are millimetres in the NIfTI RAS+ convention
//! (x to the right, y anterior, z superior); voxel indices are `[i, j, k]` (and `t` for 4D) in
//! the order they appear in the NIfTI header, i.e. `data[[i, j, k]]` is the voxel stored at
//! file offset `i + nx*(j + ny*k)`.

mod error;
mod volume;

pub use error::{Error, Result};
pub use volume::{Grid, Volume, VolumeInfo, orientation};
