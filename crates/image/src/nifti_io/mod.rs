//! NIfTI-1 single-file (`.nii`, `.nii.gz`) reading and writing.
//!
//! The 348-byte header is parsed and validated here rather than by the `nifti` crate, so that
//! every malformed file becomes an [`Error::InvalidNifti`] naming the field at fault instead of
//! a panic or a silently wrong image. The rules followed are those of the NIfTI-1 standard
//! (`nifti1.h`, Cox et al. 2004):
//!
//! - byte order from `sizeof_hdr` (348 read little- or big-endian);
//! - voxel-to-world affine from the sform (`srow_x/y/z`) when `sform_code > 0`, else from the
//!   quaternion qform when `qform_code > 0` (method 2), else `diag(pixdim[1..=3])` (method 1);
//! - values scaled by `scl_slope`/`scl_inter` unless `scl_slope` is 0 or not finite.
//!
//! Modules: `types` (data types, the stored form, the header), `header` (opening a file and
//! parsing and checking its header), `affine` (qform quaternions ↔ affines), `read` (decoding
//! the data), `write` (encoding data and header). This file only declares and re-exports.

mod affine;
mod header;
mod read;
#[cfg(test)]
mod tests;
mod types;
mod write;

pub use read::*;
pub use types::*;
pub use write::*;
