//! Per-run quality-control metrics, including the quality evaluation index (QEI).

use ndarray::{Array3, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::error::{CbfError, Result};
use crate::kinetic::{check_shape, dims3};
use crate::motion::FdSummary;
use crate::score::TissueMaps;

/// QC settings and plausibility ranges.
///
/// The ranges are deliberately wide screening limits chosen by cbflow to catch gross
/// failures (M0 scaled wrongly by ×10, control/label swapped, failed labelling, heavy
/// motion); they are not normative values. Healthy-adult GM CBF by ASL is typically
/// 40–100 mL/100 g/min and the GM/WM ratio 2–3 (Alsop et al. 2015 discuss expected
/// contrast); adjust per study.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QcParams {
    /// Probability threshold that binarises tissue maps (default 0.7, as ASLPrep).
    pub tissue_threshold: f64,
    /// Plausible mean GM CBF, mL/100 g/min (default 20–120).
    pub gm_cbf_range: (f64, f64),
    /// Plausible GM/WM CBF ratio (default 1.5–4.0).
    pub gm_wm_ratio_range: (f64, f64),
    /// Largest acceptable fraction of GM voxels with negative CBF (default 0.1).
    pub max_negative_gm_fraction: f64,
    /// Smallest acceptable QEI (default 0.5; QEI is in [0, 1]).
    pub min_qei: f64,
    /// Largest acceptable mean FD, mm (default 0.5, the censoring threshold of Power et al. 2012).
    pub max_mean_fd_mm: f64,
    /// Smoothing applied to CBF before the QEI, FWHM mm (default 5, as ASLPrep's QEI).
    pub qei_fwhm_mm: f64,
    /// Voxel size `[dx, dy, dz]` in mm, needed for the QEI smoothing; `None` = no smoothing.
    pub voxel_size_mm: Option<[f64; 3]>,
    /// Plausible mean CBF over the whole brain mask, mL/100 g/min (default 10–110: grey and
    /// white matter together, and partial-volume edges).
    pub brain_cbf_range: (f64, f64),
    /// Largest acceptable fraction of brain-mask voxels with negative CBF (default 0.3).
    pub max_negative_brain_fraction: f64,
    /// Smallest acceptable Dice of the session's T1w brain mask, normalised to the template,
    /// with the template brain mask (default 0.9; a failed normalisation, such as a brain
    /// stretched to the template's scalp, falls far below).
    pub min_norm_brain_dice: f64,
    /// Plausible determinant of the T1w → template affine (default 0.6–1.5: adult heads are
    /// 0.7–1.2 times the MNI template's volume).
    pub norm_determinant_range: (f64, f64),
}

impl Default for QcParams {
    fn default() -> Self {
        Self {
            tissue_threshold: 0.7,
            gm_cbf_range: (20.0, 120.0),
            gm_wm_ratio_range: (1.5, 4.0),
            max_negative_gm_fraction: 0.1,
            min_qei: 0.5,
            max_mean_fd_mm: 0.5,
            qei_fwhm_mm: 5.0,
            voxel_size_mm: None,
            brain_cbf_range: (10.0, 110.0),
            max_negative_brain_fraction: 0.3,
            min_norm_brain_dice: 0.9,
            norm_determinant_range: (0.6, 1.5),
        }
    }
}

/// The three QEI ingredients (Dolui et al. 2024).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QeiComponents {
    /// ρ: Pearson correlation of smoothed CBF with pseudo-CBF 2.5·GM + WM (clipped at 0).
    pub structural_similarity: f64,
    /// Pooled within-tissue variance of smoothed CBF divided by |mean GM CBF|.
    pub spatial_variability: f64,
    /// Fraction of GM voxels with negative smoothed CBF.
    pub negative_gm_fraction: f64,
}

/// A metric outside its plausible range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcFlag {
    /// Metric name (a field of [`QcMetrics`]).
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// Accepted range `[lo, hi]`.
    pub range: (f64, f64),
}

