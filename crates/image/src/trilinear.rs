//! Trilinear interpolation: the one kernel behind linear resampling ([`crate::Sampler`]),
//! registration's sampling (values and exact gradients, edge-clamped displacement fields),
//! displacement fields and the synthetic data's point sampling.
//!
//! A [`Trilinear`] describes a strided 3D grid and what lies beyond its border ([`Border`]);
//! [`Trilinear::cell`] finds the cell of a point (the flat offsets of its eight corners and the
//! fractions along each axis). The cell then interpolates any buffer laid out on that grid:
//! one channel ([`Cell::value`]), the value and its exact gradient ([`Cell::value_grad`]), or
//! several channels with the same weights (one call per channel: separate buffers of the same
//! shape, or `&data[c..]` for channels interleaved as the fastest axis).
//!
//! Arithmetic is `f64` (corner values widened from `f32`): nested linear interpolations
//! `a (1 − t) + b t` along the grid's axis 0, then axis 1, then axis 2. A caller holding
//! C-ordered memory (`k` fastest) describes the grid with its axes reversed, so that the
//! interpolation runs in memory order; the order changes results only by rounding.

/// What a point near or beyond the grid's border gives. Indices are fractional voxel indices,
/// voxel centres at the integers `0..n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// Outside the voxels' own extent `[-0.5, n − 0.5]` on any axis: no value (`None`; NaN
    /// is outside). In the outer half voxel the index is clamped to `[0, n − 1]`, so the edge
    /// value extends to the voxel's edge (ITK/ANTs count the field of view the same way).
    Extent,
    /// Every point has a value: indices are clamped to `[0, n − 1]` (edge extension). A NaN
    /// index gives a NaN value.
    Clamp,
    /// Zero padding: the grid continues with zeros, so the value falls linearly to 0 between
    /// the edge voxel's centre and one voxel beyond it; no value (`None`) at or beyond that, or
    /// for NaN.
    Zero,
}

/// Trilinear interpolation on a 3D grid of shape `dims` held in a buffer with element strides
/// `strides` (any order; an interleaved channel is a buffer offset, see [`Cell::value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trilinear {
    dims: [usize; 3],
    strides: [usize; 3],
    border: Border,
}

/// Offset of a corner outside the grid ([`Border::Zero`]): beyond any buffer, so it reads 0.
const ABSENT: usize = usize::MAX;

/// The cell of one point in a [`Trilinear`] grid: its corners and fractions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Buffer offsets of the corners, corner `c = a0 + 2 a1 + 4 a2` (bit `a` set: the upper
    /// corner along axis `a`); [`ABSENT`] for a corner outside the grid.
    off: [usize; 8],
    /// Fractions along each axis, in `[0, 1]`.
    t: [f64; 3],
    /// Whether each axis has two distinct corners (not an axis of length 1).
    moves: [bool; 3],
}

/// True when every fractional index lies within the voxels' extent `[-0.5, n − 0.5]` (false
/// for NaN).
#[inline]
pub(crate) fn within_extent(p: [f64; 3], dims: [usize; 3]) -> bool {
    (0..3).all(|a| p[a] >= -0.5 && p[a] <= dims[a] as f64 - 0.5)
}

/// The lower corner and the fraction along an axis of length `n`, the index clamped into
/// `[0, n − 1]`; `(0, 0)` for an axis of length 1.
#[inline(always)]
fn clamped_axis(x: f64, n: usize) -> (usize, f64) {
    if n < 2 {
        return (0, 0.0);
    }
    let x = x.clamp(0.0, (n - 1) as f64);
    // x ≥ 0 after the clamp (or NaN, which casts to 0): truncation is the floor
    let x0 = (x as usize).min(n - 2);
    (x0, x - x0 as f64)
}

impl Trilinear {
    /// A grid of shape `dims` (each ≥ 1) whose voxel `[i, j, k]` is at buffer offset
    /// `i·strides[0] + j·strides[1] + k·strides[2]`.
    #[inline]
    pub fn new(dims: [usize; 3], strides: [usize; 3], border: Border) -> Self {
        Self {
            dims,
            strides,
            border,
        }
    }

