//! Surrogates from the full distance matrix (Burt et al. 2020, parcels).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::distance::DistanceMatrix;
use super::fit::{
    VariogramFit, bins_and_bandwidth, check_common, finish_surrogate, generate_rows, percentile,
    regress, sorted_copy, summarise_fit, vgram_weights_row,
};
use super::params::{Kernel, VariogramParams};
use super::screen::{Screen, certain_best};
use super::smoother::{MAX_MAPS, Smoother};
use crate::error::{Error, Result};

/// Most entries (pairs × `nh`, f64) of the variogram-smoothing weight table kept by
/// [`VariogramSurrogates`] (128 MB; 5 700 parcels at `pv` 90, `nh` 25); above it each
/// variogram computes the weights of each pair again (the same values, by the same recurrence).
const VGRAM_TABLE_LIMIT: usize = 1 << 24;

/// Surrogates of the full method drawn together: their smoothed maps share one pass over the
/// pairs (and the weight table's rows). Each surrogate's arithmetic is that of a batch of one.
const BATCH: usize = MAX_MAPS;

/// Full variogram-matching surrogate generator (BrainSMASH `Base`) for a map of `n` points
/// (typically parcels) with an `n × n` distance matrix.
#[derive(Debug, Clone)]
pub struct VariogramSurrogates {
    pub(super) x: Vec<f64>,
    pub(super) sorted: Vec<f64>,
    pub(super) params: VariogramParams,
    pub(super) ks: Vec<usize>,
    /// Each point's nearest neighbours and the kernel smoothing over them.
    pub(super) smoother: Smoother,
    pub(super) pairs: Vec<(u32, u32)>,
    pub(super) u: Vec<f64>,
    pub(super) h: Vec<f64>,
    pub(super) b: f64,
    /// Sum over pairs of the variogram-smoothing weights at each `h`.
    pub(super) den: Vec<f64>,
    /// The variogram-smoothing weights of every pair at every `h` (pairs × nh, row-major), the
    /// same for every map; `None` above [`VGRAM_TABLE_LIMIT`].
    pub(super) wtab: Option<Vec<f64>>,
    /// The binned pairs that decide most surrogates' neighbourhood size before their exact
    /// variograms (`None`: every size's exact variogram, as the screen would when undecided).
    pub(super) screen: Option<Screen>,
    pub(super) target_smvar: Vec<f64>,
}

