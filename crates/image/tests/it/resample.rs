//! Resampling puts world coordinates where they belong (3 mm JuSpace grid → 2 mm MNI grid),
//! and the cubic B-spline reproduces cubic polynomials.

use cbflow_image::{
    Grid, Interp, Sampler, Volume, read_header, resample_mapped, resample_to_grid, sample,
};
use nalgebra::{Matrix4, Vector4};
use ndarray::{Array3, ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn grids() -> (Grid, Grid) {
    let h3 = read_header(&cbflow_testdata::resource(
        "pet/juspace_v1.5/5HT1a_WAY_HC36.nii.gz",
    ))
    .unwrap();
    let h2 = read_header(&cbflow_testdata::resource(
        "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz",
    ))
    .unwrap();
    let g3 = Grid::new([h3.dims[0], h3.dims[1], h3.dims[2]], h3.affine).unwrap();
    let g2 = Grid::new([h2.dims[0], h2.dims[1], h2.dims[2]], h2.affine).unwrap();
    assert_eq!(g3.dims, [61, 73, 61]);
    assert_eq!(g2.dims, [91, 109, 91]);
    (g3, g2)
}

/// A volume on `g` whose voxel values are `f` of the voxel's world coordinates.
fn volume_of(g: &Grid, f: impl Fn([f64; 3]) -> f64) -> Volume {
    let a = Array3::from_shape_fn(g.dims, |(i, j, k)| {
        f(g.voxel_to_world([i as f64, j as f64, k as f64])) as f32
    });
    Volume::new(a.into_dyn(), g.affine).unwrap()
}

fn linear(p: [f64; 3]) -> f64 {
    0.5 * p[0] - 0.3 * p[1] + 0.2 * p[2] + 40.0
}

/// True when the world point lies at least `margin` voxels inside grid `g`.
fn interior(g: &Grid, p: [f64; 3], margin: f64) -> bool {
    let v = g.world_to_voxel(p);
    (0..3).all(|a| v[a] >= margin && v[a] <= g.dims[a] as f64 - 1.0 - margin)
}

#[test]
fn linear_function_of_world_coordinates_is_reproduced_on_the_2mm_grid() {
    let (g3, g2) = grids();
    let src = volume_of(&g3, linear);
    for (interp, margin, tol) in [
        (Interp::Linear, 0.0, 2e-4),
        (Interp::CubicBSpline, 12.0, 5e-4),
    ] {
        let out = resample_to_grid(&src, &g2, interp).unwrap();
        assert_eq!(out.data.shape(), &[91, 109, 91]);
        assert_eq!(out.affine, g2.affine);
        let mut checked = 0;
        let mut worst = 0f64;
        for ((i, j, k), _) in Array3::<u8>::zeros(g2.dims).indexed_iter() {
            let p = g2.voxel_to_world([i as f64, j as f64, k as f64]);
            if !interior(&g3, p, margin) {
                continue;
            }
            let err = (f64::from(out.data[[i, j, k]]) - linear(p)).abs();
            worst = worst.max(err);
            checked += 1;
        }
        assert!(
            checked > 100_000,
            "{interp:?}: only {checked} interior voxels"
        );
        assert!(
            worst < tol,
            "{interp:?}: worst error {worst} at {checked} voxels"
        );
    }
}

#[test]
fn marker_at_known_world_coordinate_lands_in_the_right_2mm_voxel() {
    let (g3, g2) = grids();
    // 3 mm grid: x = 90 - 3i, y = -126 + 3j, z = -72 + 3k. 2 mm grid: x = 90 - 2i, y = -126 + 2j,
    // z = -72 + 2k. The 3 mm voxel (40, 46, 30) is centred at world (-30, 12, 18) and covers
    // ±1.5 mm; the only 2 mm centre in that cube is (-30, 12, 18) = 2 mm voxel (60, 69, 45).
    // The 3 mm voxel (41, 46, 30) at x = -33 covers x in (-34.5, -31.5): 2 mm centres x = -34
    // and -32, i.e. 2 mm voxels (62, 69, 45) and (61, 69, 45).
    for (marker, expected) in [
        ([40usize, 46, 30], vec![[60usize, 69, 45]]),
        ([41, 46, 30], vec![[61, 69, 45], [62, 69, 45]]),
    ] {
        let mut src = Volume::zeros(&g3);
        src.data[[marker[0], marker[1], marker[2]]] = 7.0;
        let out = resample_to_grid(&src, &g2, Interp::Nearest).unwrap();
        let mut hits: Vec<[usize; 3]> = out
            .data
            .indexed_iter()
            .filter(|(_, v)| **v != 0.0)
            .map(|(ix, _)| [ix[0], ix[1], ix[2]])
            .collect();
        hits.sort();
        assert_eq!(hits, expected, "marker at 3 mm voxel {marker:?}");
        assert!(hits.iter().all(|h| out.data[[h[0], h[1], h[2]]] == 7.0));
    }
    // World (-30, 12, 18) by the affines, for the record.
    assert_eq!(g3.voxel_to_world([40.0, 46.0, 30.0]), [-30.0, 12.0, 18.0]);
    assert_eq!(g2.world_to_voxel([-30.0, 12.0, 18.0]), [60.0, 69.0, 45.0]);
}

#[test]
fn every_frame_of_a_4d_volume_is_resampled_and_outside_is_zero() {
    let (g3, g2) = grids();
    let base = volume_of(&g3, linear);
    let nt = 3;
    let mut data = ArrayD::<f32>::zeros(IxDyn(&[61, 73, 61, nt]));
    for t in 0..nt {
        data.index_axis_mut(ndarray::Axis(3), t)
            .assign(&(&base.data * (t as f32 + 1.0)));
    }
    let mut src = Volume::new(data, g3.affine).unwrap();
    src.info.pixdim[3] = 4.5;
    let out = resample_to_grid(&src, &g2, Interp::Linear).unwrap();
    assert_eq!(out.data.shape(), &[91, 109, 91, nt]);
    assert_eq!(out.info.pixdim[3], 4.5);
    let f0 = out.frame(0).to_owned();
    for t in 1..nt {
        let ft = out.frame(t);
        let err = ft
            .iter()
            .zip(f0.iter())
            .map(|(a, b)| (a - b * (t as f32 + 1.0)).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-3, "frame {t}: {err}");
    }
    // A target grid shifted far outside the source field of view gives zeros.
    let mut far = g2.affine;
    far[(0, 3)] += 1000.0;
    let out = resample_to_grid(
        &src,
        &Grid::new(g2.dims, far).unwrap(),
        Interp::CubicBSpline,
    )
    .unwrap();
    assert!(out.data.iter().all(|&v| v == 0.0));
}

#[test]
fn mapped_resampling_applies_the_world_map() {
    let (g3, g2) = grids();
    let src = volume_of(&g3, linear);
    // A rigid map: rotate 10° about z then shift; output(p) must be linear(map(p)).
    let (s, c) = (10f64.to_radians().sin(), 10f64.to_radians().cos());
    let m = Matrix4::new(
        c, -s, 0.0, 4.0, s, c, 0.0, -7.0, 0.0, 0.0, 1.0, 2.5, 0.0, 0.0, 0.0, 1.0,
    );
    let map = move |p: [f64; 3]| {
        let q = m * Vector4::new(p[0], p[1], p[2], 1.0);
        [q[0], q[1], q[2]]
    };
    let out = resample_mapped(&src, &g2, Interp::Linear, &map).unwrap();
    let mut checked = 0;
    for ((i, j, k), &v) in crate::voxels(&out).indexed_iter() {
        let q = map(g2.voxel_to_world([i as f64, j as f64, k as f64]));
        if interior(&g3, q, 0.0) {
            assert!((f64::from(v) - linear(q)).abs() < 2e-4, "({i},{j},{k})");
            checked += 1;
        }
    }
    assert!(checked > 100_000);
}

#[test]
fn cubic_bspline_reproduces_a_cubic_polynomial_at_interior_points() {
    // p(i,j,k) is a full cubic in the indices (with mixed terms); the interpolating cubic
    // B-spline reproduces polynomials up to degree 3 exactly away from the mirror boundaries
    // (their influence decays as 0.268^distance).
    let p = |x: f64, y: f64, z: f64| {
        let (u, v, w) = (x / 10.0 - 1.5, y / 10.0 - 1.2, z / 10.0 - 1.4);
        2.0 + u - 0.5 * v + 0.8 * w + 0.3 * u * v - 0.2 * v * w + 0.4 * u * u * u - 0.25 * v * v * w
            + 0.1 * w * w * w
            + 0.15 * u * v * w
    };
    let dims = [32usize, 30, 28];
    let a = Array3::from_shape_fn(dims, |(i, j, k)| p(i as f64, j as f64, k as f64) as f32);
    let sampler = Sampler::new(a.view(), Interp::CubicBSpline);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let margin = 11.0;
    let mut worst = 0f64;
    for _ in 0..2000 {
        let ijk: [f64; 3] =
            std::array::from_fn(|ax| rng.random_range(margin..dims[ax] as f64 - 1.0 - margin));
        let got = f64::from(sampler.at(ijk));
        worst = worst.max((got - p(ijk[0], ijk[1], ijk[2])).abs());
    }
    // Values are O(1) stored as f32 (rounding ~1e-7).
    assert!(worst < 2e-6, "worst error {worst}");
    // At the grid points the spline interpolates the data everywhere, borders included.
    for &(i, j, k) in &[
        (0usize, 0usize, 0usize),
        (31, 29, 27),
        (5, 0, 27),
        (16, 15, 14),
    ] {
        let got = sampler.at([i as f64, j as f64, k as f64]);
        assert!(
            (got - a[[i, j, k]]).abs() < 1e-5,
            "({i},{j},{k}) {got} vs {}",
            a[[i, j, k]]
        );
    }
    // Trilinear reproduces a multilinear function exactly everywhere inside (naive reference).
    let q = |x: f64, y: f64, z: f64| {
        1.0 + 0.1 * x - 0.2 * y + 0.05 * z + 0.01 * x * y - 0.02 * y * z + 0.003 * x * y * z
    };
    let b = Array3::from_shape_fn(dims, |(i, j, k)| q(i as f64, j as f64, k as f64) as f32);
    for _ in 0..2000 {
        let ijk: [f64; 3] = std::array::from_fn(|ax| rng.random_range(0.0..dims[ax] as f64 - 1.0));
        let got = f64::from(sample(b.view(), ijk, Interp::Linear));
        assert!((got - q(ijk[0], ijk[1], ijk[2])).abs() < 1e-5);
    }
}

#[test]
fn resampling_is_identical_at_any_thread_count() {
    let (g3, g2) = grids();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let a = Array3::from_shape_fn(g3.dims, |_| rng.random::<f32>());
    let src = Volume::new(a.into_dyn(), g3.affine).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| resample_to_grid(&src, &g2, Interp::CubicBSpline).unwrap())
    };
    let (one, four) = (run(1), run(4));
    assert!(
        one.data
            .iter()
            .zip(four.data.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}
