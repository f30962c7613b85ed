//! QC metrics on known maps; QEI separates a good from a bad CBF map; smoothing vs a
//! naive 3D convolution.

use cbflow_cbf::{
    FdSummary, QcParams, TissueMaps, framewise_displacement, qc_metrics, summarize_fd,
};
use ndarray::Array3;

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
