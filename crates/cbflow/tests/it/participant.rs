//! The participant level on a synthetic study recovers its ground truth.

use std::path::Path;

use predicates::prelude::*;

use crate::{cbflow, run_level, study};

fn read(p: &Path) -> cbflow_image::Volume {
    cbflow_image::read(p).unwrap_or_else(|e| panic!("{e}"))
}

/// GM-mean CBF of every run within 3 % of the truth; realigned motion close to the simulated one.
#[test]
fn participant_recovers_truth() {
    let (t, root) = study();
    let out = root.join("derivatives/cbflow");
    let before = checksum_tree(&root);
    run_level(&root, &out, "participant")
        .args(["--template", "none"])
        .assert()
        .success();
    assert_eq!(
        before,
        checksum_tree_without(&root, "derivatives/cbflow"),
        "the input dataset changed"
    );
    let mut n = 0;
    for sub in ["01", "02"] {
        for ses in ["1", "2"] {
            for run in ["1", "2"] {
                let stem = format!("sub-{sub}_ses-{ses}_run-{run}");
                let est = read(&out.join(format!("sub-{sub}/ses-{ses}/perf/{stem}_cbf.nii.gz")));
                let truth = read(&root.join(format!(
                    "derivatives/truth/sub-{sub}/ses-{ses}/perf/{stem}_cbf.nii.gz"
                )));
                // grey-matter-dominated voxels: truth above the GM/WM midpoint
                let (mut se, mut st, mut k) = (0f64, 0f64, 0usize);
                for (e, &tv) in est.frame(0).iter().zip(truth.frame(0).iter()) {
                    if tv > 45.0 {
                        se += *e as f64;
                        st += tv as f64;
                        k += 1;
                    }
                }
                assert!(k > 200, "{stem}: {k} GM voxels");
                let rel = se / st - 1.0;
                assert!(
                    rel.abs() < 0.03,
                    "{stem}: GM mean CBF {:.2} vs truth {:.2} ({:+.1} %)",
                    se / k as f64,
                    st / k as f64,
                    100.0 * rel
                );
                motion_close(
                    &out.join(format!(
                        "sub-{sub}/ses-{ses}/perf/{stem}_desc-confounds_timeseries.tsv"
                    )),
                    &root.join(format!(
                        "derivatives/truth/sub-{sub}/ses-{ses}/perf/{stem}_motion.tsv"
                    )),
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 8);
    // every image has its JSON sidecar, and nothing is left in a staging directory
    let mut stack = vec![out.clone()];
    let mut images = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".cbflow-staging"),
                "staging left behind: {}",
                p.display()
            );
            if name == ".cbflow-work" {
                // the cache of the workflow executor, not an output
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if let Some(stem) = name.strip_suffix(".nii.gz") {
                images += 1;
                assert!(
                    p.with_file_name(format!("{stem}.json")).exists(),
                    "{} has no sidecar",
                    p.display()
                );
            }
        }
    }
    // per run: cbf, timeseries, mean ΔM, calibration M0, brain mask
    assert_eq!(images, 8 * 5, "images written");
    drop(t);
}

/// Estimated motion relative to the first control volume against the simulated motion, as a
/// framewise-displacement-style distance (Power et al. 2012: Σ|Δtranslation| + 50 mm · Σ|Δrotation|)
/// between the estimated and the simulated head position of each control volume: below 0.5 mm for
/// every volume and 0.35 mm on average (about a tenth of the 3.75 × 3.75 × 4 mm ASL voxels).
fn motion_close(est: &Path, truth: &Path) {
    let e = cbflow_bids::Table::read_tsv(est).unwrap();
    let t = cbflow_bids::Table::read_tsv(truth).unwrap();
    let types = e.column("volume_type").unwrap();
    let cols = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"];
    let get = |tab: &cbflow_bids::Table, c: &str| -> Vec<f64> {
        tab.f64_column(c)
            .unwrap()
            .into_iter()
            .map(Option::unwrap)
            .collect()
    };
    let (ev, tv): (Vec<Vec<f64>>, Vec<Vec<f64>>) = (
        cols.iter().map(|c| get(&e, c)).collect(),
        cols.iter().map(|c| get(&t, c)).collect(),
    );
    let mut errors = vec![];
    for i in 0..types.len() {
        if types[i] != "control" || i == 0 {
            continue;
        }
        let d: f64 = (0..6)
            .map(|c| {
                ((ev[c][i] - ev[c][0]) - (tv[c][i] - tv[c][0])).abs()
                    * if c < 3 { 1.0 } else { 50.0 }
            })
            .sum();
        errors.push(d);
    }
    let max = errors.iter().cloned().fold(0.0, f64::max);
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!(
        max < 0.5 && mean < 0.35,
        "{}: motion error max {max:.3} mm, mean {mean:.3} mm",
        est.display()
    );
}

