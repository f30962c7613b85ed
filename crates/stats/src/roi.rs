//! ROI and brain–behaviour statistics: paired / one-sample t tests, Pearson and Spearman
//! correlations with 95% CIs, percentile bootstrap, partial correlation by residualisation,
//! comparison of two dependent non-overlapping correlations, Benjamini–Hochberg FDR.
//!
//! All inputs are slices of per-subject values (one per subject, same subject order across
//! slices). Missing values must be removed by the caller; NaN is rejected.

use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::error::{Result, StatsError, check_finite, check_len};

fn tdist(df: f64) -> Result<StudentsT> {
    StudentsT::new(0.0, 1.0, df).map_err(|_| StatsError::InvalidParameter {
        name: "df",
        value: df.to_string(),
        reason: "must be > 0",
    })
}

fn z975() -> f64 {
    Normal::standard().inverse_cdf(0.975)
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Result of a one-sample or paired t test.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TTest {
    /// Number of subjects (pairs).
    pub n: usize,
    /// Mean (of the differences), data units.
    pub mean: f64,
    /// Sample SD (of the differences), `n − 1` denominator.
    pub sd: f64,
    /// t statistic.
    pub t: f64,
    /// Degrees of freedom `n − 1`.
    pub df: f64,
    /// Two-sided p.
    pub p: f64,
    /// 95% CI of the mean, `mean ± t_{0.975, n−1} · sd/√n`.
    pub ci95: (f64, f64),
    /// Cohen's d_z = mean / sd (effect size of within-subject differences).
    pub cohens_dz: f64,
}

/// One-sample t test of `d` against 0 (length n ≥ 2).
pub fn one_sample_t_test(d: &[f64]) -> Result<TTest> {
    let n = d.len();
    if n < 2 {
        return Err(StatsError::TooFewObservations {
            what: "t test",
            needed: 2,
            got: n,
        });
    }
    check_finite("differences", d.iter().copied())?;
    let m = mean(d);
    let sd = (d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
    let se = sd / (n as f64).sqrt();
    let df = n as f64 - 1.0;
    let dist = tdist(df)?;
    let t = if se > 0.0 { m / se } else { f64::NAN };
    let p = if t.is_nan() {
        f64::NAN
    } else {
        (2.0 * dist.sf(t.abs())).min(1.0)
    };
    let q = dist.inverse_cdf(0.975);
    Ok(TTest {
        n,
        mean: m,
        sd,
        t,
        df,
        p,
        ci95: (m - q * se, m + q * se),
        cohens_dz: m / sd,
    })
}

/// One-sample t test of `d` against 0 adjusted for per-subject `covariates`: OLS of `d` on an
/// intercept and the covariates ([`crate::difference_design`]: centred to mean 0 unless a
/// covariate says otherwise), testing the intercept, i.e. the mean difference at the average
/// value of each centred covariate and at 0 of each uncentred one. `sd` is the residual SD,
/// `df = n − 1 − k` and `cohens_dz` the intercept over the residual SD. Without covariates it
/// equals [`one_sample_t_test`].
pub fn one_sample_t_test_adjusted(d: &[f64], covariates: &[crate::Covariate]) -> Result<TTest> {
    if covariates.is_empty() {
        return one_sample_t_test(d);
    }
    let n = d.len();
    let needed = covariates.len() + 2;
    if n < needed {
        return Err(StatsError::TooFewObservations {
            what: "adjusted t test",
            needed,
            got: n,
        });
    }
    check_finite("differences", d.iter().copied())?;
    let design = crate::difference_design(n, None, covariates)?;
    // the design's columns are centred, so the normal equations are well conditioned
    let x = design.x();
    let p = x.ncols();
    let xm = DMatrix::from_fn(n, p, |i, j| x[(i, j)]);
    let yv = DVector::from_iterator(n, d.iter().copied());
    let xtx = xm.transpose() * &xm;
    let inv = xtx.try_inverse().ok_or_else(|| StatsError::Design {
        reason: "covariates are collinear".into(),
    })?;
    let beta = &inv * xm.transpose() * &yv;
    let resid = &yv - &xm * &beta;
    let df = (n - p) as f64;
    let rss = resid.dot(&resid);
    let m = beta[0];
    let dist = tdist(df)?;
    // the covariates explain the differences exactly (e.g. global CBF adjusted for itself):
    // no residual variance, nothing to test
    if rss <= 1e-12 * yv.dot(&yv) {
        return Ok(TTest {
            n,
            mean: m,
            sd: 0.0,
            t: f64::NAN,
            df,
            p: f64::NAN,
            ci95: (f64::NAN, f64::NAN),
            cohens_dz: f64::NAN,
        });
    }
    let s2 = rss / df;
    let se = (s2 * inv[(0, 0)]).sqrt();
    let t = m / se;
    let q = dist.inverse_cdf(0.975);
    Ok(TTest {
        n,
        mean: m,
        sd: s2.sqrt(),
        t,
        df,
        p: (2.0 * dist.sf(t.abs())).min(1.0),
        ci95: (m - q * se, m + q * se),
        cohens_dz: m / s2.sqrt(),
    })
}

/// Paired t test of `a − b` (same subjects, same order; n ≥ 2), e.g. ROI CBF during vs before.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TTest> {
    check_len("paired samples", a.len(), b.len())?;
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    one_sample_t_test(&d)
}

/// Correlation coefficient: of two ROI variables over subjects here, of two maps over parcels or
/// voxels in `cbflow-receptor` (the one definition for both).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum CorrelationMethod {
    /// Spearman's rank correlation (Pearson correlation of tie-averaged [`ranks`]). The default,
    /// as in JuSpace (Dukart et al. 2021) and Hansen et al. (2022).
    #[default]
    Spearman,
    /// Pearson's product-moment correlation.
    Pearson,
}