/// Per-run QC metrics (one TSV row / JSON object). The brain-mask metrics need only the CBF
/// map; the tissue metrics need grey/white-matter maps on the ASL grid (from a T1w) and are
/// `None` without them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcMetrics {
    /// Mean CBF over the brain mask, mL/100 g/min.
    pub mean_cbf_brain: f64,
    /// Fraction of brain-mask voxels with CBF < 0.
    pub negative_brain_fraction: f64,
    /// Spatial coefficient of variation of CBF over the brain mask (standard deviation / mean;
    /// high values point to macrovascular signal from late arrival, Mutsaerts et al. 2017).
    pub spatial_cov_brain: f64,
    /// Brain-mask voxels left out of quantification (M0 or ΔM unusable there).
    pub voxels_left_out: usize,
    /// Dice of the session's T1w brain mask, normalised to the template, with the template
    /// brain mask (with a T1w).
    pub norm_brain_dice: Option<f64>,
    /// Determinant of the T1w → template affine (with a T1w).
    pub norm_affine_determinant: Option<f64>,
    /// Mean CBF in GM (probability ≥ threshold, in mask), mL/100 g/min.
    pub mean_cbf_gm: Option<f64>,
    /// Mean CBF in WM, mL/100 g/min (NaN if the WM class is empty).
    pub mean_cbf_wm: Option<f64>,
    /// mean_cbf_gm / mean_cbf_wm.
    pub gm_wm_ratio: Option<f64>,
    /// Fraction of GM voxels with CBF < 0 (unsmoothed).
    pub negative_gm_fraction: Option<f64>,
    /// Quality evaluation index in [0, 1] (Dolui et al. 2024).
    pub qei: Option<f64>,
    /// QEI ingredients.
    pub qei_components: Option<QeiComponents>,
    /// Mean framewise displacement, mm (if motion was estimated).
    pub fd_mean_mm: Option<f64>,
    /// Maximum framewise displacement, mm.
    pub fd_max_mm: Option<f64>,
    /// Control/label pairs (or ΔM volumes) in the run.
    pub pairs_total: usize,
    /// Pairs kept after outlier rejection.
    pub pairs_kept: usize,
    /// Metrics outside their plausible ranges.
    pub flags: Vec<QcFlag>,
    /// Settings and ranges used.
    pub params: QcParams,
}

impl QcMetrics {
    /// Adds the figures of merit of the session's normalisation (the warped T1w brain mask's
    /// Dice with the template's, the affine's determinant), flagged outside the ranges of
    /// `params`.
    pub fn add_normalisation(&mut self, brain_dice: f64, determinant: f64) {
        self.norm_brain_dice = Some(brain_dice);
        self.norm_affine_determinant = Some(determinant);
        let p = self.params;
        if brain_dice.is_nan() || brain_dice < p.min_norm_brain_dice {
            self.flags.push(QcFlag {
                metric: "norm_brain_dice".into(),
                value: brain_dice,
                range: (p.min_norm_brain_dice, 1.0),
            });
        }
        let r = p.norm_determinant_range;
        if !(determinant >= r.0 && determinant <= r.1) {
            self.flags.push(QcFlag {
                metric: "norm_affine_determinant".into(),
                value: determinant,
                range: r,
            });
        }
    }
}

/// Counts of a run the QC table reports besides the CBF map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QcCounts {
    /// Control/label pairs (or ΔM volumes) in the run.
    pub pairs_total: usize,
    /// Pairs kept after outlier rejection.
    pub pairs_kept: usize,
    /// Brain-mask voxels left out of quantification.
    pub voxels_left_out: usize,
}

fn mean_at(img: &Array3<f32>, vox: &[[usize; 3]]) -> f64 {
    vox.iter().map(|&v| img[v] as f64).sum::<f64>() / vox.len() as f64
}

