//! Opening a NIfTI-1 file (plain or gzip) and parsing and checking its header.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use nalgebra::Matrix4;

use super::affine::{check_affine, check_handedness, quatern_to_affine};
use super::types::{HEADER_SIZE, Header, Stored, VOX_OFFSET, invalid, io_err};
use crate::Result;

/// A reader for the file: decompressing when it starts with the gzip magic bytes.
pub(super) fn open(path: &Path) -> Result<(Box<dyn Read>, bool, u64)> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut buf = BufReader::with_capacity(1 << 16, file);
    let head = buf.fill_buf().map_err(|e| io_err(path, e))?;
    let gz = head.len() >= 2 && head[..2] == [0x1f, 0x8b];
    if gz {
        Ok((Box::new(MultiGzDecoder::new(buf)), true, len))
    } else {
        Ok((Box::new(buf), false, len))
    }
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
pub(super) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Read the header bytes, mapping gzip failures to `InvalidNifti { field: "header" }`.
pub(super) fn read_header_bytes(path: &Path, r: &mut dyn Read) -> Result<[u8; HEADER_SIZE]> {
    let mut hdr = [0u8; HEADER_SIZE];
    let n = read_full(r, &mut hdr)
        .map_err(|e| invalid(path, "header", format!("cannot read the header: {e}")))?;
    if n < HEADER_SIZE {
        return Err(invalid(
            path,
            "header",
            format!("file ends after {n} of {HEADER_SIZE} header bytes"),
        ));
    }
    Ok(hdr)
}

/// Little helper reading fields with the file's byte order.
pub(super) struct Fields<'a> {
    pub(super) b: &'a [u8; HEADER_SIZE],
    pub(super) be: bool,
}

impl Fields<'_> {
    pub(super) fn i16(&self, off: usize) -> i16 {
        let x = [self.b[off], self.b[off + 1]];
        if self.be {
            i16::from_be_bytes(x)
        } else {
            i16::from_le_bytes(x)
        }
    }
    pub(super) fn f32(&self, off: usize) -> f64 {
        let x = [
            self.b[off],
            self.b[off + 1],
            self.b[off + 2],
            self.b[off + 3],
        ];
        f64::from(if self.be {
            f32::from_be_bytes(x)
        } else {
            f32::from_le_bytes(x)
        })
    }
}

