//! JuSpace-style spatial permutation test (Dukart et al. 2021, JuSpace ≥ 1.2
//! `generate_spatial_nullMaps.m` / `compute_exact_spatial_pvalue.m`).
//!
//! Null maps of the receptor map are built as JuSpace does: the parcel values are randomly
//! permuted, then smoothed with a Gaussian over Euclidean centroid distances,
//! `w_ij ∝ exp(-d_ij² / (2 s))` (including the parcel itself, weights normalised per parcel), with
//! the variance `s` (mm²) the smallest integer ≥ 2 at which the correlation between pairwise
//! distance and pairwise absolute value difference (over all ordered pairs, as JuSpace's
//! `corr(dist(:), dist_vals(:))`) reaches that of the original map (cap `s = 1000`, as JuSpace's
//! 1000 iterations). The smoothed map is rescaled linearly to the original minimum and maximum.
//! If the original map's distance–difference correlation is not positive, plain permutations are
//! used (as JuSpace). With a `mirror` assignment the null is generated on one hemisphere and copied
//! to the homologous parcels of the other (JuSpace's default "symmetric" null maps).
//!
//! Deviation, for speed: JuSpace increases `s` by 1 until the target correlation is reached;
//! here the same smallest integer `s` is found by doubling then bisection, which is identical
//! whenever the correlation increases with `s` (the usual case; smoothing more makes
//! nearby values more alike).
//!
//! The p-value is JuSpace's `(1 + #{|r_null| ≥ |r|}) / (1 + N)`. JuSpace's grey-matter adjustment
//! ("adjust for spatial correlation with GM") replaces each correlation by the partial correlation
//! controlling for the parcel-wise grey-matter probability (SPM TPM class 1): pass it as
//! `covariate`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::Array2;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::corr::{
    CorrelationMethod, FixedCorrelation, correlate, null_p_value, partial_correlation,
};
use crate::error::{Error, Result, check_finite, check_len};

/// Largest smoothing variance (mm²) tried, as JuSpace's iteration cap.
const S_MAX: u32 = 1000;

/// Most kernel entries (f64) kept for reuse by one call of [`juspace_null_maps`] (64 MB: about
/// 600 variances at 116 generator parcels); kernels beyond it are computed for each use (the
/// same values).
const KERNEL_CACHE_LIMIT: usize = 1 << 23;

struct Gen {
    d: Vec<f64>,
    n: usize,
    r_target: f64,
    /// The smoothing kernel at each integer variance `s` tried (index `s`): the weights
    /// `exp(-d² / (2 s))` (n × n) and their row sums. Built when first needed and shared by the
    /// null maps (the search tries the same variances for many of them), up to
    /// [`KERNEL_CACHE_LIMIT`] entries in all.
    kernels: Vec<OnceLock<(Vec<f64>, Vec<f64>)>>,
    /// Kernel entries kept so far.
    cached: AtomicUsize,
}

/// Correlation over all ordered pairs (incl. the zero diagonal) of distance and |x_i - x_j|.
fn dist_diff_corr(d: &[f64], x: &[f64]) -> f64 {
    let n = x.len();
    let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        for j in (i + 1)..n {
            let a = d[i * n + j];
            let b = (x[i] - x[j]).abs();
            sx += a;
            sy += b;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
        }
    }
    // each unordered pair appears twice in the full matrix; the diagonal adds n zeros
    let nn = (n * n) as f64;
    let (sx, sy, sxx, syy, sxy) = (2.0 * sx, 2.0 * sy, 2.0 * sxx, 2.0 * syy, 2.0 * sxy);
    let cov = sxy - sx * sy / nn;
    let vx = sxx - sx * sx / nn;
    let vy = syy - sy * sy / nn;
    if vx <= 0.0 || vy <= 0.0 {
        f64::NAN
    } else {
        cov / (vx * vy).sqrt()
    }
}

