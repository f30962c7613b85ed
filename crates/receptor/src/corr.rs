//! Correlations of maps: Pearson and Spearman (the kernel, the method and the ranks are
//! `cbflow-stats`'), partial correlation, z-scores, parametric and null p-values.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result, check_finite, check_len};

pub use cbflow_stats::{CorrelationMethod, ranks};

/// Z-scores of `x`: `(x - mean) / sd`, with the sample standard deviation (n - 1 denominator).
///
/// Errors on fewer than 2 values, non-finite values or zero variance.
pub fn zscore(x: &[f64]) -> Result<Vec<f64>> {
    if x.len() < 2 {
        return Err(Error::TooFew {
            what: "values to z-score",
            min: 2,
            got: x.len(),
        });
    }
    check_finite("map to z-score", x)?;
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    if ss <= 0.0 {
        return Err(Error::ZeroVariance {
            what: "map to z-score",
        });
    }
    let sd = (ss / (n - 1.0)).sqrt();
    Ok(x.iter().map(|v| (v - m) / sd).collect())
}

/// Centre `x` and scale it to unit Euclidean norm; `None` if it has zero variance.
pub(crate) fn unit_centred(x: &[f64]) -> Option<Vec<f64>> {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    if ss <= 0.0 || !ss.is_finite() {
        return None;
    }
    let s = ss.sqrt();
    Some(x.iter().map(|v| (v - m) / s).collect())
}

/// Pearson correlation of `x` with a vector already centred and scaled to unit norm.
pub(crate) fn corr_with_unit(unit: &[f64], x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    for (u, v) in unit.iter().zip(x) {
        let d = v - m;
        sxy += u * d;
        sxx += d * d;
    }
    if sxx <= 0.0 {
        f64::NAN
    } else {
        sxy / sxx.sqrt()
    }
}

fn check_pair(x: &[f64], y: &[f64]) -> Result<()> {
    check_len("second map (length of first)", x.len(), y.len())?;
    if x.len() < 3 {
        return Err(Error::TooFew {
            what: "paired values",
            min: 3,
            got: x.len(),
        });
    }
    check_finite("first map", x)?;
    check_finite("second map", y)
}

/// Pearson correlation of two equally long vectors (n ≥ 3, finite), by the statistics crate's
/// kernel ([`cbflow_stats::pearson_r`]).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64> {
    check_pair(x, y)?;
    let constant = |v: &[f64]| v.iter().all(|a| *a == v[0]);
    if constant(x) {
        return Err(Error::ZeroVariance { what: "first map" });
    }
    if constant(y) {
        return Err(Error::ZeroVariance { what: "second map" });
    }
    Ok(cbflow_stats::pearson_r(x, y).clamp(-1.0, 1.0))
}

/// Spearman rank correlation: Pearson correlation of tie-averaged [`ranks`].
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    check_pair(x, y)?;
    pearson(&ranks(x), &ranks(y))
}

/// Correlation of `x` and `y` with the chosen method.
pub fn correlate(x: &[f64], y: &[f64], method: CorrelationMethod) -> Result<f64> {
    match method {
        CorrelationMethod::Pearson => pearson(x, y),
        CorrelationMethod::Spearman => spearman(x, y),
    }
}

/// Partial correlation of `x` and `y` controlling for one covariate `z`:
/// `(r_xy - r_xz r_yz) / sqrt((1 - r_xz²)(1 - r_yz²))`.
///
/// With [`CorrelationMethod::Spearman`] all three are ranked first (as MATLAB's
/// `partialcorr(..., 'type', 'Spearman')`, which JuSpace uses for its grey-matter adjustment).
pub fn partial_correlation(
    x: &[f64],
    y: &[f64],
    z: &[f64],
    method: CorrelationMethod,
) -> Result<f64> {
    check_pair(x, y)?;
    check_len("covariate (length of maps)", x.len(), z.len())?;
    check_finite("covariate", z)?;
    let rxy = correlate(x, y, method)?;
    let rxz = correlate(x, z, method)?;
    let ryz = correlate(y, z, method)?;
    partial_from(rxy, rxz, ryz)
}

