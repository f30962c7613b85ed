//! Sign-flip and JuSpace-style nulls, FDR over result records.

use cbflow_receptor::{
    CorrelationMethod, CorrelationResult, DistanceMatrix, GroupStat, NullModel, VariogramParams,
    VariogramSurrogates, apply_fdr, correlate, group_map, juspace_null_maps, null_correlations,
    partial_correlation, sign_flip_null, spatial_permutation_test,
};
use ndarray::Array2;

use crate::common::{dot, gp_draw, gp_factor, ks_uniform, n01, rng, schaefer_centres, unit_ranks};

/// Under the null (subject change maps symmetric about zero, spatially smooth and independent of
/// the receptor map), sign-flip p-values are uniform; naive p-values of the same group-map
/// correlations are not.
#[test]
fn sign_flip_calibrated() {
    let coords = schaefer_centres(100);
    let l = gp_factor(&coords, 30.0);
    let receptor = gp_draw(&l, &mut rng(1));
    let rec = Array2::from_shape_vec((1, 100), receptor.clone()).unwrap();
    let mut r = rng(77);
    let n_sub = 12;
    let mut p_flip = Vec::new();
    let mut p_naive = Vec::new();
    for draw in 0..500 {
        // each subject: smooth individual field (shared spatial pattern would be a real effect)
        let diff = Array2::from_shape_fn((n_sub, 100), |_| 0.0);
        let mut diff = diff;
        for s in 0..n_sub {
            let f = gp_draw(&l, &mut r);
            let noise: Vec<f64> = (0..100).map(|_| 0.3 * n01(&mut r)).collect();
            for j in 0..100 {
                diff[(s, j)] = f[j] + noise[j];
            }
        }
        let out = sign_flip_null(
            diff.view(),
            rec.view(),
            CorrelationMethod::Spearman,
            GroupStat::T,
            499,
            draw,
        )
        .unwrap();
        p_flip.push(out.p[0]);
        let g = group_map(diff.view(), GroupStat::T).unwrap();
        let rr = correlate(&g, &receptor, CorrelationMethod::Spearman).unwrap();
        p_naive.push(cbflow_receptor::parametric_p(rr, 100, 0).unwrap());
    }
    let (ks_f, ks_n) = (ks_uniform(&p_flip), ks_uniform(&p_naive));
    let fpr = |p: &[f64]| p.iter().filter(|&&v| v <= 0.05).count() as f64 / p.len() as f64;
    eprintln!(
        "sign-flip: KS p {:.4}, FPR {:.3} | naive: KS p {:.2e}, FPR {:.3}",
        ks_f.1,
        fpr(&p_flip),
        ks_n.1,
        fpr(&p_naive)
    );
    assert!(ks_f.1 > 0.01);
    assert!(ks_n.1 < 0.01 && fpr(&p_naive) >= 0.10);
}

/// The sign-flip null detects a real shared effect that follows the receptor map.
#[test]
fn sign_flip_detects_receptor_pattern() {
    let coords = schaefer_centres(100);
    let l = gp_factor(&coords, 30.0);
    let receptor = gp_draw(&l, &mut rng(1));
    let rec = Array2::from_shape_vec((1, 100), receptor.clone()).unwrap();
    let mut r = rng(5);
    let diff = Array2::from_shape_fn((10, 100), |(_, j)| 0.5 * receptor[j] + n01(&mut r));
    let out = sign_flip_null(
        diff.view(),
        rec.view(),
        CorrelationMethod::Spearman,
        GroupStat::T,
        5000,
        3,
    )
    .unwrap();
    assert!(
        out.exhaustive,
        "2^10 = 1024 <= 5000 sign vectors: exhaustive"
    );
    assert!(
        out.r[0] > 0.5 && out.p[0] <= 2.0 / 1024.0 + 1e-12,
        "r {} p {}",
        out.r[0],
        out.p[0]
    );
}

/// JuSpace's grey-matter adjustment: a target and a receptor map that are related only through a
/// shared grey-matter pattern correlate strongly, but their partial correlation is null; the
/// permutation test on partial correlations does not reject.
#[test]
fn juspace_gm_partial_removes_shared_tissue_pattern() {
    let coords = schaefer_centres(100);
    let l = gp_factor(&coords, 30.0);
    let gm = gp_draw(&l, &mut rng(10));
    let mut r = rng(11);
    let target: Vec<f64> = gm.iter().map(|g| g + 0.5 * n01(&mut r)).collect();
    let receptor: Vec<f64> = gm.iter().map(|g| g + 0.5 * n01(&mut r)).collect();
    let raw = spatial_permutation_test(
        &target,
        &receptor,
        &coords,
        CorrelationMethod::Spearman,
        None,
        None,
        500,
        1,
    )
    .unwrap();
    let adj = spatial_permutation_test(
        &target,
        &receptor,
        &coords,
        CorrelationMethod::Spearman,
        Some(&gm),
        None,
        500,
        1,
    )
    .unwrap();
    eprintln!(
        "raw r {:.3} p {:.4}; GM-adjusted r {:.3} p {:.4}",
        raw.r, raw.p, adj.r, adj.p
    );
    assert!(raw.r > 0.6 && raw.p < 0.01);
    assert!(adj.r.abs() < 0.25 && adj.p > 0.05);
    let want = partial_correlation(&target, &receptor, &gm, CorrelationMethod::Spearman).unwrap();
    assert_eq!(adj.r, want);
}

