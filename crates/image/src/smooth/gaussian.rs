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

/// `out` = one line `line` convolved (along the contiguous axis).
fn convolve_line<T: Real>(line: &[T], out: &mut [T], taps: &[(usize, Vec<T>)]) {
    for (o, (lo, w)) in out.iter_mut().zip(taps) {
        let mut acc = w[0] * line[*lo];
        for (&w, &v) in w[1..].iter().zip(&line[lo + 1..]) {
            acc += w * v;
        }
        *o = acc;
    }
}

/// `out` = output row `(lo, w)` of a block of contiguous rows of length `out.len()`: the sum
/// of `w[t]` times row `lo + t` of `rows`, whole rows at once (vectorisable).
fn convolve_row<T: Real>(rows: &[T], out: &mut [T], (lo, w): &(usize, Vec<T>)) {
    let inner = out.len();
    let row = |t: usize| &rows[(lo + t) * inner..][..inner];
    for (o, &v) in out.iter_mut().zip(row(0)) {
        *o = w[0] * v;
    }
    for (t, &w) in w.iter().enumerate().skip(1) {
        for (o, &v) in out.iter_mut().zip(row(t)) {
            *o += w * v;
        }
    }
}

/// Convolve `data` (axis 0 fastest, `dims` in that order) along `axis`, in place. Each block
/// that the axis runs through (a line along axis 0, a plane along axis 1, the whole buffer
/// along axis 2) is copied and its outputs computed from the copy: lines and planes in
/// parallel, the rows of the last axis in parallel.
fn convolve_axis<T: Real>(data: &mut [T], dims: [usize; 3], axis: usize, taps: &[(usize, Vec<T>)]) {
    let inner: usize = dims[..axis].iter().product();
    let block = inner * dims[axis];
    match axis {
        0 => data
            .par_chunks_mut(block)
            .for_each_init(Vec::new, |copy, line| {
                copy.clear();
                copy.extend_from_slice(line);
                convolve_line(copy, line, taps);
            }),
        1 => data
            .par_chunks_mut(block)
            .for_each_init(Vec::new, |copy, plane| {
                copy.clear();
                copy.extend_from_slice(plane);
                for (out, tap) in plane.chunks_mut(inner).zip(taps) {
                    convolve_row(copy, out, tap);
                }
            }),
        _ => {
            let copy = data.to_vec();
            data.par_chunks_mut(inner)
                .zip(taps)
                .for_each(|(out, tap)| convolve_row(&copy, out, tap));
        }
    }
}

impl Gaussian {
    /// Smooth `data`, a contiguous image of shape `shape = [nx, ny, nz]` stored in `layout`, in
    /// place (the slowest axis needs a copy of the whole buffer, the others of a line or plane
    /// per thread).
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
        for axis in 0..3 {
            let kernel = gaussian_kernel(sigma[axis], self.truncate);
            if kernel.len() == 1 || (self.edges == Edges::Renormalise && dims[axis] < 2) {
                continue;
            }
            convolve_axis(
                data,
                dims,
                axis,
                &taps::<T>(dims[axis], &kernel, self.edges),
            );
        }
    }
}
