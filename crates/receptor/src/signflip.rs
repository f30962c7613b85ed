//! Subject-level sign-flipping null for map correlations.
//!
//! Under the null hypothesis that the within-subject change maps (ΔCBF) are symmetric about zero,
//! the sign of each subject's map is exchangeable (Nichols & Holmes 2002; Winkler et al. 2014,
//! PALM). Flipping signs, recomputing the group map (mean or one-sample t) and its correlation with
//! each receptor map gives a null distribution of the correlation that is exact under the design:
//! no assumption about the maps' spatial autocorrelation is needed, because each null group map
//! keeps the real data's spatial structure.

use ndarray::{Array2, ArrayView2};
use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::corr::{CorrelationMethod, corr_with_unit, null_p_value, ranks, unit_centred};
use crate::error::{Error, Result, check_finite};

/// Group statistic computed at each parcel/voxel from the subjects' change maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GroupStat {
    /// One-sample t: `mean / (sd / sqrt(S))`, sample sd (S - 1); 0 where sd = 0.
    #[default]
    T,
    /// Mean over subjects.
    Mean,
}

/// Group map (length P) of `diff` (S subjects × P parcels/voxels) with signs `signs` (length S,
/// ±1; `None` = all +1).
fn group_map_signed(diff: ArrayView2<f64>, signs: Option<&[f64]>, stat: GroupStat) -> Vec<f64> {
    let (s, p) = diff.dim();
    let mut sum = vec![0.0; p];
    let mut sq = vec![0.0; p];
    for (k, row) in diff.outer_iter().enumerate() {
        let sg = signs.map_or(1.0, |g| g[k]);
        for (j, &v) in row.iter().enumerate() {
            let v = sg * v;
            sum[j] += v;
            sq[j] += v * v;
        }
    }
    let sf = s as f64;
    match stat {
        GroupStat::Mean => sum.iter().map(|v| v / sf).collect(),
        GroupStat::T => sum
            .iter()
            .zip(&sq)
            .map(|(&a, &b)| {
                let m = a / sf;
                let var = ((b - sf * m * m) / (sf - 1.0)).max(0.0);
                if var > 0.0 {
                    m / (var / sf).sqrt()
                } else {
                    0.0
                }
            })
            .collect(),
    }
}

/// Group map (length P) of `diff` (S subjects × P parcels/voxels): mean or one-sample t.
pub fn group_map(diff: ArrayView2<f64>, stat: GroupStat) -> Result<Vec<f64>> {
    check_diff(diff, stat)?;
    Ok(group_map_signed(diff, None, stat))
}

fn check_diff(diff: ArrayView2<f64>, stat: GroupStat) -> Result<()> {
    let (s, p) = diff.dim();
    let min = if stat == GroupStat::T { 2 } else { 1 };
    if s < min {
        return Err(Error::TooFew {
            what: "subjects",
            min,
            got: s,
        });
    }
    if p < 3 {
        return Err(Error::TooFew {
            what: "parcels or voxels",
            min: 3,
            got: p,
        });
    }
    if let Some(i) = diff.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "subject change maps",
            index: i,
        });
    }
    Ok(())
}

/// Result of the sign-flip test for several receptor maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignFlipNull {
    /// Observed correlation of the group map with each receptor map (length R).
    pub r: Vec<f64>,
    /// Two-sided p-value per receptor map (length R).
    pub p: Vec<f64>,
    /// Null correlations per receptor map: `null[j]` has one entry per sign vector. When
    /// `exhaustive`, all 2^S sign vectors including the identity (index 0) and the full flip
    /// (last); otherwise random sign vectors (identity not included).
    pub null: Vec<Vec<f64>>,
    /// True if every sign vector was enumerated (p-values exact: `#{|null| ≥ |r|} / 2^S`);
    /// false if `n` random vectors were drawn (`(1 + #{|null| ≥ |r|}) / (1 + n)`).
    pub exhaustive: bool,
}

