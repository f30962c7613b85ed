//! NIfTI-1 single-file (`.nii`, `.nii.gz`) reading and writing.
//!
//! The 348-byte header is parsed and validated here rather than by the `nifti` crate, so that
//! every malformed file becomes an [`Error::InvalidNifti`] naming the field at fault instead of
//! a panic or a silently wrong image. The rules followed are those of the NIfTI-1 standard
//! (`nifti1.h`, Cox et al. 2004):
//!
//! - byte order from `sizeof_hdr` (348 read little- or big-endian);
//! - voxel-to-world affine from the sform (`srow_x/y/z`) when `sform_code > 0`, else from the
//!   quaternion qform when `qform_code > 0` (method 2), else `diag(pixdim[1..=3])` (method 1);
//! - values scaled by `scl_slope`/`scl_inter` unless `scl_slope` is 0 or not finite.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use nalgebra::{Matrix3, Matrix4};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use crate::{Error, Result, Volume, VolumeInfo};

/// Size of a NIfTI-1 header in bytes.
const HEADER_SIZE: usize = 348;
/// Offset of the data written by [`write()`]: header plus the 4-byte extension flag.
const VOX_OFFSET: usize = 352;
/// Bytes handled per chunk while decoding or encoding voxel data.
const CHUNK: usize = 1 << 20;

/// Storage type of voxel values for [`write()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Unsigned 8-bit integer (NIfTI code 2).
    Uint8,
    /// Signed 16-bit integer (NIfTI code 4).
    Int16,
    /// Signed 32-bit integer (NIfTI code 8).
    Int32,
    /// IEEE 32-bit float (NIfTI code 16).
    Float32,
    /// IEEE 64-bit float (NIfTI code 64).
    Float64,
}

impl DataType {
    /// The NIfTI `datatype` code.
    pub fn code(self) -> i16 {
        self.stored().code()
    }

    /// The name used in [`Header::datatype`] and [`VolumeInfo::datatype`], e.g. `"int16"`.
    pub fn name(self) -> &'static str {
        self.stored().name()
    }

    fn stored(self) -> Stored {
        match self {
            Self::Uint8 => Stored::U8,
            Self::Int16 => Stored::I16,
            Self::Int32 => Stored::I32,
            Self::Float32 => Stored::F32,
            Self::Float64 => Stored::F64,
        }
    }
}

