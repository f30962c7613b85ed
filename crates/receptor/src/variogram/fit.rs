//! Variogram estimation, smoothing and the least-squares fit that rescales a surrogate.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_finite};

/// Linear-interpolated percentile (numpy's default) of unsorted data; `p` in [0, 100].
pub(super) fn percentile(a: Vec<f64>, p: f64) -> f64 {
    percentile_by(a, p, f64::total_cmp)
}

/// [`percentile`] of `f32` data (saves memory for large neighbour tables); interpolated in
/// `f64`.
pub(super) fn percentile_f32(a: Vec<f32>, p: f64) -> f64 {
    percentile_by(a, p, f32::total_cmp)
}

/// [`percentile`] of data of either float type, ordered by `cmp` (the type's `total_cmp`).
fn percentile_by<T: Copy + Into<f64>>(
    mut a: Vec<T>,
    p: f64,
    cmp: fn(&T, &T) -> std::cmp::Ordering,
) -> f64 {
    let n = a.len();
    let pos = p / 100.0 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, &mut vlo, upper) = a.select_nth_unstable_by(lo, cmp);
    let vlo = vlo.into();
    if frac == 0.0 || upper.is_empty() {
        return vlo;
    }
    // the smallest value above the `lo`-th (widening to f64 keeps the order and the value)
    let vhi = upper
        .iter()
        .map(|&v| v.into())
        .fold(f64::INFINITY, f64::min);
    vlo + frac * (vhi - vlo)
}

/// The `nh` distance bins from `dmin` to `dmax` and the Gaussian bandwidth of the variogram
/// smoothing (`b`, else three bin widths). Fails when the bins have no width (`pv` is named) or
/// the bandwidth is not positive (`b`, with `equal_why` saying which distances are all equal).
pub(super) fn bins_and_bandwidth(
    dmin: f64,
    dmax: f64,
    nh: usize,
    pv: f64,
    b: Option<f64>,
    equal_why: &'static str,
) -> Result<(Vec<f64>, f64)> {
    let h = linspace(dmin, dmax, nh);
    if h[1] - h[0] <= 0.0 || h[1].is_nan() {
        return Err(Error::InvalidParameter {
            name: "pv",
            value: pv.to_string(),
            reason: "all distances entering the variogram are equal",
        });
    }
    let b = b.unwrap_or(3.0 * (h[1] - h[0]));
    if b.is_nan() || b <= 0.0 {
        return Err(Error::InvalidParameter {
            name: "b",
            value: b.to_string(),
            reason: equal_why,
        });
    }
    Ok((h, b))
}

pub(super) fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Least-squares fit `y ≈ α + β x`: returns `(α, β, residual sum of squares)`.
pub(super) fn regress(x: &[f64], y: &[f64]) -> (f64, f64, f64) {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let mut sxx = 0.0;
    let mut sxy = 0.0;
    for (a, b) in x.iter().zip(y) {
        sxx += (a - mx) * (a - mx);
        sxy += (a - mx) * (b - my);
    }
    let beta = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let alpha = my - beta * mx;
    let sse = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - alpha - beta * a).powi(2))
        .sum();
    (alpha, beta, sse)
}

/// Gaussian variogram-smoothing weight, as in BrainSMASH: `exp(-(2.68 |u - h| / b)² / 2)`
/// (direct form; the generators use the recurrence in [`vgram_weights_row`]).
#[cfg(test)]
pub(super) fn vgram_weight(du: f64, b: f64) -> f64 {
    let z = 2.68 * du / b;
    (-0.5 * z * z).exp()
}

/// Gaussian variogram-smoothing weights of one pair distance `u` at every `h` (uniform grid),
/// written into `w`. Uses the recurrence `w_{k±1} = w_k · r`, `r ← r · exp(-δ²)` from the bin
/// nearest `u` outwards (3 `exp` calls instead of `nh`; no underflow near `u`).
#[inline]
pub(super) fn vgram_weights_row(u: f64, h0: f64, dh: f64, b: f64, w: &mut [f64]) {
    let nh = w.len();
    let c = 2.68 / b;
    let delta = c * dh;
    let a = c * (u - h0);
    let k0 = (((u - h0) / dh).round().max(0.0) as usize).min(nh - 1);
    let t0 = a - k0 as f64 * delta;
    w[k0] = (-0.5 * t0 * t0).exp();
    let shrink = (-delta * delta).exp();
    let mut r = (delta * t0 - 0.5 * delta * delta).exp();
    for k in (k0 + 1)..nh {
        w[k] = w[k - 1] * r;
        r *= shrink;
    }
    let mut r = (-delta * t0 - 0.5 * delta * delta).exp();
    for k in (0..k0).rev() {
        w[k] = w[k + 1] * r;
        r *= shrink;
    }
}

