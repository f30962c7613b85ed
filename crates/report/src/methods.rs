//! Methods paragraphs generated from the parameters recorded in the derivatives' sidecars, and
//! the reference lists (plain text, no links).

use std::fmt::Write as _;
use std::path::Path;

use cbflow_pipeline::catalogue::{AnatFile, RunFile};
use serde_json::Value;

use crate::Result;
use crate::data::RunFiles;
use crate::data::{self, jnum, jtext};
use crate::html::esc;

/// A reference: key used in the text, full citation.
pub type Reference = (&'static str, &'static str);

/// References cited by the participant report.
pub const PARTICIPANT_REFS: &[Reference] = &[
    (
        "Alsop et al. 2015",
        "Alsop DC, Detre JA, Golay X, et al. Recommended implementation of arterial spin-labeled perfusion MRI for clinical applications: a consensus of the ISMRM perfusion study group and the European consortium for ASL in dementia. Magn Reson Med 2015;73:102–116. doi:10.1002/mrm.25197",
    ),
    (
        "Dolui et al. 2017",
        "Dolui S, Wang Z, Shinohara RT, Wolk DA, Detre JA. Structural Correlation-based Outlier Rejection (SCORE) algorithm for arterial spin labeling time series. J Magn Reson Imaging 2017;45:1786–1797. doi:10.1002/jmri.25436",
    ),
    (
        "Dolui et al. 2024",
        "Dolui S, et al. Automated quality evaluation index for arterial spin labeling derived cerebral blood flow maps. J Magn Reson Imaging 2024.",
    ),
    (
        "Power et al. 2012",
        "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE. Spurious but systematic correlations in functional connectivity MRI networks arise from subject motion. NeuroImage 2012;59:2142–2154. doi:10.1016/j.neuroimage.2011.10.018",
    ),
    (
        "Wright et al. 2008",
        "Wright PJ, Mougin OE, Totman JJ, et al. Water proton T1 measurements in brain tissue at 7, 3, and 1.5 T using IR-EPI, IR-TSE, and MPRAGE. MAGMA 2008;21:121–130. doi:10.1007/s10334-008-0104-8",
    ),
    (
        "Mattes et al. 2003",
        "Mattes D, Haynor DR, Vesselle H, Lewellen TK, Eubank W. PET-CT image registration in the chest using free-form deformations. IEEE Trans Med Imaging 2003;22:120–128. doi:10.1109/TMI.2003.809072",
    ),
    (
        "Vercauteren et al. 2008",
        "Vercauteren T, Pennec X, Perchant A, Ayache N. Symmetric log-domain diffeomorphic registration: a demons-based approach. MICCAI 2008, LNCS 5241:754–761. doi:10.1007/978-3-540-85988-8_90",
    ),
    (
        "Rolls et al. 2020",
        "Rolls ET, Huang CC, Lin CP, Feng J, Joliot M. Automated anatomical labelling atlas 3. NeuroImage 2020;206:116189. doi:10.1016/j.neuroimage.2019.116189",
    ),
];

