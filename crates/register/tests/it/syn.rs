use std::collections::BTreeMap;

use cbflow_image::{Interp, Volume, resample_mapped};
use cbflow_register::{
    AffineTransform, LinearMetric, LinearOptions, SynOptions, TransformChain, apply,
    brain_mask_from_transform, labels_from_volume, register_affine, register_syn,
};
use ndarray::Array3;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::*;

/// A smooth random deformation `x ↦ x + d(x)` (mm): sums of sinusoids, amplitude `amp` mm per
/// term, wavelengths 70–110 mm (|∇d| < 1: invertible).
pub struct Deformation {
    terms: Vec<([f64; 3], f64, f64, usize)>,
}

impl Deformation {
    pub fn random(rng: &mut ChaCha8Rng, amp: f64) -> Self {
        let mut terms = Vec::new();
        for c in 0..3 {
            for _ in 0..3 {
                let lambda = rng.random_range(70.0..110.0);
                let mut w: [f64; 3] = [
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                    rng.random_range(-1.0..1.0),
                ];
                let n = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
                w = w.map(|x| x / n * 2.0 * std::f64::consts::PI / lambda);
                terms.push((
                    w,
                    rng.random_range(0.0..std::f64::consts::TAU),
                    amp * rng.random_range(0.6..1.0),
                    c,
                ));
            }
        }
        Self { terms }
    }

    pub fn map(&self, x: [f64; 3]) -> [f64; 3] {
        let mut y = x;
        for (w, ph, a, c) in &self.terms {
            y[*c] += a * (w[0] * x[0] + w[1] * x[1] + w[2] * x[2] + ph).sin();
        }
        y
    }
}

fn dice_per_label(a: &Array3<i32>, b: &Array3<i32>, min_voxels: usize) -> BTreeMap<i32, f64> {
    let mut na: BTreeMap<i32, usize> = BTreeMap::new();
    let mut nb: BTreeMap<i32, usize> = BTreeMap::new();
    let mut both: BTreeMap<i32, usize> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b.iter()) {
        if x > 0 {
            *na.entry(x).or_default() += 1;
        }
        if y > 0 {
            *nb.entry(y).or_default() += 1;
        }
        if x > 0 && x == y {
            *both.entry(x).or_default() += 1;
        }
    }
    na.iter()
        .filter(|(_, n)| **n >= min_voxels)
        .map(|(l, n)| {
            (
                *l,
                2.0 * *both.get(l).unwrap_or(&0) as f64 / (*n + *nb.get(l).unwrap_or(&0)) as f64,
            )
        })
        .collect()
}

fn mean(m: &BTreeMap<i32, f64>) -> f64 {
    m.values().sum::<f64>() / m.len() as f64
}

/// The MNI T1 and AAL3 deformed by a known smooth warp (fixed), and the originals (moving).
#[allow(clippy::type_complexity)]
pub fn deformed_pair(
    seed: u64,
    amp: f64,
) -> (
    Volume,
    Array3<i32>,
    Volume,
    Volume,
    impl Fn([f64; 3]) -> [f64; 3] + Sync,
) {
    let t1 = mni_t1();
    let atlas = load("atlases/aal3/AAL3v1.nii.gz");
    let grid = t1.grid();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let def = Deformation::random(&mut rng, amp);
    let small =
        AffineTransform::from_rigid([2.0, -3.0, 1.5, 0.03, -0.02, 0.04], grid_centre(&grid));
    let map = move |x: [f64; 3]| small.map_point(def.map(x));
    let fixed = resample_mapped(&t1, &grid, Interp::Linear, &map).unwrap();
    let fixed_labels = labels_from_volume(
        resample_mapped(&atlas, &grid, Interp::Nearest, &map)
            .unwrap()
            .frame(0),
    );
    (fixed, fixed_labels, t1, atlas, map)
}

#[test]
fn nonlinear_registration_recovers_aal3_labels() {
    let (fixed, truth, moving, atlas, truth_map) = deformed_pair(5, 4.0);
    let grid = fixed.grid();
    let t0 = std::time::Instant::now();
    let lin = LinearOptions {
        metric: LinearMetric::Ncc,
        sampling_fraction: 0.2,
        ..Default::default()
    };
    let aff = register_affine(&fixed, &moving, &lin).unwrap();
    let t_aff = t0.elapsed();
    let affine_labels = labels_from_volume(
        apply(
            &atlas,
            &grid,
            &TransformChain::from_affine(aff.transform.clone()),
            Interp::Nearest,
        )
        .unwrap()
        .frame(0),
    );
    // few full-resolution iterations keep the dev-profile test short
    let so = SynOptions {
        shrink_factors: vec![4, 2, 1],
        smoothing_sigmas: vec![2.0, 1.0, 0.0],
        iterations: vec![80, 80, 4],
        ..Default::default()
    };
    let syn = register_syn(&fixed, &moving, &aff.transform, &so).unwrap();
    let t_syn = t0.elapsed() - t_aff;
    let syn_labels = labels_from_volume(
        apply(&atlas, &grid, &syn.forward_chain(), Interp::Nearest)
            .unwrap()
            .frame(0),
    );
    let d_aff = dice_per_label(&truth, &affine_labels, 20);
    let d_syn = dice_per_label(&truth, &syn_labels, 20);
    let (ma, ms) = (mean(&d_aff), mean(&d_syn));
    eprintln!(
        "labels {}: mean Dice affine {ma:.3}, nonlinear {ms:.3}; affine {t_aff:?}, syn {t_syn:?} {:?}, lncc {:.3}",
        d_syn.len(),
        syn.iterations,
        syn.metric_value
    );
    assert!(
        d_syn.len() > 140,
        "only {} labels with ≥ 20 voxels",
        d_syn.len()
    );
    assert!(
        ms >= 0.85,
        "mean Dice after nonlinear registration {ms:.3} < 0.85"
    );
    assert!(
        ms >= ma + 0.1,
        "nonlinear Dice {ms:.3} not ≥ 0.1 above affine-only {ma:.3}"
    );
    // the inverse field brings the fixed labels back onto the moving (original) grid
    let inv = syn.inverse_chain().unwrap();
    let truth_vol = fixed.with_data3(truth.mapv(|l| l as f32)).unwrap();
    let back = labels_from_volume(
        apply(&truth_vol, &moving.grid(), &inv, Interp::Nearest)
            .unwrap()
            .frame(0),
    );
    let orig = labels_from_volume(atlas.frame(0));
    let d_back = mean(&dice_per_label(&orig, &back, 20));
    eprintln!("inverse: mean Dice {d_back:.3}");
    assert!(
        d_back >= 0.8,
        "inverse-warped labels mean Dice {d_back:.3} < 0.8"
    );
    // brain extraction from the same registration: the template mask warped onto the subject
    let mask_vol = load("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz");
    let mask = brain_mask_from_transform(&grid, &mask_vol, &syn.forward_chain(), 0.5).unwrap();
    let truth_mask = resample_mapped(&mask_vol, &grid, Interp::Linear, &truth_map)
        .unwrap()
        .frame(0)
        .mapv(|v| v > 0.5);
    let d_mask = crate::brain::dice(&mask, &truth_mask);
    eprintln!("brain mask from the nonlinear registration: Dice {d_mask:.4}");
    assert!(d_mask >= 0.97, "brain mask Dice {d_mask} < 0.97");
}