impl Gen {
    fn new(d: Vec<f64>, n: usize, r_target: f64) -> Self {
        Self {
            d,
            n,
            r_target,
            kernels: (0..=S_MAX).map(|_| OnceLock::new()).collect(),
            cached: AtomicUsize::new(0),
        }
    }

    /// The kernel at variance `s` and its row sums (each summed in column order).
    fn kernel(&self, s: u32) -> (Vec<f64>, Vec<f64>) {
        let n = self.n;
        let s = f64::from(s);
        let w: Vec<f64> = self.d.iter().map(|&d| (-d * d / (2.0 * s)).exp()).collect();
        let den = w
            .chunks_exact(n)
            .map(|row| {
                let mut den = 0.0;
                for &v in row {
                    den += v;
                }
                den
            })
            .collect();
        (w, den)
    }

    /// Gaussian smoothing of `x` with variance `s` (mm²): `Σ_j w_ij x_j / Σ_j w_ij`.
    fn smooth(&self, x: &[f64], s: u32) -> Vec<f64> {
        let cell = &self.kernels[s as usize];
        let size = self.n * self.n;
        let kept = cell.get().or_else(|| {
            let before = self.cached.fetch_add(size, Ordering::Relaxed);
            if before + size <= KERNEL_CACHE_LIMIT {
                Some(cell.get_or_init(|| self.kernel(s)))
            } else {
                self.cached.fetch_sub(size, Ordering::Relaxed);
                None
            }
        });
        let once;
        let (w, den) = match kept {
            Some(k) => k,
            None => {
                once = self.kernel(s);
                &once
            }
        };
        w.chunks_exact(self.n)
            .zip(den)
            .map(|(row, den)| {
                let mut num = 0.0;
                for (&wj, &xj) in row.iter().zip(x) {
                    num += wj * xj;
                }
                num / den
            })
            .collect()
    }

    fn one(&self, x: &[f64], seed: u64, stream: u64) -> Vec<f64> {
        let mut rng = crate::rng_for(seed, stream);
        let mut perm = x.to_vec();
        perm.shuffle(&mut rng);
        if self.r_target.is_nan() || self.r_target <= 0.0 {
            return perm;
        }
        let (lo, hi) = x
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let reaches = |s: u32| -> (bool, Vec<f64>) {
            let sm = self.smooth(&perm, s);
            let r = dist_diff_corr(&self.d, &sm);
            (r >= self.r_target, sm)
        };
        let smoothed = if dist_diff_corr(&self.d, &perm) >= self.r_target {
            perm
        } else {
            // smallest integer s in [2, S_MAX] whose smoothed map reaches the target correlation
            let mut fail = 1u32;
            let mut s = 2u32;
            let mut found = None;
            loop {
                let (ok, sm) = reaches(s);
                if ok {
                    found = Some((s, sm));
                    break;
                }
                fail = s;
                if s == S_MAX {
                    break;
                }
                s = (s * 2).min(S_MAX);
            }
            match found {
                None => reaches(S_MAX).1,
                Some((mut ok_s, mut ok_sm)) => {
                    while ok_s - fail > 1 {
                        let mid = fail + (ok_s - fail) / 2;
                        let (ok, sm) = reaches(mid);
                        if ok {
                            ok_s = mid;
                            ok_sm = sm;
                        } else {
                            fail = mid;
                        }
                    }
                    ok_sm
                }
            }
        };
        let mn = smoothed.iter().fold(f64::INFINITY, |a, &v| a.min(v));
        let mx = smoothed
            .iter()
            .fold(f64::NEG_INFINITY, |a, &v| a.max(v - mn));
        if mx <= 0.0 {
            return vec![lo; smoothed.len()];
        }
        smoothed
            .iter()
            .map(|v| (v - mn) * (hi - lo) / mx + lo)
            .collect()
    }
}

