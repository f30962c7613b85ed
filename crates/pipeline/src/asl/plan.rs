//! What one ASL run's metadata and the workflow's options resolve to before any image is read:
//! the volumes used and how they pair, the kinetic-model parameters, and the acquisition clock.
//! `cbflow validate --workflow`, the participant level's preflight and the run itself all call
//! [`plan_run`], so the three agree on what a dataset can do.

use cbflow_bids::{AslRun, AslType};
use cbflow_cbf::{
    BackgroundSuppression, BolusCutoff, Exclusions, Labeling, LabelingEfficiency, QuantParams,
    SeriesLayout, SliceTiming, VolumeType,
};
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result};

/// Choices of the ASL step that are not in the BIDS metadata (the workflow's parameters).
#[derive(Debug, Clone, Serialize)]
pub struct AslOptions {
    /// Efficiency kept per background-suppression pulse (ASLPrep's 0.95).
    pub bs_efficiency_per_pulse: f64,
    /// Number of background-suppression pulses, for series whose sidecar has
    /// `BackgroundSuppression: true` but no `BackgroundSuppressionNumberPulses` (Siemens
    /// DICOMs do not record it). A sidecar that gives another number is an error.
    pub bs_pulses: Option<u32>,
    /// Total factor by which background suppression lowers the labelling efficiency (e.g.
    /// ExploreASL's 0.83 for two pulses, Garcia et al. 2005); replaces the per-pulse model.
    pub bs_total_efficiency: Option<f64>,
    /// Extra factor on M0 (GE 3D-spiral data: 32 × NEX; 1 for data already scaled).
    pub m0_scale: f64,
    /// Dummy volumes at the start of the series to drop.
    pub dummy_scans: usize,
    /// Volumes to leave out of every ASL series, by 0-based index (the row of
    /// `aslcontext.tsv` below its header, counted from 0).
    pub exclude_volumes: Vec<usize>,
    /// Shots (segments) per volume of a segmented readout, for series whose sidecar has no
    /// `NumberShots`: each volume then lasts this many `RepetitionTimePreparation`s.
    pub number_shots: Option<u32>,
    /// Rigidly realign the series.
    pub realign: bool,
    /// Smooth M0 with this FWHM (mm) inside the brain mask before calibration; `None` = off.
    pub m0_smoothing_fwhm_mm: Option<f64>,
}

impl Default for AslOptions {
    fn default() -> Self {
        Self {
            bs_efficiency_per_pulse: cbflow_cbf::params::DEFAULT_BS_EFFICIENCY_PER_PULSE,
            bs_pulses: None,
            bs_total_efficiency: None,
            m0_scale: 1.0,
            dummy_scans: 0,
            exclude_volumes: Vec::new(),
            number_shots: None,
            realign: true,
            m0_smoothing_fwhm_mm: None,
        }
    }
}

/// A run's volumes, model parameters and clock, resolved from its metadata and the options.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The `aslcontext.tsv` volume types.
    pub types: Vec<VolumeType>,
    /// Which volumes pair, which are M0, which are left out.
    pub layout: SeriesLayout,
    /// Kinetic-model parameters.
    pub quant: QuantParams,
    /// Onset of every volume from the start of the run (s): `VolumeTiming`, else the running
    /// sum of `RepetitionTimePreparation` × shots per volume; `None` when neither is known.
    pub volume_onsets_s: Option<Vec<f64>>,
    /// Shots per volume used for the clock (1 unless the sidecar or the options say otherwise).
    pub shots_per_volume: u32,
    /// What was decided that the user should know (each logged as a warning and kept in the
    /// sidecars).
    pub notes: Vec<String>,
}

impl RunPlan {
    /// Onset (s) of the label volume of every pair, then of every ΔM volume, in the order of
    /// the CBF series; empty when the clock is unknown.
    pub fn pair_onsets_s(&self) -> Vec<f64> {
        let Some(onset) = &self.volume_onsets_s else {
            return Vec::new();
        };
        self.layout
            .pairs
            .iter()
            .map(|p| onset[p.label])
            .chain(self.layout.delta_m.iter().map(|&i| onset[i]))
            .collect()
    }

    /// Time between successive pairs (s), for the 4th pixdim of the CBF time series: the median
    /// spacing of [`RunPlan::pair_onsets_s`], 0 when unknown.
    pub fn pair_spacing_s(&self) -> f64 {
        let t = self.pair_onsets_s();
        let mut d: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        if d.is_empty() {
            return 0.0;
        }
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    }
}

pub(crate) fn volume_types(run: &AslRun) -> Vec<VolumeType> {
    run.volumes.volume_types.clone()
}

