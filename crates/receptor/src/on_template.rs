//! A PET map put on a template grid: normalised interpolation through the affines (no
//! background value leaks into an edge voxel), the voxels where it is valid (grey matter,
//! brain, inside the map's support) and its z-scores over them.

use cbflow_image::{Grid, Interp, Volume};
use ndarray::{Array3, ArrayView3, Zip};

use crate::corr::zscore;
use crate::error::{Error, Result};
use crate::support::map_support;

/// Grey-matter probability (template prior, 0–1) from which a voxel counts as grey matter.
pub const GM_THRESHOLD: f32 = 0.3;
/// Smallest interpolated support weight (share of the interpolation inside the map's support)
/// at which a resampled receptor value is used.
pub const SUPPORT_WEIGHT: f32 = 0.5;
/// Fewest valid voxels a map must have on the template for a correlation over it.
pub const MIN_VALID_VOXELS: usize = 100;

/// A PET map on a template grid.
#[derive(Debug, Clone)]
pub struct MapOnTemplate {
    /// z-scored values (over `valid`, sample SD), NaN elsewhere; template grid `[x, y, z]`.
    pub z: Array3<f32>,
    /// Grey matter ∧ brain mask ∧ inside the map's support.
    pub valid: Array3<bool>,
    /// Valid voxels.
    pub n_valid: usize,
    /// Grey-matter voxels of the template (GM probability ≥ [`GM_THRESHOLD`] in the brain).
    pub n_gm: usize,
}

impl MapOnTemplate {
    /// Fraction of the template's grey-matter voxels that are valid.
    pub fn coverage(&self) -> f64 {
        self.n_valid as f64 / self.n_gm.max(1) as f64
    }
}

/// Puts frame 0 of `map` on `grid` by normalised trilinear interpolation through the affines:
/// `value = lin(v · s) / lin(s)` with `s` the map's [`map_support`] (1 inside, 0 outside), so
/// that no background value leaks into edge voxels (an edge voxel keeps the mean of its
/// in-support neighbours). Valid = `gm` ≥ [`GM_THRESHOLD`] ∧ `brain` > 0.5 ∧ `lin(s)` ≥
/// [`SUPPORT_WEIGHT`]; the values are z-scored over the valid voxels (sample SD).
///
/// `gm` (grey-matter probability) and `brain` (mask) are on `grid`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `gm` or `brain` is not on `grid`; [`Error::TooFew`] when
/// fewer than [`MIN_VALID_VOXELS`] grey-matter voxels are valid (the map does not cover the
/// template); [`Error::Resample`] when the map's affine cannot be inverted;
/// [`Error::ZeroVariance`] for a constant map.
pub fn map_on_template(
    map: &Volume,
    grid: &Grid,
    gm: ArrayView3<f32>,
    brain: ArrayView3<f32>,
) -> Result<MapOnTemplate> {
    for (what, a) in [("grey-matter map", &gm), ("brain mask", &brain)] {
        if a.shape() != grid.dims {
            return Err(Error::ShapeMismatch {
                what,
                expected: format!("{:?}", grid.dims),
                got: format!("{:?}", a.shape()),
            });
        }
    }
    let src = map.frame(0);
    let support = map_support(src);
    let masked = Zip::from(&src)
        .and(&support)
        .map_collect(|&v, &s| if s { v } else { 0.0 });
    let resample = |a: Array3<f32>| -> Result<Array3<f32>> {
        let v = Volume::new(a.into_dyn(), map.affine).map_err(Error::resample)?;
        let on =
            cbflow_image::resample_to_grid(&v, grid, Interp::Linear).map_err(Error::resample)?;
        Ok(on.frame(0).to_owned())
    };
    let num = resample(masked)?;
    let weight = resample(support.mapv(|s| if s { 1.0f32 } else { 0.0 }))?;
    let values = Zip::from(&num)
        .and(&weight)
        .map_collect(|&n, &w| if w >= SUPPORT_WEIGHT { n / w } else { f32::NAN });
    let gm_mask = Zip::from(&gm)
        .and(&brain)
        .map_collect(|&g, &b| g >= GM_THRESHOLD && b > 0.5);
    let valid = Zip::from(&gm_mask)
        .and(&values)
        .map_collect(|&m, &v| m && v.is_finite());
    let n_gm = gm_mask.iter().filter(|&&m| m).count();
    let n_valid = valid.iter().filter(|&&m| m).count();
    if n_valid < MIN_VALID_VOXELS {
        return Err(Error::TooFew {
            what: "grey-matter voxels covered by the map",
            min: MIN_VALID_VOXELS,
            got: n_valid,
        });
    }
    let vals: Vec<f64> = values
        .iter()
        .zip(valid.iter())
        .filter(|(_, m)| **m)
        .map(|(v, _)| f64::from(*v))
        .collect();
    let zs = zscore(&vals)?;
    let mut z = Array3::from_elem(valid.raw_dim(), f32::NAN);
    let mut it = zs.into_iter();
    Zip::from(&mut z).and(&valid).for_each(|o, &m| {
        if m {
            *o = it.next().expect("one z per valid voxel") as f32;
        }
    });
    Ok(MapOnTemplate {
        z,
        valid,
        n_valid,
        n_gm,
    })
}

