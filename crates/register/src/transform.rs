//! Transforms as values: affines, displacement fields, chains; ITK text I/O; resampling.
//!
//! Conventions (see the crate README): world coordinates are NIfTI RAS+ millimetres; every
//! transform maps a point of the FIXED (reference, output) space to the MOVING (input) space, as
//! ITK and ANTs do for resampling: `output(x) = moving(T(x))`.

use cbflow_image::{Border, Grid, Interp, Trilinear, Volume, resample_mapped};
use nalgebra::{Matrix3, Matrix4};
use ndarray::{Array4, Axis};
use rayon::prelude::*;

use crate::util::{inv4, linear_part, mul_point, reversed};
use crate::{Error, Result};

/// A world→world affine map from FIXED-space points to MOVING-space points (RAS+ mm),
/// stored as a homogeneous 4×4 matrix `y = A x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineTransform {
    /// Homogeneous matrix; the last row is `[0, 0, 0, 1]`.
    pub matrix: Matrix4<f64>,
}

impl Default for AffineTransform {
    fn default() -> Self {
        Self::identity()
    }
}

/// Rotation matrix `R = Rz(rz) · Ry(ry) · Rx(rx)` (angles in radians; rotations about the fixed
/// world axes applied x first, then y, then z).
pub fn rotation_zyx(rx: f64, ry: f64, rz: f64) -> Matrix3<f64> {
    let [rxm, rym, rzm] = axis_rotations(rx, ry, rz);
    rzm * rym * rxm
}

/// ITK `Euler3DTransform` rotation with `ComputeZYX` off: `R = Rz · Rx · Ry`.
fn rotation_zxy(rx: f64, ry: f64, rz: f64) -> Matrix3<f64> {
    let [rxm, rym, rzm] = axis_rotations(rx, ry, rz);
    rzm * rxm * rym
}

/// The rotations `Rx(rx)`, `Ry(ry)`, `Rz(rz)` about the world axes (radians).
fn axis_rotations(rx: f64, ry: f64, rz: f64) -> [Matrix3<f64>; 3] {
    let (sx, cx) = rx.sin_cos();
    let (sy, cy) = ry.sin_cos();
    let (sz, cz) = rz.sin_cos();
    [
        Matrix3::new(1.0, 0.0, 0.0, 0.0, cx, -sx, 0.0, sx, cx),
        Matrix3::new(cy, 0.0, sy, 0.0, 1.0, 0.0, -sy, 0.0, cy),
        Matrix3::new(cz, -sz, 0.0, sz, cz, 0.0, 0.0, 0.0, 1.0),
    ]
}

fn homogeneous(a: &Matrix3<f64>, b: [f64; 3]) -> Matrix4<f64> {
    let mut m = Matrix4::identity();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(a);
    m[(0, 3)] = b[0];
    m[(1, 3)] = b[1];
    m[(2, 3)] = b[2];
    m
}

/// `y = A (x - c) + c + t` as a homogeneous matrix.
fn about_centre(a: &Matrix3<f64>, c: [f64; 3], t: [f64; 3]) -> Matrix4<f64> {
    let cv = nalgebra::Vector3::from(c);
    let off = cv + nalgebra::Vector3::from(t) - a * cv;
    homogeneous(a, [off[0], off[1], off[2]])
}

const LPS: [f64; 3] = [-1.0, -1.0, 1.0];

fn ras_lps(m: &Matrix4<f64>) -> Matrix4<f64> {
    // F · M · F with F = diag(-1, -1, 1, 1); F is its own inverse, so the same map converts back.
    let mut out = *m;
    for r in 0..3 {
        for c in 0..4 {
            let fc = if c < 3 { LPS[c] } else { 1.0 };
            out[(r, c)] = LPS[r] * m[(r, c)] * fc;
        }
    }
    out
}

impl AffineTransform {
    /// The identity.
    pub fn identity() -> Self {
        Self {
            matrix: Matrix4::identity(),
        }
    }

