//! Private numeric helpers: contiguous images (sampled by `cbflow_image::Trilinear`, smoothed by
//! `cbflow_image::Gaussian`), pyramids.

use cbflow_image::{Border, Edges, Gaussian, Layout, Trilinear};
use nalgebra::{Matrix3, Matrix4};
use ndarray::{Array3, ArrayView3, Zip};

/// A 3D image held in C order (`[i, j, k]`, `k` fastest) for fast indexed sampling.
#[derive(Debug, Clone)]
pub(crate) struct Img {
    pub data: Vec<f32>,
    pub dims: [usize; 3],
}

impl Img {
    pub fn from_array(a: Array3<f32>) -> Self {
        let d = a.dim();
        let data = if a.is_standard_layout() {
            a.into_raw_vec_and_offset().0
        } else {
            a.iter().copied().collect()
        };
        Self {
            data,
            dims: [d.0, d.1, d.2],
        }
    }

    pub fn zeros(dims: [usize; 3]) -> Self {
        Self {
            data: vec![0.0; dims[0] * dims[1] * dims[2]],
            dims,
        }
    }

    #[inline]
    pub fn idx(&self, i: usize, j: usize, k: usize) -> usize {
        (i * self.dims[1] + j) * self.dims[2] + k
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[self.idx(i, j, k)]
    }

    /// The trilinear sampler of this C-ordered image with the given border rule: its axes
    /// reversed (`k`, `j`, `i`), so that it interpolates in memory order.
    #[inline(always)]
    pub fn trilinear(&self, border: Border) -> Trilinear {
        let [n0, n1, n2] = self.dims;
        Trilinear::new([n2, n1, n0], [1, n2, n1 * n2], border)
    }

    /// Trilinear value at voxel coordinates `p`; `None` outside `[-0.5, n-0.5]` on any axis
    /// (points between the outermost voxel centre and the voxel edge are clamped to the edge).
    #[inline(always)]
    pub fn sample(&self, p: [f64; 3]) -> Option<f32> {
        let cell = self.trilinear(Border::Extent).cell(reversed(p))?;
        Some(cell.value(&self.data) as f32)
    }

    /// Trilinear value with coordinates clamped into the grid (edge extension).
    #[inline(always)]
    pub fn sample_clamped(&self, p: [f64; 3]) -> f32 {
        let cell = self.trilinear(Border::Clamp).cell(reversed(p));
        cell.expect("clamped: never outside").value(&self.data) as f32
    }

    /// Trilinear value and its exact gradient (per voxel unit, axes `[i, j, k]`) at `p`; `None`
    /// outside.
    #[inline(always)]
    pub fn sample_grad(&self, p: [f64; 3]) -> Option<(f64, [f64; 3])> {
        let cell = self.trilinear(Border::Extent).cell(reversed(p))?;
        let (v, g) = cell.value_grad(&self.data);
        Some((v, reversed(g)))
    }

    pub fn view(&self) -> ArrayView3<'_, f32> {
        ArrayView3::from_shape(self.dims, &self.data).expect("dims match data")
    }

    pub fn view_mut(&mut self) -> ndarray::ArrayViewMut3<'_, f32> {
        ndarray::ArrayViewMut3::from_shape(self.dims, &mut self.data).expect("dims match data")
    }

    pub fn min_max(&self) -> (f32, f32) {
        let mut lo = f32::INFINITY;
        let mut hi = f32::NEG_INFINITY;
        for &v in &self.data {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        (lo, hi)
    }
}

/// `[x, y, z]` → `[z, y, x]`: between an `[i, j, k]` index and a C-ordered grid's memory order.
#[inline(always)]
pub(crate) fn reversed<T: Copy>(p: [T; 3]) -> [T; 3] {
    [p[2], p[1], p[0]]
}

/// Kernel half-width in σ of registration's smoothing: 3σ (the pyramid's and the fields'
/// smoothing need no more, and the kernel is a quarter shorter than the maps' 4σ).
const TRUNCATE_SIGMAS: f64 = 3.0;

