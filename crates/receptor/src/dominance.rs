//! Multiple regression of a group map on several receptor maps, with dominance analysis
//! (Budescu 1993; Azen & Budescu 2003), as used by Hansen et al. (2022, *Nat Neurosci*).

use nalgebra::{DMatrix, DVector};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_finite};

/// Largest number of predictors accepted (2^p models are fitted).
pub const MAX_PREDICTORS: usize = 16;

/// Dominance analysis of `y` on `p` predictors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dominance {
    /// R² of the full model (ordinary least squares with intercept).
    pub r2: f64,
    /// Adjusted R² of the full model, `1 - (1 - R²)(n - 1)/(n - p - 1)`.
    pub r2_adjusted: f64,
    /// Standardised regression coefficients of the full model (`R_xx⁻¹ r_xy`), one per predictor.
    pub beta_std: Vec<f64>,
    /// Total dominance of each predictor: its mean incremental R² over all subset sizes. Sums to
    /// `r2`.
    pub total: Vec<f64>,
    /// `total / r2`: each predictor's share of the explained variance.
    pub relative: Vec<f64>,
    /// Conditional dominance, `p` rows of `p`: `conditional[i][k]` = mean increase in R² when
    /// predictor `i` is added to models with `k` other predictors.
    pub conditional: Vec<Vec<f64>>,
}

/// R² of the OLS fit (with intercept) of `y` on the predictors in `subset`, from the correlation
/// matrix `rxx` and predictor–outcome correlations `rxy`: `R² = r_yS' R_SS⁻¹ r_yS`.
fn r2_subset(rxx: &DMatrix<f64>, rxy: &DVector<f64>, subset: &[usize]) -> Result<f64> {
    if subset.is_empty() {
        return Ok(0.0);
    }
    let k = subset.len();
    let a = DMatrix::from_fn(k, k, |i, j| rxx[(subset[i], subset[j])]);
    let b = DVector::from_fn(k, |i, _| rxy[subset[i]]);
    let chol = a.cholesky().ok_or(Error::Singular {
        what: "dominance analysis",
    })?;
    let sol = chol.solve(&b);
    Ok(b.dot(&sol))
}

