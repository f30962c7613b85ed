//! cbflow's written transforms applied by a peer tool: ANTsPy (`antspyx` from PyPI, installed by
//! `.ci/run`) reads the ITK warp (5D, LPS, intent 1007) and affine that `cbflow normalise`
//! writes, and must reproduce cbflow's own template-space image of the real MPRAGE.

use std::process::Command;

use crate::{cbflow, shared_data};

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
    let data = shared_data();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("norm");
    cbflow()
        .arg("normalise")
        .arg(data.join("real-anat/sub-01_T1w.nii.gz"))
        .arg(&out)
        .arg("--resources")
        .arg(&data)
        .assert()
        .success();
    let template = data.join("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz");
    let o = Command::new("python3")
        .args(["-c", CHECK])
        .arg(&out)
        .arg(&template)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("ANTs vs cbflow: {text}");
    let num = |key: &str| -> f64 {
        text.split(key)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(')')
            .parse()
            .unwrap()
    };
    let (r, rel, r0) = (num("r "), num("difference "), num("affine only: r "));
    assert!(r > 0.999, "ANTs' image correlates r {r} with cbflow's");
    assert!(rel < 0.01, "median relative difference {rel}");
    assert!(
        r0 < r - 0.005,
        "the warp changes nothing (affine only r {r0})"
    );
}
