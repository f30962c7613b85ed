//! Recovery of known CBF (and ATT) from ΔM simulated with the forward models.

use cbflow_cbf::{
    BackgroundSuppression, BolusCutoff, Labeling, QuantParams, SliceTiming, VolumeType,
    average_by_delay, pairwise_delta_m, quantify_series, split_series,
};
use ndarray::{Array4, Axis, concatenate};

use crate::common::{add_noise, assemble_series, gm_mean, phantom, worst_voxel};

fn pcasl(tau: f64) -> QuantParams {
    let mut p = QuantParams::consensus(
        Labeling::Pcasl {
            labeling_duration_s: tau,
        },
        3.0,
    );
    p.efficiency.background_suppression = BackgroundSuppression::PerPulse {
        n_pulses: 4,
        efficiency_per_pulse: 0.95,
    };
    p
}

/// Noise-free single-PLD pCASL: error < 0.5 % in every brain voxel.
#[test]
fn single_pld_pcasl_noise_free() {
    let ph = phantom([20, 20, 12]);
    let p = pcasl(1.8);
    let cbf = ph.quantify_first(&ph.delta_m(&[2.0], &p), &p, 2.0);
    let e = ph.cbf_err(cbf.view());
    assert!(e < 0.005, "max relative error {e}");
    assert!(cbf.iter().zip(ph.mask.iter()).all(|(&c, &m)| m || c == 0.0));
}

/// Noise-free PASL QUIPSS II: error < 0.5 % in every brain voxel (TI ≥ ATT + TI1).
#[test]
fn pasl_quipss2_noise_free() {
    let ph = phantom([20, 20, 12]);
    let p = QuantParams::consensus(
        Labeling::Pasl {
            bolus_cutoff: BolusCutoff::QuipssII { ti1_s: 0.7 },
        },
        3.0,
    );
    let cbf = ph.quantify_first(&ph.delta_m(&[2.8], &p), &p, 2.8);
    let e = ph.cbf_err(cbf.view());
    assert!(e < 0.005, "max relative error {e}");
}

/// 2D readout: per-slice PLD = PLD + SliceTiming[k]; recovered < 0.5 %, and ignoring the
/// slice timing would be wrong by more than that.
#[test]
fn per_slice_pld_2d() {
    let ph = phantom([16, 16, 20]);
    let mut p = pcasl(1.8);
    let times: Vec<f64> = (0..20).map(|k| 0.0385 * k as f64).collect();
    p.slice_timing = Some(SliceTiming {
        times_s: times,
        axis: 2,
    });
    let dm = ph.delta_m(&[2.0], &p);
    let cbf = ph.quantify_first(&dm, &p, 2.0);
    let e = ph.cbf_err(cbf.view());
    assert!(e < 0.005, "max relative error {e}");
    let mut q = p.clone();
    q.slice_timing = None;
    let wrong = ph.quantify_first(&dm, &q, 2.0);
    assert!(ph.cbf_err(wrong.view()) > 0.2);
}

/// Noise-free multi-PLD pCASL with ATT 0.8–2.0 s: CBF and ATT < 0.5 % in every voxel.
#[test]
fn multi_pld_pcasl_noise_free() {
    let ph = phantom([14, 14, 10]);
    let p = pcasl(1.8);
    let plds = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25];
    let fit = ph.fit(ph.delta_m(&plds, &p).view(), &plds, &p);
    let e = ph.cbf_err(fit.cbf.view());
    let ea = ph.att_err(fit.att.view());
    assert!(e < 0.005, "CBF max relative error {e}");
    assert!(
        ea < 0.005,
        "ATT max relative error {ea} at {:?}",
        worst_voxel(fit.att.view(), ph.att.view(), ph.mask.view())
    );
    assert_eq!(fit.n_at_bound, 0);
}