/// Separable Gaussian smoothing with per-axis σ in voxels (σ ≤ 0.01 leaves an axis untouched):
/// [`cbflow_image::Gaussian`] in `f32`, truncated at 3σ, weights renormalised at the borders,
/// in memory order (`k`, `j`, `i`; a non-standard layout is copied to the standard one first).
/// Each output is a fixed-order sum of its inputs, so the result is the same at any thread
/// count and memory layout.
pub(crate) fn smooth(mut a: ndarray::ArrayViewMut3<f32>, sigma: [f64; 3]) {
    let gaussian = Gaussian {
        sigma,
        truncate: TRUNCATE_SIGMAS,
        edges: Edges::Renormalise,
    };
    let (n0, n1, n2) = a.dim();
    match a.as_slice_mut() {
        Some(data) => gaussian.smooth(data, [n0, n1, n2], Layout::RowMajor),
        None => {
            // the same arithmetic whatever the layout: smooth a standard-layout copy
            let mut c = a.as_standard_layout().into_owned();
            let data = c.as_slice_mut().expect("standard layout");
            gaussian.smooth(data, [n0, n1, n2], Layout::RowMajor);
            a.assign(&c);
        }
    }
}

/// Every `s`-th voxel along each axis (after smoothing by the caller), and the new affine.
pub(crate) fn shrink(
    a: &Array3<f32>,
    affine: &Matrix4<f64>,
    s: usize,
) -> (Array3<f32>, Matrix4<f64>) {
    let (nd, coarse) = coarse_grid(a.dim(), affine, s, false);
    (
        Array3::from_shape_fn(nd, |(i, j, k)| a[[i * s, j * s, k * s]]),
        coarse,
    )
}

/// The grid of every `s`-th voxel of a grid of shape `d`: its shape (a partial block at each far
/// edge counts) and its affine, whose voxels sit on the first voxel of each block or, `centred`,
/// on the centre of the block.
fn coarse_grid(
    d: (usize, usize, usize),
    affine: &Matrix4<f64>,
    s: usize,
    centred: bool,
) -> ((usize, usize, usize), Matrix4<f64>) {
    let nd = (d.0.div_ceil(s), d.1.div_ceil(s), d.2.div_ceil(s));
    let mut sc = Matrix4::identity();
    let off = if centred { (s as f64 - 1.0) / 2.0 } else { 0.0 };
    for c in 0..3 {
        sc[(c, c)] = s as f64;
        sc[(c, 3)] = off;
    }
    (nd, affine * sc)
}

/// Mean over `s×s×s` blocks (partial blocks at the far edges average what they hold), and the
/// affine of the block centres.
pub(crate) fn block_mean(
    a: &Array3<f32>,
    affine: &Matrix4<f64>,
    s: usize,
) -> (Array3<f32>, Matrix4<f64>) {
    let d = a.dim();
    let (nd, coarse) = coarse_grid(d, affine, s, true);
    let mut out = Array3::<f32>::zeros(nd);
    Zip::indexed(&mut out).par_for_each(|(i, j, k), o| {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for a0 in i * s..((i + 1) * s).min(d.0) {
            for a1 in j * s..((j + 1) * s).min(d.1) {
                for a2 in k * s..((k + 1) * s).min(d.2) {
                    sum += a[[a0, a1, a2]] as f64;
                    n += 1;
                }
            }
        }
        *o = (sum / n as f64) as f32;
    });
    (out, coarse)
}

