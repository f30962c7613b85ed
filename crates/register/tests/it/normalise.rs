//! T1w → template normalisation ([`normalise_t1w`]) scored against truths the registration did
//! not make: another template's anatomy (ICBM 2009a, with its own grey-matter map) deformed by a
//! known warp, scored against the FSL MNI152 masks; and the MNI152 head with its skull, a bias
//! field and noise, deformed by a known map and scored by that map. Then the properties every
//! written warp must have (positive Jacobian, inverse consistency, the ITK file read back), and
//! the inputs that must fail.

use cbflow_image::{DataType, Grid, Interp, Volume, read, resample_mapped, write};
use cbflow_register::{AffineTransform, DisplacementField, Error, NormaliseOptions, normalise_t1w};
use nalgebra::{Matrix3, Matrix4};
use ndarray::{Array3, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common::*;
use crate::syn::Deformation;

fn template() -> (Volume, Volume) {
    (
        mni_t1(),
        load("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz"),
    )
}

fn dice(a: &Array3<bool>, b: &Array3<bool>) -> f64 {
    let inter = Zip::from(a)
        .and(b)
        .fold(0usize, |n, &x, &y| n + usize::from(x && y));
    let n = a.iter().filter(|&&x| x).count() + b.iter().filter(|&&x| x).count();
    2.0 * inter as f64 / n.max(1) as f64
}

/// A 2 mm subject grid around the brain, `f` mapping its world points to the source's.
fn subject(
    src: &Volume,
    seed: u64,
    dims: [usize; 3],
) -> (Grid, impl Fn([f64; 3]) -> [f64; 3] + Sync + Clone) {
    let grid = centred_grid(dims, 2.0, [2.0, -14.0, 10.0]);
    let def = std::sync::Arc::new(Deformation::random(
        &mut ChaCha8Rng::seed_from_u64(seed),
        3.0,
    ));
    // the subject's head sits rotated and shifted in its scanner's world, and is ~6 % larger
    let mut m =
        AffineTransform::from_rigid([4.0, -6.0, 3.0, 0.06, -0.04, 0.08], [0.0, -18.0, 10.0]).matrix;
    let s = Matrix4::new_scaling(1.0 / 1.06);
    m = s * m;
    let a = AffineTransform { matrix: m };
    let _ = src;
    (grid, move |y: [f64; 3]| def.map(a.map_point(y)))
}

/// `det(I + ∂u/∂x)` at every voxel of a field (central differences, world mm).
fn jacobians(f: &DisplacementField) -> Vec<f64> {
    let d = f.grid.dims;
    let lin: Matrix3<f64> = f.grid.affine.fixed_view::<3, 3>(0, 0).into_owned();
    let inv = lin.try_inverse().unwrap();
    let mut out = Vec::new();
    for i in 1..d[0] - 1 {
        for j in 1..d[1] - 1 {
            for k in 1..d[2] - 1 {
                // du_c / d(voxel axis a)
                let mut dv = Matrix3::zeros();
                for c in 0..3 {
                    dv[(c, 0)] = (f.data[[i + 1, j, k, c]] - f.data[[i - 1, j, k, c]]) as f64 / 2.0;
                    dv[(c, 1)] = (f.data[[i, j + 1, k, c]] - f.data[[i, j - 1, k, c]]) as f64 / 2.0;
                    dv[(c, 2)] = (f.data[[i, j, k + 1, c]] - f.data[[i, j, k - 1, c]]) as f64 / 2.0;
                }
                out.push((Matrix3::identity() + dv * inv).determinant());
            }
        }
    }
    out
}

/// Mean and largest `|x + u(x) + w(x + u(x)) − x|` (mm) over the true voxels of `mask`.
fn inverse_consistency(
    u: &DisplacementField,
    w: &DisplacementField,
    mask: &Array3<bool>,
) -> (f64, f64) {
    let (mut s, mut n, mut worst) = (0.0, 0usize, 0.0f64);
    for ((i, j, k), &m) in mask.indexed_iter() {
        if !m {
            continue;
        }
        let x = u.grid.voxel_to_world([i as f64, j as f64, k as f64]);
        let y = u.map_point(x);
        let z = w.map_point(y);
        let e = ((z[0] - x[0]).powi(2) + (z[1] - x[1]).powi(2) + (z[2] - x[2]).powi(2)).sqrt();
        s += e;
        n += 1;
        worst = worst.max(e);
    }
    (s / n as f64, worst)
}

/// The written ITK warp read back equals the field, and is what ITK expects on disk: 5D
/// `[x, y, z, 1, 3]`, intent 1007, LPS vectors (x and y negated).
fn itk_round_trip(f: &DisplacementField, dir: &std::path::Path) {
    let p = dir.join("warp.nii.gz");
    write(&p, &f.to_itk_volume().unwrap(), DataType::Float32).unwrap();
    let v = read(&p).unwrap();
    assert_eq!(v.info.intent_code, 1007);
    let bytes = {
        use std::io::Read;
        let mut d = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_end(&mut d)
            .unwrap();
        d
    };
    let dim: Vec<i16> = (0..8)
        .map(|a| i16::from_le_bytes([bytes[40 + 2 * a], bytes[41 + 2 * a]]))
        .collect();
    let g = f.grid.dims;
    assert_eq!(
        dim[..6],
        [5, g[0] as i16, g[1] as i16, g[2] as i16, 1, 3],
        "NIfTI dim"
    );
    let back = DisplacementField::from_volume(&v).unwrap();
    assert_eq!(back.grid.affine, f.grid.affine);
    let worst = Zip::from(&back.data)
        .and(&f.data)
        .fold(0.0f32, |m, a, b| m.max((a - b).abs()));
    assert!(worst == 0.0, "warp read back differs by {worst} mm");
    // LPS on disk: the stored x of a voxel with a displacement is the negated RAS x
    let (t, c) = f
        .data
        .indexed_iter()
        .find(|(ix, x)| ix.3 == 0 && x.abs() > 0.5)
        .map(|(ix, x)| (ix, *x))
        .expect("a displaced voxel");
    assert_eq!(v.data[[t.0, t.1, t.2, 0].as_slice()], -c);
}

#[test]
fn another_templates_brain_without_skull_normalises_at_ants_level() {
    // ICBM 2009a (its own anatomy and grey-matter map, skull-stripped), deformed, 2 mm
    let d = "templates/nilearn_icbm152_2009a_1mm";
    let t1 = load(&format!(
        "{d}/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    ));
    let gm = load(&format!(
        "{d}/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
    ));
    // its brain: the non-zero part (as benchmarks/registration.py scores it)
    let brain = t1
        .with_data3(t1.frame(0).mapv(|x| f32::from(x > 0.0)))
        .unwrap();
    let (grid, f) = subject(&t1, 11, [88, 104, 86]);
    let sub = |v: &Volume| resample_mapped(v, &grid, Interp::Linear, &f).unwrap();
    let (st1, sgm, sbrain) = (sub(&t1), sub(&gm), sub(&brain));
    let (tpl, tpl_mask) = template();
    let t0 = std::time::Instant::now();
    let n = normalise_t1w(&st1, &tpl, &tpl_mask, &NormaliseOptions::default()).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        n.skull_stripped_input,
        "a masked brain is taken as skull-stripped"
    );
    // scored with the FSL template's own masks, which the registration never saw as masks of
    // this subject
    let chain = n.syn.forward_chain();
    let to_tpl = |v: &Volume| {
        cbflow_register::apply(v, &tpl.grid(), &chain, Interp::Linear)
            .unwrap()
            .frame(0)
            .to_owned()
    };
    let gm_t = to_tpl(&sgm).mapv(|x| x > 0.5);
    let brain_t = to_tpl(&sbrain).mapv(|x| x > 0.5);
    let tpl_gm = load("templates/fsl_mni152nlin6asym_2mm/gm_mask_2mm.nii.gz")
        .frame(0)
        .mapv(|x| x > 0.5);
    let tb = tpl_mask.frame(0).mapv(|x| x > 0.5);
    let (dg, db) = (dice(&gm_t, &tpl_gm), dice(&brain_t, &tb));
    // without registration (the subject resampled straight onto the template grid)
    let none = resample_mapped(&sgm, &tpl.grid(), Interp::Linear, &|x| x)
        .unwrap()
        .frame(0)
        .mapv(|x| x > 0.5);
    let d0 = dice(&none, &tpl_gm);
    let jac = jacobians(&n.syn.forward);
    let jmin = jac.iter().copied().fold(f64::INFINITY, f64::min);
    let jinv = jacobians(&n.syn.inverse)
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let (ic, ic_max) = inverse_consistency(&n.syn.forward, &n.syn.inverse, &tb);
    eprintln!(
        "ICBM → FSL MNI152, 2 mm: GM Dice {dg:.3} (unregistered {d0:.3}), brain Dice {db:.3}, QC brain Dice {:.3}, \
         min Jacobian {jmin:.3} (inverse {jinv:.3}), inverse consistency mean {ic:.3} mm max {ic_max:.3} mm, {secs:.1} s",
        n.brain_dice
    );
    // ANTs SyN on the same pair at 1 mm: GM Dice 0.794, brain 0.959 (docs/validation.md)
    assert!(dg >= 0.75, "GM Dice {dg:.3} < 0.75");
    assert!(db >= 0.95, "brain Dice {db:.3} < 0.95");
    assert!(
        (n.brain_dice - db).abs() < 0.03,
        "QC brain Dice {} far from the scored {db}",
        n.brain_dice
    );
    assert!(
        jmin > 0.0 && jinv > 0.0,
        "Jacobian not positive: {jmin}, {jinv}"
    );
    assert!(ic < 0.5, "inverse consistency {ic} mm ≥ 0.5 mm");
    let dir = tempfile::tempdir().unwrap();
    itk_round_trip(&n.syn.forward, dir.path());
}

#[test]
fn a_head_with_skull_bias_and_noise_recovers_the_known_map() {
    let (tpl, tpl_mask) = template();
    let (grid, f) = subject(&tpl, 5, [96, 112, 96]);
    let head = resample_mapped(&tpl, &grid, Interp::Linear, &f).unwrap();
    let mut data = head.frame(0).to_owned();
    // a receive-coil bias field (±15 %) and noise, 2 % of the brain's mean
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let normal = rand_distr::Normal::new(0.0f32, 1.0).unwrap();
    let scale = 0.02 * 6000.0;
    for ((i, j, k), v) in data.indexed_iter_mut() {
        let p = grid.voxel_to_world([i as f64, j as f64, k as f64]);
        let b = (0.0015 * p[0] - 0.0012 * p[2] + 0.00001 * p[1] * p[1]).exp() as f32;
        *v = (*v * b + scale * rand_distr::Distribution::sample(&normal, &mut rng)).abs();
    }
    let head = head.with_data3(data).unwrap();
    let t0 = std::time::Instant::now();
    let n = normalise_t1w(&head, &tpl, &tpl_mask, &NormaliseOptions::default()).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(!n.skull_stripped_input);
    // error of the found template → subject map, by the truth: f(found(x)) = x
    let chain = n.syn.forward_chain();
    let tb = tpl_mask.frame(0).mapv(|x| x > 0.5);
    let tg = tpl.grid();
    let (mut s, mut cnt) = (0.0, 0usize);
    let (mut s_aff, mut s0) = (0.0, 0.0);
    for ((i, j, k), &m) in tb.indexed_iter() {
        if m && (i + j + k) % 3 == 0 {
            let x = tg.voxel_to_world([i as f64, j as f64, k as f64]);
            let e = |q: [f64; 3]| {
                let z = f(q);
                ((z[0] - x[0]).powi(2) + (z[1] - x[1]).powi(2) + (z[2] - x[2]).powi(2)).sqrt()
            };
            s += e(chain.map_point(x));
            s_aff += e(n.syn.affine.map_point(x));
            s0 += e(x);
            cnt += 1;
        }
    }
    let (err, err_aff, err0) = (s / cnt as f64, s_aff / cnt as f64, s0 / cnt as f64);
    // the brain mask against the truth's: the template mask seen through the known map
    let truth_mask = resample_mapped(&tpl_mask, &grid, Interp::Linear, &f)
        .unwrap()
        .frame(0)
        .mapv(|x| x > 0.5);
    let dm = dice(&n.brain_mask, &truth_mask);
    eprintln!(
        "MNI152 head deformed, bias + noise: mean error {err:.2} mm (affine only {err_aff:.2}, none {err0:.2}), \
         brain mask Dice {dm:.3}, QC brain Dice {:.3}, {secs:.1} s",
        n.brain_dice
    );
    assert!(
        err < 2.0,
        "mean error {err:.2} mm over the brain (2 mm voxels)"
    );
    assert!(
        err < 0.5 * err_aff,
        "nonlinear {err:.2} mm not well below affine {err_aff:.2} mm"
    );
    assert!(dm >= 0.97, "brain mask Dice {dm:.3} < 0.97");
    let jmin = jacobians(&n.syn.forward)
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    assert!(jmin > 0.0, "Jacobian {jmin}");
    let (ic, _) = inverse_consistency(&n.syn.forward, &n.syn.inverse, &tb);
    assert!(ic < 0.5, "inverse consistency {ic} mm");
}

#[test]
fn noise_a_flat_image_and_a_slab_are_refused() {
    let (tpl, tpl_mask) = template();
    let grid = centred_grid([48, 56, 48], 4.0, [0.0, -18.0, 10.0]);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let normal = rand_distr::Normal::new(500.0f32, 150.0).unwrap();
    let noise = Array3::from_shape_fn((48, 56, 48), |_| {
        rand_distr::Distribution::sample(&normal, &mut rng).abs()
    });
    let vol = |a: Array3<f32>, g: &Grid| Volume::new(a.into_dyn(), g.affine).unwrap();
    let opts = NormaliseOptions::default();
    let e = normalise_t1w(&vol(noise, &grid), &tpl, &tpl_mask, &opts).unwrap_err();
    eprintln!("noise: {e}");
    assert!(
        matches!(e, Error::NotABrain { .. } | Error::NoOverlap { .. }),
        "{e}"
    );
    let e = normalise_t1w(
        &vol(Array3::from_elem((48, 56, 48), 300.0), &grid),
        &tpl,
        &tpl_mask,
        &opts,
    )
    .unwrap_err();
    eprintln!("flat: {e}");
    assert!(matches!(e, Error::NotABrain { .. }), "{e}");
    // eight axial slices of a head: most of the brain is outside the field of view
    let slab_grid = centred_grid([91, 109, 8], 2.0, [0.0, -18.0, 20.0]);
    let slab = resample_mapped(&tpl, &slab_grid, Interp::Linear, &|x| x).unwrap();
    let e = normalise_t1w(&slab, &tpl, &tpl_mask, &opts).unwrap_err();
    eprintln!("slab: {e}");
    assert!(
        matches!(e, Error::NoOverlap { .. } | Error::NotABrain { .. }),
        "{e}"
    );
}