/// A correlation with its 95% CI and p.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Correlation {
    /// Method.
    pub method: CorrelationMethod,
    /// Correlation coefficient.
    pub r: f64,
    /// Number of subjects.
    pub n: usize,
    /// Number of covariates partialled out (0 for a plain correlation).
    pub n_covariates: usize,
    /// 95% CI by the Fisher z transform: SE `1/√(n−3−k)` (Pearson, Fisher 1921) or
    /// `√((1 + r²/2)/(n−3))` (Spearman, Bonett & Wright 2000).
    pub ci95: (f64, f64),
    /// Two-sided p from `t = r √(df/(1−r²))`, `df = n − 2 − k`.
    pub p: f64,
    /// Degrees of freedom of the t test.
    pub df: f64,
}

/// Pearson's r of two equally long vectors, in a fixed summation order; NaN when either has zero
/// variance (callers turn that into their own error). The one Pearson kernel of cbflow.
pub fn pearson_r(x: &[f64], y: &[f64]) -> f64 {
    let mx = mean(x);
    let my = mean(y);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

/// Ranks of `x` (1-based), ties given the average of the ranks they span (the "fractional"
/// ranking of Spearman's coefficient, R's `rank(ties.method = "average")`). NaN has no defined
/// rank: callers mask it first.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

fn corr_value(x: &[f64], y: &[f64], method: CorrelationMethod) -> f64 {
    match method {
        CorrelationMethod::Pearson => pearson_r(x, y),
        CorrelationMethod::Spearman => pearson_r(&ranks(x), &ranks(y)),
    }
}

fn check_pair(x: &[f64], y: &[f64], needed: usize) -> Result<()> {
    check_len("paired variables", x.len(), y.len())?;
    if x.len() < needed {
        return Err(StatsError::TooFewObservations {
            what: "correlation",
            needed,
            got: x.len(),
        });
    }
    check_finite("x", x.iter().copied())?;
    check_finite("y", y.iter().copied())
}

fn finish(method: CorrelationMethod, r: f64, n: usize, k: usize) -> Result<Correlation> {
    if !r.is_finite() {
        return Err(StatsError::InvalidParameter {
            name: "variables",
            value: "constant".into(),
            reason: "a variable has zero variance",
        });
    }
    let df = (n - 2 - k) as f64;
    let se = match method {
        CorrelationMethod::Pearson => 1.0 / ((n - 3 - k) as f64).sqrt(),
        CorrelationMethod::Spearman => ((1.0 + r * r / 2.0) / ((n - 3 - k) as f64)).sqrt(),
    };
    let rc = r.clamp(-1.0 + 1e-15, 1.0 - 1e-15);
    let z = rc.atanh();
    let q = z975();
    let t = rc * (df / (1.0 - rc * rc)).sqrt();
    let p = (2.0 * tdist(df)?.sf(t.abs())).min(1.0);
    Ok(Correlation {
        method,
        r,
        n,
        n_covariates: k,
        ci95: ((z - q * se).tanh(), (z + q * se).tanh()),
        p,
        df,
    })
}

/// Correlation of `x` and `y` (n ≥ 4) with Fisher-z 95% CI and t-test p.
pub fn correlation(x: &[f64], y: &[f64], method: CorrelationMethod) -> Result<Correlation> {
    check_pair(x, y, 4)?;
    finish(method, corr_value(x, y, method), x.len(), 0)
}

/// Residuals of `y` (n) after OLS on an intercept plus `covariates` (each a slice of length n).
pub fn residualise(y: &[f64], covariates: &[&[f64]]) -> Result<Vec<f64>> {
    let n = y.len();
    check_finite("y", y.iter().copied())?;
    for c in covariates {
        check_len("covariate", n, c.len())?;
        check_finite("covariate", c.iter().copied())?;
    }
    let p = covariates.len() + 1;
    if n <= p {
        return Err(StatsError::TooFewObservations {
            what: "residualise",
            needed: p + 1,
            got: n,
        });
    }
    let x = DMatrix::from_fn(n, p, |i, j| if j == 0 { 1.0 } else { covariates[j - 1][i] });
    let yv = DVector::from_column_slice(y);
    let svd = x.clone().svd(true, true);
    let beta = svd.solve(&yv, 1e-12).map_err(|e| StatsError::Design {
        reason: e.to_string(),
    })?;
    Ok((yv - x * beta).iter().copied().collect())
}

/// Partial correlation of `x` and `y` adjusting for `covariates` (e.g. baseline sgACC CBF vs
/// response, adjusted for global CBF): both are residualised on intercept + covariates and the
/// residuals correlated (Pearson; for Spearman the ranks are residualised). df = n − 2 − k,
/// CI with SE `1/√(n − 3 − k)`.
pub fn partial_correlation(
    x: &[f64],
    y: &[f64],
    covariates: &[&[f64]],
    method: CorrelationMethod,
) -> Result<Correlation> {
    let k = covariates.len();
    check_pair(x, y, 4 + k)?;
    let (xs, ys, cs): (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) = match method {
        CorrelationMethod::Pearson => (
            x.to_vec(),
            y.to_vec(),
            covariates.iter().map(|c| c.to_vec()).collect(),
        ),
        CorrelationMethod::Spearman => (
            ranks(x),
            ranks(y),
            covariates.iter().map(|c| ranks(c)).collect(),
        ),
    };
    let cref: Vec<&[f64]> = cs.iter().map(|c| c.as_slice()).collect();
    let rx = residualise(&xs, &cref)?;
    let ry = residualise(&ys, &cref)?;
    finish(method, pearson_r(&rx, &ry), x.len(), k)
}

/// Percentile bootstrap 95%-level CI (`level` in (0, 1)) of a correlation: `n_boot` resamples of
/// subjects with replacement from a ChaCha8 generator seeded with `seed`; resamples with a
/// constant variable are discarded. Returns `(lower, upper)` by linear interpolation of the
/// sorted bootstrap distribution (Efron & Tibshirani 1993, ch. 13). Percentile, not BCa.
pub fn bootstrap_correlation_ci(
    x: &[f64],
    y: &[f64],
    method: CorrelationMethod,
    n_boot: usize,
    level: f64,
    seed: u64,
) -> Result<(f64, f64)> {
    check_pair(x, y, 4)?;
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::InvalidParameter {
            name: "level",
            value: level.to_string(),
            reason: "must be in (0, 1)",
        });
    }
    if n_boot < 10 {
        return Err(StatsError::InvalidParameter {
            name: "n_boot",
            value: n_boot.to_string(),
            reason: "must be >= 10",
        });
    }
    let n = x.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rs = Vec::with_capacity(n_boot);
    let mut bx = vec![0.0; n];
    let mut by = vec![0.0; n];
    for _ in 0..n_boot {
        for i in 0..n {
            let j = rng.random_range(0..n);
            bx[i] = x[j];
            by[i] = y[j];
        }
        let r = corr_value(&bx, &by, method);
        if r.is_finite() {
            rs.push(r);
        }
    }
    if rs.len() < 10 {
        return Err(StatsError::TooFewObservations {
            what: "valid bootstrap resamples",
            needed: 10,
            got: rs.len(),
        });
    }
    rs.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        let h = (rs.len() - 1) as f64 * p;
        let lo = h.floor() as usize;
        let hi = h.ceil() as usize;
        rs[lo] + (h - lo as f64) * (rs[hi] - rs[lo])
    };
    let a = (1.0 - level) / 2.0;
    Ok((q(a), q(1.0 - a)))
}