    /// From a homogeneous matrix; fails when it is singular, non-finite or its last row is not
    /// `[0, 0, 0, 1]`.
    pub fn from_matrix(matrix: Matrix4<f64>) -> Result<Self> {
        let last_ok = (
            matrix[(3, 0)],
            matrix[(3, 1)],
            matrix[(3, 2)],
            matrix[(3, 3)],
        ) == (0.0, 0.0, 0.0, 1.0);
        if !matrix.iter().all(|v| v.is_finite()) || !last_ok || inv4(&matrix).is_none() {
            return Err(crate::error::invalid(
                "affine matrix",
                matrix,
                "must be finite, invertible, last row [0 0 0 1]",
            ));
        }
        Ok(Self { matrix })
    }

    /// A pure translation `y = x + t` (mm).
    pub fn translation(t: [f64; 3]) -> Self {
        Self {
            matrix: homogeneous(&Matrix3::identity(), t),
        }
    }

    /// A rigid transform from `[tx, ty, tz, rx, ry, rz]` (mm, radians) about `centre` (mm):
    /// `y = R (x - c) + c + t` with `R = Rz·Ry·Rx` ([`rotation_zyx`]).
    pub fn from_rigid(params: [f64; 6], centre: [f64; 3]) -> Self {
        let r = rotation_zyx(params[3], params[4], params[5]);
        Self {
            matrix: about_centre(&r, centre, [params[0], params[1], params[2]]),
        }
    }

    /// An affine from 12 parameters in ITK order — the 3×3 matrix row by row, then the
    /// translation — about `centre`: `y = A (x - c) + c + t`.
    pub fn from_affine_params(params: [f64; 12], centre: [f64; 3]) -> Self {
        let a = Matrix3::from_row_slice(&params[..9]);
        Self {
            matrix: about_centre(&a, centre, [params[9], params[10], params[11]]),
        }
    }

    /// Rigid parameters `[tx, ty, tz, rx, ry, rz]` (mm, rad) about `centre`, from the rotation
    /// closest to the linear part (exact for rigid transforms; for affines the polar factor's
    /// rotation is used).
    pub fn rigid_params(&self, centre: [f64; 3]) -> [f64; 6] {
        let a = linear_part(&self.matrix);
        let svd = a.svd(true, true);
        let (u, vt) = (svd.u.expect("u"), svd.v_t.expect("v_t"));
        let mut r = u * vt;
        if r.determinant() < 0.0 {
            r = -r;
        }
        let ry = (-r[(2, 0)]).clamp(-1.0, 1.0).asin();
        let rx = r[(2, 1)].atan2(r[(2, 2)]);
        let rz = r[(1, 0)].atan2(r[(0, 0)]);
        let c = nalgebra::Vector3::from(centre);
        let off = nalgebra::Vector3::new(
            self.matrix[(0, 3)],
            self.matrix[(1, 3)],
            self.matrix[(2, 3)],
        );
        let t = off - c + a * c;
        [t[0], t[1], t[2], rx, ry, rz]
    }

    /// Map a fixed-space point (mm) to the moving space.
    pub fn map_point(&self, p: [f64; 3]) -> [f64; 3] {
        mul_point(&self.matrix, p)
    }

    /// The inverse map (moving → fixed).
    pub fn inverse(&self) -> Result<Self> {
        inv4(&self.matrix)
            .map(|matrix| Self { matrix })
            .ok_or_else(|| crate::error::invalid("affine matrix", self.matrix, "not invertible"))
    }

    /// The transform that applies `self` first and then `next`: `x ↦ next(self(x))`.
    pub fn then(&self, next: &AffineTransform) -> AffineTransform {
        Self {
            matrix: next.matrix * self.matrix,
        }
    }

    /// Determinant of the 3×3 linear part (volume change; negative for a reflection).
    pub fn determinant(&self) -> f64 {
        linear_part(&self.matrix).determinant()
    }

