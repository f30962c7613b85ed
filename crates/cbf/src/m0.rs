//! M0 calibration image, brain mask from M0, and explicit exclusion of unusable voxels.

use ndarray::{Array3, ArrayView3, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};
use crate::kinetic::{check_shape, dims3};

/// Where the M0 comes from (BIDS `M0Type`).
#[derive(Debug, Clone)]
pub enum M0Input<'a> {
    /// M0 volumes `[x, y, z, n]` (`Separate` m0scan resampled to the ASL grid, or
    /// `Included` m0scan volumes of the series), averaged over n.
    /// `repetition_time_s`: BIDS `RepetitionTimePreparation` of the M0 volumes.
    Volumes {
        /// `[x, y, z, n]` M0 volumes.
        volumes: ArrayView4<'a, f32>,
        /// Repetition time of the M0 acquisition, s; `None` = no T1 recovery correction.
        repetition_time_s: Option<f64>,
    },
    /// A single M0 value for the whole brain (`M0Type: Estimate`, BIDS `M0Estimate`).
    Estimate {
        /// M0 value, scanner units.
        value: f64,
    },
    /// `M0Type: Absent`: the mean control image stands in for M0, allowed only without
    /// background suppression (otherwise [`CbfError::BackgroundSuppressedControlAsM0`]).
    MeanControl {
        /// `[x, y, z, n]` control volumes.
        controls: ArrayView4<'a, f32>,
        /// Repetition time of the control volumes, s.
        repetition_time_s: Option<f64>,
        /// BIDS `BackgroundSuppression`.
        background_suppressed: bool,
    },
}

/// M0 correction parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct M0Params {
    /// T1 of tissue for the saturation-recovery correction, s
    /// ([`crate::params::t1_tissue_default`]: 1.607 s at 3 T, Wright et al. 2008).
    pub t1_tissue_s: f64,
    /// Multiplicative scale on M0 relative to ΔM (ASLPrep's `--m0_scale`, default 1).
    /// BIDS data should already be scaled; for the GE 3D-spiral product sequence, whose
    /// PW image is summed over NEX and whose PD image is stored divided by 32, the
    /// factor is 32 × NEX (Hernandez-Garcia lab, `cbf_calc_ge.m`); verify per software
    /// version.
    pub scale: f64,
}

impl Default for M0Params {
    fn default() -> Self {
        Self {
            t1_tissue_s: 1.607,
            scale: 1.0,
        }
    }
}

/// Which M0 path was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum M0Kind {
    /// Averaged M0 volumes.
    Volumes,
    /// Single scalar estimate.
    Estimate,
    /// Mean of control volumes (no background suppression).
    MeanControl,
}

/// What was done to obtain M0 (for the JSON sidecar).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct M0Report {
    /// M0 path.
    pub kind: M0Kind,
    /// Number of volumes averaged (1 for an estimate).
    pub n_averaged: usize,
    /// Repetition time used for the T1 correction, s.
    pub repetition_time_s: Option<f64>,
    /// T1 of tissue used, s.
    pub t1_tissue_s: f64,
    /// Applied factor 1 / (1 − e^(−TR/T1 tissue)) (1 when no TR was given).
    pub tr_correction_factor: f64,
    /// Applied vendor/user scale.
    pub scale: f64,
}

