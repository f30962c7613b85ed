//! One ASL run, from BIDS files to native-space CBF: volumes by `aslcontext.tsv`, rigid
//! realignment, M0 calibration, the kinetic model, SCORE, QC.

use std::path::Path;

use cbflow_bids::{AslRun, AslType, M0Type, VolumeType as BidsVolumeType};
use cbflow_cbf::{
    BackgroundSuppression, BolusCutoff, FdSummary, Labeling, LabelingEfficiency, M0Input, M0Params,
    QcMetrics, QcParams, QuantParams, ScoreParams, SeriesLayout, SliceTiming, TissueMaps,
    VolumeType,
};
use cbflow_image::{Interp, Volume};
use cbflow_register::{AffineTransform, RealignOptions, TransformChain};
use ndarray::{Array3, Array4, ArrayView3, Axis, Zip};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Error, Result};

/// Choices of the ASL step that are not in the BIDS metadata (the workflow's parameters).
#[derive(Debug, Clone, Serialize)]
pub struct AslOptions {
    /// Efficiency kept per background-suppression pulse (ASLPrep's 0.95).
    pub bs_efficiency_per_pulse: f64,
    /// Extra factor on M0 (GE 3D-spiral data: 32 × NEX; 1 for data already scaled).
    pub m0_scale: f64,
    /// Dummy volumes at the start of the series to drop.
    pub dummy_scans: usize,
    /// Rigidly realign the series.
    pub realign: bool,
    /// Smooth M0 with this FWHM (mm) inside the brain mask before calibration; `None` = off.
    pub m0_smoothing_fwhm_mm: Option<f64>,
}

impl Default for AslOptions {
    fn default() -> Self {
        Self {
            bs_efficiency_per_pulse: 0.95,
            m0_scale: 1.0,
            dummy_scans: 0,
            realign: true,
            m0_smoothing_fwhm_mm: None,
        }
    }
}

/// Everything the ASL step computes for one run, on the ASL grid.
#[derive(Debug, Clone)]
pub struct AslResult {
    /// A 3D volume on the ASL grid (its affine is the run's).
    pub reference: Volume,
    /// Mean CBF over all pairs (mL/100 g/min).
    pub cbf: Array3<f32>,
    /// Per-pair CBF `[x, y, z, pairs]`.
    pub cbf_series: Array4<f32>,
    /// Arterial transit time (s) for multi-delay data.
    pub att: Option<Array3<f32>>,
    /// SCORE robust mean, when tissue maps were available.
    pub cbf_score: Option<Array3<f32>>,
    /// Pairs SCORE kept.
    pub score_kept: Option<Vec<usize>>,
    /// Start time (s from the start of the run) of the label volume of each frame of
    /// `cbf_series`: volume onsets are the running sum of `RepetitionTimePreparation` (scalar or
    /// per volume); empty when it is unknown.
    pub pair_times_s: Vec<f64>,
    /// Mean ΔM.
    pub mean_delta_m: Array3<f32>,
    /// Calibration M0 as used (after averaging, TR correction and scale).
    pub m0: Array3<f32>,
    /// Brain mask from M0.
    pub mask: Array3<bool>,
    /// Motion parameters per volume `[tx, ty, tz, rx, ry, rz]` (mm, rad) about `motion_centre`.
    pub motion: Vec<[f64; 6]>,
    /// Framewise displacement per volume (mm).
    pub fd: Vec<f64>,
    /// FD summary.
    pub fd_summary: FdSummary,
    /// QC metrics (with tissue maps).
    pub qc: Option<QcMetrics>,
    /// Every parameter and constant used, for the sidecars.
    pub parameters: Value,
    /// The ASL series this came from (for error messages).
    pub path: std::path::PathBuf,
}

/// Tissue probability maps on the ASL grid (from the anatomy).
#[derive(Debug, Clone)]
pub struct NativeTissue {
    /// Grey matter.
    pub gm: Array3<f32>,
    /// White matter.
    pub wm: Array3<f32>,
    /// CSF.
    pub csf: Array3<f32>,
}

fn cbf_err(run: &AslRun) -> impl Fn(cbflow_cbf::CbfError) -> Error + '_ {
    move |e| Error::Step {
        path: run.asl.path.clone(),
        step: "ASL quantification",
        message: e.to_string(),
    }
}