/// References cited by the group report.
pub const GROUP_REFS: &[Reference] = &[
    (
        "Nichols & Holmes 2002",
        "Nichols TE, Holmes AP. Nonparametric permutation tests for functional neuroimaging: a primer with examples. Hum Brain Mapp 2002;15:1–25. doi:10.1002/hbm.1058",
    ),
    (
        "Winkler et al. 2014",
        "Winkler AM, Ridgway GR, Webster MA, Smith SM, Nichols TE. Permutation inference for the general linear model. NeuroImage 2014;92:381–397. doi:10.1016/j.neuroimage.2014.01.060",
    ),
    (
        "Freedman & Lane 1983",
        "Freedman D, Lane D. A nonstochastic interpretation of reported significance levels. J Bus Econ Stat 1983;1:292–298. doi:10.2307/1391660",
    ),
    (
        "Smith & Nichols 2009",
        "Smith SM, Nichols TE. Threshold-free cluster enhancement: addressing problems of smoothing, threshold dependence and localisation in cluster inference. NeuroImage 2009;44:83–98. doi:10.1016/j.neuroimage.2008.03.061",
    ),
    (
        "Bonett & Wright 2000",
        "Bonett DG, Wright TA. Sample size requirements for estimating Pearson, Kendall and Spearman correlations. Psychometrika 2000;65:23–28. doi:10.1007/BF02294183",
    ),
    (
        "Raghunathan et al. 1996",
        "Raghunathan TE, Rosenthal R, Rubin DB. Comparing correlated but nonoverlapping correlations. Psychol Methods 1996;1:178–183. doi:10.1037/1082-989X.1.2.178",
    ),
    (
        "Zou 2007",
        "Zou GY. Toward using confidence intervals to compare correlations. Psychol Methods 2007;12:399–413. doi:10.1037/1082-989X.12.4.399",
    ),
    (
        "Satterthwaite 1946",
        "Satterthwaite FE. An approximate distribution of estimates of variance components. Biometrics Bulletin 1946;2:110–114. doi:10.2307/3002019",
    ),
    (
        "Benjamini & Hochberg 1995",
        "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful approach to multiple testing. J R Stat Soc B 1995;57:289–300. doi:10.1111/j.2517-6161.1995.tb02031.x",
    ),
    (
        "Burt et al. 2020",
        "Burt JB, Helmer M, Shinn M, Anticevic A, Murray JD. Generative modeling of brain maps with spatial autocorrelation. NeuroImage 2020;220:117038. doi:10.1016/j.neuroimage.2020.117038",
    ),
    (
        "Dukart et al. 2021",
        "Dukart J, Holiga S, Rullmann M, et al. JuSpace: a tool for spatial correlation analyses of magnetic resonance imaging data with nuclear imaging derived neurotransmitter maps. Hum Brain Mapp 2021;42:555–566. doi:10.1002/hbm.25244",
    ),
    (
        "Rolls et al. 2020",
        "Rolls ET, Huang CC, Lin CP, Feng J, Joliot M. Automated anatomical labelling atlas 3. NeuroImage 2020;206:116189. doi:10.1016/j.neuroimage.2019.116189",
    ),
];

