//! Masks: Otsu's threshold recovers the valley of a simulated bimodal image; an Otsu brain mask
//! of a simulated head is the head; reference checks of the morphology on the MNI brain mask.

use cbflow_image::masks::{
    self, count, dilate, erode, fill_holes, largest_component, otsu_mask, otsu_threshold,
};
use cbflow_image::{Volume, read};
use ndarray::{Array3, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

#[test]
fn otsu_separates_two_simulated_classes() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Overlapping classes of equal size and variance: the optimal split is the midpoint 30.
    let (a, b) = (
        Normal::new(10.0f32, 8.0).unwrap(),
        Normal::new(50.0f32, 8.0).unwrap(),
    );
    let mut v: Vec<f32> = (0..15_000).map(|_| a.sample(&mut rng)).collect();
    v.extend((0..15_000).map(|_| b.sample(&mut rng)));
    v.push(f32::NAN);
    let t = otsu_threshold(&v).unwrap();
    assert!((t - 30.0).abs() < 1.5, "threshold {t}");
    // Well-separated classes of unequal size: the threshold falls in the gap.
    let (a, b) = (
        Normal::new(10.0f32, 2.0).unwrap(),
        Normal::new(50.0f32, 2.0).unwrap(),
    );
    let mut w: Vec<f32> = (0..20_000).map(|_| a.sample(&mut rng)).collect();
    w.extend((0..5_000).map(|_| b.sample(&mut rng)));
    let t = otsu_threshold(&w).unwrap();
    let wrong = w[..20_000].iter().filter(|&&x| x > t).count()
        + w[20_000..].iter().filter(|&&x| x <= t).count();
    assert_eq!(wrong, 0, "threshold {t}");
    assert!(otsu_threshold(&[f32::NAN]).is_err());
}

#[test]
fn otsu_mask_of_a_simulated_head_recovers_the_head() {
    // A ball of radius 10 (value 100, with a dark 'ventricle' hole of radius 3) plus noise and
    // a separate bright speck outside: the mask is exactly the ball.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let noise = Normal::new(0.0f32, 4.0).unwrap();
    let r = |i: usize, j: usize, k: usize| {
        ((i as f64 - 16.0).powi(2) + (j as f64 - 16.0).powi(2) + (k as f64 - 16.0).powi(2)).sqrt()
    };
    let truth = Array3::from_shape_fn((33, 33, 33), |(i, j, k)| r(i, j, k) <= 10.0);
    let mut img = Array3::from_shape_fn((33, 33, 33), |(i, j, k)| {
        let d = r(i, j, k);
        let base = if d <= 3.0 {
            0.0
        } else if d <= 10.0 {
            100.0
        } else {
            0.0
        };
        base + noise.sample(&mut rng)
    });
    img[[1, 1, 1]] = 100.0;
    let m = otsu_mask(img.view()).unwrap();
    assert_eq!(m, truth);
}

#[test]
fn morphology_matches_naive_reference_on_the_mni_brain_mask() {
    let vol: Volume = read(&cbflow_testdata::resource(
        "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz",
    ))
    .unwrap();
    let mask = masks::mask_from_volume(&vol, 0.5);
    assert!(count(&mask) > 200_000);
    let dims = [mask.shape()[0], mask.shape()[1], mask.shape()[2]];
    let get = |m: &Array3<bool>, i: i64, j: i64, k: i64| {
        i >= 0
            && j >= 0
            && k >= 0
            && (i as usize) < dims[0]
            && (j as usize) < dims[1]
            && (k as usize) < dims[2]
            && m[[i as usize, j as usize, k as usize]]
    };
    // Naive reference: whether the voxel and its six face neighbours are set, each.
    let faces = |i: usize, j: usize, k: usize| {
        let (i, j, k) = (i as i64, j as i64, k as i64);
        [
            (0, 0, 0),
            (1, 0, 0),
            (-1, 0, 0),
            (0, 1, 0),
            (0, -1, 0),
            (0, 0, 1),
            (0, 0, -1),
        ]
        .map(|d: (i64, i64, i64)| get(&mask, i + d.0, j + d.1, k + d.2))
    };
    // Dilation = any voxel within L1 distance 1 is set.
    let naive_dilate =
        Array3::from_shape_fn(mask.raw_dim(), |(i, j, k)| faces(i, j, k).contains(&true));
    assert_eq!(dilate(&mask, 1), naive_dilate);
    // Erosion = every voxel within L1 distance 1 is set (outside counts as background).
    let naive_erode =
        Array3::from_shape_fn(mask.raw_dim(), |(i, j, k)| !faces(i, j, k).contains(&false));
    assert_eq!(erode(&mask, 1), naive_erode);
    // The brain mask is one component without holes.
    assert_eq!(largest_component(&mask), mask);
    assert_eq!(fill_holes(&mask), mask);
    // Erode/dilate twice equals once-twice.
    assert_eq!(dilate(&dilate(&mask, 1), 1), dilate(&mask, 2));
    assert!(Zip::from(&erode(&mask, 2)).and(&mask).all(|&e, &m| !e || m));
}
