//! `describe` prints what `fslhd`/`mrinfo` would, for a real big-endian 3D map and a 4D file.

use cbflow_image::{DataType, Volume, describe, write};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn};

#[test]
fn describes_a_big_endian_juspace_map() {
    let p = cbflow_testdata::resource("pet/juspace_v1.5/5HT1a_WAY_HC36.nii.gz");
    let d = describe(&p).unwrap();
    assert_eq!(d.shape, vec![61, 73, 61]);
    assert_eq!(d.orientation, "LAS");
    assert!(d.header.big_endian);
    let (lo, hi) = d.range.unwrap();
    assert!(lo == 0.0 && (hi - 100.0).abs() < 1e-4, "{lo} {hi}");
    let text = d.to_string();
    for want in [
        "shape:         61 x 73 x 61",
        "voxel size:    3 x 3 x 3 mm",
        "orientation:   LAS",
        "datatype:      float32 (code 16, bitpix 32)",
        "byte order:    big-endian",
        "qform_code:    2 (aligned_anat)",
        "sform_code:    2 (aligned_anat)",
        "affine from:   sform",
        "value range:   0 .. 99.99999",
        "-3.0000",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("TR:"));
}

#[test]
fn describes_a_4d_int16_file_with_scaling() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<f32> = (0..4 * 3 * 2 * 5).map(|i| i as f32 * 0.5 - 3.0).collect();
    let mut a = Matrix4::identity() * 2.5;
    a[(3, 3)] = 1.0;
    let mut vol = Volume::new(
        ArrayD::from_shape_vec(IxDyn(&[4, 3, 2, 5]), data).unwrap(),
        a,
    )
    .unwrap();
    vol.info.pixdim[3] = 4.1;
    let p = dir.path().join("asl.nii");
    write(&p, &vol, DataType::Int16).unwrap();
    let text = describe(&p).unwrap().to_string();
    for want in [
        "shape:         4 x 3 x 2 x 5",
        "TR:            4.1 s (5 volumes)",
        "orientation:   RAS",
        "int16",
        "little-endian",
        "value = stored *",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}
