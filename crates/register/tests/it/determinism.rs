use cbflow_register::{
    AffineTransform, LinearMetric, LinearOptions, SynOptions, register_rigid, register_syn,
};

use crate::common::*;

/// Runs `f` on a pool of `n` threads.
fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

/// Same inputs and seed give identical bits with 1 and 2 threads (rigid MI and nonlinear).
#[test]
fn results_are_bitwise_identical_across_thread_counts() {
    let fixed = mni_t1();
    let grid = fixed.grid();
    let truth =
        AffineTransform::from_rigid([3.0, -2.0, 4.0, 0.05, 0.02, -0.04], grid_centre(&grid));
    let moving = simulate_moving(&fixed, &truth, &grid);
    let run = |threads: usize| {
        on_threads(threads, || {
            let opts = LinearOptions {
                metric: LinearMetric::MattesMi { bins: 32 },
                shrink_factors: vec![4, 2],
                smoothing_sigmas: vec![2.0, 1.0],
                iterations: vec![20, 10],
                ..Default::default()
            };
            let r = register_rigid(&fixed, &moving, &opts).unwrap();
            let so = SynOptions {
                shrink_factors: vec![4],
                smoothing_sigmas: vec![2.0],
                iterations: vec![5],
                ..Default::default()
            };
            let s = register_syn(&fixed, &moving, &r.transform, &so).unwrap();
            (
                r.transform.matrix,
                r.metric_value,
                s.forward.data,
                s.metric_value,
            )
        })
    };
    let a = run(1);
    let b = run(2);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1.to_bits(), b.1.to_bits());
    assert!(
        a.2.iter()
            .zip(b.2.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert_eq!(a.3.to_bits(), b.3.to_bits());
}

/// The whole normalisation (bias field, brain extraction, affine, SyN) gives the same bits with
/// 1 and 2 threads, on a T1w with its skull (the MNI head, moved).
#[test]
fn normalisation_is_bitwise_identical_across_thread_counts() {
    let tpl = mni_t1();
    let mask = load("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz");
    let grid = tpl.grid();
    let t = AffineTransform::from_rigid([4.0, -3.0, 2.0, 0.04, -0.03, 0.05], grid_centre(&grid));
    let head = simulate_moving(&tpl, &t, &grid);
    let run = |threads: usize| {
        on_threads(threads, || {
            let n = cbflow_register::normalise_t1w(
                &head,
                &tpl,
                &mask,
                &cbflow_register::NormaliseOptions::default(),
            )
            .unwrap();
            (
                n.corrected.data,
                n.brain_mask,
                n.syn.affine.matrix,
                n.syn.forward.data,
                n.brain_dice.to_bits(),
            )
        })
    };
    let (a, b) = (run(1), run(2));
    let bits = |x: &ndarray::ArrayD<f32>, y: &ndarray::ArrayD<f32>| {
        x.iter()
            .zip(y.iter())
            .all(|(p, q)| p.to_bits() == q.to_bits())
    };
    assert!(bits(&a.0, &b.0), "bias-corrected T1w differs");
    assert_eq!(a.1, b.1, "brain mask differs");
    assert_eq!(a.2, b.2, "affine differs");
    assert!(
        a.3.iter()
            .zip(b.3.iter())
            .all(|(p, q)| p.to_bits() == q.to_bits()),
        "warp differs"
    );
    assert_eq!(a.4, b.4);
}
