//! Write → read round trips: data and affine exact for every datatype, `.nii` and `.nii.gz`,
//! 3D and 4D, and big-endian input.

use cbflow_image::{DataType, Volume, read, read_header, write};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ALL: [DataType; 5] = [
    DataType::Uint8,
    DataType::Int16,
    DataType::Int32,
    DataType::Float32,
    DataType::Float64,
];

/// An oblique LAS-like affine with `f32`-representable entries (as every NIfTI-1 affine is).
fn oblique_affine() -> Matrix4<f64> {
    let (s, c) = (0.2f64.sin(), 0.2f64.cos());
    let m = Matrix4::new(
        -2.0 * c,
        0.0,
        3.0 * s,
        91.5, //
        0.0,
        2.5,
        0.0,
        -120.25, //
        -2.0 * s,
        0.0,
        -3.0 * c,
        70.0, //
        0.0,
        0.0,
        0.0,
        1.0,
    );
    m.map(|v| f64::from(v as f32))
}

fn whole_number_volume(shape: &[usize], rng: &mut ChaCha8Rng) -> Volume {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(0..=200) as f32).collect();
    let mut v = Volume::new(
        ArrayD::from_shape_vec(IxDyn(shape), data).unwrap(),
        oblique_affine(),
    )
    .unwrap();
    v.info.pixdim[3] = 2.75;
    v.info.description = "round trip".into();
    v
}

#[test]
fn every_dtype_and_extension_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for shape in [vec![7usize, 5, 4], vec![6, 5, 4, 3]] {
        let vol = whole_number_volume(&shape, &mut rng);
        for dt in ALL {
            for ext in ["nii", "nii.gz"] {
                let p = dir
                    .path()
                    .join(format!("v_{}_{}d.{ext}", dt.name(), shape.len()));
                write(&p, &vol, dt).unwrap();
                let back = read(&p).unwrap();
                assert_eq!(back.data, vol.data, "{p:?}");
                assert_eq!(back.affine, vol.affine, "{p:?}");
                assert_eq!(back.info.datatype, dt.name());
                assert!(!back.info.big_endian);
                assert_eq!(
                    (back.info.scl_slope, back.info.scl_inter),
                    (1.0, 0.0),
                    "whole numbers need no scaling"
                );
                assert_eq!(back.info.description, "round trip");
                let h = read_header(&p).unwrap();
                assert_eq!(h.compressed, ext == "nii.gz");
                assert_eq!((h.sform_code, h.qform_code), (2, 2));
                assert_eq!(h.xyzt_units, 10);
                assert!(
                    (h.qform - vol.affine).abs().max() < 1e-4,
                    "qform {} vs {}",
                    h.qform,
                    vol.affine
                );
                if shape.len() == 4 {
                    assert_eq!(back.info.pixdim[3], 2.75);
                }
            }
        }
    }
    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn float32_is_bit_exact_including_special_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let shape = [9usize, 8, 7, 2];
    let mut data: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| f32::from_bits(rng.random::<u32>()))
        .collect();
    data[..6].copy_from_slice(&[
        f32::NAN,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE / 8.0,
        1.0e-45,
    ]);
    let vol = Volume::new(
        ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap(),
        oblique_affine(),
    )
    .unwrap();
    for ext in ["nii", "nii.gz"] {
        let p = dir.path().join(format!("f.{ext}"));
        write(&p, &vol, DataType::Float32).unwrap();
        let back = read(&p).unwrap();
        // Compare bits in logical order (the layouts may differ).
        let a: Vec<u32> = vol.data.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = back.data.iter().map(|v| v.to_bits()).collect();
        assert!(a == b, "{ext}: float32 data not bit-exact");
        assert_eq!(back.affine, vol.affine);
    }
}

