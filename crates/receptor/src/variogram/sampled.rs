//! Surrogates from sampled pairs of points (Burt et al. 2020's sampled method, voxels).

use ndarray::{Array2, ArrayView2};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::fit::{
    VariogramFit, bins_and_bandwidth, check_common, finish_surrogate, generate_rows,
    percentile_f32, regress, sorted_copy, summarise_fit, vgram_weights_row,
};
use super::neighbours::k_nearest;
use super::params::{Kernel, SampledParams};
use super::smoother::{MAX_MAPS, Smoother};
use crate::error::{Error, Result};
use crate::rng_for;

/// Surrogates of the sampled method drawn together: their permuted maps share one pass over
/// the neighbour table. Each surrogate's values are what it has alone.
const BATCH: usize = MAX_MAPS;

/// Sampled variogram-matching surrogate generator (BrainSMASH `Sampled`) for dense maps
/// (e.g. ~20 000 grey-matter voxels), using each point's `knn` nearest neighbours
/// (found exactly, by a grid of cells; `variogram/neighbours.rs`).
#[derive(Debug, Clone)]
pub struct SampledSurrogates {
    pub(super) x: Vec<f64>,
    pub(super) sorted: Vec<f64>,
    pub(super) params: SampledParams,
    pub(super) ks: Vec<usize>,
    /// Neighbours (n × knn), their segments of equal distance, kernel weights and sums.
    pub(super) smoother: Smoother,
    pub(super) dmax: f64,
    pub(super) h: Vec<f64>,
    pub(super) b: f64,
}

impl SampledSurrogates {
    /// Prepare the generator for target `values` at world `coords` (mm, one per value).
    /// Errors if `knn ≥ n` or `ns > n`.
    pub fn new(values: &[f64], coords: &[[f64; 3]], params: SampledParams) -> Result<Self> {
        check_common(values, &params.deltas, params.pv, params.nh, params.b)?;
        let n = values.len();
        if coords.len() != n {
            return Err(Error::ShapeMismatch {
                what: "coordinates (points of the map)",
                expected: n.to_string(),
                got: coords.len().to_string(),
            });
        }
        if let Some(i) = coords.iter().position(|c| c.iter().any(|v| !v.is_finite())) {
            return Err(Error::NonFinite {
                what: "coordinates",
                index: i,
            });
        }
        if params.knn < 2 || params.knn >= n {
            return Err(Error::InvalidParameter {
                name: "knn",
                value: params.knn.to_string(),
                reason: "must be in [2, number of points)",
            });
        }
        if params.ns < 3 || params.ns > n {
            return Err(Error::InvalidParameter {
                name: "ns",
                value: params.ns.to_string(),
                reason: "must be in [3, number of points]",
            });
        }
        let knn = params.knn;
        let (nb_idx, nb_dist) = k_nearest(coords, knn);
        if params.kernel == Kernel::InvDist && nb_dist.iter().any(|&d| d <= 0.0) {
            return Err(Error::InvalidParameter {
                name: "kernel",
                value: "inv-dist".into(),
                reason: "two points are at zero distance",
            });
        }
        let ks: Vec<usize> = params
            .deltas
            .iter()
            .map(|d| ((d * knn as f64) as usize).clamp(1, knn))
            .collect();
        let dmax = percentile_f32(nb_dist.clone(), params.pv);
        let dmin = nb_dist
            .iter()
            .fold(f64::INFINITY, |a, &v| a.min(f64::from(v)));
        let (h, b) = bins_and_bandwidth(
            dmin,
            dmax,
            params.nh,
            params.pv,
            params.b,
            "neighbour distances are all equal",
        )?;
        let smoother = Smoother::new(params.kernel, nb_idx, nb_dist, knn, &ks);
        Ok(Self {
            x: values.to_vec(),
            sorted: sorted_copy(values),
            params,
            ks,
            smoother,
            dmax,
            h,
            b,
        })
    }

    /// Distances (mm) at which smoothed variograms are evaluated.
    pub fn h(&self) -> &[f64] {
        &self.h
    }

    /// The `ns` points whose neighbour pairs enter one surrogate's variograms.
    pub(super) fn sample_rows(&self, rng: &mut ChaCha8Rng) -> Vec<usize> {
        rand::seq::index::sample(rng, self.x.len(), self.params.ns).into_vec()
    }

