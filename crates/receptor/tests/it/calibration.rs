//! Calibration of the spatial null models: for smooth random maps independent of a smooth
//! receptor-like map, surrogate p-values are uniform while naive parametric p-values are not.

use cbflow_receptor::{
    DistanceMatrix, VariogramParams, VariogramSurrogates, null_p_value, parametric_p,
};

use crate::common::{dot, gp_draw, gp_factor, ks_uniform, rng, schaefer_centres, unit_ranks};

/// p-values of `draws` independent smooth maps against `x`, using `surr` as null.
pub fn surrogate_and_naive_p(
    x: &[f64],
    surr: &ndarray::Array2<f64>,
    draws: &[Vec<f64>],
) -> (Vec<f64>, Vec<f64>) {
    let ux = unit_ranks(x);
    let us: Vec<Vec<f64>> = surr.outer_iter().map(|r| unit_ranks(&r.to_vec())).collect();
    let mut ps = Vec::new();
    let mut pn = Vec::new();
    for y in draws {
        let uy = unit_ranks(y);
        let r = dot(&uy, &ux);
        let null: Vec<f64> = us.iter().map(|u| dot(&uy, u)).collect();
        ps.push(null_p_value(r, &null));
        pn.push(parametric_p(r, x.len(), 0).unwrap());
    }
    (ps, pn)
}

fn fpr(p: &[f64]) -> f64 {
    p.iter().filter(|&&v| v <= 0.05).count() as f64 / p.len() as f64
}

/// The p-values of `draws` against `x` with `surr` as null (see [`surrogate_and_naive_p`]),
/// printed with their KS tests and false-positive rates under `label`; asserts that the
/// surrogate p-values are uniform (KS p > 0.01) and the naive ones anti-conservative (KS p
/// < 1e-4, false-positive rate above 0.10). Returns the surrogate p-values.
fn calibrated_naive_is_not(
    label: &str,
    x: &[f64],
    surr: &ndarray::Array2<f64>,
    draws: &[Vec<f64>],
) -> Vec<f64> {
    let (ps, pn) = surrogate_and_naive_p(x, surr, draws);
    let (ks_s, ks_n) = (ks_uniform(&ps), ks_uniform(&pn));
    eprintln!(
        "{label}: surrogate KS D {:.4} p {:.4}, FPR(0.05) {:.3} | naive KS D {:.4} p {:.2e}, FPR(0.05) {:.3}",
        ks_s.0,
        ks_s.1,
        fpr(&ps),
        ks_n.0,
        ks_n.1,
        fpr(&pn)
    );
    assert!(
        ks_s.1 > 0.01,
        "{label}: surrogate p-values not uniform: KS p {}",
        ks_s.1
    );
    assert!(
        ks_n.1 < 1e-4,
        "{label}: naive p-values should be rejected as non-uniform: KS p {}",
        ks_n.1
    );
    assert!(
        fpr(&pn) > 0.10,
        "{label}: naive false-positive rate {} should exceed 0.10",
        fpr(&pn)
    );
    ps
}

/// Full method, Schaefer-100 centroids, exponential-covariance Gaussian fields (length 30 mm).
/// Three receptor-like maps (seeds 1–3, not selected), 1000 surrogates each generated once, 500
/// independent smooth target maps each.
#[test]
fn full_method_calibrated_naive_is_not() {
    let coords = schaefer_centres(100);
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let l = gp_factor(&coords, 30.0);
    let mut r = rng(100);
    let draws: Vec<Vec<f64>> = (0..500).map(|_| gp_draw(&l, &mut r)).collect();
    for seed in [1u64, 2, 3] {
        let x = gp_draw(&l, &mut rng(seed));
        let gen_ = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
        let surr = gen_.generate(1000, 42);
        let ps = calibrated_naive_is_not(&format!("receptor seed {seed}"), &x, &surr, &draws);
        assert!(
            (0.02..=0.08).contains(&fpr(&ps)),
            "surrogate false-positive rate {}",
            fpr(&ps)
        );
    }
}

/// Sampled method on a 10³ grid (4 mm spacing, 1000 points): sums of random Gaussian bumps;
/// 400 surrogates generated once, 500 independent smooth target maps.
#[test]
fn sampled_method_calibrated_naive_is_not() {
    use cbflow_receptor::{SampledParams, SampledSurrogates};
    let (coords, x) = crate::surrogates::grid_field(10, 1);
    let draws: Vec<Vec<f64>> = (0..500)
        .map(|i| crate::surrogates::grid_field(10, 1000 + i).1)
        .collect();
    let params = SampledParams {
        knn: 500,
        ns: 200,
        ..SampledParams::default()
    };
    let gen_ = SampledSurrogates::new(&x, &coords, params).unwrap();
    let surr = gen_.generate(400, 42);
    calibrated_naive_is_not("sampled", &x, &surr, &draws);
}
