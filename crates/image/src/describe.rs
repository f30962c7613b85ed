//! A human-readable summary of a NIfTI file, in the manner of FSL `fslhd` and MRtrix `mrinfo`.

use std::fmt;
use std::path::Path;

use crate::{Header, Result, orientation, read};

/// What `cbflow inspect` prints for one file: header facts plus the value range of the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The validated header.
    pub header: Header,
    /// Shape of the image array (`[nx, ny, nz]` or `[nx, ny, nz, nt]`).
    pub shape: Vec<usize>,
    /// Voxel sizes (mm): the affine's column lengths.
    pub voxel_size: [f64; 3],
    /// Orientation code of the affine, e.g. `"LAS"` (see [`crate::orientation`]).
    pub orientation: String,
    /// Smallest and largest finite value after scaling; `None` when no value is finite.
    pub range: Option<(f32, f32)>,
    /// Number of NaN or infinite values.
    pub non_finite: usize,
}

/// Read a file and describe it (see [`Description`]).
///
/// # Errors
/// As [`read()`].
pub fn describe(path: &Path) -> Result<Description> {
    let header = crate::read_header(path)?;
    let vol = read(path)?;
    let (mut lo, mut hi, mut non_finite) = (f32::INFINITY, f32::NEG_INFINITY, 0usize);
    let values = vol
        .data
        .as_slice_memory_order()
        .expect("read returns contiguous data");
    for &v in values {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        } else {
            non_finite += 1;
        }
    }
    Ok(Description {
        shape: vol.data.shape().to_vec(),
        voxel_size: vol.grid().voxel_size(),
        orientation: orientation(&vol.affine),
        range: (lo <= hi).then_some((lo, hi)),
        non_finite,
        header,
    })
}

/// Name of a NIfTI xform code.
fn xform_name(code: i16) -> &'static str {
    match code {
        0 => "unknown",
        1 => "scanner_anat",
        2 => "aligned_anat",
        3 => "talairach",
        4 => "mni_152",
        5 => "template_other",
        _ => "invalid",
    }
}

/// Shortest decimal that reads back as the same `f32` (as `{}` prints an `f32`).
fn g(v: f64) -> String {
    format!("{}", v as f32)
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        let join = |v: &[String]| v.join(" x ");
        writeln!(f, "file:          {}", h.path.display())?;
        writeln!(
            f,
            "format:        NIfTI-1{}",
            if h.compressed { " (gzip)" } else { "" }
        )?;
        writeln!(
            f,
            "shape:         {}",
            join(&self.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        )?;
        writeln!(
            f,
            "voxel size:    {} mm",
            join(&self.voxel_size.iter().map(|&v| g(v)).collect::<Vec<_>>())
        )?;
        if self.shape.len() == 4 {
            writeln!(
                f,
                "TR:            {} s ({} volumes)",
                g(h.pixdim[4]),
                self.shape[3]
            )?;
        }
        writeln!(f, "orientation:   {}", self.orientation)?;
        writeln!(
            f,
            "datatype:      {} (code {}, bitpix {})",
            h.datatype, h.datatype_code, h.bitpix
        )?;
        writeln!(
            f,
            "byte order:    {}",
            if h.big_endian {
                "big-endian"
            } else {
                "little-endian"
            }
        )?;
        let (slope, inter) = h.scaling();
        write!(
            f,
            "scaling:       scl_slope {} scl_inter {}",
            g(h.scl_slope),
            g(h.scl_inter)
        )?;
        if (slope, inter) == (1.0, 0.0) {
            writeln!(f, " (none applied)")?;
        } else {
            writeln!(f, " (value = stored * {} + {})", g(slope), g(inter))?;
        }
        writeln!(
            f,
            "qform_code:    {} ({})",
            h.qform_code,
            xform_name(h.qform_code)
        )?;
        writeln!(
            f,
            "sform_code:    {} ({})",
            h.sform_code,
            xform_name(h.sform_code)
        )?;
        writeln!(f, "affine from:   {}", h.affine_source)?;
        match self.range {
            Some((lo, hi)) => write!(f, "value range:   {lo} .. {hi}")?,
            None => write!(f, "value range:   no finite values")?,
        }
        if self.non_finite > 0 {
            write!(f, " ({} non-finite values)", self.non_finite)?;
        }
        writeln!(f)?;
        if !h.descrip.is_empty() {
            writeln!(f, "description:   {}", h.descrip)?;
        }
        writeln!(f, "affine (voxel to world, mm):")?;
        for r in 0..4 {
            let row: Vec<String> = (0..4)
                .map(|c| format!("{:>11.4}", h.affine[(r, c)]))
                .collect();
            writeln!(f, "  {}", row.join(" "))?;
        }
        Ok(())
    }
}