#[test]
fn integer_types_quantise_fractional_data_within_half_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let shape = [10usize, 9, 8];
    let data: Vec<f32> = (0..720)
        .map(|_| rng.random_range(-37.5f32..112.25))
        .collect();
    let vol = Volume::new(
        ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap(),
        oblique_affine(),
    )
    .unwrap();
    for (dt, levels) in [
        (DataType::Uint8, 255.0),
        (DataType::Int16, 65535.0),
        (DataType::Int32, 4294967295.0),
    ] {
        let p = dir.path().join(format!("q_{}.nii.gz", dt.name()));
        write(&p, &vol, dt).unwrap();
        let back = read(&p).unwrap();
        let step = (112.25 - -37.5) / levels;
        // Half a step, plus f32 rounding of values near 112 (≈ 4e-6).
        let tol = 0.5 * step + 1e-5;
        let err = back
            .data
            .iter()
            .zip(vol.data.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            f64::from(err) <= tol,
            "{}: max error {err} > {tol}",
            dt.name()
        );
        assert_ne!(back.info.scl_slope, 1.0);
    }
    // NaN cannot be stored in an integer type.
    let mut bad = vol.clone();
    bad.data[[0, 0, 0]] = f32::NAN;
    assert!(write(&dir.path().join("nan.nii"), &bad, DataType::Int16).is_err());
    assert!(write(&dir.path().join("x.img"), &vol, DataType::Int16).is_err());
}

#[test]
fn big_endian_input_reads_back_identically_after_rewrite() {
    // A big-endian float32 JuSpace map rewritten (little-endian) reads back bit-exactly.
    let src = cbflow_testdata::resource("pet/juspace_v1.5/5HT1a_WAY_HC36.nii.gz");
    let vol = read(&src).unwrap();
    assert!(vol.info.big_endian);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("le.nii.gz");
    write(&p, &vol, DataType::Float32).unwrap();
    let back = read(&p).unwrap();
    assert!(!back.info.big_endian);
    assert!(
        back.data
            .iter()
            .zip(vol.data.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(back.affine, vol.affine);
    assert_eq!((back.info.sform_code, back.info.qform_code), (2, 2));
}

/// Byte-swap every multi-byte numeric field of a NIfTI-1 header and the data (element `size`).
fn to_big_endian(bytes: &mut [u8], size: usize) {
    let swap = |b: &mut [u8], off: usize, n: usize| b[off..off + n].reverse();
    swap(bytes, 0, 4);
    swap(bytes, 32, 4);
    swap(bytes, 36, 2);
    for off in (40..56)
        .step_by(2)
        .chain((68..76).step_by(2))
        .chain([120, 252, 254])
    {
        swap(bytes, off, 2);
    }
    for off in (56..68)
        .step_by(4)
        .chain((76..120).step_by(4))
        .chain((124..148).step_by(4))
        .chain((256..328).step_by(4))
    {
        swap(bytes, off, 4);
    }
    for off in (352..bytes.len()).step_by(size) {
        swap(bytes, off, size);
    }
}

#[test]
fn handmade_big_endian_files_match_little_endian_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let data: Vec<f32> = (0..6 * 5 * 4 * 2)
        .map(|_| rng.random_range(-3.0f32..9.0))
        .collect();
    let vol = Volume::new(
        ArrayD::from_shape_vec(IxDyn(&[6, 5, 4, 2]), data).unwrap(),
        oblique_affine(),
    )
    .unwrap();
    for (dt, size) in [
        (DataType::Int16, 2),
        (DataType::Int32, 4),
        (DataType::Float32, 4),
        (DataType::Float64, 8),
    ] {
        let le = dir.path().join(format!("le_{}.nii", dt.name()));
        write(&le, &vol, dt).unwrap();
        let mut bytes = std::fs::read(&le).unwrap();
        to_big_endian(&mut bytes, size);
        let be = dir.path().join(format!("be_{}.nii", dt.name()));
        std::fs::write(&be, &bytes).unwrap();
        let (a, b) = (read(&le).unwrap(), read(&be).unwrap());
        assert!(b.info.big_endian && !a.info.big_endian);
        assert_eq!(a.data, b.data, "{}", dt.name());
        assert_eq!(a.affine, b.affine);
        assert_eq!(
            (a.info.scl_slope, a.info.scl_inter),
            (b.info.scl_slope, b.info.scl_inter)
        );
    }
}

#[test]
fn failed_write_leaves_nothing_behind_and_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let vol = whole_number_volume(&[5, 4, 3], &mut rng);
    // The final rename fails: the destination is a directory.
    let blocked = dir.path().join("blocked.nii.gz");
    std::fs::create_dir(&blocked).unwrap();
    assert!(matches!(
        write(&blocked, &vol, DataType::Float32),
        Err(cbflow_image::Error::Io { .. })
    ));
    // Overwriting an existing file replaces it whole.
    let p = dir.path().join("v.nii");
    write(&p, &vol, DataType::Int16).unwrap();
    let mut vol2 = vol.clone();
    vol2.data.mapv_inplace(|v| v + 1.0);
    write(&p, &vol2, DataType::Int16).unwrap();
    assert_eq!(read(&p).unwrap().data, vol2.data);
    // A directory that does not exist: an error, nothing created.
    assert!(write(&dir.path().join("nope/v.nii"), &vol, DataType::Int16).is_err());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["blocked.nii.gz", "v.nii"]);
}

