//! One test per metadata pattern of the BIDS ASL examples (bids-standard/bids-examples,
//! copied to shared/data/bids-examples; their NIfTIs are empty placeholders). The
//! sidecar values and `aslcontext.tsv` are read from the files; images are synthesised
//! from the phantom with the forward model, carried through the same steps the pipeline
//! takes (split series → subtract pairs / take ΔM → M0 calibration → quantify or fit),
//! and the known CBF (and ATT) must come back within 0.5 % in every brain voxel.

use cbflow_cbf::m0::M0Input;
use cbflow_cbf::params::t1_tissue_default;
use cbflow_cbf::series::select_volumes;
use cbflow_cbf::{
    BackgroundSuppression, BolusCutoff, Labeling, LabelingEfficiency, M0Params, MultiDelayOptions,
    QuantParams, SliceTiming, VolumeType, average_by_delay, calibrate_m0, fit_multi_delay,
    pairwise_delta_m, quantify_series, simulate_delta_m, split_series,
};
use ndarray::{Array3, Array4, Axis};
use serde_json::Value;

use crate::common::{att_identifiable, max_rel_err, phantom, shared_data};

fn read_json(rel: &str) -> Value {
    let p = shared_data().join("bids-examples").join(rel);
    let s =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON {}: {e}", p.display()))
}

fn read_context(rel: &str) -> Vec<VolumeType> {
    let p = shared_data().join("bids-examples").join(rel);
    let s =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    s.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| VolumeType::parse(l.trim()).unwrap())
        .collect()
}

/// A scalar or per-volume array field, broadcast to `n` values.
fn per_volume(meta: &Value, key: &str, n: usize) -> Vec<f64> {
    match &meta[key] {
        Value::Number(x) => vec![x.as_f64().unwrap(); n],
        Value::Array(a) => {
            assert_eq!(a.len(), n, "{key} has {} values for {n} volumes", a.len());
            a.iter().map(|v| v.as_f64().unwrap()).collect()
        }
        other => panic!("{key}: unexpected {other:?}"),
    }
}

