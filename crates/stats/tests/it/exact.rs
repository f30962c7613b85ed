//! Exactness against naive references: t maps, exhaustive sign-flip p-values, TFCE, clusters,
//! GLM / Freedman–Lane.

use crate::common::*;
use cbflow_stats::{
    Connectivity, GlmDesign, MaskGeometry, PermutationOptions, Scheme, Tail, TfceParams, TfceStep,
    draw_shuffles, glm_fit, one_sample_sign_flip, permutation_test, tfce,
};
use ndarray::{Array1, Array2};
use rand::RngExt;

/// Brute-force exhaustive sign-flip p-values for a one-sample test, with optional TFCE and
/// cluster statistics computed by the naive references.
struct Brute {
    t_obs: Vec<f64>,
    p_unc: Vec<f64>,
    p_fwe: Vec<f64>,
    tfce_obs: Vec<f64>,
    tfce_fwe: Vec<f64>,
    cluster_null: Vec<usize>,
}

fn brute(
    data: &Array2<f32>,
    geom: &MaskGeometry,
    tail: Tail,
    dh: Option<f64>,
    thr: Option<f64>,
) -> Brute {
    let (n, nv) = data.dim();
    let stat = |t: f64| match tail {
        Tail::Positive => t,
        Tail::Negative => -t,
        _ => t.abs(),
    };
    let enh = |t: &[f64], dh: f64| -> Vec<f64> {
        let pos = naive_tfce(t, geom, Connectivity::Corners26, 0.5, 2.0, dh);
        let negt: Vec<f64> = t.iter().map(|x| -x).collect();
        let neg = naive_tfce(&negt, geom, Connectivity::Corners26, 0.5, 2.0, dh);
        match tail {
            Tail::Positive => pos,
            Tail::Negative => neg,
            _ => pos.iter().zip(&neg).map(|(a, b)| a - b).collect(),
        }
    };
    let max_cluster = |t: &[f64], thr: f64| -> usize {
        let mut best = 0;
        for sg in [1.0, -1.0] {
            let use_sign = match tail {
                Tail::Positive => sg > 0.0,
                Tail::Negative => sg < 0.0,
                _ => true,
            };
            if !use_sign {
                continue;
            }
            let act: Vec<bool> = t.iter().map(|&x| sg * x >= thr).collect();
            let (_, sizes) = flood_fill(geom, Connectivity::Corners26, &act);
            best = best.max(sizes.into_iter().max().unwrap_or(0));
        }
        best
    };
    let t_obs = naive_one_sample_t(data, &vec![1.0; n]);
    let tfce_obs = dh.map(|dh| enh(&t_obs, dh)).unwrap_or_default();
    let total = 1usize << n;
    let mut cnt = vec![0usize; nv];
    let mut maxes = Vec::new();
    let mut tmaxes = Vec::new();
    let mut cmax = Vec::new();
    for j in 0..total {
        let signs: Vec<f64> = (0..n)
            .map(|i| if (j >> i) & 1 == 1 { -1.0 } else { 1.0 })
            .collect();
        let t = naive_one_sample_t(data, &signs);
        let mut mx = f64::NEG_INFINITY;
        for v in 0..nv {
            if stat(t[v]) >= stat(t_obs[v]) {
                cnt[v] += 1;
            }
            mx = mx.max(stat(t[v]));
        }
        maxes.push(mx);
        if let Some(dh) = dh {
            tmaxes.push(enh(&t, dh).iter().map(|x| x.abs()).fold(0.0, f64::max));
        }
        if let Some(thr) = thr {
            cmax.push(max_cluster(&t, thr));
        }
    }
    let nf = total as f64;
    Brute {
        p_unc: cnt.iter().map(|&c| c as f64 / nf).collect(),
        p_fwe: t_obs
            .iter()
            .map(|&t| maxes.iter().filter(|&&m| m >= stat(t)).count() as f64 / nf)
            .collect(),
        tfce_fwe: tfce_obs
            .iter()
            .map(|&x| tmaxes.iter().filter(|&&m| m >= x.abs()).count() as f64 / nf)
            .collect(),
        tfce_obs,
        cluster_null: cmax,
        t_obs,
    }
}

fn random_data(seed: u64, n: usize, nv: usize, shift: f64) -> Array2<f32> {
    let mut r = rng(seed);
    Array2::from_shape_fn((n, nv), |_| (normal(&mut r) + shift) as f32)
}

