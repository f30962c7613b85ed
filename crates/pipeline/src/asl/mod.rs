//! One ASL run, from BIDS files to native-space CBF: the plan of its volumes and model
//! ([`plan_run`]), rigid realignment by volume type, M0 calibration with unusable voxels left
//! out, the kinetic model, SCORE, QC.

mod plan;
mod realign;

use std::path::Path;

use cbflow_bids::{AslRun, M0Type};
use cbflow_cbf::{
    FdSummary, Labeling, M0Input, M0Params, QcCounts, QcMetrics, QcParams, ScoreParams,
    SeriesLayout, TissueMaps,
};
use cbflow_image::{Interp, Volume};
use ndarray::{Array3, Array4, Axis, Zip};
use serde_json::{Value, json};

pub use plan::{AslOptions, RunPlan, plan_run, quant_params};

use crate::{Error, Result};

/// Largest share of the brain mask that may be unusable (M0 zero, negative or not finite, or
/// ΔM not finite) before a run fails: 10 %. Fewer such voxels are left out of quantification,
/// counted in the QC table and the sidecars, and logged; more point to a broken M0 (wrong file,
/// another field of view, a scaling error) rather than to edges, susceptibility holes or vessels.
pub const MAX_UNUSABLE_FRACTION: f64 = 0.10;

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
    /// `cbf_series` ([`RunPlan::pair_onsets_s`]: `VolumeTiming`, else the running sum of
    /// `RepetitionTimePreparation` × shots per volume); empty when it is unknown.
    pub pair_times_s: Vec<f64>,
    /// Time between successive frames of `cbf_series` (s), 0 when unknown.
    pub pair_spacing_s: f64,
    /// Mean ΔM.
    pub mean_delta_m: Array3<f32>,
    /// Calibration M0 as used (after averaging, TR correction and scale).
    pub m0: Array3<f32>,
    /// Brain mask from M0, less the voxels left out of quantification.
    pub mask: Array3<bool>,
    /// Brain-mask voxels left out of quantification (M0 or ΔM unusable there).
    pub voxels_left_out: usize,
    /// Motion parameters per volume `[tx, ty, tz, rx, ry, rz]` (mm, rad) about `motion_centre`;
    /// NaN for volumes that were not realigned (dummies, volumes left out).
    pub motion: Vec<[f64; 6]>,
    /// Framewise displacement per volume (mm), over the realigned volumes in series order; NaN
    /// for the others.
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

