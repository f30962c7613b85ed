use nalgebra::{Matrix4, Vector4};
use ndarray::{ArrayD, ArrayView3, Axis, Ix3, IxDyn};

use crate::{Error, Result};

/// A voxel grid in world space: the spatial dimensions and the voxel-to-world affine (mm, RAS+).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Number of voxels along i, j, k.
    pub dims: [usize; 3],
    /// Maps homogeneous voxel coordinates `[i, j, k, 1]` to world millimetres `[x, y, z, 1]`.
    pub affine: Matrix4<f64>,
}

impl Grid {
    /// A grid from dimensions and an affine; fails when the affine is singular.
    pub fn new(dims: [usize; 3], affine: Matrix4<f64>) -> Result<Self> {
        if affine.try_inverse().is_none() {
            return Err(Error::InvalidAffine(format!(
                "singular voxel-to-world affine {affine}"
            )));
        }
        Ok(Self { dims, affine })
    }

    /// Voxel sizes in mm: the lengths of the affine's first three columns.
    pub fn voxel_size(&self) -> [f64; 3] {
        let a = &self.affine;
        [0, 1, 2].map(|c| (a[(0, c)].powi(2) + a[(1, c)].powi(2) + a[(2, c)].powi(2)).sqrt())
    }

    /// World → voxel affine (the inverse of [`Grid::affine`]).
    pub fn inverse_affine(&self) -> Matrix4<f64> {
        self.affine
            .try_inverse()
            .expect("grid affine checked invertible at construction")
    }

    /// World coordinates (mm) of a (possibly fractional) voxel index.
    pub fn voxel_to_world(&self, ijk: [f64; 3]) -> [f64; 3] {
        let w = self.affine * Vector4::new(ijk[0], ijk[1], ijk[2], 1.0);
        [w[0], w[1], w[2]]
    }

    /// Fractional voxel index of a world coordinate (mm).
    pub fn world_to_voxel(&self, xyz: [f64; 3]) -> [f64; 3] {
        let v = self.inverse_affine() * Vector4::new(xyz[0], xyz[1], xyz[2], 1.0);
        [v[0], v[1], v[2]]
    }

    /// Total number of voxels.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// True when the grid has no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Header facts kept alongside the data: where the volume came from and how it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeInfo {
    /// NIfTI datatype name of the source file (`uint8`, `int16`, `int32`, `float32`, `float64`, ...);
    /// `float32` for volumes made in memory.
    pub datatype: String,
    /// True when the source file was big-endian.
    pub big_endian: bool,
    /// `scl_slope` and `scl_inter` of the source (already applied to the data).
    pub scl_slope: f64,
    /// See [`VolumeInfo::scl_slope`].
    pub scl_inter: f64,
    /// Voxel sizes from `pixdim[1..=3]` (mm) and the time step `pixdim[4]` (s) for 4D.
    pub pixdim: [f64; 4],
    /// `qform_code` of the source.
    pub qform_code: i16,
    /// `sform_code` of the source.
    pub sform_code: i16,
    /// Which transform gave the affine: `"sform"`, `"qform"` or `"pixdim"` (the NIfTI fall-back).
    pub affine_source: String,
    /// `descrip` field.
    pub description: String,
    /// NIfTI `intent_code` (0 none; 3 t statistic, 1007 displacement vector, …).
    pub intent_code: i16,
    /// `intent_p1..p3` (e.g. the degrees of freedom of a t map).
    pub intent_p: [f64; 3],
    /// `intent_name` (at most 15 characters are stored).
    pub intent_name: String,
}

impl Default for VolumeInfo {
    fn default() -> Self {
        Self {
            datatype: "float32".into(),
            big_endian: false,
            scl_slope: 1.0,
            scl_inter: 0.0,
            pixdim: [1.0, 1.0, 1.0, 0.0],
            qform_code: 0,
            sform_code: 2,
            affine_source: "sform".into(),
            description: String::new(),
            intent_code: 0,
            intent_p: [0.0; 3],
            intent_name: String::new(),
        }
    }
}

/// A 3D or 4D image: `f32` data with scaling applied, indexed `[i, j, k]` or `[i, j, k, t]`,
/// and the voxel-to-world affine of its spatial axes.
///
/// Data are held as `f32` whatever the file stored (as FSL and ANTs do): `float64` files lose
/// precision beyond `f32` on reading, which is stated here rather than hidden.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Voxel values, shape `[nx, ny, nz]` or `[nx, ny, nz, nt]`.
    pub data: ArrayD<f32>,
    /// Voxel-to-world affine (mm, RAS+).
    pub affine: Matrix4<f64>,
    /// Facts about the source file.
    pub info: VolumeInfo,
}

