//! The voxel engine: statistics of every shuffle in tiles of voxels, with the maximum kept in a fixed order.

use ndarray::{Array2, ArrayView2, Axis, Slice};

use super::shuffles::Shuffle;
use super::types::Tail;
use crate::error::Result;
use crate::glm::{Factorised, GlmDesign, residualise_nuisance};

/// Precomputed model for the engine.
pub(super) struct Engine {
    /// Residualised data (n, V).
    pub(super) w: Array2<f64>,
    /// Rows: `a` then (if rank > 1) the orthonormal basis of span(X): (r, n).
    pub(super) rows: Array2<f64>,
    pub(super) rank1: bool,
    pub(super) a2: f64,
    pub(super) ss: Vec<f64>,
    pub(super) df: f64,
}

pub(super) const VOXEL_TILE: usize = 2048;

impl Engine {
    pub(super) fn new(data: ArrayView2<'_, f32>, design: &GlmDesign) -> Result<Self> {
        let f = Factorised::new(design)?;
        let n = design.n();
        let w = residualise_nuisance(data, &f);
        let rank1 = f.rank == 1;
        let r = if rank1 { 1 } else { 1 + f.rank };
        let mut rows = Array2::zeros((r, n));
        for i in 0..n {
            rows[[0, i]] = f.a[i];
            if !rank1 {
                for j in 0..f.rank {
                    rows[[1 + j, i]] = f.q[(i, j)];
                }
            }
        }
        let a2 = f.a.dot(&f.a);
        let ss = (0..w.ncols())
            .map(|v| w.column(v).dot(&w.column(v)))
            .collect();
        Ok(Self {
            w,
            rows,
            rank1,
            a2,
            ss,
            df: (n - f.rank) as f64,
        })
    }

    pub(super) fn r(&self) -> usize {
        self.rows.nrows()
    }

    /// Shuffled row block `(B·r, n)`.
    pub(super) fn shuffled_rows(&self, shuffles: &[Shuffle]) -> Array2<f64> {
        let (r, n) = self.rows.dim();
        let mut m = Array2::zeros((shuffles.len() * r, n));
        for (b, sh) in shuffles.iter().enumerate() {
            for j in 0..r {
                for i in 0..n {
                    let dst = match &sh.perm {
                        Some(p) => p[i] as usize,
                        None => i,
                    };
                    m[[b * r + j, dst]] = self.rows[[j, i]] * sh.signs[i];
                }
            }
        }
        m
    }

    /// t maps of a block of shuffles, calling `visit(b, v0, t_tile_row)` per shuffle and tile.
    pub(super) fn for_each_tile(
        &self,
        shuffles: &[Shuffle],
        mut visit: impl FnMut(usize, usize, &[f64]),
    ) {
        let m = self.shuffled_rows(shuffles);
        let r = self.r();
        let nv = self.w.ncols();
        let mut tbuf = vec![0.0; VOXEL_TILE];
        let sqrt_df = self.df.sqrt();
        let a2 = self.a2;
        let mut v0 = 0;
        while v0 < nv {
            let v1 = (v0 + VOXEL_TILE).min(nv);
            let width = v1 - v0;
            let g = m.dot(&self.w.slice_axis(Axis(1), Slice::from(v0..v1)));
            let g = g.as_standard_layout();
            let gs = g.as_slice().expect("standard layout");
            let ss = &self.ss[v0..v1];
            for b in 0..shuffles.len() {
                let tb = &mut tbuf[..width];
                let num = &gs[b * r * width..(b * r + 1) * width];
                if self.rank1 {
                    // t = num·sqrt(df) / sqrt(ss·a2 − num²)
                    for k in 0..width {
                        let nu = num[k];
                        let tot = ss[k] * a2;
                        let den2 = tot - nu * nu;
                        tb[k] = if den2 > 1e-12 * tot {
                            nu * sqrt_df / den2.sqrt()
                        } else {
                            0.0
                        };
                    }
                } else {
                    tb.fill(0.0);
                    for j in 1..r {
                        let row = &gs[(b * r + j) * width..(b * r + j + 1) * width];
                        for k in 0..width {
                            tb[k] += row[k] * row[k];
                        }
                    }
                    for k in 0..width {
                        let nu = num[k];
                        let tot = ss[k] * a2;
                        let den2 = (ss[k] - tb[k]) * a2;
                        tb[k] = if den2 > 1e-12 * tot {
                            nu * sqrt_df / den2.sqrt()
                        } else {
                            0.0
                        };
                    }
                }
                visit(b, v0, tb);
            }
            v0 = v1;
        }
    }
}

/// Count exceedances and track the maximum of the tail statistic over one tile.
#[inline]
pub(super) fn scan_tile(tile: &[f64], floor: &[f64], counts: &mut [u32], tail: Tail) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    match tail {
        Tail::Positive => {
            for k in 0..tile.len() {
                let st = tile[k];
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
        Tail::Negative => {
            for k in 0..tile.len() {
                let st = -tile[k];
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
        Tail::TwoSided => {
            for k in 0..tile.len() {
                let st = tile[k].abs();
                counts[k] += (st >= floor[k]) as u32;
                mx = if st > mx { st } else { mx };
            }
        }
    }
    mx
}

#[inline]
pub(super) fn tail_stat(t: f64, tail: Tail) -> f64 {
    match tail {
        Tail::Positive => t,
        Tail::Negative => -t,
        Tail::TwoSided => t.abs(),
    }
}

#[inline]
pub(super) fn tie_floor(obs: f64) -> f64 {
    obs - 1e-10 * obs.abs()
}
