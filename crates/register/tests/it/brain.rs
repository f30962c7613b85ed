use cbflow_image::{Interp, resample_mapped};
use cbflow_register::{
    AffineTransform, BrainMaskOptions, Error, LinearMetric, LinearOptions, brain_mask_from_template,
};
use ndarray::Array3;

use crate::common::*;

pub fn dice(a: &Array3<bool>, b: &Array3<bool>) -> f64 {
    let both = a.iter().zip(b.iter()).filter(|(x, y)| **x && **y).count();
    let na = a.iter().filter(|x| **x).count();
    let nb = b.iter().filter(|x| **x).count();
    2.0 * both as f64 / (na + nb) as f64
}

#[test]
fn affine_brain_extraction_of_a_moved_head_and_empty_mask_error() {
    let t1 = mni_t1();
    let mask_vol = load("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz");
    let grid = t1.grid();
    // the "subject": the template head rotated and shifted onto a 1.8 mm grid
    let truth_t =
        AffineTransform::from_rigid([5.0, -4.0, 3.0, 0.08, -0.05, 0.06], grid_centre(&grid));
    let sgrid = centred_grid([100, 120, 100], 1.8, grid_centre(&grid));
    let subject = resample_mapped(&t1, &sgrid, Interp::Linear, &|y| truth_t.map_point(y)).unwrap();
    let truth = resample_mapped(&mask_vol, &sgrid, Interp::Linear, &|y| truth_t.map_point(y))
        .unwrap()
        .frame(0)
        .mapv(|v| v > 0.5);
    let opts = BrainMaskOptions {
        linear: LinearOptions {
            metric: LinearMetric::Ncc,
            sampling_fraction: 0.2,
            ..Default::default()
        },
        syn: None,
        threshold: 0.5,
    };
    let t0 = std::time::Instant::now();
    let res = brain_mask_from_template(&subject, &t1, &mask_vol, &opts).unwrap();
    let d = dice(&res.mask, &truth);
    eprintln!(
        "brain extraction (affine): Dice {d:.4} in {:?}",
        t0.elapsed()
    );
    assert!(d > 0.97, "brain mask Dice {d} ≤ 0.97");
    let empty = mask_vol.with_data3(Array3::zeros(grid.dims)).unwrap();
    let e = brain_mask_from_template(&subject, &t1, &empty, &opts).unwrap_err();
    assert!(matches!(e, Error::EmptyMask { .. }), "{e}");
}