/// BIDS metadata → typed parameters (the conversion the pipeline performs).
fn params_from_sidecar(meta: &Value, taus: &[f64], shape: [usize; 3]) -> QuantParams {
    let field = meta["MagneticFieldStrength"].as_f64().unwrap();
    let labeling = match meta["ArterialSpinLabelingType"].as_str().unwrap() {
        "PCASL" | "CASL" => {
            let tau = taus[0];
            assert!(
                taus.iter().all(|t| (t - tau).abs() < 1e-9),
                "varying LabelingDuration"
            );
            Labeling::Pcasl {
                labeling_duration_s: tau,
            }
        }
        "PASL" => {
            let b = &meta["BolusCutOffDelayTime"];
            match meta["BolusCutOffTechnique"].as_str().unwrap() {
                "Q2TIPS" => Labeling::Pasl {
                    bolus_cutoff: BolusCutoff::Q2tips {
                        ti1_s: b[0].as_f64().unwrap(),
                        ti1_stop_s: b[1].as_f64(),
                    },
                },
                "QUIPSSII" => Labeling::Pasl {
                    bolus_cutoff: BolusCutoff::QuipssII {
                        ti1_s: b.as_f64().unwrap(),
                    },
                },
                t => panic!("unsupported {t}"),
            }
        }
        t => panic!("unsupported {t}"),
    };
    let mut p = QuantParams::consensus(labeling, field);
    let bs = if meta["BackgroundSuppression"].as_bool().unwrap() {
        BackgroundSuppression::PerPulse {
            n_pulses: meta["BackgroundSuppressionNumberPulses"].as_u64().unwrap() as u32,
            efficiency_per_pulse: 0.95,
        }
    } else {
        BackgroundSuppression::None
    };
    p.efficiency = LabelingEfficiency {
        base: meta["LabelingEfficiency"]
            .as_f64()
            .unwrap_or(labeling.default_alpha()),
        background_suppression: bs,
    };
    if meta["MRAcquisitionType"].as_str() == Some("2D") {
        let st: Vec<f64> = meta["SliceTiming"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(st.len(), shape[2]);
        p.slice_timing = Some(SliceTiming {
            times_s: st,
            axis: 2,
        });
    }
    p
}

struct Outcome {
    cbf_err: f64,
    att_err: Option<f64>,
    params: QuantParams,
}

/// Synthesise a run with the metadata of `asl_json`/`context`, process it, compare.
/// `m0_json`: separate m0scan sidecar, if any. `ge_nex`: GE scaling (ΔM summed over NEX,
/// PD stored /32) when set.
fn run(
    asl_json: &str,
    context: &str,
    m0_json: Option<&str>,
    shape: [usize; 3],
    ge_nex: Option<f64>,
) -> Outcome {
    let meta = read_json(asl_json);
    let types = read_context(context);
    let n = types.len();
    let layout = split_series(&types, 0).unwrap();
    let ph = phantom(shape);
    let plds = per_volume(&meta, "PostLabelingDelay", n);
    let is_pasl = meta["ArterialSpinLabelingType"] == "PASL";
    let taus = if is_pasl {
        vec![0.0]
    } else {
        let all = per_volume(&meta, "LabelingDuration", n);
        let idx: Vec<usize> = layout
            .controls()
            .into_iter()
            .chain(layout.delta_m.iter().copied())
            .collect();
        idx.iter().map(|&i| all[i]).collect()
    };
    let p = params_from_sidecar(&meta, &taus, shape);
    let t1t = t1_tissue_default(meta["MagneticFieldStrength"].as_f64().unwrap()).unwrap();
    let nex = ge_nex.unwrap_or(1.0);
    let scale = if ge_nex.is_some() { 32.0 * nex } else { 1.0 };
    let m0_params = M0Params {
        t1_tissue_s: t1t,
        scale,
    };
    let sat = |tr: f64| 1.0 - (-tr / t1t).exp();

    // ---- synthesise the stored series ----
    let mut series = Array4::<f32>::zeros((shape[0], shape[1], shape[2], n));
    let static_img = ph.m0.mapv(|v| 0.1 * v);
    if !layout.pairs.is_empty() {
        let pair_plds = layout.pair_values(&plds, "PostLabelingDelay").unwrap();
        let dm =
            simulate_delta_m(ph.cbf.view(), ph.att.view(), ph.m0.view(), &pair_plds, &p).unwrap();
        for (k, pr) in layout.pairs.iter().enumerate() {
            series
                .index_axis_mut(Axis(3), pr.control)
                .assign(&static_img);
            let lab = &static_img - &dm.index_axis(Axis(3), k);
            series.index_axis_mut(Axis(3), pr.label).assign(&lab);
        }
    }
    for &i in &layout.delta_m {
        let dm =
            simulate_delta_m(ph.cbf.view(), ph.att.view(), ph.m0.view(), &[plds[i]], &p).unwrap();
        series
            .index_axis_mut(Axis(3), i)
            .assign(&dm.index_axis(Axis(3), 0).mapv(|v| v * nex as f32));
    }
    let tr_prep = per_volume(&meta, "RepetitionTimePreparation", n);
    for &i in &layout.m0 {
        // GE stores the PD image divided by 32 (the NEX part of the scale is on ΔM)
        let f = (sat(tr_prep[i]) * nex / scale) as f32;
        series
            .index_axis_mut(Axis(3), i)
            .assign(&ph.m0.mapv(|v| v * f));
    }

    // ---- process like the pipeline ----
    let (m0, _rep) = match m0_json {
        Some(rel) => {
            let m0meta = read_json(rel);
            let tr = m0meta["RepetitionTimePreparation"].as_f64().unwrap();
            let vol: Array3<f32> = ph.m0.mapv(|v| v * (sat(tr) * nex / scale) as f32);
            let vols = vol.insert_axis(Axis(3));
            calibrate_m0(
                &M0Input::Volumes {
                    volumes: vols.view(),
                    repetition_time_s: Some(tr),
                },
                shape,
                &m0_params,
            )
            .unwrap()
        }
        None => {
            let vols = select_volumes(series.view(), &layout.m0).unwrap();
            let trs: Vec<f64> = layout.m0.iter().map(|&i| tr_prep[i]).collect();
            assert!(trs.iter().all(|t| (t - trs[0]).abs() < 1e-9));
            calibrate_m0(
                &M0Input::Volumes {
                    volumes: vols.view(),
                    repetition_time_s: Some(trs[0]),
                },
                shape,
                &m0_params,
            )
            .unwrap()
        }
    };
    let (dm, delays): (Array4<f32>, Vec<f64>) = if !layout.pairs.is_empty() {
        (
            pairwise_delta_m(series.view(), &layout.pairs).unwrap(),
            layout.pair_values(&plds, "PostLabelingDelay").unwrap(),
        )
    } else {
        let d = select_volumes(series.view(), &layout.delta_m).unwrap();
        (d, layout.delta_m.iter().map(|&i| plds[i]).collect())
    };
    let (avg, uniq) = average_by_delay(dm.view(), &delays).unwrap();
    if uniq.len() == 1 {
        let ts = quantify_series(dm.view(), m0.view(), ph.mask.view(), &p, &delays).unwrap();
        assert_eq!(ts.dim().3, dm.dim().3);
        let mean = ts.mean_axis(Axis(3)).unwrap();
        Outcome {
            cbf_err: max_rel_err(mean.view(), ph.cbf.view(), ph.mask.view()),
            att_err: None,
            params: p,
        }
    } else {
        let fit = fit_multi_delay(
            avg.view(),
            &uniq,
            m0.view(),
            ph.mask.view(),
            &p,
            &MultiDelayOptions::default(),
        )
        .unwrap();
        let ident = att_identifiable(&p, &uniq, &ph);
        let n_ident = ident.iter().filter(|&&b| b).count();
        let n_mask = ph.mask.iter().filter(|&&b| b).count();
        assert!(
            n_ident * 2 > n_mask,
            "ATT identifiable in only {n_ident} of {n_mask} voxels"
        );
        Outcome {
            cbf_err: max_rel_err(fit.cbf.view(), ph.cbf.view(), ph.mask.view()),
            att_err: Some(max_rel_err(fit.att.view(), ph.att.view(), ident.view())),
            params: p,
        }
    }
}

/// asl001: GE 3D spiral pCASL, aslcontext [m0scan, deltam], M0 Included, BS 4 pulses,
/// PLD 2.025 s, τ 1.45 s, GE scaling 32 × NEX with NEX = TotalAcquiredPairs = 3.
#[test]
fn asl001_ge_deltam_included_m0_scaled() {
    let o = run(
        "asl001/sub-Sub103/perf/sub-Sub103_asl.json",
        "asl001/sub-Sub103/perf/sub-Sub103_aslcontext.tsv",
        None,
        [16, 16, 10],
        Some(3.0),
    );
    assert_eq!(
        o.params.labeling,
        Labeling::Pcasl {
            labeling_duration_s: 1.45
        }
    );
    assert!((o.params.efficiency.effective() - 0.85 * 0.95f64.powi(4)).abs() < 1e-12);
    assert!(o.cbf_err < 0.005, "max CBF error {}", o.cbf_err);
}

/// asl002: Philips 2D EPI pCASL, 20 slices with SliceTiming, control-first pairs, separate
/// M0 (TR 9 s), BS 2 pulses, PLD 2.0 s, τ 1.8 s.
#[test]
fn asl002_philips_2d_slice_timing() {
    let o = run(
        "asl002/sub-Sub103/perf/sub-Sub103_asl.json",
        "asl002/sub-Sub103/perf/sub-Sub103_aslcontext.tsv",
        Some("asl002/sub-Sub103/perf/sub-Sub103_m0scan.json"),
        [14, 14, 20],
        None,
    );
    assert!(
        o.params
            .slice_timing
            .as_ref()
            .is_some_and(|s| (s.times_s[19] - 0.7315).abs() < 1e-12)
    );
    assert!(o.cbf_err < 0.005, "max CBF error {}", o.cbf_err);
}

/// asl003: Siemens 3D GRASE PASL multi-TI (0.3–3.0 s), Q2TIPS [0.7, 1.6], label-first
/// pairs, separate M0 (TR 6 s), BS 2 pulses: CBF and ATT fitted.
#[test]
fn asl003_siemens_pasl_multi_ti() {
    let o = run(
        "asl003/sub-Sub1/perf/sub-Sub1_asl.json",
        "asl003/sub-Sub1/perf/sub-Sub1_aslcontext.tsv",
        Some("asl003/sub-Sub1/perf/sub-Sub1_m0scan.json"),
        [14, 14, 10],
        None,
    );
    assert_eq!(
        o.params.labeling,
        Labeling::Pasl {
            bolus_cutoff: BolusCutoff::Q2tips {
                ti1_s: 0.7,
                ti1_stop_s: Some(1.6)
            }
        }
    );
    assert!(o.cbf_err < 0.005, "max CBF error {}", o.cbf_err);
    assert!(o.att_err.unwrap() < 0.005, "max ATT error {:?}", o.att_err);
}

/// asl004: Siemens 2D EPI multi-PLD pCASL (6 PLDs 0.25–1.5 s × 8 pairs), 24 slices with
/// SliceTiming, LabelingEfficiency 0.88, BS 2 pulses, separate M0 (TR 4.8 s). ATT is
/// checked where identifiable: in upper slices (read up to 1.04 s later) the shortest
/// effective PLD exceeds short ATTs, which then only bound CBF, correctly recovered.
#[test]
fn asl004_siemens_2d_multi_pld() {
    let o = run(
        "asl004/sub-Sub1/perf/sub-Sub1_asl.json",
        "asl004/sub-Sub1/perf/sub-Sub1_aslcontext.tsv",
        Some("asl004/sub-Sub1/perf/sub-Sub1_m0scan.json"),
        [12, 12, 24],
        None,
    );
    assert!((o.params.efficiency.base - 0.88).abs() < 1e-12);
    assert!(o.cbf_err < 0.005, "max CBF error {}", o.cbf_err);
    assert!(o.att_err.unwrap() < 0.005, "max ATT error {:?}", o.att_err);
}

/// asl005: Siemens 3D GRASE pCASL single PLD 2.0 s, τ 1.8 s, BS 4 pulses, separate M0
/// (TR 4.95 s, corrected for incomplete recovery).
#[test]
fn asl005_siemens_3d_single_pld() {
    let o = run(
        "asl005/sub-Sub103/perf/sub-Sub103_asl.json",
        "asl005/sub-Sub103/perf/sub-Sub103_aslcontext.tsv",
        Some("asl005/sub-Sub103/perf/sub-Sub103_m0scan.json"),
        [16, 16, 10],
        None,
    );
    assert!(o.cbf_err < 0.005, "max CBF error {}", o.cbf_err);
}

/// 2d_mb_pcasl: Siemens 2D multiband multi-delay pCASL (HCP-Aging), 5 PLDs 0.2–2.2 s,
/// 60 slices with multiband SliceTiming, label-first pairs, noRF ×2 and m0scan ×2 at the
/// end (TR 8 s), no background suppression.
#[test]
fn hcp_2d_multiband_multi_pld() {
    let o = run(
        "2d_mb_pcasl/sub-1/perf/sub-1_asl.json",
        "2d_mb_pcasl/sub-1/perf/sub-1_aslcontext.tsv",
        None,
        [8, 8, 60],
        None,
    );
    assert_eq!(
        o.params.efficiency.background_suppression,
        BackgroundSuppression::None
    );
    assert!(o.cbf_err < 0.005, "max CBF error {}", o.cbf_err);
    assert!(o.att_err.unwrap() < 0.005, "max ATT error {:?}", o.att_err);
}