    /// ITK/ANTs text form (`#Insight Transform File V1.0`, `AffineTransform_double_3_3`).
    ///
    /// ITK works in LPS physical coordinates; the RAS matrix `M` is written as `F M F` with
    /// `F = diag(-1, -1, 1)`. The centre (`FixedParameters`) is written as `0 0 0` and the
    /// offset as the translation. As in ITK, the map is fixed → moving (the file ANTs writes
    /// with `antsRegistration` for the forward transform).
    pub fn to_itk_string(&self) -> String {
        let m = ras_lps(&self.matrix);
        let mut p = Vec::with_capacity(12);
        for r in 0..3 {
            for c in 0..3 {
                p.push(m[(r, c)]);
            }
        }
        p.extend([m[(0, 3)], m[(1, 3)], m[(2, 3)]]);
        let ps: Vec<String> = p.iter().map(|v| format!("{v:.17e}")).collect();
        format!(
            "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters: {}\nFixedParameters: 0 0 0\n",
            ps.join(" ")
        )
    }

    /// Parse ITK transform text with a single transform of type `AffineTransform_{double,float}_3_3`,
    /// `MatrixOffsetTransformBase_{double,float}_3_3` or `Euler3DTransform_{double,float}_3_3`
    /// (LPS coordinates, centre in `FixedParameters`), converting to RAS (see
    /// [`AffineTransform::to_itk_string`]).
    pub fn from_itk_str(text: &str) -> Result<Self> {
        let err = |line: usize, message: &str| Error::ItkParse {
            line,
            message: message.into(),
        };
        let mut kind: Option<(usize, String)> = None;
        let mut params: Option<(usize, Vec<f64>)> = None;
        let mut fixed: Option<(usize, Vec<f64>)> = None;
        let mut n_transforms = 0;
        let parse_nums = |lineno: usize, s: &str| -> Result<Vec<f64>> {
            s.split_whitespace()
                .map(|t| {
                    t.parse::<f64>()
                        .map_err(|_| err(lineno, &format!("not a number: {t:?}")))
                })
                .collect()
        };
        for (n, line) in text.lines().enumerate() {
            let lineno = n + 1;
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("Transform:") {
                n_transforms += 1;
                kind = Some((lineno, rest.trim().to_string()));
            } else if let Some(rest) = line.strip_prefix("Parameters:") {
                params = Some((lineno, parse_nums(lineno, rest)?));
            } else if let Some(rest) = line.strip_prefix("FixedParameters:") {
                fixed = Some((lineno, parse_nums(lineno, rest)?));
            }
        }
        if !text.trim_start().starts_with("#Insight Transform File") {
            return Err(err(1, "missing header '#Insight Transform File V1.0'"));
        }
        if n_transforms != 1 {
            return Err(err(
                0,
                &format!("expected exactly one transform, found {n_transforms}"),
            ));
        }
        let (kline, kind) = kind.expect("counted");
        let (pline, p) = params.ok_or_else(|| err(0, "missing 'Parameters:' line"))?;
        let c = match &fixed {
            Some((fl, f)) => {
                if f.len() < 3 {
                    return Err(err(
                        *fl,
                        &format!("expected 3 fixed parameters (centre), got {}", f.len()),
                    ));
                }
                [f[0], f[1], f[2]]
            }
            None => [0.0; 3],
        };
        let base = kind
            .trim_end_matches("_double_3_3")
            .trim_end_matches("_float_3_3");
        let lps = match base {
            "AffineTransform" | "MatrixOffsetTransformBase" => {
                if p.len() != 12 {
                    return Err(err(
                        pline,
                        &format!("expected 12 parameters for {kind}, got {}", p.len()),
                    ));
                }
                let a = Matrix3::from_row_slice(&p[..9]);
                about_centre(&a, c, [p[9], p[10], p[11]])
            }
            "Euler3DTransform" => {
                if p.len() != 6 {
                    return Err(err(
                        pline,
                        &format!("expected 6 parameters for {kind}, got {}", p.len()),
                    ));
                }
                let zyx = fixed
                    .as_ref()
                    .is_some_and(|(_, f)| f.len() > 3 && f[3] != 0.0);
                let r = if zyx {
                    rotation_zyx(p[0], p[1], p[2])
                } else {
                    rotation_zxy(p[0], p[1], p[2])
                };
                about_centre(&r, c, [p[3], p[4], p[5]])
            }
            _ => return Err(err(kline, &format!("unsupported transform type {kind:?}"))),
        };
        Self::from_matrix(ras_lps(&lps)).map_err(|_| err(pline, "matrix is singular or non-finite"))
    }
}