fn checksum_tree(root: &Path) -> Vec<(String, u64)> {
    checksum_tree_without(root, "\u{0}")
}

/// (relative path, FNV-1a hash) of every file under `root` except those under `skip`.
fn checksum_tree_without(root: &Path, skip: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(skip) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let h = std::fs::read(&p)
                    .unwrap()
                    .iter()
                    .fold(0xcbf29ce484222325u64, |h, &b| {
                        (h ^ b as u64).wrapping_mul(0x100000001b3)
                    });
                out.push((rel, h));
            }
        }
    }
    out.sort();
    out
}

/// Template space: each run's CBF is resampled to the phantom template; ROI means (AAL3-numbered
/// ACC regions, grey matter, global) agree within 5 % with the truth's native CBF pushed through
/// the *true* template → native transform (the same blur by the ASL voxels, so the comparison
/// isolates registration error). The ASL images are noise-free here: with the study's noise a
/// 70-voxel ROI of one run scatters by about 4 % on its own.
#[test]
fn template_space_rois_match_truth() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 2,
        seed: 9,
        ..Default::default()
    };
    spec.protocol.pairs = 3;
    spec.noise.asl_sigma = 0.0;
    cbflow_synth::generate(&spec, &root).unwrap();
    let out = root.join("derivatives/cbflow");
    run_level(&root, &out, "participant")
        .args(["--template", "phantom", "--participant-label", "01"])
        .assert()
        .success();
    let tpl = cbflow_synth::Space::phantom();
    let grid = &tpl.grid;
    let (mut report, mut worst) = (Vec::new(), 0f64);
    for ses in ["1", "2"] {
        let xfm: cbflow_synth::SubjectTransform = serde_json::from_slice(
            &std::fs::read(root.join(format!("derivatives/truth/sub-01/ses-{ses}/anat/sub-01_ses-{ses}_from-template_to-T1w_xfm.json"))).unwrap(),
        )
        .unwrap();
        for run in ["1", "2"] {
            let stem = format!("sub-01_ses-{ses}_run-{run}");
            let est = read(&out.join(format!(
                "sub-01/ses-{ses}/perf/{stem}_space-phantom_res-3_cbf.nii.gz"
            )));
            assert_eq!(est.grid().dims, grid.dims);
            let native = read(&root.join(format!(
                "derivatives/truth/sub-01/ses-{ses}/perf/{stem}_cbf.nii.gz"
            )));
            let ninv = native.grid();
            let expected = ndarray::Array3::from_shape_fn(
                (grid.dims[0], grid.dims[1], grid.dims[2]),
                |(i, j, k)| {
                    let q = xfm.forward(grid.voxel_to_world([i as f64, j as f64, k as f64]));
                    cbflow_image::sample(
                        native.frame(0),
                        ninv.world_to_voxel(q),
                        cbflow_image::Interp::Linear,
                    )
                },
            );
            let acc = |labels: &[i32]| tpl.labels.mapv(|l| labels.contains(&l));
            let gm = tpl.gm.mapv(|g| g > 0.5);
            let brain = tpl.brain_mask();
            for (name, mask) in [
                ("ACC_sub", acc(&[151, 152])),
                ("ACC_pre", acc(&[153, 154])),
                ("ACC_sup", acc(&[155, 156])),
                ("grey matter", gm),
                ("global", brain),
            ] {
                let (mut e, mut x, mut n) = (0f64, 0f64, 0usize);
                for ((m, a), b) in mask.iter().zip(est.frame(0).iter()).zip(expected.iter()) {
                    if *m {
                        e += *a as f64;
                        x += *b as f64;
                        n += 1;
                    }
                }
                let rel = e / x - 1.0;
                report.push(format!(
                    "{stem} {name}: mean {:.2} vs truth {:.2} ({:+.1} %, {n} voxels)",
                    e / n as f64,
                    x / n as f64,
                    100.0 * rel
                ));
                worst = worst.max(rel.abs());
            }
        }
    }
    assert!(
        worst < 0.05,
        "ROI means off by up to {:.1} %:\n{}",
        100.0 * worst,
        report.join("\n")
    );
    let roi = cbflow_bids::Table::read_tsv(
        &out.join("sub-01/ses-1/perf/sub-01_ses-1_run-1_space-phantom_res-3_desc-roi_cbf.tsv"),
    )
    .unwrap();
    assert_eq!(
        roi.column("region").unwrap()[..3],
        ["ACC_sub_L", "ACC_sub_R", "ACC_sub"]
    );
    let qc = cbflow_bids::Table::read_tsv(
        &out.join("sub-01/ses-1/perf/sub-01_ses-1_run-1_desc-qc_cbf.tsv"),
    )
    .unwrap();
    let gm = qc.f64_column("mean_cbf_gm").unwrap()[0].unwrap();
    assert!(gm > 40.0 && gm < 70.0, "QC GM CBF {gm}");
}

