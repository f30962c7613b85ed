//! Reading a NIfTI-1 file: the header, then the data decoded and scaled to f32.

use std::io::Read;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use super::header::{open, parse_header, read_full, read_header_bytes};
use super::types::{CHUNK, HEADER_SIZE, Header, Stored, invalid};
use crate::{Result, Volume, VolumeInfo};

/// Read only the header of a `.nii` or `.nii.gz` file (gzip is recognised by its magic bytes,
/// not the extension), decompressing no more than the first few kilobytes.
///
/// Validates the header as [`read()`] does; for an uncompressed file it also checks that the
/// file is long enough for the data the dims announce (a compressed file's data length is only
/// checked by [`read()`]).
pub fn read_header(path: &Path) -> Result<Header> {
    let (mut r, gz, len) = open(path)?;
    let hdr = read_header_bytes(path, &mut *r)?;
    parse_header(path, &hdr, gz, (!gz).then_some(len))
}

/// Read a 3D or 4D NIfTI-1 image (`.nii` or `.nii.gz`) into a [`Volume`].
///
/// Values are converted to `f32` with `scl_slope`/`scl_inter` applied (in `f64`, then rounded
/// to `f32`); `float32` files without scaling are read bit-exactly (NaNs included). The affine
/// follows the NIfTI rules (see [`Header::affine`]). Files of fewer than three dimensions are
/// padded to 3D with unit dimensions; dimensions beyond the fourth must be 1.
///
/// The array has shape `[nx, ny, nz]` or `[nx, ny, nz, nt]` and is stored in the file's order
/// (column-major, `i` fastest), which makes reading a copy-free decode; index it logically
/// (`data[[i, j, k]]`) or use `as_slice_memory_order`.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) when the file cannot be opened; [`Error::InvalidNifti`](crate::Error::InvalidNifti) naming the field for
/// a malformed header, an unsupported datatype, a truncated or corrupt gzip stream or data
/// shorter than the dims announce.
pub fn read(path: &Path) -> Result<Volume> {
    let (mut r, gz, len) = open(path)?;
    let hdr_bytes = read_header_bytes(path, &mut *r)?;
    let h = parse_header(path, &hdr_bytes, gz, (!gz).then_some(len))?;
    // Skip extensions up to vox_offset.
    let skip = h.vox_offset.saturating_sub(HEADER_SIZE) as u64;
    let skipped = std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink())
        .map_err(|e| invalid(path, "data", format!("cannot read up to vox_offset: {e}")))?;
    if skipped < skip {
        return Err(invalid(
            path,
            "vox_offset",
            format!("file ends before vox_offset {}", h.vox_offset),
        ));
    }
    let data = decode_data(path, &mut *r, &h)?;
    if gz {
        // Read to the end so the gzip CRC-32 and length trailer are checked.
        std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| {
            invalid(
                path,
                "data",
                format!("gzip stream corrupt after the image data (checksum or trailer): {e}"),
            )
        })?;
    }
    let shape = h.volume_shape();
    let data = ArrayD::from_shape_vec(IxDyn(&shape).f(), data)
        .map_err(|e| invalid(path, "dim", format!("cannot shape data as {shape:?}: {e}")))?;
    let (slope, inter) = h.scaling();
    let info = VolumeInfo {
        datatype: h.datatype.clone(),
        big_endian: h.big_endian,
        scl_slope: slope,
        scl_inter: inter,
        pixdim: [
            h.pixdim[1],
            h.pixdim[2],
            h.pixdim[3],
            if shape.len() == 4 { h.pixdim[4] } else { 0.0 },
        ],
        qform_code: h.qform_code,
        sform_code: h.sform_code,
        affine_source: h.affine_source.clone(),
        description: h.descrip.clone(),
        intent_code: h.intent_code,
        intent_p: h.intent_p,
        intent_name: h.intent_name.clone(),
    };
    Ok(Volume {
        data,
        affine: h.affine,
        info,
    })
}