/// Parse and validate a NIfTI-1 header. `file_len` is the size of an uncompressed file (for
/// checking that the data fit), `None` for a compressed one.
pub(super) fn parse_header(
    path: &Path,
    b: &[u8; HEADER_SIZE],
    compressed: bool,
    file_len: Option<u64>,
) -> Result<Header> {
    let le = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let be_val = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let be = match (le, be_val) {
        (348, _) => false,
        (_, 348) => true,
        (540, _) | (_, 540) => {
            return Err(invalid(
                path,
                "sizeof_hdr",
                "NIfTI-2 (sizeof_hdr 540) is not supported",
            ));
        }
        _ => {
            return Err(invalid(
                path,
                "sizeof_hdr",
                format!("expected 348, found {le}"),
            ));
        }
    };
    let f = Fields { b, be };

    let magic = &b[344..348];
    if magic == b"ni1\0" {
        return Err(invalid(
            path,
            "magic",
            "two-file NIfTI (.hdr/.img, magic \"ni1\") is not supported",
        ));
    }
    if magic != b"n+1\0" {
        return Err(invalid(
            path,
            "magic",
            format!("expected \"n+1\", found {magic:?}"),
        ));
    }

    let dim: Vec<i16> = (0..8).map(|i| f.i16(40 + 2 * i)).collect();
    let nd = dim[0];
    if !(1..=7).contains(&nd) {
        return Err(invalid(
            path,
            "dim",
            format!("dim[0] must be 1..7, found {nd}"),
        ));
    }
    let nd = nd as usize;
    let mut dims = Vec::with_capacity(nd);
    for (i, &d) in dim.iter().enumerate().take(nd + 1).skip(1) {
        if d < 1 {
            return Err(invalid(
                path,
                "dim",
                format!("dim[{i}] must be positive, found {d}"),
            ));
        }
        dims.push(d as usize);
    }
    // beyond 4D only a vector image [x, y, z, 1, n] (ITK displacement fields), read as 4D
    let vector = dims.len() == 5 && dims[3] == 1;
    if dims.len() > 4 && !vector && dims[4..].iter().any(|&d| d > 1) {
        return Err(invalid(
            path,
            "dim",
            format!("images beyond 4D are not supported: dims {dims:?}"),
        ));
    }

    let datatype_code = f.i16(70);
    let stored = Stored::from_code(datatype_code).map_err(|m| invalid(path, "datatype", m))?;

    let pixdim: [f64; 8] = std::array::from_fn(|i| f.f32(76 + 4 * i));
    for (i, p) in pixdim.iter().enumerate().take(nd.max(3) + 1) {
        if !p.is_finite() {
            return Err(invalid(
                path,
                "pixdim",
                format!("pixdim[{i}] is not finite ({p})"),
            ));
        }
    }

    let vox = f.f32(108);
    if !vox.is_finite() || vox < VOX_OFFSET as f64 - 4.0 || vox.fract() != 0.0 || vox > 1e9 {
        return Err(invalid(
            path,
            "vox_offset",
            format!("expected a whole number >= 348, found {vox}"),
        ));
    }
    let vox_offset = vox as usize;

    let n_values = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| {
            n.checked_mul(stored.size())
                .is_some_and(|b| b < (1usize << 40))
        })
        .ok_or_else(|| invalid(path, "dim", format!("too many voxels for dims {dims:?}")))?;
    let n_bytes = n_values * stored.size();
    if let Some(len) = file_len {
        let need = (vox_offset + n_bytes) as u64;
        if len < need {
            return Err(invalid(
                path,
                "data",
                format!(
                    "file has {} data bytes but dims {dims:?} of {} need {n_bytes}",
                    len.saturating_sub(vox_offset as u64),
                    stored.name()
                ),
            ));
        }
    }

    let qform_code = f.i16(252);
    let sform_code = f.i16(254);
    let quat = [f.f32(256), f.f32(260), f.f32(264)];
    let qoff = [f.f32(268), f.f32(272), f.f32(276)];
    let srow: [f64; 12] = std::array::from_fn(|i| f.f32(280 + 4 * i));
    let mut sform = Matrix4::identity();
    for r in 0..3 {
        for c in 0..4 {
            sform[(r, c)] = srow[4 * r + c];
        }
    }
    let qform = quatern_to_affine(quat, qoff, &pixdim);
    if sform_code > 0 && qform_code > 0 {
        check_handedness(path, &sform, &qform)?;
    }

    let (affine, affine_source) = if sform_code > 0 {
        check_affine(path, "srow", &sform)?;
        (sform, "sform")
    } else if qform_code > 0 {
        check_affine(path, "quatern", &qform)?;
        (qform, "qform")
    } else {
        let mut a = Matrix4::identity();
        for i in 0..3 {
            a[(i, i)] = pixdim[i + 1];
        }
        check_affine(path, "pixdim", &a)?;
        (a, "pixdim")
    };

    let descrip_raw = &b[148..228];
    let end = descrip_raw
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(descrip_raw.len());
    let descrip = String::from_utf8_lossy(&descrip_raw[..end]).into_owned();

    Ok(Header {
        path: path.to_path_buf(),
        compressed,
        dims,
        pixdim,
        datatype: stored.name().into(),
        datatype_code,
        bitpix: f.i16(72),
        big_endian: be,
        affine,
        affine_source: affine_source.into(),
        sform,
        qform,
        scl_slope: f.f32(112),
        scl_inter: f.f32(116),
        qform_code,
        sform_code,
        xyzt_units: b[123],
        vox_offset,
        intent_code: f.i16(68),
        intent_p: [f.f32(56), f.f32(60), f.f32(64)],
        intent_name: String::from_utf8_lossy(&b[328..344])
            .trim_end_matches('\0')
            .to_string(),
        cal_range: [f.f32(128), f.f32(124)],
        descrip,
    })
}
