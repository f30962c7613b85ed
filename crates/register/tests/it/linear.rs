use cbflow_register::{
    AffineTransform, Error, Initialisation, LinearMetric, LinearOptions, register_affine,
    register_rigid,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::*;

fn random_rigid(rng: &mut ChaCha8Rng, centre: [f64; 3]) -> AffineTransform {
    let mut p = [0.0; 6];
    for v in p.iter_mut().take(3) {
        *v = rng.random_range(-8.0..8.0);
    }
    for v in p.iter_mut().skip(3) {
        *v = rng.random_range(-0.12..0.12);
    }
    AffineTransform::from_rigid(p, centre)
}

/// "M0-like" contrast: a non-monotone remap of T1 intensities plus Gaussian-ish noise.
fn m0_like(v: &cbflow_image::Volume, rng: &mut ChaCha8Rng) -> cbflow_image::Volume {
    let d = v.frame(0).mapv(|x| {
        let t = x as f64 / 9000.0;
        let s = 3000.0 * (std::f64::consts::PI * 1.3 * t).sin().powi(2) + 400.0 * t;
        let noise: f64 = (0..4).map(|_| rng.random_range(-1.0..1.0)).sum::<f64>() * 60.0;
        (s + noise) as f32
    });
    v.with_data3(d).unwrap()
}

#[test]
fn rigid_recovers_known_motion_same_and_different_contrast() {
    let fixed = mni_t1();
    let mask = mni_mask();
    let grid = fixed.grid();
    let c = grid_centre(&grid);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mgrid = centred_grid([78, 94, 78], 2.3, c);
    for (metric, contrast) in [
        (LinearMetric::Ncc, false),
        (LinearMetric::MattesMi { bins: 32 }, true),
    ] {
        let truth = random_rigid(&mut rng, c);
        let mut moving = simulate_moving(&fixed, &truth, &mgrid);
        if contrast {
            moving = m0_like(&moving, &mut rng);
        }
        let opts = LinearOptions {
            metric,
            sampling_fraction: 0.2,
            ..Default::default()
        };
        let t0 = std::time::Instant::now();
        let res = register_rigid(&fixed, &moving, &opts).unwrap();
        let err = mean_displacement(&res.transform, &truth, &grid, &mask);
        eprintln!(
            "rigid {metric:?}: mean displacement error {err:.3} mm, {:?}, {:?}",
            t0.elapsed(),
            res.iterations
        );
        assert!(
            err < 0.5,
            "rigid {metric:?}: mean displacement error {err} mm ≥ 0.5 mm"
        );
    }
}

#[test]
fn affine_recovers_known_affine_with_mutual_information() {
    let fixed = mni_t1();
    let mask = mni_mask();
    let grid = fixed.grid();
    let c = grid_centre(&grid);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let rigid = random_rigid(&mut rng, c);
    let mut a = [0.0; 12];
    for r in 0..3 {
        for col in 0..3 {
            a[r * 3 + col] = if r == col {
                rng.random_range(0.93..1.07)
            } else {
                rng.random_range(-0.04..0.04)
            };
        }
    }
    let truth = AffineTransform::from_affine_params(a, c).then(&rigid);
    let mgrid = centred_grid([80, 96, 80], 2.4, c);
    let moving = m0_like(&simulate_moving(&fixed, &truth, &mgrid), &mut rng);
    let opts = LinearOptions {
        metric: LinearMetric::MattesMi { bins: 32 },
        sampling_fraction: 0.2,
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let res = register_affine(&fixed, &moving, &opts).unwrap();
    let err = mean_displacement(&res.transform, &truth, &grid, &mask);
    eprintln!(
        "affine MI: mean displacement error {err:.3} mm in {:?}, {:?}",
        t0.elapsed(),
        res.iterations
    );
    assert!(
        err < 0.5,
        "affine: mean displacement error {err} mm ≥ 0.5 mm"
    );
}

#[test]
fn no_overlap_flip_and_empty_mask_are_clear_errors() {
    let fixed = mni_t1();
    let grid = fixed.grid();
    let c = grid_centre(&grid);
    // 1. no overlap: moving image 400 mm away, identity initialisation
    let far = AffineTransform::translation([400.0, 0.0, 0.0]);
    let moving = simulate_moving(
        &fixed,
        &far,
        &centred_grid([60, 70, 60], 3.0, [c[0] + 400.0, c[1], c[2]]),
    );
    let opts = LinearOptions {
        initialisation: Initialisation::Identity,
        shrink_factors: vec![4],
        smoothing_sigmas: vec![2.0],
        iterations: vec![5],
        ..Default::default()
    };
    let e = register_rigid(&fixed, &moving, &opts).unwrap_err();
    assert!(matches!(e, Error::NoOverlap { .. }), "{e}");
    assert!(e.to_string().contains("no overlap"), "{e}");
    let e = cbflow_register::register_syn(
        &fixed,
        &fixed,
        &far,
        &cbflow_register::SynOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoOverlap { .. }), "{e}");
    // 2. left-right flip: data mirrored along i with the header unchanged
    let mut flipped = fixed.frame(0).to_owned();
    flipped.invert_axis(ndarray::Axis(0));
    let flipped = fixed.with_data3(flipped).unwrap();
    let opts = LinearOptions {
        metric: LinearMetric::Ncc,
        check_flip: true,
        shrink_factors: vec![4, 2],
        smoothing_sigmas: vec![2.0, 1.0],
        iterations: vec![100, 50],
        ..Default::default()
    };
    let e = register_rigid(&fixed, &flipped, &opts).unwrap_err();
    assert!(matches!(e, Error::LeftRightFlip { .. }), "{e}");
    // ... also across contrasts (M0-like moving image, mutual information)
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let flipped_m0 = m0_like(&flipped, &mut rng);
    let mi_opts = LinearOptions {
        metric: LinearMetric::MattesMi { bins: 32 },
        ..opts.clone()
    };
    let e = register_rigid(&fixed, &flipped_m0, &mi_opts).unwrap_err();
    assert!(matches!(e, Error::LeftRightFlip { .. }), "{e}");
    let shifted_m0 = m0_like(
        &simulate_moving(
            &fixed,
            &AffineTransform::translation([-2.0, 1.0, 3.0]),
            &grid,
        ),
        &mut rng,
    );
    register_rigid(&fixed, &shifted_m0, &mi_opts).unwrap();
    // ... and no false alarm on the unflipped image shifted by a few mm
    let shifted = simulate_moving(
        &fixed,
        &AffineTransform::translation([3.0, -2.0, 1.0]),
        &grid,
    );
    register_rigid(&fixed, &shifted, &opts).unwrap();
    // 3. empty fixed mask
    let opts = LinearOptions {
        fixed_mask: Some(ndarray::Array3::from_elem(grid.dims, false)),
        ..Default::default()
    };
    let e = register_rigid(&fixed, &fixed, &opts).unwrap_err();
    assert!(matches!(e, Error::EmptyMask { n_voxels: 0, .. }), "{e}");
}
