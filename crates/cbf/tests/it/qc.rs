//! QC metrics on known maps; QEI separates a good from a bad CBF map; smoothing vs a
//! naive 3D convolution.

use cbflow_cbf::{
    FdSummary, QcCounts, QcParams, TissueMaps, framewise_displacement, qc_metrics, summarize_fd,
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
    let counts = QcCounts {
        pairs_total: 30,
        pairs_kept: 28,
        voxels_left_out: 3,
    };
    let good = qc_metrics(
        ph.cbf.view(),
        Some(&tissue),
        ph.mask.view(),
        Some(&fds),
        counts,
        &params,
    )
    .unwrap();
    assert!((good.mean_cbf_gm.unwrap() - gm_mean(ph.cbf.view(), &ph)).abs() < 1e-6);
    let ratio = good.gm_wm_ratio.unwrap();
    assert!(ratio > 2.0 && ratio < 3.5, "{ratio}");
    assert_eq!(good.negative_gm_fraction, Some(0.0));
    let q = good.qei.unwrap();
    assert!(q > 0.7, "QEI of the truth map {q} {good:?}");
    // the brain-mask metrics against a direct computation
    let inside: Vec<f64> = ph
        .cbf
        .iter()
        .zip(ph.mask.iter())
        .filter(|(_, m)| **m)
        .map(|(c, _)| *c as f64)
        .collect();
    let mean = inside.iter().sum::<f64>() / inside.len() as f64;
    let var =
        inside.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / (inside.len() - 1) as f64;
    assert!((good.mean_cbf_brain - mean).abs() < 1e-9);
    assert!((good.spatial_cov_brain - var.sqrt() / mean).abs() < 1e-9);
    assert_eq!(good.voxels_left_out, 3);
    // without tissue maps: the brain-mask metrics only
    let alone = qc_metrics(
        ph.cbf.view(),
        None,
        ph.mask.view(),
        Some(&fds),
        counts,
        &params,
    )
    .unwrap();
    assert_eq!(alone.mean_cbf_brain, good.mean_cbf_brain);
    assert!(alone.qei.is_none() && alone.mean_cbf_gm.is_none());
    assert!(good.flags.is_empty(), "{:?}", good.flags);
    assert!((good.fd_mean_mm.unwrap() - 0.175).abs() < 1e-12); // (0.1 + 0.2 + 50·0.001) / 2
    // a failed run: label/control swapped and noisy
    let mut bad4 = (-&ph.cbf).insert_axis(ndarray::Axis(3)).to_owned();
    add_noise(&mut bad4, 40.0, 9);
    let bad: Array3<f32> = bad4.index_axis_move(ndarray::Axis(3), 0);
    let b = qc_metrics(
        bad.view(),
        Some(&tissue),
        ph.mask.view(),
        None,
        counts,
        &params,
    )
    .unwrap();
    assert!(b.qei.unwrap() < 0.3, "QEI of a failed map {:?}", b.qei);
    let flagged: Vec<_> = b.flags.iter().map(|f| f.metric.as_str()).collect();
    assert!(
        flagged.contains(&"mean_cbf_gm")
            && flagged.contains(&"qei")
            && flagged.contains(&"negative_gm_fraction")
            && flagged.contains(&"mean_cbf_brain")
            && flagged.contains(&"negative_brain_fraction"),
        "{flagged:?}"
    );
    let json = serde_json::to_string(&b).unwrap();
    assert!(json.contains("\"qei\""));
}
