//! NIfTI-1 data types, how a volume is stored, and the parsed header.

use std::path::Path;

use crate::Error;
use std::path::PathBuf;

use nalgebra::Matrix4;

/// Size of a NIfTI-1 header in bytes.
pub(super) const HEADER_SIZE: usize = 348;
/// Offset of the data written by [`write()`]: header plus the 4-byte extension flag.
pub(super) const VOX_OFFSET: usize = 352;
/// Bytes handled per chunk while decoding or encoding voxel data.
pub(super) const CHUNK: usize = 1 << 20;

/// Storage type of voxel values for [`write()`](super::write()).
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

    /// The name used in [`Header::datatype`] and [`VolumeInfo::datatype`](crate::VolumeInfo::datatype), e.g. `"int16"`.
    pub fn name(self) -> &'static str {
        self.stored().name()
    }

    pub(super) fn stored(self) -> Stored {
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
pub(super) enum Stored {
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
    pub(super) fn from_code(code: i16) -> std::result::Result<Self, String> {
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

    pub(super) fn code(self) -> i16 {
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

    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

/// The parsed and validated NIfTI-1 header of a file (see [`read_header`](super::read_header)).
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

    /// Shape of the array [`read()`](super::read()) returns: `[nx, ny, nz]` or `[nx, ny, nz, nt]`.
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

    pub(super) fn stored(&self) -> Stored {
        Stored::from_code(self.datatype_code).expect("validated on parsing")
    }
}

pub(super) fn invalid(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidNifti {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

pub(super) fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
