//! The participant level on real Siemens 3 T series (`../shared/data/real-asl`: 3D GRASE
//! pCASL with an included M0 and an unpaired control, 2D EPI pCASL with a separate M0 and slice
//! timing, 2D PASL Q2TIPS), checked against a consensus-formula computation written here, from
//! the raw volumes, without realignment (its own code: only the NIfTI reader is cbflow's).

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::{cbflow, pearson, run_level, shared_data};

fn real_asl(name: &str) -> PathBuf {
    let p = shared_data().join("real-asl").join(name);
    assert!(p.is_dir(), "real scanner data not found at {}", p.display());
    p
}

fn read(p: &Path) -> cbflow_image::Volume {
    cbflow_image::read(p).unwrap_or_else(|e| panic!("{e}"))
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The workflow a user of these data writes: no T1w, so no template; the 3D series' pulse
/// count (not in the DICOM: two inversion pulses, the assumption its PROVENANCE.md documents)
/// and its four shots per volume.
const WORKFLOW: &str = r#"
version: 1
name: real-siemens
steps:
  - id: cbf
    op: asl-cbf
    inputs:
      asl: {bids: {datatype: perf, suffix: asl}}
    params:
      template: none
      bs-pulses: 2
      number-shots: 4
"#;

/// Consensus white-paper CBF (Alsop et al. 2015) of a series, from its raw volumes: ΔM = mean
/// control − mean label over the pairs (the unpaired control left out), M0 = the M0 volume or
/// image / (1 − e^(−TR/1.607 s)), the slice's own PLD, λ 0.9, T1 blood 1.65 s, α 0.85 (pCASL) or
/// 0.98 (PASL) × 0.95 per suppression pulse. Returns (CBF, M0) flattened in the same order.
fn reference(dir: &Path) -> (Vec<f64>, Vec<f64>, [usize; 3]) {
    let perf = dir.join("sub-01/perf");
    let asl = read(&perf.join("sub-01_asl.nii.gz"));
    let sc = json(&perf.join("sub-01_asl.json"));
    let ctx: Vec<String> = std::fs::read_to_string(perf.join("sub-01_aslcontext.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .collect();
    let n = ctx.len();
    // pairs: alternating control/label volumes; an odd leading one is the unpaired control
    let mut tagged: Vec<usize> = (0..n)
        .filter(|&i| ctx[i] == "control" || ctx[i] == "label")
        .collect();
    if tagged.len() % 2 == 1 {
        tagged.remove(0);
    }
    let controls: Vec<usize> = tagged
        .iter()
        .copied()
        .filter(|&i| ctx[i] == "control")
        .collect();
    let labels: Vec<usize> = tagged
        .iter()
        .copied()
        .filter(|&i| ctx[i] == "label")
        .collect();
    assert_eq!(controls.len(), labels.len());
    let (m0_img, tr) = match ctx.iter().position(|t| t == "m0scan") {
        Some(i) => (
            asl.frame(i).to_owned(),
            sc["RepetitionTimePreparation"].as_f64().unwrap(),
        ),
        None => {
            let m0 = read(&perf.join("sub-01_m0scan.nii.gz"));
            let m0sc = json(&perf.join("sub-01_m0scan.json"));
            (
                m0.frame(0).to_owned(),
                m0sc["RepetitionTimePreparation"].as_f64().unwrap(),
            )
        }
    };
    let recovery = 1.0 - (-tr / 1.607f64).exp();
    let pasl = sc["ArterialSpinLabelingType"] == "PASL";
    let pulses = if sc["BackgroundSuppression"] == true {
        2
    } else {
        0
    };
    let alpha = if pasl { 0.98 } else { 0.85 } * 0.95f64.powi(pulses);
    let pld = sc["PostLabelingDelay"].as_f64().unwrap();
    let (t1b, lambda) = (1.65f64, 0.9f64);
    let dims = [m0_img.dim().0, m0_img.dim().1, m0_img.dim().2];
    let slice_time = |k: usize| -> f64 {
        sc.get("SliceTiming")
            .and_then(|v| v.as_array())
            .map_or(0.0, |a| a[k].as_f64().unwrap())
    };
    let (mut cbf, mut m0) = (Vec::new(), Vec::new());
    for ((i, j, k), &m) in m0_img.indexed_iter() {
        let mean = |idx: &[usize]| {
            idx.iter()
                .map(|&v| asl.frame(v)[[i, j, k]] as f64)
                .sum::<f64>()
                / idx.len() as f64
        };
        let dm = mean(&controls) - mean(&labels);
        let m0v = m as f64 / recovery;
        let delay = pld + slice_time(k);
        let f = if pasl {
            let ti1 = sc["BolusCutOffDelayTime"].as_f64().unwrap();
            6000.0 * lambda * dm * (delay / t1b).exp() / (2.0 * alpha * ti1 * m0v)
        } else {
            let tau = sc["LabelingDuration"].as_f64().unwrap();
            6000.0 * lambda * dm * (delay / t1b).exp()
                / (2.0 * alpha * t1b * m0v * (1.0 - (-tau / t1b).exp()))
        };
        cbf.push(f);
        m0.push(m0v);
    }
    (cbf, m0, dims)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Translations (mm) and rotations (as mm on a 50 mm sphere) of one confounds row.
fn displacement(row: &[Option<f64>]) -> Option<[f64; 6]> {
    let v: Vec<f64> = row.iter().copied().collect::<Option<Vec<_>>>()?;
    Some([v[0], v[1], v[2], 50.0 * v[3], 50.0 * v[4], 50.0 * v[5]])
}

/// Native-space CBF with realignment on, against the reference: the ratio of the medians over
/// the brain within 3 %, voxelwise r ≥ 0.9; the included M0's motion within 0.3 mm of its
/// nearest realigned neighbour in every parameter; the series' clock from its shots per volume.
#[test]
fn real_siemens_series_match_the_consensus_formula() {
    let t = tempfile::tempdir().unwrap();
    let wf = t.path().join("real.yaml");
    std::fs::write(&wf, WORKFLOW).unwrap();
    for (name, included_m0, pair_spacing) in [
        ("real-siemens-pcasl3d", true, 2.0 * 4.0 * 3.48),
        ("real-siemens-pcasl2d", false, 2.0 * 4.0 * 2.54),
        ("real-siemens-pasl2d", true, 2.0 * 4.0 * 3.1),
    ] {
        let bids = real_asl(name);
        let out = t.path().join(name);
        run_level(&bids, &out, "participant")
            .arg("--workflow")
            .arg(&wf)
            .assert()
            .success();
        let perf = out.join("sub-01/perf");
        let est = read(&perf.join("sub-01_cbf.nii.gz"));
        let mask = read(&perf.join("sub-01_desc-brain_mask.nii.gz"));
        let (ref_cbf, ref_m0, dims) = reference(&bids);
        assert_eq!(est.grid().dims, dims);
        // the reference's own brain: M0 above 0.3 × its 99th percentile
        let mut sorted = ref_m0.clone();
        sorted.sort_by(f64::total_cmp);
        let thr = 0.3 * sorted[(0.99 * (sorted.len() - 1) as f64) as usize];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (((e, m), r), m0) in est
            .frame(0)
            .iter()
            .zip(mask.frame(0).iter())
            .zip(&ref_cbf)
            .zip(&ref_m0)
        {
            if *m > 0.5 && *m0 > thr && r.is_finite() {
                a.push(*e as f64);
                b.push(*r);
            }
        }
        assert!(a.len() > 10_000, "{name}: {} brain voxels", a.len());
        let ratio = median(a.clone()) / median(b.clone());
        let r = pearson(&a, &b);
        eprintln!(
            "{name}: {} voxels, median CBF cbflow {:.1} reference {:.1} (ratio {ratio:.3}), r {r:.3}",
            a.len(),
            median(a.clone()),
            median(b.clone())
        );
        assert!(
            (ratio - 1.0).abs() < 0.03,
            "{name}: median ratio {ratio:.3}"
        );
        assert!(r >= 0.9, "{name}: voxelwise r {r:.3}");

        let conf = cbflow_bids::Table::read_tsv(&perf.join("sub-01_desc-confounds_timeseries.tsv"))
            .unwrap();
        let cols: Vec<Vec<Option<f64>>> =
            ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
                .iter()
                .map(|c| conf.f64_column(c).unwrap())
                .collect();
        let row = |i: usize| displacement(&cols.iter().map(|c| c[i]).collect::<Vec<_>>());
        if included_m0 {
            let m0 = row(0).expect("the M0 volume is realigned");
            let next = (1..conf.n_rows()).find_map(row).unwrap();
            for (p, q) in m0.iter().zip(&next) {
                assert!(
                    (p - q).abs() < 0.3,
                    "{name}: M0 motion {m0:?} vs its neighbour {next:?}"
                );
            }
        }
        let ts = read(&perf.join("sub-01_desc-timeseries_cbf.nii.gz"));
        assert!(
            (ts.info.pixdim[3] - pair_spacing).abs() < 1e-3,
            "{name}: pairs {} s apart, expected {pair_spacing}",
            ts.info.pixdim[3]
        );
        // QC without a T1w: the brain-mask metrics, no tissue ones
        let qc = cbflow_bids::Table::read_tsv(&perf.join("sub-01_desc-qc_cbf.tsv")).unwrap();
        assert!(qc.f64_column("mean_cbf_brain").unwrap()[0].is_some());
        assert_eq!(qc.column("qei").unwrap()[0], "n/a");
    }
    // the 3D series: the unpaired control (volume 1) left out and said so
    let side = json(
        &t.path()
            .join("real-siemens-pcasl3d/sub-01/perf/sub-01_cbf.json"),
    );
    assert_eq!(side["Parameters"]["Volumes"]["UnpairedLeftOut"], 1);
    assert_eq!(
        side["Parameters"]["QuantParams"]["efficiency"]["background_suppression"]["PerPulse"]["n_pulses"],
        2
    );
}

/// Without the suppression parameter the 3D series stops before anything is written, and
/// `validate` says the same, naming the field and the workflow parameter that fixes it; with
/// the workflow it validates.
#[test]
fn validate_and_the_run_agree_on_the_missing_pulse_count() {
    let bids = real_asl("real-siemens-pcasl3d");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let needle = "set the asl-cbf parameter bs-pulses";
    cbflow()
        .arg("validate")
        .arg(&bids)
        .assert()
        .failure()
        .code(1)
        .stdout(
            predicate::str::contains("BackgroundSuppressionNumberPulses")
                .and(predicate::str::contains(needle)),
        );
    run_level(&bids, &out, "participant")
        .args(["--template", "none"])
        .assert()
        .failure()
        .code(1)
        .stderr(
            predicate::str::contains("BackgroundSuppressionNumberPulses")
                .and(predicate::str::contains(needle)),
        );
    assert!(!out.exists(), "a failed run left {}", out.display());
    let wf = t.path().join("real.yaml");
    std::fs::write(&wf, WORKFLOW).unwrap();
    cbflow()
        .arg("validate")
        .arg(&bids)
        .arg("--workflow")
        .arg(&wf)
        .assert()
        .success()
        .stdout(predicate::str::contains("control volume 1 has no partner"));
}