/// Decode `h.n_values()` values from `r` to scaled `f32`, chunk by chunk.
pub(super) fn decode_data(path: &Path, r: &mut dyn Read, h: &Header) -> Result<Vec<f32>> {
    let st = h.stored();
    let n = h.n_values();
    let total = n * st.size();
    let (slope, inter) = h.scaling();
    let scaled = !(slope == 1.0 && inter == 0.0);
    let be = h.big_endian;
    let mut out: Vec<f32> = Vec::with_capacity(n.min(1 << 26));
    let mut buf = vec![0u8; CHUNK.min(total.max(1))];
    let mut done = 0usize;
    while done < total {
        let want = buf.len().min(total - done);
        let got = read_full(r, &mut buf[..want]).map_err(|e| {
            invalid(
                path,
                "data",
                format!("corrupt or truncated data after {done} of {total} bytes: {e}"),
            )
        })?;
        if got < want {
            return Err(invalid(
                path,
                "data",
                format!(
                    "file ends after {} of {total} data bytes (dims {:?}, {})",
                    done + got,
                    h.dims,
                    h.datatype
                ),
            ));
        }
        convert(&buf[..want], st, be, scaled, slope, inter, &mut out);
        done += want;
    }
    Ok(out)
}

macro_rules! push_values {
    ($bytes:expr, $t:ty, $n:literal, $be:expr, $scaled:expr, $slope:expr, $inter:expr, $out:expr) => {{
        let it = $bytes.chunks_exact($n).map(|c| {
            let a: [u8; $n] = c.try_into().expect("chunks_exact gives $n bytes");
            if $be {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }
        });
        if $scaled {
            $out.extend(it.map(|v| (f64::from(v) * $slope + $inter) as f32));
        } else {
            $out.extend(it.map(|v| f64::from(v) as f32));
        }
    }};
}

pub(super) fn convert(
    bytes: &[u8],
    st: Stored,
    be: bool,
    scaled: bool,
    slope: f64,
    inter: f64,
    out: &mut Vec<f32>,
) {
    match st {
        Stored::U8 => push_values!(bytes, u8, 1, be, scaled, slope, inter, out),
        Stored::I8 => push_values!(bytes, i8, 1, be, scaled, slope, inter, out),
        Stored::I16 => push_values!(bytes, i16, 2, be, scaled, slope, inter, out),
        Stored::U16 => push_values!(bytes, u16, 2, be, scaled, slope, inter, out),
        Stored::I32 => push_values!(bytes, i32, 4, be, scaled, slope, inter, out),
        Stored::U32 => push_values!(bytes, u32, 4, be, scaled, slope, inter, out),
        Stored::F64 => push_values!(bytes, f64, 8, be, scaled, slope, inter, out),
        Stored::F32 => {
            let it = bytes.chunks_exact(4).map(|c| {
                let a: [u8; 4] = c.try_into().expect("chunks_exact gives 4 bytes");
                if be {
                    f32::from_be_bytes(a)
                } else {
                    f32::from_le_bytes(a)
                }
            });
            if scaled {
                out.extend(it.map(|v| (f64::from(v) * slope + inter) as f32));
            } else {
                out.extend(it);
            }
        }
    }
}

/// `(min, max, scl_slope, scl_inter)` for storing `data` as an integer type of range
/// `[lo, hi]`: identity scaling when every value is a whole number within range, otherwise the
/// linear map of `[min, max]` onto `[lo, hi]` (round-trip error at most half a step, plus `f32`
/// rounding of the stored slope and intercept).
pub(super) fn integer_scaling(
    vals: &ArrayD<f32>,
    lo: f64,
    hi: f64,
) -> std::result::Result<(f64, f64), String> {
    let mut mn = f64::INFINITY;
    let mut mx = f64::NEG_INFINITY;
    let mut whole = true;
    let mut visit = |v: f32| -> std::result::Result<(), String> {
        if !v.is_finite() {
            return Err(format!(
                "value {v} cannot be stored in an integer type; write float32"
            ));
        }
        let v = f64::from(v);
        mn = mn.min(v);
        mx = mx.max(v);
        whole &= v.fract() == 0.0;
        Ok(())
    };
    match vals.as_slice_memory_order() {
        Some(s) => s.iter().try_for_each(|&v| visit(v))?,
        None => vals.iter().try_for_each(|&v| visit(v))?,
    }
    if vals.is_empty() || (whole && mn >= lo && mx <= hi) {
        return Ok((1.0, 0.0));
    }
    if mx == mn {
        return Ok((1.0, f64::from(mn as f32)));
    }
    let slope = f64::from(((mx - mn) / (hi - lo)) as f32);
    let inter = f64::from((mn - lo * slope) as f32);
    Ok((slope, inter))
}
