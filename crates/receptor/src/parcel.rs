//! Parcellation of volumetric maps, parcel centroids and voxel extraction.

use std::collections::BTreeMap;

use nalgebra::Matrix4;
use ndarray::{ArrayView3, Zip};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Mean value of a map in each parcel of a label image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParcelValues {
    /// Parcel labels (positive integers of the label image), ascending.
    pub labels: Vec<i32>,
    /// Mean of the map's finite in-mask voxels in each parcel (NaN if a parcel has none).
    pub values: Vec<f64>,
    /// Number of voxels averaged in each parcel.
    pub counts: Vec<usize>,
}

impl ParcelValues {
    /// Keep only parcels with at least `min_count` voxels (and a finite value).
    pub fn filter_min_count(&self, min_count: usize) -> ParcelValues {
        let keep: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.counts[i] >= min_count.max(1) && self.values[i].is_finite())
            .collect();
        ParcelValues {
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
            values: keep.iter().map(|&i| self.values[i]).collect(),
            counts: keep.iter().map(|&i| self.counts[i]).collect(),
        }
    }

    /// Value of parcel `label`, if present.
    pub fn get(&self, label: i32) -> Option<f64> {
        self.labels
            .binary_search(&label)
            .ok()
            .map(|i| self.values[i])
    }

    /// Values of the parcels in `labels` (in that order); NaN where a parcel is absent.
    pub fn select(&self, labels: &[i32]) -> Vec<f64> {
        labels
            .iter()
            .map(|&l| self.get(l).unwrap_or(f64::NAN))
            .collect()
    }
}

/// Average `map` within each parcel of `labels` (label ≤ 0 is background), optionally
/// restricted to `mask` (e.g. grey matter). Voxels with non-finite map values are skipped.
///
/// `map`, `labels` and `mask` must share one grid (same shape; resample beforehand).
/// Every positive label of the image is listed, including parcels with no usable voxel
/// (count 0, value NaN), so that parcel order is the atlas's own.
pub fn parcellate(
    map: ArrayView3<f32>,
    labels: ArrayView3<i32>,
    mask: Option<ArrayView3<bool>>,
) -> Result<ParcelValues> {
    if map.shape() != labels.shape() {
        return Err(Error::ShapeMismatch {
            what: "label image (shape of map)",
            expected: format!("{:?}", map.shape()),
            got: format!("{:?}", labels.shape()),
        });
    }
    if let Some(m) = &mask
        && m.shape() != map.shape()
    {
        return Err(Error::ShapeMismatch {
            what: "mask (shape of map)",
            expected: format!("{:?}", map.shape()),
            got: format!("{:?}", m.shape()),
        });
    }
    let mut acc: BTreeMap<i32, (f64, usize)> = BTreeMap::new();
    let mut add = |v: f32, l: i32, inside: bool| {
        if l <= 0 {
            return;
        }
        let e = acc.entry(l).or_insert((0.0, 0));
        if inside && v.is_finite() {
            e.0 += f64::from(v);
            e.1 += 1;
        }
    };
    match mask {
        Some(m) => Zip::from(&map)
            .and(&labels)
            .and(&m)
            .for_each(|&v, &l, &k| add(v, l, k)),
        None => Zip::from(&map)
            .and(&labels)
            .for_each(|&v, &l| add(v, l, true)),
    }
    let mut out = ParcelValues {
        labels: vec![],
        values: vec![],
        counts: vec![],
    };
    for (l, (s, c)) in acc {
        out.labels.push(l);
        out.values.push(if c > 0 { s / c as f64 } else { f64::NAN });
        out.counts.push(c);
    }
    Ok(out)
}