    /// Smoothed variograms of `maps` (each n values) over the pairs (sampled row, neighbour
    /// closer than `dmax`): `Σ_e w(u_e, h_k) v_e / Σ_e w(u_e, h_k)` with `v_e` half the squared
    /// difference across pair `e`. Pairs at one distance from one row share their weights, so
    /// their differences are summed first (a segment of [`Smoother`]).
    pub(super) fn smoothed_variograms(&self, rows: &[usize], maps: &[&[f64]]) -> Vec<Vec<f64>> {
        let nh = self.h.len();
        let nt = maps.len();
        let (h0, dh) = (self.h[0], self.h[1] - self.h[0]);
        let mut num = vec![0.0; nt * nh];
        let mut den = vec![0.0; nh];
        let mut w = vec![0.0; nh];
        let mut v = vec![0.0; nt];
        for &r in rows {
            for (u, seg) in self.smoother.segments_below(r, self.dmax) {
                v.iter_mut().for_each(|a| *a = 0.0);
                for &j in seg {
                    for (a, x) in v.iter_mut().zip(maps) {
                        let d = x[r] - x[j as usize];
                        *a += 0.5 * d * d;
                    }
                }
                vgram_weights_row(u, h0, dh, self.b, &mut w);
                let count = seg.len() as f64;
                for k in 0..nh {
                    den[k] += w[k] * count;
                }
                for (t, &vt) in v.iter().enumerate() {
                    let row = &mut num[t * nh..(t + 1) * nh];
                    for k in 0..nh {
                        row[k] += w[k] * vt;
                    }
                }
            }
        }
        (0..nt)
            .map(|t| (0..nh).map(|k| num[t * nh + k] / den[k]).collect())
            .collect()
    }

    /// Surrogates `streams` (ChaCha8 streams of `seed`), their permuted maps smoothed in one
    /// pass over the neighbours. Each is what a batch of one would give.
    pub(super) fn batch(&self, seed: u64, streams: std::ops::Range<u64>) -> Vec<Vec<f64>> {
        let n = self.x.len();
        let nd = self.ks.len();
        let m = (streams.end - streams.start) as usize;
        let (all, rngs) = self.smoother.smooth_permuted(&self.x, seed, streams);
        rngs.into_iter()
            .enumerate()
            .map(|(b, mut rng)| {
                let rows = self.sample_rows(&mut rng);
                let smoothed: Vec<Vec<f64>> = (0..nd)
                    .map(|d| (0..n).map(|i| all[i * nd * m + b * nd + d]).collect())
                    .collect();
                let mut maps = vec![&self.x[..]];
                maps.extend(smoothed.iter().map(|s| &s[..]));
                let sv = self.smoothed_variograms(&rows, &maps);
                let mut best: Option<(f64, f64, f64, usize)> = None;
                for di in 0..nd {
                    let (a, b, sse) = regress(&sv[di + 1], &sv[0]);
                    if best.is_none_or(|(_, _, s, _)| sse < s) {
                        best = Some((a, b, sse, di));
                    }
                }
                let (a, b, _, di) = best.expect("at least one delta");
                finish_surrogate(
                    &smoothed[di],
                    a,
                    b,
                    self.params.resample.then_some(&self.sorted[..]),
                    &mut rng,
                )
            })
            .collect()
    }

    /// Generate `n` surrogates (rows of the `n × points` result); deterministic in `seed` at any
    /// thread count and batch (surrogate `i` uses ChaCha8 stream `i`).
    pub fn generate(&self, n: usize, seed: u64) -> Array2<f64> {
        generate_rows(n, self.x.len(), BATCH, |r| self.batch(seed, r))
    }

    /// Compare surrogates' smoothed variograms with the target's, on one random sample of `ns`
    /// points drawn with `seed` (the same sample for target and every surrogate).
    pub fn fit_error(&self, surrogates: ArrayView2<f64>, seed: u64) -> Result<VariogramFit> {
        if surrogates.ncols() != self.x.len() || surrogates.nrows() == 0 {
            return Err(Error::ShapeMismatch {
                what: "surrogates",
                expected: format!("[>0, {}]", self.x.len()),
                got: format!("{:?}", surrogates.shape()),
            });
        }
        let mut rng = rng_for(seed, u64::MAX);
        let rows = self.sample_rows(&mut rng);
        let target = self.smoothed_variograms(&rows, &[&self.x]).remove(0);
        let curves: Vec<Vec<f64>> = surrogates
            .outer_iter()
            .into_par_iter()
            .map(|r| self.smoothed_variograms(&rows, &[&r.to_vec()]).remove(0))
            .collect();
        Ok(summarise_fit(self.h.clone(), target, curves))
    }
}
