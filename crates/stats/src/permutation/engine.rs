//! The voxel engine: statistics of every shuffle in tiles of voxels, with the maximum kept in a fixed order.

use ndarray::{Array2, ArrayView2, Axis, Slice};

use super::shuffles::Shuffle;
use super::types::Tail;
use crate::error::Result;
use crate::glm::{Factorised, GlmDesign, residualise_nuisance};

/// Precomputed model for the engine.
pub(super) struct Engine {
    /// Residualised data (n, V).
    pub(super) w: Array2<f64>,
    /// Rows: `a` then (if rank > 1) the orthonormal basis of span(X): (r, n).
    pub(super) rows: Array2<f64>,
    pub(super) rank1: bool,
    pub(super) a2: f64,
    pub(super) ss: Vec<f64>,
    pub(super) df: f64,
}

pub(super) const VOXEL_TILE: usize = 2048;

impl Engine {
    pub(super) fn new(data: ArrayView2<'_, f32>, design: &GlmDesign) -> Result<Self> {
        let f = Factorised::new(design)?;
        let n = design.n();
        let w = residualise_nuisance(data, &f);
        let rank1 = f.rank == 1;
        let r = if rank1 { 1 } else { 1 + f.rank };
        let mut rows = Array2::zeros((r, n));
        for i in 0..n {
            rows[[0, i]] = f.a[i];
            if !rank1 {
                for j in 0..f.rank {
                    rows[[1 + j, i]] = f.q[(i, j)];
                }
            }
        }
        let a2 = f.a.dot(&f.a);
        let ss = (0..w.ncols())
            .map(|v| w.column(v).dot(&w.column(v)))
            .collect();
        Ok(Self {
            w,
            rows,
            rank1,
            a2,
            ss,
            df: (n - f.rank) as f64,
        })
    }

    pub(super) fn r(&self) -> usize {
        self.rows.nrows()
    }

    /// Shuffled row block `(B·r, n)`.
    pub(super) fn shuffled_rows(&self, shuffles: &[Shuffle]) -> Array2<f64> {
        let (r, n) = self.rows.dim();
        let mut m = Array2::zeros((shuffles.len() * r, n));
        for (b, sh) in shuffles.iter().enumerate() {
            for j in 0..r {
                for i in 0..n {
                    let dst = match &sh.perm {
                        Some(p) => p[i] as usize,
                        None => i,
                    };
                    m[[b * r + j, dst]] = self.rows[[j, i]] * sh.signs[i];
                }
            }
        }
        m
    }