/// A dense displacement field on a grid: a point `x` (world mm, RAS) of the field's grid maps to
/// `x + u(x)`, with `u` interpolated trilinearly between voxel centres and zero outside the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplacementField {
    /// The grid the displacements are defined on (normally the fixed image's grid).
    pub grid: Grid,
    /// Displacements, shape `[nx, ny, nz, 3]`, components `(ux, uy, uz)` in world mm, RAS+.
    pub data: Array4<f32>,
}

impl DisplacementField {
    /// A field from a grid and data of shape `[nx, ny, nz, 3]` (world mm, RAS+).
    pub fn new(grid: Grid, data: Array4<f32>) -> Result<Self> {
        let want = [grid.dims[0], grid.dims[1], grid.dims[2], 3];
        if data.shape() != want {
            return Err(Error::ShapeMismatch {
                what: "displacement field data".into(),
                expected: want.to_vec(),
                got: data.shape().to_vec(),
            });
        }
        let data = if data.is_standard_layout() {
            data
        } else {
            data.as_standard_layout().into_owned()
        };
        Ok(Self { grid, data })
    }

    /// The field as ITK and ANTs store displacement fields: a 5D NIfTI vector image
    /// `[nx, ny, nz, 1, 3]` with `intent_code` 1007 (`NIFTI_INTENT_DISPVECT`) on the same grid,
    /// the vectors in LPS millimetres (x and y negated), which `antsApplyTransforms`,
    /// `ants.apply_transforms` and nitransforms read. With the ITK affine of the same
    /// registration it composes as ANTs' `[warp, affine]`: point `x` ↦ `A(x + u(x))`.
    pub fn to_itk_volume(&self) -> Result<Volume> {
        let d = self.grid.dims;
        let data = ndarray::Array5::from_shape_fn((d[0], d[1], d[2], 1, 3), |(i, j, k, _, c)| {
            let v = self.data[[i, j, k, c]];
            if c < 2 { -v } else { v }
        });
        let mut v = Volume::new(ndarray::ArrayD::zeros(ndarray::IxDyn(&d)), self.grid.affine)?;
        v.data = data.into_dyn();
        v.info.intent_code = 1007;
        v.info.intent_name = "ITK DisplacementField".chars().take(15).collect();
        v.info.description = "displacement field, LPS mm (ITK/ANTs)".into();
        Ok(v)
    }

    /// A field from a 4D volume `[nx, ny, nz, 3]` as [`cbflow_image::read`] returns it: an
    /// ITK/ANTs displacement field (`intent_code` 1007, stored 5D, LPS vectors, as
    /// [`DisplacementField::to_itk_volume`] writes) is converted to RAS; any other 4D volume is
    /// taken as RAS millimetres.
    pub fn from_volume(v: &Volume) -> Result<Self> {
        let s = v.data.shape();
        if s.len() != 4 || s[3] != 3 {
            return Err(crate::error::invalid(
                "displacement field",
                format!("shape {s:?}"),
                "expected [nx, ny, nz, 3] (or an ITK 5D vector image [nx, ny, nz, 1, 3])",
            ));
        }
        let lps = v.info.intent_code == 1007;
        let data = Array4::from_shape_fn((s[0], s[1], s[2], 3), |(i, j, k, c)| {
            let x = v.data[[i, j, k, c].as_slice()];
            if lps && c < 2 { -x } else { x }
        });
        Self::new(v.grid(), data)
    }