/// Checks every voxel of an input image is finite; names the file.
fn check_finite(v: &Volume, path: &Path) -> Result<()> {
    // a contiguous slice when there is one: iterating a dynamic-dimension array element by
    // element costs more than the check itself
    let n = match v.data.as_slice_memory_order() {
        Some(s) => s.iter().filter(|x| !x.is_finite()).count(),
        None => v.data.iter().filter(|x| !x.is_finite()).count(),
    };
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

/// Quantifies one run in native space ([`score_and_qc`] adds SCORE and QC, with tissue maps
/// when there are some).
pub fn process_run(run: &AslRun, opts: &AslOptions) -> Result<AslResult> {
    let asl_path = &run.asl.path;
    let plan = plan_run(run, opts)?;
    for note in &plan.notes {
        tracing::warn!("{}: {note}", run.asl.rel_path.display());
    }
    let series = cbflow_image::read(asl_path)?;
    check_finite(&series, asl_path)?;
    let grid = series.grid();
    let shape = grid.dims;
    let n = series.n_volumes();
    let types = &plan.types;
    if types.len() != n {
        return Err(Error::Metadata {
            path: run.context.clone(),
            field: "volume_type".into(),
            message: format!("{} rows, but the image has {n} volumes", types.len()),
        });
    }
    let layout = &plan.layout;
    let p = plan.quant.clone();
    p.validate(shape).map_err(cbf_err(run))?;
    let realigned = if opts.realign && n > 1 {
        Some(
            realign::realign(&series, layout, types).map_err(|e| Error::Step {
                path: asl_path.clone(),
                step: "realignment",
                message: e.to_string(),
            })?,
        )
    } else {
        None
    };
    let (data, motion, centre, m0_method) = match realigned {
        Some(r) => (r.data, r.motion, r.centre, r.m0_method),
        None => (
            as_4d(series.data.clone()),
            vec![[0.0; 6]; n],
            [0.0; 3],
            None,
        ),
    };
    let fd = framewise_displacement(&motion).map_err(cbf_err(run))?;
    let finite_fd: Vec<f64> = fd.iter().copied().filter(|x| x.is_finite()).collect();
    let fd_summary =
        cbflow_cbf::summarize_fd(&finite_fd, 0.5, cbflow_cbf::motion::DEFAULT_FD_RADIUS_MM);

    // ΔM: pairs, then deltam volumes
    let mut dm = if layout.pairs.is_empty() {
        Array4::zeros((shape[0], shape[1], shape[2], 0))
    } else {
        cbflow_cbf::pairwise_delta_m(data.view(), &layout.pairs).map_err(cbf_err(run))?
    };
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
                let inside = fov_overlap(&grid, &m0.grid());
                if inside < MIN_M0_FOV_OVERLAP {
                    return Err(Error::Metadata {
                        path: f.path.clone(),
                        field: "affine".into(),
                        message: format!(
                            "the fields of view of this M0 and of the ASL series {} do not overlap: {:.0} % of the ASL voxels lie inside the M0 image (at least {:.0} % needed); check the two images' affines (sform/qform) and that the M0 belongs to this series",
                            asl_path.display(),
                            100.0 * inside,
                            100.0 * MIN_M0_FOV_OVERLAP
                        ),
                    });
                }
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
    let (brain, mask_report) = match &run.metadata.m0_type {
        M0Type::Estimate(_) => {
            let mean_abs = Zip::from(dm.lanes(Axis(3)))
                .map_collect(|l| l.iter().map(|x| x.abs()).sum::<f32>());
            cbflow_cbf::brain_mask_from_m0(mean_abs.view()).map_err(cbf_err(run))?
        }
        _ => cbflow_cbf::brain_mask_from_m0(m0.view()).map_err(cbf_err(run))?,
    };
    if let Some(fwhm) = opts.m0_smoothing_fwhm_mm {
        let v = cbflow_image::smooth_fwhm_masked(&grid_volume(&series, m0.clone())?, &brain, fwhm)?;
        m0 = v.frame(0).to_owned();
    }
    // voxels where M0 or ΔM cannot be used are left out, not fatal, unless there are many
    let (mask, left_out) = cbflow_cbf::restrict_mask(brain.view(), m0.view(), Some(dm.view()))
        .map_err(cbf_err(run))?;
    let n_left_out = left_out.n_input - left_out.n_output;
    let share = n_left_out as f64 / left_out.n_input.max(1) as f64;
    if share > MAX_UNUSABLE_FRACTION {
        return Err(Error::Step {
            path: asl_path.clone(),
            step: "ASL quantification",
            message: format!(
                "M0 is not usable in {} and ΔM in {} of the {} brain-mask voxels ({:.1} %, more than the {:.0} % cbflow accepts): check the M0 image (its scaling, its field of view, that it belongs to this series)",
                left_out.n_invalid_m0,
                left_out.n_nonfinite_delta_m,
                left_out.n_input,
                100.0 * share,
                100.0 * MAX_UNUSABLE_FRACTION
            ),
        });
    }
    if n_left_out > 0 {
        tracing::warn!(
            "{}: {n_left_out} of {} brain-mask voxels left out of quantification ({} with M0 zero, negative or not finite, {} with ΔM not finite)",
            run.asl.rel_path.display(),
            left_out.n_input,
            left_out.n_invalid_m0,
            left_out.n_nonfinite_delta_m
        );
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
        plan.pair_onsets_s()
    };
    let realignment = match (opts.realign, m0_method) {
        (false, _) => "none".to_string(),
        (true, m0) => format!(
            "rigid, 6 parameters; controls to the mean control, labels to the mean label (least squares, Gauss-Newton; the two means are not fitted to each other), cubic B-spline resampling{}",
            m0.map(|m| format!("; M0 volumes to their mean, then {m}"))
                .unwrap_or_default()
        ),
    };
    let parameters = json!({
        "Model": match p.labeling { Labeling::Pasl { .. } => "PASL single-compartment, QUIPSS II / Q2TIPS (Alsop et al. 2015)", _ => if run.metadata.is_multi_pld() { "multi-delay general kinetic model, CBF and ATT fitted per voxel (Buxton et al. 1998; Woods et al. 2024)" } else { "single-PLD (P)CASL consensus model (Alsop et al. 2015)" } },
        "QuantParams": p,
        "EffectiveLabelingEfficiency": p.efficiency.effective(),
        "M0": m0_params,
        "M0Report": m0_report,
        "BrainMask": mask_report,
        "VoxelsLeftOut": {
            "Count": n_left_out,
            "InvalidM0": left_out.n_invalid_m0,
            "NonFiniteDeltaM": left_out.n_nonfinite_delta_m,
            "BrainMaskVoxels": left_out.n_input,
            "Description": "brain-mask voxels where M0 is zero, negative or not finite, or ΔM is not finite: CBF is 0 there and they are outside the written brain mask",
            "MaximumFraction": MAX_UNUSABLE_FRACTION,
        },
        "Volumes": {
            "Pairs": layout.pairs,
            "M0": layout.m0,
            "DeltaM": layout.delta_m,
            "Dummies": layout.dummies,
            "LeftOut": layout.excluded,
            "UnpairedLeftOut": layout.unpaired_dropped,
        },
        "ShotsPerVolume": plan.shots_per_volume,
        "Notes": plan.notes,
        "PostLabelingDelays": delays,
        "Realignment": realignment,
        "MotionCentre": centre,
        "Options": opts,
    });
    Ok(AslResult {
        reference: grid_volume(&series, m0.clone())?,
        cbf,
        cbf_series,
        pair_times_s,
        pair_spacing_s: plan.pair_spacing_s(),
        att,
        cbf_score: None,
        score_kept: None,
        mean_delta_m,
        m0,
        mask,
        voxels_left_out: n_left_out,
        motion,
        fd,
        fd_summary,
        qc: None,
        parameters,
        path: asl_path.clone(),
    })
}

/// Smallest share of the ASL grid's voxels that must lie inside a separate M0's field of view.
const MIN_M0_FOV_OVERLAP: f64 = 0.5;

/// Share of the voxel centres of `asl` that lie inside the field of view of `other`.
fn fov_overlap(asl: &cbflow_image::Grid, other: &cbflow_image::Grid) -> f64 {
    let Some(inv) = other.affine.try_inverse() else {
        return 0.0;
    };
    let d = asl.dims;
    let mut inside = 0usize;
    for k in 0..d[2] {
        for j in 0..d[1] {
            for i in 0..d[0] {
                let w = asl.affine * nalgebra::Vector4::new(i as f64, j as f64, k as f64, 1.0);
                let v = inv * w;
                if (0..3).all(|a| v[a] >= -0.5 && v[a] <= other.dims[a] as f64 - 0.5) {
                    inside += 1;
                }
            }
        }
    }
    inside as f64 / (d[0] * d[1] * d[2]).max(1) as f64
}

/// Framewise displacement over the volumes that were realigned (finite motion), in series
/// order; NaN for the others.
fn framewise_displacement(motion: &[[f64; 6]]) -> cbflow_cbf::Result<Vec<f64>> {
    let idx: Vec<usize> = (0..motion.len())
        .filter(|&i| motion[i].iter().all(|x| x.is_finite()))
        .collect();
    let sub: Vec<[f64; 6]> = idx.iter().map(|&i| motion[i]).collect();
    let fd = cbflow_cbf::framewise_displacement(&sub, cbflow_cbf::motion::DEFAULT_FD_RADIUS_MM)?;
    let mut out = vec![f64::NAN; motion.len()];
    for (k, &i) in idx.iter().enumerate() {
        out[i] = fd[k];
    }
    Ok(out)
}

/// SCORE and the QC metrics. With tissue probability maps on the ASL grid (from a T1w):
/// SCORE, and QC with the grey/white-matter metrics and the QEI; without: the brain-mask QC
/// metrics only (mean CBF, negative fraction, spatial CoV, motion, pairs, voxels left out).
pub fn score_and_qc(r: &mut AslResult, t: Option<&NativeTissue>) -> Result<()> {
    let err = |e: cbflow_cbf::CbfError| Error::Step {
        path: r.path.clone(),
        step: "SCORE and QC",
        message: e.to_string(),
    };
    let maps = t.map(|t| TissueMaps {
        gm: t.gm.view(),
        wm: t.wm.view(),
        csf: Some(t.csf.view()),
    });
    let sp = ScoreParams::default();
    let pairs_total = r.cbf_series.dim().3;
    if let Some(maps) = &maps
        && pairs_total >= 3
        && r.att.is_none()
    {
        let s = cbflow_cbf::score(r.cbf_series.view(), maps, r.mask.view(), &sp).map_err(err)?;
        r.cbf_score = Some(s.mean);
        r.score_kept = Some(s.kept);
        r.parameters["ScoreParams"] = serde_json::to_value(sp).unwrap_or(Value::Null);
    }
    let best = r.cbf_score.as_ref().unwrap_or(&r.cbf);
    let pairs_kept = r.score_kept.as_ref().map_or(pairs_total, Vec::len);
    r.qc = Some(
        cbflow_cbf::qc_metrics(
            best.view(),
            maps.as_ref(),
            r.mask.view(),
            Some(&r.fd_summary),
            QcCounts {
                pairs_total,
                pairs_kept,
                voxels_left_out: r.voxels_left_out,
            },
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
