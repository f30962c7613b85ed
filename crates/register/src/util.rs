//! Private numeric helpers: contiguous images, trilinear sampling, Gaussian smoothing, pyramids.

use nalgebra::{Matrix3, Matrix4};
use ndarray::{Array3, ArrayView3, Zip};
use rayon::prelude::*;

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

    /// Trilinear value at voxel coordinates `p`; `None` outside `[-0.5, n-0.5]` on any axis
    /// (points between the outermost voxel centre and the voxel edge are clamped to the edge).
    #[inline]
    pub fn sample(&self, p: [f64; 3]) -> Option<f32> {
        for a in 0..3 {
            if !(p[a] >= -0.5 && p[a] <= self.dims[a] as f64 - 0.5) {
                return None;
            }
        }
        Some(self.sample_clamped(p))
    }

    /// Trilinear value with coordinates clamped into the grid (edge extension).
    #[inline]
    pub fn sample_clamped(&self, p: [f64; 3]) -> f32 {
        let t = self.cell(p);
        (t.c0 * (1.0 - t.f[0]) + t.c1 * t.f[0]) as f32
    }

    /// The trilinear cell of `p` (coordinates clamped into the grid): its corner values, the
    /// fractions, and the interpolations along k, then j, that the value and its gradient share.
    #[inline(always)]
    fn cell(&self, p: [f64; 3]) -> Cell {
        let (i0, i1, fi) = corner(p[0], self.dims[0]);
        let (j0, j1, fj) = corner(p[1], self.dims[1]);
        let (k0, k1, fk) = corner(p[2], self.dims[2]);
        let d = &self.data;
        let (ny, nz) = (self.dims[1], self.dims[2]);
        let at = |i: usize, j: usize, k: usize| d[(i * ny + j) * nz + k] as f64;
        let v = [
            at(i0, j0, k0),
            at(i0, j0, k1),
            at(i0, j1, k0),
            at(i0, j1, k1),
            at(i1, j0, k0),
            at(i1, j0, k1),
            at(i1, j1, k0),
            at(i1, j1, k1),
        ];
        let c00 = v[0] * (1.0 - fk) + v[1] * fk;
        let c01 = v[2] * (1.0 - fk) + v[3] * fk;
        let c10 = v[4] * (1.0 - fk) + v[5] * fk;
        let c11 = v[6] * (1.0 - fk) + v[7] * fk;
        Cell {
            v,
            f: [fi, fj, fk],
            moves: [i1 != i0, j1 != j0, k1 != k0],
            c: [c00, c01, c10, c11],
            c0: c00 * (1.0 - fj) + c01 * fj,
            c1: c10 * (1.0 - fj) + c11 * fj,
        }
    }

    /// Trilinear value and its exact gradient (per voxel unit) at `p`; `None` outside.
    #[inline]
    pub fn sample_grad(&self, p: [f64; 3]) -> Option<(f64, [f64; 3])> {
        for a in 0..3 {
            if !(p[a] >= -0.5 && p[a] <= self.dims[a] as f64 - 0.5) {
                return None;
            }
        }
        let Cell {
            v: [v000, v001, v010, v011, v100, v101, v110, v111],
            f: [fi, fj, _],
            moves,
            c: [c00, c01, c10, c11],
            c0,
            c1,
        } = self.cell(p);
        let val = c0 * (1.0 - fi) + c1 * fi;
        let gi = if moves[0] { c1 - c0 } else { 0.0 };
        let gj = if moves[1] {
            (c01 - c00) * (1.0 - fi) + (c11 - c10) * fi
        } else {
            0.0
        };
        let gk = if moves[2] {
            let e00 = v001 - v000;
            let e01 = v011 - v010;
            let e10 = v101 - v100;
            let e11 = v111 - v110;
            (e00 * (1.0 - fj) + e01 * fj) * (1.0 - fi) + (e10 * (1.0 - fj) + e11 * fj) * fi
        } else {
            0.0
        };
        Some((val, [gi, gj, gk]))
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

/// A trilinear cell ([`Img::cell`]): corner values (index `4i + 2j + k` of the corner), the
/// fractions along i, j, k, whether each axis has two distinct corners (not at a clamped edge),
/// the four interpolations along k (`c[2i + j]`) and the two along j.
struct Cell {
    v: [f64; 8],
    f: [f64; 3],
    moves: [bool; 3],
    c: [f64; 4],
    c0: f64,
    c1: f64,
}

/// Lower/upper corner indices and the fraction, clamped into `[0, n-1]`.
#[inline]
fn corner(x: f64, n: usize) -> (usize, usize, f64) {
    if n == 1 {
        return (0, 0, 0.0);
    }
    let x = x.clamp(0.0, (n - 1) as f64);
    // x ≥ 0 after the clamp: truncation is the floor
    let x0 = (x as usize).min(n - 2);
    (x0, x0 + 1, x - x0 as f64)
}

/// Gaussian kernel of standard deviation `sigma` (voxels), truncated at 3σ, normalised.
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let r = (3.0 * sigma).ceil().max(1.0) as usize;
    let mut k: Vec<f64> = (0..=2 * r)
        .map(|i| (-((i as f64 - r as f64).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// Separable Gaussian smoothing with per-axis σ in voxels (σ ≤ 0.01 leaves an axis untouched);
/// weights are renormalised at the borders. Each output is a fixed-order sum of its inputs, so
/// the result is the same at any thread count and memory layout. The array is smoothed plane by
/// plane and row by row (contiguous memory; a non-standard layout is copied first).
pub(crate) fn smooth(mut a: ndarray::ArrayViewMut3<f32>, sigma: [f64; 3]) {
    if !a.is_standard_layout() {
        // the same arithmetic whatever the layout: smooth a standard-layout copy
        let mut c = a.as_standard_layout().into_owned();
        smooth(c.view_mut(), sigma);
        a.assign(&c);
        return;
    }
    let (n0, n1, n2) = a.dim();
    let data = a.as_slice_mut().expect("standard layout");
    // weights of every output position along an axis: (first input, weights renormalised)
    let weights = |n: usize, k: &[f64]| -> Vec<(usize, Vec<f32>)> {
        let r = (k.len() - 1) / 2;
        (0..n)
            .map(|i| {
                let lo = i.saturating_sub(r);
                let hi = (i + r).min(n - 1);
                let w: f64 = (lo..=hi).map(|t| k[t + r - i]).sum();
                (lo, (lo..=hi).map(|t| (k[t + r - i] / w) as f32).collect())
            })
            .collect()
    };
    if sigma[2] > 0.01 && n2 >= 2 {
        let w = weights(n2, &gaussian_kernel(sigma[2]));
        data.par_chunks_mut(n2).for_each(|row| {
            let src = row.to_vec();
            for (o, (lo, ws)) in row.iter_mut().zip(&w) {
                *o = ws.iter().zip(&src[*lo..]).map(|(a, b)| a * b).sum();
            }
        });
    }
    if sigma[1] > 0.01 && n1 >= 2 {
        let w = weights(n1, &gaussian_kernel(sigma[1]));
        data.par_chunks_mut(n1 * n2).for_each(|plane| {
            let src = plane.to_vec();
            for (j, (lo, ws)) in w.iter().enumerate() {
                let out = &mut plane[j * n2..(j + 1) * n2];
                out.fill(0.0);
                for (t, &wt) in ws.iter().enumerate() {
                    let row = &src[(lo + t) * n2..(lo + t + 1) * n2];
                    for (o, v) in out.iter_mut().zip(row) {
                        *o += wt * v;
                    }
                }
            }
        });
    }
    if sigma[0] > 0.01 && n0 >= 2 {
        let w = weights(n0, &gaussian_kernel(sigma[0]));
        let src = data.to_vec();
        let plane = n1 * n2;
        data.par_chunks_mut(plane)
            .zip(w.par_iter())
            .for_each(|(out, (lo, ws))| {
                out.fill(0.0);
                for (t, &wt) in ws.iter().enumerate() {
                    let p = &src[(lo + t) * plane..(lo + t + 1) * plane];
                    for (o, v) in out.iter_mut().zip(p) {
                        *o += wt * v;
                    }
                }
            });
    }
}

/// [`smooth`] one lane at a time (the reference the plane/row version is tested against).
#[cfg(test)]
fn smooth_lanes(mut a: ndarray::ArrayViewMut3<f32>, sigma: [f64; 3]) {
    for ax in 0..3 {
        if sigma[ax] <= 0.01 || a.len_of(ndarray::Axis(ax)) < 2 {
            continue;
        }
        let k = gaussian_kernel(sigma[ax]);
        let r = (k.len() - 1) / 2;
        Zip::from(a.lanes_mut(ndarray::Axis(ax))).par_for_each(|mut lane| {
            let src: Vec<f32> = lane.iter().copied().collect();
            let n = src.len();
            for i in 0..n {
                let lo = i.saturating_sub(r);
                let hi = (i + r).min(n - 1);
                let mut s = 0.0f64;
                let mut w = 0.0f64;
                for t in lo..=hi {
                    let kw = k[t + r - i];
                    s += kw * src[t] as f64;
                    w += kw;
                }
                lane[i] = (s / w) as f32;
            }
        });
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

    #[test]
    fn smoothing_preserves_constant_and_mass_of_impulse() {
        let mut a = Array3::<f32>::from_elem((9, 9, 9), 3.0);
        smooth(a.view_mut(), [1.5, 1.0, 0.7]);
        assert!(a.iter().all(|v| (v - 3.0).abs() < 1e-5));
        let mut b = Array3::<f32>::zeros((21, 21, 21));
        b[[10, 10, 10]] = 1.0;
        smooth(b.view_mut(), [1.5, 1.5, 1.5]);
        let s: f32 = b.iter().sum();
        assert!((s - 1.0).abs() < 1e-4);
        // variance along i equals sigma^2
        let var: f64 = b
            .indexed_iter()
            .map(|((i, _, _), v)| (i as f64 - 10.0).powi(2) * *v as f64)
            .sum();
        assert!((var - 2.25).abs() < 0.05, "{var}");
    }
}

#[cfg(test)]
mod smooth_tests {
    use super::*;

    /// The plane/row version equals the lane-by-lane reference (to f32 rounding).
    #[test]
    fn fast_smoothing_equals_the_lane_reference() {
        let a = Array3::from_shape_fn((17, 13, 11), |(i, j, k)| {
            ((i * 31 + j * 17 + k * 7) % 23) as f32 - 0.3 * k as f32
        });
        for sigma in [[1.3, 0.7, 2.2], [0.0, 3.0, 0.5], [4.0, 0.0, 0.0]] {
            let mut fast = a.clone();
            smooth(fast.view_mut(), sigma);
            let mut slow = a.clone();
            smooth_lanes(slow.view_mut(), sigma);
            let worst = fast
                .iter()
                .zip(slow.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{sigma:?}: {worst}");
        }
    }
}