/// Every storage type that can be read (a superset of [`DataType`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Stored {
    fn from_code(code: i16) -> std::result::Result<Self, String> {
        Ok(match code {
            2 => Self::U8,
            4 => Self::I16,
            8 => Self::I32,
            16 => Self::F32,
            64 => Self::F64,
            256 => Self::I8,
            512 => Self::U16,
            768 => Self::U32,
            1 => return Err("binary (code 1) is not supported".into()),
            32 => return Err("complex64 (code 32) is not supported".into()),
            128 => return Err("rgb24 (code 128) is not supported".into()),
            1024 | 1280 => return Err(format!("64-bit integers (code {code}) are not supported")),
            1536 | 1792 | 2048 | 2304 => {
                return Err(format!(
                    "code {code} (long double, complex or rgba) is not supported"
                ));
            }
            _ => return Err(format!("unknown datatype code {code}")),
        })
    }

    fn code(self) -> i16 {
        match self {
            Self::U8 => 2,
            Self::I16 => 4,
            Self::I32 => 8,
            Self::F32 => 16,
            Self::F64 => 64,
            Self::I8 => 256,
            Self::U16 => 512,
            Self::U32 => 768,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::U16 => "uint16",
            Self::I32 => "int32",
            Self::U32 => "uint32",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

/// The parsed and validated NIfTI-1 header of a file (see [`read_header`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The file.
    pub path: PathBuf,
    /// True when the file is gzip-compressed.
    pub compressed: bool,
    /// All dimensions, `dim[1..=dim[0]]`, e.g. `[64, 64, 40, 61]`.
    pub dims: Vec<usize>,
    /// The raw `pixdim[0..8]`: `pixdim[0]` is qfac, `pixdim[1..=3]` voxel sizes, `pixdim[4]` TR.
    pub pixdim: [f64; 8],
    /// Datatype name: `uint8`, `int8`, `int16`, `uint16`, `int32`, `uint32`, `float32`, `float64`.
    pub datatype: String,
    /// NIfTI `datatype` code.
    pub datatype_code: i16,
    /// `bitpix` as stored (not used for decoding: the datatype decides).
    pub bitpix: i16,
    /// True when the file is big-endian.
    pub big_endian: bool,
    /// Voxel-to-world affine by the NIfTI rules (sform, else qform, else pixdim).
    pub affine: Matrix4<f64>,
    /// Which rule gave [`Header::affine`]: `"sform"`, `"qform"` or `"pixdim"`.
    pub affine_source: String,
    /// The sform matrix as stored (whatever `sform_code` says).
    pub sform: Matrix4<f64>,
    /// The qform matrix built from the quaternion, offsets, pixdim and qfac (whatever
    /// `qform_code` says).
    pub qform: Matrix4<f64>,
    /// `scl_slope` as stored (0 or non-finite means no scaling; see [`Header::scaling`]).
    pub scl_slope: f64,
    /// `scl_inter` as stored.
    pub scl_inter: f64,
    /// `qform_code`.
    pub qform_code: i16,
    /// `sform_code`.
    pub sform_code: i16,
    /// `xyzt_units` (spatial unit code in bits 0-2, temporal in bits 3-5).
    pub xyzt_units: u8,
    /// Byte offset of the voxel data.
    pub vox_offset: usize,
    /// `intent_code`.
    pub intent_code: i16,
    /// `intent_p1..p3`.
    pub intent_p: [f64; 3],
    /// `intent_name`.
    pub intent_name: String,
    /// `cal_min`, `cal_max` (display range).
    pub cal_range: [f64; 2],
    /// `descrip` (up to 80 bytes, trimmed at the first NUL).
    pub descrip: String,
}

impl Header {
    /// The `(slope, intercept)` actually applied to stored values: `(1, 0)` when `scl_slope`
    /// is 0 or not finite (the NIfTI rule), and an intercept of 0 when `scl_inter` is not finite.
    pub fn scaling(&self) -> (f64, f64) {
        if self.scl_slope == 0.0 || !self.scl_slope.is_finite() {
            (1.0, 0.0)
        } else {
            let inter = if self.scl_inter.is_finite() {
                self.scl_inter
            } else {
                0.0
            };
            (self.scl_slope, inter)
        }
    }

    /// Shape of the array [`read()`] returns: `[nx, ny, nz]` or `[nx, ny, nz, nt]`.
    pub fn volume_shape(&self) -> Vec<usize> {
        // a NIfTI vector image [x, y, z, 1, n] (ITK displacement fields) reads as [x, y, z, n]
        if self.dims.len() == 5 && self.dims[3] == 1 {
            return vec![self.dims[0], self.dims[1], self.dims[2], self.dims[4]];
        }
        let mut s = self.dims.clone();
        s.resize(s.len().max(3), 1);
        s.truncate(4);
        s
    }

    /// Number of voxel values the data block holds.
    pub fn n_values(&self) -> usize {
        self.dims.iter().product()
    }

    fn stored(&self) -> Stored {
        Stored::from_code(self.datatype_code).expect("validated on parsing")
    }
}

fn invalid(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidNifti {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A reader for the file: decompressing when it starts with the gzip magic bytes.
fn open(path: &Path) -> Result<(Box<dyn Read>, bool, u64)> {
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
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
fn read_header_bytes(path: &Path, r: &mut dyn Read) -> Result<[u8; HEADER_SIZE]> {
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
struct Fields<'a> {
    b: &'a [u8; HEADER_SIZE],
    be: bool,
}

impl Fields<'_> {
    fn i16(&self, off: usize) -> i16 {
        let x = [self.b[off], self.b[off + 1]];
        if self.be {
            i16::from_be_bytes(x)
        } else {
            i16::from_le_bytes(x)
        }
    }
    fn f32(&self, off: usize) -> f64 {
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
fn parse_header(
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

fn check_affine(path: &Path, field: &str, a: &Matrix4<f64>) -> Result<()> {
    if a.iter().any(|v| !v.is_finite()) {
        return Err(invalid(
            path,
            field,
            format!("affine has non-finite entries: {a}"),
        ));
    }
    let m: Matrix3<f64> = a.fixed_view::<3, 3>(0, 0).into_owned();
    let scale = m.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    if scale == 0.0 || m.determinant().abs() <= 1e-12 * scale.powi(3) {
        return Err(invalid(path, field, format!("affine is singular: {a}")));
    }
    Ok(())
}

/// The NIfTI-1 qform (method 2): rotation from the quaternion `(b, c, d)` (with
/// `a = sqrt(1 - b² - c² - d²)`), the third column negated when qfac = `pixdim[0]` < 0, columns
/// scaled by `pixdim[1..=3]` (non-positive ones replaced by 1 as `nifti1_io.c` does), then the
/// offsets.
fn quatern_to_affine(q: [f64; 3], off: [f64; 3], pixdim: &[f64; 8]) -> Matrix4<f64> {
    let [mut b, mut c, mut d] = q;
    let s = b * b + c * c + d * d;
    let a = if s >= 1.0 {
        let n = s.sqrt();
        b /= n;
        c /= n;
        d /= n;
        0.0
    } else {
        (1.0 - s).sqrt()
    };
    let r = Matrix3::new(
        a * a + b * b - c * c - d * d,
        2.0 * (b * c - a * d),
        2.0 * (b * d + a * c),
        2.0 * (b * c + a * d),
        a * a + c * c - b * b - d * d,
        2.0 * (c * d - a * b),
        2.0 * (b * d - a * c),
        2.0 * (c * d + a * b),
        a * a + d * d - c * c - b * b,
    );
    let qfac = if pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let zoom = [1, 2, 3].map(|i| if pixdim[i] > 0.0 { pixdim[i] } else { 1.0 });
    let mut out = Matrix4::identity();
    for row in 0..3 {
        for col in 0..3 {
            let mut v = r[(row, col)] * zoom[col];
            if col == 2 {
                v *= qfac;
            }
            out[(row, col)] = v;
        }
        out[(row, 3)] = off[row];
    }
    out
}

/// Quaternion `(b, c, d)`, qfac and column lengths of an affine whose 3×3 part is a rotation
/// (possibly with a reflection) times a positive diagonal scaling; `None` for a shear.
fn affine_to_quatern(a: &Matrix4<f64>) -> Option<([f64; 3], f64, [f64; 3])> {
    let m: Matrix3<f64> = a.fixed_view::<3, 3>(0, 0).into_owned();
    let zoom = [0, 1, 2].map(|c| m.column(c).norm());
    if zoom.iter().any(|&z| z <= 0.0 || !z.is_finite()) {
        return None;
    }
    let mut r = m;
    for c in 0..3 {
        let z = zoom[c];
        r.column_mut(c).scale_mut(1.0 / z);
    }
    if ((r.transpose() * r) - Matrix3::identity()).abs().max() > 1e-5 {
        return None;
    }
    let qfac = if r.determinant() < 0.0 { -1.0 } else { 1.0 };
    if qfac < 0.0 {
        r.column_mut(2).scale_mut(-1.0);
    }
    let (r11, r12, r13) = (r[(0, 0)], r[(0, 1)], r[(0, 2)]);
    let (r21, r22, r23) = (r[(1, 0)], r[(1, 1)], r[(1, 2)]);
    let (r31, r32, r33) = (r[(2, 0)], r[(2, 1)], r[(2, 2)]);
    let trace1 = 1.0 + r11 + r22 + r33;
    let (mut qa, mut qb, mut qc, mut qd);
    if trace1 > 0.5 {
        qa = 0.5 * trace1.sqrt();
        qb = 0.25 * (r32 - r23) / qa;
        qc = 0.25 * (r13 - r31) / qa;
        qd = 0.25 * (r21 - r12) / qa;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            qb = 0.5 * xd.sqrt();
            qc = 0.25 * (r12 + r21) / qb;
            qd = 0.25 * (r13 + r31) / qb;
            qa = 0.25 * (r32 - r23) / qb;
        } else if yd > 1.0 {
            qc = 0.5 * yd.sqrt();
            qb = 0.25 * (r12 + r21) / qc;
            qd = 0.25 * (r23 + r32) / qc;
            qa = 0.25 * (r13 - r31) / qc;
        } else {
            qd = 0.5 * zd.sqrt();
            qb = 0.25 * (r13 + r31) / qd;
            qc = 0.25 * (r23 + r32) / qd;
            qa = 0.25 * (r21 - r12) / qd;
        }
    }
    if qa < 0.0 {
        qa = -qa;
        qb = -qb;
        qc = -qc;
        qd = -qd;
    }
    let _ = qa;
    Some(([qb, qc, qd], qfac, zoom))
}

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
/// [`Error::Io`] when the file cannot be opened; [`Error::InvalidNifti`] naming the field for
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
fn decode_data(path: &Path, r: &mut dyn Read, h: &Header) -> Result<Vec<f32>> {
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

fn convert(
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
fn integer_scaling(
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

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write a volume as NIfTI-1 (`.nii`, or gzip level 6 for `.nii.gz`), atomically: the file is
/// written under a temporary name in the same directory and renamed into place, so readers never
/// see a partial file and nothing is left behind on error (no fsync: not durable against power
/// loss).
///
/// Header: little-endian; `sform` = the affine with `sform_code` from [`VolumeInfo::sform_code`]
/// (2, "aligned", when 0); a qform from the same affine (quaternion, qfac, voxel sizes) with
/// [`VolumeInfo::qform_code`] (else the sform code) when the affine is a rotation/reflection
/// times scaling, else `qform_code` 0; `pixdim[1..=3]` the affine's column lengths, `pixdim[4]`
/// the TR from [`VolumeInfo::pixdim`] for 4D; `xyzt_units` mm and s; `descrip` from
/// [`VolumeInfo::description`] (first 79 bytes). The affine is stored as `f32`, so it round-trips
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

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
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
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

fn write_body(
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

fn build_header(vol: &Volume, st: Stored, slope: f64, inter: f64) -> [u8; HEADER_SIZE] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_round_trip_las_and_oblique() {
        let mut a = Matrix4::identity();
        a[(0, 0)] = -3.0;
        a[(1, 1)] = 3.0;
        a[(2, 2)] = 3.0;
        a[(0, 3)] = 90.0;
        let (q, qfac, zoom) = affine_to_quatern(&a).unwrap();
        let mut pd = [qfac, zoom[0], zoom[1], zoom[2], 0.0, 0.0, 0.0, 0.0];
        pd[0] = qfac;
        let back = quatern_to_affine(q, [90.0, 0.0, 0.0], &pd);
        assert!((back - a).abs().max() < 1e-12, "{back}");

        // A rotation of 30° about z and 180° about x (the a < 0.5 branch), scaled 2, 2.5, 4.
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        let rz = Matrix3::new(c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0);
        let rx = Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0);
        let m = rz * rx * Matrix3::from_diagonal(&nalgebra::Vector3::new(2.0, 2.5, 4.0));
        let mut a = Matrix4::identity();
        a.fixed_view_mut::<3, 3>(0, 0).copy_from(&m);
        let (q, qfac, zoom) = affine_to_quatern(&a).unwrap();
        let pd = [qfac, zoom[0], zoom[1], zoom[2], 0.0, 0.0, 0.0, 0.0];
        let back = quatern_to_affine(q, [0.0; 3], &pd);
        assert!((back - a).abs().max() < 1e-12, "{back} vs {a}");

        // Shear: no qform.
        a[(0, 1)] = 0.7;
        assert!(affine_to_quatern(&a).is_none());
    }

    #[test]
    fn integer_scaling_rules() {
        let whole = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0.0f32, 7.0, 255.0]).unwrap();
        assert_eq!(integer_scaling(&whole, 0.0, 255.0).unwrap(), (1.0, 0.0));
        let frac = ArrayD::from_shape_vec(IxDyn(&[3]), vec![-1.5f32, 0.25, 3.0]).unwrap();
        let (s, i) = integer_scaling(&frac, 0.0, 255.0).unwrap();
        assert!((i - -1.5).abs() < 1e-6 && (s - 4.5 / 255.0).abs() < 1e-8);
        let nan = ArrayD::from_shape_vec(IxDyn(&[1]), vec![f32::NAN]).unwrap();
        assert!(integer_scaling(&nan, 0.0, 255.0).is_err());
    }
}