/// Centre of mass (mm, world coordinates through `affine`, voxel → world) of every positive
/// label, optionally restricted to `mask`. Returns `(labels ascending, centroids)`.
///
/// Used to build the Euclidean parcel distance matrix of the variogram and JuSpace nulls
/// (JuSpace's `center_of_mass_my` does the same in voxel space).
pub fn parcel_centroids(
    labels: ArrayView3<i32>,
    mask: Option<ArrayView3<bool>>,
    affine: &Matrix4<f64>,
) -> Result<(Vec<i32>, Vec<[f64; 3]>)> {
    if let Some(m) = &mask
        && m.shape() != labels.shape()
    {
        return Err(Error::ShapeMismatch {
            what: "mask (shape of labels)",
            expected: format!("{:?}", labels.shape()),
            got: format!("{:?}", m.shape()),
        });
    }
    let mut acc: BTreeMap<i32, ([f64; 3], usize)> = BTreeMap::new();
    for ((i, j, k), &l) in labels.indexed_iter() {
        if l <= 0 || mask.as_ref().is_some_and(|m| !m[(i, j, k)]) {
            continue;
        }
        let e = acc.entry(l).or_insert(([0.0; 3], 0));
        e.0[0] += i as f64;
        e.0[1] += j as f64;
        e.0[2] += k as f64;
        e.1 += 1;
    }
    let mut ls = Vec::with_capacity(acc.len());
    let mut cs = Vec::with_capacity(acc.len());
    for (l, (s, c)) in acc {
        let c = c as f64;
        ls.push(l);
        cs.push(voxel_to_world(affine, [s[0] / c, s[1] / c, s[2] / c]));
    }
    Ok((ls, cs))
}

fn voxel_to_world(a: &Matrix4<f64>, v: [f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for r in 0..3 {
        out[r] = a[(r, 0)] * v[0] + a[(r, 1)] * v[1] + a[(r, 2)] * v[2] + a[(r, 3)];
    }
    out
}

/// Values and world coordinates (mm) of the voxels where `mask` is true and `map` is finite,
/// in C (row-major, `i, j, k`) order. Input of the voxel-wise correlation and of
/// [`crate::SampledSurrogates`].
pub fn masked_voxels(
    map: ArrayView3<f32>,
    mask: ArrayView3<bool>,
    affine: &Matrix4<f64>,
) -> Result<(Vec<f64>, Vec<[f64; 3]>)> {
    if map.shape() != mask.shape() {
        return Err(Error::ShapeMismatch {
            what: "mask (shape of map)",
            expected: format!("{:?}", map.shape()),
            got: format!("{:?}", mask.shape()),
        });
    }
    let mut vals = Vec::new();
    let mut coords = Vec::new();
    for ((i, j, k), &v) in map.indexed_iter() {
        if mask[(i, j, k)] && v.is_finite() {
            vals.push(f64::from(v));
            coords.push(voxel_to_world(affine, [i as f64, j as f64, k as f64]));
        }
    }
    Ok((vals, coords))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn parcellate_against_naive() {
        let map = Array3::from_shape_fn((4, 3, 2), |(i, j, k)| (i * 6 + j * 2 + k) as f32);
        let labels = Array3::from_shape_fn((4, 3, 2), |(i, j, _)| ((i + j) % 3) as i32);
        let mut mask = Array3::from_elem((4, 3, 2), true);
        mask[(1, 1, 0)] = false;
        let pv = parcellate(map.view(), labels.view(), Some(mask.view())).unwrap();
        assert_eq!(pv.labels, vec![1, 2]);
        for (n, &l) in pv.labels.iter().enumerate() {
            let mut s = 0.0;
            let mut c = 0;
            for (idx, &v) in map.indexed_iter() {
                if labels[idx] == l && mask[idx] {
                    s += f64::from(v);
                    c += 1;
                }
            }
            assert_eq!(pv.counts[n], c);
            assert!((pv.values[n] - s / c as f64).abs() < 1e-12);
        }
        let small = Array3::<i32>::zeros((3, 3, 2));
        assert!(parcellate(map.view(), small.view(), None).is_err());
    }

    #[test]
    fn centroid_through_affine() {
        let mut labels = Array3::zeros((5, 5, 5));
        labels[(1, 2, 3)] = 7;
        labels[(3, 2, 3)] = 7;
        let mut a = Matrix4::identity();
        a[(0, 0)] = -2.0;
        a[(0, 3)] = 10.0;
        let (l, c) = parcel_centroids(labels.view(), None, &a).unwrap();
        assert_eq!(l, vec![7]);
        assert_eq!(c[0], [10.0 - 4.0, 2.0, 3.0]);
    }
}
