//! Kinetic models: the single-compartment general kinetic model (forward), and the
//! consensus single-delay quantification (inverse).
//!
//! Forward model (Buxton et al. 1998, MRM 40:383, with the simplifications of the
//! consensus paper, Alsop et al. 2015, MRM 73:102, and the multi-delay update, Woods et
//! al. 2024, MRM 92:469): tissue T1 during the transit is replaced by T1 of blood, the
//! bolus is a rectangular function, no dispersion, no macrovascular component,
//! M0 of blood = M0 of tissue / λ. With f in mL/g/s, t = PLD for (p)CASL and TI for PASL:
//!
//! (p)CASL, labelling duration τ, arterial transit time δ:
//! * PLD + τ < δ: ΔM = 0
//! * δ − τ ≤ PLD < δ: ΔM = 2 α M0 f T1b e^(−δ/T1b) (1 − e^(−(τ+PLD−δ)/T1b)) / λ
//! * PLD ≥ δ: ΔM = 2 α M0 f T1b e^(−PLD/T1b) (1 − e^(−τ/T1b)) / λ
//!
//! PASL with bolus cut-off TI1:
//! * TI < δ: ΔM = 0
//! * δ ≤ TI < δ + TI1: ΔM = 2 α M0 f (TI − δ) e^(−TI/T1b) / λ
//! * TI ≥ δ + TI1: ΔM = 2 α M0 f TI1 e^(−TI/T1b) / λ
//!
//! The single-delay consensus formulas are the inverse of the last case of each.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis, Zip};

use crate::error::{CbfError, Result};
use crate::params::{Labeling, QuantParams, UNIT_CONVERSION};

/// Kinetic factor g such that ΔM = M0 · CBF · g, with CBF in mL/100 g/min.
///
/// `delay_s` is the PLD ((p)CASL) or TI (PASL) of this voxel, slice offset included;
/// `att_s` the arterial transit time. Implements the forward model in the module docs.
pub fn kinetic_factor(p: &QuantParams, delay_s: f64, att_s: f64) -> f64 {
    let t1b = p.t1_blood_s;
    let alpha = p.efficiency.effective();
    let scale = 2.0 * alpha / (UNIT_CONVERSION * p.lambda_ml_per_g);
    match p.labeling {
        Labeling::Pcasl {
            labeling_duration_s: tau,
        }
        | Labeling::Casl {
            labeling_duration_s: tau,
        } => {
            if delay_s + tau < att_s {
                0.0
            } else if delay_s < att_s {
                scale * t1b * (-att_s / t1b).exp() * (1.0 - (-(tau + delay_s - att_s) / t1b).exp())
            } else {
                scale * t1b * (-delay_s / t1b).exp() * (1.0 - (-tau / t1b).exp())
            }
        }
        Labeling::Pasl { bolus_cutoff } => {
            let ti1 = bolus_cutoff.ti1();
            if delay_s < att_s {
                0.0
            } else if delay_s < att_s + ti1 {
                scale * (delay_s - att_s) * (-delay_s / t1b).exp()
            } else {
                scale * ti1 * (-delay_s / t1b).exp()
            }
        }
    }
}

/// Consensus single-delay factor: CBF = ΔM / M0 × `single_delay_scale(p, delay)`.
///
/// (p)CASL (Alsop et al. 2015, eq. 1):
/// CBF = 6000 λ ΔM e^(PLD/T1b) / (2 α T1b M0 (1 − e^(−τ/T1b))).
/// PASL with QUIPSS II / Q2TIPS (Alsop et al. 2015, eq. 2):
/// CBF = 6000 λ ΔM e^(TI/T1b) / (2 α TI1 M0). Units mL/100 g/min.
pub fn single_delay_scale(p: &QuantParams, delay_s: f64) -> f64 {
    let t1b = p.t1_blood_s;
    let alpha = p.efficiency.effective();
    let num = UNIT_CONVERSION * p.lambda_ml_per_g * (delay_s / t1b).exp();
    match p.labeling {
        Labeling::Pcasl {
            labeling_duration_s: tau,
        }
        | Labeling::Casl {
            labeling_duration_s: tau,
        } => num / (2.0 * alpha * t1b * (1.0 - (-tau / t1b).exp())),
        Labeling::Pasl { bolus_cutoff } => num / (2.0 * alpha * bolus_cutoff.ti1()),
    }
}

pub(crate) fn dims3(a: &ArrayView3<'_, impl Sized>) -> [usize; 3] {
    let (x, y, z) = a.dim();
    [x, y, z]
}

