//! The voxel-to-world affine: checks, and the qform quaternion both ways.

use std::path::Path;

use nalgebra::{Matrix3, Matrix4};

use super::types::invalid;
use crate::Result;

pub(super) fn check_affine(path: &Path, field: &str, a: &Matrix4<f64>) -> Result<()> {
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

/// A file whose sform and qform are both set (codes > 0) must agree on which side is left: a
/// determinant of opposite sign means one of the two is mirrored, and readers that prefer the
/// other transform (FSL reads the qform in places, nibabel and cbflow the sform) would see the
/// image flipped left–right. Which one is true cannot be told from the file, so it is refused.
pub(super) fn check_handedness(
    path: &Path,
    sform: &Matrix4<f64>,
    qform: &Matrix4<f64>,
) -> Result<()> {
    let det = |a: &Matrix4<f64>| a.fixed_view::<3, 3>(0, 0).determinant();
    let (ds, dq) = (det(sform), det(qform));
    if ds.is_finite() && dq.is_finite() && ds * dq < 0.0 {
        let side = |d: f64| {
            let hand = if d < 0.0 { "left" } else { "right" };
            format!("a {hand}-handed voxel frame, determinant {d:+.3}")
        };
        return Err(invalid(
            path,
            "srow/quatern",
            format!(
                "the sform ({}) and the qform ({}; its handedness is qfac, pixdim[0]) disagree on left and right: one of them is mirrored and which cannot be told from the file, so tools that read the other one see the image flipped; set the qform from the sform (or the reverse) to the scanner's orientation, e.g. `fslorient -copysform2qform` or nibabel's `img.set_qform(img.get_sform())`",
                side(ds),
                side(dq)
            ),
        ));
    }
    Ok(())
}

/// The NIfTI-1 qform (method 2): rotation from the quaternion `(b, c, d)` (with
/// `a = sqrt(1 - b² - c² - d²)`), the third column negated when qfac = `pixdim[0]` < 0, columns
/// scaled by `pixdim[1..=3]` (non-positive ones replaced by 1 as `nifti1_io.c` does), then the
/// offsets.
pub(super) fn quatern_to_affine(q: [f64; 3], off: [f64; 3], pixdim: &[f64; 8]) -> Matrix4<f64> {
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
pub(super) fn affine_to_quatern(a: &Matrix4<f64>) -> Option<([f64; 3], f64, [f64; 3])> {
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