/// An ordered list of references.
pub fn references_html(refs: &[Reference]) -> String {
    let mut s = String::from("<ol class=\"refs\">");
    for (_, full) in refs {
        let _ = write!(s, "<li>{}</li>", esc(full));
    }
    s.push_str("</ol>\n");
    s
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The BIDS sidecar of the raw ASL series a derivative names in `Sources`.
fn raw_asl_sidecar(bids_dir: &Path, cbf_json: &Value) -> Option<Value> {
    let src = cbf_json.get("Sources")?.as_array()?;
    let rel = src
        .iter()
        .filter_map(Value::as_str)
        .find(|s| s.ends_with("_asl.nii.gz") || s.ends_with("_asl.nii"))?;
    let rel = rel.rsplit(':').next()?;
    let layout = cbflow_bids::Layout::index(bids_dir).ok()?;
    let f = layout
        .query(&cbflow_bids::Query::new())
        .into_iter()
        .find(|f| f.rel_path.to_string_lossy() == rel)?
        .clone();
    layout.metadata(&f).ok().map(Value::Object)
}

/// The participant-level methods paragraph, from the sidecars of the first run.
pub fn participant_methods(
    output_dir: &Path,
    bids_dir: &Path,
    runs: &[RunFiles],
    space: Option<&(String, String)>,
) -> Result<String> {
    let Some(first) = runs.first() else {
        return Ok(String::new());
    };
    let cbf_sidecar = first.sidecar(&RunFile::Cbf)?;
    let Some(j) = cbf_sidecar
        .map(|p| data::json_opt(&p))
        .transpose()?
        .flatten()
    else {
        return Ok(crate::html::missing(
            "no CBF sidecar: the parameters used are unknown",
        ));
    };
    let p = j.get("Parameters").cloned().unwrap_or(Value::Null);
    let raw = raw_asl_sidecar(bids_dir, &j);
    let mut s = String::from("<div class=\"methods\"><p>");
    let _ = write!(
        s,
        "Arterial spin labelling (ASL) data were processed with cbflow {} ({} run{}).",
        env!("CARGO_PKG_VERSION"),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    if let Some(r) = &raw {
        let g = |k: &str| jtext(r, &[k]).unwrap_or_else(|| "n/a".into());
        let _ = write!(
            s,
            " The acquisition was {} {} ASL at {} T with {} label/control pairs, background suppression {} ({} pulses).",
            esc(&g("MRAcquisitionType")),
            esc(&g("ArterialSpinLabelingType")),
            esc(&g("MagneticFieldStrength")),
            esc(&g("TotalAcquiredPairs")),
            if r.get("BackgroundSuppression")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                "on"
            } else {
                "off"
            },
            esc(&g("BackgroundSuppressionNumberPulses")),
        );
    } else {
        s.push_str(" (The raw ASL sidecar was not found in the BIDS input, so acquisition details are not listed.)");
    }
    if let Some(r) = jtext(&p, &["Realignment"]) {
        let _ = write!(
            s,
            " Volumes were realigned ({}); framewise displacement (FD) was computed from the realignment parameters, rotations projected on a 50 mm sphere (Power et al. 2012).",
            esc(&r)
        );
    }
    let model = jtext(&p, &["Model"]).unwrap_or_else(|| "single-compartment model".into());
    let q = p.get("QuantParams").cloned().unwrap_or(Value::Null);
    let pld = p
        .get("PostLabelingDelays")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_f64);
    let _ = write!(
        s,
        " CBF (mL/100 g/min) was quantified per label/control pair with the {}",
        esc(&model)
    );
    let mut parts = Vec::new();
    if let Some(ld) = jnum(&q, &["labeling", "Pcasl", "labeling_duration_s"]) {
        parts.push(format!("labelling duration {} s", fmt_num(ld)));
    }
    if let Some(v) = pld {
        parts.push(format!("post-labelling delay {} s", fmt_num(v)));
    }
    if let Some(v) = jnum(&q, &["t1_blood_s"]) {
        parts.push(format!("T1 of blood {} s", fmt_num(v)));
    }
    if let Some(v) = jnum(&q, &["lambda_ml_per_g"]) {
        parts.push(format!(
            "blood–brain partition coefficient {} mL/g",
            fmt_num(v)
        ));
    }
    if let Some(v) = jnum(&q, &["efficiency", "base"]) {
        let bs = match (
            jnum(
                &q,
                &[
                    "efficiency",
                    "background_suppression",
                    "PerPulse",
                    "n_pulses",
                ],
            ),
            jnum(
                &q,
                &[
                    "efficiency",
                    "background_suppression",
                    "PerPulse",
                    "efficiency_per_pulse",
                ],
            ),
        ) {
            (Some(n), Some(e)) => format!(
                ", times {} per background-suppression pulse ({} pulses)",
                fmt_num(e),
                fmt_num(n)
            ),
            _ => String::new(),
        };
        let eff = jnum(&p, &["EffectiveLabelingEfficiency"])
            .map(|e| format!(", effective {}", fmt_num(e)))
            .unwrap_or_default();
        parts.push(format!("labelling efficiency {}{bs}{eff}", fmt_num(v)));
    }
    if !parts.is_empty() {
        let _ = write!(s, " ({})", esc(&parts.join("; ")));
    }
    s.push_str(" (Alsop et al. 2015).");
    if let Some(m) = p.get("M0Report") {
        let _ = write!(
            s,
            " The calibration M0 (mean of {} volume{}, TR {} s) was corrected for incomplete recovery with a tissue T1 of {} s (factor {}; Wright et al. 2008).",
            jtext(m, &["n_averaged"]).unwrap_or_else(|| "n/a".into()),
            if jnum(m, &["n_averaged"]) == Some(1.0) {
                ""
            } else {
                "s"
            },
            jnum(m, &["repetition_time_s"])
                .map(fmt_num)
                .unwrap_or_else(|| "n/a".into()),
            jnum(m, &["t1_tissue_s"])
                .map(fmt_num)
                .unwrap_or_else(|| "n/a".into()),
            jnum(m, &["tr_correction_factor"])
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "n/a".into()),
        );
    }
    if let Some(sp) = p.get("ScoreParams") {
        let _ = write!(
            s,
            " Outlier pairs were removed with SCORE (Dolui et al. 2017): tissue threshold {}, rejection beyond {} robust standard deviations, at least {} pairs kept.",
            jtext(sp, &["tissue_threshold"]).unwrap_or_default(),
            jtext(sp, &["mad_multiplier"]).unwrap_or_default(),
            jtext(sp, &["min_kept"]).unwrap_or_default(),
        );
    }
    s.push_str(" Map quality was summarised by the quality evaluation index (QEI; Dolui et al. 2024), grey- and white-matter CBF, their ratio and the fraction of negative grey-matter voxels.");
    if let Some((sp, res)) = space {
        let warp_method = first
            .anat_sidecar(&AnatFile::template_warp(sp))?
            .and_then(|p| data::json_opt(&p).ok().flatten())
            .and_then(|j| jtext(&j, &["Method"]))
            .unwrap_or_else(|| "a nonlinear registration".into());
        let _ = write!(
            s,
            " Each session's T1w image was normalised to {} (res-{}) by an affine registration (Mattes mutual information; Mattes et al. 2003) followed by {} (Vercauteren et al. 2008). The M0 was registered rigidly to the T1w by mutual information, and CBF maps were brought to template space in a single trilinear resampling through the composed transforms. Regional CBF was averaged in the subgenual, pregenual and supracallosal anterior cingulate regions of AAL3 (labels 151–156; Rolls et al. 2020), template grey matter (probability > 0.5) and the whole brain.",
            esc(sp),
            esc(res),
            esc(&warp_method)
        );
    }
    let _ = output_dir;
    s.push_str("</p></div>\n");
    Ok(s)
}

