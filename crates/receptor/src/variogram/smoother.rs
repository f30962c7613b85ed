//! The kernel smoothing of a permuted map over each point's nearest neighbours, for every
//! neighbourhood size at once and for several maps at once.
//!
//! Each point's neighbours (nearest first) are cut into segments: runs of neighbours at equal
//! distance, also cut at every neighbourhood size `k`. Neighbours of one segment have one kernel
//! weight, so a segment's values are summed first and weighted once: on a regular lattice (the
//! voxels of the sampled method) a point's 1 000 neighbours lie at about 40 distinct distances.
//! Where no two neighbours are equidistant (parcel centroids) every segment is one neighbour and
//! the sums are those of the plain weighted average, in the same order.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::params::Kernel;
use crate::rng_for;

/// Most segment weights (segments × neighbourhood sizes, f32) kept; above it the weights are
/// computed for each use (in f64, as before this module kept them).
const WEIGHT_LIMIT: usize = 1 << 26;

/// Most maps smoothed in one pass (the generators' batches).
pub(super) const MAX_MAPS: usize = 4;

/// The smoothing operator of one point set: neighbours, segments, weights and weight sums.
#[derive(Debug, Clone)]
pub(super) struct Smoother {
    kernel: Kernel,
    /// Neighbourhood sizes, in the caller's order.
    ks: Vec<usize>,
    /// Indices into `ks` by increasing size.
    order: Vec<usize>,
    /// Neighbours kept per point (`max(ks)` or more).
    stride: usize,
    pub(super) nb_idx: Vec<u32>,
    pub(super) nb_dist: Vec<f32>,
    /// Segments of point `i`: `seg_off[i]..seg_off[i + 1]`.
    seg_off: Vec<usize>,
    /// End (exclusive position in the point's row) of each segment.
    seg_end: Vec<u32>,
    /// Per segment, its kernel weight (rounded to f32, kept as f64) in each neighbourhood size,
    /// by increasing size (0 for a size that does not contain it); `None` above
    /// [`WEIGHT_LIMIT`].
    seg_w: Option<Vec<f64>>,
    /// Per point and size, the largest neighbour distance (the kernel's scale).
    scale: Vec<f64>,
    /// Per point and size, the sum of the kernel weights (the denominator).
    den: Vec<f64>,
}

impl Smoother {
    /// The operator for neighbour rows `nb_idx`, `nb_dist` (n × `stride`, each row nearest
    /// first) and neighbourhood sizes `ks` (each ≤ `stride`).
    pub(super) fn new(
        kernel: Kernel,
        nb_idx: Vec<u32>,
        nb_dist: Vec<f32>,
        stride: usize,
        ks: &[usize],
    ) -> Self {
        let n = nb_idx.len() / stride.max(1);
        let nd = ks.len();
        let mut order: Vec<usize> = (0..nd).collect();
        order.sort_by_key(|&d| ks[d]);
        let kmax = ks.iter().copied().max().unwrap_or(0);
        assert!(
            kmax <= stride,
            "neighbourhood sizes beyond the neighbours kept"
        );
        let mut seg_off = Vec::with_capacity(n + 1);
        let mut seg_end = Vec::new();
        seg_off.push(0);
        let mut cuts: Vec<usize> = ks.to_vec();
        cuts.sort_unstable();
        for i in 0..n {
            let row = &nb_dist[i * stride..(i + 1) * stride];
            let mut c = 0;
            for pos in 1..=stride {
                while c < cuts.len() && cuts[c] < pos {
                    c += 1;
                }
                let cut = c < cuts.len() && cuts[c] == pos;
                if pos == stride || cut || row[pos] != row[pos - 1] {
                    seg_end.push(pos as u32);
                }
            }
            seg_off.push(seg_end.len());
        }
        // each size's kernel scale and weight sum, as `Kernel::weights` over the row's first k
        let mut scale = vec![0.0; n * nd];
        let mut den = vec![0.0; n * nd];
        let mut wrow = vec![0.0f64; kmax];
        for i in 0..n {
            for (d, &k) in ks.iter().enumerate() {
                let row = &nb_dist[i * stride..i * stride + k];
                scale[i * nd + d] = Kernel::scale(row);
                kernel.weights(row, &mut wrow[..k]);
                let mut s = 0.0;
                for &w in &wrow[..k] {
                    s += f64::from(w as f32);
                }
                den[i * nd + d] = s;
            }
        }
        let mut s = Self {
            kernel,
            ks: ks.to_vec(),
            order,
            stride,
            nb_idx,
            nb_dist,
            seg_off,
            seg_end,
            seg_w: None,
            scale,
            den,
        };
        if s.seg_end.len() * nd <= WEIGHT_LIMIT {
            let mut w = vec![0.0f64; s.seg_end.len() * nd];
            for i in 0..n {
                let mut start = 0;
                for g in s.seg_off[i]..s.seg_off[i + 1] {
                    let end = s.seg_end[g] as usize;
                    let v = f64::from(s.nb_dist[i * stride + start]);
                    for (o, &d) in s.order.iter().enumerate() {
                        if end <= s.ks[d] {
                            let wd = s.kernel.weight(v, s.scale[i * nd + d]) as f32;
                            w[g * nd + o] = f64::from(wd);
                        }
                    }
                    start = end;
                }
            }
            s.seg_w = Some(w);
        } else {
            // weights computed per use are not rounded to f32: use their own sums
            for i in 0..n {
                for (d, &k) in ks.iter().enumerate() {
                    let row = &s.nb_dist[i * stride..i * stride + k];
                    kernel.weights(row, &mut wrow[..k]);
                    let mut t = 0.0;
                    for &w in &wrow[..k] {
                        t += w;
                    }
                    s.den[i * nd + d] = t;
                }
            }
        }
        s
    }