/// Quality evaluation index of a CBF map (Dolui et al. 2024, "Automated quality
/// evaluation index for arterial spin labeling derived cerebral blood flow maps",
/// JMRI; as implemented in ASLPrep `compute_qei`):
///
/// QEI = ∛[ (1 − e^(−3.0126 ρ^2.4419)) · e^(−0.054 V^0.9272) · e^(−2.8478 N^0.5196) ]
///
/// with ρ = max(0, corr(CBF, 2.5·GM + WM)) over the mask, V = pooled within-tissue
/// (GM/WM/CSF) variance / |mean GM CBF|, N = fraction of negative GM voxels, all on
/// CBF smoothed to `p.qei_fwhm_mm` (when `p.voxel_size_mm` is given).
pub fn qei(
    cbf: ArrayView3<f32>,
    tissue: &TissueMaps<'_>,
    mask: ArrayView3<bool>,
    p: &QcParams,
) -> Result<(f64, QeiComponents)> {
    let shape = dims3(&cbf);
    check_shape("mask vs CBF", shape, dims3(&mask))?;
    tissue.check(shape)?;
    let s = match p.voxel_size_mm {
        Some(v) => cbflow_image::gaussian_smooth3(
            cbf,
            v.map(|vox| cbflow_image::fwhm_to_sigma(p.qei_fwhm_mm) / vox),
        ),
        None => cbf.to_owned(),
    };
    let classes = tissue.classes(mask, p.tissue_threshold);
    if classes[0].is_empty() {
        return Err(CbfError::EmptyMask {
            what: "grey matter within the brain mask".into(),
        });
    }
    // structural similarity
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for ((i, j, k), &m) in mask.indexed_iter() {
        let c = s[[i, j, k]];
        if m && c.is_finite() {
            xs.push(c as f64);
            ys.push(2.5 * tissue.gm[[i, j, k]] as f64 + tissue.wm[[i, j, k]] as f64);
        }
    }
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(&ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    let rho = if sxx > 0.0 && syy > 0.0 {
        (sxy / (sxx * syy).sqrt()).max(0.0)
    } else {
        0.0
    };
    // pooled variance
    let (mut num, mut den) = (0.0, 0.0);
    for c in &classes {
        if c.len() < 2 {
            continue;
        }
        let m = mean_at(&s, c);
        num += c.iter().map(|&v| (s[v] as f64 - m).powi(2)).sum::<f64>();
        den += c.len() as f64 - 1.0;
    }
    let pooled = if den > 0.0 { num / den } else { 0.0 };
    let gm_mean = mean_at(&s, &classes[0]);
    let cv = pooled / gm_mean.abs();
    let neg = classes[0].iter().filter(|&&v| s[v] < 0.0).count() as f64 / classes[0].len() as f64;
    let q1 = 1.0 - (-3.0126 * rho.powf(2.4419)).exp();
    let q2 = (-0.054 * cv.powf(0.9272)).exp();
    let q3 = (-2.8478 * neg.powf(0.5196)).exp();
    let q = (q1 * q2 * q3).cbrt();
    Ok((
        q,
        QeiComponents {
            structural_similarity: rho,
            spatial_variability: cv,
            negative_gm_fraction: neg,
        },
    ))
}

/// QC metrics of a run's mean CBF map `[x, y, z]` (mL/100 g/min) over `mask`, with the
/// tissue metrics and the QEI when tissue maps on the same grid are given, the motion summary
/// and the counts. Values outside the ranges of `p` are listed in `flags`.
pub fn qc_metrics(
    cbf: ArrayView3<f32>,
    tissue: Option<&TissueMaps<'_>>,
    mask: ArrayView3<bool>,
    fd: Option<&FdSummary>,
    counts: QcCounts,
    p: &QcParams,
) -> Result<QcMetrics> {
    check_shape("mask vs CBF", dims3(&cbf), dims3(&mask))?;
    let brain: Vec<f64> = cbf
        .iter()
        .zip(mask.iter())
        .filter(|(_, m)| **m)
        .map(|(c, _)| *c as f64)
        .collect();
    if brain.is_empty() {
        return Err(CbfError::EmptyMask {
            what: "brain mask for QC".into(),
        });
    }
    let nb = brain.len() as f64;
    let mean_brain = brain.iter().sum::<f64>() / nb;
    let sd_brain =
        (brain.iter().map(|c| (c - mean_brain).powi(2)).sum::<f64>() / (nb - 1.0).max(1.0)).sqrt();
    let neg_brain = brain.iter().filter(|c| **c < 0.0).count() as f64 / nb;
    let mut flags = Vec::new();
    let mut check = |name: &str, v: f64, r: (f64, f64)| {
        if !(v >= r.0 && v <= r.1) {
            flags.push(QcFlag {
                metric: name.into(),
                value: v,
                range: r,
            });
        }
    };
    check("mean_cbf_brain", mean_brain, p.brain_cbf_range);
    check(
        "negative_brain_fraction",
        neg_brain,
        (0.0, p.max_negative_brain_fraction),
    );
    let mut m = QcMetrics {
        mean_cbf_brain: mean_brain,
        negative_brain_fraction: neg_brain,
        spatial_cov_brain: sd_brain / mean_brain,
        voxels_left_out: counts.voxels_left_out,
        norm_brain_dice: None,
        norm_affine_determinant: None,
        mean_cbf_gm: None,
        mean_cbf_wm: None,
        gm_wm_ratio: None,
        negative_gm_fraction: None,
        qei: None,
        qei_components: None,
        fd_mean_mm: fd.map(|f| f.mean_mm),
        fd_max_mm: fd.map(|f| f.max_mm),
        pairs_total: counts.pairs_total,
        pairs_kept: counts.pairs_kept,
        flags: Vec::new(),
        params: *p,
    };
    if let Some(tissue) = tissue {
        let (q, comps) = qei(cbf, tissue, mask, p)?;
        let classes = tissue.classes(mask, p.tissue_threshold);
        let c = cbf.to_owned();
        let gm = mean_at(&c, &classes[0]);
        let wm = if classes[1].is_empty() {
            f64::NAN
        } else {
            mean_at(&c, &classes[1])
        };
        let neg =
            classes[0].iter().filter(|&&v| c[v] < 0.0).count() as f64 / classes[0].len() as f64;
        let ratio = gm / wm;
        check("mean_cbf_gm", gm, p.gm_cbf_range);
        check("gm_wm_ratio", ratio, p.gm_wm_ratio_range);
        check(
            "negative_gm_fraction",
            neg,
            (0.0, p.max_negative_gm_fraction),
        );
        check("qei", q, (p.min_qei, 1.0));
        m.mean_cbf_gm = Some(gm);
        m.mean_cbf_wm = Some(wm);
        m.gm_wm_ratio = Some(ratio);
        m.negative_gm_fraction = Some(neg);
        m.qei = Some(q);
        m.qei_components = Some(comps);
    }
    if let Some(f) = fd {
        check("fd_mean_mm", f.mean_mm, (0.0, p.max_mean_fd_mm));
    }
    m.flags = flags;
    Ok(m)
}
