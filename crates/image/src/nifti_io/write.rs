//! Writing a NIfTI-1 file: the data in the chosen type, with a header that round-trips.

use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::affine::affine_to_quatern;
use super::read::integer_scaling;
use super::types::{CHUNK, DataType, HEADER_SIZE, Stored, VOX_OFFSET, io_err};
use crate::{Error, Result, Volume};

/// Write a volume as NIfTI-1 (`.nii`, or gzip level 6 for `.nii.gz`), atomically
/// ([`write_atomically`](crate::write_atomically) with [`Durability::Atomic`](crate::Durability::Atomic)):
/// readers never see a partial file and nothing is left behind on error (no fsync: not durable
/// against power loss).
///
/// Header: little-endian; `sform` = the affine with `sform_code` from [`VolumeInfo::sform_code`](crate::VolumeInfo::sform_code)
/// (2, "aligned", when 0); a qform from the same affine (quaternion, qfac, voxel sizes) with
/// [`VolumeInfo::qform_code`](crate::VolumeInfo::qform_code) (else the sform code) when the affine is a rotation/reflection
/// times scaling, else `qform_code` 0; `pixdim[1..=3]` the affine's column lengths, `pixdim[4]`
/// the TR from [`VolumeInfo::pixdim`](crate::VolumeInfo::pixdim) for 4D; `xyzt_units` mm and s; `descrip` from
/// [`VolumeInfo::description`](crate::VolumeInfo::description) (first 79 bytes). The affine is stored as `f32`, so it round-trips
/// exactly when its entries are `f32` values (always, for affines read from NIfTI-1 files).
///
/// Integer types get `scl_slope`/`scl_inter`: identity when the data are whole numbers in range,
/// else the linear map of the data's `[min, max]` onto the type's range (error ≤ half a step).
/// `float32` is written bit-exactly.
///
/// # Errors
/// [`Error::Invalid`] for a path not ending in `.nii`/`.nii.gz`, a dimension above 32767, or
/// non-finite values with an integer type; [`Error::Io`] when writing fails.
pub fn write(path: &Path, vol: &Volume, dtype: DataType) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let gz = if name.ends_with(".nii.gz") {
        true
    } else if name.ends_with(".nii") {
        false
    } else {
        return Err(Error::Invalid(format!(
            "{}: output must end in .nii or .nii.gz",
            path.display()
        )));
    };
    let shape = vol.data.shape().to_vec();
    // 5D only as NIfTI vector images: [x, y, z, 1, components] (ITK displacement fields)
    let vector = shape.len() == 5 && shape[3] == 1;
    if !(shape.len() == 3 || shape.len() == 4 || vector) {
        return Err(Error::Invalid(format!(
            "{}: a volume must be 3D, 4D or a 5D vector image [x, y, z, 1, n], got shape {shape:?}",
            path.display()
        )));
    }
    if let Some(&d) = shape.iter().find(|&&d| d == 0 || d > i16::MAX as usize) {
        return Err(Error::Invalid(format!(
            "{}: dimension {d} cannot be stored in NIfTI-1 (1..=32767)",
            path.display()
        )));
    }
    if vol.affine.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidAffine(format!(
            "non-finite affine {}",
            vol.affine
        )));
    }
    let st = dtype.stored();
    let (slope, inter) = match st {
        Stored::U8 => integer_scaling(&vol.data, 0.0, 255.0),
        Stored::I16 => integer_scaling(&vol.data, -32768.0, 32767.0),
        Stored::I32 => integer_scaling(&vol.data, -2147483648.0, 2147483647.0),
        _ => Ok((1.0, 0.0)),
    }
    .map_err(|m| Error::Invalid(format!("{}: {m}", path.display())))?;
    let header = build_header(vol, st, slope, inter);

    crate::write_atomically(path, crate::Durability::Atomic, |file| {
        let buffered = BufWriter::with_capacity(1 << 20, file);
        if gz {
            let mut enc = GzEncoder::new(buffered, Compression::new(6));
            write_body(&mut enc, &header, vol, st, slope, inter)?;
            enc.finish()?.into_inner().map_err(|e| e.into_error())?;
        } else {
            let mut w = buffered;
            write_body(&mut w, &header, vol, st, slope, inter)?;
            w.into_inner().map_err(|e| e.into_error())?;
        }
        Ok(())
    })
    .map_err(|e| io_err(path, e))
}