/// Resolves a run before reading its images: pairs (leaving out the dummies, the options'
/// `exclude_volumes` and an unpaired control or label at the start or end, with a note), the
/// kinetic-model parameters and the volume onsets. Errors name the file and the field (or the
/// workflow parameter) and say what would fix them.
pub fn plan_run(run: &AslRun, opts: &AslOptions) -> Result<RunPlan> {
    let types = volume_types(run);
    let mut notes = Vec::new();
    let layout = cbflow_cbf::split_series_excluding(
        &types,
        &Exclusions {
            n_dummy: opts.dummy_scans,
            volumes: opts.exclude_volumes.clone(),
            drop_unpaired: true,
        },
    )
    .map_err(|e| Error::Metadata {
        path: run.context.clone(),
        field: "volume_type".into(),
        message: format!(
            "{e}; leave volumes out with the asl-cbf parameter exclude-volumes (0-based indices)"
        ),
    })?;
    if let Some(i) = layout.unpaired_dropped {
        notes.push(format!(
            "{} volume {i} has no partner and is left out (an unpaired {} at the {} of the series); choose other volumes with exclude-volumes",
            types[i].as_str(),
            types[i].as_str(),
            if layout.pairs.iter().all(|p| p.control.min(p.label) > i) {
                "start"
            } else {
                "end"
            }
        ));
    }
    if !layout.excluded.is_empty() {
        notes.push(format!(
            "volumes {:?} left out (exclude-volumes)",
            layout.excluded
        ));
    }
    if layout.pairs.is_empty() && layout.delta_m.is_empty() {
        return Err(Error::Metadata {
            path: run.context.clone(),
            field: "volume_type".into(),
            message: "no control/label pair and no deltam volume is left to quantify".into(),
        });
    }
    let quant = quant_params_inner(run, opts, None, &mut notes)?;
    let (volume_onsets_s, shots_per_volume) = volume_onsets(run, opts, types.len(), &mut notes)?;
    Ok(RunPlan {
        types,
        layout,
        quant,
        volume_onsets_s,
        shots_per_volume,
        notes,
    })
}

/// Kinetic-model parameters from the BIDS metadata (and the options), checked against the
/// image shape `shape`.
pub fn quant_params(run: &AslRun, opts: &AslOptions, shape: [usize; 3]) -> Result<QuantParams> {
    quant_params_inner(run, opts, Some(shape), &mut Vec::new())
}

fn quant_params_inner(
    run: &AslRun,
    opts: &AslOptions,
    shape: Option<[usize; 3]>,
    notes: &mut Vec<String>,
) -> Result<QuantParams> {
    let m = &run.metadata;
    let bad = |field: &str, message: String| Error::Metadata {
        path: run.asl.path.clone(),
        field: field.into(),
        message,
    };
    let field = m
        .magnetic_field_strength
        .ok_or_else(|| bad("MagneticFieldStrength", "required for T1 of blood".into()))?;
    let labeling = match m.asl_type {
        AslType::Pcasl | AslType::Casl => {
            let tau = m
                .labeling_duration
                .as_ref()
                .and_then(|v| v.iter().copied().find(|&x| x > 0.0))
                .ok_or_else(|| bad("LabelingDuration", "required for (P)CASL".into()))?;
            if m.labeling_duration
                .as_ref()
                .is_some_and(|v| v.iter().any(|&x| x != 0.0 && (x - tau).abs() > 1e-9))
            {
                return Err(bad(
                    "LabelingDuration",
                    "varies between volumes: not supported".into(),
                ));
            }
            if m.asl_type == AslType::Pcasl {
                Labeling::Pcasl {
                    labeling_duration_s: tau,
                }
            } else {
                Labeling::Casl {
                    labeling_duration_s: tau,
                }
            }
        }
        AslType::Pasl => {
            if m.bolus_cut_off_flag != Some(true) {
                return Err(bad("BolusCutOffFlag", "PASL without a bolus cut-off cannot be quantified by the single-compartment model".into()));
            }
            let t = m.bolus_cut_off_delay_time.as_ref().ok_or_else(|| {
                bad(
                    "BolusCutOffDelayTime",
                    "required with BolusCutOffFlag".into(),
                )
            })?;
            let tech = m.bolus_cut_off_technique.as_deref().unwrap_or("QUIPSS II");
            let cutoff = if tech.to_ascii_uppercase().contains("Q2TIPS") {
                if t.len() < 2 {
                    notes.push(format!(
                        "Q2TIPS with one BolusCutOffDelayTime ({} s): taken as TI1, the bolus duration; the end of the saturation train (TI1s) is not recorded and not needed by the model",
                        t[0]
                    ));
                }
                BolusCutoff::Q2tips {
                    ti1_s: t[0],
                    ti1_stop_s: (t.len() >= 2).then(|| t[t.len() - 1]),
                }
            } else {
                BolusCutoff::QuipssII { ti1_s: t[0] }
            };
            Labeling::Pasl {
                bolus_cutoff: cutoff,
            }
        }
    };
    let mut p = QuantParams::consensus(labeling, field);
    if let Some(e) = m.labeling_efficiency {
        p.efficiency.base = e;
    }
    p.efficiency = LabelingEfficiency {
        base: p.efficiency.base,
        background_suppression: background_suppression(run, opts, notes)?,
    };
    if m.mr_acquisition_type.as_deref() == Some("2D") {
        let times = m.slice_timing.clone().ok_or_else(|| {
            bad(
                "SliceTiming",
                "required for 2D readouts (each slice has its own PLD)".into(),
            )
        })?;
        let dir = run
            .sidecar
            .get("SliceEncodingDirection")
            .and_then(Value::as_str)
            .unwrap_or("k");
        let axis = match dir.trim_end_matches('-') {
            "i" => 0,
            "j" => 1,
            _ => 2,
        };
        let mut times = times;
        if dir.ends_with('-') {
            times.reverse();
        }
        p.slice_timing = Some(SliceTiming {
            times_s: times,
            axis,
        });
    }
    if let Some(shape) = shape {
        p.validate(shape).map_err(|e| Error::Step {
            path: run.asl.path.clone(),
            step: "ASL quantification",
            message: e.to_string(),
        })?;
    }
    Ok(p)
}

