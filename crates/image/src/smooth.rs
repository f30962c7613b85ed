//! Gaussian smoothing by FWHM in millimetres: separable, per-axis sigma from the voxel sizes.

use ndarray::{Array3, ArrayD, ArrayView3, Axis, IxDyn, ShapeBuilder, Zip};
use rayon::prelude::*;

use crate::{Error, Result, Volume};

/// `2 √(2 ln 2)`: FWHM of a Gaussian in units of its standard deviation.
pub const FWHM_PER_SIGMA: f64 = 2.354_820_045_030_949_3;

/// Kernel half-width in standard deviations.
const TRUNCATE: f64 = 4.0;

/// Standard deviation of a Gaussian of the given full width at half maximum
/// (`sigma = FWHM / (2 √(2 ln 2))`), in the same unit.
pub fn fwhm_to_sigma(fwhm: f64) -> f64 {
    fwhm / FWHM_PER_SIGMA
}

/// Sampled, normalised 1D Gaussian of standard deviation `sigma` (voxels), truncated at
/// `ceil(4 sigma)` voxels each side; `[1.0]` for `sigma` below 0.01 voxel.
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    if sigma.is_nan() || sigma < 0.01 {
        return vec![1.0];
    }
    let r = (TRUNCATE * sigma).ceil() as i64;
    let mut k: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Convolve every line along `axis` of a column-major buffer of shape `dims` with the
/// (odd-length, centred) kernel. With `renormalise`, taps falling outside the array are dropped
/// and the remaining weights rescaled to sum to 1; without, the outside counts as zero.
///
/// Along axes 1 and 2 whole contiguous rows are combined at once (cache-friendly); work is split
/// over output rows or lines, each computed independently (deterministic).
fn convolve_axis(
    src: &[f64],
    dims: [usize; 3],
    axis: usize,
    kernel: &[f64],
    renormalise: bool,
) -> Vec<f64> {
    let n = dims[axis];
    let r = (kernel.len() / 2) as i64;
    // Per output position along the axis: first and last input position, and the weight scale.
    let spans: Vec<(usize, usize, f64)> = (0..n as i64)
        .map(|i| {
            let lo = (i - r).max(0);
            let hi = (i + r).min(n as i64 - 1);
            let wsum: f64 = (lo..=hi).map(|x| kernel[(x - i + r) as usize]).sum();
            (
                lo as usize,
                hi as usize,
                if renormalise { 1.0 / wsum } else { 1.0 },
            )
        })
        .collect();
    let mut out = vec![0f64; src.len()];
    if axis == 0 {
        out.par_chunks_mut(n)
            .zip(src.par_chunks(n))
            .for_each(|(o, line)| {
                for (i, (o, &(lo, hi, scale))) in o.iter_mut().zip(&spans).enumerate() {
                    let mut acc = 0.0;
                    for x in lo..=hi {
                        acc += kernel[x + r as usize - i] * line[x];
                    }
                    *o = acc * scale;
                }
            });
    } else {
        let inner: usize = dims[..axis].iter().product();
        out.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(idx, row)| {
                let (outer, i) = (idx / n, idx % n);
                let (lo, hi, scale) = spans[i];
                for x in lo..=hi {
                    let w = kernel[x + r as usize - i] * scale;
                    let start = (outer * n + x) * inner;
                    for (o, &v) in row.iter_mut().zip(&src[start..start + inner]) {
                        *o += w * v;
                    }
                }
            });
    }
    out
}

/// Separable convolution of a 3D array with one kernel per axis; result column-major `f64`.
fn convolve3(data: ArrayView3<'_, f64>, kernels: &[Vec<f64>; 3], renormalise: bool) -> Array3<f64> {
    let dims = [data.shape()[0], data.shape()[1], data.shape()[2]];
    // Column-major copy: iterate the axis-reversed view in logical order.
    let mut buf: Vec<f64> = data.t().iter().copied().collect();
    for (axis, k) in kernels.iter().enumerate() {
        if k.len() > 1 {
            buf = convolve_axis(&buf, dims, axis, k, renormalise);
        }
    }
    Array3::from_shape_vec((dims[0], dims[1], dims[2]).f(), buf).expect("length matches dims")
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
/// fits). NaNs spread to their neighbourhood. Computed in `f64`; result column-major.
pub fn gaussian_smooth3(data: ArrayView3<'_, f32>, sigma_vox: [f64; 3]) -> Array3<f32> {
    let kernels = sigma_vox.map(gaussian_kernel);
    convolve3(data.mapv(f64::from).view(), &kernels, true).mapv(|v| v as f32)
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
    let s = sigmas(fwhm_mm, g.voxel_size())?;
    let kernels = s.map(gaussian_kernel);
    let den = convolve3(
        mask.mapv(|m| if m { 1.0 } else { 0.0 }).view(),
        &kernels,
        false,
    );
    let frames = (0..vol.n_volumes())
        .map(|t| {
            let mut masked = vol.frame(t).mapv(f64::from);
            Zip::from(&mut masked).and(mask).for_each(|v, &m| {
                if !m {
                    *v = 0.0;
                }
            });
            let num = convolve3(masked.view(), &kernels, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalised_with_the_right_variance() {
        for sigma in [0.8, 1.3, 2.5] {
            let k = gaussian_kernel(sigma);
            let r = (k.len() / 2) as f64;
            let sum: f64 = k.iter().sum();
            let var: f64 = k
                .iter()
                .enumerate()
                .map(|(i, w)| w * (i as f64 - r).powi(2))
                .sum();
            assert!((sum - 1.0).abs() < 1e-12);
            assert!(
                (var.sqrt() / sigma - 1.0).abs() < 1e-3,
                "sigma {sigma}: {}",
                var.sqrt()
            );
        }
        assert_eq!(gaussian_kernel(0.0), vec![1.0]);
    }
}
