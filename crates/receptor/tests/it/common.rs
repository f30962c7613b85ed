//! Shared helpers: data location, smooth random fields, Kolmogorov–Smirnov test.

use std::path::PathBuf;

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The test-data folder (`cbflow_testdata::data_dir`).
pub fn data_dir() -> PathBuf {
    cbflow_testdata::data_dir()
}

/// Schaefer parcel centroids in mm, from Hansen et al.'s repository.
pub use cbflow_testdata::schaefer_centres;

/// Lower Cholesky factor of the exponential covariance `exp(-d / ell)` between `coords`.
pub fn gp_factor(coords: &[[f64; 3]], ell: f64) -> DMatrix<f64> {
    let n = coords.len();
    let c = DMatrix::from_fn(n, n, |i, j| {
        let d: f64 = (0..3)
            .map(|k| (coords[i][k] - coords[j][k]).powi(2))
            .sum::<f64>()
            .sqrt();
        (-d / ell).exp() + if i == j { 1e-9 } else { 0.0 }
    });
    c.cholesky().expect("covariance is positive definite").l()
}

/// One draw of the Gaussian random field with Cholesky factor `l`.
pub fn gp_draw(l: &DMatrix<f64>, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let z = nalgebra::DVector::from_fn(l.nrows(), |_, _| StandardNormal.sample(rng));
    (l * z).iter().copied().collect()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Two-sided one-sample Kolmogorov–Smirnov test of `x` against U(0, 1):
/// returns `(D, p)` with the asymptotic Kolmogorov distribution and Stephens' small-sample
/// correction (Numerical Recipes `ksone`).
pub fn ks_uniform(x: &[f64]) -> (f64, f64) {
    let mut s = x.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len() as f64;
    let mut d: f64 = 0.0;
    for (i, &v) in s.iter().enumerate() {
        let lo = i as f64 / n;
        let hi = (i + 1) as f64 / n;
        d = d.max((v - lo).abs()).max((hi - v).abs());
    }
    let en = n.sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    let mut q = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (k as f64).powi(2) * lambda * lambda).exp();
        q += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (d, q.clamp(0.0, 1.0))
}

/// Ranks (for Spearman) then centre and scale to unit norm, so that correlation = dot product.
pub fn unit_ranks(x: &[f64]) -> Vec<f64> {
    let r = cbflow_receptor::ranks(x);
    let m = r.iter().sum::<f64>() / r.len() as f64;
    let s = r.iter().map(|v| (v - m).powi(2)).sum::<f64>().sqrt();
    r.iter().map(|v| (v - m) / s).collect()
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

#[test]
fn ks_detects_non_uniform_and_accepts_uniform() {
    use rand::RngExt;
    let mut r = rng(3);
    let u: Vec<f64> = (0..1000).map(|_| r.random::<f64>()).collect();
    assert!(ks_uniform(&u).1 > 0.01);
    let sq: Vec<f64> = u.iter().map(|v| v * v).collect();
    assert!(ks_uniform(&sq).1 < 1e-6);
}

/// One standard normal draw.
pub fn n01(r: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(r)
}