#[test]
fn t_map_matches_naive() {
    let data = random_data(1, 11, 300, 0.3);
    let res = one_sample_sign_flip(
        data.view(),
        None,
        &PermutationOptions {
            n_permutations: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let naive = naive_one_sample_t(&data, &[1.0; 11]);
    for v in 0..300 {
        assert!(
            (res.t[v] - naive[v]).abs() <= 1e-10 * naive[v].abs().max(1.0),
            "voxel {v}"
        );
    }
    assert_eq!(res.df, 10.0);
    assert_eq!(res.n_shuffles, 11);
    assert!(!res.exhaustive);
}

#[test]
fn exhaustive_sign_flip_equals_brute_force() {
    // 8 subjects -> 256 patterns < 10 000 requested: exhaustive
    let dims = [5, 4, 3];
    let geom = full_geometry(dims);
    let mut r = rng(2);
    let mut data = smooth_noise(&mut r, 8, dims, 1.0);
    data.mapv_inplace(|x| x + 0.4);
    // TFCE (and clusters) from each map's one-byte levels (and bytes of the voxels above the
    // cluster threshold), from the t map again where the levels pass 255 (dh 0.01), and
    // clusters alone from the t maps
    let cases = [
        (Some(0.1), Some(1.5)),
        (Some(0.1), None),
        (Some(0.01), None),
        (Some(0.01), Some(1.5)),
        (None, Some(1.5)),
    ];
    for tail in [Tail::Positive, Tail::Negative, Tail::TwoSided] {
        for (dh, thr) in cases {
            let opts = PermutationOptions {
                seed: 7,
                tail,
                tfce: dh.map(|dh| TfceParams {
                    step: TfceStep::Fixed(dh),
                    ..Default::default()
                }),
                cluster_threshold: thr,
                ..Default::default()
            };
            let res = one_sample_sign_flip(data.view(), Some(&geom), &opts).unwrap();
            assert!(res.exhaustive);
            assert_eq!(res.n_shuffles, 256);
            let b = brute(&data, &geom, tail, dh, thr);
            for v in 0..geom.n_voxels() {
                assert!((res.t[v] - b.t_obs[v]).abs() < 1e-10, "t {tail:?} {v}");
                assert_eq!(res.p_uncorrected[v], b.p_unc[v], "p_unc {tail:?} voxel {v}");
                assert_eq!(res.p_fwe[v], b.p_fwe[v], "p_fwe {tail:?} voxel {v}");
            }
            if let Some(dh) = dh {
                let tf = res.tfce.as_ref().unwrap();
                if dh < 0.05 {
                    let top = tf.max_null.iter().fold(0.0, |m: f64, &x| m.max(x));
                    assert!(
                        top > 0.0 && b.t_obs.iter().any(|t| t.abs() > 2.56),
                        "levels > 255"
                    );
                }
                for v in 0..geom.n_voxels() {
                    assert!(
                        (tf.values[v] - b.tfce_obs[v]).abs() <= 1e-9 * b.tfce_obs[v].abs().max(1.0),
                        "tfce {tail:?} {v}"
                    );
                    assert_eq!(tf.p_fwe[v], b.tfce_fwe[v], "tfce fwe {tail:?} {dh} {v}");
                }
            } else {
                assert!(res.tfce.is_none());
            }
            // sanity: some signal was found with the positive shift
            if tail == Tail::Positive {
                assert!(res.p_uncorrected.iter().any(|&p| p < 0.05));
            }
            let Some(thr) = thr else { continue };
            let cl = res.clusters.as_ref().unwrap();
            assert_eq!(cl.max_size_null.len(), 256);
            let mut mine = cl.max_size_null.clone();
            let mut theirs = b.cluster_null.clone();
            mine.sort_unstable();
            theirs.sort_unstable();
            assert_eq!(mine, theirs, "cluster null {tail:?}");
            // the cluster list agrees with a flood fill of the observed map
            for c in &cl.clusters {
                let expect =
                    cl.max_size_null.iter().filter(|&&m| m >= c.size).count() as f64 / 256.0;
                assert_eq!(c.p_fwe, expect);
                assert_eq!(cl.labels.iter().filter(|&&l| l == c.label).count(), c.size);
                assert!((c.sign as f64 * c.peak_t) >= thr);
            }
        }
    }
}

#[test]
fn sampled_sign_flip_counts_identity() {
    // 12 subjects: 4096 patterns > 500 requested -> sampled; p = (1 + #{null >= obs}) / 501
    let data = random_data(3, 12, 40, 0.0);
    let opts = PermutationOptions {
        n_permutations: 500,
        seed: 11,
        ..Default::default()
    };
    let res = one_sample_sign_flip(data.view(), None, &opts).unwrap();
    assert!(!res.exhaustive);
    assert_eq!(res.n_shuffles, 501);
    let (shuffles, ex) = draw_shuffles(12, &Scheme::SignFlip, 500, 11).unwrap();
    assert!(!ex);
    let t0 = naive_one_sample_t(&data, &[1.0; 12]);
    let mut cnt = vec![0usize; 40];
    let mut maxes = vec![];
    for sh in &shuffles {
        let t = naive_one_sample_t(&data, &sh.signs);
        maxes.push(t.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        for v in 0..40 {
            cnt[v] += (t[v] >= t0[v]) as usize;
        }
    }
    for v in 0..40 {
        assert_eq!(res.p_uncorrected[v], cnt[v] as f64 / 501.0);
        assert!(res.p_uncorrected[v] >= 1.0 / 501.0);
    }
    for (a, b) in res.max_t_null.iter().zip(&maxes) {
        assert!((a - b).abs() < 1e-9);
    }
    // same seed, same result; different thread counts, same bits
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let res1 = pool.install(|| one_sample_sign_flip(data.view(), None, &opts).unwrap());
    assert_eq!(res1, res);
}

#[test]
fn tfce_matches_naive_reference() {
    let mut r = rng(4);
    for (dims, conn, e, h, dh) in [
        ([7, 6, 5], Connectivity::Corners26, 0.5, 2.0, 0.05),
        ([7, 6, 5], Connectivity::Faces6, 0.5, 2.0, 0.1),
        ([6, 6, 6], Connectivity::Edges18, 0.66, 1.5, 0.07),
        ([9, 3, 4], Connectivity::Corners26, 1.0, 2.0, 0.2),
        // more than 255 levels: the flood's four-byte levels
        ([8, 7, 6], Connectivity::Corners26, 0.5, 2.0, 0.004),
    ] {
        let nv_full = dims[0] * dims[1] * dims[2];
        // irregular mask
        let mask: Vec<bool> = (0..nv_full).map(|_| r.random::<f64>() < 0.8).collect();
        let geom = MaskGeometry::from_mask(dims, &mask).unwrap();
        let raw: Vec<f64> = (0..nv_full).map(|_| normal(&mut r)).collect();
        let sm = smooth(&raw, dims, 1.0);
        let vals: Vec<f64> = (0..nv_full)
            .filter(|&l| mask[l])
            .map(|l| sm[l] * 3.0)
            .collect();
        if dh < 0.01 {
            let max = vals.iter().cloned().fold(0.0, f64::max);
            assert!(max / dh > 255.0, "{max} / {dh}: too few levels");
        }
        let fast = tfce(&vals, &geom.neighbours(conn), e, h, dh).unwrap();
        let naive = naive_tfce(&vals, &geom, conn, e, h, dh);
        let mut nonzero = 0;
        for v in 0..vals.len() {
            assert!(
                (fast[v] - naive[v]).abs() <= 1e-9 * naive[v].abs().max(1.0),
                "{conn:?} voxel {v}: {} vs {}",
                fast[v],
                naive[v]
            );
            nonzero += (naive[v] > 0.0) as usize;
        }
        assert!(nonzero > 10, "test map should have supra-threshold voxels");
    }
}

/// The TFCE of a voxel depends on the map alone, not on the order in which the mask's voxels
/// are numbered: the same map with its columns reversed gives the same bytes, per voxel.
#[test]
fn tfce_does_not_depend_on_the_column_order() {
    let mut r = rng(6);
    let dims = [12, 11, 10];
    let nv_full = dims[0] * dims[1] * dims[2];
    let mask: Vec<bool> = (0..nv_full).map(|_| r.random::<f64>() < 0.9).collect();
    let geom = MaskGeometry::from_mask(dims, &mask).unwrap();
    let raw: Vec<f64> = (0..nv_full).map(|_| normal(&mut r)).collect();
    let sm = smooth(&raw, dims, 1.5);
    let vals: Vec<f64> = (0..nv_full)
        .filter(|&l| mask[l])
        .map(|l| sm[l] * 4.0)
        .collect();
    let reversed =
        MaskGeometry::from_ijk(dims, geom.ijk().iter().rev().copied().collect()).unwrap();
    let rvals: Vec<f64> = vals.iter().rev().copied().collect();
    for conn in [Connectivity::Faces6, Connectivity::Corners26] {
        let a = tfce(&vals, &geom.neighbours(conn), 0.5, 2.0, 0.05).unwrap();
        let b = tfce(&rvals, &reversed.neighbours(conn), 0.5, 2.0, 0.05).unwrap();
        let n = a.len();
        assert!(a.iter().filter(|&&x| x > 0.0).count() > 50);
        for v in 0..n {
            assert_eq!(a[v].to_bits(), b[n - 1 - v].to_bits(), "{conn:?} voxel {v}");
        }
    }
}

#[test]
fn glm_t_matches_naive_ols() {
    let mut r = rng(5);
    let n = 14;
    let nv = 60;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| {
        if j == 0 {
            1.0
        } else {
            normal(&mut r) + i as f64 * 0.05
        }
    });
    let y = Array2::from_shape_fn((n, nv), |(i, _)| (0.5 * x[[i, 1]] + normal(&mut r)) as f32);
    let y64 = y.mapv(|v| v as f64);
    for c in [[0.0, 1.0, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 0.0]] {
        let d = GlmDesign::new(x.clone(), Array1::from(c.to_vec())).unwrap();
        let fit = glm_fit(y.view(), &d).unwrap();
        let naive = naive_ols_t(&y64, &x, &c);
        for v in 0..nv {
            assert!((fit.t[v] - naive[v]).abs() < 1e-9 * naive[v].abs().max(1.0));
        }
        assert_eq!(fit.df, 11.0);
    }
}

#[test]
fn freedman_lane_matches_naive_refit() {
    // two-group design with a nuisance covariate, permutation within 2 blocks
    let mut r = rng(6);
    let n = 16;
    let nv = 25;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => 1.0,
        1 => (i % 2) as f64,
        _ => normal(&mut r),
    });
    let y = Array2::from_shape_fn((n, nv), |(i, _)| {
        (0.8 * x[[i, 2]] + 0.3 * x[[i, 1]] + normal(&mut r)) as f32
    });
    let c = [0.0, 1.0, 0.0];
    let d = GlmDesign::new(x.clone(), Array1::from(c.to_vec())).unwrap();
    let blocks: Vec<usize> = (0..n).map(|i| i / 8).collect();
    for scheme in [
        Scheme::WithinBlocks {
            blocks: blocks.clone(),
        },
        Scheme::WithinBlocksSignFlip {
            blocks: blocks.clone(),
        },
    ] {
        let opts = PermutationOptions {
            n_permutations: 60,
            seed: 3,
            tail: Tail::TwoSided,
            ..Default::default()
        };
        let res = permutation_test(y.view(), &d, &scheme, None, &opts).unwrap();
        let (shuffles, _) = draw_shuffles(n, &scheme, 60, 3).unwrap();
        // Freedman–Lane by hand: Z = [1, covariate] (null model), Y* = P R_Z Y + H_Z Y, refit full X
        let z = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { 1.0 } else { x[[i, 2]] });
        let zm = nalgebra::DMatrix::from_fn(n, 2, |i, j| z[[i, j]]);
        let hz = &zm * (zm.transpose() * &zm).try_inverse().unwrap() * zm.transpose();
        let ym = nalgebra::DMatrix::from_fn(n, nv, |i, j| y[[i, j]] as f64);
        let fitted = &hz * &ym;
        let resid = &ym - &fitted;
        let t0 = naive_ols_t(&y.mapv(|v| v as f64), &x, &c);
        for v in 0..nv {
            assert!((res.t[v] - t0[v]).abs() < 1e-9 * t0[v].abs().max(1.0));
        }
        let mut cnt = vec![0usize; nv];
        for (j, sh) in shuffles.iter().enumerate() {
            let ystar = Array2::from_shape_fn((n, nv), |(i, v)| {
                let src = sh.perm.as_ref().map_or(i, |p| p[i] as usize);
                sh.signs[i] * resid[(src, v)] + fitted[(i, v)]
            });
            let t = naive_ols_t(&ystar, &x, &c);
            let mx = t.iter().map(|x| x.abs()).fold(0.0, f64::max);
            assert!(
                (res.max_t_null[j] - mx).abs() < 1e-9 * mx.max(1.0),
                "shuffle {j}"
            );
            for v in 0..nv {
                cnt[v] += (t[v].abs() >= t0[v].abs()) as usize;
            }
        }
        for v in 0..nv {
            assert_eq!(res.p_uncorrected[v], cnt[v] as f64 / 61.0);
        }
        // within-block permutations never move a row across blocks
        for sh in &shuffles {
            if let Some(p) = &sh.perm {
                for i in 0..n {
                    assert_eq!(blocks[p[i] as usize], blocks[i]);
                }
            }
        }
    }
}

#[test]
fn spatial_results_identical_across_thread_counts() {
    let dims = [8, 7, 6];
    let geom = full_geometry(dims);
    let mut r = rng(8);
    let mut data = smooth_noise(&mut r, 14, dims, 1.0);
    data.mapv_inplace(|x| x + 0.3);
    let opts = PermutationOptions {
        n_permutations: 300,
        seed: 99,
        tail: Tail::TwoSided,
        tfce: Some(TfceParams::default()),
        cluster_threshold: Some(2.0),
        ..Default::default()
    };
    let many = one_sample_sign_flip(data.view(), Some(&geom), &opts).unwrap();
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let res = pool.install(|| one_sample_sign_flip(data.view(), Some(&geom), &opts).unwrap());
        assert_eq!(res, many, "{threads} threads");
    }
    assert!(!many.clusters.as_ref().unwrap().clusters.is_empty());
}