/// A series of ΔM volumes against its mask and its delays (one per volume); its grid shape.
pub(crate) fn check_series(
    delta_m: ArrayView4<f32>,
    mask: ArrayView3<bool>,
    delays_s: &[f64],
) -> Result<[usize; 3]> {
    let (nx, ny, nz, nt) = delta_m.dim();
    let shape = [nx, ny, nz];
    check_shape("mask vs ΔM", shape, dims3(&mask))?;
    if delays_s.len() != nt {
        return Err(CbfError::LengthMismatch {
            what: "delays vs ΔM volumes".into(),
            expected: nt,
            got: delays_s.len(),
        });
    }
    Ok(shape)
}

pub(crate) fn check_shape(what: &str, expected: [usize; 3], got: [usize; 3]) -> Result<()> {
    if expected != got {
        return Err(CbfError::ShapeMismatch {
            what: what.into(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        });
    }
    Ok(())
}

/// Fail with [`CbfError::InvalidM0`] if M0 is ≤ 0 or not finite anywhere in `mask`.
pub fn check_m0(m0: ArrayView3<f32>, mask: ArrayView3<bool>) -> Result<()> {
    check_shape("M0 vs mask", dims3(&mask), dims3(&m0))?;
    let mut nonfinite = (0usize, None);
    let mut nonpos = (0usize, None);
    for ((i, j, k), &v) in m0.indexed_iter() {
        if !mask[[i, j, k]] {
            continue;
        }
        if !v.is_finite() {
            nonfinite.0 += 1;
            nonfinite.1.get_or_insert([i, j, k]);
        } else if v <= 0.0 {
            nonpos.0 += 1;
            nonpos.1.get_or_insert([i, j, k]);
        }
    }
    if let (n, Some(first)) = nonfinite {
        return Err(CbfError::InvalidM0 {
            count: n,
            kind: "not finite".into(),
            first,
        });
    }
    if let (n, Some(first)) = nonpos {
        return Err(CbfError::InvalidM0 {
            count: n,
            kind: "zero or negative".into(),
            first,
        });
    }
    Ok(())
}

/// Fail with [`CbfError::NonFinite`] if `data` (`[x, y, z, n]`) holds NaN/inf in `mask`.
pub fn check_finite4(what: &str, data: ArrayView4<f32>, mask: ArrayView3<bool>) -> Result<()> {
    let (x, y, z, _) = data.dim();
    check_shape(&format!("{what} vs mask"), dims3(&mask), [x, y, z])?;
    let mut count = 0usize;
    let mut first = None;
    for ((i, j, k, _), &v) in data.indexed_iter() {
        if mask[[i, j, k]] && !v.is_finite() {
            count += 1;
            first.get_or_insert([i, j, k]);
        }
    }
    match first {
        Some(first) => Err(CbfError::NonFinite {
            what: what.into(),
            count,
            first,
        }),
        None => Ok(()),
    }
}

/// Single-delay CBF map (mL/100 g/min) by the consensus formula ([`single_delay_scale`]).
///
/// * `delta_m`: `[x, y, z]` control − label, same units as `m0` (after any vendor scaling).
/// * `m0`: `[x, y, z]` calibrated M0 ([`crate::m0::calibrate_m0`]).
/// * `mask`: `[x, y, z]` voxels to quantify; CBF is 0 outside.
/// * `delay_s`: PLD ((p)CASL) or TI (PASL); with `p.slice_timing` each slice uses
///   `delay_s + SliceTiming[k]`.
///
/// Errors on shape mismatch, M0 ≤ 0 / non-finite or ΔM non-finite inside the mask
/// (use [`crate::m0::restrict_mask`] first to exclude such voxels explicitly).
pub fn quantify_single(
    delta_m: ArrayView3<f32>,
    m0: ArrayView3<f32>,
    mask: ArrayView3<bool>,
    p: &QuantParams,
    delay_s: f64,
) -> Result<Array3<f32>> {
    let dm4 = delta_m.insert_axis(Axis(3));
    let out = quantify_series(dm4, m0, mask, p, &[delay_s])?;
    Ok(out.index_axis_move(Axis(3), 0))
}

/// Per-volume CBF series (mL/100 g/min), each volume quantified with its own delay by
/// the consensus single-delay formula ([`single_delay_scale`]).
///
/// `delta_m`: `[x, y, z, n]` (e.g. per-pair ΔM); `delays_s`: n PLDs/TIs; other arguments
/// as [`quantify_single`]. Returns `[x, y, z, n]`, 0 outside the mask.
pub fn quantify_series(
    delta_m: ArrayView4<f32>,
    m0: ArrayView3<f32>,
    mask: ArrayView3<bool>,
    p: &QuantParams,
    delays_s: &[f64],
) -> Result<Array4<f32>> {
    let (nx, ny, nz, nt) = delta_m.dim();
    let shape = check_series(delta_m, mask, delays_s)?;
    if let Some(&d) = delays_s.iter().find(|d| !d.is_finite() || **d < 0.0) {
        return Err(CbfError::InvalidParameter {
            name: "PostLabelingDelay".into(),
            value: d,
            expected: "finite non-negative seconds".into(),
        });
    }
    p.validate(shape)?;
    check_m0(m0, mask)?;
    check_finite4("ΔM", delta_m, mask)?;
    let mut out = Array4::<f32>::zeros((nx, ny, nz, nt));
    // scale per (slice offset, volume), then parallel over voxels (independent outputs:
    // identical bits at any thread count)
    let offsets: Vec<f64> = match &p.slice_timing {
        Some(st) => st.times_s.clone(),
        None => vec![0.0],
    };
    let table: Vec<Vec<f64>> = offsets
        .iter()
        .map(|&off| {
            delays_s
                .iter()
                .map(|&d| single_delay_scale(p, d + off))
                .collect()
        })
        .collect();
    Zip::indexed(out.lanes_mut(Axis(3)))
        .and(delta_m.lanes(Axis(3)))
        .and(&m0)
        .and(&mask)
        .par_for_each(|(i, j, k), mut o, dm, &m0, &m| {
            if m {
                let row = match &p.slice_timing {
                    Some(st) => &table[[i, j, k][st.axis]],
                    None => &table[0],
                };
                let inv = 1.0 / m0 as f64;
                for t in 0..nt {
                    o[t] = (dm[t] as f64 * inv * row[t]) as f32;
                }
            }
        });
    Ok(out)
}

/// Forward model: ΔM series `[x, y, z, n]` from CBF (mL/100 g/min), ATT (s) and M0 maps
/// `[x, y, z]` at the delays `delays_s` (PLD or TI; slice offsets from `p` added),
/// by [`kinetic_factor`]. Used to simulate data with known truth.
pub fn simulate_delta_m(
    cbf: ArrayView3<f32>,
    att_s: ArrayView3<f32>,
    m0: ArrayView3<f32>,
    delays_s: &[f64],
    p: &QuantParams,
) -> Result<Array4<f32>> {
    let shape = dims3(&cbf);
    check_shape("ATT vs CBF", shape, dims3(&att_s))?;
    check_shape("M0 vs CBF", shape, dims3(&m0))?;
    p.validate(shape)?;
    let mut out = Array4::<f32>::zeros((shape[0], shape[1], shape[2], delays_s.len()));
    for (t, &d) in delays_s.iter().enumerate() {
        let mut o = out.index_axis_mut(Axis(3), t);
        Zip::indexed(&mut o)
            .and(&cbf)
            .and(&att_s)
            .and(&m0)
            .for_each(|(i, j, k), o, &f, &a, &m| {
                let g = kinetic_factor(p, d + p.slice_offset([i, j, k]), a as f64);
                *o = (m as f64 * f as f64 * g) as f32;
            });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::BolusCutoff;

    #[test]
    fn consensus_formula_inverts_forward_model_after_arrival() {
        let p = QuantParams::consensus(
            Labeling::Pcasl {
                labeling_duration_s: 1.8,
            },
            3.0,
        );
        let g = kinetic_factor(&p, 2.0, 1.2);
        assert!((g * single_delay_scale(&p, 2.0) - 1.0).abs() < 1e-12);
        // continuity at the case boundaries
        let a = kinetic_factor(&p, 1.2 - 1e-9, 1.2);
        let b = kinetic_factor(&p, 1.2 + 1e-9, 1.2);
        assert!((a - b).abs() < 1e-9 * a.abs().max(1e-12) + 1e-12);
        let q = QuantParams::consensus(
            Labeling::Pasl {
                bolus_cutoff: BolusCutoff::QuipssII { ti1_s: 0.7 },
            },
            3.0,
        );
        let g = kinetic_factor(&q, 1.8, 0.9);
        assert!((g * single_delay_scale(&q, 1.8) - 1.0).abs() < 1e-12);
        // hand value of the pCASL formula: λ=0.9, α=0.85, T1b=1.65, τ=1.8, PLD=2
        let hand = 6000.0 * 0.9 * (2.0f64 / 1.65).exp()
            / (2.0 * 0.85 * 1.65 * (1.0 - (-1.8f64 / 1.65).exp()));
        assert!((single_delay_scale(&p, 2.0) - hand).abs() < 1e-9);
    }
}