/// Comparison of two dependent, non-overlapping correlations measured in the same subjects:
/// `r1 = corr(x1, y1)` (e.g. ΔCBF vs CADSS under placebo) and `r2 = corr(x2, y2)` (under
/// naltrexone).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DependentCorrelationTest {
    /// corr(x1, y1).
    pub r1: f64,
    /// corr(x2, y2).
    pub r2: f64,
    /// Number of subjects.
    pub n: usize,
    /// `r1 − r2`.
    pub difference: f64,
    /// Zou (2007) 95% CI of `r1 − r2`.
    pub ci95: (f64, f64),
    /// Raghunathan, Rosenthal & Rubin (1996) modified Pearson–Filon statistic `Z_PF`.
    pub z: f64,
    /// Two-sided normal p of `z`.
    pub p: f64,
    /// Estimated correlation between the two sample correlations (Pearson–Filon 1898).
    pub corr_r1_r2: f64,
}

/// Test whether two dependent non-overlapping Pearson correlations differ.
///
/// With `c` the Pearson–Filon (1898) estimate of corr(r1, r2) from the six correlations among
/// `x1, y1, x2, y2`: `Z_PF = (atanh r1 − atanh r2) · √((n − 3) / (2 − 2c))` (Raghunathan,
/// Rosenthal & Rubin 1996, Psychol. Methods 1, 178–183), and the CI of `r1 − r2` by Zou (2007,
/// Psychol. Methods 12, 399–413): `L = r1 − r2 − √((r1−l1)² + (u2−r2)² − 2c(r1−l1)(u2−r2))`,
/// `U = r1 − r2 + √((u1−r1)² + (r2−l2)² − 2c(u1−r1)(r2−l2))`, `(lᵢ, uᵢ)` Fisher-z CIs.
pub fn compare_dependent_correlations(
    x1: &[f64],
    y1: &[f64],
    x2: &[f64],
    y2: &[f64],
) -> Result<DependentCorrelationTest> {
    check_pair(x1, y1, 5)?;
    check_pair(x2, y2, 5)?;
    check_len("second pair", x1.len(), x2.len())?;
    let n = x1.len();
    let r12 = pearson_r(x1, y1);
    let r34 = pearson_r(x2, y2);
    let (r13, r14, r23, r24) = (
        pearson_r(x1, x2),
        pearson_r(x1, y2),
        pearson_r(y1, x2),
        pearson_r(y1, y2),
    );
    for r in [r12, r34, r13, r14, r23, r24] {
        if !r.is_finite() {
            return Err(StatsError::InvalidParameter {
                name: "variables",
                value: "constant".into(),
                reason: "a variable has zero variance",
            });
        }
    }
    let cov =
        0.5 * r12 * r34 * (r13 * r13 + r14 * r14 + r23 * r23 + r24 * r24) + r13 * r24 + r14 * r23
            - (r12 * r13 * r14 + r12 * r23 * r24 + r13 * r23 * r34 + r14 * r24 * r34);
    let c = (cov / ((1.0 - r12 * r12) * (1.0 - r34 * r34))).clamp(-1.0, 1.0);
    let z12 = r12.clamp(-1.0 + 1e-15, 1.0 - 1e-15).atanh();
    let z34 = r34.clamp(-1.0 + 1e-15, 1.0 - 1e-15).atanh();
    let z = (z12 - z34) * ((n as f64 - 3.0) / (2.0 - 2.0 * c)).sqrt();
    let p = (2.0 * Normal::standard().sf(z.abs())).min(1.0);
    let q = z975();
    let se = 1.0 / (n as f64 - 3.0).sqrt();
    let (l1, u1) = ((z12 - q * se).tanh(), (z12 + q * se).tanh());
    let (l2, u2) = ((z34 - q * se).tanh(), (z34 + q * se).tanh());
    let d = r12 - r34;
    let lo = d
        - ((r12 - l1).powi(2) + (u2 - r34).powi(2) - 2.0 * c * (r12 - l1) * (u2 - r34))
            .max(0.0)
            .sqrt();
    let hi = d
        + ((u1 - r12).powi(2) + (r34 - l2).powi(2) - 2.0 * c * (u1 - r12) * (r34 - l2))
            .max(0.0)
            .sqrt();
    Ok(DependentCorrelationTest {
        r1: r12,
        r2: r34,
        n,
        difference: d,
        ci95: (lo, hi),
        z,
        p,
        corr_r1_r2: c,
    })
}