/// JuSpace-style spatially smoothed null maps of `values` (n parcels) with parcel centroids
/// `coords` (n × 3, mm). Returns `n_maps × n`.
///
/// `mirror` (optional, length n): for each parcel, the index of the parcel whose null value it
/// takes (its left-hemisphere homologue, or itself). Generator parcels must map to themselves.
/// Null map `i` uses ChaCha8 stream `i` of `seed`: identical at any thread count.
pub fn juspace_null_maps(
    values: &[f64],
    coords: &[[f64; 3]],
    mirror: Option<&[usize]>,
    n_maps: usize,
    seed: u64,
) -> Result<Array2<f64>> {
    let n = values.len();
    if n < 3 {
        return Err(Error::TooFew {
            what: "parcels",
            min: 3,
            got: n,
        });
    }
    check_finite("receptor map", values)?;
    check_len("parcel centroids (parcels of the map)", n, coords.len())?;
    if let Some(i) = coords.iter().position(|c| c.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFinite {
            what: "parcel centroids",
            index: i,
        });
    }
    let generators: Vec<usize> = match mirror {
        None => (0..n).collect(),
        Some(m) => {
            check_len("mirror assignment (parcels of the map)", n, m.len())?;
            for (i, &g) in m.iter().enumerate() {
                if g >= n || m[g] != g {
                    return Err(Error::InvalidParameter {
                        name: "mirror",
                        value: format!("mirror[{i}] = {g}"),
                        reason: "must point to a parcel that maps to itself",
                    });
                }
            }
            let mut g: Vec<usize> = m.to_vec();
            g.sort_unstable();
            g.dedup();
            g
        }
    };
    let ng = generators.len();
    if ng < 3 {
        return Err(Error::TooFew {
            what: "generator parcels",
            min: 3,
            got: ng,
        });
    }
    let xg: Vec<f64> = generators.iter().map(|&i| values[i]).collect();
    let mut d = vec![0.0; ng * ng];
    for a in 0..ng {
        for b in 0..ng {
            let (p, q) = (coords[generators[a]], coords[generators[b]]);
            d[a * ng + b] =
                ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
        }
    }
    let r_target = dist_diff_corr(&d, &xg);
    let gen_ = Gen::new(d, ng, r_target);
    let pos: Vec<usize> = match mirror {
        None => (0..n).collect(),
        Some(m) => m
            .iter()
            .map(|g| generators.binary_search(g).expect("generator listed"))
            .collect(),
    };
    let rows: Vec<Vec<f64>> = (0..n_maps as u64)
        .into_par_iter()
        .map(|i| {
            if r_target > 0.0 {
                let g = gen_.one(&xg, seed, i);
                pos.iter().map(|&p| g[p]).collect()
            } else {
                // JuSpace: no positive autocorrelation -> permute the full map
                let mut rng = crate::rng_for(seed, i);
                let mut p = values.to_vec();
                p.shuffle(&mut rng);
                p
            }
        })
        .collect();
    let flat: Vec<f64> = rows.into_iter().flatten().collect();
    Ok(Array2::from_shape_vec((n_maps, n), flat).expect("rows of equal length"))
}

/// Hemispheric mirror assignment for [`juspace_null_maps`] from parcel centroids (mm, RAS):
/// parcels with `x ≤ 0` (left hemisphere and midline) map to themselves; each right parcel
/// (`x > 0`) maps to the left parcel nearest to its mirror image `(-x, y, z)`. This is the parcel-
/// level counterpart of JuSpace's flip of the left half of the atlas image.
pub fn mirror_by_centroids(coords: &[[f64; 3]]) -> Result<Vec<usize>> {
    if let Some(i) = coords.iter().position(|c| c.iter().any(|v| !v.is_finite())) {
        return Err(Error::NonFinite {
            what: "parcel centroids",
            index: i,
        });
    }
    let left: Vec<usize> = (0..coords.len()).filter(|&i| coords[i][0] <= 0.0).collect();
    if left.is_empty() {
        return Err(Error::TooFew {
            what: "left-hemisphere parcels (x <= 0)",
            min: 1,
            got: 0,
        });
    }
    Ok(coords
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c[0] <= 0.0 {
                return i;
            }
            let m = [-c[0], c[1], c[2]];
            let d2 = |j: usize| (0..3).map(|k| (coords[j][k] - m[k]).powi(2)).sum::<f64>();
            *left
                .iter()
                .min_by(|&&a, &&b| d2(a).total_cmp(&d2(b)).then(a.cmp(&b)))
                .expect("non-empty")
        })
        .collect())
}