/// The background-suppression model: none, the sidecar's pulse count, the workflow's pulse
/// count where the sidecar has none, or the workflow's total efficiency.
fn background_suppression(
    run: &AslRun,
    opts: &AslOptions,
    notes: &mut Vec<String>,
) -> Result<BackgroundSuppression> {
    let m = &run.metadata;
    let bad = |field: &str, message: String| Error::Metadata {
        path: run.asl.path.clone(),
        field: field.into(),
        message,
    };
    if !m.background_suppression {
        return Ok(BackgroundSuppression::None);
    }
    if let Some(f) = opts.bs_total_efficiency {
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(bad("bs-total-efficiency", format!("{f} must be in (0, 1]")));
        }
        notes.push(format!(
            "background suppression: total efficiency {f} from the workflow (bs-total-efficiency){}",
            m.background_suppression_number_pulses
                .map(|n| format!(", in place of the sidecar's {n} pulses × {}", opts.bs_efficiency_per_pulse))
                .unwrap_or_default()
        ));
        return Ok(BackgroundSuppression::Total { factor: f });
    }
    let n = match (m.background_suppression_number_pulses, opts.bs_pulses) {
        (Some(n), Some(k)) if n != k => {
            return Err(bad(
                "BackgroundSuppressionNumberPulses",
                format!(
                    "{n} in the sidecar, but the workflow's bs-pulses says {k}: remove bs-pulses or correct one of them"
                ),
            ));
        }
        (Some(n), _) => n,
        (None, Some(k)) => {
            notes.push(format!(
                "background suppression: {k} pulses × {} from the workflow (bs-pulses); the sidecar does not record the number",
                opts.bs_efficiency_per_pulse
            ));
            k
        }
        (None, None) => {
            return Err(bad(
                "BackgroundSuppressionNumberPulses",
                "background suppression is on but the number of pulses is not given, so the labelling efficiency cannot be corrected: set the asl-cbf parameter bs-pulses (the number of inversion pulses) or bs-total-efficiency (the total factor on the labelling efficiency) in the workflow".into(),
            ));
        }
    };
    Ok(BackgroundSuppression::PerPulse {
        n_pulses: n,
        efficiency_per_pulse: opts.bs_efficiency_per_pulse,
    })
}

/// Onsets of every volume (s) and the shots per volume: `VolumeTiming` if given, else the
/// running sum of `RepetitionTimePreparation` × shots per volume (`NumberShots`, or the
/// options' `number_shots`).
fn volume_onsets(
    run: &AslRun,
    opts: &AslOptions,
    n: usize,
    notes: &mut Vec<String>,
) -> Result<(Option<Vec<f64>>, u32)> {
    let m = &run.metadata;
    let shots = match (m.number_shots, opts.number_shots) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::Metadata {
                path: run.asl.path.clone(),
                field: "NumberShots".into(),
                message: format!(
                    "{a} in the sidecar, but the workflow's number-shots says {b}: remove number-shots or correct one of them"
                ),
            });
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => 1,
    };
    if let Some(v) = &m.volume_timing {
        return Ok((Some(v.clone()), shots));
    }
    let per_volume: Vec<f64> = match m.repetition_time_preparation.as_deref() {
        Some([t]) => vec![*t; n],
        Some(v) if v.len() == n => v.to_vec(),
        _ => return Ok((None, shots)),
    };
    if shots > 1 && m.number_shots.is_none() {
        notes.push(format!(
            "{shots} shots per volume from the workflow (number-shots): volumes are {} s apart",
            per_volume[0] * shots as f64
        ));
    }
    let mut onset = vec![0.0; n];
    for i in 1..n {
        onset[i] = onset[i - 1] + per_volume[i - 1] * shots as f64;
    }
    Ok((Some(onset), shots))
}