/// Benjamini–Hochberg (1995) FDR-adjusted p-values (q-values), in input order:
/// `q_(i) = min_{j ≥ i} min(1, m p_(j) / j)`. Errors on p outside [0, 1].
pub fn benjamini_hochberg(p: &[f64]) -> Result<Vec<f64>> {
    for (index, &v) in p.iter().enumerate() {
        if !(0.0..=1.0).contains(&v) {
            return Err(StatsError::InvalidParameter {
                name: "p",
                value: format!("{v} at index {index}"),
                reason: "must be in [0, 1]",
            });
        }
    }
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![0.0; m];
    let mut running = 1.0f64;
    for rank in (0..m).rev() {
        let i = idx[rank];
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bh_matches_hand_computation() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]).unwrap();
        // sorted: .01 .03 .04 .5 -> .04, .06, .0533.., .5 -> monotone: .04, .0533, .0533, .5
        let expect = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.5];
        for (a, b) in q.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!(benjamini_hochberg(&[1.2]).is_err());
    }

    #[test]
    fn paired_test_by_hand() {
        let a = [5.0, 7.0, 6.0, 9.0];
        let b = [4.0, 5.0, 6.0, 6.0];
        let r = paired_t_test(&a, &b).unwrap();
        // d = 1,2,0,3 mean 1.5 sd sqrt(5/3)
        let sd = (5.0f64 / 3.0).sqrt();
        assert!((r.mean - 1.5).abs() < 1e-12);
        assert!((r.t - 1.5 / (sd / 2.0)).abs() < 1e-12);
        assert!((r.cohens_dz - 1.5 / sd).abs() < 1e-12);
        // t_{0.975,3} = 3.182446305
        assert!((r.ci95.1 - (1.5 + 3.182446305284263 * sd / 2.0)).abs() < 1e-8);
    }

    #[test]
    fn adjusted_t_test_matches_simple_regression_by_hand() {
        // d = 1 + 2·(g − ḡ) + e: the centred intercept is the mean of d, its SE comes from the
        // residuals of the simple regression on g
        let g = [0.3, -1.2, 0.8, 2.0, -0.5, 0.1, -1.7, 1.1];
        let e = [0.2, -0.1, 0.05, -0.3, 0.25, -0.15, 0.1, -0.05];
        let gm = mean(&g);
        let d: Vec<f64> = g
            .iter()
            .zip(&e)
            .map(|(g, e)| 1.0 + 2.0 * (g - gm) + e)
            .collect();
        let cov = [crate::Covariate::centred("age", g.to_vec())];
        let r = one_sample_t_test_adjusted(&d, &cov).unwrap();
        let n = d.len() as f64;
        let dm = mean(&d);
        let sxx: f64 = g.iter().map(|x| (x - gm) * (x - gm)).sum();
        let b: f64 = g
            .iter()
            .zip(&d)
            .map(|(x, y)| (x - gm) * (y - dm))
            .sum::<f64>()
            / sxx;
        let rss: f64 = g
            .iter()
            .zip(&d)
            .map(|(x, y)| (y - dm - b * (x - gm)).powi(2))
            .sum();
        let s = (rss / (n - 2.0)).sqrt();
        assert!((r.mean - dm).abs() < 1e-12);
        assert!((r.sd - s).abs() < 1e-12);
        assert!((r.t - dm / (s / n.sqrt())).abs() < 1e-9);
        assert_eq!((r.n, r.df), (8, 6.0));
        let unadjusted = one_sample_t_test(&d).unwrap();
        assert!(r.t > 3.0 * unadjusted.t, "{} vs {}", r.t, unadjusted.t);
        // uncentred (a change whose 0 means no change): the intercept is the effect at g = 0,
        // here d = 2·g + e, whose mean is far from 0
        let shifted: Vec<f64> = g.iter().zip(&e).map(|(g, e)| 2.0 * (g + 1.0) + e).collect();
        let gs: Vec<f64> = g.iter().map(|g| g + 1.0).collect();
        let r =
            one_sample_t_test_adjusted(&shifted, &[crate::Covariate::uncentred("dg", gs)]).unwrap();
        assert!(
            r.mean.abs() < 0.3 && r.ci95.0 < 0.0 && r.ci95.1 > 0.0,
            "{r:?}"
        );
        assert!(one_sample_t_test(&shifted).unwrap().p < 0.05);
        // a covariate that explains the differences exactly: nothing left to test
        let exact = one_sample_t_test_adjusted(
            &shifted,
            &[crate::Covariate::uncentred("itself", shifted.clone())],
        )
        .unwrap();
        assert!(
            exact.t.is_nan() && exact.p.is_nan() && exact.ci95.0.is_nan(),
            "{exact:?}"
        );
        // no covariates: the plain test
        assert_eq!(one_sample_t_test_adjusted(&d, &[]).unwrap(), unadjusted);
        // collinear or too few
        let twice = [cov[0].clone(), cov[0].clone()];
        assert!(one_sample_t_test_adjusted(&d, &twice).is_err());
        assert!(one_sample_t_test_adjusted(&d[..2], &cov).is_err());
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn partial_correlation_removes_confound() {
        // x and y both driven by g only: partial correlation ≈ 0 exactly when x, y are exact
        // linear functions of g plus orthogonal parts
        let g = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let e1 = [1.0, -1.0, 0.0, 0.0, 1.0, -1.0];
        let e2 = [0.0, 0.0, 1.0, -1.0, 0.0, 0.0];
        let x: Vec<f64> = g.iter().zip(&e1).map(|(a, b)| 2.0 * a + b).collect();
        let y: Vec<f64> = g.iter().zip(&e2).map(|(a, b)| -a + b).collect();
        let r = partial_correlation(&x, &y, &[&g], CorrelationMethod::Pearson).unwrap();
        let expect = pearson_r(
            &residualise(&e1, &[&g]).unwrap(),
            &residualise(&e2, &[&g]).unwrap(),
        );
        assert!((r.r - expect).abs() < 1e-12);
        assert_eq!(r.df, 3.0);
    }
}