#[cfg(test)]
mod tests {
    use cbflow_image::{Grid, Volume};
    use nalgebra::Matrix4;
    use ndarray::Array3;

    use super::*;

    /// A map on the template's own grid: every valid voxel keeps its value (the interpolation
    /// weights are 1 at grid points, so the normalised interpolation is exact), the valid
    /// voxels are the grey matter inside the map's support, and the z-scores are the values
    /// standardised by their mean and sample SD computed here.
    #[test]
    fn a_map_on_the_template_grid_keeps_its_values_and_is_standardised() {
        let n = 16;
        let affine = Matrix4::new_scaling(2.0);
        let grid = Grid {
            dims: [n, n, n],
            affine,
        };
        // grey matter: a ball; brain: everything
        let c = (n as f64 - 1.0) / 2.0;
        let gm = Array3::from_shape_fn((n, n, n), |(i, j, k)| {
            let r2 = (i as f64 - c).powi(2) + (j as f64 - c).powi(2) + (k as f64 - c).powi(2);
            if r2 <= 36.0 { 0.9f32 } else { 0.1 }
        });
        let brain = Array3::from_elem((n, n, n), 1.0f32);
        // the map: a gradient along x inside a box (its support), background 0 on the faces
        let inside = |i: usize, j: usize, k: usize| {
            (3..13).contains(&i) && (2..14).contains(&j) && (2..14).contains(&k)
        };
        let map = Array3::from_shape_fn((n, n, n), |(i, j, k)| {
            if inside(i, j, k) { 5.0 + i as f32 } else { 0.0 }
        });
        let vol = Volume::new(map.clone().into_dyn(), affine).unwrap();
        let on = map_on_template(&vol, &grid, gm.view(), brain.view()).unwrap();
        let mut vals = Vec::new();
        for ((i, j, k), &v) in on.valid.indexed_iter() {
            let want = gm[(i, j, k)] >= GM_THRESHOLD && inside(i, j, k);
            assert_eq!(v, want, "{i} {j} {k}");
            if v {
                vals.push(f64::from(map[(i, j, k)]));
            }
        }
        assert_eq!(on.n_valid, vals.len());
        assert_eq!(on.n_gm, gm.iter().filter(|&&g| g >= GM_THRESHOLD).count());
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let sd =
            (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (vals.len() - 1) as f64).sqrt();
        for ((i, j, k), &z) in on.z.indexed_iter() {
            if on.valid[(i, j, k)] {
                let want = (f64::from(map[(i, j, k)]) - m) / sd;
                assert!((f64::from(z) - want).abs() < 1e-5, "{z} vs {want}");
            } else {
                assert!(z.is_nan());
            }
        }
        assert!((on.coverage() - on.n_valid as f64 / on.n_gm as f64).abs() < 1e-15);
        // a map that covers too little of the grey matter is refused
        let small = Array3::from_shape_fn((n, n, n), |(i, j, k)| {
            if (7..9).contains(&i) && (7..9).contains(&j) && (7..9).contains(&k) {
                1.0 + i as f32
            } else {
                0.0
            }
        });
        let vol = Volume::new(small.into_dyn(), affine).unwrap();
        assert!(matches!(
            map_on_template(&vol, &grid, gm.view(), brain.view()),
            Err(Error::TooFew { got: 8, .. })
        ));
    }
}
