//! QC metrics on known maps; QEI separates a good from a bad CBF map; smoothing vs a
//! naive 3D convolution.

use cbflow_cbf::qc::gaussian_smooth;
use cbflow_cbf::{
    FdSummary, QcParams, TissueMaps, framewise_displacement, qc_metrics, summarize_fd,
};
use ndarray::Array3;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::common::{add_noise, gm_mean, phantom};

#[test]
fn qc_on_truth_and_on_a_failed_map() {
    let ph = phantom([24, 24, 16]);
    let tissue = TissueMaps {
        gm: ph.gm.view(),
        wm: ph.wm.view(),
        csf: Some(ph.csf.view()),
    };
    let params = QcParams {
        voxel_size_mm: Some([3.0, 3.0, 4.0]),
        ..QcParams::default()
    };
    let motion = [
        [0.0; 6],
        [0.1, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.1, 0.2, 0.0, 0.0, 0.0, 0.001],
    ];
    let fd = framewise_displacement(&motion, 50.0).unwrap();
    let fds: FdSummary = summarize_fd(&fd, 0.5, 50.0);
    let good = qc_metrics(
        ph.cbf.view(),
        &tissue,
        ph.mask.view(),
        Some(&fds),
        30,
        28,
        &params,
    )
    .unwrap();
    assert!((good.mean_cbf_gm - gm_mean(ph.cbf.view(), &ph)).abs() < 1e-6);
    assert!(
        good.gm_wm_ratio > 2.0 && good.gm_wm_ratio < 3.5,
        "{}",
        good.gm_wm_ratio
    );
    assert_eq!(good.negative_gm_fraction, 0.0);
    assert!(
        good.qei > 0.7,
        "QEI of the truth map {} {:?}",
        good.qei,
        good
    );
    assert!(good.flags.is_empty(), "{:?}", good.flags);
    assert!((good.fd_mean_mm.unwrap() - 0.175).abs() < 1e-12); // (0.1 + 0.2 + 50·0.001) / 2
    // a failed run: label/control swapped and noisy
    let mut bad4 = (-&ph.cbf).insert_axis(ndarray::Axis(3)).to_owned();
    add_noise(&mut bad4, 40.0, 9);
    let bad: Array3<f32> = bad4.index_axis_move(ndarray::Axis(3), 0);
    let b = qc_metrics(bad.view(), &tissue, ph.mask.view(), None, 30, 30, &params).unwrap();
    assert!(b.qei < 0.3, "QEI of a failed map {}", b.qei);
    let flagged: Vec<_> = b.flags.iter().map(|f| f.metric.as_str()).collect();
    assert!(
        flagged.contains(&"mean_cbf_gm")
            && flagged.contains(&"qei")
            && flagged.contains(&"negative_gm_fraction")
    );
    let json = serde_json::to_string(&b).unwrap();
    assert!(json.contains("\"qei\""));
}

#[test]
fn gaussian_smoothing_matches_naive_convolution() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = Normal::new(0.0, 1.0).unwrap();
    let img = Array3::from_shape_fn((9, 8, 7), |_| n.sample(&mut rng) as f32);
    let vox = [2.0, 2.5, 3.0];
    let fwhm = 5.0;
    let fast = gaussian_smooth(img.view(), fwhm, vox);
    // naive: full 3D kernel, each axis truncated at 4σ, nearest-edge replication
    let sig: Vec<f64> = vox
        .iter()
        .map(|v| fwhm / (8.0 * 2f64.ln()).sqrt() / v)
        .collect();
    let rad: Vec<isize> = sig.iter().map(|s| (4.0 * s).ceil() as isize).collect();
    let w = |a: usize, d: isize| (-((d * d) as f64) / (2.0 * sig[a] * sig[a])).exp();
    let norm: Vec<f64> = (0..3)
        .map(|a| (-rad[a]..=rad[a]).map(|d| w(a, d)).sum())
        .collect();
    let dims = [9isize, 8, 7];
    for ((i, j, k), &f) in fast.indexed_iter() {
        let mut acc = 0.0;
        for di in -rad[0]..=rad[0] {
            for dj in -rad[1]..=rad[1] {
                for dk in -rad[2]..=rad[2] {
                    let ii = (i as isize + di).clamp(0, dims[0] - 1) as usize;
                    let jj = (j as isize + dj).clamp(0, dims[1] - 1) as usize;
                    let kk = (k as isize + dk).clamp(0, dims[2] - 1) as usize;
                    acc += w(0, di) * w(1, dj) * w(2, dk) * img[[ii, jj, kk]] as f64;
                }
            }
        }
        acc /= norm[0] * norm[1] * norm[2];
        assert!((acc - f as f64).abs() < 1e-5, "{acc} vs {f}");
    }
}
