//! The simulated acquisition, the noise model and the population's true CBF and effects.

use ndarray::{Array3, Zip};
use serde::Serialize;

use crate::EffectPattern;
use crate::space::{ACC_LABELS, Space};

/// The 3D pCASL protocol of every ASL run (the study's: LD 1.8 s, PLD 1.8 s, four background
/// suppression pulses, a separate M0 with its own repetition time).
#[derive(Debug, Clone, Serialize)]
pub struct AslProtocol {
    /// Label/control pairs per run.
    pub pairs: usize,
    /// Labelling duration τ (s).
    pub labeling_duration: f64,
    /// Post-labelling delay (s).
    pub post_labeling_delay: f64,
    /// Repetition time of the ASL volumes (s).
    pub repetition_time: f64,
    /// Repetition time of the M0 scan (s); the M0 image is not fully relaxed.
    pub m0_repetition_time: f64,
    /// Labelling efficiency of pCASL without background suppression (Alsop et al. 2015).
    pub labeling_efficiency: f64,
    /// Background-suppression inversion pulses.
    pub bs_pulses: u32,
    /// Efficiency kept per background-suppression pulse (the same default as `cbflow-cbf`).
    pub bs_efficiency_per_pulse: f64,
    /// T1 of arterial blood at 3 T (s).
    pub t1_blood: f64,
    /// Brain–blood partition coefficient λ (mL/g).
    pub lambda: f64,
    /// Single tissue T1 (s) that scales the M0 image by `1 − exp(−TR/T1)` (1.607 s at 3 T,
    /// Wright et al. 2008: the `cbflow-cbf` default, so its correction undoes it exactly).
    pub t1_tissue: f64,
    /// ASL voxel size (mm) and grid dimensions.
    pub asl_voxel: [f64; 3],
    /// ASL grid dimensions.
    pub asl_dims: [usize; 3],
}

impl Default for AslProtocol {
    fn default() -> Self {
        Self {
            pairs: 8,
            labeling_duration: 1.8,
            post_labeling_delay: 1.8,
            repetition_time: 4.6,
            m0_repetition_time: 5.0,
            labeling_efficiency: 0.85,
            bs_pulses: 4,
            bs_efficiency_per_pulse: 0.95,
            t1_blood: 1.65,
            lambda: 0.9,
            t1_tissue: 1.607,
            asl_voxel: [3.75, 3.75, 4.0],
            asl_dims: [48, 56, 38],
        }
    }
}

impl AslProtocol {
    /// ΔM / (M0 · CBF) of the consensus single-PLD pCASL model (Alsop et al. 2015):
    /// `ΔM = CBF · M0 · 2 α T1b (1 − e^{−τ/T1b}) e^{−PLD/T1b} / (6000 λ)`, CBF in mL/100 g/min.
    pub fn signal_per_cbf(&self) -> f64 {
        let alpha =
            self.labeling_efficiency * self.bs_efficiency_per_pulse.powi(self.bs_pulses as i32);
        let t1b = self.t1_blood;
        2.0 * alpha
            * t1b
            * (1.0 - (-self.labeling_duration / t1b).exp())
            * (-self.post_labeling_delay / t1b).exp()
            / (6000.0 * self.lambda)
    }
}

/// Noise and variability of the simulated study.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseModel {
    /// Gaussian noise per ASL and M0 voxel, as a fraction of the grey-matter M0.
    pub asl_sigma: f64,
    /// Gaussian noise of the T1w as a fraction of the white-matter intensity.
    pub t1w_sigma: f64,
    /// Between-subject SD of global CBF (fraction).
    pub subject_global_sd: f64,
    /// Between-run SD of global CBF (fraction).
    pub run_global_sd: f64,
    /// Between-subject SD of baseline sgACC perfusion relative to global (fraction).
    pub sgacc_sd: f64,
    /// SD of the ketamine rise across subjects and sessions, relative to its mean.
    pub effect_sd: f64,
    /// Random-walk step of head motion between ASL volumes: translation (mm) and rotation (deg),
    /// the SD of each axis's step. The default, 0.06 mm and 0.04°, gives a framewise
    /// displacement of about 0.23 mm, a compliant adult's; the earlier 0.15 mm / 0.1° gave
    /// 0.50 mm (realignment measured 0.504 mm against the simulated 0.500: the estimate was
    /// right), the QC limit, so every synthetic run was flagged for motion.
    pub motion_step: [f64; 2],
}