/// Dominance analysis of `y` (length n) on the columns of `x` (n × p, p ≤ [`MAX_PREDICTORS`]).
///
/// Fits all 2^p − 1 sub-models; the total dominance of predictor `i` is the average over subset
/// sizes `k = 0..p-1` of the average R² gain from adding `i` to each size-`k` subset of the other
/// predictors. Errors on collinear predictors, too few observations or non-finite values.
pub fn dominance_analysis(y: &[f64], x: ArrayView2<f64>) -> Result<Dominance> {
    let (n, p) = x.dim();
    crate::error::check_len("predictor rows (length of outcome)", y.len(), n)?;
    if p == 0 || p > MAX_PREDICTORS {
        return Err(Error::InvalidParameter {
            name: "number of predictors",
            value: p.to_string(),
            reason: "must be between 1 and 16",
        });
    }
    if n < p + 2 {
        return Err(Error::TooFew {
            what: "observations for the regression",
            min: p + 2,
            got: n,
        });
    }
    check_finite("outcome map", y)?;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "predictor maps",
            index: i,
        });
    }
    let unit = |v: &[f64], what: &'static str| {
        crate::corr::unit_centred(v).ok_or(Error::ZeroVariance { what })
    };
    let uy = unit(y, "outcome map")?;
    let ux: Vec<Vec<f64>> = (0..p)
        .map(|j| unit(&x.column(j).to_vec(), "predictor map"))
        .collect::<Result<_>>()?;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let rxx = DMatrix::from_fn(p, p, |i, j| if i == j { 1.0 } else { dot(&ux[i], &ux[j]) });
    let rxy = DVector::from_fn(p, |i, _| dot(&ux[i], &uy));
    let nsub = 1usize << p;
    let mut r2 = vec![0.0; nsub];
    for (mask, slot) in r2.iter_mut().enumerate().skip(1) {
        let subset: Vec<usize> = (0..p).filter(|&i| mask >> i & 1 == 1).collect();
        *slot = r2_subset(&rxx, &rxy, &subset)?;
    }
    let mut cond = Array2::zeros((p, p));
    let mut counts = Array2::<f64>::zeros((p, p));
    for mask in 0..nsub {
        let k = mask.count_ones() as usize;
        for i in 0..p {
            if mask >> i & 1 == 0 {
                cond[(i, k)] += r2[mask | 1 << i] - r2[mask];
                counts[(i, k)] += 1.0;
            }
        }
    }
    cond /= &counts;
    let total: Vec<f64> = (0..p).map(|i| cond.row(i).sum() / p as f64).collect();
    let full = r2[nsub - 1];
    let beta_std: Vec<f64> = rxx
        .clone()
        .cholesky()
        .ok_or(Error::Singular {
            what: "dominance analysis",
        })?
        .solve(&rxy)
        .iter()
        .copied()
        .collect();
    let relative = total
        .iter()
        .map(|t| if full > 0.0 { t / full } else { f64::NAN })
        .collect();
    let nf = n as f64;
    Ok(Dominance {
        r2: full,
        r2_adjusted: 1.0 - (1.0 - full) * (nf - 1.0) / (nf - p as f64 - 1.0),
        beta_std,
        total,
        relative,
        conditional: cond.outer_iter().map(|r| r.to_vec()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Naive R² by solving the normal equations with an intercept column.
    fn naive_r2(y: &[f64], x: &Array2<f64>, subset: &[usize]) -> f64 {
        let n = y.len();
        let k = subset.len() + 1;
        let a = DMatrix::from_fn(
            n,
            k,
            |r, c| if c == 0 { 1.0 } else { x[(r, subset[c - 1])] },
        );
        let b = DVector::from_column_slice(y);
        let beta = (a.transpose() * &a)
            .lu()
            .solve(&(a.transpose() * &b))
            .unwrap();
        let fit = &a * beta;
        let m = y.iter().sum::<f64>() / n as f64;
        let sse: f64 = y.iter().zip(fit.iter()).map(|(a, b)| (a - b).powi(2)).sum();
        let sst: f64 = y.iter().map(|a| (a - m).powi(2)).sum();
        1.0 - sse / sst
    }

    #[test]
    fn totals_sum_to_r2_and_match_naive_two_predictor_formula() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let n = 80;
        let x = Array2::from_shape_fn((n, 3), |_| StandardNormal.sample(&mut rng));
        let y: Vec<f64> = (0..n)
            .map(|r| {
                let e: f64 = StandardNormal.sample(&mut rng);
                0.8 * x[(r, 0)] + 0.4 * x[(r, 1)] + 0.5 * e
            })
            .collect();
        let d = dominance_analysis(&y, x.view()).unwrap();
        assert!((d.r2 - naive_r2(&y, &x, &[0, 1, 2])).abs() < 1e-10);
        assert!((d.total.iter().sum::<f64>() - d.r2).abs() < 1e-12);
        // predictor 0, explicit average over subset sizes with naive R²:
        let r = |s: &[usize]| {
            if s.is_empty() {
                0.0
            } else {
                naive_r2(&y, &x, s)
            }
        };
        let k0 = r(&[0]);
        let k1 = ((r(&[0, 1]) - r(&[1])) + (r(&[0, 2]) - r(&[2]))) / 2.0;
        let k2 = r(&[0, 1, 2]) - r(&[1, 2]);
        assert!((d.total[0] - (k0 + k1 + k2) / 3.0).abs() < 1e-10);
        assert!(d.total[0] > d.total[1] && d.total[1] > d.total[2]);
        // standardised betas = OLS slopes × sd(x) / sd(y), naive normal equations
        let a = DMatrix::from_fn(n, 4, |r, c| if c == 0 { 1.0 } else { x[(r, c - 1)] });
        let bvec = DVector::from_column_slice(&y);
        let beta = (a.transpose() * &a)
            .lu()
            .solve(&(a.transpose() * &bvec))
            .unwrap();
        let sd = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|q| (q - m).powi(2)).sum::<f64>()).sqrt()
        };
        let sy = sd(&y);
        for j in 0..3 {
            let want = beta[j + 1] * sd(&x.column(j).to_vec()) / sy;
            assert!((d.beta_std[j] - want).abs() < 1e-10);
        }
    }

    #[test]
    fn collinear_is_error() {
        let x = Array2::from_shape_fn((10, 2), |(r, _)| r as f64);
        let y: Vec<f64> = (0..10).map(|r| (r * r) as f64).collect();
        assert!(dominance_analysis(&y, x.view()).is_err());
    }
}
