//! ROI extraction: regional mean, median and voxel count of a map within atlas labels or masks.

use cbflow_image::{Grid, Interp, Volume};
use ndarray::{Array3, ArrayView3};

use crate::transform::{TransformChain, apply};
use crate::{Error, Result};

/// A named region: the union of one or more atlas label values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Region name (e.g. `ACC_sub_L`).
    pub name: String,
    /// Atlas label values belonging to the region.
    pub labels: Vec<i32>,
}

impl Region {
    /// A region from a name and its labels.
    pub fn new(name: impl Into<String>, labels: Vec<i32>) -> Self {
        Self {
            name: name.into(),
            labels,
        }
    }
}

/// Statistics of a map within a region.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiStat {
    /// Region name.
    pub name: String,
    /// Mean of the finite map values in the region (NaN when the region is empty).
    pub mean: f64,
    /// Median of the finite map values (mean of the two middle values for an even count; NaN
    /// when empty).
    pub median: f64,
    /// Number of voxels with a finite map value in the region.
    pub n_voxels: usize,
}

/// Grey-matter mask from a probability map: `prob > threshold` (0.5 in the study plan).
pub fn grey_matter_mask(prob: ArrayView3<f32>, threshold: f32) -> Array3<bool> {
    prob.mapv(|p| p > threshold)
}

/// Integer labels from a label image stored as floats (rounded; non-finite → 0).
pub fn labels_from_volume(v: ArrayView3<f32>) -> Array3<i32> {
    v.mapv(|x| if x.is_finite() { x.round() as i32 } else { 0 })
}

/// Bring an atlas (labels stored as floats) onto `target` through `chain` (target world → atlas
/// world) with nearest-neighbour interpolation; shape `target.dims`.
pub fn labels_to_grid(
    atlas: &Volume,
    target: &Grid,
    chain: &TransformChain,
) -> Result<Array3<i32>> {
    let v = apply(atlas, target, chain, Interp::Nearest)?;
    Ok(labels_from_volume(v.frame(0)))
}

fn stat(name: &str, mut vals: Vec<f64>) -> RoiStat {
    let n = vals.len();
    if n == 0 {
        return RoiStat {
            name: name.into(),
            mean: f64::NAN,
            median: f64::NAN,
            n_voxels: 0,
        };
    }
    let mean = vals.iter().sum::<f64>() / n as f64;
    vals.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        vals[n / 2]
    } else {
        0.5 * (vals[n / 2 - 1] + vals[n / 2])
    };
    RoiStat {
        name: name.into(),
        mean,
        median,
        n_voxels: n,
    }
}

fn check(what: &str, map: &ArrayView3<f32>, shape: &[usize]) -> Result<()> {
    if map.shape() != shape {
        return Err(Error::ShapeMismatch {
            what: what.into(),
            expected: map.shape().to_vec(),
            got: shape.to_vec(),
        });
    }
    Ok(())
}

