//! Typed quantification parameters and their documented defaults.
//!
//! The pipeline converts BIDS metadata into these types; every field is
//! `Serialize` so the values used can be written into the JSON sidecar.

use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};

/// Converts mL/g/s to mL/100 g/min (Alsop et al. 2015).
pub const UNIT_CONVERSION: f64 = 6000.0;

/// Brain/blood partition coefficient λ, mL/g (Herscovitch & Raichle 1985; Alsop et al. 2015).
pub const DEFAULT_LAMBDA: f64 = 0.9;

/// pCASL labelling efficiency without background suppression (Alsop et al. 2015; Dai et al. 2008).
pub const DEFAULT_ALPHA_PCASL: f64 = 0.85;
/// CASL labelling efficiency (Alsop et al. 2015, 0.68; also ASLPrep's default).
pub const DEFAULT_ALPHA_CASL: f64 = 0.68;
/// PASL inversion efficiency (Alsop et al. 2015; Wong et al. 1998).
pub const DEFAULT_ALPHA_PASL: f64 = 0.98;
/// Efficiency factor per background-suppression inversion pulse. 0.95 per pulse is
/// ASLPrep's hard-coded value (`estimate_labeling_efficiency`, `BS_PULSE_EFF`), not a
/// published measurement; ExploreASL instead uses total factors per pulse count
/// (2 pulses: 0.83, Garcia et al. 2005; 4: 0.81; 5: 0.75). Configurable here.
pub const DEFAULT_BS_EFFICIENCY_PER_PULSE: f64 = 0.95;

/// T1 of arterial blood in seconds by field strength (Alsop et al. 2015: 1.65 s at 3 T,
/// 1.35 s at 1.5 T; 7 T: 2.087 s as used by ASLPrep after Zhang et al. 2013).
/// Other field strengths use the linear fit of Zhang et al. 2013,
/// T1 = (110·B0 + 1316) ms.
pub fn t1_blood_default(field_strength_t: f64) -> f64 {
    if (field_strength_t - 3.0).abs() < 0.05 {
        1.65
    } else if (field_strength_t - 1.5).abs() < 0.05 {
        1.35
    } else if (field_strength_t - 7.0).abs() < 0.05 {
        2.087
    } else {
        (110.0 * field_strength_t + 1316.0) / 1000.0
    }
}

/// T1 of grey-matter tissue in seconds, used only for the M0 repetition-time
/// correction: Wright et al. 2008 (1.5 T 1.197 s, 3 T 1.607 s, 7 T 1.939 s), the values
/// ASLPrep uses. ExploreASL uses 1.24 s at 3 T. `None` for other field strengths.
pub fn t1_tissue_default(field_strength_t: f64) -> Option<f64> {
    if (field_strength_t - 3.0).abs() < 0.05 {
        Some(1.607)
    } else if (field_strength_t - 1.5).abs() < 0.05 {
        Some(1.197)
    } else if (field_strength_t - 7.0).abs() < 0.05 {
        Some(1.939)
    } else {
        None
    }
}

/// How the bolus of a PASL acquisition is cut off (BIDS `BolusCutOffTechnique`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BolusCutoff {
    /// QUIPSS II: a single saturation at `ti1_s` (BIDS `BolusCutOffDelayTime`).
    QuipssII {
        /// TI1, the bolus duration, s.
        ti1_s: f64,
    },
    /// Q2TIPS: a saturation train from `ti1_s` to `ti1_stop_s` (BIDS
    /// `BolusCutOffDelayTime` = [TI1, TI1s]); the bolus duration is TI1 (as in ASLPrep
    /// and BASIL).
    Q2tips {
        /// TI1, start of the saturation train = bolus duration, s.
        ti1_s: f64,
        /// End of the saturation train, s (recorded for provenance, not used); `None` when
        /// only TI1 was recorded (Siemens headers often lack TI1s).
        ti1_stop_s: Option<f64>,
    },
}

