//! SCORE: Structural Correlation-based Outlier REjection of CBF volumes
//! (Dolui et al. 2017, J Magn Reson Imaging 45:1786).

use ndarray::{Array3, ArrayView3, ArrayView4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};
use crate::kinetic::{check_shape, dims3};

/// Tissue probability maps (or binary masks as 0/1) on the CBF grid, `[x, y, z]`.
#[derive(Debug, Clone, Copy)]
pub struct TissueMaps<'a> {
    /// Grey-matter probability.
    pub gm: ArrayView3<'a, f32>,
    /// White-matter probability.
    pub wm: ArrayView3<'a, f32>,
    /// CSF probability (optional; SCORE's pooled variance then uses GM and WM only).
    pub csf: Option<ArrayView3<'a, f32>>,
}

impl TissueMaps<'_> {
    pub(crate) fn check(&self, shape: [usize; 3]) -> Result<()> {
        check_shape("GM map vs CBF", shape, dims3(&self.gm))?;
        check_shape("WM map vs CBF", shape, dims3(&self.wm))?;
        if let Some(c) = &self.csf {
            check_shape("CSF map vs CBF", shape, dims3(c))?;
        }
        Ok(())
    }

    /// Binary tissue classes (GM, WM, CSF) at `threshold`, restricted to `mask`.
    pub(crate) fn classes(&self, mask: ArrayView3<bool>, threshold: f64) -> Vec<Vec<[usize; 3]>> {
        let mut maps = vec![self.gm, self.wm];
        if let Some(c) = self.csf {
            maps.push(c);
        }
        maps.iter()
            .map(|m| {
                m.indexed_iter()
                    .filter(|((i, j, k), v)| mask[[*i, *j, *k]] && (**v as f64) >= threshold)
                    .map(|((i, j, k), _)| [i, j, k])
                    .collect()
            })
            .collect()
    }
}

/// SCORE settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreParams {
    /// Probability threshold that binarises the tissue maps (0.7, as ASLPrep's default).
    pub tissue_threshold: f64,
    /// Volumes whose mean GM CBF is more than this many robust SDs (1.4826 × MAD)
    /// from the median are rejected first (2.5, Dolui et al. 2017).
    pub mad_multiplier: f64,
    /// Never keep fewer volumes than this (default 2).
    pub min_kept: usize,
}

impl Default for ScoreParams {
    fn default() -> Self {
        Self {
            tissue_threshold: 0.7,
            mad_multiplier: 2.5,
            min_kept: 2,
        }
    }
}

/// Output of [`score`].
#[derive(Debug, Clone)]
pub struct ScoreResult {
    /// Mean CBF of the kept volumes `[x, y, z]`, 0 outside the mask.
    pub mean: Array3<f32>,
    /// Kept volume indices, ascending.
    pub kept: Vec<usize>,
    /// Rejected by the GM-mean median/MAD test.
    pub rejected_gm_outlier: Vec<usize>,
    /// Rejected by the iterative pooled-variance step, in rejection order.
    pub rejected_iterative: Vec<usize>,
    /// Pooled within-tissue variance of the final mean, (mL/100 g/min)².
    pub pooled_variance: f64,
}

/// Serializable summary of a [`ScoreResult`] (for sidecars and QC tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Volumes in.
    pub n_total: usize,
    /// Kept volume indices.
    pub kept: Vec<usize>,
    /// Rejected by the GM-mean test.
    pub rejected_gm_outlier: Vec<usize>,
    /// Rejected by the iterative step.
    pub rejected_iterative: Vec<usize>,
    /// Parameters used.
    pub params: ScoreParams,
}