    /// t maps of a block of shuffles, calling `visit(b, v0, t_tile_row)` per shuffle and tile.
    pub(super) fn for_each_tile(
        &self,
        shuffles: &[Shuffle],
        visit: impl FnMut(usize, usize, &[f64]),
    ) {
        crate::simd::avx2_or!(
            self.for_each_tile_avx2(shuffles, visit),
            self.for_each_tile_body(shuffles, visit)
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn for_each_tile_avx2(&self, shuffles: &[Shuffle], visit: impl FnMut(usize, usize, &[f64])) {
        self.for_each_tile_body(shuffles, visit)
    }

    /// [`Self::for_each_tile`]'s body (its square roots and divisions four lanes wide in the
    /// AVX2 copy).
    #[inline(always)]
    fn for_each_tile_body(
        &self,
        shuffles: &[Shuffle],
        mut visit: impl FnMut(usize, usize, &[f64]),
    ) {
        let m = self.shuffled_rows(shuffles);
        let r = self.r();
        let nv = self.w.ncols();
        let mut tbuf = vec![0.0; VOXEL_TILE];
        let sqrt_df = self.df.sqrt();
        let a2 = self.a2;
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + VOXEL_TILE).min(nv);
            let width = v1 - v0;
            let g = m.dot(&self.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            let g = g.as_standard_layout();
            let gs = g.as_slice().expect("standard layout");
            let ss = &self.ss[v0..v1];
            for b in 0..shuffles.len() {
                let tb = &mut tbuf[..width];
                let num = &gs[b * r * width..(b * r + 1) * width];
                if self.rank1 {
                    for k in 0..width {
                        tb[k] = t_rank1(num[k], ss[k] * a2, sqrt_df);
                    }
                } else {
                    tb.fill(0.0);
                    for j in 1..r {
                        let row = &gs[(b * r + j) * width..(b * r + j + 1) * width];
                        for k in 0..width {
                            tb[k] += row[k] * row[k];
                        }
                    }
                    for k in 0..width {
                        let nu = num[k];
                        let tot = ss[k] * a2;
                        let den2 = (ss[k] - tb[k]) * a2;
                        tb[k] = if den2 > 1e-12 * tot {
                            nu * sqrt_df / den2.sqrt()
                        } else {
                            0.0
                        };
                    }
                }
                visit(b, v0, tb);
            }
            v0 = v1;
        }
    }
}

/// The t of a rank-1 design from `num = ã'w` and `tot = ‖w‖²·‖a‖²`:
/// `t = num·sqrt(df) / sqrt(tot − num²)`, 0 where the denominator vanishes.
#[inline]
fn t_rank1(num: f64, tot: f64, sqrt_df: f64) -> f64 {
    let den2 = tot - num * num;
    if den2 > 1e-12 * tot {
        num * sqrt_df / den2.sqrt()
    } else {
        0.0
    }
}

/// Relative width of the band around a voxel's threshold within which [`Rank1Scan`] computes
/// t itself, and the largest `u²` it trusts (t up to about `1000·sqrt(df)`).
const BAND: f64 = 1e-7;
const U2_MAX: f64 = 1.0 - 1e-6;

/// One block of shuffles for [`Engine::scan_rank1`]: what it reads and the counts and maxima
/// it adds to.
struct ScanBlock<'a> {
    shuffles: &'a [Shuffle],
    scan: &'a Rank1Scan,
    floor: &'a [f64],
    counts: &'a mut [u32],
    maxes: &'a mut [f64],
}