    /// The grid's shape.
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }

    /// The cell of the fractional voxel index `p`, or `None` where the border rule gives no
    /// value (never for [`Border::Clamp`]).
    #[inline(always)]
    pub fn cell(&self, p: [f64; 3]) -> Option<Cell> {
        match self.border {
            Border::Extent => within_extent(p, self.dims).then(|| self.clamped(p)),
            Border::Clamp => Some(self.clamped(p)),
            Border::Zero => self.zero_padded(p),
        }
    }

    /// The cell with indices clamped into `[0, n − 1]`; an axis of length 1 has fraction 0.
    /// (Written out per axis, not as a loop: this is the inner loop of registration.)
    #[inline(always)]
    fn clamped(&self, p: [f64; 3]) -> Cell {
        let [n0, n1, n2] = self.dims;
        let (x0, t0) = clamped_axis(p[0], n0);
        let (x1, t1) = clamped_axis(p[1], n1);
        let (x2, t2) = clamped_axis(p[2], n2);
        let [s0, s1, s2] = self.strides;
        let base = x0 * s0 + x1 * s1 + x2 * s2;
        let moves = [n0 > 1, n1 > 1, n2 > 1];
        let s0 = if moves[0] { s0 } else { 0 };
        let s1 = if moves[1] { s1 } else { 0 };
        let s2 = if moves[2] { s2 } else { 0 };
        Cell {
            off: [
                base,
                base + s0,
                base + s1,
                base + s0 + s1,
                base + s2,
                base + s0 + s2,
                base + s1 + s2,
                base + s0 + s1 + s2,
            ],
            t: [t0, t1, t2],
            moves,
        }
    }

    /// The cell in the zero-padded grid: corners outside it are absent (value 0).
    #[inline]
    fn zero_padded(&self, p: [f64; 3]) -> Option<Cell> {
        let mut lower = [0i64; 3];
        let mut t = [0f64; 3];
        for a in 0..3 {
            if !(p[a] > -1.0 && p[a] < self.dims[a] as f64) {
                return None;
            }
            // p > -1: truncation of p + 1 is its floor plus one
            lower[a] = (p[a] + 1.0) as i64 - 1;
            t[a] = p[a] - lower[a] as f64;
        }
        let mut off = [ABSENT; 8];
        for (c, o) in off.iter_mut().enumerate() {
            let idx: [i64; 3] = std::array::from_fn(|a| lower[a] + ((c >> a) & 1) as i64);
            if (0..3).all(|a| idx[a] >= 0 && idx[a] < self.dims[a] as i64) {
                *o = (0..3).map(|a| idx[a] as usize * self.strides[a]).sum();
            }
        }
        Some(Cell {
            off,
            t,
            moves: [true; 3],
        })
    }
}

impl Cell {
    /// The fractions along each axis, in `[0, 1]`.
    pub fn fractions(&self) -> [f64; 3] {
        self.t
    }

    /// The corner values of `data`; a corner outside the grid ([`Border::Zero`]) reads 0.
    /// (`get` rather than indexing: the compiler selects without a branch, which makes the
    /// gather twice as fast as bounds-checked indexing. The arrays of this inner loop are
    /// written out: `array::map` showed in SyN's profile as an out-of-line call.)
    #[inline(always)]
    fn corners(&self, data: &[f32]) -> [f64; 8] {
        debug_assert!(
            self.off.iter().all(|&o| o == ABSENT || o < data.len()),
            "a corner of the cell lies beyond the buffer: strides or dims do not match it"
        );
        let at = |o: usize| data.get(o).map_or(0.0, |&x| f64::from(x));
        let o = &self.off;
        [
            at(o[0]),
            at(o[1]),
            at(o[2]),
            at(o[3]),
            at(o[4]),
            at(o[5]),
            at(o[6]),
            at(o[7]),
        ]
    }

