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

/// The max-T scan of a rank-1 design in single precision, with every decision it cannot be sure
/// of taken in double precision.
///
/// With `u = num / sqrt(tot)` (the correlation of the shuffled `ã` and the voxel's data),
/// `t = sqrt(df)·u / sqrt(1 − u²)` is increasing in `u`, so `t ≥ f` exactly when
/// `u ≥ f / sqrt(df + f²)`. Within a relative band of 1e-7 around that threshold, and where
/// `u² > 1 − 1e-6` (where the rounding of `tot − num²` grows), t is computed as
/// [`Engine::for_each_tile`] computes it; elsewhere the comparison of `u` decides. That is the
/// decision rule in `f64`; the scan takes it from an `f32` estimate of `u`: one `f32` matrix
/// product of the shuffled `ã` with the data scaled to unit norm (`z = w / sqrt(tot)`), whose
/// error is below `delta = 2·(n+3)·2⁻²⁴` (the products' and sums' rounding is at most
/// `γ(n+2)·Σ|ã_i·z_i|`, and `Σ|ã_i·z_i| ≤ ‖ã‖·‖z‖ = 1` by Cauchy–Schwarz, whatever the data's
/// scale). Where the estimate is more than `delta` outside the band, the `f64` rule's outcome
/// is certain; the few voxels within `delta` of it (a few per shuffle), the candidates for the
/// maximum (within `2·delta` and the band of the largest estimate) and any shuffle and tile
/// where `u²` may pass `1 − 1e-6` get their `num` from the same `f64` product as
/// [`Engine::for_each_tile`] (the same matrix product on the columns concerned, each element of
/// which depends on its row and column alone) and the `f64` rule. Counts and maxima are
/// therefore those of the t maps, bit for bit, at about half the cost of the `f64` product and
/// comparisons.
pub(super) struct Rank1Scan {
    /// `1 / sqrt(tot)` per voxel (0 where `tot` = 0).
    inv_norm: Vec<f64>,
    /// The band around each voxel's threshold in `u`.
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// The data at unit norm, `w / sqrt(tot)` (n, V), in `f32`.
    z: Array2<f32>,
    /// The band widened by `delta`, rounded outwards to `f32`.
    lo32: Vec<f32>,
    hi32: Vec<f32>,
    delta: f64,
}

/// `x` rounded to `f32` towards −∞ (`down`) or +∞.
fn f32_outward(x: f64, down: bool) -> f32 {
    let y = x as f32;
    match (down, f64::from(y)) {
        (true, z) if z > x => y.next_down(),
        (false, z) if z < x => y.next_up(),
        _ => y,
    }
}