/// Build the M0 map `[x, y, z]` on the ASL grid `shape`.
///
/// Volumes are averaged; when a repetition time is given the mean is divided by the
/// saturation-recovery factor (1 − e^(−TR/T1 tissue)) (Alsop et al. 2015, p. 113:
/// correct M0 acquired with TR < ~5 s; the factor is applied for every TR given, it is
/// ≈ 1.04 at TR = 5 s). Finally M0 is multiplied by `p.scale`.
pub fn calibrate_m0(
    input: &M0Input<'_>,
    shape: [usize; 3],
    p: &M0Params,
) -> Result<(Array3<f32>, M0Report)> {
    if !(p.scale.is_finite() && p.scale > 0.0) {
        return Err(CbfError::InvalidParameter {
            name: "M0 scale".into(),
            value: p.scale,
            expected: "a positive finite factor".into(),
        });
    }
    let tr_factor = |tr: Option<f64>| -> Result<f64> {
        match tr {
            None => Ok(1.0),
            Some(tr) if tr.is_finite() && tr > 0.0 => {
                if !(p.t1_tissue_s.is_finite() && p.t1_tissue_s > 0.0) {
                    return Err(CbfError::InvalidParameter {
                        name: "t1_tissue_s".into(),
                        value: p.t1_tissue_s,
                        expected: "a positive finite T1 in seconds".into(),
                    });
                }
                Ok(1.0 / (1.0 - (-tr / p.t1_tissue_s).exp()))
            }
            Some(tr) => Err(CbfError::InvalidParameter {
                name: "RepetitionTimePreparation".into(),
                value: tr,
                expected: "positive seconds".into(),
            }),
        }
    };
    let mean_of = |v: &ArrayView4<'_, f32>, what: &str| -> Result<Array3<f32>> {
        let (x, y, z, n) = v.dim();
        check_shape(&format!("{what} vs ASL grid"), shape, [x, y, z])?;
        if n == 0 {
            return Err(CbfError::NoVolumes { what: what.into() });
        }
        let mut acc = Array3::<f64>::zeros((x, y, z));
        for vol in v.axis_iter(Axis(3)) {
            ndarray::Zip::from(&mut acc)
                .and(&vol)
                .for_each(|a, &b| *a += b as f64);
        }
        Ok(acc.mapv(|a| (a / n as f64) as f32))
    };
    let (mean, kind, n, tr) = match input {
        M0Input::Volumes {
            volumes,
            repetition_time_s,
        } => (
            mean_of(volumes, "M0")?,
            M0Kind::Volumes,
            volumes.dim().3,
            *repetition_time_s,
        ),
        M0Input::Estimate { value } => {
            if !(value.is_finite() && *value > 0.0) {
                return Err(CbfError::InvalidParameter {
                    name: "M0Estimate".into(),
                    value: *value,
                    expected: "a positive finite value".into(),
                });
            }
            (
                Array3::from_elem((shape[0], shape[1], shape[2]), *value as f32),
                M0Kind::Estimate,
                1,
                None,
            )
        }
        M0Input::MeanControl {
            controls,
            repetition_time_s,
            background_suppressed,
        } => {
            if *background_suppressed {
                return Err(CbfError::BackgroundSuppressedControlAsM0);
            }
            (
                mean_of(controls, "control")?,
                M0Kind::MeanControl,
                controls.dim().3,
                *repetition_time_s,
            )
        }
    };
    let f = tr_factor(tr)?;
    let total = f * p.scale;
    let m0 = mean.mapv(|v| (v as f64 * total) as f32);
    Ok((
        m0,
        M0Report {
            kind,
            n_averaged: n,
            repetition_time_s: tr,
            t1_tissue_s: p.t1_tissue_s,
            tr_correction_factor: f,
            scale: p.scale,
        },
    ))
}

/// Voxels removed from a mask by [`restrict_mask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskRestriction {
    /// Voxels in the input mask.
    pub n_input: usize,
    /// Removed because M0 was ≤ 0 or not finite.
    pub n_invalid_m0: usize,
    /// Removed because ΔM was not finite in at least one volume (and M0 was valid).
    pub n_nonfinite_delta_m: usize,
    /// Voxels left.
    pub n_output: usize,
}

/// Explicitly drop from `mask` the voxels where M0 is ≤ 0 / not finite or where any
/// ΔM volume (`[x, y, z, n]`) is not finite, and report how many. The alternative to
/// the errors of [`crate::kinetic::quantify_single`]; the pipeline must report the counts.
/// Errors if nothing is left.
pub fn restrict_mask(
    mask: ArrayView3<bool>,
    m0: ArrayView3<f32>,
    delta_m: Option<ArrayView4<f32>>,
) -> Result<(Array3<bool>, MaskRestriction)> {
    let shape = dims3(&mask);
    check_shape("M0 vs mask", shape, dims3(&m0))?;
    if let Some(d) = &delta_m {
        let (x, y, z, _) = d.dim();
        check_shape("ΔM vs mask", shape, [x, y, z])?;
    }
    let mut out = mask.to_owned();
    let mut r = MaskRestriction {
        n_input: 0,
        n_invalid_m0: 0,
        n_nonfinite_delta_m: 0,
        n_output: 0,
    };
    for ((i, j, k), o) in out.indexed_iter_mut() {
        if !*o {
            continue;
        }
        r.n_input += 1;
        let m = m0[[i, j, k]];
        if !(m.is_finite() && m > 0.0) {
            *o = false;
            r.n_invalid_m0 += 1;
        } else if let Some(d) = &delta_m
            && (0..d.dim().3).any(|t| !d[[i, j, k, t]].is_finite())
        {
            *o = false;
            r.n_nonfinite_delta_m += 1;
        }
        if *o {
            r.n_output += 1;
        }
    }
    if r.n_output == 0 {
        return Err(CbfError::EmptyMask {
            what: "brain mask after removing invalid M0/ΔM voxels".into(),
        });
    }
    Ok((out, r))
}