    /// A zero field (the identity) on a grid.
    pub fn zeros(grid: &Grid) -> Self {
        let d = grid.dims;
        Self {
            grid: grid.clone(),
            data: Array4::zeros((d[0], d[1], d[2], 3)),
        }
    }

    /// Displacement (mm) at a world point: trilinear between voxel centres, zero outside the grid.
    pub fn displacement_at(&self, p: [f64; 3]) -> [f64; 3] {
        let v = mul_point(&self.grid.inverse_affine(), p);
        self.displacement_at_voxel(v)
    }

    pub(crate) fn displacement_at_voxel(&self, v: [f64; 3]) -> [f64; 3] {
        let d = self.grid.dims;
        let s = self.data.as_slice().expect("standard layout");
        // C order with the component fastest: axes reversed (memory order), component c at `c..`
        let lin = Trilinear::new(
            [d[2], d[1], d[0]],
            [3, 3 * d[2], 3 * d[1] * d[2]],
            Border::Extent,
        );
        match lin.cell(reversed(v)) {
            Some(cell) => cell.values([&s[0..], &s[1..], &s[2..]]),
            None => [0.0; 3],
        }
    }

    /// Map a world point: `x + u(x)`.
    pub fn map_point(&self, p: [f64; 3]) -> [f64; 3] {
        let u = self.displacement_at(p);
        [p[0] + u[0], p[1] + u[1], p[2] + u[2]]
    }

    /// The displacement components converted to ITK's LPS convention (`ux`, `uy` negated), same
    /// shape `[nx, ny, nz, 3]`: what an ANTs/ITK displacement-field NIfTI stores (as a 5D image
    /// `[nx, ny, nz, 1, 3]` with intent `NIFTI_INTENT_VECTOR`).
    pub fn to_lps_components(&self) -> Array4<f32> {
        let mut d = self.data.clone();
        d.index_axis_mut(Axis(3), 0).mapv_inplace(|v| -v);
        d.index_axis_mut(Axis(3), 1).mapv_inplace(|v| -v);
        d
    }

    /// A field from LPS components (as read from an ANTs/ITK warp NIfTI, the singleton 4th axis
    /// dropped): the inverse of [`DisplacementField::to_lps_components`].
    pub fn from_lps_components(grid: Grid, mut data: Array4<f32>) -> Result<Self> {
        if data.ndim() == 4 && data.shape()[3] == 3 {
            data.index_axis_mut(Axis(3), 0).mapv_inplace(|v| -v);
            data.index_axis_mut(Axis(3), 1).mapv_inplace(|v| -v);
        }
        Self::new(grid, data)
    }
}

/// One step of a [`TransformChain`].
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// An affine map.
    Affine(AffineTransform),
    /// A displacement field.
    Field(DisplacementField),
}

impl Transform {
    /// Map a world point through this step.
    pub fn map_point(&self, p: [f64; 3]) -> [f64; 3] {
        match self {
            Transform::Affine(a) => a.map_point(p),
            Transform::Field(f) => f.map_point(p),
        }
    }
}

/// A composition of transforms, listed in the order a FIXED-space point travels:
/// `map_point(x) = steps[n-1](… steps[1](steps[0](x)))`, ending in the moving space.
///
/// Example: resampling an ASL map (moving) onto the template (fixed) after T1w→template
/// normalisation `[warp, affine_t1]` and ASL→T1w registration `asl_to_t1` (fixed T1w, moving
/// ASL): `[Field(warp), Affine(affine_t1), Affine(asl_to_t1)]`. (ANTs lists the same steps
/// in reverse order on its `-t` command line.)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransformChain {
    /// The steps, first applied first.
    pub steps: Vec<Transform>,
}