impl Engine {
    /// The scan's thresholds for the tail statistic's per-voxel floors `floor`; `None` unless
    /// the design has rank 1 (and `‖a‖` a size `f32` holds with room to spare).
    pub(super) fn rank1_scan(&self, floor: &[f64]) -> Option<Rank1Scan> {
        let a_norm = self.a2.sqrt();
        if !self.rank1 || !(1e-15..=1e15).contains(&a_norm) {
            return None;
        }
        let inv_norm: Vec<f64> = self
            .ss
            .iter()
            .map(|&s| {
                let tot = s * self.a2;
                if tot > 0.0 { 1.0 / tot.sqrt() } else { 0.0 }
            })
            .collect();
        let (lo, hi): (Vec<f64>, Vec<f64>) = floor
            .iter()
            .map(|&f| {
                let uf = f / (self.df + f * f).sqrt();
                let w = BAND * uf.abs() + 1e-300;
                (uf - w, uf + w)
            })
            .unzip();
        let n = self.w.nrows();
        // twice γ(n+3) at f32's unit roundoff 2⁻²⁴ (half its epsilon)
        let delta = 2.0 * (n + 3) as f64 * (f64::from(f32::EPSILON) / 2.0);
        let mut z = Array2::<f32>::zeros(self.w.dim());
        for (mut zr, wr) in z.rows_mut().into_iter().zip(self.w.rows()) {
            for ((zv, &wv), &iv) in zr.iter_mut().zip(wr.iter()).zip(&inv_norm) {
                *zv = (wv * iv) as f32;
            }
        }
        let lo32 = lo.iter().map(|&l| f32_outward(l - delta, true)).collect();
        let hi32 = hi.iter().map(|&h| f32_outward(h + delta, false)).collect();
        Some(Rank1Scan {
            inv_norm,
            lo,
            hi,
            z,
            lo32,
            hi32,
            delta,
        })
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
            Tail::TwoSided => self.scan_rank1_with(block, |u| u.abs(), f64::abs),
        }
    }

    /// [`Self::scan_rank1_body`], its AVX2 copy when the CPU has AVX2 (`crate::simd`).
    fn scan_rank1_with(
        &self,
        block: ScanBlock<'_>,
        su_of: impl Fn(f32) -> f32,
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
        su_of: impl Fn(f32) -> f32,
        st_of: impl Fn(f64) -> f64,
    ) {
        self.scan_rank1_body(block, su_of, st_of)
    }

    #[inline(always)]
    fn scan_rank1_body(
        &self,
        block: ScanBlock<'_>,
        su_of: impl Fn(f32) -> f32,
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
        let m32 = m.mapv(|x| x as f32);
        let nb = shuffles.len();
        let nv = self.w.ncols();
        let delta = scan.delta;
        // the estimates below `cut(top)` cannot be the maximum when the largest is `top`
        let cut = |top: f32| {
            let t = f64::from(top);
            f32_outward(t - 2.0 * delta - BAND * (t.abs() + delta) - 1e-30, true)
        };
        // per shuffle: the largest estimate so far, its cut and the candidates above it
        let mut top = vec![f32::NEG_INFINITY; nb];
        let mut cuts = vec![f32::NEG_INFINITY; nb];
        let mut cands: Vec<Vec<(u32, f32)>> = vec![Vec::new(); nb];
        // (shuffle, voxel) pairs within `delta` of a band, and (shuffle, tile) where u² may
        // pass U2_MAX: decided in f64 at the end
        let mut unsure: Vec<(u32, u32)> = Vec::new();
        let mut whole: Vec<(u32, usize, usize)> = Vec::new();
        let mut tc_buf = vec![0u32; TILE];
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + TILE).min(nv);
            let width = v1 - v0;
            let g = m32.dot(&scan.z.slice_axis(Axis(1), Slice::from(v0..v1)));
            let g = g.as_standard_layout();
            let gs = g.as_slice().expect("standard layout");
            let (lo, hi) = (&scan.lo32[v0..v1], &scan.hi32[v0..v1]);
            let tc = &mut tc_buf[..width];
            tc.fill(0);
            for b in 0..nb {
                let u = &gs[b * width..(b + 1) * width];
                // the tail statistic's largest estimate and the largest |u|, in lanes of 16
                // with one loop over the lanes per step (vector instructions)
                let mut tops = [f32::NEG_INFINITY; 16];
                let mut bigs = [0.0f32; 16];
                let mut u16s = u.chunks_exact(16);
                for u16 in &mut u16s {
                    let u16: &[f32; 16] = u16.try_into().expect("16");
                    for l in 0..16 {
                        let s = su_of(u16[l]);
                        tops[l] = if s > tops[l] { s } else { tops[l] };
                    }
                    for l in 0..16 {
                        let a = u16[l].abs();
                        bigs[l] = if a > bigs[l] { a } else { bigs[l] };
                    }
                }
                for (l, &x) in u16s.remainder().iter().enumerate() {
                    let s = su_of(x);
                    tops[l] = if s > tops[l] { s } else { tops[l] };
                    bigs[l] = if x.abs() > bigs[l] { x.abs() } else { bigs[l] };
                }
                let tile_top = tops
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
                let big = f64::from(bigs.iter().fold(0.0f32, |m, &x| if x > m { x } else { m }));
                if (big + delta) * (big + delta) > U2_MAX {
                    whole.push((b as u32, v0, v1));
                    continue;
                }
                // certain exceedances counted in 32-bit lanes, as wide as the comparisons'
                let mut n_unsure = 0u32;
                for k in 0..width {
                    let s = su_of(u[k]);
                    tc[k] += u32::from(s > hi[k]);
                    n_unsure += u32::from((s >= lo[k]) & (s <= hi[k]));
                }
                if n_unsure > 0 {
                    for k in 0..width {
                        let s = su_of(u[k]);
                        if s >= lo[k] && s <= hi[k] {
                            unsure.push((b as u32, (v0 + k) as u32));
                        }
                    }
                }
                if tile_top >= cuts[b] {
                    if tile_top > top[b] {
                        top[b] = tile_top;
                        cuts[b] = cut(tile_top);
                        let c = cuts[b];
                        cands[b].retain(|&(_, x)| x >= c);
                    }
                    let c = cuts[b];
                    for (u16, k16) in u.chunks(16).zip((0..).step_by(16)) {
                        if u16.iter().fold(false, |any, &x| any | (su_of(x) >= c)) {
                            for (l, &x) in u16.iter().enumerate() {
                                let x = su_of(x);
                                if x >= c {
                                    cands[b].push(((v0 + k16 + l) as u32, x));
                                }
                            }
                        }
                    }
                }
            }
            for (c, &t) in counts[v0..v1].iter_mut().zip(tc.iter()) {
                *c += t;
            }
            v0 = v1;
        }
        self.resolve_rank1(
            &m,
            scan,
            floor,
            &st_of,
            counts,
            maxes,
            Unsure {
                pairs: &unsure,
                cands: &cands,
                whole: &whole,
            },
        );
    }
}

