//! cbflow's written transforms applied by a peer tool: ANTsPy (`antspyx` from PyPI, installed by
//! `.ci/run`) reads the ITK warp (5D, LPS, intent 1007) and affine that `cbflow normalise`
//! writes, and must reproduce cbflow's own template-space image of the real MPRAGE.

use std::process::Command;

use crate::{cbflow, run_level};

/// Runs a Python script with `args`; fails the test with its output when it fails; returns its
/// standard output (also printed after `label`).
fn python(script: &str, args: &[&std::path::Path], label: &str) -> String {
    let o = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("{label}{text}");
    text
}

/// The number printed after `key` in `text` (a closing parenthesis after it dropped).
fn number_after(text: &str, key: &str) -> f64 {
    text.split(key)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {text}"))
}

const CHECK: &str = r#"
import sys, ants, numpy as np, nibabel as nib
out, template = sys.argv[1], sys.argv[2]
name = "MNI152NLin6Asym"
fixed = ants.image_read(template)
moving = ants.image_read(f"{out}/T1w_desc-preproc_T1w.nii.gz")
xfm = [f"{out}/from-T1w_to-{name}_mode-image_desc-warp_xfm.nii.gz",
       f"{out}/from-T1w_to-{name}_mode-image_desc-affine_xfm.txt"]
a = ants.apply_transforms(fixed, moving, xfm, interpolator="linear").numpy()
c = nib.load(f"{out}/T1w_space-{name}_desc-preproc_T1w.nii.gz").get_fdata()
brain = nib.load(template.replace("T1_2mm.nii.gz", "T1_2mm_brain_mask.nii.gz")).get_fdata() > 0.5
r = np.corrcoef(a[brain], c[brain])[0, 1]
rel = np.median(np.abs(a[brain] - c[brain])) / np.median(np.abs(c[brain]))
# the affine alone, to show the warp matters: ANTs with the affine only against cbflow's image
a0 = ants.apply_transforms(fixed, moving, xfm[1:], interpolator="linear").numpy()
r0 = np.corrcoef(a0[brain], c[brain])[0, 1]
worst = np.max(np.abs(a[brain] - c[brain])) / np.median(np.abs(c[brain]))
print(f"r {r:.6f} median relative difference {rel:.2e} largest {worst:.2e} (affine only: r {r0:.4f})")
"#;

#[test]
#[ignore = "needs python3 with antspyx, nibabel and numpy (installed by .ci/run)"]
fn ants_applies_cbflows_transforms_as_cbflow_does() {
    let data = cbflow_testdata::resources_for(&["MNI152NLin6Asym"]);
    let t1w = cbflow_testdata::data("real-anat/sub-01_T1w.nii.gz");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("norm");
    cbflow()
        .arg("normalise")
        .arg(&t1w)
        .arg(&out)
        .arg("--resources")
        .arg(&data)
        .assert()
        .success();
    let template = data.join("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz");
    let text = python(CHECK, &[&out, &template], "ANTs vs cbflow: ");
    let num = |key: &str| number_after(&text, key);
    let (r, rel, r0) = (num("r "), num("difference "), num("affine only: r "));
    assert!(r > 0.999, "ANTs' image correlates r {r} with cbflow's");
    assert!(rel < 0.01, "median relative difference {rel}");
    assert!(
        r0 < r - 0.005,
        "the warp changes nothing (affine only r {r0})"
    );
}

/// nilearn's `NiftiLabelsMasker` on cbflow's template-space CBF maps, against cbflow's ROI
/// tables of the same maps with a Schaefer 2018 + Tian atlas given as the ROI source.
const LABELS_MASKER: &str = r#"
import sys, json, glob, warnings
import numpy as np, pandas as pd, nibabel as nib
warnings.filterwarnings("ignore")
from nilearn.maskers import NiftiLabelsMasker
out, atlas = sys.argv[1], sys.argv[2]
# nilearn's columns are the atlas's non-zero labels, ascending
labels = np.unique(np.rint(nib.load(atlas).get_fdata()).astype(int))
labels = labels[labels != 0].tolist()
worst, n, runs = 0.0, 0, 0
for tsv in sorted(glob.glob(f"{out}/sub-*/ses-*/perf/*_space-MNI152NLin6Asym_res-2_desc-roi_cbf.tsv")):
    runs += 1
    side = json.load(open(tsv[:-4] + ".json"))
    masker = NiftiLabelsMasker(labels_img=atlas, strategy="mean", resampling_target=None)
    values = np.atleast_2d(masker.fit_transform(nib.load(tsv.replace("_desc-roi_cbf.tsv", "_cbf.nii.gz"))))[0]
    by_label = dict(zip(labels, values))
    table = pd.read_csv(tsv, sep="\t").set_index("region")
    for name, ls in side["Regions"].items():
        a, b = table.loc[name, "mean_cbf"], by_label[ls[0]]
        worst = max(worst, abs(a - b) / abs(b)); n += 1