/// Correlations of one fixed map `x` with many maps `y` (null maps), optionally partial on a
/// fixed covariate `z`: the ranks of `x` and `z` and their correlation are computed once. Each
/// value is what [`correlate`] or [`partial_correlation`] gives for the same maps.
pub(crate) struct FixedCorrelation {
    method: CorrelationMethod,
    /// `x`, ranked for Spearman.
    x: Vec<f64>,
    /// `z`, ranked for Spearman, and its correlation with `x`.
    z: Option<(Vec<f64>, f64)>,
}

impl FixedCorrelation {
    pub(crate) fn new(
        x: &[f64],
        covariate: Option<&[f64]>,
        method: CorrelationMethod,
    ) -> Result<Self> {
        check_pair(x, x)?;
        let prepare = |v: &[f64]| match method {
            CorrelationMethod::Pearson => v.to_vec(),
            CorrelationMethod::Spearman => ranks(v),
        };
        let xr = prepare(x);
        let z = match covariate {
            Some(z) => {
                check_len("covariate (length of maps)", x.len(), z.len())?;
                check_finite("covariate", z)?;
                let zr = prepare(z);
                let rxz = pearson(&xr, &zr)?;
                Some((zr, rxz))
            }
            None => None,
        };
        Ok(Self { method, x: xr, z })
    }

    /// The (partial) correlation of the fixed map with `y` (same length).
    pub(crate) fn with(&self, y: &[f64]) -> Result<f64> {
        check_pair(&self.x, y)?;
        let yr = match self.method {
            CorrelationMethod::Pearson => y.to_vec(),
            CorrelationMethod::Spearman => ranks(y),
        };
        let rxy = pearson(&self.x, &yr)?;
        let Some((zr, rxz)) = &self.z else {
            return Ok(rxy);
        };
        let ryz = pearson(&yr, zr)?;
        partial_from(rxy, *rxz, ryz)
    }
}

/// The partial correlation of x and y on z from the three correlations.
fn partial_from(rxy: f64, rxz: f64, ryz: f64) -> Result<f64> {
    let den = ((1.0 - rxz * rxz) * (1.0 - ryz * ryz)).sqrt();
    if den <= 0.0 {
        return Err(Error::Singular {
            what: "partial correlation (covariate collinear with a map)",
        });
    }
    Ok(((rxy - rxz * ryz) / den).clamp(-1.0, 1.0))
}

/// Two-sided parametric p-value of a correlation `r` from `n` pairs: Student's t with
/// `n - 2 - n_covariates` degrees of freedom, `t = r sqrt(df / (1 - r²))`.
///
/// This is the "naive" p-value that ignores spatial autocorrelation (it assumes independent
/// observations); for Spearman it is the usual large-sample approximation.
pub fn parametric_p(r: f64, n: usize, n_covariates: usize) -> Result<f64> {
    let df = n as f64 - 2.0 - n_covariates as f64;
    if df < 1.0 {
        return Err(Error::TooFew {
            what: "pairs for a parametric p-value",
            min: 3 + n_covariates,
            got: n,
        });
    }
    if !r.is_finite() {
        return Err(Error::NonFinite {
            what: "correlation",
            index: 0,
        });
    }
    let r = r.clamp(-1.0, 1.0);
    if r.abs() >= 1.0 {
        return Ok(0.0);
    }
    let t = r * (df / (1.0 - r * r)).sqrt();
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|_| Error::InvalidParameter {
        name: "degrees of freedom",
        value: df.to_string(),
        reason: "must be positive",
    })?;
    Ok((2.0 * dist.cdf(-t.abs())).min(1.0))
}

