//! Random-intercept LMM: recovery of known truth and agreement with the balanced ANOVA.

use crate::common::*;
use cbflow_stats::{CrossoverObservation, Treatment, crossover_design, fit_random_intercept};
use rand_chacha::ChaCha8Rng;

/// Simulate a 2×2 crossover: `n_per_seq` subjects per sequence, fixed effects
/// [intercept, naltrexone, period2, sequence_NP], subject SD `su`, residual SD `se`.
fn simulate(
    rng: &mut ChaCha8Rng,
    n_per_seq: usize,
    beta: [f64; 4],
    su: f64,
    se: f64,
) -> (Vec<CrossoverObservation>, Vec<f64>) {
    let mut obs = Vec::new();
    let mut y = Vec::new();
    for s in 0..2 * n_per_seq {
        let nal_first = s >= n_per_seq;
        let u = su * normal(rng);
        for period in [1u8, 2] {
            let nal = (period == 1) == nal_first;
            let o = CrossoverObservation {
                subject: 100 + s,
                treatment: if nal {
                    Treatment::Naltrexone
                } else {
                    Treatment::Placebo
                },
                period,
            };
            let mu = beta[0]
                + beta[1] * nal as u8 as f64
                + beta[2] * (period == 2) as u8 as f64
                + beta[3] * nal_first as u8 as f64;
            y.push(mu + u + se * normal(rng));
            obs.push(o);
        }
    }
    (obs, y)
}

/// OLS residual sum of squares and coefficients of y on [1, x].
fn ols2(y: &[f64], x: &[f64]) -> (f64, f64, f64) {
    let n = y.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    let b1 = sxy / sxx;
    let b0 = my - b1 * mx;
    let rss = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - b0 - b1 * a).powi(2))
        .sum();
    (rss, b0, b1)
}

#[test]
fn balanced_crossover_equals_anova() {
    let mut r = rng(20);
    let n_per_seq = 12;
    let (obs, y) = simulate(&mut r, n_per_seq, [50.0, -3.0, 1.0, 0.5], 4.0, 2.0);
    let (x, groups, names) = crossover_design(&obs).unwrap();
    let fit = fit_random_intercept(&y, &x, &groups, &names).unwrap();
    let n = 2 * n_per_seq;
    // within-subject stratum: d = y(period 2) − y(period 1) = period2 + τ·(±1) + noise
    let mut d = Vec::new();
    let mut tsign = Vec::new();
    let mut s = Vec::new();
    let mut seq = Vec::new();
    for i in 0..n {
        let (y1, y2) = (y[2 * i], y[2 * i + 1]);
        let nal_first = obs[2 * i].treatment == Treatment::Naltrexone;
        d.push(y2 - y1);
        tsign.push(if nal_first { -1.0 } else { 1.0 });
        s.push((y1 + y2) / 2.0);
        seq.push(nal_first as u8 as f64);
    }
    let (rss_d, _, tau) = ols2(&d, &tsign);
    let s2e = rss_d / (2.0 * (n as f64 - 2.0));
    let (rss_s, _, _) = ols2(&s, &seq);
    let s2u = rss_s / (n as f64 - 2.0) - s2e / 2.0;
    assert!(
        s2u > 0.0,
        "simulation should give a positive between-subject variance"
    );
    assert!(
        (fit.sigma2_residual - s2e).abs() < 1e-6 * s2e,
        "{} vs {}",
        fit.sigma2_residual,
        s2e
    );
    assert!(
        (fit.sigma2_subject - s2u).abs() < 1e-6 * s2u,
        "{} vs {}",
        fit.sigma2_subject,
        s2u
    );
    assert!(
        (fit.beta[1] - tau).abs() < 1e-8,
        "treatment {} vs {}",
        fit.beta[1],
        tau
    );
    // SE of the treatment effect: sqrt(2 s2e / n_pairs)·... within-subject: var(τ̂) = 2σe²/(Σ tsign² ) /1
    let se_tau = (2.0 * s2e / n as f64).sqrt();
    assert!((fit.se[1] - se_tau).abs() < 1e-6 * se_tau);
    // Satterthwaite df: within and between strata each have n − 2 df in the balanced design
    assert!(
        (fit.df[1] - (n as f64 - 2.0)).abs() < 1e-3,
        "df treatment {}",
        fit.df[1]
    );
    assert!(
        (fit.df[2] - (n as f64 - 2.0)).abs() < 1e-3,
        "df period {}",
        fit.df[2]
    );
    assert!(
        (fit.df[3] - (n as f64 - 2.0)).abs() < 1e-3,
        "df sequence {}",
        fit.df[3]
    );
}

#[test]
fn recovers_truth_on_large_crossover() {
    let mut r = rng(21);
    let beta = [50.0, -3.0, 1.0, 0.5];
    let (obs, y) = simulate(&mut r, 300, beta, 4.0, 2.0);
    let (x, groups, names) = crossover_design(&obs).unwrap();
    let fit = fit_random_intercept(&y, &x, &groups, &names).unwrap();
    for j in 0..4 {
        assert!(
            (fit.beta[j] - beta[j]).abs() < 4.0 * fit.se[j],
            "beta {j}: {} ± {} vs {}",
            fit.beta[j],
            fit.se[j],
            beta[j]
        );
    }
    assert!(
        (fit.sigma2_subject - 16.0).abs() < 0.2 * 16.0,
        "σu² {}",
        fit.sigma2_subject
    );
    assert!(
        (fit.sigma2_residual - 4.0).abs() < 0.15 * 4.0,
        "σe² {}",
        fit.sigma2_residual
    );
    assert!(fit.p[1] < 1e-6);
    assert_eq!(fit.n_groups, 600);
}

#[test]
fn zero_subject_variance_hits_boundary() {
    let mut r = rng(22);
    let (obs, y) = simulate(&mut r, 10, [0.0, 0.0, 0.0, 0.0], 0.0, 1.0);
    let (x, groups, names) = crossover_design(&obs).unwrap();
    let fit = fit_random_intercept(&y, &x, &groups, &names).unwrap();
    assert!(fit.sigma2_subject >= 0.0);
    assert!(fit.sigma2_residual > 0.3 && fit.sigma2_residual < 3.0);
}