impl BolusCutoff {
    /// Bolus duration TI1 in seconds.
    pub fn ti1(&self) -> f64 {
        match *self {
            Self::QuipssII { ti1_s } | Self::Q2tips { ti1_s, .. } => ti1_s,
        }
    }
}

/// The labelling scheme (BIDS `ArterialSpinLabelingType`) and its timing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Labeling {
    /// Pseudo-continuous ASL; τ = BIDS `LabelingDuration`.
    Pcasl {
        /// Labelling duration τ, s.
        labeling_duration_s: f64,
    },
    /// Continuous ASL; same kinetics as pCASL.
    Casl {
        /// Labelling duration τ, s.
        labeling_duration_s: f64,
    },
    /// Pulsed ASL with a bolus cut-off. The BIDS `PostLabelingDelay` of PASL is the
    /// inversion time TI. PASL without bolus cut-off is not quantifiable here.
    Pasl {
        /// Bolus cut-off technique and TI1.
        bolus_cutoff: BolusCutoff,
    },
}

impl Labeling {
    /// Default labelling efficiency before background suppression (Alsop et al. 2015).
    pub fn default_alpha(&self) -> f64 {
        match self {
            Self::Pcasl { .. } => DEFAULT_ALPHA_PCASL,
            Self::Casl { .. } => DEFAULT_ALPHA_CASL,
            Self::Pasl { .. } => DEFAULT_ALPHA_PASL,
        }
    }
}

/// Effect of background suppression on the labelling efficiency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BackgroundSuppression {
    /// No background suppression (factor 1).
    None,
    /// `n_pulses` inversion pulses, each multiplying α by `efficiency_per_pulse`
    /// (default [`DEFAULT_BS_EFFICIENCY_PER_PULSE`] = 0.95, as ASLPrep).
    PerPulse {
        /// BIDS `BackgroundSuppressionNumberPulses`.
        n_pulses: u32,
        /// Efficiency per pulse.
        efficiency_per_pulse: f64,
    },
    /// A total factor given directly (e.g. ExploreASL's 0.83 for 2 pulses).
    Total {
        /// Total multiplicative factor on α.
        factor: f64,
    },
}

impl BackgroundSuppression {
    /// Multiplicative factor on α.
    pub fn factor(&self) -> f64 {
        match *self {
            Self::None => 1.0,
            Self::PerPulse {
                n_pulses,
                efficiency_per_pulse,
            } => efficiency_per_pulse.powi(n_pulses as i32),
            Self::Total { factor } => factor,
        }
    }

    /// Whether any background suppression was applied.
    pub fn is_suppressed(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// Labelling efficiency α and its reduction by background suppression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelingEfficiency {
    /// α without background suppression: BIDS `LabelingEfficiency` when given,
    /// otherwise [`Labeling::default_alpha`].
    pub base: f64,
    /// Background-suppression effect.
    pub background_suppression: BackgroundSuppression,
}

impl LabelingEfficiency {
    /// Effective α = base × background-suppression factor.
    pub fn effective(&self) -> f64 {
        self.base * self.background_suppression.factor()
    }
}

/// Slice-dependent timing of 2D multi-slice readouts: each slice is read
/// `times_s[k]` seconds after the first, so its PLD (or TI) is PLD + `times_s[k]`
/// (BIDS `SliceTiming`, slice axis from `SliceEncodingDirection`, default k = axis 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceTiming {
    /// Acquisition time of each slice relative to the first, s (one per slice).
    pub times_s: Vec<f64>,
    /// Array axis along which slices are stacked (0, 1 or 2).
    pub axis: usize,
}

/// Everything the kinetic models need besides images and delays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// Labelling scheme and timing.
    pub labeling: Labeling,
    /// T1 of arterial blood, s ([`t1_blood_default`]).
    pub t1_blood_s: f64,
    /// Brain/blood partition coefficient λ, mL/g ([`DEFAULT_LAMBDA`]).
    pub lambda_ml_per_g: f64,
    /// Labelling efficiency.
    pub efficiency: LabelingEfficiency,
    /// Per-slice timing for 2D readouts; `None` for 3D readouts.
    pub slice_timing: Option<SliceTiming>,
}