/// Two-sided permutation p-value of an observed statistic against a null sample:
/// `(1 + #{|null| ≥ |obs|}) / (1 + n_null)` (Phipson & Smyth 2010; JuSpace's
/// `compute_exact_spatial_pvalue`). NaN entries of the null are ignored.
pub fn null_p_value(observed: f64, null: &[f64]) -> f64 {
    let a = observed.abs();
    let valid = null.iter().filter(|v| v.is_finite());
    let (mut k, mut n) = (0usize, 0usize);
    for v in valid {
        n += 1;
        // tolerance so that the identity permutation counts as "as extreme"
        if v.abs() >= a - 1e-12 * a.max(1.0) {
            k += 1;
        }
    }
    (1 + k) as f64 / (1 + n) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 20.0]),
            vec![1.5, 4.0, 1.5, 6.0, 4.0, 4.0]
        );
    }

    #[test]
    fn spearman_known_values() {
        // perfect monotone non-linear relation
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| v.powi(3)).collect();
        assert!((spearman(&x, &y).unwrap() - 1.0).abs() < 1e-12);
        // R: cor(c(1,2,3,4,5), c(2,1,4,3,5), method = "spearman") = 0.8
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12);
        // with ties: R cor(c(1,2,2,3), c(1,3,2,4), method="spearman") = 0.9486833
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
        assert!((r - 0.948_683_298_050_513_8).abs() < 1e-12);
    }

    #[test]
    fn pearson_and_parametric_p_known() {
        // numpy corrcoef: r = 0.7917946548886295; t = 2.5927014 on 4 df, two-sided p from the
        // closed-form Student-t(4) cdf = 0.0605114034
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [2.0, 1.0, 4.0, 3.0, 7.0, 5.0];
        let r = pearson(&x, &y).unwrap();
        assert!((r - 0.791_794_654_888_629_5).abs() < 1e-12, "{r}");
        let p = parametric_p(r, 6, 0).unwrap();
        assert!((p - 0.060_511_403_362_756_5).abs() < 1e-9, "{p}");
    }

    #[test]
    fn partial_matches_residual_correlation() {
        // partial Pearson correlation equals the correlation of OLS residuals on z
        let x = [1.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.0, 9.0];
        let y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 9.0, 7.0];
        let z = [1.0, 2.0, 2.5, 3.0, 5.0, 5.5, 6.0, 8.0];
        let resid = |a: &[f64]| {
            let n = a.len() as f64;
            let (ma, mz) = (a.iter().sum::<f64>() / n, z.iter().sum::<f64>() / n);
            let b = a
                .iter()
                .zip(&z)
                .map(|(p, q)| (p - ma) * (q - mz))
                .sum::<f64>()
                / z.iter().map(|q| (q - mz) * (q - mz)).sum::<f64>();
            a.iter()
                .zip(&z)
                .map(|(p, q)| p - ma - b * (q - mz))
                .collect::<Vec<_>>()
        };
        let want = pearson(&resid(&x), &resid(&y)).unwrap();
        let got = partial_correlation(&x, &y, &z, CorrelationMethod::Pearson).unwrap();
        assert!((want - got).abs() < 1e-12);
    }

    /// The fixed-map correlations are bit for bit those of `correlate` and
    /// `partial_correlation`, with ties, both methods.
    #[test]
    fn fixed_correlation_is_correlate() {
        let x = [1.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.0, 9.0, 4.0];
        let z = [1.0, 2.0, 2.5, 3.0, 5.0, 5.5, 6.0, 8.0, 2.0];
        let ys = [
            [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 9.0, 7.0, 1.5],
            [0.3, -1.0, 4.5, 4.5, 2.0, 5.0, -2.0, 7.0, 1.0],
        ];
        for method in [CorrelationMethod::Pearson, CorrelationMethod::Spearman] {
            let plain = FixedCorrelation::new(&x, None, method).unwrap();
            let partial = FixedCorrelation::new(&x, Some(&z), method).unwrap();
            for y in &ys {
                assert_eq!(plain.with(y).unwrap(), correlate(&x, y, method).unwrap());
                assert_eq!(
                    partial.with(y).unwrap(),
                    partial_correlation(&x, y, &z, method).unwrap()
                );
            }
        }
        // the same errors
        let flat = [1.0; 9];
        let constant = FixedCorrelation::new(&flat, None, CorrelationMethod::Pearson).unwrap();
        assert!(constant.with(&ys[0]).is_err());
        assert!(FixedCorrelation::new(&x, Some(&flat), CorrelationMethod::Spearman).is_err());
        let f = FixedCorrelation::new(&x, None, CorrelationMethod::Spearman).unwrap();
        assert!(f.with(&flat).is_err());
    }

    #[test]
    fn errors_not_panics() {
        assert!(pearson(&[1.0, 2.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(spearman(&[1.0, f64::NAN, 2.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(zscore(&[2.0, 2.0, 2.0]).is_err());
    }

    #[test]
    fn null_p_counts_ties_and_observed() {
        assert!((null_p_value(0.5, &[0.1, -0.6, 0.5, 0.2]) - 3.0 / 5.0).abs() < 1e-15);
        assert!((null_p_value(0.9, &[0.1, 0.2]) - 1.0 / 3.0).abs() < 1e-15);
    }
}