    /// Number of points.
    pub(super) fn n(&self) -> usize {
        self.seg_off.len() - 1
    }

    /// Smooths `m` (1 to [`MAX_MAPS`]) maps stored interleaved (`x[j * m + b]`, map `b` at point `j`) with every
    /// neighbourhood size: `out[i * nd * m + b * nd + d]` = the kernel-weighted mean of map `b`
    /// over point `i`'s first `ks[d]` neighbours (`nd = ks.len()`).
    pub(super) fn smooth(&self, x: &[f64], m: usize, out: &mut [f64]) {
        match m {
            1 => self.smooth_m::<1>(x, out),
            2 => self.smooth_m::<2>(x, out),
            3 => self.smooth_m::<3>(x, out),
            4 => self.smooth_m::<4>(x, out),
            _ => panic!("the smoother takes 1 to {MAX_MAPS} maps at a time, not {m}"),
        }
    }

    /// [`Self::smooth`] for `M` maps: the same sums in the same order, the maps' values of a
    /// one-neighbour segment used as they are (a sum of one value is that value).
    fn smooth_m<const M: usize>(&self, x: &[f64], out: &mut [f64]) {
        let nd = self.ks.len();
        // accumulators and weights by increasing size
        let mut acc = vec![[0.0f64; M]; nd];
        let mut wfly = vec![0.0f64; nd];
        for i in 0..self.n() {
            acc.iter_mut().for_each(|a| *a = [0.0; M]);
            let idx = &self.nb_idx[i * self.stride..(i + 1) * self.stride];
            let (mut start, mut first) = (0, 0);
            for g in self.seg_off[i]..self.seg_off[i + 1] {
                let end = self.seg_end[g] as usize;
                while first < nd && self.ks[self.order[first]] < end {
                    first += 1;
                }
                if first == nd {
                    break;
                }
                let row = |j: u32| -> &[f64; M] {
                    x[j as usize * M..(j as usize + 1) * M]
                        .try_into()
                        .expect("M values")
                };
                let sx: [f64; M] = if end - start == 1 {
                    *row(idx[start])
                } else {
                    let mut sx = [0.0; M];
                    for &j in &idx[start..end] {
                        let xj = row(j);
                        for b in 0..M {
                            sx[b] += xj[b];
                        }
                    }
                    sx
                };
                let w: &[f64] = match &self.seg_w {
                    Some(sw) => &sw[g * nd..(g + 1) * nd],
                    None => {
                        let v = f64::from(self.nb_dist[i * self.stride + start]);
                        for o in first..nd {
                            let d = self.order[o];
                            wfly[o] = self.kernel.weight(v, self.scale[i * nd + d]);
                        }
                        &wfly
                    }
                };
                for (a, &wo) in acc[first..].iter_mut().zip(&w[first..]) {
                    for b in 0..M {
                        a[b] += wo * sx[b];
                    }
                }
                start = end;
            }
            let out = &mut out[i * nd * M..(i + 1) * nd * M];
            for (o, a) in acc.iter().enumerate() {
                let d = self.order[o];
                for b in 0..M {
                    out[b * nd + d] = a[b] / self.den[i * nd + d];
                }
            }
        }
    }

    /// Permutes `x` once for each of `streams` (ChaCha8 streams of `seed`) and smooths the
    /// permuted maps ([`Self::smooth`]): the smoothed maps, `[i * nd * m + s * nd + d]` for
    /// stream `s` of the `m`, and each stream's generator as the permutation left it.
    pub(super) fn smooth_permuted(
        &self,
        x: &[f64],
        seed: u64,
        streams: std::ops::Range<u64>,
    ) -> (Vec<f64>, Vec<ChaCha8Rng>) {
        let n = x.len();
        let m = (streams.end - streams.start) as usize;
        let mut rngs = Vec::with_capacity(m);
        let mut perms = vec![0.0; n * m];
        for (s, stream) in streams.enumerate() {
            let mut rng = rng_for(seed, stream);
            let mut perm = x.to_vec();
            perm.shuffle(&mut rng);
            for (i, &v) in perm.iter().enumerate() {
                perms[i * m + s] = v;
            }
            rngs.push(rng);
        }
        let mut all = vec![0.0; n * self.ks.len() * m];
        self.smooth(&perms, m, &mut all);
        (all, rngs)
    }

    /// The segments of point `i` whose neighbours all lie closer than `dmax`, each as (its
    /// distance, its neighbours' indices).
    pub(super) fn segments_below(
        &self,
        i: usize,
        dmax: f64,
    ) -> impl Iterator<Item = (f64, &[u32])> {
        let row = &self.nb_dist[i * self.stride..(i + 1) * self.stride];
        let idx = &self.nb_idx[i * self.stride..(i + 1) * self.stride];
        let mut start = 0;
        self.seg_end[self.seg_off[i]..self.seg_off[i + 1]]
            .iter()
            .map_while(move |&end| {
                let end = end as usize;
                let u = f64::from(row[start]);
                let seg = (u < dmax).then(|| (u, &idx[start..end]));
                start = end;
                seg
            })
    }
}