/// The max-T scan of a rank-1 design without t's square root and division.
///
/// With `u = num / sqrt(tot)` (the correlation of the shuffled `ã` and the voxel's data),
/// `t = sqrt(df)·u / sqrt(1 − u²)` is increasing in `u`, so `t ≥ f` exactly when
/// `u ≥ f / sqrt(df + f²)`. The scan compares `u` (one product) with each voxel's threshold in
/// `u`; within a relative band of 1e-7 around it, and where `u² > 1 − 1e-6` (where the rounding
/// of `tot − num²` grows), it computes t as [`Engine::for_each_tile`] does, so every count is
/// that of the t the engine computes (whose rounding errors are below 1e-9 relative there).
/// The maximum is the largest such t among the voxels whose `u` is within the band of the
/// largest `u`. Counts and maxima are therefore those of the t maps, bit for bit.
pub(super) struct Rank1Scan {
    /// `1 / sqrt(tot)` per voxel (0 where `tot` = 0).
    inv_norm: Vec<f64>,
    /// The band around each voxel's threshold in `u`.
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl Engine {
    /// The scan's thresholds for the tail statistic's per-voxel floors `floor`; `None` unless
    /// the design has rank 1.
    pub(super) fn rank1_scan(&self, floor: &[f64]) -> Option<Rank1Scan> {
        if !self.rank1 {
            return None;
        }
        let inv_norm = self
            .ss
            .iter()
            .map(|&s| {
                let tot = s * self.a2;
                if tot > 0.0 { 1.0 / tot.sqrt() } else { 0.0 }
            })
            .collect();
        let (lo, hi) = floor
            .iter()
            .map(|&f| {
                let uf = f / (self.df + f * f).sqrt();
                let w = BAND * uf.abs() + 1e-300;
                (uf - w, uf + w)
            })
            .unzip();
        Some(Rank1Scan { inv_norm, lo, hi })
    }

    /// Max-T scan of a block of shuffles for a rank-1 design: adds each voxel's exceedances of
    /// `floor` (the tail statistic's) to `counts` and raises `maxes[b]` to shuffle `b`'s maximum,
    /// as [`scan_tile`] on [`Engine::for_each_tile`]'s t maps would (see [`Rank1Scan`]).
    pub(super) fn scan_rank1(
        &self,
        shuffles: &[Shuffle],
        scan: &Rank1Scan,
        floor: &[f64],
        counts: &mut [u32],
        tail: Tail,
        maxes: &mut [f64],
    ) {
        let block = ScanBlock {
            shuffles,
            scan,
            floor,
            counts,
            maxes,
        };
        match tail {
            Tail::Positive => self.scan_rank1_with(block, |u| u, |t| t),
            Tail::Negative => self.scan_rank1_with(block, |u| -u, |t| -t),
            Tail::TwoSided => self.scan_rank1_with(block, f64::abs, f64::abs),
        }
    }

    /// [`Self::scan_rank1_body`], its AVX2 copy when the CPU has AVX2 (`crate::simd`).
    fn scan_rank1_with(
        &self,
        block: ScanBlock<'_>,
        su_of: impl Fn(f64) -> f64,
        st_of: impl Fn(f64) -> f64,
    ) {
        crate::simd::avx2_or!(
            self.scan_rank1_avx2(block, su_of, st_of),
            self.scan_rank1_body(block, su_of, st_of)
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn scan_rank1_avx2(
        &self,
        block: ScanBlock<'_>,
        su_of: impl Fn(f64) -> f64,
        st_of: impl Fn(f64) -> f64,
    ) {
        self.scan_rank1_body(block, su_of, st_of)
    }

    #[inline(always)]
    fn scan_rank1_body(
        &self,
        block: ScanBlock<'_>,
        su_of: impl Fn(f64) -> f64,
        st_of: impl Fn(f64) -> f64,
    ) {
        let ScanBlock {
            shuffles,
            scan,
            floor,
            counts,
            maxes,
        } = block;
        const TILE: usize = 256;
        let m = self.shuffled_rows(shuffles);
        let nv = self.w.ncols();
        let sqrt_df = self.df.sqrt();
        let a2 = self.a2;
        let mut su_buf = vec![0.0; TILE];
        let mut tc_buf = vec![0u64; TILE];
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + TILE).min(nv);
            let width = v1 - v0;
            let g = m.dot(&self.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            let g = g.as_standard_layout();
            let gs = g.as_slice().expect("standard layout");
            let (inv, lo, hi) = (&scan.inv_norm[v0..v1], &scan.lo[v0..v1], &scan.hi[v0..v1]);
            let (ss, fl, cnt) = (&self.ss[v0..v1], &floor[v0..v1], &mut counts[v0..v1]);
            let exact = |k: usize, nu: f64| st_of(t_rank1(nu, ss[k] * a2, sqrt_df));
            let su = &mut su_buf[..width];
            let tc = &mut tc_buf[..width];
            tc.fill(0);
            for (b, mx) in maxes.iter_mut().enumerate() {
                let num = &gs[b * width..(b + 1) * width];
                // the tail statistic's proxy, its largest value and the largest |u|, in lanes
                // of 8 with one loop over the lanes per step (vector instructions)
                let mut top = [f64::NEG_INFINITY; 8];
                let mut big = [0.0f64; 8];
                let mut chunks = su.chunks_exact_mut(8);
                let (mut n8, mut i8) = (num.chunks_exact(8), inv.chunks_exact(8));
                for ((s8, n8), i8) in (&mut chunks).zip(&mut n8).zip(&mut i8) {
                    let (s8, n8, i8): (&mut [f64; 8], &[f64; 8], &[f64; 8]) = (
                        s8.try_into().expect("8"),
                        n8.try_into().expect("8"),
                        i8.try_into().expect("8"),
                    );
                    let mut u_lanes = [0.0f64; 8];
                    for l in 0..8 {
                        u_lanes[l] = n8[l] * i8[l];
                    }
                    for l in 0..8 {
                        s8[l] = su_of(u_lanes[l]);
                    }
                    for l in 0..8 {
                        top[l] = if s8[l] > top[l] { s8[l] } else { top[l] };
                    }
                    for l in 0..8 {
                        let a = u_lanes[l].abs();
                        big[l] = if a > big[l] { a } else { big[l] };
                    }
                }
                for (l, s) in chunks.into_remainder().iter_mut().enumerate() {
                    let u = n8.remainder()[l] * i8.remainder()[l];
                    *s = su_of(u);
                    top[l] = if *s > top[l] { *s } else { top[l] };
                    big[l] = if u.abs() > big[l] { u.abs() } else { big[l] };
                }
                let top = top
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
                let big = big.iter().fold(0.0f64, |m, &x| if x > m { x } else { m });
                let mut best = f64::NEG_INFINITY;
                if big * big > U2_MAX {
                    // a voxel where t's rounding grows: every t of this shuffle computed
                    for k in 0..width {
                        let st = exact(k, num[k]);
                        cnt[k] += u32::from(st >= fl[k]);
                        best = if st > best { st } else { best };
                    }
                    *mx = mx.max(best);
                    continue;
                }
                // counted in 64-bit lanes, as wide as the comparisons' (added to the u32
                // counts once per tile)
                let mut unsure = 0u64;
                for k in 0..width {
                    tc[k] += u64::from(su[k] > hi[k]);
                    unsure += u64::from((su[k] >= lo[k]) & (su[k] <= hi[k]));
                }
                if unsure > 0 {
                    for k in 0..width {
                        if su[k] >= lo[k] && su[k] <= hi[k] {
                            cnt[k] += u32::from(exact(k, num[k]) >= fl[k]);
                        }
                    }
                }
                let near = top - (BAND * top.abs() + 1e-300);
                for (s8, k8) in su.chunks(8).zip((0..).step_by(8)) {
                    if s8.iter().fold(false, |any, &x| any | (x >= near)) {
                        for (l, &x) in s8.iter().enumerate() {
                            if x >= near {
                                let st = exact(k8 + l, num[k8 + l]);
                                best = if st > best { st } else { best };
                            }
                        }
                    }
                }
                *mx = mx.max(best);
            }
            for (c, &t) in cnt.iter_mut().zip(tc.iter()) {
                *c += t as u32;
            }
            v0 = v1;
        }
    }
}

/// Count exceedances and track the maximum of the tail statistic over one tile.
#[inline]
pub(super) fn scan_tile(tile: &[f64], floor: &[f64], counts: &mut [u32], tail: Tail) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    match tail {
        Tail::Positive => {
            for k in 0..tile.len() {
                let st = tile[k];
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
        Tail::Negative => {
            for k in 0..tile.len() {
                let st = -tile[k];
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
        Tail::TwoSided => {
            for k in 0..tile.len() {
                let st = tile[k].abs();
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
    }
    mx
}

#[inline]
pub(super) fn tail_stat(t: f64, tail: Tail) -> f64 {
    match tail {
        Tail::Positive => t,
        Tail::Negative => -t,
        Tail::TwoSided => t.abs(),
    }
}

#[inline]
pub(super) fn tie_floor(obs: f64) -> f64 {
    obs - 1e-10 * obs.abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permutation::{Scheme, draw_shuffles};
    use rand::{RngExt, SeedableRng};

    /// The rank-1 scan counts and maxima equal those of the t maps, bit for bit: on random data
    /// with a constant voxel (|u| = 1 under some flips: t set to 0), an all-zero voxel, floors
    /// at exactly the t of one shuffle (ties, decided inside the band) and a width that is no
    /// multiple of the tiles, for each tail.
    #[test]
    fn rank1_scan_equals_the_t_maps() {
        let (n, nv) = (12, 1337);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut data = Array2::<f32>::zeros((n, nv));
        for v in 0..nv {
            let shift = (v % 7) as f32 * 0.3;
            for i in 0..n {
                data[[i, v]] = match v {
                    5 => 2.5,
                    9 => 0.0,
                    _ => rng.random::<f32>() - 0.5 + shift,
                };
            }
        }
        let design = GlmDesign::one_sample(n).unwrap();
        let engine = Engine::new(data.view(), &design).unwrap();
        let (shuffles, _) = draw_shuffles(n, &Scheme::SignFlip, 300, 8).unwrap();
        let mut maps = vec![vec![0.0; nv]; shuffles.len()];
        engine.for_each_tile(&shuffles, |b, v0, tile| {
            maps[b][v0..v0 + tile.len()].copy_from_slice(tile)
        });
        for tail in [Tail::Positive, Tail::Negative, Tail::TwoSided] {
            for tie_with in [0, 17] {
                let floor: Vec<f64> = maps[tie_with]
                    .iter()
                    .map(|&t| tie_floor(tail_stat(t, tail)))
                    .collect();
                let mut want_counts = vec![0u32; nv];
                let mut want_max = vec![f64::NEG_INFINITY; shuffles.len()];
                for (b, map) in maps.iter().enumerate() {
                    want_max[b] = scan_tile(map, &floor, &mut want_counts, tail);
                }
                let scan = engine.rank1_scan(&floor).expect("rank 1");
                let mut counts = vec![0u32; nv];
                let mut maxes = vec![f64::NEG_INFINITY; shuffles.len()];
                for (c, shs) in shuffles.chunks(64).enumerate() {
                    engine.scan_rank1(
                        shs,
                        &scan,
                        &floor,
                        &mut counts,
                        tail,
                        &mut maxes[c * 64..c * 64 + shs.len()],
                    );
                }
                assert_eq!(counts, want_counts, "{tail:?} ties with shuffle {tie_with}");
                let bits = |m: &[f64]| m.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&maxes), bits(&want_max), "{tail:?}");
            }
        }
        // the constant voxel's t is 0 under the identity (|u| = 1), not a huge value
        assert_eq!(maps[0][5], 0.0);
        // the baseline bodies give what the dispatched copies (AVX2 where the CPU has it) gave
        let mut body_maps = vec![vec![0.0; nv]; shuffles.len()];
        engine.for_each_tile_body(&shuffles, |b, v0, tile| {
            body_maps[b][v0..v0 + tile.len()].copy_from_slice(tile)
        });
        let bits = |m: &[f64]| m.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (m, bm) in maps.iter().zip(&body_maps) {
            assert_eq!(bits(m), bits(bm));
        }
        let floor: Vec<f64> = maps[17].iter().map(|&t| tie_floor(t)).collect();
        let scan = engine.rank1_scan(&floor).expect("rank 1");
        let run = |body: bool| {
            let mut counts = vec![0u32; nv];
            let mut maxes = vec![f64::NEG_INFINITY; 64];
            if body {
                let block = ScanBlock {
                    shuffles: &shuffles[..64],
                    scan: &scan,
                    floor: &floor,
                    counts: &mut counts,
                    maxes: &mut maxes,
                };
                engine.scan_rank1_body(block, |u| u, |t| t);
            } else {
                engine.scan_rank1(
                    &shuffles[..64],
                    &scan,
                    &floor,
                    &mut counts,
                    Tail::Positive,
                    &mut maxes,
                );
            }
            (counts, bits(&maxes))
        };
        assert_eq!(run(true), run(false));
    }
}