impl Volume {
    /// A volume from data (3D or 4D) and an affine.
    pub fn new(data: ArrayD<f32>, affine: Matrix4<f64>) -> Result<Self> {
        if !(data.ndim() == 3 || data.ndim() == 4) {
            return Err(Error::Invalid(format!(
                "a volume must be 3D or 4D, got {} dimensions",
                data.ndim()
            )));
        }
        let grid = Grid::new([data.shape()[0], data.shape()[1], data.shape()[2]], affine)?;
        let vs = grid.voxel_size();
        let info = VolumeInfo {
            pixdim: [vs[0], vs[1], vs[2], 0.0],
            ..Default::default()
        };
        Ok(Self { data, affine, info })
    }

    /// A zero-filled 3D volume on a grid.
    pub fn zeros(grid: &Grid) -> Self {
        Self::new(ArrayD::zeros(IxDyn(&grid.dims)), grid.affine).expect("grid is valid")
    }

    /// The spatial grid of this volume.
    pub fn grid(&self) -> Grid {
        Grid {
            dims: [
                self.data.shape()[0],
                self.data.shape()[1],
                self.data.shape()[2],
            ],
            affine: self.affine,
        }
    }

    /// Voxel sizes in mm (the affine's column lengths).
    pub fn voxel_size(&self) -> [f64; 3] {
        self.grid().voxel_size()
    }

    /// Number of volumes along the 4th axis (1 for a 3D image).
    pub fn n_volumes(&self) -> usize {
        if self.data.ndim() == 4 {
            self.data.shape()[3]
        } else {
            1
        }
    }

    /// View of the 3D frame `t` (the whole image for a 3D volume, where only `t = 0` exists).
    pub fn frame(&self, t: usize) -> ArrayView3<'_, f32> {
        let v = if self.data.ndim() == 4 {
            self.data.index_axis(Axis(3), t)
        } else {
            assert_eq!(t, 0, "a 3D volume has only frame 0");
            self.data.view()
        };
        v.into_dimensionality::<Ix3>().expect("spatial axes are 3D")
    }

    /// A 3D volume on the same grid with new data (e.g. a derived map); `data` must match the grid.
    pub fn with_data3(&self, data: ndarray::Array3<f32>) -> Result<Self> {
        let g = self.grid();
        if data.shape() != g.dims {
            return Err(Error::ShapeMismatch {
                what: "3D data for this grid".into(),
                expected: g.dims.to_vec(),
                got: data.shape().to_vec(),
            });
        }
        let mut v = Self::new(data.into_dyn(), self.affine)?;
        v.info.description = self.info.description.clone();
        Ok(v)
    }
}

/// Orientation code of an affine, e.g. `"RAS"` or `"LAS"`: for each voxel axis, the world
/// direction it points to most (R/L for x, A/P for y, S/I for z), as `nibabel.aff2axcodes` does.
pub fn orientation(affine: &Matrix4<f64>) -> String {
    let mut used = [false; 3];
    let mut out = String::new();
    for c in 0..3 {
        let col = [affine[(0, c)], affine[(1, c)], affine[(2, c)]];
        let mut best = None;
        for r in 0..3 {
            if used[r] {
                continue;
            }
            if best.is_none_or(|b: usize| col[r].abs() > col[b].abs()) {
                best = Some(r);
            }
        }
        let r = best.expect("three axes");
        used[r] = true;
        let pos = col[r] >= 0.0;
        out.push(match (r, pos) {
            (0, true) => 'R',
            (0, false) => 'L',
            (1, true) => 'A',
            (1, false) => 'P',
            (2, true) => 'S',
            _ => 'I',
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_codes() {
        let mut a = Matrix4::identity();
        assert_eq!(orientation(&a), "RAS");
        a[(0, 0)] = -2.0;
        assert_eq!(orientation(&a), "LAS");
        // swapped axes: i runs along y (posterior), j along x (right)
        let b = Matrix4::new(
            0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        );
        assert_eq!(orientation(&b), "PRS");
    }

    #[test]
    fn world_voxel_round_trip() {
        let mut a = Matrix4::identity() * 2.0;
        a[(3, 3)] = 1.0;
        a[(0, 0)] = -2.0;
        a[(0, 3)] = 90.0;
        a[(1, 3)] = -126.0;
        a[(2, 3)] = -72.0;
        let g = Grid::new([91, 109, 91], a).unwrap();
        let w = g.voxel_to_world([45.0, 63.0, 36.0]);
        assert_eq!(w, [0.0, 0.0, 0.0]);
        let v = g.world_to_voxel([10.0, -4.0, 8.0]);
        assert!(
            (v[0] - 40.0).abs() < 1e-12
                && (v[1] - 61.0).abs() < 1e-12
                && (v[2] - 40.0).abs() < 1e-12
        );
        assert_eq!(g.voxel_size(), [2.0, 2.0, 2.0]);
    }
}