/// Noise-free multi-TI PASL (Q2TIPS) with ATT 0.8–2.0 s.
#[test]
fn multi_ti_pasl_noise_free() {
    let ph = phantom([14, 14, 10]);
    let p = QuantParams::consensus(
        Labeling::Pasl {
            bolus_cutoff: BolusCutoff::Q2tips {
                ti1_s: 0.7,
                ti1_stop_s: Some(1.6),
            },
        },
        3.0,
    );
    let tis: Vec<f64> = (1..=10).map(|i| 0.3 * i as f64).collect();
    let fit = ph.fit(ph.delta_m(&tis, &p).view(), &tis, &p);
    assert!(ph.cbf_err(fit.cbf.view()) < 0.005);
    assert!(ph.att_err(fit.att.view()) < 0.005);
}

/// Noisy single-PLD pCASL through the whole path (series → pairs → per-pair CBF → mean):
/// GM mean within 1 % of truth (seeded).
#[test]
fn single_pld_noise_gm_mean_unbiased() {
    let ph = phantom([20, 20, 12]);
    let p = pcasl(1.8);
    let n_pairs = 30;
    let types: Vec<VolumeType> = (0..2 * n_pairs)
        .map(|i| {
            if i % 2 == 0 {
                VolumeType::Control
            } else {
                VolumeType::Label
            }
        })
        .collect();
    let layout = split_series(&types, 0).unwrap();
    let one = ph.delta_m(&[2.0], &p);
    let views: Vec<_> = (0..n_pairs).map(|_| one.view()).collect();
    let pair_dm = concatenate(Axis(3), &views).unwrap();
    let static_img = ph.m0.mapv(|v| 0.3 * v);
    let mut series = assemble_series(types.len(), &layout, &pair_dm, &static_img);
    add_noise(&mut series, 5.0, 7);
    let dm = pairwise_delta_m(series.view(), &layout.pairs).unwrap();
    let cbf_ts = quantify_series(
        dm.view(),
        ph.m0.view(),
        ph.mask.view(),
        &p,
        &vec![2.0; n_pairs],
    )
    .unwrap();
    let mean = cbf_ts.mean_axis(Axis(3)).unwrap();
    let (est, truth) = (gm_mean(mean.view(), &ph), gm_mean(ph.cbf.view(), &ph));
    assert!(
        ((est - truth) / truth).abs() < 0.01,
        "GM mean {est} vs truth {truth}"
    );
}

/// Noisy multi-PLD pCASL: GM-mean CBF within 1 % and GM-mean ATT within 2 % (seeded).
#[test]
fn multi_pld_noise_gm_mean() {
    let ph = phantom([16, 16, 10]);
    let p = pcasl(1.8);
    let plds = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25];
    let reps = 4;
    let all_plds: Vec<f64> = (0..reps).flat_map(|_| plds).collect();
    let mut dm: Array4<f32> = ph.delta_m(&all_plds, &p);
    add_noise(&mut dm, 0.6, 11);
    let (avg, uniq) = average_by_delay(dm.view(), &all_plds).unwrap();
    assert_eq!(uniq, plds.to_vec());
    let fit = ph.fit(avg.view(), &uniq, &p);
    let (est, truth) = (gm_mean(fit.cbf.view(), &ph), gm_mean(ph.cbf.view(), &ph));
    assert!(
        ((est - truth) / truth).abs() < 0.01,
        "GM CBF {est} vs {truth}"
    );
    let (ea, ta) = (gm_mean(fit.att.view(), &ph), gm_mean(ph.att.view(), &ph));
    assert!(((ea - ta) / ta).abs() < 0.02, "GM ATT {ea} vs {ta}");
}

/// Same bits at 1 and 3 threads.
#[test]
fn multi_delay_fit_is_thread_count_invariant() {
    let ph = phantom([12, 12, 8]);
    let p = pcasl(1.8);
    let plds = [0.5, 1.0, 1.5, 2.0];
    let mut dm = ph.delta_m(&plds, &p);
    add_noise(&mut dm, 1.0, 3);
    let run = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| ph.fit(dm.view(), &plds, &p))
    };
    let (a, b) = (run(1), run(3));
    assert!(
        a.cbf
            .iter()
            .zip(b.cbf.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert!(
        a.att
            .iter()
            .zip(b.att.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
}
