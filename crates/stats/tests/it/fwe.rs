//! Family-wise error control under the null on smooth Gaussian noise.

use crate::common::*;
use cbflow_stats::{PermutationOptions, PermutationResult, Tail, TfceParams, one_sample_sign_flip};

/// Null data sets per test, and sign flips per data set (201 shuffles with the identity).
const N_SETS: u64 = 200;

/// Options of one null test: 200 sign flips, one-sided (positive), TFCE with its defaults.
fn null_options(seed: u64) -> PermutationOptions {
    PermutationOptions {
        n_permutations: 200,
        seed,
        tail: Tail::Positive,
        tfce: Some(TfceParams::default()),
        ..Default::default()
    }
}

/// 1 for each of max-T and TFCE when the result has any voxel at FWE p ≤ 0.05.
fn false_positives(res: &PermutationResult) -> (u64, u64) {
    let any = |p: &ndarray::Array1<f64>| p.iter().any(|&p| p <= 0.05) as u64;
    (
        any(&res.p_fwe),
        any(&res.tfce.as_ref().expect("TFCE").p_fwe),
    )
}

/// Asserts that both false-positive counts lie in the central 95 % binomial interval of the
/// attainable level 10/201; returns the interval.
fn assert_nominal(what: &str, fp_t: u64, fp_tfce: u64) -> (u64, u64) {
    eprintln!("{what}: max-T {fp_t}/{N_SETS}, TFCE {fp_tfce}/{N_SETS}");
    let (lo, hi) = binomial_interval(N_SETS, 10.0 / 201.0);
    assert!(
        (lo..=hi).contains(&fp_t),
        "{what}: max-T FWE {fp_t}/{N_SETS} outside [{lo}, {hi}]"
    );
    assert!(
        (lo..=hi).contains(&fp_tfce),
        "{what}: TFCE FWE {fp_tfce}/{N_SETS} outside [{lo}, {hi}]"
    );
    (lo, hi)
}

/// 200 null data sets (10 subjects, 12×12×8 full grid, Gaussian smoothing sigma 1.2 voxels),
/// 200 sign flips each: the FWE false-positive rate at 0.05 for max-T and for max-TFCE must lie
/// inside the central 95% binomial interval of Binomial(200, 0.05 · 201/201) — with 201 shuffles
/// the attainable level is 10/201.
#[test]
fn fwe_rate_under_null_is_nominal() {
    let dims = [12, 12, 8];
    let geom = full_geometry(dims);
    let mut r = rng(2024);
    let datasets: Vec<_> = (0..N_SETS)
        .map(|_| smooth_noise(&mut r, 10, dims, 1.2))
        .collect();
    let (mut fp_t, mut fp_tfce) = (0u64, 0u64);
    for (k, data) in datasets.iter().enumerate() {
        let opts = null_options(k as u64);
        let res = one_sample_sign_flip(data.view(), Some(&geom), &opts).unwrap();
        assert_eq!(res.n_shuffles, 201);
        let (t, tfce) = false_positives(&res);
        fp_t += t;
        fp_tfce += tfce;
    }
    assert_nominal("null FWE false positives", fp_t, fp_tfce);
}

/// The same with a nuisance covariate that shifts every voxel (as a change of global CBF
/// does), entered uncentred so that the tested intercept is the effect at no global change:
/// 200 null data sets of `g_i + smooth noise` with `g_i ~ N(0.5, 1)` (a mean shift, so the
/// plain sign-flip test rejects), Freedman–Lane sign-flipping: max-T and max-TFCE FWE rates
/// inside the binomial interval of the attainable level.
#[test]
fn fwe_rate_with_a_global_nuisance_covariate_is_nominal() {
    use cbflow_stats::{Covariate, Scheme, difference_design, permutation_test};
    let dims = [12, 12, 8];
    let geom = full_geometry(dims);
    let n = 10;
    let mut r = rng(77);
    let (mut fp_t, mut fp_tfce, mut plain) = (0u64, 0u64, 0u64);
    for k in 0..N_SETS {
        let mut data = smooth_noise(&mut r, n, dims, 1.2);
        let g: Vec<f64> = (0..n).map(|_| 0.5 + normal(&mut r)).collect();
        for (mut row, gi) in data.rows_mut().into_iter().zip(&g) {
            row.mapv_inplace(|v| v + *gi as f32);
        }
        let opts = null_options(k);
        let design = difference_design(n, None, &[Covariate::uncentred("global", g)]).unwrap();
        let res =
            permutation_test(data.view(), &design, &Scheme::SignFlip, Some(&geom), &opts).unwrap();
        assert_eq!(res.n_shuffles, 201);
        let (t, tfce) = false_positives(&res);
        fp_t += t;
        fp_tfce += tfce;
        let unadjusted = one_sample_sign_flip(data.view(), Some(&geom), &opts).unwrap();
        plain += false_positives(&unadjusted).0;
    }
    let (_, hi) = assert_nominal("null with a global shift, Freedman–Lane", fp_t, fp_tfce);
    // without the covariate the mean shift is an effect, found far more often
    assert!(plain > 2 * hi, "unadjusted max-T {plain}/{N_SETS}");
}

/// The design of the crossover group level: 26 subjects' difference maps, the centred sequence
/// indicator (13 per sequence) as a Freedman–Lane nuisance, one-sided max-T and TFCE over 200
/// null data sets whose sequence groups differ in mean (a period effect the nuisance absorbs).
#[test]
fn fwe_rate_of_the_crossover_design_is_nominal() {
    use cbflow_stats::{Scheme, Sequence, difference_design, permutation_test};
    let dims = [12, 12, 8];
    let geom = full_geometry(dims);
    let n = 26;
    let seq: Vec<Sequence> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                Sequence::PlaceboFirst
            } else {
                Sequence::NaltrexoneFirst
            }
        })
        .collect();
    let design = difference_design(n, Some(&seq), &[]).unwrap();
    let mut r = rng(4242);
    let (mut fp_t, mut fp_tfce) = (0u64, 0u64);
    for k in 0..N_SETS {
        let mut data = smooth_noise(&mut r, n, dims, 1.2);
        // ±0.8 between the sequences, 0 on average: no effect at the average sequence
        for (i, mut row) in data.rows_mut().into_iter().enumerate() {
            let shift = if i % 2 == 0 { 0.8 } else { -0.8 };
            row.mapv_inplace(|v| v + shift);
        }
        let opts = null_options(k);
        let res =
            permutation_test(data.view(), &design, &Scheme::SignFlip, Some(&geom), &opts).unwrap();
        let (t, tfce) = false_positives(&res);
        fp_t += t;
        fp_tfce += tfce;
    }
    assert_nominal("crossover design null", fp_t, fp_tfce);
}
