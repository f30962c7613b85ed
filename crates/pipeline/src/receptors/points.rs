//! The points a receptor map is correlated over: parcels of a parcellation, or voxels of a
//! regular lattice, each with the voxels that feed it.

use std::collections::BTreeMap;

use ndarray::{Array3, ArrayView3};

use super::options::{MIN_PARCEL_VOXELS, VOXEL_SPACING_MM};
use crate::template::Template;

/// The points (parcels or lattice voxels) of one map: which voxels feed each point.
pub(super) struct Points {
    /// Parcel labels (parcel level) — empty at voxel level.
    pub(super) labels: Vec<i32>,
    /// For each point, the flat voxel indices (C order of the template grid) averaged.
    pub(super) members: Vec<Vec<usize>>,
    /// World coordinates (mm) of each point (parcel centroid or voxel centre).
    pub(super) coords: Vec<[f64; 3]>,
}

impl Points {
    pub(super) fn n(&self) -> usize {
        self.members.len()
    }

    /// Mean of `a` (template grid, C-order flat) over each point's voxels.
    pub(super) fn reduce(&self, a: &[f64]) -> Vec<f64> {
        self.members
            .iter()
            .map(|m| m.iter().map(|&i| a[i]).sum::<f64>() / m.len() as f64)
            .collect()
    }
}

pub(super) fn flat_c(a: ArrayView3<f32>) -> Vec<f64> {
    a.iter().map(|&v| f64::from(v)).collect()
}

pub(super) fn build_points(
    mask: &Array3<bool>,
    labels: Option<&Array3<i32>>,
    template: &Template,
) -> Points {
    let (nx, ny, nz) = mask.dim();
    let flat = |i: usize, j: usize, k: usize| (i * ny + j) * nz + k;
    let grid = &template.grid;
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
            let mut p = Points {
                labels: vec![],
                members: vec![],
                coords: vec![],
            };
            for (lab, (m, s)) in acc {
                if m.len() >= MIN_PARCEL_VOXELS {
                    let c = m.len() as f64;
                    p.coords
                        .push(grid.voxel_to_world([s[0] / c, s[1] / c, s[2] / c]));
                    p.labels.push(lab);
                    p.members.push(m);
                }
            }
            p
        }
        None => {
            let vs = grid.voxel_size();
            let step = ((VOXEL_SPACING_MM / vs[0].min(vs[1]).min(vs[2])).round() as usize).max(1);
            let mut p = Points {
                labels: vec![],
                members: vec![],
                coords: vec![],
            };
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
            p
        }
    }
}
