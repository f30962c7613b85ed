//! The path users take: a `cbflow synth --templates` study (MNI152 anatomy, T1w with skull,
//! bias field and noise) through the participant level on the default template, each run's
//! template-space CBF scored against its template-space truth.

use cbflow_image::Volume;

use crate::{cbflow, pearson};

fn read(p: &std::path::Path) -> Volume {
    cbflow_image::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn template_space_cbf_matches_truth_on_the_mni_path() {
    let data = cbflow_testdata::resources_for(&["MNI152NLin6Asym"]);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 2,
        seed: 21,
        templates: Some(data.clone()),
        ..Default::default()
    };
    spec.protocol.pairs = 4;
    cbflow_synth::generate(&spec, &root).unwrap();
    let out = t.path().join("out");
    cbflow()
        .env_remove("CBFLOW_RESOURCES")
        .arg(&root)
        .arg(&out)
        .arg("participant")
        .arg("--resources")
        .arg(&data)
        .assert()
        .success();
    // the report draws with what the plan resolved: `--resources` alone brings the template's
    // edges into its normalisation figure (it read only $CBFLOW_RESOURCES before)
    let html = std::fs::read_to_string(out.join("sub-01.html")).unwrap();
    assert!(
        html.contains("in MNI152NLin6Asym space with template edges")
            && !html.contains("no resource directory"),
        "the participant report has no template drawing"
    );
    // the template's grey-matter prior (SPM12, the synthetic anatomy's), > 0.05
    let grey = read(&data.join("templates/spm12_2mm/grey.nii.gz"));
    let top = grey.frame(0).iter().copied().fold(0f32, f32::max);
    let gm: Vec<bool> = grey.frame(0).iter().map(|&g| g / top > 0.05).collect();
    let (mut rs, mut report) = (Vec::new(), Vec::new());
    let mut extents = Vec::new();
    for sub in ["01", "02"] {
        for ses in ["1", "2"] {
            for run in ["1", "2"] {
                let stem = format!("sub-{sub}_ses-{ses}_run-{run}");
                let truth = read(&root.join(format!(
                    "derivatives/truth/sub-{sub}/ses-{ses}/perf/{stem}_space-MNI152NLin6Asym_cbf.nii.gz"
                )));
                let est = read(&out.join(format!(
                    "sub-{sub}/ses-{ses}/perf/{stem}_space-MNI152NLin6Asym_res-2_cbf.nii.gz"
                )));
                assert_eq!(truth.grid().dims, est.grid().dims, "{stem}: grids");
                // the header names the space as FSL's MNI files do (NIFTI_XFORM_MNI_152)
                assert_eq!((est.info.sform_code, est.info.qform_code), (4, 4), "{stem}");
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for ((&m, &x), &y) in gm
                    .iter()
                    .zip(truth.frame(0).iter())
                    .zip(est.frame(0).iter())
                {
                    if m {
                        a.push(x as f64);
                        b.push(y as f64);
                    }
                }
                let r = pearson(&a, &b);
                let above = |v: &Volume| v.frame(0).iter().filter(|&&x| x > 10.0).count() as f64;
                let extent = above(&est) / above(&truth);
                report.push(format!("{stem}: r {r:.3}, extent ratio {extent:.3}"));
                rs.push(r);
                extents.push(extent);
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    rs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = (rs[3] + rs[4]) / 2.0;
    eprintln!("median r {median:.3}");
    assert!(
        median >= 0.5,
        "median r {median:.3} < 0.5:\n{}",
        report.join("\n")
    );
    for (e, line) in extents.iter().zip(&report) {
        assert!((e - 1.0).abs() <= 0.10, "extent outside 10 %: {line}");
    }
}