/// Result of a permutation test of one correlation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermutationTest {
    /// Observed (partial) correlation.
    pub r: f64,
    /// Two-sided permutation p-value `(1 + #{|null| ≥ |r|}) / (1 + N)`.
    pub p: f64,
    /// Null correlations.
    pub null: Vec<f64>,
}

/// Correlation of `target` with every row of `nulls` (`N × n`), optionally as partial
/// correlation controlling for `covariate`. Rows are processed in parallel, each independently.
pub fn null_correlations(
    target: &[f64],
    nulls: ndarray::ArrayView2<f64>,
    method: CorrelationMethod,
    covariate: Option<&[f64]>,
) -> Result<Vec<f64>> {
    check_len(
        "null maps (columns = points of the target)",
        target.len(),
        nulls.ncols(),
    )?;
    if nulls.nrows() == 0 {
        return Ok(Vec::new());
    }
    let fixed = FixedCorrelation::new(target, covariate, method)?;
    nulls
        .outer_iter()
        .into_par_iter()
        .map(|row| match row.as_slice() {
            Some(y) => fixed.with(y),
            None => fixed.with(&row.to_vec()),
        })
        .collect()
}

/// JuSpace's "exact spatial permutation" test of the correlation between a group map `target`
/// and a `receptor` map (n parcels each, centroids `coords` in mm): builds `n_maps`
/// [`juspace_null_maps`] of the receptor map and compares the observed correlation with the
/// correlations of the target with the null maps. With `covariate` (parcel-wise grey-matter
/// probability) all correlations are partial correlations controlling for it (JuSpace's GM
/// adjustment).
pub fn spatial_permutation_test(
    target: &[f64],
    receptor: &[f64],
    coords: &[[f64; 3]],
    method: CorrelationMethod,
    covariate: Option<&[f64]>,
    mirror: Option<&[usize]>,
    n_maps: usize,
    seed: u64,
) -> Result<PermutationTest> {
    check_len(
        "receptor map (parcels of the target)",
        target.len(),
        receptor.len(),
    )?;
    let r = match covariate {
        Some(z) => partial_correlation(target, receptor, z, method)?,
        None => correlate(target, receptor, method)?,
    };
    let nulls = juspace_null_maps(receptor, coords, mirror, n_maps, seed)?;
    let null = null_correlations(target, nulls.view(), method, covariate)?;
    Ok(PermutationTest {
        r,
        p: null_p_value(r, &null),
        null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_pairs_homologues() {
        let coords = [
            [-30.0, 0.0, 0.0],
            [-30.0, 20.0, 0.0],
            [31.0, 1.0, 0.0],
            [29.0, 19.0, 1.0],
            [0.0, 5.0, 5.0],
        ];
        assert_eq!(mirror_by_centroids(&coords).unwrap(), vec![0, 1, 0, 1, 4]);
    }

    /// Smoothing with a kept kernel, with one computed for the call, and JuSpace's direct sum
    /// (`w = exp(-d² / (2 s))` summed over `j`) give the same bits.
    #[test]
    fn kept_and_fresh_kernels_smooth_alike() {
        let coords: Vec<[f64; 3]> = (0..12)
            .map(|i| {
                [
                    (i % 4) as f64 * 9.0,
                    (i / 4) as f64 * 7.0,
                    (i % 3) as f64 * 5.0,
                ]
            })
            .collect();
        let n = coords.len();
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let (p, q) = (coords[i], coords[j]);
                d[i * n + j] =
                    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
            }
        }
        let x: Vec<f64> = (0..n).map(|i| ((i * 7 % 5) as f64).sin()).collect();
        let g = Gen::new(d.clone(), n, 0.5);
        let full = Gen::new(d.clone(), n, 0.5);
        full.cached.store(KERNEL_CACHE_LIMIT, Ordering::Relaxed);
        for s in [2u32, 37, 2, 1000] {
            let direct: Vec<f64> = (0..n)
                .map(|i| {
                    let (mut num, mut den) = (0.0, 0.0);
                    for j in 0..n {
                        let w = (-d[i * n + j] * d[i * n + j] / (2.0 * f64::from(s))).exp();
                        num += w * x[j];
                        den += w;
                    }
                    num / den
                })
                .collect();
            assert_eq!(g.smooth(&x, s), direct, "kept kernel, s = {s}");
            assert_eq!(full.smooth(&x, s), direct, "fresh kernel, s = {s}");
        }
        assert!(g.kernels[37].get().is_some() && full.kernels[37].get().is_none());
    }

    #[test]
    fn dist_diff_corr_matches_full_matrix() {
        let coords: [[f64; 3]; 5] = [
            [0.0, 0.0, 0.0],
            [1.0, 2.0, 0.0],
            [4.0, 0.0, 1.0],
            [2.0, 2.0, 2.0],
            [5.0, 5.0, 0.0],
        ];
        let x: [f64; 5] = [1.0, 2.5, 0.5, 3.0, 4.0];
        let n = 5;
        let mut d = vec![0.0; 25];
        let (mut a, mut b) = (vec![], vec![]);
        for i in 0..n {
            for j in 0..n {
                let p: f64 = (0..3)
                    .map(|k| (coords[i][k] - coords[j][k]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                d[i * n + j] = p;
                a.push(p);
                b.push((x[i] - x[j]).abs());
            }
        }
        let want = crate::corr::pearson(&a, &b).unwrap();
        assert!((dist_diff_corr(&d, &x) - want).abs() < 1e-12);
    }

    #[test]
    fn nulls_keep_range_and_mirror() {
        // 2 hemispheres of 10 parcels, smooth gradient along y
        let coords: Vec<[f64; 3]> = (0..20)
            .map(|i| {
                [
                    if i < 10 { -30.0 } else { 30.0 },
                    (i % 10) as f64 * 10.0,
                    0.0,
                ]
            })
            .collect();
        let bump = [0.0, 2.0, 1.0, 3.0, 5.0, 4.0, 6.0, 8.0, 7.0, 9.0];
        let x: Vec<f64> = (0..20).map(|i| bump[i % 10] + 1.0).collect();
        let mirror: Vec<usize> = (0..20).map(|i| i % 10).collect();
        let nm = juspace_null_maps(&x, &coords, Some(&mirror), 20, 1).unwrap();
        let d: Vec<f64> = (0..100)
            .map(|k| ((k / 10) as f64 - (k % 10) as f64).abs() * 10.0)
            .collect();
        let xg: Vec<f64> = x.iter().take(10).copied().collect();
        let target = dist_diff_corr(&d, &xg);
        let mut mean_null = 0.0;
        for row in nm.outer_iter() {
            let mn = row.iter().fold(f64::INFINITY, |a, &v| a.min(v));
            let mx = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
            assert!((mn - 1.0).abs() < 1e-9 && (mx - 10.0).abs() < 1e-9);
            for i in 0..10 {
                assert_eq!(row[i], row[i + 10]);
            }
            let g: Vec<f64> = row.iter().take(10).copied().collect();
            mean_null += dist_diff_corr(&d, &g) / 20.0;
        }
        // smoothing restores much of the autocorrelation that permutation destroys (plain
        // permutations have mean distance-difference correlation near 0)
        assert!(mean_null > 0.5 * target, "{mean_null} vs {target}");
        let again = juspace_null_maps(&x, &coords, Some(&mirror), 20, 1).unwrap();
        assert_eq!(nm, again);
    }
}