/// What the `f32` scan of one block left to the `f64` rule (see [`Rank1Scan`]).
struct Unsure<'a> {
    /// (shuffle, voxel) pairs within `delta` of the voxel's band.
    pairs: &'a [(u32, u32)],
    /// Per shuffle: the voxels that may hold its maximum.
    cands: &'a [Vec<(u32, f32)>],
    /// (shuffle, first voxel, end) of the tiles where `u²` may pass `U2_MAX`.
    whole: &'a [(u32, usize, usize)],
}

impl Engine {
    /// Takes the decisions of [`Unsure`] with the `f64` rule, `num` from the `f64` product of
    /// the shuffled rows `m` with the columns concerned.
    #[allow(clippy::too_many_arguments)]
    fn resolve_rank1(
        &self,
        m: &Array2<f64>,
        scan: &Rank1Scan,
        floor: &[f64],
        st_of: &impl Fn(f64) -> f64,
        counts: &mut [u32],
        maxes: &mut [f64],
        left: Unsure<'_>,
    ) {
        let sqrt_df = self.df.sqrt();
        let a2 = self.a2;
        let exact = |v: usize, nu: f64| st_of(t_rank1(nu, self.ss[v] * a2, sqrt_df));
        // the tail statistic in u, as the f64 rule computes it
        let su64 = |v: usize, nu: f64| st_of(nu * scan.inv_norm[v]);
        let mut pairs = left.pairs.to_vec();
        pairs.sort_unstable();
        let nv = self.w.ncols();
        let mut rest = &pairs[..];
        for (b, (cs, mx)) in left.cands.iter().zip(maxes.iter_mut()).enumerate() {
            let n_b = rest.partition_point(|&(pb, _)| pb as usize == b);
            let (ps, later) = rest.split_at(n_b);
            rest = later;
            if ps.is_empty() && cs.is_empty() {
                continue;
            }
            // shuffle b's num at the voxels concerned: from its row's product with those
            // columns, or with all of them where they are many (the unshuffled data: every
            // voxel on its floor)
            let mut cols: Vec<u32> = ps.iter().map(|&(_, v)| v).collect();
            cols.extend(cs.iter().map(|&(v, _)| v));
            cols.sort_unstable();
            cols.dedup();
            let row = m.slice(ndarray::s![b..b + 1, ..]);
            let all = cols.len() > nv / 16;
            let g = if all {
                row.dot(&self.w)
            } else {
                let mut wc = Array2::<f64>::zeros((self.w.nrows(), cols.len()));
                for (mut c, &v) in wc.columns_mut().into_iter().zip(&cols) {
                    c.assign(&self.w.column(v as usize));
                }
                row.dot(&wc)
            };
            let num = |v: u32| {
                let j = if all {
                    v as usize
                } else {
                    cols.binary_search(&v).expect("listed")
                };
                g[[0, j]]
            };
            for &(_, v) in ps {
                let (nu, vi) = (num(v), v as usize);
                let su = su64(vi, nu);
                if su > scan.hi[vi] {
                    counts[vi] += 1;
                } else if su >= scan.lo[vi] {
                    counts[vi] += u32::from(exact(vi, nu) >= floor[vi]);
                }
            }
            let su: Vec<f64> = cs.iter().map(|&(v, _)| su64(v as usize, num(v))).collect();
            let top = su
                .iter()
                .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m });
            let near = top - (BAND * top.abs() + 1e-300);
            for (&(v, _), &x) in cs.iter().zip(&su) {
                if x >= near {
                    let st = exact(v as usize, num(v));
                    *mx = if st > *mx { st } else { *mx };
                }
            }
        }
        for &(b, v0, v1) in left.whole {
            let row = m.slice(ndarray::s![b as usize..b as usize + 1, ..]);
            let g = row.dot(&self.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            let mx = &mut maxes[b as usize];
            for (k, &nu) in g.iter().enumerate() {
                let st = exact(v0 + k, nu);
                counts[v0 + k] += u32::from(st >= floor[v0 + k]);
                *mx = if st > *mx { st } else { *mx };
            }
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
