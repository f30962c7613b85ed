//! Every NIfTI listed in `shared/data/INVENTORY.tsv` reads with the listed shape, voxel size,
//! datatype, byte order, qform/sform codes and value range, and the orientation seen in its affine.

use cbflow_image::{orientation, read, read_header};

use crate::data_dir;

/// Files stored RAS (positive x step); every other inventory file is LAS. Verified by hand
/// against the affines (sign of the x column; nibabel `aff2axcodes` agrees).
const RAS_FILES: &[&str] = &[
    "atlases/aal3/AAL3v1_1mm.nii.gz",
    "atlases/aal3/tpl-MNI152NLin6Asym_res-02_atlas-AAL3_dseg.nii.gz",
    "pet/hansen_receptorvar/NMDA_ge179_hc29_galovic_mean.nii.gz",
    "pet/opioid_shokrikojori2022/Opioid_Segments.nii.gz",
    "templates/mni152nlin2009casym_2mm/",
    "templates/nilearn_icbm152_2009a_1mm/",
];

/// True when `x` prints as `printed` with 4 significant digits (`%.4g`): exact for a printed
/// zero, else within half a unit of the 4th significant digit.
fn matches_printed(x: f64, printed: &str) -> bool {
    let p: f64 = printed.parse().expect("numeric value in inventory");
    if p == 0.0 {
        return x == 0.0;
    }
    let unit = 10f64.powf(p.abs().log10().floor() - 3.0);
    (x - p).abs() <= 0.5 * unit * (1.0 + 1e-9)
}

#[test]
fn every_inventory_nifti_reads_as_listed() {
    let dir = data_dir();
    let tsv = std::fs::read_to_string(dir.join("INVENTORY.tsv")).expect("read INVENTORY.tsv");
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().expect("header line").split('\t').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (c_file, c_shape, c_vox) = (col("file"), col("shape"), col("voxel_mm"));
    let (c_min, c_max, c_dtype, c_bo) = (
        col("value_min"),
        col("value_max"),
        col("dtype"),
        col("byte_order"),
    );
    let (c_q, c_s) = (col("qform_code"), col("sform_code"));
    let mut n = 0;
    let mut failures = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let rel = f[c_file];
        let path = dir.join(rel);
        let vol = read(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let hdr = read_header(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut fail = |what: &str, got: String, want: &str| {
            failures.push(format!("{rel}: {what}: got {got}, listed {want}"))
        };

        let shape: Vec<usize> = f[c_shape].split('x').map(|s| s.parse().unwrap()).collect();
        if vol.data.shape() != shape.as_slice() || hdr.dims != shape {
            fail(
                "shape",
                format!("{:?} / {:?}", vol.data.shape(), hdr.dims),
                f[c_shape],
            );
        }
        let vox: Vec<f64> = f[c_vox].split('x').map(|s| s.parse().unwrap()).collect();
        let vs = vol.grid().voxel_size();
        if vs.iter().zip(&vox).any(|(a, b)| (a - b).abs() > 1e-4) {
            fail("voxel size", format!("{vs:?}"), f[c_vox]);
        }
        if vol.info.datatype != f[c_dtype] || hdr.datatype != f[c_dtype] {
            fail("dtype", vol.info.datatype.clone(), f[c_dtype]);
        }
        let big = match f[c_bo] {
            "BIG" | "big" => true,
            "little" => false,
            other => panic!("{rel}: unknown byte order {other}"),
        };
        if vol.info.big_endian != big {
            fail(
                "byte order",
                format!("big_endian={}", vol.info.big_endian),
                f[c_bo],
            );
        }
        if hdr.qform_code.to_string() != f[c_q] || hdr.sform_code.to_string() != f[c_s] {
            fail(
                "codes",
                format!("q{} s{}", hdr.qform_code, hdr.sform_code),
                &format!("q{} s{}", f[c_q], f[c_s]),
            );
        }
        let (mut mn, mut mx) = (f64::INFINITY, f64::NEG_INFINITY);
        let values = vol
            .data
            .as_slice_memory_order()
            .expect("read gives contiguous data");
        for &v in values.iter().filter(|v| v.is_finite()) {
            mn = mn.min(f64::from(v));
            mx = mx.max(f64::from(v));
        }
        if !matches_printed(mn, f[c_min]) || !matches_printed(mx, f[c_max]) {
            fail(
                "value range",
                format!("{mn}..{mx}"),
                &format!("{}..{}", f[c_min], f[c_max]),
            );
        }
        let want_or = if RAS_FILES.iter().any(|p| rel.starts_with(p)) {
            "RAS"
        } else {
            "LAS"
        };
        let or = orientation(&vol.affine);
        if or != want_or {
            fail("orientation", or, want_or);
        }
        // The affine source follows the NIfTI rule: every listed file has sform_code > 0.
        if hdr.sform_code > 0 && (vol.info.affine_source != "sform" || vol.affine != hdr.sform) {
            fail("affine source", vol.info.affine_source.clone(), "sform");
        }
        n += 1;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(n, 68, "expected 68 inventory rows");
}

#[test]
fn qform_matches_sform_where_both_are_set() {
    // Files with both codes > 0 should have consistent qform and sform (to f32 precision of the
    // quaternion): checks the quaternion decoding on real headers, LAS (qfac -1 or a 180°
    // rotation) and RAS alike.
    let dir = data_dir();
    for rel in [
        "pet/juspace_v1.5/5HT1a_WAY_HC36.nii.gz",
        "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz",
        "templates/mni152nlin2009casym_2mm/tpl-MNI152NLin2009cAsym_res-02_T1w.nii.gz",
        "atlases/aal3/AAL3v1_1mm.nii.gz",
    ] {
        let h = read_header(&dir.join(rel)).unwrap();
        assert!(h.qform_code > 0 && h.sform_code > 0, "{rel}");
        let diff = (h.qform - h.sform).abs().max();
        assert!(diff < 1e-3, "{rel}: qform {} vs sform {}", h.qform, h.sform);
    }
}