impl TransformChain {
    /// An empty chain (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// A chain of one affine.
    pub fn from_affine(a: AffineTransform) -> Self {
        Self {
            steps: vec![Transform::Affine(a)],
        }
    }

    /// Append a step (applied after the existing ones).
    pub fn then(mut self, t: Transform) -> Self {
        self.steps.push(t);
        self
    }

    /// Map a fixed-space world point (mm) to the moving space.
    pub fn map_point(&self, p: [f64; 3]) -> [f64; 3] {
        self.steps.iter().fold(p, |q, t| t.map_point(q))
    }

    /// Collapse the chain into one displacement field on `grid`: `u(x) = chain(x) - x`.
    pub fn to_field(&self, grid: &Grid) -> DisplacementField {
        let d = grid.dims;
        let mut data = Array4::<f32>::zeros((d[0], d[1], d[2], 3));
        data.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut plane)| {
                for j in 0..d[1] {
                    for k in 0..d[2] {
                        let x = grid.voxel_to_world([i as f64, j as f64, k as f64]);
                        let y = self.map_point(x);
                        for c in 0..3 {
                            plane[[j, k, c]] = (y[c] - x[c]) as f32;
                        }
                    }
                }
            });
        DisplacementField {
            grid: grid.clone(),
            data,
        }
    }
}

