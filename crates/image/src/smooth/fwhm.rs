//! Gaussian smoothing of volumes by FWHM in millimetres: per-axis sigma from the voxel sizes,
//! the separable kernel of [`super::gaussian`] in `f64`.

use ndarray::{Array3, ArrayD, ArrayView3, Axis, IxDyn, ShapeBuilder, Zip};

use super::gaussian::{Edges, Gaussian, Layout, TRUNCATE_SIGMAS};
use crate::{Error, Result, Volume};

/// `2 √(2 ln 2)`: FWHM of a Gaussian in units of its standard deviation.
pub const FWHM_PER_SIGMA: f64 = 2.354_820_045_030_949_3;

/// Standard deviation of a Gaussian of the given full width at half maximum
/// (`sigma = FWHM / (2 √(2 ln 2))`), in the same unit.
pub fn fwhm_to_sigma(fwhm: f64) -> f64 {
    fwhm / FWHM_PER_SIGMA
}

/// The maps' smoothing in `f64`: kernel truncated at [`TRUNCATE_SIGMAS`], the given edges.
fn maps_gaussian(sigma: [f64; 3], edges: Edges) -> Gaussian {
    Gaussian {
        sigma,
        truncate: TRUNCATE_SIGMAS,
        edges,
    }
}

/// A column-major `f64` copy of `data` (any layout, values converted by `to_f64`), smoothed.
fn smoothed_f64<A: Copy>(
    data: ArrayView3<'_, A>,
    to_f64: impl Fn(A) -> f64,
    gaussian: &Gaussian,
) -> Array3<f64> {
    let shape = [data.shape()[0], data.shape()[1], data.shape()[2]];
    // column-major copy: iterate the axis-reversed view in logical order
    let mut buf: Vec<f64> = data.t().iter().map(|&v| to_f64(v)).collect();
    gaussian.smooth(&mut buf, shape, Layout::ColumnMajor);
    Array3::from_shape_vec((shape[0], shape[1], shape[2]).f(), buf).expect("length matches dims")
}

/// Per-axis sigma in voxels for a FWHM in mm and voxel sizes in mm.
fn sigmas(fwhm_mm: f64, voxel_mm: [f64; 3]) -> Result<[f64; 3]> {
    if !(fwhm_mm.is_finite() && fwhm_mm >= 0.0) {
        return Err(Error::Invalid(format!(
            "smoothing fwhm must be a non-negative number of mm, got {fwhm_mm}"
        )));
    }
    if voxel_mm.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
        return Err(Error::InvalidAffine(format!(
            "voxel sizes must be positive, got {voxel_mm:?}"
        )));
    }
    let s = voxel_mm.map(|v| fwhm_to_sigma(fwhm_mm) / v);
    if s.iter().any(|&x| x > 1e4) {
        return Err(Error::Invalid(format!(
            "smoothing fwhm {fwhm_mm} mm is absurdly large for voxels of {voxel_mm:?} mm"
        )));
    }
    Ok(s)
}

/// Separable Gaussian smoothing of one 3D image (shape `[nx, ny, nz]`, any layout) with
/// per-axis standard deviations in voxels. Edges: taps outside the image are dropped and the
/// kernel renormalised over the rest, so a constant image stays constant and nothing is pulled
/// towards zero at the border (mass is conserved away from the border, where the whole kernel
/// fits). NaNs spread to their neighbourhood. Kernel truncated at [`TRUNCATE_SIGMAS`];
/// computed in `f64` ([`Gaussian`]); result column-major.
pub fn gaussian_smooth3(data: ArrayView3<'_, f32>, sigma_vox: [f64; 3]) -> Array3<f32> {
    let g = maps_gaussian(sigma_vox, Edges::Renormalise);
    smoothed_f64(data, f64::from, &g).mapv(|v| v as f32)
}

fn assemble(vol: &Volume, frames: Vec<Array3<f32>>) -> Volume {
    let shape = vol.data.shape().to_vec();
    let mut out = ArrayD::<f32>::zeros(IxDyn(&shape).f());
    if shape.len() == 3 {
        out.assign(&frames[0]);
    } else {
        for (t, f) in frames.iter().enumerate() {
            out.index_axis_mut(Axis(3), t).assign(f);
        }
    }
    Volume {
        data: out,
        affine: vol.affine,
        info: vol.info.clone(),
    }
}

/// Smooth a 3D or 4D volume (frame by frame) with an isotropic Gaussian of full width at half
/// maximum `fwhm_mm`; the per-axis sigma in voxels is `FWHM / (2 √(2 ln 2)) / voxel size`, with
/// voxel sizes from the affine's column lengths. Edges as in [`gaussian_smooth3`]
/// (renormalised kernel); `fwhm_mm = 0` returns a copy.
///
/// # Errors
/// [`Error::Invalid`] for a negative, non-finite or absurdly large (sigma > 10⁴ voxels) FWHM.
pub fn smooth_fwhm(vol: &Volume, fwhm_mm: f64) -> Result<Volume> {
    let s = sigmas(fwhm_mm, vol.grid().voxel_size())?;
    let frames = (0..vol.n_volumes())
        .map(|t| gaussian_smooth3(vol.frame(t), s))
        .collect();
    Ok(assemble(vol, frames))
}

/// Smooth inside a mask by normalised convolution (Knutsson & Westin 1993): the result at a
/// voxel in the mask is `G * (f · m) / G * m`, a Gaussian-weighted mean over mask voxels only,
/// so values outside the mask never leak in and the mask edge is not pulled towards zero (as
/// wanted for M0 images). Voxels outside the mask are 0. `mask` has the volume's spatial shape;
/// 4D volumes are smoothed frame by frame; `fwhm_mm` as in [`smooth_fwhm`].
///
/// # Errors
/// [`Error::ShapeMismatch`] when the mask shape differs from the volume's; [`Error::Invalid`]
/// for a negative or non-finite FWHM.
pub fn smooth_fwhm_masked(vol: &Volume, mask: &Array3<bool>, fwhm_mm: f64) -> Result<Volume> {
    let g = vol.grid();
    if mask.shape() != g.dims {
        return Err(Error::ShapeMismatch {
            what: "mask for smoothing".into(),
            expected: g.dims.to_vec(),
            got: mask.shape().to_vec(),
        });
    }
    let gaussian = maps_gaussian(sigmas(fwhm_mm, g.voxel_size())?, Edges::Zero);
    let den = smoothed_f64(mask.view(), |m| if m { 1.0 } else { 0.0 }, &gaussian);
    let frames = (0..vol.n_volumes())
        .map(|t| {
            let mut masked = vol.frame(t).mapv(f64::from);
            Zip::from(&mut masked).and(mask).for_each(|v, &m| {
                if !m {
                    *v = 0.0;
                }
            });
            let num = smoothed_f64(masked.view(), |v| v, &gaussian);
            let dims = (g.dims[0], g.dims[1], g.dims[2]);
            let mut out = Array3::<f32>::zeros(dims.f());
            Zip::from(&mut out)
                .and(&num)
                .and(&den)
                .and(mask)
                .for_each(|o, &n, &d, &m| {
                    *o = if m && d > 0.0 { (n / d) as f32 } else { 0.0 };
                });
            out
        })
        .collect();
    Ok(assemble(vol, frames))
}
