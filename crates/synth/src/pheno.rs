//! Phenotype model: subjective effects and mood ratings linked to the true CBF changes.
//!
//! Under placebo the links of the study are present; under naltrexone they are absent
//! (correlation 0), as the study reported. `--null` removes every link.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// Generating correlations between the standardised true ACC rise (or baseline sgACC perfusion)
/// and each score, under placebo; under naltrexone every one is 0.
#[derive(Debug, Clone, Serialize)]
pub struct LinkModel {
    /// CADSS total vs the ACC rise.
    pub cadss: f64,
    /// PSI perceptual distortion vs the ACC rise.
    pub psi_perceptual_distortion: f64,
    /// PSI cognitive disorganisation vs the ACC rise.
    pub psi_cognitive_disorganisation: f64,
    /// Day-1 MADRS change vs baseline sgACC perfusion (relative to global).
    pub madrs_change: f64,
    /// Day-1 QIDS-SR change vs baseline sgACC perfusion (relative to global).
    pub qids_change: f64,
}

impl LinkModel {
    pub(crate) fn study() -> Self {
        Self {
            cadss: 0.7,
            psi_perceptual_distortion: 0.65,
            psi_cognitive_disorganisation: 0.6,
            madrs_change: -0.65,
            qids_change: -0.6,
        }
    }
    pub(crate) fn none() -> Self {
        Self {
            cadss: 0.0,
            psi_perceptual_distortion: 0.0,
            psi_cognitive_disorganisation: 0.0,
            madrs_change: 0.0,
            qids_change: 0.0,
        }
    }
}

/// Scores of one subject in one session.
#[derive(Debug, Clone)]
pub(crate) struct Scores {
    pub psi: [f64; 6],
    pub cadss: f64,
    pub madrs: [f64; 2],
    pub qids: [f64; 2],
}

/// PSI subscales (Mason et al. 2008), in column order.
pub(crate) const PSI_SUBSCALES: [&str; 6] = [
    "psi_delusory_thinking",
    "psi_perceptual_distortion",
    "psi_cognitive_disorganisation",
    "psi_anhedonia",
    "psi_mania",
    "psi_paranoia",
];

/// `rho·z + sqrt(1 − rho²)·ε`: a standard normal correlated `rho` with `z`.
fn linked(rng: &mut ChaCha8Rng, z: f64, rho: f64) -> f64 {
    let e = Normal::new(0.0, 1.0).expect("unit normal").sample(rng);
    rho * z + (1.0 - rho * rho).sqrt() * e
}

/// Draws the scores given the standardised true ACC rise `z_rise` and standardised baseline
/// sgACC perfusion `z_sgacc`, with the links of `m` (the caller passes [`LinkModel::none`] for
/// naltrexone sessions and null studies).
pub(crate) fn draw(rng: &mut ChaCha8Rng, m: &LinkModel, z_rise: f64, z_sgacc: f64) -> Scores {
    let psi_rho = [
        0.0,
        m.psi_perceptual_distortion,
        m.psi_cognitive_disorganisation,
        0.0,
        0.0,
        0.0,
    ];
    let psi_mean = [4.0, 9.0, 7.0, 3.0, 3.0, 2.0];
    let psi_sd = [2.0, 3.5, 3.0, 1.5, 1.5, 1.2];
    let mut psi = [0.0; 6];
    for s in 0..6 {
        psi[s] = (psi_mean[s] + psi_sd[s] * linked(rng, z_rise, psi_rho[s])).max(0.0);
    }
    let cadss = (14.0 + 7.0 * linked(rng, z_rise, m.cadss)).max(0.0);
    let base = Normal::<f64>::new(0.0, 1.0).expect("unit normal");
    let madrs0: f64 = (31.0 + 4.0 * base.sample(rng)).round().clamp(20.0, 50.0);
    let madrs1 = (madrs0 - 10.0 + 6.0 * linked(rng, z_sgacc, m.madrs_change)).clamp(0.0, 60.0);
    let qids0: f64 = (17.0 + 2.5 * base.sample(rng)).round().clamp(10.0, 27.0);
    let qids1 = (qids0 - 5.0 + 3.0 * linked(rng, z_sgacc, m.qids_change)).clamp(0.0, 27.0);
    Scores {
        psi,
        cadss,
        madrs: [madrs0, madrs1],
        qids: [qids0, qids1],
    }
}