impl ScoreResult {
    /// Summary for provenance.
    pub fn summary(&self, n_total: usize, params: ScoreParams) -> ScoreSummary {
        ScoreSummary {
            n_total,
            kept: self.kept.clone(),
            rejected_gm_outlier: self.rejected_gm_outlier.clone(),
            rejected_iterative: self.rejected_iterative.clone(),
            params,
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn pooled_variance(mean: &[f64], class_ranges: &[(usize, usize)]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for &(a, b) in class_ranges {
        let n = (b - a) as f64;
        if n < 2.0 {
            continue;
        }
        let m = mean[a..b].iter().sum::<f64>() / n;
        let ss: f64 = mean[a..b].iter().map(|v| (v - m) * (v - m)).sum();
        num += ss; // (n - 1) * var
        den += n - 1.0;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

fn corr(a: &[f32], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        0.0
    }
}

/// SCORE outlier rejection of a CBF series and the robust mean.
///
/// `cbf_series`: `[x, y, z, n]` per-pair CBF (mL/100 g/min); `tissue`: GM/WM(/CSF) maps
/// on the same grid; `mask`: brain mask. Algorithm (Dolui et al. 2017):
/// 1. reject volumes whose mean GM CBF lies more than `mad_multiplier` robust SDs
///    (1.4826 × median absolute deviation) from the median;
/// 2. with R the mean of the kept volumes and V(R) the pooled variance of R within the
///    tissue classes, repeatedly take the kept volume with the highest correlation
///    with R (over tissue voxels) and reject it if that lowers V; stop at the first
///    rejection that would not lower V (that volume stays), or at `min_kept` volumes.
///
/// Returns the kept indices and the mean of the kept volumes. Errors if the GM class is
/// empty or shapes disagree.
pub fn score(
    cbf_series: ArrayView4<f32>,
    tissue: &TissueMaps<'_>,
    mask: ArrayView3<bool>,
    p: &ScoreParams,
) -> Result<ScoreResult> {
    let (nx, ny, nz, nt) = cbf_series.dim();
    let shape = [nx, ny, nz];
    check_shape("mask vs CBF series", shape, dims3(&mask))?;
    tissue.check(shape)?;
    if nt == 0 {
        return Err(CbfError::NoVolumes { what: "CBF".into() });
    }
    let classes = tissue.classes(mask, p.tissue_threshold);
    if classes[0].is_empty() {
        return Err(CbfError::EmptyMask {
            what: format!(
                "grey matter (probability >= {}) within the brain mask",
                p.tissue_threshold
            ),
        });
    }
    // tissue voxel values per volume, classes concatenated
    let mut ranges = Vec::new();
    let mut all: Vec<[usize; 3]> = Vec::new();
    for c in &classes {
        ranges.push((all.len(), all.len() + c.len()));
        all.extend_from_slice(c);
    }
    let vols: Vec<Vec<f32>> = (0..nt)
        .into_par_iter()
        .map(|t| {
            all.iter()
                .map(|&[i, j, k]| cbf_series[[i, j, k, t]])
                .collect()
        })
        .collect();
    if let Some((t, _)) = vols
        .iter()
        .enumerate()
        .find(|(_, v)| v.iter().any(|x| !x.is_finite()))
    {
        return Err(CbfError::NonFinite {
            what: format!("CBF volume {t} in tissue voxels"),
            count: 1,
            first: [0, 0, 0],
        });
    }
    let (g0, g1) = ranges[0];
    let gm_means: Vec<f64> = vols
        .iter()
        .map(|v| v[g0..g1].iter().map(|&x| x as f64).sum::<f64>() / (g1 - g0) as f64)
        .collect();
    let med = median(&mut gm_means.clone());
    let mut dev: Vec<f64> = gm_means.iter().map(|m| (m - med).abs()).collect();
    let robust_sd = 1.4826 * median(&mut dev);
    let mut kept: Vec<usize> = Vec::new();
    let mut rejected_gm = Vec::new();
    for (t, m) in gm_means.iter().enumerate() {
        if robust_sd > 0.0 && (m - med).abs() > p.mad_multiplier * robust_sd {
            rejected_gm.push(t);
        } else {
            kept.push(t);
        }
    }
    if kept.len() < p.min_kept.max(1) {
        // too few survive the GM test: keep the ones closest to the median
        let mut order: Vec<usize> = (0..nt).collect();
        order.sort_by(|&a, &b| {
            (gm_means[a] - med)
                .abs()
                .total_cmp(&(gm_means[b] - med).abs())
                .then(a.cmp(&b))
        });
        kept = order[..p.min_kept.max(1).min(nt)].to_vec();
        kept.sort_unstable();
        rejected_gm = (0..nt).filter(|t| !kept.contains(t)).collect();
    }
    let nvox = all.len();
    let mean_of = |idx: &[usize]| -> Vec<f64> {
        let mut m = vec![0.0f64; nvox];
        for &t in idx {
            for (a, &v) in m.iter_mut().zip(&vols[t]) {
                *a += v as f64;
            }
        }
        let n = idx.len() as f64;
        m.iter_mut().for_each(|a| *a /= n);
        m
    };
    let mut r = mean_of(&kept);
    let mut v = pooled_variance(&r, &ranges);
    let mut rejected_it = Vec::new();
    while kept.len() > p.min_kept.max(1) {
        let cc: Vec<f64> = kept.par_iter().map(|&t| corr(&vols[t], &r)).collect();
        let (pos, _) = cc
            .iter()
            .enumerate()
            .fold((0usize, f64::NEG_INFINITY), |b, (i, &c)| {
                if c > b.1 { (i, c) } else { b }
            });
        let cand = kept[pos];
        let trial: Vec<usize> = kept.iter().copied().filter(|&t| t != cand).collect();
        let r2 = mean_of(&trial);
        let v2 = pooled_variance(&r2, &ranges);
        if v2 < v {
            kept = trial;
            r = r2;
            v = v2;
            rejected_it.push(cand);
        } else {
            break;
        }
    }
    let mut mean = Array3::<f32>::zeros((nx, ny, nz));
    let n = kept.len() as f64;
    for ((i, j, k), o) in mean.indexed_iter_mut() {
        if mask[[i, j, k]] {
            let s: f64 = kept.iter().map(|&t| cbf_series[[i, j, k, t]] as f64).sum();
            *o = (s / n) as f32;
        }
    }
    Ok(ScoreResult {
        mean,
        kept,
        rejected_gm_outlier: rejected_gm,
        rejected_iterative: rejected_it,
        pooled_variance: v,
    })
}
