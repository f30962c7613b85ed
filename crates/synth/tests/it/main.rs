//! The synthetic study is valid BIDS and its truth agrees with its images.

use std::path::Path;

use cbflow_synth::{NoiseModel, SubjectTransform, SynthSpec, generate};
use nalgebra::Vector4;

fn quiet_spec(subjects: usize) -> SynthSpec {
    SynthSpec {
        subjects,
        seed: 3,
        noise: NoiseModel {
            asl_sigma: 0.0,
            t1w_sigma: 0.0,
            motion_step: [0.0, 0.0],
            ..NoiseModel::default()
        },
        ..SynthSpec::default()
    }
}

fn read(p: &Path) -> cbflow_image::Volume {
    cbflow_image::read(p).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn output_passes_validation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bids");
    let s = generate(
        &SynthSpec {
            subjects: 2,
            ..SynthSpec::default()
        },
        &root,
    )
    .unwrap();
    assert_eq!(s.subjects, ["01", "02"]);
    let report = cbflow_bids::validate(&root).unwrap();
    assert!(!report.has_errors(), "{report}");
    let layout = cbflow_bids::Layout::index(&root).unwrap();
    assert_eq!(layout.subjects(), ["01", "02"]);
    assert_eq!(layout.asl_runs().unwrap().len(), 2 * 2 * 2);
    // counterbalanced: the two subjects got the two orders
    let p = cbflow_bids::Table::read_tsv(&root.join("participants.tsv")).unwrap();
    let seq: Vec<String> = p
        .column("sequence")
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(
        seq.contains(&"PN".to_string()) && seq.contains(&"NP".to_string()),
        "{seq:?}"
    );
}

#[test]
fn refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), "x").unwrap();
    let e = generate(
        &SynthSpec {
            subjects: 2,
            ..SynthSpec::default()
        },
        dir.path(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}

#[test]
fn same_seed_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SynthSpec {
        subjects: 2,
        ..SynthSpec::default()
    };
    generate(&spec, &dir.path().join("a")).unwrap();
    generate(&spec, &dir.path().join("b")).unwrap();
    for rel in [
        "sub-02/ses-2/perf/sub-02_ses-2_run-2_asl.nii.gz",
        "phenotype/mood.tsv",
        "derivatives/truth/truth.json",
    ] {
        let a = std::fs::read(dir.path().join("a").join(rel)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(rel)).unwrap();
        assert!(a == b, "{rel} differs between runs with the same seed");
    }
}

/// Quantifying the noise-free, motion-free images by the consensus formula (a second, naive
/// implementation here) gives back the truth CBF in every brain voxel.
#[test]
fn asl_images_agree_with_truth_cbf() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bids");
    let spec = quiet_spec(2);
    generate(&spec, &root).unwrap();
    let p = &spec.protocol;
    let m0_relax = 1.0 - (-p.m0_repetition_time / p.t1_tissue).exp();
    for run in [1, 2] {
        let perf = root.join("sub-01/ses-1/perf");
        let asl = read(&perf.join(format!("sub-01_ses-1_run-{run}_asl.nii.gz")));
        let m0 = read(&perf.join(format!("sub-01_ses-1_run-{run}_m0scan.nii.gz")));
        let truth = read(&root.join(format!(
            "derivatives/truth/sub-01/ses-1/perf/sub-01_ses-1_run-{run}_cbf.nii.gz"
        )));
        assert_eq!(asl.n_volumes(), 2 * p.pairs);
        let (mut n, mut worst) = (0, 0f64);
        for ((i, j, k), &t) in truth.frame(0).indexed_iter() {
            let m = m0.frame(0)[[i, j, k]] as f64 / m0_relax;
            if t < 30.0 || m < 300.0 {
                continue;
            }
            let dm: f64 = (0..p.pairs)
                .map(|q| (asl.frame(2 * q)[[i, j, k]] - asl.frame(2 * q + 1)[[i, j, k]]) as f64)
                .sum::<f64>()
                / p.pairs as f64;
            let cbf = dm / m / p.signal_per_cbf();
            worst = worst.max((cbf - t as f64).abs() / t as f64);
            n += 1;
        }
        assert!(n > 1000, "only {n} brain voxels");
        // int16 storage quantises ΔM (a difference of two ~100-unit values): allow 2 %.
        assert!(worst < 0.02, "run {run}: worst relative error {worst}");
    }
}

/// The recorded transform maps template grey matter onto native grey-matter intensities.
#[test]
fn t1w_agrees_with_truth_transform() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bids");
    generate(&quiet_spec(2), &root).unwrap();
    let xfm: SubjectTransform = {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(root.join(
                "derivatives/truth/sub-02/ses-2/anat/sub-02_ses-2_from-template_to-T1w_xfm.json",
            ))
            .unwrap(),
        )
        .unwrap();
        serde_json::from_value(v).unwrap()
    };
    let t1 = read(&root.join("sub-02/ses-2/anat/sub-02_ses-2_T1w.nii.gz"));
    let space = cbflow_synth::Space::phantom();
    let inv = t1.grid().inverse_affine();
    let (mut gm_vals, mut wm_vals) = (vec![], vec![]);
    for ((i, j, k), &g) in space.gm.indexed_iter() {
        let w = space.wm[[i, j, k]];
        if g < 0.99 && w < 0.99 {
            continue;
        }
        let q = xfm.forward(space.grid.voxel_to_world([i as f64, j as f64, k as f64]));
        let v = inv * Vector4::new(q[0], q[1], q[2], 1.0);
        let idx = [
            v[0].round() as usize,
            v[1].round() as usize,
            v[2].round() as usize,
        ];
        let val = t1.frame(0)[idx];
        if g >= 0.99 {
            gm_vals.push(val)
        } else {
            wm_vals.push(val)
        }
    }
    let median = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let (gm, wm) = (median(&mut gm_vals), median(&mut wm_vals));
    assert!((gm - 550.0).abs() < 40.0, "GM median {gm}");
    assert!((wm - 850.0).abs() < 40.0, "WM median {wm}");
}