#[test]
fn header_extensions_before_vox_offset_are_skipped() {
    // Insert a 16-byte extension (flag byte set) and move vox_offset to 368.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let vol = whole_number_volume(&[5, 4, 3], &mut rng);
    let p = dir.path().join("plain.nii");
    write(&p, &vol, DataType::Int16).unwrap();
    let b = std::fs::read(&p).unwrap();
    let mut e = b[..348].to_vec();
    e[108..112].copy_from_slice(&368f32.to_le_bytes());
    e.extend_from_slice(&[1, 0, 0, 0]);
    e.extend_from_slice(&16i32.to_le_bytes());
    e.extend_from_slice(&6i32.to_le_bytes());
    e.extend_from_slice(&[b'x'; 8]);
    e.extend_from_slice(&b[352..]);
    let q = dir.path().join("ext.nii");
    std::fs::write(&q, &e).unwrap();
    assert_eq!(read(&q).unwrap().data, vol.data);
    assert_eq!(read_header(&q).unwrap().vox_offset, 368);
}

/// A 5D NIfTI vector image `[x, y, z, 1, 3]` with an intent (ITK displacement fields) is
/// written with `dim[0] = 5` and read back as `[x, y, z, 3]` with its intent code, name and
/// parameters; nibabel reads the same file as 5D (checked in CI by the ANTs test).
#[test]
fn vector_images_and_intents_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let data: Vec<f32> = (0..4 * 3 * 2 * 3)
        .map(|_| rng.random::<f32>() - 0.5)
        .collect();
    let five = ArrayD::from_shape_vec(IxDyn(&[4, 3, 2, 1, 3]), data.clone()).unwrap();
    let mut v = Volume::new(ArrayD::zeros(IxDyn(&[4, 3, 2])), oblique_affine()).unwrap();
    v.data = five.clone();
    v.info.intent_code = 1007;
    v.info.intent_name = "ITK Displacemen".into();
    v.info.intent_p = [3.0, 0.0, 0.0];
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("warp.nii.gz");
    write(&p, &v, DataType::Float32).unwrap();
    let h = read_header(&p).unwrap();
    assert_eq!(h.dims, vec![4, 3, 2, 1, 3]);
    let back = read(&p).unwrap();
    assert_eq!(back.data.shape(), &[4, 3, 2, 3]);
    for i in 0..4 {
        for j in 0..3 {
            for k in 0..2 {
                for c in 0..3 {
                    assert_eq!(back.data[[i, j, k, c]], five[[i, j, k, 0, c]]);
                }
            }
        }
    }
    assert_eq!(back.info.intent_code, 1007);
    assert_eq!(back.info.intent_name, "ITK Displacemen");
    assert_eq!(back.info.intent_p, [3.0, 0.0, 0.0]);
    assert!((back.affine - v.affine).abs().max() < 1e-4);
    // a 5D image that is not a vector image is still refused
    let mut bad = v.clone();
    bad.data = ArrayD::zeros(IxDyn(&[4, 3, 2, 2, 3]));
    assert!(write(&dir.path().join("bad.nii"), &bad, DataType::Float32).is_err());
}
