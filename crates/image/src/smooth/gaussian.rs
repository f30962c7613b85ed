//! The one separable Gaussian smoother of the workspace: a sampled, truncated kernel applied
//! along each axis of a contiguous 3D buffer, in `f32` or `f64`, with the border rule and the
//! memory layout as parameters.

use rayon::prelude::*;

/// Half-width, in standard deviations, at which the maps' smoothing ([`crate::smooth_fwhm`],
/// [`crate::gaussian_smooth3`]) truncates its kernel: `4σ` leaves out 6·10⁻⁵ of the mass.
pub const TRUNCATE_SIGMAS: f64 = 4.0;

/// A standard deviation at or below this (voxels), or NaN, leaves an axis untouched.
const MIN_SIGMA: f64 = 0.01;

/// The float type a [`Gaussian`] accumulates in: `f32` (registration: half the memory traffic)
/// or `f64` (the maps: exact to `f32` after rounding).
pub trait Real: Copy + Send + Sync + std::ops::Mul<Output = Self> + std::ops::AddAssign {
    /// The nearest value of this type.
    fn from_f64(x: f64) -> Self;
}

impl Real for f32 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl Real for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
}

/// What the kernel meets beyond the border of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edges {
    /// Taps outside are dropped and the remaining weights rescaled to sum to 1: a constant
    /// stays constant and nothing is pulled towards zero at the border. An axis of length 1 is
    /// left as it is.
    Renormalise,
    /// The outside counts as zero (a plain zero-padded convolution: the numerator and
    /// denominator of a normalised convolution).
    Zero,
}

/// Memory order of the buffer a [`Gaussian`] smooths, for an image of shape `[nx, ny, nz]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `i` fastest: voxel `[i, j, k]` at `i + nx (j + ny k)` (NIfTI's order).
    ColumnMajor,
    /// `k` fastest: voxel `[i, j, k]` at `(i ny + j) nz + k` (ndarray's standard layout).
    RowMajor,
}

/// Separable Gaussian smoothing: per-axis standard deviations in voxels, the kernel sampled at
/// integer offsets and truncated at `ceil(truncate · σ)` voxels each side, normalised to sum 1.
///
/// Each output is a sum over its taps in increasing index order, so the result does not depend
/// on the thread count. The axes are convolved in memory order, fastest first (the layout
/// changes the result by rounding only). NaNs spread to their neighbourhood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gaussian {
    /// Standard deviation along each image axis `[i, j, k]`, in voxels; at most 0.01 (or NaN)
    /// leaves an axis untouched.
    pub sigma: [f64; 3],
    /// Kernel half-width in standard deviations ([`TRUNCATE_SIGMAS`] for the maps).
    pub truncate: f64,
    /// The border rule.
    pub edges: Edges,
}

/// Sampled, normalised 1D Gaussian `exp(−x²/2σ²)` of standard deviation `sigma` (voxels) at the
/// integer offsets `x` within `ceil(truncate · sigma)`; `[1.0]` for `sigma` at most 0.01 or NaN.
pub fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f64> {
    if sigma.is_nan() || sigma <= MIN_SIGMA {
        return vec![1.0];
    }
    let r = (truncate * sigma).ceil() as i64;
    let mut k: Vec<f64> = (-r..=r)
        .map(|x| (-0.5 * (x as f64 / sigma).powi(2)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// The taps of every output position along an axis of length `n`: the first input index and
/// the weights (renormalised over the inside with [`Edges::Renormalise`]).
fn taps<T: Real>(n: usize, kernel: &[f64], edges: Edges) -> Vec<(usize, Vec<T>)> {
    let r = kernel.len() / 2;
    (0..n)
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(r), (i + r).min(n - 1));
            let ks = &kernel[lo + r - i..=hi + r - i];
            let scale = match edges {
                Edges::Renormalise => 1.0 / ks.iter().sum::<f64>(),
                Edges::Zero => 1.0,
            };
            (lo, ks.iter().map(|&k| T::from_f64(k * scale)).collect())
        })
        .collect()
}

/// `dst` = `src` convolved along `axis` of a buffer whose axis 0 is fastest (`dims` in that
/// order). Along axis 0 each line is computed on its own; along the others whole rows/planes
/// of `dims[0]·…·dims[axis−1]` contiguous values are combined at once (cache-friendly).
fn convolve_axis<T: Real>(
    src: &[T],
    dst: &mut [T],
    dims: [usize; 3],
    axis: usize,
    taps: &[(usize, Vec<T>)],
) {
    let n = dims[axis];
    if axis == 0 {
        dst.par_chunks_mut(n)
            .zip(src.par_chunks(n))
            .for_each(|(out, line)| {
                for (o, (lo, w)) in out.iter_mut().zip(taps) {
                    let mut acc = w[0] * line[*lo];
                    for (&w, &v) in w[1..].iter().zip(&line[lo + 1..]) {
                        acc += w * v;
                    }
                    *o = acc;
                }
            });
    } else {
        let inner: usize = dims[..axis].iter().product();
        dst.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(idx, out)| {
                let (outer, i) = (idx / n, idx % n);
                let (lo, w) = &taps[i];
                let row = |t: usize| &src[(outer * n + lo + t) * inner..][..inner];
                for (o, &v) in out.iter_mut().zip(row(0)) {
                    *o = w[0] * v;
                }
                for (t, &w) in w.iter().enumerate().skip(1) {
                    for (o, &v) in out.iter_mut().zip(row(t)) {
                        *o += w * v;
                    }
                }
            });
    }
}

impl Gaussian {
    /// Smooth `data`, a contiguous image of shape `shape = [nx, ny, nz]` stored in `layout`, in
    /// place (one scratch buffer of the same size is allocated when an axis is smoothed).
    ///
    /// # Panics
    /// When `data.len()` is not `nx·ny·nz`.
    pub fn smooth<T: Real>(&self, data: &mut [T], shape: [usize; 3], layout: Layout) {
        assert_eq!(
            data.len(),
            shape.iter().product::<usize>(),
            "buffer length vs image shape {shape:?}"
        );
        // dimensions and sigmas in memory order, fastest first
        let (dims, sigma) = match layout {
            Layout::ColumnMajor => (shape, self.sigma),
            Layout::RowMajor => (
                [shape[2], shape[1], shape[0]],
                [self.sigma[2], self.sigma[1], self.sigma[0]],
            ),
        };
        if data.is_empty() {
            return;
        }
        let mut scratch: Vec<T> = Vec::new();
        let mut in_data = true;
        for axis in 0..3 {
            let kernel = gaussian_kernel(sigma[axis], self.truncate);
            if kernel.len() == 1 || (self.edges == Edges::Renormalise && dims[axis] < 2) {
                continue;
            }
            let taps = taps::<T>(dims[axis], &kernel, self.edges);
            if scratch.is_empty() {
                scratch = data.to_vec();
            }
            if in_data {
                convolve_axis(data, &mut scratch, dims, axis, &taps);
            } else {
                convolve_axis(&scratch, data, dims, axis, &taps);
            }
            in_data = !in_data;
        }
        if !in_data {
            data.copy_from_slice(&scratch);
        }
    }
}