/// An effect map given on the space's grid is the truth's effect image, the template-space truth
/// CBF of the during-ketamine run carries it, and a map on another grid is refused.
#[test]
fn effect_follows_a_given_map() {
    use cbflow_synth::{EffectPattern, Space};
    let space = Space::phantom();
    // a smooth left-right gradient inside the brain, as a z map
    let z =
        ndarray::Array3::from_shape_fn(space.gm.raw_dim(), |(i, _, _)| (i as f32 - 28.0) / 10.0);
    let pattern = EffectPattern::from_z_map("gradient", &z, 0.1, 0.05);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bids");
    let mut spec = quiet_spec(2);
    spec.protocol.pairs = 2;
    spec.effect = pattern.clone();
    generate(&spec, &root).unwrap();
    let truth = root.join("derivatives/truth");
    let eff = read(&truth.join("space-phantom_desc-effect_cbf.nii.gz"));
    let EffectPattern::Map { rise, .. } = &pattern else {
        unreachable!()
    };
    assert_eq!(eff.frame(0), rise.view());
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(truth.join("truth.json")).unwrap()).unwrap();
    assert_eq!(j["EffectPattern"]["map"], "gradient");
    // during / before ratio of the template-space truth CBF = 1 + rise · scale · mean ramp
    let perf = truth.join("sub-01/ses-1/perf");
    let before = read(&perf.join("sub-01_ses-1_run-1_space-phantom_cbf.nii.gz"));
    let during = read(&perf.join("sub-01_ses-1_run-2_space-phantom_cbf.nii.gz"));
    let side: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(perf.join("sub-01_ses-1_run-2_cbf.json")).unwrap(),
    )
    .unwrap();
    let g = [
        side["GlobalFactor"].as_f64().unwrap(),
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(perf.join("sub-01_ses-1_run-1_cbf.json")).unwrap(),
        )
        .unwrap()["GlobalFactor"]
            .as_f64()
            .unwrap(),
    ];
    let ramp: Vec<f64> = side["Ramp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let k = ramp.iter().sum::<f64>() / ramp.len() as f64;
    let mut checked = 0;
    for ((idx, &b), &d) in before.frame(0).indexed_iter().zip(during.frame(0).iter()) {
        let sg = space.labels[idx];
        if b > 20.0 && sg != 151 && sg != 152 {
            let want = (g[0] / g[1]) * (1.0 + f64::from(rise[idx]) * k);
            assert!(
                (f64::from(d / b) - want).abs() < 1e-4,
                "{idx:?}: {} vs {want}",
                d / b
            );
            checked += 1;
        }
    }
    assert!(checked > 1000);
    // a map on another grid is refused, naming the shapes
    spec.effect = EffectPattern::from_z_map("small", &ndarray::Array3::zeros((3, 3, 3)), 0.1, 0.0);
    let e = generate(&spec, &dir.path().join("other"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("small") && e.contains("[3, 3, 3]"), "{e}");
}

#[test]
fn an_effect_sphere_rises_within_its_radius_only() {
    let space = cbflow_synth::Space::phantom();
    let (c, r) = ([0.0, -75.0, 18.0], 15.0);
    let cbflow_synth::EffectPattern::Map { rise, name } =
        cbflow_synth::EffectPattern::sphere(&space, c, r).unwrap()
    else {
        panic!("a map")
    };
    assert!(name.contains("sphere"), "{name}");
    let mut inside = 0;
    for ((i, j, k), &v) in rise.indexed_iter() {
        let w = space.grid.voxel_to_world([i as f64, j as f64, k as f64]);
        let d = ((w[0] - c[0]).powi(2) + (w[1] - c[1]).powi(2) + (w[2] - c[2]).powi(2)).sqrt();
        let want = if d <= r {
            cbflow_synth::KETAMINE_RISE as f32
        } else {
            0.0
        };
        assert_eq!(v, want, "voxel {i},{j},{k} at {d:.1} mm");
        inside += usize::from(d <= r);
    }
    // a 15 mm ball of 3 mm voxels: 4/3·π·15³ / 27 ≈ 524 voxels
    assert!((450..600).contains(&inside), "{inside} voxels");
    let e = cbflow_synth::EffectPattern::sphere(&space, [500.0, 0.0, 0.0], 5.0).unwrap_err();
    assert!(e.to_string().contains("no voxel"), "{e}");
    assert!(cbflow_synth::EffectPattern::sphere(&space, c, 0.0).is_err());
}