/// A moving image prepared for a pyramid level: Gaussian σ (mm) of smoothing at about
/// `spacing` (mm): block-averaged by the integer factor closest to `spacing / voxel` first (cheap
/// anti-aliasing), then smoothed by the remaining σ.
pub(crate) fn prepare_moving(
    m: ArrayView3<f32>,
    affine: &Matrix4<f64>,
    sigma_mm: f64,
    spacing: f64,
) -> (Array3<f32>, Matrix4<f64>) {
    let vox = [0, 1, 2]
        .map(|c| (affine[(0, c)].powi(2) + affine[(1, c)].powi(2) + affine[(2, c)].powi(2)).sqrt());
    let vmin = vox.iter().copied().fold(f64::INFINITY, f64::min);
    let sm = ((spacing / vmin).round() as usize).max(1);
    let clean = m.mapv(|x| if x.is_finite() { x } else { 0.0 });
    // total smoothing: the level σ, or half the level spacing when coarser (anti-aliasing)
    let target = if sm > 1 {
        sigma_mm.max(0.5 * sm as f64 * vmin)
    } else {
        sigma_mm
    };
    let (mut a, aff) = if sm > 1 {
        block_mean(&clean, affine, sm)
    } else {
        (clean, *affine)
    };
    let sig = [0, 1, 2].map(|c| {
        let block_var = if sm > 1 {
            ((sm * sm) as f64 - 1.0) / 12.0 * vox[c] * vox[c]
        } else {
            0.0
        };
        (target * target - block_var).max(0.0).sqrt() / (vox[c] * sm as f64)
    });
    smooth(a.view_mut(), sig);
    (a, aff)
}

/// Same for boolean masks.
pub(crate) fn shrink_mask(a: &Array3<bool>, s: usize) -> Array3<bool> {
    let d = a.dim();
    let nd = (d.0.div_ceil(s), d.1.div_ceil(s), d.2.div_ceil(s));
    Array3::from_shape_fn(nd, |(i, j, k)| a[[i * s, j * s, k * s]])
}

/// Apply a homogeneous matrix to a point.
#[inline]
pub(crate) fn mul_point(m: &Matrix4<f64>, p: [f64; 3]) -> [f64; 3] {
    [
        m[(0, 0)] * p[0] + m[(0, 1)] * p[1] + m[(0, 2)] * p[2] + m[(0, 3)],
        m[(1, 0)] * p[0] + m[(1, 1)] * p[1] + m[(1, 2)] * p[2] + m[(1, 3)],
        m[(2, 0)] * p[0] + m[(2, 1)] * p[1] + m[(2, 2)] * p[2] + m[(2, 3)],
    ]
}

/// The 3×3 linear part of a homogeneous matrix.
pub(crate) fn linear_part(m: &Matrix4<f64>) -> Matrix3<f64> {
    m.fixed_view::<3, 3>(0, 0).into_owned()
}

/// Inverse of a homogeneous matrix, `None` if singular.
pub(crate) fn inv4(m: &Matrix4<f64>) -> Option<Matrix4<f64>> {
    m.try_inverse()
}

/// Deterministic pseudo-random number in `[0, 1)` from an index and a seed (SplitMix64).
#[inline]
pub(crate) fn hash01(index: u64, seed: u64) -> f64 {
    let mut z = index
        .wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trilinear_reproduces_linear_function_and_gradient() {
        let a = Array3::from_shape_fn((5, 6, 7), |(i, j, k)| {
            (1.0 + 2.0 * i as f64 - 0.5 * j as f64 + 3.0 * k as f64) as f32
        });
        let img = Img::from_array(a);
        let p = [1.3, 2.7, 4.2];
        let (v, g) = img.sample_grad(p).unwrap();
        let want = 1.0 + 2.0 * 1.3 - 0.5 * 2.7 + 3.0 * 4.2;
        assert!((v - want).abs() < 1e-5);
        assert!(
            (g[0] - 2.0).abs() < 1e-5 && (g[1] + 0.5).abs() < 1e-5 && (g[2] - 3.0).abs() < 1e-5
        );
        assert!((img.sample(p).unwrap() as f64 - want).abs() < 1e-4);
        assert!(img.sample([-0.6, 0.0, 0.0]).is_none());
    }
}