/// The group-level methods paragraph, from a statistical map's sidecar and the `CI` field of
/// the brain–behaviour table's sidecar.
pub fn group_methods(
    stat_json: Option<&Value>,
    correlation_ci: Option<&str>,
    receptors: bool,
    design: &cbflow_pipeline::StudyDesign,
) -> String {
    let mut s = String::from("<div class=\"methods\"><p>");
    match stat_json {
        Some(j) => {
            let _ = write!(
                s,
                "Template-space CBF maps were smoothed with a Gaussian kernel of {} mm FWHM inside the common brain mask. For each crossover contrast, within-subject difference maps were tested voxelwise by sign-flipping ({} permutations{}, seed {}); {} Family-wise error (FWE) was controlled by the maximum statistic over the mask (Nichols & Holmes 2002; Winkler et al. 2014), for the t statistic (voxel level), for threshold-free cluster enhancement (TFCE, E = {}, H = {}; Smith & Nichols 2009) and for cluster extent at a cluster-forming threshold of t > {} (degrees of freedom {}).",
                jnum(j, &["SmoothingFWHM"])
                    .map(fmt_num)
                    .unwrap_or_else(|| "n/a".into()),
                jtext(j, &["Permutations"]).unwrap_or_else(|| "n/a".into()),
                if j.get("Exhaustive").and_then(Value::as_bool) == Some(true) {
                    ", exhaustive"
                } else {
                    ""
                },
                jtext(j, &["Seed"]).unwrap_or_else(|| "n/a".into()),
                // the sidecar's inference text, without its FWE clause (said next)
                esc(&jtext(j, &["Inference"])
                    .map(|t| format!("inference: {}.", t.split("; FWE").next().unwrap_or(&t)))
                    .unwrap_or_default()),
                jnum(j, &["TFCE", "e"])
                    .map(fmt_num)
                    .unwrap_or_else(|| "n/a".into()),
                jnum(j, &["TFCE", "h"])
                    .map(fmt_num)
                    .unwrap_or_else(|| "n/a".into()),
                jnum(j, &["ClusterFormingThreshold"])
                    .map(fmt_num)
                    .unwrap_or_else(|| "n/a".into()),
                jnum(j, &["DegreesOfFreedom"])
                    .map(fmt_num)
                    .unwrap_or_else(|| "n/a".into()),
            );
        }
        None => s.push_str(
            "The voxelwise statistics are missing, so their parameters cannot be listed. ",
        ),
    }
    let _ = write!(
        s,
        " Regional CBF changes (during − before {}) were tested with paired t tests per pre-treatment, pooled, and for the pre-treatment × time interaction, and with a linear mixed model with a random intercept per subject (REML, Satterthwaite degrees of freedom; Satterthwaite 1946). Brain–behaviour relations were estimated with Pearson and Spearman correlations with 95 % confidence intervals ({}), regional ΔCBF adjusted for global ΔCBF; correlations under {} and {} in the same subjects were compared (Raghunathan et al. 1996; Zou 2007).",
        esc(&design.drug),
        esc(correlation_ci.unwrap_or("Fisher z; Bonett & Wright 2000 for Spearman")),
        esc(&design.control),
        esc(&design.active)
    );
    if receptors {
        s.push_str(" The spatial pattern of each contrast's effect was correlated with PET receptor density maps; p values came from null models that preserve spatial autocorrelation (variogram-matching surrogates, Burt et al. 2020; spatial permutation as in JuSpace, Dukart et al. 2021) and from sign-flipping, with Benjamini–Hochberg FDR across maps (Benjamini & Hochberg 1995).");
    }
    s.push_str("</p></div>\n");
    s
}
