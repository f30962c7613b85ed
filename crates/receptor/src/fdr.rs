//! Benjamini–Hochberg false discovery rate adjustment.

use crate::error::{Error, Result};

/// Benjamini–Hochberg adjusted p-values (Benjamini & Hochberg 1995), as R's
/// `p.adjust(p, method = "BH")`: `p_adj(i) = min_{j ≥ i} min(1, m p_(j) / j)` over the sorted
/// p-values. NaN entries are left NaN and do not count towards `m`.
///
/// Errors if a finite p-value lies outside [0, 1].
pub fn fdr_bh(p: &[f64]) -> Result<Vec<f64>> {
    if let Some(i) = p
        .iter()
        .position(|v| v.is_finite() && !(0.0..=1.0).contains(v) || v.is_infinite())
    {
        return Err(Error::InvalidParameter {
            name: "p-value",
            value: format!("p[{i}] = {}", p[i]),
            reason: "must lie in [0, 1]",
        });
    }
    // the adjustment itself is cbflow-stats'; here NaN entries are set aside (they stay NaN and
    // do not count towards m)
    let finite: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    let vals: Vec<f64> = finite.iter().map(|&i| p[i]).collect();
    let q = cbflow_stats::benjamini_hochberg(&vals).map_err(|e| Error::InvalidParameter {
        name: "p-value",
        value: e.to_string(),
        reason: "must lie in [0, 1]",
    })?;
    let mut out = vec![f64::NAN; p.len()];
    for (&i, v) in finite.iter().zip(q) {
        out[i] = v;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive reference: for each i, min over all j with p_j ≥ p_i of m p_j / rank_j.
    fn naive(p: &[f64]) -> Vec<f64> {
        let m = p.len();
        let rank = |x: f64| p.iter().filter(|&&v| v <= x).count();
        p.iter()
            .map(|&pi| {
                p.iter()
                    .filter(|&&pj| pj >= pi)
                    .map(|&pj| (pj * m as f64 / rank(pj) as f64).min(1.0))
                    .fold(1.0, f64::min)
            })
            .collect()
    }

    #[test]
    fn matches_r_p_adjust() {
        // R: p.adjust(c(0.001,0.008,0.039,0.041,0.042,0.06,0.074,0.205,0.212,0.216), "BH")
        // 0.0100 0.0400 0.0840 0.0840 0.0840 0.1000 0.1057143 0.2160 0.2160 0.2160
        let p = [
            0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216,
        ];
        let want = [
            0.01,
            0.04,
            0.084,
            0.084,
            0.084,
            0.1,
            0.074 * 10.0 / 7.0,
            0.216,
            0.216,
            0.216,
        ];
        let got = fdr_bh(&p).unwrap();
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{got:?}");
        }
        // R: p.adjust(c(0.05, 0.01, 0.04, 0.03, 0.02), "BH") = all 0.05
        assert!(
            fdr_bh(&[0.05, 0.01, 0.04, 0.03, 0.02])
                .unwrap()
                .iter()
                .all(|v| (v - 0.05).abs() < 1e-15)
        );
    }

    #[test]
    fn matches_naive_with_ties_and_nan() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..50 {
            let mut p: Vec<f64> = (0..17)
                .map(|_| (rng.random::<f64>() * 20.0).round() / 20.0)
                .collect();
            p[3] = p[5];
            let got = fdr_bh(&p).unwrap();
            let want = naive(&p);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12);
            }
        }
        let got = fdr_bh(&[0.01, f64::NAN, 0.04]).unwrap();
        assert!(got[1].is_nan() && (got[0] - 0.02).abs() < 1e-15 && (got[2] - 0.04).abs() < 1e-15);
        assert!(fdr_bh(&[0.5, 1.5]).is_err());
    }
}