    /// The interpolations of the corner values `v` along axis 0 (`c[a1 + 2 a2]`), then axis 1
    /// (`[c0, c1]`, at the lower and upper corner along axis 2).
    #[inline(always)]
    fn lerps(&self, v: &[f64; 8]) -> ([f64; 4], [f64; 2]) {
        let [t0, t1, _] = self.t;
        let c = [
            v[0] * (1.0 - t0) + v[1] * t0,
            v[2] * (1.0 - t0) + v[3] * t0,
            v[4] * (1.0 - t0) + v[5] * t0,
            v[6] * (1.0 - t0) + v[7] * t0,
        ];
        let c0 = c[0] * (1.0 - t1) + c[1] * t1;
        let c1 = c[2] * (1.0 - t1) + c[3] * t1;
        (c, [c0, c1])
    }

    /// The interpolated value of `data` (a buffer laid out as the [`Trilinear`] grid that made
    /// this cell; pass `&data[c..]` for channel `c` of interleaved channels).
    #[inline(always)]
    pub fn value(&self, data: &[f32]) -> f64 {
        self.values([data])[0]
    }

    /// The interpolated values of several buffers on the same grid (channels: separate buffers,
    /// or `&data[c..]` of interleaved ones) with the cell's weights; each equals
    /// [`Cell::value`] of its buffer. All corners are gathered first (three channels take
    /// about as long as one).
    #[inline(always)]
    pub fn values<const N: usize>(&self, data: [&[f32]; N]) -> [f64; N] {
        let t2 = self.t[2];
        let mut corners = [[0.0; 8]; N];
        for (v, d) in corners.iter_mut().zip(data) {
            *v = self.corners(d);
        }
        let mut out = [0.0; N];
        for (o, v) in out.iter_mut().zip(&corners) {
            let (_, [c0, c1]) = self.lerps(v);
            *o = c0 * (1.0 - t2) + c1 * t2;
        }
        out
    }

    /// The interpolated values of several `f32` buffers on the same grid in `f32` arithmetic, by
    /// product weights: corner `c` (`c = a0 + 2 a1 + 4 a2`, in that order) weighs
    /// `w2 · w1 · w0` (multiplied left to right, `w_a = t_a` at the upper corner along axis `a`,
    /// `1 − t_a` at the lower, `t_a` rounded to `f32`), and the eight products are summed in
    /// corner order. The same interpolant as [`Cell::values`] up to rounding, in single
    /// precision and without widening: what SyN's velocity fields are sampled with, millions of
    /// times per level, where it is measurably faster than the `f64` lerps (about 4 % of a SyN
    /// registration) and keeps its results as they were.
    #[inline(always)]
    pub fn product_weighted_f32<const N: usize>(&self, data: [&[f32]; N]) -> [f32; N] {
        let t = self.t.map(|x| x as f32);
        let f = |a: usize, upper: bool| if upper { t[a] } else { 1.0 - t[a] };
        let at = |d: &[f32], o: usize| d.get(o).copied().unwrap_or(0.0);
        let mut out = [0.0f32; N];
        for (c, &o) in self.off.iter().enumerate() {
            let w = f(2, c & 4 != 0) * f(1, c & 2 != 0) * f(0, c & 1 != 0);
            for (acc, d) in out.iter_mut().zip(&data) {
                *acc += w * at(d, o);
            }
        }
        out
    }

