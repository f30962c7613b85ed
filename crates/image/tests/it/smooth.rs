//! Gaussian smoothing: measured FWHM of a smoothed delta matches the request on anisotropic
//! voxels, mass is conserved in the interior, edges keep constants constant.

use cbflow_image::{FWHM_PER_SIGMA, Volume, smooth_fwhm, smooth_fwhm_masked};
use nalgebra::Matrix4;
use ndarray::{Array3, ArrayD, Axis, IxDyn};

fn anisotropic(dims: [usize; 3], vox: [f64; 3]) -> Volume {
    let mut a = Matrix4::identity();
    a[(0, 0)] = -vox[0];
    a[(1, 1)] = vox[1];
    a[(2, 2)] = vox[2];
    a[(0, 3)] = 40.0;
    Volume::zeros(&cbflow_image::Grid::new(dims, a).unwrap())
}

/// FWHM (mm) along each axis from the second moment of `img` about its centroid.
fn measured_fwhm(img: &Array3<f32>, vox: [f64; 3]) -> [f64; 3] {
    let total: f64 = img.iter().map(|&v| f64::from(v)).sum();
    std::array::from_fn(|a| {
        let mean: f64 = img
            .indexed_iter()
            .map(|(ix, &v)| f64::from(v) * [ix.0, ix.1, ix.2][a] as f64)
            .sum::<f64>()
            / total;
        let var: f64 = img
            .indexed_iter()
            .map(|(ix, &v)| f64::from(v) * ([ix.0, ix.1, ix.2][a] as f64 - mean).powi(2))
            .sum::<f64>()
            / total;
        FWHM_PER_SIGMA * var.sqrt() * vox[a]
    })
}

#[test]
fn smoothed_delta_has_the_requested_fwhm_and_mass() {
    let vox = [2.0, 3.0, 1.5];
    let dims = [41, 31, 51];
    let mut vol = anisotropic(dims, vox);
    vol.data[[20, 15, 25]] = 1000.0;
    for fwhm in [6.0, 8.0] {
        let out = smooth_fwhm(&vol, fwhm).unwrap();
        let img = crate::voxels(&out).to_owned();
        let got = measured_fwhm(&img, vox);
        for a in 0..3 {
            assert!(
                (got[a] / fwhm - 1.0).abs() < 0.05,
                "fwhm {fwhm} axis {a}: measured {}",
                got[a]
            );
        }
        // Direct half-maximum check along x through the peak (linear interpolation of the profile).
        let line: Vec<f64> = img
            .index_axis(Axis(2), 25)
            .index_axis(Axis(1), 15)
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let peak = line[20];
        let half = peak / 2.0;
        let right = (20..40).find(|&i| line[i + 1] < half).unwrap();
        let x = right as f64 + (line[right] - half) / (line[right] - line[right + 1]);
        let fwhm_x = 2.0 * (x - 20.0) * vox[0];
        assert!((fwhm_x / fwhm - 1.0).abs() < 0.05, "half-max fwhm {fwhm_x}");
        let mass: f64 = img.iter().map(|&v| f64::from(v)).sum();
        assert!((mass - 1000.0).abs() < 1e-3, "mass {mass}");
        assert_eq!(out.affine, vol.affine);
    }
}

#[test]
fn constants_stay_constant_at_edges_and_4d_is_frame_by_frame() {
    let mut vol = anisotropic([12, 10, 9], [2.0, 2.5, 3.0]);
    let mut data = ArrayD::<f32>::zeros(IxDyn(&[12, 10, 9, 2]));
    data.index_axis_mut(Axis(3), 0).fill(5.0);
    data.index_axis_mut(Axis(3), 1).fill(-2.0);
    vol = Volume::new(data, vol.affine).unwrap();
    let out = smooth_fwhm(&vol, 7.0).unwrap();
    assert!(out.frame(0).iter().all(|&v| (v - 5.0).abs() < 1e-5));
    assert!(out.frame(1).iter().all(|&v| (v + 2.0).abs() < 1e-5));
    assert!(smooth_fwhm(&vol, -1.0).is_err());
    assert_eq!(smooth_fwhm(&vol, 0.0).unwrap().data, vol.data);
}

#[test]
fn masked_smoothing_ignores_outside_values() {
    let mut vol = anisotropic([20, 20, 20], [2.0, 2.0, 2.0]);
    let mask = Array3::from_shape_fn((20, 20, 20), |(i, j, k)| {
        ((i as f64 - 9.5).powi(2) + (j as f64 - 9.5).powi(2) + (k as f64 - 9.5).powi(2)).sqrt()
            < 7.0
    });
    // Constant 10 inside, huge values outside: inside stays exactly 10, outside becomes 0.
    for ((i, j, k), v) in crate::voxels_mut(&mut vol).indexed_iter_mut() {
        *v = if mask[[i, j, k]] { 10.0 } else { 1e6 };
    }
    let out = smooth_fwhm_masked(&vol, &mask, 8.0).unwrap();
    for ((i, j, k), &v) in crate::voxels(&out).indexed_iter() {
        if mask[[i, j, k]] {
            assert!((v - 10.0).abs() < 1e-4, "({i},{j},{k}) {v}");
        } else {
            assert_eq!(v, 0.0);
        }
    }
    // A linear ramp inside the mask is preserved at the mask centre (symmetric neighbourhood).
    for ((i, _, _), v) in crate::voxels_mut(&mut vol).indexed_iter_mut() {
        *v = i as f32;
    }
    let out = smooth_fwhm_masked(&vol, &mask, 6.0).unwrap();
    assert!(
        (out.data[[10, 10, 10]] - 10.0).abs() < 0.3,
        "{}",
        out.data[[10, 10, 10]]
    );
    assert!(smooth_fwhm_masked(&vol, &Array3::from_elem((3, 3, 3), true), 6.0).is_err());
}

#[test]
fn separable_smoothing_matches_a_naive_3d_convolution() {
    use cbflow_image::{TRUNCATE_SIGMAS, fwhm_to_sigma, gaussian_kernel, gaussian_smooth3};
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let dims = (9usize, 7usize, 8usize);
    let f = Array3::from_shape_fn(dims, |_| rng.random_range(-1.0f32..1.0));
    let vox = [2.0, 2.5, 3.0];
    let sig = vox.map(|v| fwhm_to_sigma(6.0) / v);
    let ks = sig.map(|s| gaussian_kernel(s, TRUNCATE_SIGMAS));
    let got = gaussian_smooth3(f.view(), sig);
    let r = ks.clone().map(|k| (k.len() / 2) as i64);
    for ((i, j, k), &g) in got.indexed_iter() {
        let (mut num, mut den) = (0f64, 0f64);
        for (x, y, z) in itertools_free_box(dims) {
            let (dx, dy, dz) = (
                x as i64 - i as i64,
                y as i64 - j as i64,
                z as i64 - k as i64,
            );
            if dx.abs() > r[0] || dy.abs() > r[1] || dz.abs() > r[2] {
                continue;
            }
            let w = ks[0][(dx + r[0]) as usize]
                * ks[1][(dy + r[1]) as usize]
                * ks[2][(dz + r[2]) as usize];
            num += w * f64::from(f[[x, y, z]]);
            den += w;
        }
        assert!((f64::from(g) - num / den).abs() < 1e-6, "({i},{j},{k})");
    }
}

fn itertools_free_box(d: (usize, usize, usize)) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..d.0).flat_map(move |x| (0..d.1).flat_map(move |y| (0..d.2).map(move |z| (x, y, z))))
}
