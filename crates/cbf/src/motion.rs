//! Framewise displacement from rigid realignment parameters (Power et al. 2012).

use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};

/// Default head radius used to turn rotations into arc length, in mm (Power et al. 2012).
pub const DEFAULT_FD_RADIUS_MM: f64 = 50.0;

/// Framewise displacement per volume, in mm.
///
/// `params[t] = [tx, ty, tz, rx, ry, rz]`: translations in mm, rotations in radians,
/// one row per volume. FD_t = |Δtx|+|Δty|+|Δtz| + r(|Δrx|+|Δry|+|Δrz|) with
/// Δ the backward difference and `radius_mm` = r (50 mm in Power et al., 2012,
/// NeuroImage 59:2142). FD_0 = 0. Returns one value per row.
pub fn framewise_displacement(params: &[[f64; 6]], radius_mm: f64) -> Result<Vec<f64>> {
    if !(radius_mm.is_finite() && radius_mm > 0.0) {
        return Err(CbfError::InvalidParameter {
            name: "radius_mm".into(),
            value: radius_mm,
            expected: "a positive finite radius".into(),
        });
    }
    if let Some((t, _)) = params
        .iter()
        .enumerate()
        .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
    {
        return Err(CbfError::InvalidParameter {
            name: format!("motion parameters row {t}"),
            value: f64::NAN,
            expected: "finite values".into(),
        });
    }
    let mut fd = Vec::with_capacity(params.len());
    for t in 0..params.len() {
        if t == 0 {
            fd.push(0.0);
            continue;
        }
        let (a, b) = (&params[t], &params[t - 1]);
        let trans: f64 = (0..3).map(|i| (a[i] - b[i]).abs()).sum();
        let rot: f64 = (3..6).map(|i| (a[i] - b[i]).abs()).sum();
        fd.push(trans + radius_mm * rot);
    }
    Ok(fd)
}

/// Summary of a framewise-displacement series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FdSummary {
    /// Mean FD over volumes 1..n (the first volume has no predecessor), mm.
    pub mean_mm: f64,
    /// Maximum FD, mm.
    pub max_mm: f64,
    /// Number of volumes with FD above `threshold_mm`.
    pub n_above_threshold: usize,
    /// Threshold used for `n_above_threshold`, mm.
    pub threshold_mm: f64,
    /// Radius used to convert rotations, mm.
    pub radius_mm: f64,
}

/// Summarise FD values (as returned by [`framewise_displacement`]); the mean excludes
/// the first volume, whose FD is 0 by definition. `threshold_mm` counts volumes above
/// it (0.5 mm is the threshold of Power et al. 2012).
pub fn summarize_fd(fd: &[f64], threshold_mm: f64, radius_mm: f64) -> FdSummary {
    let tail = if fd.len() > 1 { &fd[1..] } else { fd };
    let mean = if tail.is_empty() {
        0.0
    } else {
        tail.iter().sum::<f64>() / tail.len() as f64
    };
    FdSummary {
        mean_mm: mean,
        max_mm: fd.iter().copied().fold(0.0, f64::max),
        n_above_threshold: fd.iter().filter(|&&v| v > threshold_mm).count(),
        threshold_mm,
        radius_mm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_matches_hand_computation() {
        let p = [
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.1, -0.2, 0.0, 0.001, 0.0, -0.002],
            [0.1, -0.2, 0.3, 0.001, 0.0, -0.002],
        ];
        let fd = framewise_displacement(&p, 50.0).unwrap();
        assert_eq!(fd[0], 0.0);
        assert!((fd[1] - (0.3 + 50.0 * 0.003)).abs() < 1e-12);
        assert!((fd[2] - 0.3).abs() < 1e-12);
        let s = summarize_fd(&fd, 0.4, 50.0);
        assert!((s.mean_mm - 0.375).abs() < 1e-12);
        assert!((s.max_mm - 0.45).abs() < 1e-12);
        assert_eq!(s.n_above_threshold, 1);
        assert!(framewise_displacement(&p, 0.0).is_err());
    }
}
