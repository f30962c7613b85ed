//! Which neighbourhood size a full-method surrogate takes, decided from cheap variograms with
//! error bounds; the exact variograms of all sizes are computed only when the bounds cannot
//! decide.
//!
//! A surrogate takes the size whose smoothed variogram, regressed on the target's, leaves the
//! smallest residual sum of squares (SSE). The exact smoothed variogram costs `nh`
//! multiply-adds per pair and size. Here the pairs are first gathered into `NB` bins of
//! distance: per bin and map, the sum of the half squared differences `A0` and of their products
//! with the pair's offset from the bin centre `A1`; the Gaussian weight of a pair is replaced by
//! its first-order Taylor expansion about the centre, `w(ū) + w'(ū) τ`, so that the variogram is
//! `Σ_b w(ū_b) A0_b + w'(ū_b) A1_b`, and the Taylor remainder is bounded by `½ τ_max² max|w''|`
//! over the bin (`|w''| = c² |z² - 1| exp(-z²/2)`, `z = c (u - h)`, `c = 2.68 / b`), so that the
//! variogram's error is at most `Σ_b ½ τ_max,b² M_b A0_b`. A bound on the variogram's error bounds
//! the SSE's: with `ε` the error and `β` the slope, `√SSE(x) ≤ √SSE(x') + |β'| ‖ε‖` and
//! `√SSE(x') ≤ √SSE(x) + |β| ‖ε‖`, `|β| ≤ ‖y_c‖ / (‖x'_c‖ - ‖ε‖)` (centred norms). When the upper
//! bound of one size's √SSE is below the lower bounds of all others, that size is the exact
//! minimum, and only its exact variogram is computed (for the slope and intercept, bit for bit
//! those of the full computation). Otherwise all sizes' exact variograms are computed, as without
//! the screen.

/// Distance bins of the screen.
const NB: usize = 512;

/// Relative slack for rounding (the exact variograms' weights come from a recurrence, their
/// sums and the bounds' own sums are rounded): far above either, far below the Taylor bound.
const SLACK: f64 = 1e-9;

/// The binned pairs and the weights at the bin centres, for one set of pairs.
#[derive(Debug, Clone)]
pub(super) struct Screen {
    /// Bin of each pair.
    bin: Vec<u32>,
    /// Offset (mm) of each pair's distance from its bin's centre.
    tau: Vec<f64>,
    nh: usize,
    /// `w(ū_b, h_k)`, `w'(ū_b, h_k)` and the error bound per unit `A0`, `½ τ_max² max|w''|`;
    /// each `NB × nh`, bin-major.
    w0: Vec<f64>,
    w1: Vec<f64>,
    e0: Vec<f64>,
}

/// `|z² - 1| exp(-z²/2)` at its largest over `[lo, hi]`.
fn max_curvature(lo: f64, hi: f64) -> f64 {
    let g = |z: f64| (z * z - 1.0).abs() * (-0.5 * z * z).exp();
    let mut m = g(lo).max(g(hi));
    for z in [0.0, 3f64.sqrt(), -(3f64.sqrt())] {
        if lo <= z && z <= hi {
            m = m.max(g(z));
        }
    }
    m
}

impl Screen {
    /// The screen of pairs at distances `u` for the variogram at `h` (uniform) with bandwidth
    /// `b`.
    pub(super) fn new(u: &[f64], h: &[f64], b: f64) -> Self {
        let nh = h.len();
        let (lo, hi) = (h[0], h[nh - 1]);
        let width = (hi - lo) / NB as f64;
        let centre = |k: usize| lo + (k as f64 + 0.5) * width;
        let mut bin = Vec::with_capacity(u.len());
        let mut tau = Vec::with_capacity(u.len());
        let mut reach = vec![0.0f64; NB];
        for &ue in u {
            let k = (((ue - lo) / width).floor().max(0.0) as usize).min(NB - 1);
            let t = ue - centre(k);
            bin.push(k as u32);
            tau.push(t);
            reach[k] = reach[k].max(t.abs());
        }
        let c = 2.68 / b;
        let (mut w0, mut w1, mut e0) = (vec![0.0; NB * nh], vec![0.0; NB * nh], vec![0.0; NB * nh]);
        for k in 0..NB {
            let ub = centre(k);
            for (q, &hq) in h.iter().enumerate() {
                let z = c * (ub - hq);
                let w = (-0.5 * z * z).exp();
                w0[k * nh + q] = w;
                w1[k * nh + q] = -c * z * w;
                let r = reach[k];
                e0[k * nh + q] =
                    0.5 * r * r * c * c * max_curvature(c * (ub - r - hq), c * (ub + r - hq));
            }
        }
        Self {
            bin,
            tau,
            nh,
            w0,
            w1,
            e0,
        }
    }