pub(super) fn check_common(
    values: &[f64],
    deltas: &[f64],
    pv: f64,
    nh: usize,
    b: Option<f64>,
) -> Result<()> {
    if values.len() < 5 {
        return Err(Error::TooFew {
            what: "map values",
            min: 5,
            got: values.len(),
        });
    }
    check_finite("target map", values)?;
    if deltas.is_empty() || deltas.iter().any(|&d| !(d > 0.0 && d <= 1.0)) {
        return Err(Error::InvalidParameter {
            name: "deltas",
            value: format!("{deltas:?}"),
            reason: "need at least one fraction in (0, 1]",
        });
    }
    if !(pv > 0.0 && pv <= 100.0) {
        return Err(Error::InvalidParameter {
            name: "pv",
            value: pv.to_string(),
            reason: "must be in (0, 100]",
        });
    }
    if nh < 2 {
        return Err(Error::InvalidParameter {
            name: "nh",
            value: nh.to_string(),
            reason: "must be at least 2",
        });
    }
    if let Some(b) = b
        && !(b > 0.0 && b.is_finite())
    {
        return Err(Error::InvalidParameter {
            name: "b",
            value: b.to_string(),
            reason: "must be positive",
        });
    }
    Ok(())
}

/// Final step shared by both methods: rescale, add noise, then rank-match or de-mean.
pub(super) fn finish_surrogate(
    smoothed: &[f64],
    alpha: f64,
    beta: f64,
    sorted_target: Option<&[f64]>,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let sb = beta.abs().sqrt();
    let sa = alpha.abs().sqrt();
    let mut surr: Vec<f64> = smoothed
        .iter()
        .map(|&s| {
            let z: f64 = StandardNormal.sample(rng);
            sb * s + sa * z
        })
        .collect();
    match sorted_target {
        Some(sorted) => {
            let mut order: Vec<usize> = (0..surr.len()).collect();
            order.sort_by(|&a, &b| surr[a].total_cmp(&surr[b]).then(a.cmp(&b)));
            for (rank, &i) in order.iter().enumerate() {
                surr[i] = sorted[rank];
            }
        }
        None => {
            let m = surr.iter().sum::<f64>() / surr.len() as f64;
            surr.iter_mut().for_each(|v| *v -= m);
        }
    }
    surr
}

pub(super) fn sorted_copy(x: &[f64]) -> Vec<f64> {
    let mut s = x.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

/// Agreement between surrogate variograms and the target's (smoothed) variogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariogramFit {
    /// Distances (mm) at which the variograms are evaluated.
    pub h: Vec<f64>,
    /// Target map's smoothed variogram at `h`.
    pub target: Vec<f64>,
    /// Mean over surrogates of their smoothed variograms at `h`.
    pub surrogate_mean: Vec<f64>,
    /// 2.5th and 97.5th percentiles over surrogates at each `h`.
    pub surrogate_p025: Vec<f64>,
    /// See `surrogate_p025`.
    pub surrogate_p975: Vec<f64>,
    /// Root-mean-square difference between `surrogate_mean` and `target`, divided by the mean of
    /// `target` (dimensionless).
    pub rel_rmse_mean: f64,
    /// Median over surrogates of each surrogate's own relative RMS error against `target`.
    pub rel_rmse_median: f64,
}

pub(super) fn summarise_fit(h: Vec<f64>, target: Vec<f64>, curves: Vec<Vec<f64>>) -> VariogramFit {
    let nh = h.len();
    let ns = curves.len();
    let tm = target.iter().sum::<f64>() / nh as f64;
    let rel = |c: &[f64]| {
        (c.iter()
            .zip(&target)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / nh as f64)
            .sqrt()
            / tm
    };
    let mut mean = vec![0.0; nh];
    let mut lo = vec![0.0; nh];
    let mut hi = vec![0.0; nh];
    for k in 0..nh {
        let col: Vec<f64> = curves.iter().map(|c| c[k]).collect();
        mean[k] = col.iter().sum::<f64>() / ns as f64;
        lo[k] = percentile(col.clone(), 2.5);
        hi[k] = percentile(col, 97.5);
    }
    let indiv: Vec<f64> = curves.iter().map(|c| rel(c)).collect();
    VariogramFit {
        rel_rmse_mean: rel(&mean),
        rel_rmse_median: percentile(indiv, 50.0),
        h,
        target,
        surrogate_mean: mean,
        surrogate_p025: lo,
        surrogate_p975: hi,
    }
}

/// `n` surrogates of `points` values as the rows of an `n × points` array, drawn `batch` at a
/// time in parallel: `make(first..first + m)` returns the rows of surrogates `first` to
/// `first + m - 1`. Each row must depend on its index alone (not on the batch it is drawn in),
/// so the result is the same at any thread count and batch size.
pub(super) fn generate_rows(
    n: usize,
    points: usize,
    batch: usize,
    make: impl Fn(std::ops::Range<u64>) -> Vec<Vec<f64>> + Sync,
) -> ndarray::Array2<f64> {
    use rayon::prelude::*;
    let mut out = ndarray::Array2::zeros((n, points));
    out.axis_chunks_iter_mut(ndarray::Axis(0), batch.max(1))
        .into_par_iter()
        .enumerate()
        .for_each(|(c, mut rows)| {
            let first = (c * batch.max(1)) as u64;
            let made = make(first..first + rows.nrows() as u64);
            for (mut row, v) in rows.outer_iter_mut().zip(made) {
                for (o, v) in row.iter_mut().zip(v) {
                    *o = v;
                }
            }
        });
    out
}