/// Sign-flipping null of the correlation between the group map of `diff` (S subjects × P) and each
/// row of `receptors` (R × P).
///
/// If `2^S ≤ n`, all `2^S` sign vectors are enumerated (exact test); otherwise `n` random sign
/// vectors are drawn, vector `i` from ChaCha8 stream `i` of `seed` (identical at any thread count).
pub fn sign_flip_null(
    diff: ArrayView2<f64>,
    receptors: ArrayView2<f64>,
    method: CorrelationMethod,
    stat: GroupStat,
    n: usize,
    seed: u64,
) -> Result<SignFlipNull> {
    check_diff(diff, stat)?;
    let (s, p) = diff.dim();
    if receptors.ncols() != p || receptors.nrows() == 0 {
        return Err(Error::ShapeMismatch {
            what: "receptor maps (columns = parcels of the change maps)",
            expected: format!("[>0, {p}]"),
            got: format!("{:?}", receptors.shape()),
        });
    }
    if n == 0 {
        return Err(Error::InvalidParameter {
            name: "n",
            value: "0".into(),
            reason: "need at least one sign flip",
        });
    }
    let units: Vec<Vec<f64>> = receptors
        .outer_iter()
        .map(|r| {
            let r = r.to_vec();
            check_finite("receptor map", &r)?;
            let r = if method == CorrelationMethod::Spearman {
                ranks(&r)
            } else {
                r
            };
            unit_centred(&r).ok_or(Error::ZeroVariance {
                what: "receptor map",
            })
        })
        .collect::<Result<_>>()?;
    let corr_all = |g: Vec<f64>| -> Vec<f64> {
        let g = if method == CorrelationMethod::Spearman {
            ranks(&g)
        } else {
            g
        };
        units.iter().map(|u| corr_with_unit(u, &g)).collect()
    };
    let observed = corr_all(group_map_signed(diff, None, stat));
    let exhaustive = s < 63 && (1u64 << s) <= n as u64;
    let n_flips = if exhaustive { 1usize << s } else { n };
    let rows: Vec<Vec<f64>> = (0..n_flips as u64)
        .into_par_iter()
        .map(|i| {
            let signs: Vec<f64> = if exhaustive {
                (0..s)
                    .map(|k| if (i >> k) & 1 == 1 { -1.0 } else { 1.0 })
                    .collect()
            } else {
                let mut rng = crate::rng_for(seed, i);
                (0..s)
                    .map(|_| if rng.random_bool(0.5) { -1.0 } else { 1.0 })
                    .collect()
            };
            corr_all(group_map_signed(diff, Some(&signs), stat))
        })
        .collect();
    let nr = units.len();
    let null = Array2::from_shape_vec((n_flips, nr), rows.into_iter().flatten().collect())
        .expect("rows of equal length");
    let null: Vec<Vec<f64>> = (0..nr).map(|j| null.column(j).to_vec()).collect();
    let p_values = (0..nr)
        .map(|j| {
            let col = &null[j];
            if exhaustive {
                let a = observed[j].abs();
                let k = col
                    .iter()
                    .filter(|v| v.abs() >= a - 1e-12 * a.max(1.0))
                    .count();
                k as f64 / n_flips as f64
            } else {
                null_p_value(observed[j], col)
            }
        })
        .collect();
    Ok(SignFlipNull {
        r: observed,
        p: p_values,
        null,
        exhaustive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn t_map_against_naive() {
        let d = array![[1.0, 2.0, -1.0], [2.0, 2.5, 1.0], [0.5, 3.0, 0.0]];
        let t = group_map(d.view(), GroupStat::T).unwrap();
        for j in 0..3 {
            let c: Vec<f64> = d.column(j).to_vec();
            let m = c.iter().sum::<f64>() / 3.0;
            let sd = (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 2.0).sqrt();
            assert!((t[j] - m / (sd / 3f64.sqrt())).abs() < 1e-12);
        }
    }

    #[test]
    fn exhaustive_contains_identity_and_negation() {
        let d = array![
            [1.0, 2.0, -1.0, 0.3],
            [2.0, 2.5, 1.0, 0.1],
            [0.5, 3.0, 0.0, -0.2]
        ];
        let rec = array![[1.0, 3.0, 0.0, 0.5]];
        let out = sign_flip_null(
            d.view(),
            rec.view(),
            CorrelationMethod::Pearson,
            GroupStat::Mean,
            100,
            0,
        )
        .unwrap();
        assert!(out.exhaustive);
        assert_eq!(out.null[0].len(), 8);
        assert!((out.null[0][0] - out.r[0]).abs() < 1e-12);
        assert!((out.null[0][7] + out.r[0]).abs() < 1e-12);
        assert!(out.p[0] >= 2.0 / 8.0 - 1e-12);
    }
}
