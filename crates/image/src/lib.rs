//! NIfTI volumes for cbflow: the [`Volume`] type (an ndarray plus its voxel-to-world affine),
//! reading and writing `.nii`/`.nii.gz`, resampling through affines, smoothing and masks. The
//! workspace's one Gaussian smoother ([`Gaussian`]) and one trilinear interpolator
//! ([`Trilinear`]) live here; registration and the synthetic data use them too.
//!
//! Knows nothing of BIDS or YAML. World coordinates are millimetres in the NIfTI RAS+ convention
//! (x to the right, y anterior, z superior); voxel indices are `[i, j, k]` (and `t` for 4D) in
//! the order they appear in the NIfTI header, i.e. `data[[i, j, k]]` is the voxel stored at
//! file offset `i + nx*(j + ny*k)`.
//!
//! Arrays may be in any memory layout: every function here indexes logically. Arrays this crate
//! creates ([`read()`], resampling, smoothing) are column-major (`i` fastest), the file's order.

mod atomic;
mod describe;
mod error;
pub mod masks;
mod nifti_io;
mod resample;
mod smooth;
mod trilinear;
mod volume;

pub use atomic::{Durability, write_atomically};
pub use describe::{Description, describe};
pub use error::{Error, Result};
pub use nifti_io::{DataType, Header, read, read_header, write};
pub use resample::{
    Interp, Sampler, bspline_coefficients, resample_mapped, resample_to_grid, sample,
};
pub use smooth::{
    Edges, FWHM_PER_SIGMA, Gaussian, Layout, Real, TRUNCATE_SIGMAS, fwhm_to_sigma, gaussian_kernel,
    gaussian_smooth3, smooth_fwhm, smooth_fwhm_masked,
};
pub use trilinear::{Border, Cell, Trilinear};
pub use volume::{Grid, Volume, VolumeInfo, orientation};