/// Resample `moving` onto `fixed_grid` through `chain` with a single interpolation:
/// `out(x) = moving(chain(x))` for every voxel centre `x` of `fixed_grid` (world mm), zero
/// outside the moving image, via [`cbflow_image::resample_mapped`]. 4D moving images are
/// resampled frame by frame. Output shape `fixed_grid.dims` (plus the moving image's 4th axis).
pub fn apply(
    moving: &Volume,
    fixed_grid: &Grid,
    chain: &TransformChain,
    interp: Interp,
) -> Result<Volume> {
    Ok(resample_mapped(moving, fixed_grid, interp, &|p| {
        chain.map_point(p)
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn rigid_params_round_trip() {
        let p = [3.0, -2.0, 5.5, 0.1, -0.05, 0.2];
        let c = [10.0, -20.0, 30.0];
        let t = AffineTransform::from_rigid(p, c);
        let q = t.rigid_params(c);
        for i in 0..6 {
            assert!((p[i] - q[i]).abs() < 1e-10, "{p:?} {q:?}");
        }
        assert!((t.determinant() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn itk_round_trip_and_lps_convention() {
        let t = AffineTransform::from_affine_params(
            [
                1.05, 0.02, -0.01, 0.03, 0.97, 0.04, 0.0, -0.02, 1.1, 4.0, -3.0, 7.0,
            ],
            [5.0, 6.0, 7.0],
        );
        let s = t.to_itk_string();
        let u = AffineTransform::from_itk_str(&s).unwrap();
        assert!((t.matrix - u.matrix).abs().max() < 1e-12);
        // A RAS translation of +4 mm in x is -4 mm in LPS.
        let tr = AffineTransform::translation([4.0, 2.0, 1.0]).to_itk_string();
        let line = tr.lines().find(|l| l.starts_with("Parameters:")).unwrap();
        let nums: Vec<f64> = line[11..]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(&nums[9..], &[-4.0, -2.0, 1.0]);
    }

    #[test]
    fn itk_centre_and_euler_are_honoured() {
        // Euler3D: rotation about z by 90 deg about LPS centre (10, 0, 0), no translation.
        let txt = "#Insight Transform File V1.0\n#Transform 0\nTransform: Euler3DTransform_double_3_3\nParameters: 0 0 1.5707963267948966 0 0 0\nFixedParameters: 10 0 0 0\n";
        let t = AffineTransform::from_itk_str(txt).unwrap();
        // LPS centre (10,0,0) is RAS (-10,0,0); it must be a fixed point.
        let c = t.map_point([-10.0, 0.0, 0.0]);
        assert!(
            c.iter()
                .zip([-10.0, 0.0, 0.0])
                .all(|(a, b)| (a - b).abs() < 1e-9),
            "{c:?}"
        );
        assert!(AffineTransform::from_itk_str("Transform: Foo\n").is_err());
        let bad = "#Insight Transform File V1.0\nTransform: AffineTransform_double_3_3\nParameters: 1 0 0\n";
        assert!(matches!(
            AffineTransform::from_itk_str(bad),
            Err(Error::ItkParse { line: 3, .. })
        ));
    }

    #[test]
    fn chain_composes_in_travel_order_and_apply_matches_direct_sampling() {
        let mut aff = Matrix4::identity() * 2.0;
        aff[(3, 3)] = 1.0;
        let grid = Grid::new([10, 12, 8], aff).unwrap();
        // field: constant 2 mm shift in x
        let mut f = DisplacementField::zeros(&grid);
        f.data.index_axis_mut(Axis(3), 0).fill(2.0);
        let a = AffineTransform::translation([0.0, 4.0, 0.0]);
        let chain = TransformChain::new()
            .then(Transform::Field(f))
            .then(Transform::Affine(a));
        assert_eq!(chain.map_point([4.0, 4.0, 4.0]), [6.0, 8.0, 4.0]);
        // moving image linear in world x: value = x (mm)
        let data = Array3::from_shape_fn((10, 12, 8), |(i, _, _)| 2.0 * i as f32).into_dyn();
        let mv = Volume::new(data, aff).unwrap();
        let out = apply(&mv, &grid, &chain, Interp::Linear).unwrap();
        // voxel (3, 1, 1): world x 6 -> moving x 8 -> value 8
        assert!((out.data[[3, 1, 1]] - 8.0).abs() < 1e-5);
        let fld = chain.to_field(&grid);
        assert_eq!(fld.data[[0, 0, 0, 1]], 4.0);
    }

    #[test]
    fn lps_components_round_trip_and_collapsed_chain_matches() {
        let mut aff = Matrix4::identity() * 3.0;
        aff[(3, 3)] = 1.0;
        aff[(0, 3)] = -20.0;
        let grid = Grid::new([8, 9, 7], aff).unwrap();
        let data = Array4::from_shape_fn((8, 9, 7, 3), |(i, j, k, c)| {
            (i as f32 * 0.3 - j as f32 * 0.2 + k as f32 * 0.1) * (c as f32 + 1.0)
        });
        let f = DisplacementField::new(grid.clone(), data.clone()).unwrap();
        let lps = f.to_lps_components();
        assert_eq!(lps[[2, 3, 4, 0]], -data[[2, 3, 4, 0]]);
        assert_eq!(lps[[2, 3, 4, 2]], data[[2, 3, 4, 2]]);
        assert_eq!(
            DisplacementField::from_lps_components(grid.clone(), lps).unwrap(),
            f
        );
        // a chain of field and rotation collapsed into one field maps voxel centres identically
        let rot = AffineTransform::from_rigid([1.0, 2.0, -1.0, 0.1, 0.0, -0.2], [0.0; 3]);
        let chain = TransformChain::new()
            .then(Transform::Field(f))
            .then(Transform::Affine(rot));
        let col = chain.to_field(&grid);
        for ijk in [[1.0, 2.0, 3.0], [6.0, 8.0, 0.0]] {
            let x = grid.voxel_to_world(ijk);
            let (a, b) = (chain.map_point(x), col.map_point(x));
            assert!((0..3).all(|c| (a[c] - b[c]).abs() < 1e-4), "{a:?} {b:?}");
        }
        assert!(DisplacementField::new(grid, Array4::zeros((8, 9, 7, 2))).is_err());
    }
}
