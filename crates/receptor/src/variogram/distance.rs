//! Distances between the points of a map.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// Symmetric matrix of pairwise distances (mm) between `n` points, stored as `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct DistanceMatrix {
    pub(super) n: usize,
    pub(super) data: Vec<f32>,
}

impl DistanceMatrix {
    /// Euclidean distances between points given as world coordinates (mm), shape n × 3.
    pub fn from_coordinates(coords: &[[f64; 3]]) -> Result<Self> {
        for (i, c) in coords.iter().enumerate() {
            if c.iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: "coordinates",
                    index: i,
                });
            }
        }
        let n = coords.len();
        let mut data = vec![0.0f32; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                let d = dist(&coords[i], &coords[j]) as f32;
                data[i * n + j] = d;
                data[j * n + i] = d;
            }
        }
        Ok(Self { n, data })
    }

    /// A given n × n matrix (e.g. geodesic distances). Must be square, finite, non-negative,
    /// symmetric (to 1e-6 relative) with a zero diagonal.
    pub fn from_array(d: ArrayView2<f64>) -> Result<Self> {
        let (n, m) = d.dim();
        if n != m {
            return Err(Error::ShapeMismatch {
                what: "distance matrix",
                expected: format!("[{n}, {n}]"),
                got: format!("[{n}, {m}]"),
            });
        }
        let mut data = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                let v = d[(i, j)];
                let bad = |reason| {
                    Err(Error::InvalidDistance {
                        reason,
                        row: i,
                        col: j,
                    })
                };
                if !v.is_finite() || v < 0.0 {
                    return bad("entries must be finite and non-negative");
                }
                if i == j && v != 0.0 {
                    return bad("diagonal must be zero");
                }
                if (v - d[(j, i)]).abs() > 1e-6 * v.abs().max(1.0) {
                    return bad("matrix must be symmetric");
                }
                data[i * n + j] = v as f32;
            }
        }
        Ok(Self { n, data })
    }

    /// Number of points.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Distance between points `i` and `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        f64::from(self.data[i * self.n + j])
    }
}

pub(super) fn dist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}
