//! Variogram surrogates keep the target's value distribution exactly and its variogram.

use cbflow_receptor::{
    DistanceMatrix, SampledParams, SampledSurrogates, VariogramParams, VariogramSurrogates,
};

use crate::common::{gp_draw, gp_factor, rng, schaefer_centres};

/// Relative RMS tolerance of the mean surrogate variogram against the target's smoothed
/// variogram, full method (100 parcels).
const VARIOGRAM_TOL: f64 = 0.15;
/// Same for the sampled method, whose variograms come from one random sample of `ns` points.
const SAMPLED_VARIOGRAM_TOL: f64 = 0.20;

#[test]
fn full_method_keeps_values_and_variogram() {
    let coords = schaefer_centres(100);
    let l = gp_factor(&coords, 30.0);
    let x = gp_draw(&l, &mut rng(1));
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let gen_ = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
    let surr = gen_.generate(500, 42);
    let mut sorted_x = x.clone();
    sorted_x.sort_by(|a, b| a.total_cmp(b));
    for row in surr.outer_iter() {
        let mut s = row.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        assert_eq!(
            s, sorted_x,
            "rank-matched surrogate must have exactly the target's values"
        );
    }
    let fit = gen_.fit_error(surr.view()).unwrap();
    eprintln!(
        "full method: rel RMSE of mean variogram {:.4}, median individual {:.4}",
        fit.rel_rmse_mean, fit.rel_rmse_median
    );
    assert!(
        fit.rel_rmse_mean < VARIOGRAM_TOL,
        "variogram fit error {}",
        fit.rel_rmse_mean
    );
    // plain permutations destroy the variogram: their fit is far worse
    let mut perm = surr.clone();
    let mut r = rng(9);
    for mut row in perm.outer_iter_mut() {
        let mut v = x.clone();
        rand::seq::SliceRandom::shuffle(&mut v[..], &mut r);
        row.assign(&ndarray::Array1::from(v));
    }
    let pfit = gen_.fit_error(perm.view()).unwrap();
    // compare over the shorter half of the distances, where autocorrelation lives
    let short = |f: &cbflow_receptor::VariogramFit| {
        let k = f.h.len() / 2;
        let tm = f.target.iter().sum::<f64>() / f.target.len() as f64;
        ((0..k)
            .map(|i| (f.surrogate_mean[i] - f.target[i]).powi(2))
            .sum::<f64>()
            / k as f64)
            .sqrt()
            / tm
    };
    eprintln!(
        "short-range rel RMSE: surrogates {:.4}, permutations {:.4}",
        short(&fit),
        short(&pfit)
    );
    assert!(short(&pfit) > 1.5 * short(&fit));
    // deterministic in the seed, independent of the number generated
    let again = gen_.generate(3, 42);
    assert_eq!(again.row(2), surr.row(2));
}

#[test]
fn generation_identical_across_thread_counts() {
    let coords = schaefer_centres(100);
    let x = gp_draw(&gp_factor(&coords, 30.0), &mut rng(2));
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let gen_ = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| gen_.generate(16, 7));
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(|| gen_.generate(16, 7));
    assert_eq!(one, two);
}

/// A smooth field on a regular 3-D grid (spacing 4 mm): sum of random Gaussian bumps.
pub fn grid_field(nx: usize, seed: u64) -> (Vec<[f64; 3]>, Vec<f64>) {
    use rand::RngExt;
    let mut coords = Vec::new();
    for i in 0..nx {
        for j in 0..nx {
            for k in 0..nx {
                coords.push([i as f64 * 4.0, j as f64 * 4.0, k as f64 * 4.0]);
            }
        }
    }
    let mut r = rng(seed);
    let ext = nx as f64 * 4.0;
    let bumps: Vec<([f64; 3], f64)> = (0..40)
        .map(|_| {
            (
                [
                    r.random::<f64>() * ext,
                    r.random::<f64>() * ext,
                    r.random::<f64>() * ext,
                ],
                r.random::<f64>() - 0.5,
            )
        })
        .collect();
    let x = coords
        .iter()
        .map(|c| {
            bumps
                .iter()
                .map(|(b, a)| {
                    let d2: f64 = (0..3).map(|k| (c[k] - b[k]).powi(2)).sum();
                    a * (-d2 / (2.0 * 8.0f64.powi(2))).exp()
                })
                .sum::<f64>()
                + 0.05 * (r.random::<f64>() - 0.5)
        })
        .collect();
    (coords, x)
}

#[test]
fn sampled_method_keeps_values_and_variogram() {
    let (coords, x) = grid_field(10, 4);
    let params = SampledParams {
        knn: 500,
        ns: 300,
        ..SampledParams::default()
    };
    let gen_ = SampledSurrogates::new(&x, &coords, params).unwrap();
    let surr = gen_.generate(100, 5);
    let mut sorted_x = x.clone();
    sorted_x.sort_by(|a, b| a.total_cmp(b));
    for row in surr.outer_iter() {
        let mut s = row.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        assert_eq!(s, sorted_x);
    }
    let fit = gen_.fit_error(surr.view(), 11).unwrap();
    eprintln!(
        "sampled method: rel RMSE of mean variogram {:.4}, median individual {:.4}",
        fit.rel_rmse_mean, fit.rel_rmse_median
    );
    assert!(
        fit.rel_rmse_mean < SAMPLED_VARIOGRAM_TOL,
        "variogram fit error {}",
        fit.rel_rmse_mean
    );
}