/// Kinetic-model parameters from the BIDS metadata (and the options).
pub fn quant_params(run: &AslRun, opts: &AslOptions, shape: [usize; 3]) -> Result<QuantParams> {
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
                .and_then(|v| v.first().copied())
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
            let cutoff = if tech.to_ascii_uppercase().contains("Q2TIPS") && t.len() >= 2 {
                BolusCutoff::Q2tips {
                    ti1_s: t[0],
                    ti1_stop_s: t[t.len() - 1],
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
        background_suppression: match (
            m.background_suppression,
            m.background_suppression_number_pulses,
        ) {
            (false, _) => BackgroundSuppression::None,
            (true, Some(n)) => BackgroundSuppression::PerPulse {
                n_pulses: n,
                efficiency_per_pulse: opts.bs_efficiency_per_pulse,
            },
            (true, None) => {
                return Err(bad("BackgroundSuppressionNumberPulses", "background suppression is on but the number of pulses is not given: the labelling efficiency cannot be corrected".into()));
            }
        },
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
    p.validate(shape).map_err(cbf_err(run))?;
    Ok(p)
}

fn volume_types(run: &AslRun) -> Vec<VolumeType> {
    run.volumes
        .volume_types
        .iter()
        .map(|t| match t {
            BidsVolumeType::Control => VolumeType::Control,
            BidsVolumeType::Label => VolumeType::Label,
            BidsVolumeType::M0Scan => VolumeType::M0Scan,
            BidsVolumeType::DeltaM => VolumeType::DeltaM,
            BidsVolumeType::Cbf => VolumeType::Cbf,
            BidsVolumeType::NoRf => VolumeType::NoRf,
        })
        .collect()
}

/// Checks every voxel of an input image is finite; names the file.
fn check_finite(v: &Volume, path: &Path) -> Result<()> {
    let n = v.data.iter().filter(|x| !x.is_finite()).count();
    if n > 0 {
        return Err(Error::Metadata {
            path: path.to_path_buf(),
            field: "data".into(),
            message: format!("{n} voxels are NaN or infinite"),
        });
    }
    Ok(())
}

fn mean_of(series: &Array4<f32>, idx: &[usize]) -> Array3<f32> {
    let (nx, ny, nz, _) = series.dim();
    let mut m = Array3::<f32>::zeros((nx, ny, nz));
    for &i in idx {
        m += &series.index_axis(Axis(3), i);
    }
    m / idx.len().max(1) as f32
}

/// Realigned series, motion parameters per volume and their rotation centre.
type Realigned = (Array4<f32>, Vec<[f64; 6]>, [f64; 3]);

/// Realigns the series: controls (and M0 volumes) to the mean control, labels to the mean label,
/// then the mean label to the mean control, so the perfusion difference between label and control
/// does not pull the fit. Returns the realigned series and per-volume parameters.
fn realign(
    series: &Volume,
    layout: &SeriesLayout,
    types: &[VolumeType],
) -> cbflow_register::Result<Realigned> {
    let grid = series.grid();
    let n = series.n_volumes();
    let data = as_4d(series.data.clone());
    let controls = layout.controls();
    let labels = layout.labels();
    let groups: Vec<Vec<usize>> = if controls.is_empty() || labels.is_empty() {
        vec![(0..n).filter(|&i| types[i] != VolumeType::NoRf).collect()]
    } else {
        let mut c = controls.clone();
        c.extend((0..n).filter(|&i| types[i] == VolumeType::M0Scan));
        vec![c, labels.clone()]
    };
    let opts = RealignOptions::default();
    let mut transforms: Vec<Option<AffineTransform>> = vec![None; n];
    let mut params = vec![[0f64; 6]; n];
    let mut centre = [0.0; 3];
    let mut group_refs = Vec::new();
    for g in &groups {
        let reference = mean_of(&data, g);
        let frames: Vec<ArrayView3<f32>> = g.iter().map(|&i| data.index_axis(Axis(3), i)).collect();
        let r = cbflow_register::realign_series(&frames, reference.view(), &grid, &opts)?;
        centre = r.centre;
        for (k, &i) in g.iter().enumerate() {
            transforms[i] = Some(r.transforms[k].clone());
        }
        group_refs.push(reference);
    }
    if groups.len() == 2 {
        // label reference → control reference, composed into every label's transform
        let r = cbflow_register::realign_series(
            &[group_refs[1].view()],
            group_refs[0].view(),
            &grid,
            &opts,
        )?;
        let to_label_ref = r.transforms[0].clone();
        for &i in &groups[1] {
            let t = transforms[i].clone().expect("label realigned");
            transforms[i] = Some(to_label_ref.then(&t));
        }
    }
    let mut out = data.clone();
    for i in 0..n {
        let Some(t) = transforms[i].clone() else {
            continue;
        };
        params[i] = t.rigid_params(centre);
        let frame = series
            .with_data3(data.index_axis(Axis(3), i).to_owned())
            .map_err(cbflow_register::Error::from)?;
        let moved = cbflow_register::apply(
            &frame,
            &grid,
            &TransformChain::from_affine(t),
            Interp::Linear,
        )?;
        out.index_axis_mut(Axis(3), i).assign(&moved.frame(0));
    }
    Ok((out, params, centre))
}

/// Quantifies one run in native space ([`score_and_qc`] adds SCORE and QC once tissue maps exist).
pub fn process_run(run: &AslRun, opts: &AslOptions) -> Result<AslResult> {
    let asl_path = &run.asl.path;
    let series = cbflow_image::read(asl_path)?;
    check_finite(&series, asl_path)?;
    let grid = series.grid();
    let shape = grid.dims;
    let n = series.n_volumes();
    let types = volume_types(run);
    if types.len() != n {
        return Err(Error::Metadata {
            path: run.context.clone(),
            field: "volume_type".into(),
            message: format!("{} rows, but the image has {n} volumes", types.len()),
        });
    }
    let layout = cbflow_cbf::split_series(&types, opts.dummy_scans).map_err(cbf_err(run))?;
    let p = quant_params(run, opts, shape)?;
    let (data, motion, centre) = if opts.realign && n > 1 {
        realign(&series, &layout, &types).map_err(|e| Error::Step {
            path: asl_path.clone(),
            step: "realignment",
            message: e.to_string(),
        })?
    } else {
        (as_4d(series.data.clone()), vec![[0.0; 6]; n], [0.0; 3])
    };
    let fd = cbflow_cbf::framewise_displacement(&motion, cbflow_cbf::motion::DEFAULT_FD_RADIUS_MM)
        .map_err(cbf_err(run))?;
    let fd_summary = cbflow_cbf::summarize_fd(&fd, 0.5, cbflow_cbf::motion::DEFAULT_FD_RADIUS_MM);

    // ΔM: pairs, then deltam volumes
    let mut dm = cbflow_cbf::pairwise_delta_m(data.view(), &layout.pairs).map_err(cbf_err(run))?;
    if !layout.delta_m.is_empty() {
        let extra = cbflow_cbf::series::select_volumes(data.view(), &layout.delta_m)
            .map_err(cbf_err(run))?;
        dm = ndarray::concatenate(Axis(3), &[dm.view(), extra.view()]).expect("same spatial shape");
    }
    let per_volume_pld: Vec<f64> = if run.metadata.post_labeling_delay.len() == 1 {
        vec![run.metadata.post_labeling_delay[0]; n]
    } else {
        run.metadata.post_labeling_delay.clone()
    };
    let mut delays = layout
        .pair_values(&per_volume_pld, "PostLabelingDelay")
        .map_err(cbf_err(run))?;
    delays.extend(
        SeriesLayout::select_values(&per_volume_pld, &layout.delta_m, "PostLabelingDelay")
            .map_err(cbf_err(run))?,
    );

    // M0
    let m0_params = M0Params {
        t1_tissue_s: cbflow_cbf::params::t1_tissue_default(
            run.metadata.magnetic_field_strength.unwrap_or(3.0),
        )
        .unwrap_or(1.607),
        scale: opts.m0_scale,
    };
    let tr_of = |meta: &serde_json::Map<String, Value>| -> Option<f64> {
        match meta.get("RepetitionTimePreparation") {
            Some(Value::Number(x)) => x.as_f64(),
            Some(Value::Array(a)) => a.first().and_then(Value::as_f64),
            _ => None,
        }
    };
    let m0_volumes: Array4<f32>;
    let controls_view;
    let m0_input = match &run.metadata.m0_type {
        M0Type::Separate => {
            let f = run.m0scan.as_ref().ok_or_else(|| Error::Metadata {
                path: asl_path.clone(),
                field: "M0Type".into(),
                message: "Separate, but no m0scan was found for this run".into(),
            })?;
            let m0 = cbflow_image::read(&f.path)?;
            check_finite(&m0, &f.path)?;
            let on_grid = if m0.grid().dims == shape && (m0.affine - grid.affine).abs().max() < 1e-3
            {
                m0
            } else {
                cbflow_image::resample_to_grid(&m0, &grid, Interp::Linear)?
            };
            m0_volumes = as_4d(on_grid.data);
            M0Input::Volumes {
                volumes: m0_volumes.view(),
                repetition_time_s: run.m0scan_metadata.as_ref().and_then(tr_of),
            }
        }
        M0Type::Included => {
            m0_volumes = cbflow_cbf::series::select_volumes(data.view(), &layout.m0)
                .map_err(cbf_err(run))?;
            M0Input::Volumes {
                volumes: m0_volumes.view(),
                repetition_time_s: tr_of(&run.sidecar),
            }
        }
        M0Type::Estimate(v) => M0Input::Estimate { value: *v },
        M0Type::Absent => {
            controls_view = cbflow_cbf::series::select_volumes(data.view(), &layout.controls())
                .map_err(cbf_err(run))?;
            M0Input::MeanControl {
                controls: controls_view.view(),
                repetition_time_s: tr_of(&run.sidecar),
                background_suppressed: run.metadata.background_suppression,
            }
        }
    };
    let (mut m0, m0_report) =
        cbflow_cbf::calibrate_m0(&m0_input, shape, &m0_params).map_err(cbf_err(run))?;
    let (mask, mask_report) = match &run.metadata.m0_type {
        M0Type::Estimate(_) => {
            let mean_abs = Zip::from(dm.lanes(Axis(3)))
                .map_collect(|l| l.iter().map(|x| x.abs()).sum::<f32>());
            cbflow_cbf::brain_mask_from_m0(mean_abs.view()).map_err(cbf_err(run))?
        }
        _ => cbflow_cbf::brain_mask_from_m0(m0.view()).map_err(cbf_err(run))?,
    };
    if let Some(fwhm) = opts.m0_smoothing_fwhm_mm {
        let v = cbflow_image::smooth_fwhm_masked(&grid_volume(&series, m0.clone())?, &mask, fwhm)?;
        m0 = v.frame(0).to_owned();
    }
    let cbf_series = if run.metadata.is_multi_pld() {
        None
    } else {
        Some(
            cbflow_cbf::quantify_series(dm.view(), m0.view(), mask.view(), &p, &delays)
                .map_err(cbf_err(run))?,
        )
    };
    let (cbf, att, cbf_series) = match cbf_series {
        Some(s) => (s.mean_axis(Axis(3)).expect("at least one pair"), None, s),
        None => {
            let fit = cbflow_cbf::fit_multi_delay(
                dm.view(),
                &delays,
                m0.view(),
                mask.view(),
                &p,
                &cbflow_cbf::MultiDelayOptions::default(),
            )
            .map_err(cbf_err(run))?;
            let s = fit.cbf.clone().insert_axis(Axis(3));
            (fit.cbf, Some(fit.att), s)
        }
    };
    let mean_delta_m = dm.mean_axis(Axis(3)).expect("at least one ΔM");
    let pair_times_s = if run.metadata.is_multi_pld() {
        Vec::new()
    } else {
        pair_onsets(&run.sidecar, n, &layout)
    };
    let parameters = json!({
        "Model": match p.labeling { Labeling::Pasl { .. } => "PASL single-compartment, QUIPSS II / Q2TIPS (Alsop et al. 2015)", _ => if run.metadata.is_multi_pld() { "multi-delay general kinetic model, CBF and ATT fitted per voxel (Buxton et al. 1998; Woods et al. 2024)" } else { "single-PLD (P)CASL consensus model (Alsop et al. 2015)" } },
        "QuantParams": p,
        "EffectiveLabelingEfficiency": p.efficiency.effective(),
        "M0": m0_params,
        "M0Report": m0_report,
        "BrainMask": mask_report,
        "PostLabelingDelays": delays,
        "Realignment": if opts.realign { "rigid, 6 parameters; controls to mean control, labels to mean label, mean label to mean control (least squares, Gauss-Newton)" } else { "none" },
        "MotionCentre": centre,
        "Options": opts,
    });
    Ok(AslResult {
        reference: grid_volume(&series, m0.clone())?,
        cbf,
        cbf_series,
        pair_times_s,
        att,
        cbf_score: None,
        score_kept: None,
        mean_delta_m,
        m0,
        mask,
        motion,
        fd,
        fd_summary,
        qc: None,
        parameters,
        path: asl_path.clone(),
    })
}

/// Onset (s) of the label volume of every pair, then of every ΔM volume, in `cbf_series`
/// order; empty when `RepetitionTimePreparation` is missing or does not fit the series.
fn pair_onsets(
    sidecar: &serde_json::Map<String, Value>,
    n: usize,
    layout: &SeriesLayout,
) -> Vec<f64> {
    let per_volume: Vec<f64> = match sidecar.get("RepetitionTimePreparation") {
        Some(Value::Number(x)) => x.as_f64().map(|t| vec![t; n]).unwrap_or_default(),
        Some(Value::Array(a)) if a.len() == n => a.iter().filter_map(Value::as_f64).collect(),
        _ => Vec::new(),
    };
    if per_volume.len() != n {
        return Vec::new();
    }
    let mut onset = vec![0.0; n];
    for i in 1..n {
        onset[i] = onset[i - 1] + per_volume[i - 1];
    }
    layout
        .pairs
        .iter()
        .map(|p| onset[p.label])
        .chain(layout.delta_m.iter().map(|&i| onset[i]))
        .collect()
}

/// SCORE and the QC metrics, given tissue probability maps on the ASL grid.
pub fn score_and_qc(r: &mut AslResult, t: &NativeTissue) -> Result<()> {
    let err = |e: cbflow_cbf::CbfError| Error::Step {
        path: r.path.clone(),
        step: "SCORE and QC",
        message: e.to_string(),
    };
    let maps = TissueMaps {
        gm: t.gm.view(),
        wm: t.wm.view(),
        csf: Some(t.csf.view()),
    };
    let sp = ScoreParams::default();
    let pairs_total = r.cbf_series.dim().3;
    if pairs_total >= 3 && r.att.is_none() {
        let s = cbflow_cbf::score(r.cbf_series.view(), &maps, r.mask.view(), &sp).map_err(err)?;
        r.cbf_score = Some(s.mean);
        r.score_kept = Some(s.kept);
        r.parameters["ScoreParams"] = serde_json::to_value(sp).unwrap_or(Value::Null);
    }
    let best = r.cbf_score.as_ref().unwrap_or(&r.cbf);
    let pairs_kept = r.score_kept.as_ref().map_or(pairs_total, Vec::len);
    r.qc = Some(
        cbflow_cbf::qc_metrics(
            best.view(),
            &maps,
            r.mask.view(),
            Some(&r.fd_summary),
            pairs_total,
            pairs_kept,
            &QcParams::default(),
        )
        .map_err(err)?,
    );
    Ok(())
}

/// A 3D or 4D array as 4D (a 3D image is one volume), whatever its memory order.
fn as_4d(data: ndarray::ArrayD<f32>) -> Array4<f32> {
    if data.ndim() == 3 {
        data.insert_axis(Axis(3))
            .into_dimensionality()
            .expect("3D plus one axis")
    } else {
        data.into_dimensionality().expect("volumes are 3D or 4D")
    }
}

/// A 3D volume on the grid of `like` holding `data`.
/// A 4D volume (frames on the 4th axis) on the grid of `like`.
pub(crate) fn grid_volume4(like: &Volume, data: Array4<f32>) -> Result<Volume> {
    Ok(Volume::new(data.into_dyn(), like.affine)?)
}

pub(crate) fn grid_volume(like: &Volume, data: Array3<f32>) -> Result<Volume> {
    let mut v = Volume::new(data.into_dyn(), like.affine)?;
    v.info.pixdim[3] = 0.0;
    Ok(v)
}