/// JuSpace null maps against smooth independent targets: p-values uniform (KS) and far fewer
/// false positives than naive p-values.
#[test]
fn juspace_null_reduces_false_positives() {
    let coords = schaefer_centres(100);
    let l = gp_factor(&coords, 30.0);
    let receptor = gp_draw(&l, &mut rng(2));
    let nulls = juspace_null_maps(&receptor, &coords, None, 500, 9).unwrap();
    let mut r = rng(300);
    let mut p_js = Vec::new();
    let mut p_naive = Vec::new();
    // Spearman = dot product of unit-scaled centred ranks; rank the null maps once
    let un: Vec<Vec<f64>> = nulls
        .outer_iter()
        .map(|r| unit_ranks(&r.to_vec()))
        .collect();
    let ur = unit_ranks(&receptor);
    for _ in 0..300 {
        let y = unit_ranks(&gp_draw(&l, &mut r));
        let obs = dot(&y, &ur);
        let null: Vec<f64> = un.iter().map(|u| dot(&y, u)).collect();
        p_js.push(cbflow_receptor::null_p_value(obs, &null));
        p_naive.push(cbflow_receptor::parametric_p(obs, 100, 0).unwrap());
    }
    // the shortcut equals the library's correlation
    let y = gp_draw(&l, &mut r);
    let lib = null_correlations(
        &y,
        nulls.slice(ndarray::s![..3, ..]),
        CorrelationMethod::Spearman,
        None,
    )
    .unwrap();
    let yu = unit_ranks(&y);
    for k in 0..3 {
        assert!((lib[k] - dot(&yu, &un[k])).abs() < 1e-12);
    }
    let fpr = |p: &[f64]| p.iter().filter(|&&v| v <= 0.05).count() as f64 / p.len() as f64;
    eprintln!(
        "JuSpace null: FPR {:.3}, KS p {:.3} | naive FPR {:.3}",
        fpr(&p_js),
        ks_uniform(&p_js).1,
        fpr(&p_naive)
    );
    assert!(fpr(&p_js) < 0.5 * fpr(&p_naive));
    assert!(ks_uniform(&p_js).1 > 0.01);
}

/// Result records: p-values from nulls, FDR across maps, serde round trip.
#[test]
fn result_records_and_fdr() {
    let coords = schaefer_centres(100);
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let l = gp_factor(&coords, 30.0);
    let group = gp_draw(&l, &mut rng(50));
    let mut results = Vec::new();
    for (k, name) in ["MOR", "KOR", "NMDA"].iter().enumerate() {
        let rec: Vec<f64> = if k == 0 {
            {
                let mut rr = rng(k as u64);
                group.iter().map(|g| g + 0.2 * n01(&mut rr)).collect()
            }
        } else {
            gp_draw(&l, &mut rng(60 + k as u64))
        };
        let r = correlate(&group, &rec, CorrelationMethod::Spearman).unwrap();
        let gen_ = VariogramSurrogates::new(&rec, &d, VariogramParams::default()).unwrap();
        let surr = gen_.generate(200, 1);
        let null =
            null_correlations(&group, surr.view(), CorrelationMethod::Spearman, None).unwrap();
        let mut res = CorrelationResult::new(
            "drug-placebo_t",
            format!("{name}_map"),
            *name,
            "schaefer100",
            CorrelationMethod::Spearman,
            r,
            100,
        );
        res.add_null(NullModel::Variogram, null);
        res.add_parametric().unwrap();
        results.push(res);
    }
    apply_fdr(&mut results).unwrap();
    let p: Vec<f64> = results.iter().map(|r| r.p[&NullModel::Variogram]).collect();
    let q = cbflow_receptor::fdr_bh(&p).unwrap();
    for (r, q) in results.iter().zip(&q) {
        assert_eq!(r.p_fdr[&NullModel::Variogram], *q);
        assert!(r.p_fdr.contains_key(&NullModel::Parametric));
    }
    assert!(results[0].r > 0.9 && results[0].p[&NullModel::Variogram] <= 1.0 / 201.0 + 1e-12);
    let json = serde_json::to_string(&results).unwrap();
    assert!(json.contains("\"variogram\"") && json.contains("\"p-fdr\""));
    let back: Vec<CorrelationResult> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.len(), 3);
    for (a, b) in back.iter().zip(&results) {
        assert_eq!(
            (&a.map, &a.target, a.n, a.method),
            (&b.map, &b.target, b.n, b.method)
        );
        assert!(
            (a.r - b.r).abs() < 1e-14
                && (a.p[&NullModel::Variogram] - b.p[&NullModel::Variogram]).abs() < 1e-14
        );
    }
}