print(f"runs {runs} regions {n} largest relative difference {worst:.3e}")
"#;

#[test]
#[ignore = "needs python3 with nilearn, pandas and nibabel (installed by .ci/run)"]
fn nilearn_labels_masker_reproduces_the_roi_tables_of_a_schaefer_atlas() {
    let data = cbflow_testdata::resources_for(&["MNI152NLin6Asym", "schaefer100tian"]);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    let spec = cbflow_synth::SynthSpec {
        subjects: 2,
        seed: 5,
        templates: Some(data.clone()),
        ..Default::default()
    };
    cbflow_synth::generate(&spec, &root).unwrap();
    let dir = data.join("atlases/schaefer2018_tian2020");
    let stem = "Schaefer2018_100Parcels_7Networks_order_Tian_Subcortex_S1";
    let atlas = dir.join(format!("{stem}_MNI152NLin6Asym_2mm.nii.gz"));
    // a workflow with the atlas as its ROI source and no regions declared: one per label
    let wf = t.path().join("schaefer.yaml");
    std::fs::write(
        &wf,
        format!(
            "version: 1\nname: schaefer-rois\nsteps:\n  - id: cbf\n    op: asl-cbf\n    inputs:\n      asl: {{bids: {{datatype: perf, suffix: asl}}}}\n      t1w: {{bids: {{datatype: anat, suffix: T1w}}}}\n    params:\n      atlas:\n        image: {}\n        labels: {}\n        name: Schaefer2018 100 parcels + Tian S1\n",
            atlas.display(),
            dir.join(format!("{stem}_label.txt")).display()
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    run_level(&root, &out, "participant")
        .args(["--participant-label", "01", "--resources"])
        .arg(&data)
        .arg("--workflow")
        .arg(&wf)
        .assert()
        .success();
    let text = python(
        LABELS_MASKER,
        &[&out, &atlas],
        "nilearn NiftiLabelsMasker vs cbflow: ",
    );
    let num = |key: &str| number_after(&text, key);
    // 4 runs × 116 parcels (100 cortical, 16 subcortical)
    assert_eq!(num("runs "), 4.0, "{text}");
    assert_eq!(num("regions "), 464.0, "{text}");
    assert!(num("difference ") < 1e-4, "{text}");
}

/// nibabel reads the intent and degrees of freedom of cbflow's t maps, and nilearn's
/// `plot_stat_map` draws one.
const STAT_MAP: &str = r#"
import sys, glob, json, nibabel as nib, matplotlib
matplotlib.use("Agg")
from nilearn import plotting
out, png = sys.argv[1], sys.argv[2]
maps = sorted(glob.glob(f"{out}/*_stat-t_statmap.nii.gz"))
for m in maps:
    intent, params, _ = nib.load(m).header.get_intent()
    assert intent == "t test", (m, intent)
    side = json.load(open(m.replace(".nii.gz", ".json")))
    assert params[0] == side["DegreesOfFreedom"], (m, params, side["DegreesOfFreedom"])
    print(f"{m.rsplit('/', 1)[1]}: {intent} df {params[0]:g}")
plotting.plot_stat_map(maps[0], threshold=2.0, output_file=png)
print(f"maps {len(maps)}")
"#;

#[test]
#[ignore = "needs python3 with nilearn, matplotlib and nibabel (installed by .ci/run)"]
fn nibabel_reads_the_t_intent_and_nilearn_plots_a_t_map() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    cbflow_synth::generate(
        &cbflow_synth::SynthSpec {
            subjects: 4,
            seed: 9,
            ..Default::default()
        },
        &root,
    )
    .unwrap();
    let out = t.path().join("out");
    for (level, extra) in [
        ("participant", vec![]),
        ("group", vec!["--permutations", "50"]),
    ] {
        run_level(&root, &out, level)
            .args(["--template", "phantom"])
            .args(extra)
            .assert()
            .success();
    }
    let png = t.path().join("t.png");
    let text = python(STAT_MAP, &[&out, &png], "");
    // the four contrasts of the study on 4 subjects, each with the mean and the crossover's
    // sequence (order of pre-treatments) in the model: df 4 − 2
    assert!(text.contains("maps 4"), "{text}");
    assert_eq!(text.matches("t test df 2").count(), 4, "{text}");
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "an empty figure"
    );
}
