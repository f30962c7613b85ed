//! SCORE rejects injected outlier volumes; robust mean closer to truth than the plain mean.

use cbflow_cbf::{ScoreParams, TissueMaps, score};
use ndarray::{Array3, Array4, Axis};

use crate::common::{add_noise, phantom};

fn rmse(a: &Array3<f32>, b: &Array3<f32>, mask: &Array3<bool>) -> f64 {
    let (mut s, mut n) = (0.0, 0);
    for ((&x, &y), &m) in a.iter().zip(b.iter()).zip(mask.iter()) {
        if m {
            s += ((x - y) as f64).powi(2);
            n += 1;
        }
    }
    (s / n as f64).sqrt()
}

fn series_with_outliers() -> (crate::common::Phantom, Array4<f32>, Vec<usize>) {
    let ph = phantom([20, 20, 12]);
    let n = 30;
    let mut ts = Array4::<f32>::zeros((20, 20, 12, n));
    for mut v in ts.axis_iter_mut(Axis(3)) {
        v.assign(&ph.cbf);
    }
    add_noise(&mut ts, 50.0, 42); // per-pair CBF noise typical of 2D/3D pCASL
    // global spikes (e.g. a labelling failure / gross motion): whole-brain offset
    for &t in &[4usize, 17] {
        ts.index_axis_mut(Axis(3), t).mapv_inplace(|v| v + 80.0);
    }
    // structured artefacts (e.g. subtraction errors after motion) that leave the GM mean
    // unchanged: ±300 on the two halves
    for &t in &[9usize, 23] {
        let mut v = ts.index_axis_mut(Axis(3), t);
        for ((i, _, _), x) in v.indexed_iter_mut() {
            *x += if i < 10 { 300.0 } else { -300.0 };
        }
    }
    for t in 0..n {
        let mut v = ts.index_axis_mut(Axis(3), t);
        ndarray::Zip::from(&mut v).and(&ph.mask).for_each(|x, &m| {
            if !m {
                *x = 0.0
            }
        });
    }
    (ph, ts, vec![4, 9, 17, 23])
}

#[test]
fn score_rejects_injected_outliers() {
    let (ph, ts, bad) = series_with_outliers();
    let tissue = TissueMaps {
        gm: ph.gm.view(),
        wm: ph.wm.view(),
        csf: Some(ph.csf.view()),
    };
    let r = score(ts.view(), &tissue, ph.mask.view(), &ScoreParams::default()).unwrap();
    for b in &bad {
        assert!(!r.kept.contains(b), "outlier {b} kept; kept = {:?}", r.kept);
    }
    assert!(r.rejected_gm_outlier.contains(&4) && r.rejected_gm_outlier.contains(&17));
    let false_rej = 30 - r.kept.len() - bad.len();
    assert!(
        false_rej <= 3,
        "{false_rej} clean volumes rejected: {:?} {:?}",
        r.rejected_gm_outlier,
        r.rejected_iterative
    );
    let plain = ts.mean_axis(Axis(3)).unwrap();
    let (e_rob, e_plain) = (
        rmse(&r.mean, &ph.cbf, &ph.mask),
        rmse(&plain, &ph.cbf, &ph.mask),
    );
    assert!(
        e_rob < 0.8 * e_plain,
        "robust RMSE {e_rob} vs plain {e_plain}"
    );
}

#[test]
fn score_keeps_clean_series_and_is_thread_invariant() {
    let ph = phantom([16, 16, 10]);
    let mut ts = Array4::<f32>::zeros((16, 16, 10, 20));
    for mut v in ts.axis_iter_mut(Axis(3)) {
        v.assign(&ph.cbf);
    }
    add_noise(&mut ts, 10.0, 5);
    let tissue = TissueMaps {
        gm: ph.gm.view(),
        wm: ph.wm.view(),
        csf: None,
    };
    let run = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| score(ts.view(), &tissue, ph.mask.view(), &ScoreParams::default()).unwrap())
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.kept, b.kept);
    assert!(
        a.mean
            .iter()
            .zip(b.mean.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert!(
        a.kept.len() >= 17,
        "kept {} of 20 clean volumes",
        a.kept.len()
    );
}