/// Mean, median and voxel count of `map` (shape `[nx, ny, nz]`) in each region of `labels`
/// (same shape), optionally restricted to `mask` (e.g. grey matter). Non-finite map values are
/// ignored. Empty regions give NaN statistics and `n_voxels = 0`.
pub fn roi_stats(
    map: ArrayView3<f32>,
    labels: ArrayView3<i32>,
    regions: &[Region],
    mask: Option<ArrayView3<bool>>,
) -> Result<Vec<RoiStat>> {
    check("label image", &map, labels.shape())?;
    if let Some(m) = &mask {
        check("roi mask", &map, m.shape())?;
    }
    let max_label = regions
        .iter()
        .flat_map(|r| r.labels.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(0) as usize;
    // values per label, one pass
    let mut per_label: Vec<Vec<f64>> = vec![Vec::new(); max_label + 1];
    for ((idx, &v), &l) in map.indexed_iter().zip(labels.iter()) {
        if l <= 0
            || l as usize > max_label
            || !v.is_finite()
            || mask.as_ref().is_some_and(|m| !m[idx])
        {
            continue;
        }
        per_label[l as usize].push(v as f64);
    }
    Ok(regions
        .iter()
        .map(|r| {
            let mut labs: Vec<i32> = r.labels.iter().copied().filter(|&l| l > 0).collect();
            labs.sort_unstable();
            labs.dedup();
            let vals: Vec<f64> = labs
                .iter()
                .flat_map(|&l| per_label[l as usize].iter().copied())
                .collect();
            stat(&r.name, vals)
        })
        .collect())
}

/// Mean, median and voxel count of `map` within a boolean mask (same shape): grey matter
/// (`grey_matter_mask`) or the whole brain (global).
pub fn mask_stats(map: ArrayView3<f32>, mask: ArrayView3<bool>, name: &str) -> Result<RoiStat> {
    check("roi mask", &map, mask.shape())?;
    let vals: Vec<f64> = map
        .iter()
        .zip(mask.iter())
        .filter(|(v, m)| **m && v.is_finite())
        .map(|(v, _)| *v as f64)
        .collect();
    Ok(stat(name, vals))
}

/// A parcel table: statistics for every positive label present in `labels` (ascending), named
/// by the label value, optionally within `mask`.
pub fn parcel_table(
    map: ArrayView3<f32>,
    labels: ArrayView3<i32>,
    mask: Option<ArrayView3<bool>>,
) -> Result<Vec<(i32, RoiStat)>> {
    let mut present: Vec<i32> = labels.iter().copied().filter(|&l| l > 0).collect();
    present.sort_unstable();
    present.dedup();
    let regions: Vec<Region> = present
        .iter()
        .map(|&l| Region::new(l.to_string(), vec![l]))
        .collect();
    let stats = roi_stats(map, labels, &regions, mask)?;
    Ok(present.into_iter().zip(stats).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_a_naive_computation() {
        let map = Array3::from_shape_fn((6, 5, 4), |(i, j, k)| (i * 20 + j * 4 + k) as f32 * 0.5);
        let labels = Array3::from_shape_fn((6, 5, 4), |(i, j, _)| {
            if i < 2 {
                151
            } else if j < 2 {
                152
            } else {
                0
            }
        });
        let mask = Array3::from_shape_fn((6, 5, 4), |(_, _, k)| k != 3);
        let r = roi_stats(
            map.view(),
            labels.view(),
            &[
                Region::new("ACC_sub_L", vec![151]),
                Region::new("ACC_sub_R", vec![152]),
                Region::new("ACC_sub", vec![151, 152]),
            ],
            Some(mask.view()),
        )
        .unwrap();
        let naive = |want: &[i32]| {
            let mut v: Vec<f64> = map
                .indexed_iter()
                .filter(|(ix, _)| want.contains(&labels[*ix]) && mask[*ix])
                .map(|(_, &x)| x as f64)
                .collect();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            (
                v.iter().sum::<f64>() / n as f64,
                if n % 2 == 1 {
                    v[n / 2]
                } else {
                    (v[n / 2 - 1] + v[n / 2]) / 2.0
                },
                n,
            )
        };
        for (s, want) in r.iter().zip([vec![151], vec![152], vec![151, 152]]) {
            let (m, md, n) = naive(&want);
            assert_eq!(s.n_voxels, n);
            assert!(
                (s.mean - m).abs() < 1e-9 && (s.median - md).abs() < 1e-9,
                "{s:?}"
            );
        }
        assert_eq!(r[2].name, "ACC_sub");
        let empty = roi_stats(
            map.view(),
            labels.view(),
            &[Region::new("none", vec![7])],
            None,
        )
        .unwrap();
        assert!(empty[0].mean.is_nan() && empty[0].n_voxels == 0);
        let g = mask_stats(map.view(), mask.view(), "global").unwrap();
        assert_eq!(g.n_voxels, 6 * 5 * 3);
        let t = parcel_table(map.view(), labels.view(), None).unwrap();
        assert_eq!(t.iter().map(|x| x.0).collect::<Vec<_>>(), vec![151, 152]);
    }
}