pub(super) fn write_body(
    w: &mut dyn Write,
    header: &[u8; HEADER_SIZE],
    vol: &Volume,
    st: Stored,
    slope: f64,
    inter: f64,
) -> std::io::Result<()> {
    w.write_all(header)?;
    w.write_all(&[0u8; 4])?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 8);
    // Reversing the axes makes logical iteration order the file's order (i fastest).
    let view = vol.data.t();
    let to_int = |v: f32| ((f64::from(v) - inter) / slope).round();
    let put = |v: f32, buf: &mut Vec<u8>| match st {
        Stored::U8 => buf.push(to_int(v).clamp(0.0, 255.0) as u8),
        Stored::I16 => {
            buf.extend_from_slice(&(to_int(v).clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        }
        Stored::I32 => buf.extend_from_slice(
            &(to_int(v).clamp(-2147483648.0, 2147483647.0) as i32).to_le_bytes(),
        ),
        Stored::F32 => buf.extend_from_slice(&v.to_le_bytes()),
        Stored::F64 => buf.extend_from_slice(&f64::from(v).to_le_bytes()),
        Stored::I8 | Stored::U16 | Stored::U32 => unreachable!("not a DataType for writing"),
    };
    let mut emit = |v: f32, w: &mut dyn Write| -> std::io::Result<()> {
        put(v, &mut buf);
        if buf.len() >= CHUNK {
            w.write_all(&buf)?;
            buf.clear();
        }
        Ok(())
    };
    // Fast path: column-major data is already in file order; otherwise iterate with fixed
    // dimensionality (much faster than dynamic-dimension iteration).
    if let Some(s) = view.as_slice() {
        for &v in s {
            emit(v, w)?;
        }
    } else if let Ok(v3) = view.view().into_dimensionality::<ndarray::Ix3>() {
        for &v in v3.iter() {
            emit(v, w)?;
        }
    } else if let Ok(v4) = view.view().into_dimensionality::<ndarray::Ix4>() {
        for &v in v4.iter() {
            emit(v, w)?;
        }
    } else {
        for &v in view.iter() {
            emit(v, w)?;
        }
    }
    w.write_all(&buf)
}

pub(super) fn build_header(vol: &Volume, st: Stored, slope: f64, inter: f64) -> [u8; HEADER_SIZE] {
    let mut b = [0u8; HEADER_SIZE];
    let put_i16 = |b: &mut [u8; HEADER_SIZE], off: usize, v: i16| {
        b[off..off + 2].copy_from_slice(&v.to_le_bytes())
    };
    let put_f32 = |b: &mut [u8; HEADER_SIZE], off: usize, v: f64| {
        b[off..off + 4].copy_from_slice(&(v as f32).to_le_bytes())
    };
    b[0..4].copy_from_slice(&348i32.to_le_bytes());
    b[38] = b'r';
    let shape = vol.data.shape();
    put_i16(&mut b, 40, shape.len() as i16);
    for (i, &d) in shape.iter().enumerate() {
        put_i16(&mut b, 42 + 2 * i, d as i16);
    }
    for i in shape.len()..7 {
        put_i16(&mut b, 42 + 2 * i, 1);
    }
    put_i16(&mut b, 70, st.code());
    put_i16(&mut b, 72, (st.size() * 8) as i16);

    let sform_code = if vol.info.sform_code > 0 {
        vol.info.sform_code
    } else {
        2
    };
    let quat = affine_to_quatern(&vol.affine);
    let zoom = vol.grid().voxel_size();
    let qfac = quat.map_or(1.0, |q| q.1);
    let mut pixdim = [qfac, zoom[0], zoom[1], zoom[2], 1.0, 1.0, 1.0, 1.0];
    if shape.len() == 4 {
        pixdim[4] = vol.info.pixdim[3];
    }
    for (i, p) in pixdim.iter().enumerate() {
        put_f32(&mut b, 76 + 4 * i, *p);
    }
    put_f32(&mut b, 108, VOX_OFFSET as f64);
    put_f32(&mut b, 112, slope);
    put_f32(&mut b, 116, inter);
    b[123] = 2 | 8; // NIFTI_UNITS_MM | NIFTI_UNITS_SEC
    for (i, p) in vol.info.intent_p.iter().enumerate() {
        put_f32(&mut b, 56 + 4 * i, *p);
    }
    put_i16(&mut b, 68, vol.info.intent_code);
    let iname = vol.info.intent_name.as_bytes();
    let n = iname.len().min(15);
    b[328..328 + n].copy_from_slice(&iname[..n]);
    let desc = vol.info.description.as_bytes();
    let n = desc.len().min(79);
    b[148..148 + n].copy_from_slice(&desc[..n]);
    match quat {
        Some((q, _, _)) => {
            let qcode = if vol.info.qform_code > 0 {
                vol.info.qform_code
            } else {
                sform_code
            };
            put_i16(&mut b, 252, qcode);
            for i in 0..3 {
                put_f32(&mut b, 256 + 4 * i, q[i]);
                put_f32(&mut b, 268 + 4 * i, vol.affine[(i, 3)]);
            }
        }
        None => put_i16(&mut b, 252, 0),
    }
    put_i16(&mut b, 254, sform_code);
    for r in 0..3 {
        for c in 0..4 {
            put_f32(&mut b, 280 + 4 * (4 * r + c), vol.affine[(r, c)]);
        }
    }
    b[344..348].copy_from_slice(b"n+1\0");
    b
}