impl VariogramSurrogates {
    /// Prepare the generator for target `values` (length n, finite) with pairwise `distances`
    /// (n × n, mm). Computes the target's smoothed variogram and each point's sorted neighbours.
    pub fn new(
        values: &[f64],
        distances: &DistanceMatrix,
        params: VariogramParams,
    ) -> Result<Self> {
        check_common(values, &params.deltas, params.pv, params.nh, params.b)?;
        let n = values.len();
        if distances.n() != n {
            return Err(Error::ShapeMismatch {
                what: "distance matrix (points of the map)",
                expected: format!("[{n}, {n}]"),
                got: format!("[{0}, {0}]", distances.n()),
            });
        }
        // neighbourhood sizes; BrainSMASH uses int(delta * n) neighbours, excluding the point itself
        let ks: Vec<usize> = params
            .deltas
            .iter()
            .map(|d| ((d * n as f64) as usize).clamp(1, n - 1))
            .collect();
        let kmax = *ks.iter().max().unwrap_or(&1);
        let rows: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let row = &distances.data[i * n..(i + 1) * n];
                let mut order: Vec<u32> = (0..n as u32).filter(|&j| j as usize != i).collect();
                order.sort_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]).then(a.cmp(&b)));
                order.truncate(kmax);
                let d = order.iter().map(|&j| row[j as usize]).collect();
                (order, d)
            })
            .collect();
        let mut nb_idx = Vec::with_capacity(n * kmax);
        let mut nb_dist = Vec::with_capacity(n * kmax);
        for (i, d) in rows {
            nb_idx.extend(i);
            nb_dist.extend(d);
        }
        if params.kernel == Kernel::InvDist && nb_dist.iter().any(|&d| d <= 0.0) {
            return Err(Error::InvalidParameter {
                name: "kernel",
                value: "inv-dist".into(),
                reason: "two points are at zero distance",
            });
        }
        let smoother = Smoother::new(params.kernel, nb_idx, nb_dist, kmax, &ks);

        // upper-triangle pairs below the pv-th percentile of distances
        let mut all_u = Vec::with_capacity(n * (n - 1) / 2);
        for i in 0..n {
            for j in (i + 1)..n {
                all_u.push(distances.get(i, j));
            }
        }
        let cutoff = percentile(all_u.clone(), params.pv);
        let mut pairs = Vec::new();
        let mut u = Vec::new();
        let mut e = 0;
        for i in 0..n {
            for j in (i + 1)..n {
                if all_u[e] < cutoff {
                    pairs.push((i as u32, j as u32));
                    u.push(all_u[e]);
                }
                e += 1;
            }
        }
        if u.len() < 2 {
            return Err(Error::TooFew {
                what: "point pairs below the pv percentile",
                min: 2,
                got: u.len(),
            });
        }
        let umin = u.iter().fold(f64::INFINITY, |a, &v| a.min(v));
        let umax = u.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
        let (h, b) = bins_and_bandwidth(
            umin,
            umax,
            params.nh,
            params.pv,
            params.b,
            "variogram distances are all equal",
        )?;
        let nh = h.len();
        let mut den = vec![0.0; nh];
        let mut wtab = (u.len() * nh <= VGRAM_TABLE_LIMIT).then(|| vec![0.0; u.len() * nh]);
        let mut row = vec![0.0; nh];
        for (e, &ue) in u.iter().enumerate() {
            vgram_weights_row(ue, h[0], h[1] - h[0], b, &mut row);
            for (d, w) in den.iter_mut().zip(&row) {
                *d += w;
            }
            if let Some(t) = &mut wtab {
                t[e * nh..(e + 1) * nh].copy_from_slice(&row);
            }
        }
        let mut s = Self {
            x: values.to_vec(),
            sorted: sorted_copy(values),
            params,
            ks,
            smoother,
            pairs,
            u,
            h,
            b,
            den,
            wtab,
            screen: None,
            target_smvar: vec![],
        };
        s.target_smvar = s.smoothed_variogram(&s.x);
        s.screen = Some(Screen::new(&s.u, &s.h, s.b));
        Ok(s)
    }

    #[cfg(test)]
    pub(super) fn half_sq_diffs(&self, x: &[f64]) -> Vec<f64> {
        self.pairs
            .iter()
            .map(|&(i, j)| 0.5 * (x[i as usize] - x[j as usize]).powi(2))
            .collect()
    }

    /// Smoothed variogram (length nh, at [`Self::h`]) of any map on the same points.
    pub fn smoothed_variogram(&self, x: &[f64]) -> Vec<f64> {
        self.smoothed_variograms(x, 1).remove(0)
    }

    /// Smoothed variograms of `t` maps stored interleaved (`x[i * t + d]` = map `d` at point
    /// `i`), in one pass over the pairs (each pair's weights, from the table or by recurrence,
    /// shared by the maps). Map `d`'s variogram is summed over the pairs in the same order
    /// whatever `t`, so it does not depend on the other maps.
    pub(super) fn smoothed_variograms(&self, x: &[f64], t: usize) -> Vec<Vec<f64>> {
        let nh = self.h.len();
        let (h0, dh) = (self.h[0], self.h[1] - self.h[0]);
        let mut num = vec![0.0; t * nh];
        let mut wbuf = vec![0.0; nh];
        let mut v = vec![0.0; t];
        for (e, (&(i, j), &ue)) in self.pairs.iter().zip(&self.u).enumerate() {
            let (a, b) = (
                &x[i as usize * t..(i as usize + 1) * t],
                &x[j as usize * t..(j as usize + 1) * t],
            );
            for d in 0..t {
                v[d] = 0.5 * (a[d] - b[d]) * (a[d] - b[d]);
            }
            let w: &[f64] = match &self.wtab {
                Some(tab) => &tab[e * nh..(e + 1) * nh],
                None => {
                    vgram_weights_row(ue, h0, dh, self.b, &mut wbuf);
                    &wbuf
                }
            };
            for (d, &vd) in v.iter().enumerate() {
                let row = &mut num[d * nh..(d + 1) * nh];
                for k in 0..nh {
                    row[k] += w[k] * vd;
                }
            }
        }
        (0..t)
            .map(|d| (0..nh).map(|k| num[d * nh + k] / self.den[k]).collect())
            .collect()
    }

    /// Distances (mm) at which smoothed variograms are evaluated.
    pub fn h(&self) -> &[f64] {
        &self.h
    }

    /// The target map's smoothed variogram at [`Self::h`].
    pub fn target_variogram(&self) -> &[f64] {
        &self.target_smvar
    }

    /// Variogram smoothing bandwidth used (mm).
    pub fn bandwidth(&self) -> f64 {
        self.b
    }

    /// Surrogates `streams` (ChaCha8 streams of `seed`), their variograms computed in one pass
    /// over the pairs. Each is what a batch of one would give.
    pub(super) fn batch(&self, seed: u64, streams: std::ops::Range<u64>) -> Vec<Vec<f64>> {
        let n = self.x.len();
        let nd = self.ks.len();
        let m = (streams.end - streams.start) as usize;
        let t = nd * m;
        // every surrogate's smoothed maps for every delta: `all[i * t + s * nd + di]`
        let (all, rngs) = self.smoother.smooth_permuted(&self.x, seed, streams);
        let chosen = self.choose(&all, m);
        rngs.into_iter()
            .zip(chosen)
            .enumerate()
            .map(|(s, (mut rng, (a, b, di)))| {
                let smoothed: Vec<f64> = (0..n).map(|i| all[i * t + s * nd + di]).collect();
                finish_surrogate(
                    &smoothed,
                    a,
                    b,
                    self.params.resample.then_some(&self.sorted[..]),
                    &mut rng,
                )
            })
            .collect()
    }

    /// For each of `m` surrogates whose smoothed maps are `all` (`all[i * t + s * nd + di]`,
    /// `t = nd m`), the neighbourhood size whose smoothed variogram, regressed on the target's,
    /// leaves the smallest residual (the first if several), and that regression's intercept and
    /// slope: `(α, β, size)`. The [`Screen`] decides most surrogates' size; the exact variograms
    /// are then computed for their chosen size only, and for every size of the others.
    fn choose(&self, all: &[f64], m: usize) -> Vec<(f64, f64, usize)> {
        let nd = self.ks.len();
        let nh = self.h.len();
        let t = nd * m;
        let decided: Vec<Option<usize>> = match &self.screen {
            Some(screen) => {
                let (approx, bound) = screen.variograms(&self.pairs, all, t, &self.den);
                (0..m)
                    .map(|s| {
                        let range = |d: usize| (s * nd + d) * nh..(s * nd + d + 1) * nh;
                        let xs: Vec<&[f64]> = (0..nd).map(|d| &approx[range(d)]).collect();
                        let es: Vec<&[f64]> = (0..nd).map(|d| &bound[range(d)]).collect();
                        certain_best(&self.target_smvar, &xs, &es)
                    })
                    .collect()
            }
            None => vec![None; m],
        };
        // the maps whose exact variograms are needed: (surrogate, size)
        let needed: Vec<(usize, usize)> = decided
            .iter()
            .enumerate()
            .flat_map(|(s, d)| match d {
                Some(d) => vec![(s, *d)],
                None => (0..nd).map(|d| (s, d)).collect(),
            })
            .collect();
        let nt = needed.len();
        let n = self.x.len();
        let mut x = vec![0.0; n * nt];
        for i in 0..n {
            for (c, &(s, d)) in needed.iter().enumerate() {
                x[i * nt + c] = all[i * t + s * nd + d];
            }
        }
        let svs = self.smoothed_variograms(&x, nt);
        let mut out = Vec::with_capacity(m);
        let mut c = 0;
        for d in decided {
            let mut best: Option<(f64, f64, f64, usize)> = None;
            let sizes = match d {
                Some(d) => d..d + 1,
                None => 0..nd,
            };
            for di in sizes {
                let (a, b, sse) = regress(&svs[c], &self.target_smvar);
                c += 1;
                if best.is_none_or(|(_, _, e, _)| sse < e) {
                    best = Some((a, b, sse, di));
                }
            }
            let (a, b, _, di) = best.expect("at least one size");
            out.push((a, b, di));
        }
        out
    }

    /// Generate `n` surrogates (rows of the `n × points` result). Surrogate `i` uses the ChaCha8
    /// stream `i` of `seed`, so the result is identical at any thread count and the first `m`
    /// rows do not depend on `n`.
    pub fn generate(&self, n: usize, seed: u64) -> Array2<f64> {
        generate_rows(n, self.x.len(), BATCH, |r| self.batch(seed, r))
    }

    /// Compare the smoothed variograms of `surrogates` (rows) with the target's.
    pub fn fit_error(&self, surrogates: ArrayView2<f64>) -> Result<VariogramFit> {
        if surrogates.ncols() != self.x.len() || surrogates.nrows() == 0 {
            return Err(Error::ShapeMismatch {
                what: "surrogates",
                expected: format!("[>0, {}]", self.x.len()),
                got: format!("{:?}", surrogates.shape()),
            });
        }
        let curves: Vec<Vec<f64>> = surrogates
            .outer_iter()
            .into_par_iter()
            .map(|r| self.smoothed_variogram(&r.to_vec()))
            .collect();
        // (one pass per surrogate; rows are independent, so the result is thread-count invariant)
        Ok(summarise_fit(
            self.h.clone(),
            self.target_smvar.clone(),
            curves,
        ))
    }
}
