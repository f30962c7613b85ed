//! Surrogates from sampled pairs of points (Burt et al. 2020's sampled method, voxels).

use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::distance::dist;
use super::fit::{
    VariogramFit, bins_and_bandwidth, check_common, finish_surrogate, generate_rows,
    half_squared_differences, percentile_f32, regress, smooth_variograms, sorted_copy,
    summarise_fit,
};
use super::full::{WEIGHT_LIMIT, precompute_weights, smooth_all, smooth_map};
use super::params::{Kernel, SampledParams};
use crate::error::{Error, Result};
use crate::rng_for;

/// Sampled variogram-matching surrogate generator (BrainSMASH `Sampled`) for dense maps
/// (e.g. ~20 000 grey-matter voxels), using each point's `knn` nearest neighbours
/// (found here by exact brute-force search over the coordinates).
#[derive(Debug, Clone)]
pub struct SampledSurrogates {
    pub(super) x: Vec<f64>,
    pub(super) sorted: Vec<f64>,
    pub(super) params: SampledParams,
    pub(super) ks: Vec<usize>,
    pub(super) nb_idx: Vec<u32>,
    pub(super) nb_dist: Vec<f32>,
    pub(super) kernel_w: Option<Vec<Vec<f32>>>,
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
        // exact k-nearest neighbours by brute force, one row per point, written in place
        let mut nb_idx = vec![0u32; n * knn];
        let mut nb_dist = vec![0.0f32; n * knn];
        nb_idx
            .par_chunks_mut(knn)
            .zip(nb_dist.par_chunks_mut(knn))
            .enumerate()
            .for_each_init(Vec::new, |cand: &mut Vec<(f64, u32)>, (i, (ri, rd))| {
                let ci = coords[i];
                cand.clear();
                cand.extend(
                    (0..n)
                        .filter(|&j| j != i)
                        .map(|j| (dist(&ci, &coords[j]), j as u32)),
                );
                let cmp = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                cand.select_nth_unstable_by(knn - 1, cmp);
                cand.truncate(knn);
                cand.sort_by(cmp);
                for (k, c) in cand.iter().enumerate() {
                    ri[k] = c.1;
                    rd[k] = c.0 as f32;
                }
            });
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
        let kernel_w = precompute_weights(params.kernel, &nb_dist, knn, n, &ks, WEIGHT_LIMIT);
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
        Ok(Self {
            x: values.to_vec(),
            sorted: sorted_copy(values),
            params,
            ks,
            nb_idx,
            nb_dist,
            kernel_w,
            dmax,
            h,
            b,
        })
    }

    /// Distances (mm) at which smoothed variograms are evaluated.
    pub fn h(&self) -> &[f64] {
        &self.h
    }

    /// Pairs (sampled row, neighbour) of the sampled points with distance below `dmax`.
    pub(super) fn sample_pairs(&self, rng: &mut ChaCha8Rng) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
        let knn = self.params.knn;
        let idx = rand::seq::index::sample(rng, self.x.len(), self.params.ns);
        let (mut a, mut bb, mut u) = (Vec::new(), Vec::new(), Vec::new());
        for r in idx.iter() {
            for j in 0..knn {
                let d = f64::from(self.nb_dist[r * knn + j]);
                if d < self.dmax {
                    a.push(r as u32);
                    bb.push(self.nb_idx[r * knn + j]);
                    u.push(d);
                }
            }
        }
        (a, bb, u)
    }

    pub(super) fn one(&self, seed: u64, stream: u64) -> Vec<f64> {
        let mut rng = rng_for(seed, stream);
        let n = self.x.len();
        let mut perm = self.x.clone();
        perm.shuffle(&mut rng);
        let (pa, pb, u) = self.sample_pairs(&mut rng);
        let hsd = |x: &[f64]| half_squared_differences(&pa, &pb, x);
        let mut smoothed = vec![vec![0.0; n]; self.ks.len()];
        match &self.kernel_w {
            Some(w) => smooth_all(
                &perm,
                &self.nb_idx,
                self.params.knn,
                &self.ks,
                w,
                &mut smoothed,
            ),
            None => {
                for (di, &k) in self.ks.iter().enumerate() {
                    smooth_map(
                        &perm,
                        &self.nb_idx,
                        &self.nb_dist,
                        self.params.knn,
                        k,
                        self.params.kernel,
                        None,
                        &mut smoothed[di],
                    );
                }
            }
        }
        let mut vs = vec![hsd(&self.x)];
        vs.extend(smoothed.iter().map(|sm| hsd(sm)));
        let sv = smooth_variograms(&u, &vs, &self.h, self.b);
        let mut best: Option<(f64, f64, f64, usize)> = None;
        for di in 0..self.ks.len() {
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
    }

    /// Generate `n` surrogates (rows of the `n × points` result); deterministic in `seed` at any
    /// thread count (surrogate `i` uses ChaCha8 stream `i`).
    pub fn generate(&self, n: usize, seed: u64) -> Array2<f64> {
        generate_rows(n, self.x.len(), 1, |r| {
            r.map(|i| self.one(seed, i)).collect()
        })
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
        let (pa, pb, u) = self.sample_pairs(&mut rng);
        let hsd = |x: &[f64]| half_squared_differences(&pa, &pb, x);
        let target = smooth_variograms(&u, &[hsd(&self.x)], &self.h, self.b).remove(0);
        // one surrogate at a time (memory: one pair list per thread, not per surrogate)
        let curves: Vec<Vec<f64>> = surrogates
            .outer_iter()
            .into_par_iter()
            .map(|r| smooth_variograms(&u, &[hsd(&r.to_vec())], &self.h, self.b).remove(0))
            .collect();
        Ok(summarise_fit(self.h.clone(), target, curves))
    }
}