/// How a brain mask was derived from M0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BrainMaskReport {
    /// Otsu threshold on M0 (M0 units).
    pub threshold: f64,
    /// Connected components above threshold (6-connectivity).
    pub n_components: usize,
    /// Voxels of the largest component.
    pub n_largest_component: usize,
    /// Voxels added by hole filling.
    pub n_holes_filled: usize,
    /// Voxels in the final mask.
    pub n_voxels: usize,
}

/// Brain mask from an M0 image `[x, y, z]`: Otsu threshold, largest 6-connected
/// component, hole filling. Errors if M0 is constant or nothing survives.
pub fn brain_mask_from_m0(m0: ArrayView3<f32>) -> Result<(Array3<bool>, BrainMaskReport)> {
    use cbflow_image::masks;
    let vals: Vec<f32> = m0.iter().copied().collect();
    let no_threshold = || CbfError::EmptyMask {
        what: "M0 (constant or not finite): no Otsu threshold".into(),
    };
    if !vals.iter().any(|v| v.is_finite() && *v != vals[0]) {
        return Err(no_threshold());
    }
    let thr = masks::otsu_threshold(&vals).map_err(|_| no_threshold())? as f64;
    let above = m0.mapv(|v| v.is_finite() && v as f64 > thr);
    let n_comp = masks::label_components(&above).1.len();
    let lcc = masks::largest_component(&above);
    let n_lcc = masks::count(&lcc);
    if n_lcc == 0 {
        return Err(CbfError::EmptyMask {
            what: "brain mask from M0".into(),
        });
    }
    let filled = masks::fill_holes(&lcc);
    let n = masks::count(&filled);
    Ok((
        filled,
        BrainMaskReport {
            threshold: thr,
            n_components: n_comp,
            n_largest_component: n_lcc,
            n_holes_filled: n - n_lcc,
            n_voxels: n,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn m0_average_tr_correction_and_scale() {
        let mut v = Array4::<f32>::zeros((2, 2, 2, 2));
        v.index_axis_mut(Axis(3), 0).fill(100.0);
        v.index_axis_mut(Axis(3), 1).fill(200.0);
        let p = M0Params {
            t1_tissue_s: 1.3,
            scale: 2.0,
        };
        let (m0, r) = calibrate_m0(
            &M0Input::Volumes {
                volumes: v.view(),
                repetition_time_s: Some(2.0),
            },
            [2, 2, 2],
            &p,
        )
        .unwrap();
        let f = 1.0 / (1.0 - (-2.0f64 / 1.3).exp());
        assert!((m0[[0, 0, 0]] as f64 - 150.0 * f * 2.0).abs() < 1e-3);
        assert_eq!(r.n_averaged, 2);
        assert!((r.tr_correction_factor - f).abs() < 1e-12);
        let e = calibrate_m0(
            &M0Input::MeanControl {
                controls: v.view(),
                repetition_time_s: None,
                background_suppressed: true,
            },
            [2, 2, 2],
            &p,
        );
        assert!(matches!(e, Err(CbfError::BackgroundSuppressedControlAsM0)));
        let (m0, _) = calibrate_m0(
            &M0Input::Estimate { value: 10.0 },
            [2, 2, 2],
            &M0Params::default(),
        )
        .unwrap();
        assert_eq!(m0[[1, 1, 1]], 10.0);
    }

    #[test]
    fn mask_ops() {
        // sphere of radius 5 with a hollow centre and a detached blob
        let mut m0 = Array3::<f32>::from_elem((16, 16, 16), 5.0);
        for ((i, j, k), v) in m0.indexed_iter_mut() {
            let r2 = (i as f64 - 7.5).powi(2) + (j as f64 - 7.5).powi(2) + (k as f64 - 7.5).powi(2);
            if r2 < 25.0 && r2 > 2.0 {
                *v = 1000.0;
            }
        }
        m0[[0, 0, 0]] = 1000.0;
        let (mask, rep) = brain_mask_from_m0(m0.view()).unwrap();
        assert_eq!(rep.n_components, 2);
        assert!(!mask[[0, 0, 0]]);
        assert!(mask[[7, 7, 7]]); // hole filled
        assert!(rep.n_holes_filled > 0);
        let expected = m0.indexed_iter().filter(|((i, j, k), _)| {
            (*i as f64 - 7.5).powi(2) + (*j as f64 - 7.5).powi(2) + (*k as f64 - 7.5).powi(2) < 25.0
        });
        assert_eq!(rep.n_voxels, expected.count());
    }
}
