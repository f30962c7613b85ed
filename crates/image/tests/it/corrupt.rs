//! Corrupt or unsupported input gives `Error::InvalidNifti` naming the field, never a panic.

use std::path::Path;

use cbflow_image::{DataType, Error, Volume, read, read_header, write};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn small_volume() -> Volume {
    let data: Vec<f32> = (0..8 * 6 * 5).map(|i| i as f32).collect();
    Volume::new(
        ArrayD::from_shape_vec(IxDyn(&[8, 6, 5]), data).unwrap(),
        Matrix4::identity(),
    )
    .unwrap()
}

fn field_of(e: &Error) -> Option<&str> {
    match e {
        Error::InvalidNifti { field, .. } => Some(field),
        _ => None,
    }
}

fn expect_field(path: &Path, want: &str) {
    let e = read(path).expect_err("corrupt file must not read");
    assert_eq!(field_of(&e), Some(want), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains(want),
        "{msg}"
    );
}

/// Write a valid `.nii`, patch it, and return its path.
fn patched(dir: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
    let p = dir.join(name);
    write(&p, &small_volume(), DataType::Int16).unwrap();
    let mut b = std::fs::read(&p).unwrap();
    patch(&mut b);
    std::fs::write(&p, &b).unwrap();
    p
}

#[test]
fn truncated_gzip_is_invalid_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.nii.gz");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let data: Vec<f32> = (0..40 * 40 * 30).map(|_| rng.random::<f32>()).collect();
    let vol = Volume::new(
        ArrayD::from_shape_vec(IxDyn(&[40, 40, 30]), data).unwrap(),
        Matrix4::identity(),
    )
    .unwrap();
    write(&p, &vol, DataType::Float32).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    expect_field(&p, "data");
    // A corrupted CRC-32 in the gzip trailer is caught.
    let mut bad_crc = bytes.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    std::fs::write(&p, &bad_crc).unwrap();
    expect_field(&p, "data");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    // The header still reads: only the data are cut.
    assert!(read_header(&p).is_ok());
    // Cut inside the header.
    std::fs::write(&p, &bytes[..60]).unwrap();
    expect_field(&p, "header");
    assert_eq!(field_of(&read_header(&p).unwrap_err()), Some("header"));
}

#[test]
fn impossible_dims_are_invalid_dim() {
    let dir = tempfile::tempdir().unwrap();
    let p = patched(dir.path(), "d9.nii", |b| {
        b[40..42].copy_from_slice(&9i16.to_le_bytes())
    });
    expect_field(&p, "dim");
    assert_eq!(field_of(&read_header(&p).unwrap_err()), Some("dim"));
    let p = patched(dir.path(), "neg.nii", |b| {
        b[44..46].copy_from_slice(&(-4i16).to_le_bytes())
    });
    expect_field(&p, "dim");
    let p = patched(dir.path(), "zero.nii", |b| {
        b[46..48].copy_from_slice(&0i16.to_le_bytes())
    });
    expect_field(&p, "dim");
    // dims say more data than the file holds.
    let p = patched(dir.path(), "short.nii", |b| {
        b[42..44].copy_from_slice(&80i16.to_le_bytes())
    });
    expect_field(&p, "data");
    // Same for a compressed file (only detectable while reading the data).
    let plain = std::fs::read(&p).unwrap();
    let gz = dir.path().join("short.nii.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &plain).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    expect_field(&gz, "data");
}

#[test]
fn unknown_or_unsupported_datatype_is_invalid_datatype() {
    let dir = tempfile::tempdir().unwrap();
    let p = patched(dir.path(), "dt.nii", |b| {
        b[70..72].copy_from_slice(&999i16.to_le_bytes())
    });
    expect_field(&p, "datatype");
    let p = patched(dir.path(), "cplx.nii", |b| {
        b[70..72].copy_from_slice(&32i16.to_le_bytes())
    });
    expect_field(&p, "datatype");
}

#[test]
fn other_header_faults_name_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = patched(dir.path(), "size.nii", |b| {
        b[0..4].copy_from_slice(&347i32.to_le_bytes())
    });
    expect_field(&p, "sizeof_hdr");
    let p = patched(dir.path(), "magic.nii", |b| {
        b[344..348].copy_from_slice(b"xyz\0")
    });
    expect_field(&p, "magic");
    let p = patched(dir.path(), "vox.nii", |b| {
        b[108..112].copy_from_slice(&12.0f32.to_le_bytes())
    });
    expect_field(&p, "vox_offset");
    let p = patched(dir.path(), "srow.nii", |b| {
        b[280..284].copy_from_slice(&f32::NAN.to_le_bytes())
    });
    expect_field(&p, "srow");
    let p = patched(dir.path(), "sing.nii", |b| {
        for off in (280..328).step_by(4) {
            b[off..off + 4].copy_from_slice(&0.0f32.to_le_bytes());
        }
    });
    expect_field(&p, "srow");
    let p = patched(dir.path(), "pix.nii", |b| {
        b[80..84].copy_from_slice(&f32::INFINITY.to_le_bytes())
    });
    expect_field(&p, "pixdim");
    let empty = dir.path().join("empty.nii");
    std::fs::write(&empty, b"").unwrap();
    expect_field(&empty, "header");
    assert!(matches!(
        read(&dir.path().join("missing.nii")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn a_qform_mirrored_against_the_sform_is_refused() {
    // the writer sets both transforms, equal; qfac (pixdim[0]) −1 mirrors the qform alone
    let dir = tempfile::tempdir().unwrap();
    let p = patched(dir.path(), "qfac.nii", |b| {
        b[76..80].copy_from_slice(&(-1.0f32).to_le_bytes())
    });
    expect_field(&p, "srow/quatern");
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("left and right") && msg.contains("copysform2qform"),
        "{msg}"
    );
    // a mirror in each (the sform's x, the qform's z): the same handedness, read as the sform says
    let p = patched(dir.path(), "both.nii", |b| {
        b[76..80].copy_from_slice(&(-1.0f32).to_le_bytes());
        let x = f32::from_le_bytes(b[280..284].try_into().unwrap());
        b[280..284].copy_from_slice(&(-x).to_le_bytes());
    });
    let v = read(&p).expect("consistent transforms read");
    assert_eq!(v.affine[(0, 0)], -1.0);
    // with the qform unset (code 0) its quaternion is not used, so it cannot contradict
    let p = patched(dir.path(), "nocode.nii", |b| {
        b[76..80].copy_from_slice(&(-1.0f32).to_le_bytes());
        b[252..254].copy_from_slice(&0i16.to_le_bytes());
    });
    assert!(read(&p).is_ok());
}

#[test]
fn random_corruption_never_panics() {
    // Flip random header and data bytes of a valid file (plain and gzip): reading must return
    // Ok or an error, never panic or attempt an absurd allocation.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.nii");
    write(&good, &small_volume(), DataType::Float32).unwrap();
    let base = std::fs::read(&good).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let p = dir.path().join("fuzz.nii");
    let mut n_err = 0;
    for _ in 0..300 {
        let mut b = base.clone();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..352);
            b[i] = rng.random();
        }
        if rng.random_bool(0.2) {
            b.truncate(rng.random_range(0..b.len()));
        }
        std::fs::write(&p, &b).unwrap();
        let r = read(&p);
        let h = read_header(&p);
        if let Err(e) = &r {
            n_err += 1;
            assert!(matches!(e, Error::InvalidNifti { .. }), "{e}");
        }
        if r.is_ok() {
            assert!(h.is_ok());
        }
    }
    assert!(n_err > 0);
}
