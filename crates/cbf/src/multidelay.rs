//! Multi-delay fit of CBF and arterial transit time (ATT) per voxel.
//!
//! Model: the single-compartment general kinetic model of [`crate::kinetic`]
//! (Buxton et al. 1998; Woods et al. 2024, MRM 92:469, the ISMRM perfusion study group
//! recommendations for multi-timepoint ASL). For a fixed ATT δ the model is linear in
//! CBF, ΔM_i / M0 = CBF · g_i(δ), so CBF has the closed-form least-squares solution
//! CBF(δ) = Σ g_i y_i / Σ g_i², and the residual sum of squares
//! RSS(δ) = Σ y_i² − (Σ g_i y_i)² / Σ g_i² is a function of δ alone. δ is found by
//! an exhaustive search on a fine grid followed by a golden-section refinement in the
//! bracket around the best grid point (profile likelihood / variable projection).
//! ATT is identifiable only when some delay (plus τ for pCASL) falls before arrival:
//! for pCASL, voxels with δ below the shortest PLD get the right CBF but an arbitrary δ
//! in the flat region.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};
use crate::kinetic::{check_finite4, check_m0, check_series, kinetic_factor};
use crate::params::QuantParams;

/// Search settings of [`fit_multi_delay`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MultiDelayOptions {
    /// Lower ATT bound, s (default 0.1).
    pub att_min_s: f64,
    /// Upper ATT bound, s (default 3.0).
    pub att_max_s: f64,
    /// Grid step, s (default 0.01).
    pub grid_step_s: f64,
    /// Golden-section tolerance on ATT, s (default 1e-5).
    pub refine_tol_s: f64,
}

impl Default for MultiDelayOptions {
    fn default() -> Self {
        Self {
            att_min_s: 0.1,
            att_max_s: 3.0,
            grid_step_s: 0.01,
            refine_tol_s: 1e-5,
        }
    }
}

/// Result of [`fit_multi_delay`].
#[derive(Debug, Clone)]
pub struct MultiDelayFit {
    /// CBF `[x, y, z]`, mL/100 g/min; 0 outside the mask.
    pub cbf: Array3<f32>,
    /// ATT `[x, y, z]`, s; 0 outside the mask.
    pub att: Array3<f32>,
    /// Residual sum of squares of ΔM/M0 per voxel (dimensionless); 0 outside the mask.
    pub rss: Array3<f32>,
    /// Voxels whose ATT ended within one grid step of a bound.
    pub n_at_bound: usize,
    /// Options used.
    pub options: MultiDelayOptions,
}

/// Average ΔM volumes that share a delay: `delta_m` `[x, y, z, n]`, `delays_s` n values.
/// Returns `[x, y, z, u]` and the u unique delays in ascending order (delays equal
/// within 1e-6 s are one delay).
pub fn average_by_delay(
    delta_m: ArrayView4<f32>,
    delays_s: &[f64],
) -> Result<(Array4<f32>, Vec<f64>)> {
    let (nx, ny, nz, nt) = delta_m.dim();
    if delays_s.len() != nt {
        return Err(CbfError::LengthMismatch {
            what: "delays vs ΔM volumes".into(),
            expected: nt,
            got: delays_s.len(),
        });
    }
    let mut uniq: Vec<f64> = Vec::new();
    let mut sorted = delays_s.to_vec();
    sorted.sort_by(f64::total_cmp);
    for d in sorted {
        if uniq.last().is_none_or(|&u| (d - u).abs() > 1e-6) {
            uniq.push(d);
        }
    }
    let mut out = Array4::<f32>::zeros((nx, ny, nz, uniq.len()));
    for (u, &d) in uniq.iter().enumerate() {
        let idx: Vec<usize> = (0..nt)
            .filter(|&t| (delays_s[t] - d).abs() <= 1e-6)
            .collect();
        let mut acc = Array3::<f64>::zeros((nx, ny, nz));
        for &t in &idx {
            ndarray::Zip::from(&mut acc)
                .and(delta_m.index_axis(Axis(3), t))
                .for_each(|a, &b| *a += b as f64);
        }
        let n = idx.len() as f64;
        ndarray::Zip::from(out.index_axis_mut(Axis(3), u))
            .and(&acc)
            .for_each(|o, &a| *o = (a / n) as f32);
    }
    Ok((out, uniq))
}

struct Table {
    /// g values, `n_grid × n_delays`, row-major.
    g: Vec<f64>,
    /// Σ g² per grid point.
    gg: Vec<f64>,
}

fn profile(p: &QuantParams, delays: &[f64], offset: f64, att: f64, y: &[f64]) -> (f64, f64) {
    let (mut gy, mut gg) = (0.0, 0.0);
    for (i, &d) in delays.iter().enumerate() {
        let g = kinetic_factor(p, d + offset, att);
        gy += g * y[i];
        gg += g * g;
    }
    let yy: f64 = y.iter().map(|v| v * v).sum();
    if gg > 0.0 {
        (yy - gy * gy / gg, gy / gg)
    } else {
        (yy, 0.0)
    }
}