impl Default for NoiseModel {
    fn default() -> Self {
        Self {
            asl_sigma: 0.002,
            t1w_sigma: 0.02,
            subject_global_sd: 0.12,
            run_global_sd: 0.03,
            sgacc_sd: 0.10,
            effect_sd: 0.5,
            motion_step: [0.06, 0.04],
        }
    }
}

/// Mean fractional CBF rise during ketamine inside the ACC labels (0 in null studies).
pub const KETAMINE_RISE: f64 = 0.18;
/// Grey- and white-matter CBF of the population template (mL/100 g/min).
pub const CBF_GM: f64 = 60.0;
/// See [`CBF_GM`].
pub const CBF_WM: f64 = 22.0;
/// Proton density (relative M0) of GM, WM and CSF, and the M0 scale.
pub(super) const PD: [f64; 3] = [0.82, 0.72, 1.0];
pub(super) const M0_SCALE: f64 = 1000.0;
/// Residual static signal of the background-suppressed control and label images, fraction of M0.
pub(super) const BS_RESIDUAL: f64 = 0.1;

/// Population maps on the template grid, the same for everyone.
pub(super) struct Population {
    /// Baseline CBF (mL/100 g/min) without subject factors.
    pub(super) cbf: Array3<f32>,
    /// Fractional ketamine rise (0 outside the ACC).
    pub(super) effect: Array3<f32>,
    /// Voxels in the sgACC labels (151, 152), whose baseline perfusion varies between subjects.
    pub(super) sgacc: Array3<f32>,
    /// Relative proton density.
    pub(super) pd: Array3<f32>,
    /// Mean fractional rise over the ACC labels (the truth's `acc_rise` at scale 1).
    pub(super) acc_rise: f64,
}

impl Population {
    pub(super) fn new(space: &Space, null: bool, pattern: &EffectPattern) -> Self {
        let cbf = Zip::from(&space.gm)
            .and(&space.wm)
            .map_collect(|&g, &w| CBF_GM as f32 * g + CBF_WM as f32 * w);
        let effect = match pattern {
            _ if null => Array3::zeros(space.labels.raw_dim()),
            EffectPattern::AccRois => {
                let rise = KETAMINE_RISE as f32;
                space
                    .labels
                    .mapv(|l| if ACC_LABELS.contains(&l) { rise } else { 0.0 })
            }
            EffectPattern::Map { rise, .. } => rise.clone(),
        };
        let (mut acc_sum, mut acc_n) = (0.0, 0usize);
        Zip::from(&space.labels).and(&effect).for_each(|l, &e| {
            if ACC_LABELS.contains(l) {
                acc_sum += f64::from(e);
                acc_n += 1;
            }
        });
        let acc_rise = match pattern {
            _ if null => 0.0,
            EffectPattern::AccRois => KETAMINE_RISE,
            EffectPattern::Map { .. } if acc_n > 0 => acc_sum / acc_n as f64,
            EffectPattern::Map { .. } => 0.0,
        };
        let sgacc = space
            .labels
            .mapv(|l| if l == 151 || l == 152 { 1.0 } else { 0.0 });
        let pd = Zip::from(&space.gm)
            .and(&space.wm)
            .and(&space.csf)
            .map_collect(|&g, &w, &c| PD[0] as f32 * g + PD[1] as f32 * w + PD[2] as f32 * c);
        Self {
            cbf,
            effect,
            sgacc,
            pd,
            acc_rise,
        }
    }
}

/// Everything drawn for one subject-session.
#[derive(Debug, Clone, Serialize)]
pub(super) struct SessionTruth {
    pub(super) session: String,
    pub(super) pretreatment: &'static str,
    pub(super) period: usize,
    /// Global CBF factor of each run.
    pub(super) global: [f64; 2],
    /// Ketamine rise scale k (rise = KETAMINE_RISE · k in the ACC).
    pub(super) effect_scale: f64,
    /// Fraction of the full rise reached at each pair of the during-ketamine run.
    pub(super) ramp: Vec<f64>,
}
