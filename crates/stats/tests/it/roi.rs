//! Coverage and error-rate checks of the ROI statistics on simulated data.

use crate::common::*;
use cbflow_stats::{
    CorrelationMethod, bootstrap_correlation_ci, compare_dependent_correlations, correlation,
    one_sample_t_test, partial_correlation,
};
use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

/// n draws of a multivariate normal with correlation matrix `r` (d × d); returns d columns.
fn mvn(rng: &mut ChaCha8Rng, n: usize, r: &DMatrix<f64>) -> Vec<Vec<f64>> {
    let d = r.nrows();
    let l = r.clone().cholesky().expect("positive definite").l();
    let mut cols = vec![vec![0.0; n]; d];
    for i in 0..n {
        let z = nalgebra::DVector::from_fn(d, |_, _| normal(rng));
        let x = &l * z;
        for k in 0..d {
            cols[k][i] = x[k];
        }
    }
    cols
}

fn check_coverage(hits: u64, reps: u64, what: &str) {
    let (lo, hi) = binomial_interval(reps, 0.95);
    assert!(
        (lo..=hi).contains(&hits),
        "{what}: coverage {hits}/{reps} outside [{lo}, {hi}]"
    );
}

#[test]
fn pearson_fisher_ci_covers_at_95() {
    let mut r = rng(10);
    let reps = 2000u64;
    for (rho, n) in [(0.5, 20usize), (-0.3, 40)] {
        let cm = DMatrix::from_row_slice(2, 2, &[1.0, rho, rho, 1.0]);
        let mut hits = 0;
        for _ in 0..reps {
            let c = mvn(&mut r, n, &cm);
            let res = correlation(&c[0], &c[1], CorrelationMethod::Pearson).unwrap();
            hits += (res.ci95.0 <= rho && rho <= res.ci95.1) as u64;
        }
        check_coverage(hits, reps, &format!("pearson rho {rho} n {n}"));
    }
}

#[test]
fn spearman_ci_covers_population_spearman() {
    // population Spearman correlation of a bivariate normal: (6/π) asin(ρ/2)
    let mut r = rng(11);
    let reps = 1000u64;
    let rho = 0.5f64;
    let rho_s = 6.0 / std::f64::consts::PI * (rho / 2.0).asin();
    let cm = DMatrix::from_row_slice(2, 2, &[1.0, rho, rho, 1.0]);
    let mut hits = 0;
    for _ in 0..reps {
        let c = mvn(&mut r, 30, &cm);
        let res = correlation(&c[0], &c[1], CorrelationMethod::Spearman).unwrap();
        hits += (res.ci95.0 <= rho_s && rho_s <= res.ci95.1) as u64;
    }
    check_coverage(hits, reps, "spearman");
}

#[test]
fn partial_correlation_ci_covers_true_partial() {
    // x = g + e1, y = g + e2 with corr(e1, e2) = 0.4: partial corr given g is 0.4
    let mut r = rng(12);
    let reps = 1000u64;
    let cm = DMatrix::from_row_slice(3, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 0.4, 0.0, 0.4, 1.0]);
    let mut hits = 0;
    for _ in 0..reps {
        let c = mvn(&mut r, 25, &cm);
        let x: Vec<f64> = c[0].iter().zip(&c[1]).map(|(g, e)| 2.0 * g + e).collect();
        let y: Vec<f64> = c[0].iter().zip(&c[2]).map(|(g, e)| -g + e).collect();
        let res = partial_correlation(&x, &y, &[&c[0]], CorrelationMethod::Pearson).unwrap();
        hits += (res.ci95.0 <= 0.4 && 0.4 <= res.ci95.1) as u64;
    }
    check_coverage(hits, reps, "partial");
}

#[test]
fn bootstrap_percentile_ci_roughly_covers() {
    // percentile bootstrap is approximate at small n: accept 0.90–0.98 over 200 data sets
    let mut r = rng(13);
    let reps = 200;
    let rho = 0.4;
    let cm = DMatrix::from_row_slice(2, 2, &[1.0, rho, rho, 1.0]);
    let mut hits = 0;
    for k in 0..reps {
        let c = mvn(&mut r, 40, &cm);
        let ci = bootstrap_correlation_ci(&c[0], &c[1], CorrelationMethod::Pearson, 400, 0.95, k)
            .unwrap();
        hits += (ci.0 <= rho && rho <= ci.1) as usize;
    }
    let cov = hits as f64 / reps as f64;
    assert!((0.90..=0.98).contains(&cov), "bootstrap coverage {cov}");
    // seeded: same seed, same interval
    let c = mvn(&mut r, 40, &cm);
    assert_eq!(
        bootstrap_correlation_ci(&c[0], &c[1], CorrelationMethod::Spearman, 300, 0.95, 5).unwrap(),
        bootstrap_correlation_ci(&c[0], &c[1], CorrelationMethod::Spearman, 300, 0.95, 5).unwrap()
    );
}

/// Four variables x1, y1 (placebo), x2, y2 (naltrexone) in the same subjects with
/// cross-condition correlations; corr(x1, y1) = r1, corr(x2, y2) = r2.
fn dependent_matrix(r1: f64, r2: f64) -> DMatrix<f64> {
    // order x1 y1 x2 y2
    DMatrix::from_row_slice(
        4,
        4,
        &[
            1.0, r1, 0.6, 0.2, //
            r1, 1.0, 0.2, 0.5, //
            0.6, 0.2, 1.0, r2, //
            0.2, 0.5, r2, 1.0,
        ],
    )
}

#[test]
fn dependent_correlation_test_size_and_zou_coverage() {
    let mut r = rng(14);
    let reps = 2000u64;
    // null: equal correlations -> rejection rate ≈ 5%
    let cm = dependent_matrix(0.4, 0.4);
    let mut rejections = 0;
    let mut hits = 0;
    for _ in 0..reps {
        let c = mvn(&mut r, 40, &cm);
        let t = compare_dependent_correlations(&c[0], &c[1], &c[2], &c[3]).unwrap();
        rejections += (t.p < 0.05) as u64;
        hits += (t.ci95.0 <= 0.0 && 0.0 <= t.ci95.1) as u64;
    }
    let (lo, hi) = binomial_interval(reps, 0.05);
    assert!(
        (lo..=hi).contains(&rejections),
        "Z_PF size {rejections}/{reps} outside [{lo}, {hi}]"
    );
    check_coverage(hits, reps, "zou null");
    // alternative: unequal correlations, CI covers the true difference and power is high
    let cm = dependent_matrix(0.6, 0.0);
    let mut hits = 0;
    let mut rejections = 0;
    for _ in 0..reps {
        let c = mvn(&mut r, 40, &cm);
        let t = compare_dependent_correlations(&c[0], &c[1], &c[2], &c[3]).unwrap();
        hits += (t.ci95.0 <= 0.6 && 0.6 <= t.ci95.1) as u64;
        rejections += (t.p < 0.05) as u64;
    }
    check_coverage(hits, reps, "zou alternative");
    assert!(
        rejections as f64 / reps as f64 > 0.7,
        "power {rejections}/{reps}"
    );
}

#[test]
fn t_test_ci_covers_mean() {
    let mut r = rng(15);
    let reps = 2000u64;
    let mut hits = 0;
    for _ in 0..reps {
        let d: Vec<f64> = (0..12).map(|_| 1.5 + 2.0 * normal(&mut r)).collect();
        let t = one_sample_t_test(&d).unwrap();
        hits += (t.ci95.0 <= 1.5 && 1.5 <= t.ci95.1) as u64;
    }
    check_coverage(hits, reps, "t CI");
}