    /// The interpolated value of `data` and its exact gradient (per voxel, in the grid's axis
    /// order): the derivative of the trilinear interpolant within the cell. An axis of length 1
    /// has gradient 0; with [`Border::Clamp`]/[`Border::Extent`] a point clamped at the border
    /// takes the edge cell's slope.
    #[inline(always)]
    pub fn value_grad(&self, data: &[f32]) -> (f64, [f64; 3]) {
        let v = self.corners(data);
        let (c, [c0, c1]) = self.lerps(&v);
        let [_, t1, t2] = self.t;
        let value = c0 * (1.0 - t2) + c1 * t2;
        let g2 = if self.moves[2] { c1 - c0 } else { 0.0 };
        let g1 = if self.moves[1] {
            (c[1] - c[0]) * (1.0 - t2) + (c[3] - c[2]) * t2
        } else {
            0.0
        };
        let g0 = if self.moves[0] {
            let e = [v[1] - v[0], v[3] - v[2], v[5] - v[4], v[7] - v[6]];
            (e[0] * (1.0 - t1) + e[1] * t1) * (1.0 - t2) + (e[2] * (1.0 - t1) + e[3] * t1) * t2
        } else {
            0.0
        };
        (value, [g0, g1, g2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[4, 5, 3]` grid of `f(i, j, k)` and its trilinear sampler: C-ordered with the axes
    /// reversed (memory order), as registration holds its images, or column-major (`i`
    /// fastest) with the axes in their own order.
    fn grid(
        f: impl Fn(f64, f64, f64) -> f64,
        c_order: bool,
        border: Border,
    ) -> (Vec<f32>, Trilinear) {
        let d = [4usize, 5, 3];
        let a =
            ndarray::Array3::from_shape_fn(d, |(i, j, k)| f(i as f64, j as f64, k as f64) as f32);
        if c_order {
            let lin = Trilinear::new([d[2], d[1], d[0]], [1, d[2], d[1] * d[2]], border);
            (a.iter().copied().collect(), lin)
        } else {
            let lin = Trilinear::new(d, [1, d[0], d[0] * d[1]], border);
            (a.t().iter().copied().collect(), lin)
        }
    }

    /// `2 + 3i − 2j + 5k` and `(1 + i)(2 − j)(3 + k)`: trilinear interpolation reproduces every
    /// multilinear function exactly (values here are integers, exact in `f32`).
    fn linear(i: f64, j: f64, k: f64) -> f64 {
        2.0 + 3.0 * i - 2.0 * j + 5.0 * k
    }
    fn multilinear(i: f64, j: f64, k: f64) -> f64 {
        (1.0 + i) * (2.0 - j) * (3.0 + k)
    }

    const POINTS: [[f64; 3]; 5] = [
        [0.0, 0.0, 0.0],
        [1.25, 2.5, 0.75],
        [2.9, 0.1, 1.5],
        [3.0, 4.0, 2.0],
        [0.5, 3.999, 1.0001],
    ];

    #[test]
    fn reproduces_multilinear_functions_and_their_gradients_in_either_order() {
        for (f, grad) in [
            (
                linear as fn(f64, f64, f64) -> f64,
                (|_: [f64; 3]| [3.0, -2.0, 5.0]) as fn([f64; 3]) -> [f64; 3],
            ),
            (multilinear, |p: [f64; 3]| {
                [
                    (2.0 - p[1]) * (3.0 + p[2]),
                    -(1.0 + p[0]) * (3.0 + p[2]),
                    (1.0 + p[0]) * (2.0 - p[1]),
                ]
            }),
        ] {
            let (cd, c) = grid(f, true, Border::Extent);
            let (fd, fm) = grid(f, false, Border::Extent);
            for p in POINTS {
                let want = f(p[0], p[1], p[2]);
                let g = grad(p);
                let (v, gr) = c.cell([p[2], p[1], p[0]]).unwrap().value_grad(&cd);
                let (w, gf) = fm.cell(p).unwrap().value_grad(&fd);
                assert!(
                    (v - want).abs() < 1e-12 && (w - want).abs() < 1e-12,
                    "{p:?}"
                );
                assert_eq!(v, c.cell([p[2], p[1], p[0]]).unwrap().value(&cd));
                for a in 0..3 {
                    assert!((gr[2 - a] - g[a]).abs() < 1e-12, "{p:?} axis {a}");
                    assert!((gf[a] - g[a]).abs() < 1e-12, "{p:?} axis {a}");
                }
            }
        }
    }

    /// The nested interpolation equals the textbook sum of corner values times the products of
    /// the linear weights (to rounding), on random values and points.
    #[test]
    fn equals_the_weighted_sum_of_corners() {
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let d = [6usize, 4, 5];
        let data: Vec<f32> = (0..120).map(|_| (next() * 20.0 - 10.0) as f32).collect();
        let lin = Trilinear::new(d, [1, 6, 24], Border::Clamp);
        for _ in 0..200 {
            let p = [next() * 5.0, next() * 3.0, next() * 4.0];
            let b = p.map(|x| x.floor() as usize);
            let mut want = 0.0;
            for c in 0..8usize {
                let up = [c & 1, (c >> 1) & 1, (c >> 2) & 1];
                let idx: [usize; 3] = std::array::from_fn(|a| (b[a] + up[a]).min(d[a] - 1));
                let w: f64 = (0..3)
                    .map(|a| {
                        let t = p[a] - b[a] as f64;
                        if up[a] == 1 { t } else { 1.0 - t }
                    })
                    .product();
                want += w * f64::from(data[idx[0] + 6 * idx[1] + 24 * idx[2]]);
            }
            let got = lin.cell(p).unwrap().value(&data);
            assert!((got - want).abs() < 1e-12, "{p:?}: {got} vs {want}");
        }
    }

    #[test]
    fn border_rules() {
        let (d, extent) = grid(linear, false, Border::Extent);
        let (_, clamp) = grid(linear, false, Border::Clamp);
        let (_, zero) = grid(linear, false, Border::Zero);
        let at = |l: &Trilinear, p: [f64; 3]| l.cell(p).map(|c| c.value(&d));
        let edge = linear(0.0, 2.0, 1.0);
        // inside: the three rules agree
        for p in POINTS {
            let v = at(&extent, p);
            assert_eq!(v, at(&clamp, p));
            assert_eq!(v, at(&zero, p));
        }
        // the outer half voxel takes the edge value; beyond it, nothing (extent) or the edge
        // value (clamp); NaN is outside except for clamp, where it gives NaN
        assert_eq!(at(&extent, [-0.5, 2.0, 1.0]), Some(edge));
        assert_eq!(at(&extent, [-0.2, 2.0, 1.0]), Some(edge));
        assert_eq!(at(&extent, [-0.51, 2.0, 1.0]), None);
        assert_eq!(at(&extent, [0.0, 2.0, 2.51]), None);
        assert_eq!(at(&extent, [f64::NAN, 2.0, 1.0]), None);
        assert_eq!(at(&clamp, [-7.0, 2.0, 1.0]), Some(edge));
        assert_eq!(at(&clamp, [5.0, 9.0, -3.0]), Some(linear(3.0, 4.0, 0.0)));
        assert!(at(&clamp, [f64::NAN, 2.0, 1.0]).unwrap().is_nan());
        // zero padding: half the edge value half a voxel out, a quarter a further quarter out
        assert_eq!(at(&zero, [-0.5, 2.0, 1.0]), Some(0.5 * edge));
        assert_eq!(at(&zero, [-0.75, 2.0, 1.0]), Some(0.25 * edge));
        assert_eq!(
            at(&zero, [3.5, 2.0, 1.0]),
            Some(0.5 * linear(3.0, 2.0, 1.0))
        );
        assert_eq!(at(&zero, [-1.0, 2.0, 1.0]), None);
        assert_eq!(at(&zero, [0.0, 5.0, 1.0]), None);
        assert_eq!(at(&zero, [0.0, 2.0, f64::NAN]), None);
    }

    #[test]
    fn clamped_gradient_is_the_edge_slope_and_zero_on_a_flat_axis() {
        let (d, clamp) = grid(linear, false, Border::Clamp);
        let (_, g) = clamp.cell([-3.0, 7.0, 1.5]).unwrap().value_grad(&d);
        assert_eq!(g, [3.0, -2.0, 5.0]);
        // one plane (k of length 1): no slope along k, whatever the index
        let flat = Trilinear::new([4, 5, 1], [1, 4, 20], Border::Clamp);
        let (v, g) = flat.cell([1.5, 2.0, 0.7]).unwrap().value_grad(&d[..20]);
        assert_eq!(v, linear(1.5, 2.0, 0.0));
        assert_eq!(g, [3.0, -2.0, 0.0]);
    }

    #[test]
    fn interleaved_channels_share_the_cell_and_equal_one_channel_alone() {
        // channel c of voxel (i, j, k) at ((k·5 + j)·4 + i)·2 + c
        let mut data = Vec::new();
        for k in 0..3 {
            for j in 0..5 {
                for i in 0..4 {
                    let (i, j, k) = (i as f64, j as f64, k as f64);
                    data.push(linear(i, j, k) as f32);
                    data.push(multilinear(i, j, k) as f32);
                }
            }
        }
        let lin = Trilinear::new([4, 5, 3], [2, 8, 40], Border::Zero);
        for p in [[1.25, 2.5, 0.75], [-0.5, 4.5, 2.25], [3.9, -0.1, 0.0]] {
            let cell = lin.cell(p).unwrap();
            let [a, b] = cell.values([&data[..], &data[1..]]);
            // each channel as interpolated alone, to the bit
            assert_eq!(a.to_bits(), cell.value(&data).to_bits());
            assert_eq!(b.to_bits(), cell.value(&data[1..]).to_bits());
            if p == [1.25, 2.5, 0.75] {
                assert!((a - linear(p[0], p[1], p[2])).abs() < 1e-12);
                assert!((b - multilinear(p[0], p[1], p[2])).abs() < 1e-12);
            }
        }
    }

    /// The `f32` product-weight sum is the one SyN sampled with before there was one sampler
    /// (written out here as it was: clamped indices, eight product weights multiplied i, j, k,
    /// summed corner by corner with k fastest), bit for bit, and the same interpolant as the
    /// `f64` lerps up to single-precision rounding.
    #[test]
    fn product_weights_in_f32_are_syn_s_old_formula() {
        let d = [7usize, 6, 5];
        let strides = [d[1] * d[2], d[2], 1];
        let data: Vec<f32> = (0..d[0] * d[1] * d[2])
            .map(|x| ((x * 7919) % 1013) as f32 * 0.37 - 150.0)
            .collect();
        let old = |p: [f64; 3]| -> f32 {
            let mut base = [0usize; 3];
            let mut fr = [0.0f32; 3];
            let mut step = [0usize; 3];
            for a in 0..3 {
                let x = p[a].clamp(0.0, (d[a] - 1) as f64);
                let x0 = (x as usize).min(d[a] - 2);
                base[a] = x0;
                fr[a] = (x - x0 as f64) as f32;
                step[a] = strides[a];
            }
            let t0 = base[0] * strides[0] + base[1] * strides[1] + base[2];
            let (wi, wj, wk) = (fr[0], fr[1], fr[2]);
            let corners = [
                (0, (1.0 - wi) * (1.0 - wj) * (1.0 - wk)),
                (step[2], (1.0 - wi) * (1.0 - wj) * wk),
                (step[1], (1.0 - wi) * wj * (1.0 - wk)),
                (step[1] + step[2], (1.0 - wi) * wj * wk),
                (step[0], wi * (1.0 - wj) * (1.0 - wk)),
                (step[0] + step[2], wi * (1.0 - wj) * wk),
                (step[0] + step[1], wi * wj * (1.0 - wk)),
                (step[0] + step[1] + step[2], wi * wj * wk),
            ];
            let mut out = 0.0f32;
            for (off, w) in corners {
                out += w * data[t0 + off];
            }
            out
        };
        // the C-ordered grid described with its axes reversed, as SyN does
        let lin = Trilinear::new([d[2], d[1], d[0]], [1, d[2], d[1] * d[2]], Border::Clamp);
        let mut x = 0.1234f64;
        for _ in 0..5000 {
            let mut p = [0.0; 3];
            for (a, v) in p.iter_mut().enumerate() {
                x = (x * 9301.0 + 49297.0) % 233280.0;
                *v = x / 233280.0 * (d[a] as f64 + 2.0) - 1.0;
            }
            let cell = lin.cell([p[2], p[1], p[0]]).unwrap();
            let [got] = cell.product_weighted_f32([&data]);
            assert_eq!(got.to_bits(), old(p).to_bits(), "{p:?}");
            let [lerp] = cell.values([&data]);
            assert!((f64::from(got) - lerp).abs() < 1e-4, "{got} vs {lerp}");
        }
    }
}