/// Fit CBF and ATT per voxel from multi-delay ΔM.
///
/// * `delta_m`: `[x, y, z, n]` ΔM, one volume per delay (average repeats first with
///   [`average_by_delay`]; repeats may also be passed as separate volumes).
/// * `delays_s`: n PLDs ((p)CASL) or TIs (PASL); per-slice offsets from `p.slice_timing`.
/// * `m0`, `mask`: as [`crate::kinetic::quantify_single`].
///
/// Voxels are fitted in parallel, each independently (bit-identical at any thread count).
pub fn fit_multi_delay(
    delta_m: ArrayView4<f32>,
    delays_s: &[f64],
    m0: ArrayView3<f32>,
    mask: ArrayView3<bool>,
    p: &QuantParams,
    opts: &MultiDelayOptions,
) -> Result<MultiDelayFit> {
    let (nx, ny, nz, nt) = delta_m.dim();
    let shape = check_series(delta_m, mask, delays_s)?;
    if nt < 2 {
        return Err(CbfError::LengthMismatch {
            what: "delays for a multi-delay fit (at least)".into(),
            expected: 2,
            got: nt,
        });
    }
    if !(opts.att_min_s >= 0.0
        && opts.att_max_s > opts.att_min_s
        && opts.grid_step_s > 0.0
        && opts.refine_tol_s > 0.0)
    {
        return Err(CbfError::InvalidParameter {
            name: "MultiDelayOptions".into(),
            value: opts.grid_step_s,
            expected: "0 <= att_min < att_max, step > 0, tol > 0".into(),
        });
    }
    p.validate(shape)?;
    check_m0(m0, mask)?;
    check_finite4("ΔM", delta_m, mask)?;

    let n_grid = ((opts.att_max_s - opts.att_min_s) / opts.grid_step_s).round() as usize + 1;
    let grid: Vec<f64> = (0..n_grid)
        .map(|i| (opts.att_min_s + i as f64 * opts.grid_step_s).min(opts.att_max_s))
        .collect();
    // one table per distinct slice offset (one for 3D readouts)
    let offsets: Vec<f64> = match &p.slice_timing {
        Some(st) => st.times_s.clone(),
        None => vec![0.0],
    };
    let tables: Vec<Table> = offsets
        .par_iter()
        .map(|&off| {
            let mut g = Vec::with_capacity(n_grid * nt);
            let mut gg = Vec::with_capacity(n_grid);
            for &a in &grid {
                let mut s = 0.0;
                for &d in delays_s {
                    let v = kinetic_factor(p, d + off, a);
                    g.push(v);
                    s += v * v;
                }
                gg.push(s);
            }
            Table { g, gg }
        })
        .collect();

    let voxels: Vec<[usize; 3]> = mask
        .indexed_iter()
        .filter(|(_, m)| **m)
        .map(|((i, j, k), _)| [i, j, k])
        .collect();
    let invphi = (5f64.sqrt() - 1.0) / 2.0;
    let results: Vec<(f64, f64, f64)> = voxels
        .par_iter()
        .map(|&[i, j, k]| {
            let m = m0[[i, j, k]] as f64;
            let y: Vec<f64> = (0..nt).map(|t| delta_m[[i, j, k, t]] as f64 / m).collect();
            let yy: f64 = y.iter().map(|v| v * v).sum();
            let (ti, off) = match &p.slice_timing {
                Some(st) => (
                    idx_axis([i, j, k], st.axis),
                    st.times_s[idx_axis([i, j, k], st.axis)],
                ),
                None => (0, 0.0),
            };
            let tab = &tables[ti];
            let mut best = (f64::INFINITY, 0usize);
            for a in 0..n_grid {
                let gg = tab.gg[a];
                let rss = if gg > 0.0 {
                    let row = &tab.g[a * nt..(a + 1) * nt];
                    let gy: f64 = row.iter().zip(&y).map(|(g, y)| g * y).sum();
                    yy - gy * gy / gg
                } else {
                    yy
                };
                if rss < best.0 {
                    best = (rss, a);
                }
            }
            // golden-section refinement in [grid[a-1], grid[a+1]]
            let lo0 = grid[best.1.saturating_sub(1)];
            let hi0 = grid[(best.1 + 1).min(n_grid - 1)];
            let (mut lo, mut hi) = (lo0, hi0);
            let f = |a: f64| profile(p, delays_s, off, a, &y).0;
            let mut c = hi - invphi * (hi - lo);
            let mut d = lo + invphi * (hi - lo);
            let (mut fc, mut fd) = (f(c), f(d));
            while hi - lo > opts.refine_tol_s {
                if fc <= fd {
                    hi = d;
                    d = c;
                    fd = fc;
                    c = hi - invphi * (hi - lo);
                    fc = f(c);
                } else {
                    lo = c;
                    c = d;
                    fc = fd;
                    d = lo + invphi * (hi - lo);
                    fd = f(d);
                }
            }
            let mut att = 0.5 * (lo + hi);
            let (mut rss, mut cbf) = profile(p, delays_s, off, att, &y);
            if best.0 < rss {
                att = grid[best.1];
                let r = profile(p, delays_s, off, att, &y);
                rss = r.0;
                cbf = r.1;
            }
            (cbf, att, rss)
        })
        .collect();

    let mut cbf = Array3::<f32>::zeros((nx, ny, nz));
    let mut att = Array3::<f32>::zeros((nx, ny, nz));
    let mut rss = Array3::<f32>::zeros((nx, ny, nz));
    let mut n_at_bound = 0;
    for (v, r) in voxels.iter().zip(&results) {
        cbf[*v] = r.0 as f32;
        att[*v] = r.1 as f32;
        rss[*v] = r.2 as f32;
        if r.1 <= opts.att_min_s + opts.grid_step_s || r.1 >= opts.att_max_s - opts.grid_step_s {
            n_at_bound += 1;
        }
    }
    Ok(MultiDelayFit {
        cbf,
        att,
        rss,
        n_at_bound,
        options: *opts,
    })
}

#[inline]
fn idx_axis(idx: [usize; 3], axis: usize) -> usize {
    idx[axis]
}