/// A noise-free, motion-free two-subject study (3 pairs per run).
fn noise_free_study() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 2,
        seed: 7,
        ..Default::default()
    };
    spec.protocol.pairs = 3;
    spec.noise.asl_sigma = 0.0;
    spec.noise.motion_step = [0.0, 0.0];
    cbflow_synth::generate(&spec, &root).unwrap();
    (t, root)
}

const RUN: &str = "sub-01/ses-1/perf/sub-01_ses-1_run-1";

/// Sets the separate M0 of [`RUN`] to `value` at `voxels`.
fn edit_m0(root: &Path, voxels: &[[usize; 3]], value: f32) {
    let p = root.join(format!("{RUN}_m0scan.nii.gz"));
    let mut m0 = read(&p);
    for v in voxels {
        m0.data[[v[0], v[1], v[2]]] = value;
    }
    cbflow_image::write(&p, &m0, cbflow_image::DataType::Float32).unwrap();
}

/// Zero-M0 voxels inside the brain (holes that hole filling puts in the mask, as edges, vessels
/// and susceptibility holes of real M0 images do) are left out: CBF everywhere else is the CBF
/// of the intact data, bit for bit, and the QC table, the sidecar and the log say how many.
#[test]
fn zero_m0_voxels_are_left_out_and_counted() {
    let (t, root) = noise_free_study();
    let intact = t.path().join("intact");
    run_level(&root, &intact, "participant")
        .args(["--template", "none", "--participant-label", "01"])
        .assert()
        .success();
    // five voxels deep in the brain: where the intact CBF is highest
    let cbf = read(&intact.join(format!("{RUN}_cbf.nii.gz")));
    let mut order: Vec<([usize; 3], f32)> = cbf
        .frame(0)
        .indexed_iter()
        .map(|((i, j, k), &v)| ([i, j, k], v))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let holes: Vec<[usize; 3]> = order.iter().step_by(37).take(5).map(|o| o.0).collect();
    edit_m0(&root, &holes, 0.0);
    let out = t.path().join("holes");
    let mut c = cbflow();
    c.env("CBFLOW_LOG", "warn");
    c.arg(&root)
        .arg(&out)
        .arg("participant")
        .args(["--template", "none", "--participant-label", "01"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("5 of").and(predicate::str::contains(
                "left out of quantification (5 with M0 zero, negative or not finite",
            )),
        );
    let with_holes = read(&out.join(format!("{RUN}_cbf.nii.gz")));
    let mask = read(&out.join(format!("{RUN}_desc-brain_mask.nii.gz")));
    for ((ijk, &a), &b) in cbf.frame(0).indexed_iter().zip(with_holes.frame(0).iter()) {
        let v = [ijk.0, ijk.1, ijk.2];
        if holes.contains(&v) {
            assert_eq!(b, 0.0);
            assert_eq!(mask.frame(0)[ijk], 0.0);
        } else {
            assert_eq!(a.to_bits(), b.to_bits(), "CBF changed at {v:?}");
        }
    }
    let qc = cbflow_bids::Table::read_tsv(&out.join(format!("{RUN}_desc-qc_cbf.tsv"))).unwrap();
    assert_eq!(qc.f64_column("voxels_left_out").unwrap()[0], Some(5.0));
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{RUN}_cbf.json"))).unwrap())
            .unwrap();
    assert_eq!(side["Parameters"]["VoxelsLeftOut"]["InvalidM0"], 5);
}

/// An M0 unusable in much of the brain, or whose field of view misses the ASL series, stops the
/// run with an error naming the file(s); nothing is written.
#[test]
fn a_broken_or_misplaced_m0_is_an_error_naming_it() {
    let (t, root) = noise_free_study();
    let m0 = root.join(format!("{RUN}_m0scan.nii.gz"));
    let v = read(&m0);
    let d = v.grid().dims;
    // a ball of zeros inside the brain (hole filling keeps it in the mask): far more than
    // 10 % of the brain
    let c = d.map(|n| n as f64 / 2.0);
    let r = 0.25 * d.iter().copied().min().unwrap() as f64;
    let slab: Vec<[usize; 3]> = (0..d[0])
        .flat_map(|i| (0..d[1]).flat_map(move |j| (0..d[2]).map(move |k| [i, j, k])))
        .filter(|v| {
            (0..3)
                .map(|a| (v[a] as f64 + 0.5 - c[a]).powi(2))
                .sum::<f64>()
                < r * r
        })
        .collect();
    edit_m0(&root, &slab, 0.0);
    crate::participant_fails(
        &root,
        &t.path().join("out1"),
        &["--participant-label", "01"],
        &[
            "sub-01_ses-1_run-1_asl.nii.gz",
            "M0 is not usable in",
            "more than the 10 %",
        ],
    );
    // the M0 of another place: 500 mm to the right
    let mut far = v.clone();
    far.affine[(0, 3)] += 500.0;
    cbflow_image::write(&m0, &far, cbflow_image::DataType::Float32).unwrap();
    crate::participant_fails(
        &root,
        &t.path().join("out2"),
        &["--participant-label", "01"],
        &[
            "sub-01_ses-1_run-1_m0scan.nii.gz",
            "sub-01_ses-1_run-1_asl.nii.gz",
            "do not overlap",
        ],
    );
}

#[test]
fn a_t1w_that_is_not_a_brain_is_an_error_naming_it() {
    let (t, root) = noise_free_study();
    let p = root.join("sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz");
    let v = read(&p);
    let mut state = 12345u64;
    let noise = v.frame(0).mapv(|_| {
        // xorshift: uniform noise 0–1000, no brain in it
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1000) as f32
    });
    cbflow_image::write(
        &p,
        &v.with_data3(noise).unwrap(),
        cbflow_image::DataType::Float32,
    )
    .unwrap();
    crate::participant_fails(
        &root,
        &t.path().join("out"),
        &["--template", "phantom", "--participant-label", "01"],
        &["sub-01_ses-1_T1w.nii.gz", "not a T1w image of a brain"],
    );
}