    /// Approximate smoothed variograms of `t` maps stored interleaved (`x[i * t + d]`) over
    /// `pairs`, with `den` the exact weight sums: per map `nh` values and a bound on each one's
    /// error, `(approx, bound)`, each `t × nh`.
    pub(super) fn variograms(
        &self,
        pairs: &[(u32, u32)],
        x: &[f64],
        t: usize,
        den: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let nh = self.nh;
        let mut a0 = vec![0.0; NB * t];
        let mut a1 = vec![0.0; NB * t];
        for ((&(i, j), &k), &tau) in pairs.iter().zip(&self.bin).zip(&self.tau) {
            let (p, q) = (
                &x[i as usize * t..(i as usize + 1) * t],
                &x[j as usize * t..(j as usize + 1) * t],
            );
            let k = k as usize;
            let (r0, r1) = (&mut a0[k * t..(k + 1) * t], &mut a1[k * t..(k + 1) * t]);
            for d in 0..t {
                let v = 0.5 * (p[d] - q[d]) * (p[d] - q[d]);
                r0[d] += v;
                r1[d] += v * tau;
            }
        }
        // bins × maps → maps × nh
        let mut num = vec![0.0; nh * t];
        let mut err = vec![0.0; nh * t];
        for k in 0..NB {
            let (r0, r1) = (&a0[k * t..(k + 1) * t], &a1[k * t..(k + 1) * t]);
            for q in 0..nh {
                let (w0, w1, e0) = (
                    self.w0[k * nh + q],
                    self.w1[k * nh + q],
                    self.e0[k * nh + q],
                );
                let (nrow, erow) = (&mut num[q * t..(q + 1) * t], &mut err[q * t..(q + 1) * t]);
                for d in 0..t {
                    nrow[d] += w0 * r0[d] + w1 * r1[d];
                    erow[d] += e0 * r0[d];
                }
            }
        }
        let mut approx = vec![0.0; t * nh];
        let mut bound = vec![0.0; t * nh];
        for q in 0..nh {
            for d in 0..t {
                let (nv, ev) = (num[q * t + d], err[q * t + d]);
                approx[d * nh + q] = nv / den[q];
                bound[d * nh + q] = (ev + SLACK * (nv.abs() + ev) + f64::MIN_POSITIVE) / den[q];
            }
        }
        (approx, bound)
    }
}

/// The index of the smallest residual sum of squares of `y` regressed on each candidate, if
/// the approximate candidates `approx` (each with `y.len()` values, `bound` on each value's
/// error) decide it; `None` when two candidates' bounds overlap.
pub(super) fn certain_best(y: &[f64], approx: &[&[f64]], bound: &[&[f64]]) -> Option<usize> {
    let nh = y.len() as f64;
    let my = y.iter().sum::<f64>() / nh;
    let yc = y.iter().map(|v| (v - my) * (v - my)).sum::<f64>().sqrt();
    // (upper, lower) bounds of √SSE per candidate
    let bounds: Vec<(f64, f64)> = approx
        .iter()
        .zip(bound)
        .map(|(x, e)| {
            let (_, beta, sse) = super::fit::regress(x, y);
            let eta = e.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mx = x.iter().sum::<f64>() / nh;
            let xc = x.iter().map(|v| (v - mx) * (v - mx)).sum::<f64>().sqrt();
            let root = sse.max(0.0).sqrt();
            let upper = (root + beta.abs() * eta) * (1.0 + SLACK) + f64::MIN_POSITIVE;
            let lower = if xc > eta {
                ((root - yc / (xc - eta) * eta) * (1.0 - SLACK)).max(0.0)
            } else {
                0.0
            };
            (upper, lower)
        })
        .collect();
    let best = (0..bounds.len()).min_by(|&a, &b| bounds[a].0.total_cmp(&bounds[b].0))?;
    let sure = bounds
        .iter()
        .enumerate()
        .all(|(d, &(_, lower))| d == best || bounds[best].0 < lower);
    sure.then_some(best)
}