impl QuantParams {
    /// Parameters with the consensus defaults for a labelling scheme at a field
    /// strength: α from [`Labeling::default_alpha`], no background suppression,
    /// λ = 0.9, T1 blood from [`t1_blood_default`], 3D readout.
    pub fn consensus(labeling: Labeling, field_strength_t: f64) -> Self {
        Self {
            labeling,
            t1_blood_s: t1_blood_default(field_strength_t),
            lambda_ml_per_g: DEFAULT_LAMBDA,
            efficiency: LabelingEfficiency {
                base: labeling.default_alpha(),
                background_suppression: BackgroundSuppression::None,
            },
            slice_timing: None,
        }
    }

    /// Check every value is in its physical domain and slice timing fits `shape`.
    pub fn validate(&self, shape: [usize; 3]) -> Result<()> {
        let pos = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(CbfError::InvalidParameter {
                    name: name.into(),
                    value: v,
                    expected: "a positive finite number".into(),
                })
            }
        };
        pos("t1_blood_s", self.t1_blood_s)?;
        pos("lambda_ml_per_g", self.lambda_ml_per_g)?;
        let a = self.efficiency.effective();
        if !(a.is_finite() && a > 0.0 && a <= 1.0) {
            return Err(CbfError::InvalidParameter {
                name: "LabelingEfficiency (effective)".into(),
                value: a,
                expected: "a value in (0, 1]".into(),
            });
        }
        match self.labeling {
            Labeling::Pcasl {
                labeling_duration_s,
            }
            | Labeling::Casl {
                labeling_duration_s,
            } => pos("LabelingDuration", labeling_duration_s)?,
            Labeling::Pasl { bolus_cutoff } => pos("BolusCutOffDelayTime", bolus_cutoff.ti1())?,
        }
        if let Some(st) = &self.slice_timing {
            if st.axis > 2 {
                return Err(CbfError::InvalidParameter {
                    name: "slice axis".into(),
                    value: st.axis as f64,
                    expected: "0, 1 or 2".into(),
                });
            }
            if st.times_s.len() != shape[st.axis] {
                return Err(CbfError::LengthMismatch {
                    what: format!("SliceTiming entries vs slices along axis {}", st.axis),
                    expected: shape[st.axis],
                    got: st.times_s.len(),
                });
            }
            if let Some(&t) = st.times_s.iter().find(|t| !t.is_finite() || **t < 0.0) {
                return Err(CbfError::InvalidParameter {
                    name: "SliceTiming".into(),
                    value: t,
                    expected: "finite non-negative seconds".into(),
                });
            }
        }
        Ok(())
    }

    /// Delay offset (s) of voxel `[i, j, k]`: the slice time of its slice, or 0.
    #[inline]
    pub fn slice_offset(&self, idx: [usize; 3]) -> f64 {
        match &self.slice_timing {
            Some(st) => st.times_s[idx[st.axis]],
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bs() {
        assert_eq!(t1_blood_default(3.0), 1.65);
        assert_eq!(t1_blood_default(1.5), 1.35);
        assert!((t1_blood_default(2.0) - 1.536).abs() < 1e-12);
        let e = LabelingEfficiency {
            base: 0.85,
            background_suppression: BackgroundSuppression::PerPulse {
                n_pulses: 4,
                efficiency_per_pulse: 0.95,
            },
        };
        assert!((e.effective() - 0.85 * 0.95f64.powi(4)).abs() < 1e-12);
        let p = QuantParams::consensus(
            Labeling::Pcasl {
                labeling_duration_s: 1.8,
            },
            3.0,
        );
        assert!(p.validate([4, 4, 4]).is_ok());
        let mut q = p.clone();
        q.slice_timing = Some(SliceTiming {
            times_s: vec![0.0; 3],
            axis: 2,
        });
        assert!(matches!(
            q.validate([4, 4, 4]),
            Err(CbfError::LengthMismatch { .. })
        ));
    }
}
