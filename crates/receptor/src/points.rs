//! The points a receptor map is correlated over: parcels of a parcellation, or voxels of a
//! regular lattice, each with the voxels that feed it.

use std::collections::BTreeMap;

use cbflow_image::Grid;
use ndarray::{Array3, ArrayView3};

/// Fewest voxels a parcel must have (inside grey matter and the map's support) to be used.
pub const MIN_PARCEL_VOXELS: usize = 5;
/// Spacing (mm) of the voxel lattice of the voxel-wise analysis (every `round(4 / voxel size)`-th
/// voxel along each axis: ~20 000 grey-matter voxels in MNI space, what the sampled variogram
/// method is built for).
pub const VOXEL_SPACING_MM: f64 = 4.0;

/// The points (parcels or lattice voxels) of one map: which voxels feed each point.
#[derive(Debug, Clone)]
pub struct Points {
    /// Parcel labels (parcel level) — empty at voxel level.
    pub labels: Vec<i32>,
    /// For each point, the flat voxel indices (C order of the grid) averaged.
    pub members: Vec<Vec<usize>>,
    /// World coordinates (mm) of each point (parcel centroid or voxel centre).
    pub coords: Vec<[f64; 3]>,
}

impl Points {
    /// Number of points.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// Mean of `a` (the grid's values, C-order flat) over each point's voxels.
    pub fn reduce(&self, a: &[f64]) -> Vec<f64> {
        self.members
            .iter()
            .map(|m| m.iter().map(|&i| a[i]).sum::<f64>() / m.len() as f64)
            .collect()
    }

    /// The points of `mask` on `grid`: with `labels` (same shape), one point per label > 0
    /// with at least [`MIN_PARCEL_VOXELS`] voxels in the mask, at its centroid, in label
    /// order; without, the mask's voxels on a lattice of every `round(VOXEL_SPACING_MM /
    /// smallest voxel size)`-th voxel along each axis, at their centres.
    pub fn build(mask: &Array3<bool>, labels: Option<&Array3<i32>>, grid: &Grid) -> Points {
        let (nx, ny, nz) = mask.dim();
        let flat = |i: usize, j: usize, k: usize| (i * ny + j) * nz + k;
        let mut p = Points {
            labels: vec![],
            members: vec![],
            coords: vec![],
        };
        match labels {
            Some(l) => {
                let mut acc: BTreeMap<i32, (Vec<usize>, [f64; 3])> = BTreeMap::new();
                for ((i, j, k), &m) in mask.indexed_iter() {
                    let lab = l[(i, j, k)];
                    if m && lab > 0 {
                        let e = acc.entry(lab).or_insert((Vec::new(), [0.0; 3]));
                        e.0.push(flat(i, j, k));
                        e.1[0] += i as f64;
                        e.1[1] += j as f64;
                        e.1[2] += k as f64;
                    }
                }
                for (lab, (m, s)) in acc {
                    if m.len() >= MIN_PARCEL_VOXELS {
                        let c = m.len() as f64;
                        p.coords
                            .push(grid.voxel_to_world([s[0] / c, s[1] / c, s[2] / c]));
                        p.labels.push(lab);
                        p.members.push(m);
                    }
                }
            }
            None => {
                let vs = grid.voxel_size();
                let step =
                    ((VOXEL_SPACING_MM / vs[0].min(vs[1]).min(vs[2])).round() as usize).max(1);
                for i in (0..nx).step_by(step) {
                    for j in (0..ny).step_by(step) {
                        for k in (0..nz).step_by(step) {
                            if mask[(i, j, k)] {
                                p.members.push(vec![flat(i, j, k)]);
                                p.coords
                                    .push(grid.voxel_to_world([i as f64, j as f64, k as f64]));
                            }
                        }
                    }
                }
            }
        }
        p
    }
}

/// A 3D array's values in C order, as `f64` (the flat index of [`Points::members`]).
pub fn flat_c(a: ArrayView3<f32>) -> Vec<f64> {
    a.iter().map(|&v| f64::from(v)).collect()
}