/// A binary mask file as the ROI source (`atlas: {image: mask}` without a label table): one
/// region, named by the workflow, whose mean is the mean of the template-space CBF map over
/// the mask's voxels, computed here from the written map.
#[test]
fn a_binary_mask_is_a_region_of_interest() {
    let (t, root) = study();
    let tpl = cbflow_pipeline::Template::load(&cbflow_pipeline::TemplateChoice::Phantom).unwrap();
    let g = tpl.grid;
    // a 10 mm sphere at the brain mask's centre of mass
    let brain = tpl.brain_mask.frame(0);
    let (mut c, mut n) = ([0.0f64; 3], 0.0);
    for ((i, j, k), &v) in brain.indexed_iter() {
        if v > 0.5 {
            c[0] += i as f64;
            c[1] += j as f64;
            c[2] += k as f64;
            n += 1.0;
        }
    }
    let c = c.map(|x| x / n);
    let world = |i: f64, j: f64, k: f64| g.affine * nalgebra::Vector4::new(i, j, k, 1.0);
    let centre = world(c[0], c[1], c[2]);
    let mask = ndarray::Array3::from_shape_fn(g.dims, |(i, j, k)| {
        let p = world(i as f64, j as f64, k as f64);
        let d2 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum::<f64>();
        if d2 <= 100.0 { 1.0f32 } else { 0.0 }
    });
    let n_mask = mask.iter().filter(|&&v| v == 1.0).count();
    assert!(n_mask > 50, "{n_mask} voxels");
    let mask_path = t.path().join("sphere_mask.nii.gz");
    let vol = cbflow_image::Volume::new(mask.clone().into_dyn(), g.affine).unwrap();
    cbflow_image::write(&mask_path, &vol, cbflow_image::DataType::Uint8).unwrap();
    let wf = t.path().join("mask.yaml");
    std::fs::write(
        &wf,
        "version: 1\nname: mask-roi\nsteps:\n  - id: cbf\n    op: asl-cbf\n    inputs:\n      asl: {bids: {datatype: perf, suffix: asl}}\n    params:\n      template: phantom\n      atlas: {image: sphere_mask.nii.gz, name: centre_sphere}\n",
    )
    .unwrap();
    let out = t.path().join("out");
    run_level(&root, &out, "participant")
        .args(["--participant-label", "01", "--workflow"])
        .arg(&wf)
        .assert()
        .success();
    // the first run's template-space CBF map and ROI table
    let perf = out.join("sub-01/ses-1/perf");
    let mut names: Vec<String> = std::fs::read_dir(&perf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("run-1_space-phantom_"))
        .collect();
    names.sort();
    let find = |suffix: &str| {
        names
            .iter()
            .find(|n| n.ends_with(suffix) && (suffix.contains("desc-") || !n.contains("desc-")))
            .map(|n| perf.join(n))
            .unwrap_or_else(|| panic!("no *{suffix} in {names:?}"))
    };
    let cbf = read(&find("_cbf.nii.gz"));
    let table = std::fs::read_to_string(find("_desc-roi_cbf.tsv")).unwrap();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("centre_sphere\t"))
        .unwrap_or_else(|| panic!("no centre_sphere row:\n{table}"))
        .split('\t')
        .collect();
    assert_eq!(row[1], n_mask.to_string(), "voxels of the region");
    let cbf0 = cbf.frame(0);
    let sum: f64 = cbf0
        .iter()
        .zip(mask.iter())
        .filter(|(_, m)| **m == 1.0)
        .map(|(v, _)| *v as f64)
        .sum();
    let mean = sum / n_mask as f64;
    let got: f64 = row[2].parse().unwrap();
    assert!(
        (got - mean).abs() < 1e-3 * mean.abs().max(1.0),
        "ROI mean {got} vs {mean}"
    );
    // a label image without its table is refused, naming the file
    let labels = mask.mapv(|v| v * 2.0);
    let vol = cbflow_image::Volume::new(labels.into_dyn(), g.affine).unwrap();
    cbflow_image::write(&mask_path, &vol, cbflow_image::DataType::Uint8).unwrap();
    let out2 = t.path().join("out2");
    run_level(&root, &out2, "participant")
        .args(["--participant-label", "01", "--workflow"])
        .arg(&wf)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("sphere_mask.nii.gz")
                .and(predicate::str::contains("0 and 1 only")),
        );
}
