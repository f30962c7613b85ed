//! The group level: the crossover design from `participants.tsv`/`sessions.tsv`, voxelwise
//! permutation inference on the template-space CBF maps of the participant level, ROI tests,
//! brain–behaviour correlations and the crossover mixed model.

use std::path::{Path, PathBuf};

use cbflow_bids::{DerivativeName, DerivativesWriter, Entities, Layout, Table};
use cbflow_image::{DataType, Volume};
use cbflow_stats::{
    CrossoverContrast, CrossoverMaps, MaskGeometry, PermutationOptions, PermutationResult, Tail,
    TfceParams, Treatment,
};
use ndarray::{Array2, Array3};
use serde::Serialize;
use serde_json::json;

use crate::covariates::{CovariateValues, GroupCovariate};
use crate::outputs::{RunSelector, find_template_run, template_output};
use crate::template::Template;
use crate::{Error, Result};

/// How the study maps onto BIDS (the workflow's declarations; these are the defaults of the
/// ketamine + naltrexone workflow).
#[derive(Debug, Clone, Serialize)]
pub struct StudyDesign {
    /// `sessions.tsv` column naming the pre-treatment of each session.
    pub pretreatment_column: String,
    /// Its value for placebo sessions.
    pub placebo: String,
    /// Its value for naltrexone sessions.
    pub naltrexone: String,
    /// `sessions.tsv` column with the period (1 or 2).
    pub period_column: String,
    /// The run of each session before ketamine (by default `run-1`).
    pub before: RunSelector,
    /// The run of each session during ketamine (by default `run-2`).
    pub during: RunSelector,
}

impl Default for StudyDesign {
    fn default() -> Self {
        Self {
            pretreatment_column: "pretreatment".into(),
            placebo: "placebo".into(),
            naltrexone: "naltrexone".into(),
            period_column: "period".into(),
            before: RunSelector::run("1"),
            during: RunSelector::run("2"),
        }
    }
}

/// Options of the group level.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// The input BIDS dataset.
    pub bids_dir: PathBuf,
    /// The derivatives written by the participant level (the group outputs go to `group/` in it).
    pub output_dir: PathBuf,
    /// The template the participant level used.
    pub template: Template,
    /// The design.
    pub design: StudyDesign,
    /// Permutations (10 000 by default; exhaustive when fewer sign patterns exist).
    pub n_permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Smoothing of each template-space CBF map before the voxelwise test (FWHM, mm).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t).
    pub cluster_threshold: f64,
    /// TFCE settings (E = 0.5, H = 2, 26-connectivity, dh = max |t| / 100 by default).
    pub tfce: TfceParams,
    /// How the 95 % CIs of the brain–behaviour correlations are computed.
    pub correlation_ci: CorrelationCi,
    /// The contrasts tested ([`GroupContrast::defaults`] for the ketamine + naltrexone study).
    pub contrasts: Vec<GroupContrast>,
    /// Regions (of the participant level's ROI tables) for the ROI tests, the mixed model and
    /// the ΔCBF–subjective-effect correlations; `grey_matter` and `global` are always added.
    /// [`GroupOptions::default_rois`]: the three AAL3 anterior cingulate subdivisions.
    pub rois: Vec<String>,
    /// Region whose baseline CBF (adjusted for global CBF) is related to the day-1 change in
    /// depression scores (`ACC_sub`, the subgenual ACC, by default).
    pub baseline_roi: String,
    /// Covariates of the voxelwise GLM and the ROI tests (none by default): global CBF under
    /// each contrast's weights, or `participants.tsv` columns such as age and sex.
    pub covariates: Vec<GroupCovariate>,
}

impl GroupOptions {
    /// `ACC_sub`, `ACC_pre` and `ACC_sup`.
    pub fn default_rois() -> Vec<String> {
        crate::group_tables::DEFAULT_ROIS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Why the group level's regions cannot be used, if they cannot: a name that is not a
    /// region name, `grey_matter` or `global` (always added), or a name twice. With
    /// `extracted` (the participant level's declared regions), also a region it does not
    /// extract. The workflow's checks and the group level share it.
    pub fn rois_problem(
        rois: &[String],
        baseline_roi: &str,
        extracted: Option<&[String]>,
    ) -> Option<String> {
        let reserved = crate::participant::RESERVED_ROIS;
        for (k, r) in rois.iter().enumerate() {
            if !crate::is_roi_name(r) {
                return Some(format!("rois: {r:?} is not a region name"));
            }
            if reserved.contains(&r.as_str()) {
                return Some(format!(
                    "rois: {r} is always added (with {}); list only declared regions",
                    reserved.join(" and ")
                ));
            }
            if rois[..k].contains(r) {
                return Some(format!("rois: {r} is listed twice"));
            }
        }
        if !crate::is_roi_name(baseline_roi) {
            return Some(format!(
                "baseline-roi: {baseline_roi:?} is not a region name"
            ));
        }
        let extracted = extracted?;
        let known = |r: &str| reserved.contains(&r) || extracted.iter().any(|e| e == r);
        let (key, missing) = match rois.iter().find(|r| !known(r)) {
            Some(r) => ("rois", r.as_str()),
            None if !known(baseline_roi) => ("baseline-roi", baseline_roi),
            None => return None,
        };
        Some(format!(
            "{key}: {missing} is not a region of the participant level (its regions: {})",
            extracted
                .iter()
                .map(String::as_str)
                .chain(reserved)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The 95 % confidence interval of a brain–behaviour correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum CorrelationCi {
    /// Fisher z (Bonett & Wright 2000 for Spearman): exact for bivariate normal data.
    #[default]
    FisherZ,
    /// Percentile bootstrap over subjects (Efron & Tibshirani 1993, ch. 13), seeded with the
    /// group seed: no normality assumption, for skewed scores or outliers.
    Bootstrap {
        /// Resamples.
        samples: usize,
    },
}

/// What the group level did.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    /// Subjects in the analysis.
    pub subjects: Vec<String>,
    /// Subjects left out, with the reason.
    pub excluded: Vec<(String, String)>,
    /// Per contrast: voxels with voxel-level FWE p < 0.05, with TFCE FWE p < 0.05, clusters.
    pub contrasts: Vec<(String, usize, usize, usize)>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// One subject's four sessions × runs.
#[derive(Debug, Clone)]
pub(crate) struct SubjectData {
    pub(crate) label: String,
    /// (placebo session, naltrexone session) labels.
    pub(crate) sessions: [String; 2],
    /// Period of the placebo and naltrexone sessions.
    pub(crate) periods: [u8; 2],
    /// Entities of the participant-level runs `[arm][before, during]` (arm 0 placebo, 1
    /// naltrexone), found in OUTPUT_DIR by [`find_runs`]; empty until then.
    pub(crate) runs: Vec<[Entities; 2]>,
}

impl SubjectData {
    /// Path of one cell's template-space output (`desc`, extension).
    pub(crate) fn output(
        &self,
        out: &Path,
        tpl: &Template,
        arm: usize,
        time: usize,
        desc: Option<&str>,
        ext: &str,
    ) -> Result<PathBuf> {
        template_output(out, &self.runs[arm][time], tpl, desc, ext)
    }
}

/// Finds each subject's four runs among the participant-level outputs in `out` by the design's
/// run selectors (all of a run's entities are kept); subjects with a run missing are returned
/// with the reason.
pub(crate) fn find_runs(
    out: &Path,
    tpl: &Template,
    d: &StudyDesign,
    subjects: Vec<SubjectData>,
) -> Result<(Vec<SubjectData>, Vec<(String, String)>)> {
    let mut complete = Vec::with_capacity(subjects.len());
    let mut excluded = Vec::new();
    for mut s in subjects {
        let mut missing = Vec::new();
        let mut runs = Vec::new();
        for ses in &s.sessions {
            let mut pair = [Entities::new(), Entities::new()];
            for (t, sel) in [&d.before, &d.during].into_iter().enumerate() {
                match find_template_run(out, tpl, &s.label, Some(ses), sel)? {
                    Some(e) => pair[t] = e,
                    None => missing.push(format!(
                        "sub-{}_ses-{ses}_{sel}_space-{}_res-{}_cbf.nii.gz",
                        s.label, tpl.name, tpl.res
                    )),
                }
            }
            runs.push(pair);
        }
        if missing.is_empty() {
            s.runs = runs;
            complete.push(s);
        } else {
            excluded.push((
                s.label.clone(),
                format!(
                    "missing participant-level outputs in {}: {}",
                    out.display(),
                    missing.join(", ")
                ),
            ));
        }
    }
    Ok((complete, excluded))
}

/// The four cells of the crossover, in the order of [`CrossoverContrast::weights`]; the keys of
/// a contrast's weights in the workflow and in the `ContrastWeights` sidecar field.
pub const CELLS: [&str; 4] = [
    "placebo-before",
    "placebo-during",
    "naltrexone-before",
    "naltrexone-during",
];

/// One contrast of the crossover group level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupContrast {
    /// Name: the `contrast-<name>` entity of its outputs (letters and digits only).
    pub name: String,
    /// What it measures, for sidecars and reports.
    pub description: String,
    /// The weights of the four cells.
    pub contrast: CrossoverContrast,
    /// The tail tested.
    pub tail: Tail,
}

impl GroupContrast {
    /// The contrasts of the ketamine + naltrexone study: the ketamine effect under placebo,
    /// under naltrexone and pooled (one-sided, positive), and the interaction (two-sided).
    pub fn defaults() -> Vec<Self> {
        let c = |name: &str, description: &str, named: CrossoverContrast, tail| Self {
            name: name.into(),
            description: description.into(),
            contrast: CrossoverContrast::Weights(named.weights()),
            tail,
        };
        vec![
            c(
                "ketamineUnderPlacebo",
                "ketamine (during − before) under placebo",
                CrossoverContrast::KetamineUnderPlacebo,
                Tail::Positive,
            ),
            c(
                "ketamineUnderNaltrexone",
                "ketamine (during − before) under naltrexone",
                CrossoverContrast::KetamineUnderNaltrexone,
                Tail::Positive,
            ),
            c(
                "ketaminePooled",
                "ketamine (during − before), mean of both pre-treatments",
                CrossoverContrast::KetaminePooled,
                Tail::Positive,
            ),
            c(
                "interaction",
                "pre-treatment × time: ketamine effect under placebo − under naltrexone",
                CrossoverContrast::Interaction,
                Tail::TwoSided,
            ),
        ]
    }

    /// Why this contrast cannot be tested, if it cannot: a name that is not a BIDS label, or
    /// weights that are not a within-subject difference.
    pub fn problem(&self) -> Option<String> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Some(format!(
                "contrast name '{}' must be letters and digits only (it becomes the BIDS entity contrast-<name>)",
                self.name
            ));
        }
        self.contrast
            .validate()
            .err()
            .map(|e| format!("contrast {}: {e}", self.name))
    }

    /// Why this list cannot be tested, if it cannot: empty, a contrast with a
    /// [`problem`](Self::problem), or a name declared twice. The workflow's checks and the group
    /// level share it.
    pub fn list_problem(contrasts: &[Self]) -> Option<String> {
        if contrasts.is_empty() {
            return Some("no contrast to test".into());
        }
        for (k, c) in contrasts.iter().enumerate() {
            if let Some(why) = c.problem() {
                return Some(why);
            }
            if contrasts[..k].iter().any(|o| o.name == c.name) {
                return Some(format!("contrast {} is declared twice", c.name));
            }
        }
        None
    }

    /// Sidecar fields that let later steps (receptor maps, reports) rebuild the contrast.
    pub(crate) fn sidecar(&self) -> serde_json::Value {
        let w = self.contrast.weights();
        let weights: serde_json::Map<String, serde_json::Value> = CELLS
            .iter()
            .zip(w)
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({
            "ContrastDescription": self.description,
            "ContrastWeights": weights,
        })
    }
}

/// Refuses an empty list, duplicate names and contrasts that cannot be tested.
fn check_contrasts(contrasts: &[GroupContrast], out: &Path) -> Result<()> {
    match GroupContrast::list_problem(contrasts) {
        Some(message) => Err(meta_err(out, "contrasts", message)),
        None => Ok(()),
    }
}

/// Columns of `desc-contrasts_table.tsv` after `contrast`, `description` and `tail`: the weight
/// of each cell, in the order of [`CELLS`].
const WEIGHT_COLUMNS: [&str; 4] = [
    "placebo_before",
    "placebo_during",
    "naltrexone_before",
    "naltrexone_during",
];

fn tail_name(t: Tail) -> &'static str {
    match t {
        Tail::Positive => "positive",
        Tail::Negative => "negative",
        Tail::TwoSided => "two-sided",
    }
}

/// Writes `desc-contrasts_table.tsv`: the contrasts of this group run, in declared order.
fn write_contrast_table(
    w: &DerivativesWriter,
    contrasts: &[GroupContrast],
) -> Result<Vec<PathBuf>> {
    let rows = contrasts
        .iter()
        .map(|c| {
            let mut row = vec![
                c.name.clone(),
                c.description.clone(),
                tail_name(c.tail).to_string(),
            ];
            row.extend(c.contrast.weights().iter().map(|v| format!("{v}")));
            row
        })
        .collect();
    let mut cols = vec!["contrast", "description", "tail"];
    cols.extend(WEIGHT_COLUMNS);
    crate::group_tables::write_table(
        w,
        "contrasts",
        &cols,
        rows,
        json!({
            "Description": "the contrasts of the last group run, in declared order: each weighs the four cells (session by pre-treatment, scan before or during the drug); the weights sum to 0",
            "tail": {"Description": "alternative hypothesis of the permutation test", "Levels": {"positive": "contrast > 0", "negative": "contrast < 0", "two-sided": "contrast ≠ 0"}},
        }),
    )
}

/// The contrasts of the last crossover group run in `output_dir` (its
/// `desc-contrasts_table.tsv`), in declared order; empty when there is none. Maps of contrasts
/// an earlier run tested and the last one did not are left out.
pub fn written_contrasts(output_dir: &Path) -> Result<Vec<GroupContrast>> {
    let path = output_dir.join("desc-contrasts_table.tsv");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let t = Table::read_tsv(&path)?;
    let names = t.column("contrast")?;
    let descriptions = t.column("description")?;
    let tails = t.column("tail")?;
    let weights = WEIGHT_COLUMNS
        .iter()
        .map(|c| t.f64_column(c))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let row = i + 2;
        let tail = match tails[i] {
            "positive" => Tail::Positive,
            "negative" => Tail::Negative,
            "two-sided" => Tail::TwoSided,
            other => {
                return Err(meta_err(
                    &path,
                    "tail",
                    format!("row {row}: {other:?} is not positive, negative or two-sided"),
                ));
            }
        };
        let mut w = [0.0; 4];
        for (k, col) in weights.iter().enumerate() {
            w[k] = col[i].ok_or_else(|| {
                meta_err(
                    &path,
                    WEIGHT_COLUMNS[k],
                    format!("row {row}: missing weight"),
                )
            })?;
        }
        out.push(GroupContrast {
            name: name.to_string(),
            description: descriptions[i].to_string(),
            contrast: CrossoverContrast::Weights(w),
            tail,
        });
    }
    Ok(out)
}

fn meta_err(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::Metadata {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

/// Reads the crossover design of every subject from its `sessions.tsv`.
pub(crate) fn read_design(
    layout: &Layout,
    d: &StudyDesign,
) -> Result<(Vec<SubjectData>, Vec<(String, String)>)> {
    let mut subjects = Vec::new();
    let mut excluded = Vec::new();
    for sub in layout.subjects() {
        let path = layout
            .root()
            .join(format!("sub-{sub}/sub-{sub}_sessions.tsv"));
        let Some(t) = layout.sessions_table(&sub)? else {
            excluded.push((sub.clone(), "no sessions.tsv".into()));
            continue;
        };
        let ids = t.column("session_id")?;
        let pre = t.column(&d.pretreatment_column)?;
        let per = t.f64_column(&d.period_column)?;
        let mut ses = [None, None];
        let mut periods = [0u8; 2];
        for ((id, p), period) in ids.iter().zip(&pre).zip(&per) {
            let slot = if *p == d.placebo {
                0
            } else if *p == d.naltrexone {
                1
            } else if p.trim().is_empty() || p.trim() == "n/a" {
                return Err(meta_err(
                    &path,
                    &d.pretreatment_column,
                    format!(
                        "{} for {id}: every session of the crossover needs its pre-treatment ({:?} or {:?})",
                        if p.trim().is_empty() { "empty" } else { "n/a" },
                        d.placebo,
                        d.naltrexone
                    ),
                ));
            } else {
                return Err(meta_err(
                    &path,
                    &d.pretreatment_column,
                    format!("{p:?} is neither {:?} nor {:?}", d.placebo, d.naltrexone),
                ));
            };
            let period = period
                .ok_or_else(|| meta_err(&path, &d.period_column, format!("missing for {id}")))?;
            if period != 1.0 && period != 2.0 {
                return Err(meta_err(
                    &path,
                    &d.period_column,
                    format!("{period} for {id}: expected 1 or 2"),
                ));
            }
            ses[slot] = Some(id.trim_start_matches("ses-").to_string());
            periods[slot] = period as u8;
        }
        match ses {
            [Some(p), Some(n)] => subjects.push(SubjectData {
                label: sub,
                sessions: [p, n],
                periods,
                runs: Vec::new(),
            }),
            _ => excluded.push((sub, "needs one placebo and one naltrexone session".into())),
        }
    }
    Ok((subjects, excluded))
}

/// Checks the crossover design against the dataset's `sessions.tsv` files before any work is
/// done (the group level reads them the same way): every session's pre-treatment is one of the
/// design's two values and its period is 1 or 2. Returns the subjects with one session of each
/// pre-treatment and the subjects left out with the reason.
pub fn design_preflight(
    layout: &Layout,
    d: &StudyDesign,
) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let (subjects, excluded) = read_design(layout, d)?;
    Ok((subjects.into_iter().map(|s| s.label).collect(), excluded))
}

/// Runs the group level.
pub fn group(opts: &GroupOptions) -> Result<GroupSummary> {
    check_contrasts(&opts.contrasts, &opts.output_dir)?;
    if let Some(why) = GroupCovariate::list_problem(&opts.covariates) {
        return Err(meta_err(&opts.output_dir, "covariates", why));
    }
    if let Some(why) = GroupOptions::rois_problem(&opts.rois, &opts.baseline_roi, None) {
        return Err(meta_err(&opts.output_dir, "rois", why));
    }
    let layout = Layout::index(&opts.bids_dir)?;
    let (subjects, mut excluded) = read_design(&layout, &opts.design)?;
    let tpl = &opts.template;
    let d = &opts.design;
    // keep subjects whose four template-space maps exist
    let (complete, missing) = find_runs(&opts.output_dir, tpl, d, subjects)?;
    excluded.extend(missing);
    let subjects = complete;
    for (s, why) in &excluded {
        tracing::warn!("sub-{s} left out of the group analysis: {why}");
    }
    if subjects.len() < 3 {
        return Err(Error::Metadata {
            path: opts.output_dir.clone(),
            field: "participants".into(),
            message: format!(
                "{} complete subjects; the group level needs at least 3 (run the participant level first, with --template {})",
                subjects.len(),
                tpl.name
            ),
        });
    }
    let n = subjects.len();
    tracing::info!(
        "group level: {n} subjects, {} permutations",
        opts.n_permutations
    );
    let labels: Vec<&str> = subjects.iter().map(|s| s.label.as_str()).collect();
    let covariates = CovariateValues::read(&opts.covariates, &layout, &labels, |i| {
        crate::group_tables::global_cells(opts, &subjects[i]).map(|c| c.to_vec())
    })?;
    // load and smooth maps: index [arm][time] → (n, V) after masking
    let mut raw: Vec<Vec<Volume>> = vec![Vec::new(); 4];
    for s in &subjects {
        for k in 0..2 {
            for t in 0..2 {
                let p = s.output(&opts.output_dir, tpl, k, t, None, ".nii.gz")?;
                let v = cbflow_image::read(&p)?;
                if v.grid().dims != tpl.grid.dims {
                    return Err(meta_err(&p, "dim", format!("not on the {} grid", tpl.name)));
                }
                raw[2 * k + t].push(v);
            }
        }
    }
    let MaskedMaps {
        ijk,
        geometry,
        data,
    } = masked_maps(tpl, &raw, opts.smoothing_fwhm_mm, &opts.output_dir)?;
    let maps = CrossoverMaps {
        placebo_before: data[0].view(),
        placebo_during: data[1].view(),
        naltrexone_before: data[2].view(),
        naltrexone_during: data[3].view(),
    };
    let sequence: Vec<cbflow_stats::Sequence> = subjects
        .iter()
        .map(|s| {
            if s.periods[0] == 1 {
                cbflow_stats::Sequence::PlaceboFirst
            } else {
                cbflow_stats::Sequence::NaltrexoneFirst
            }
        })
        .collect();

    // everything goes to a staging directory first: a failure leaves OUTPUT_DIR as it was
    let staging = crate::staging::Staging::new(&opts.output_dir)?;
    let writer = DerivativesWriter::create(
        &staging.dir,
        crate::generated_by(),
        &[crate::source_dataset(&opts.bids_dir)],
    )?;
    let w = &writer;
    let mut files = Vec::new();
    let mut summary = Vec::new();
    let to_volume = |vals: &[f64]| unmask(tpl, &ijk, vals);
    let mut meta = ContrastMeta {
        smoothing_fwhm_mm: opts.smoothing_fwhm_mm,
        extra: json!({}),
        inference: format!(
            "sign-flipping of within-subject difference maps, sequence (order of pre-treatments){} as nuisance regressors by Freedman-Lane; FWE from the maximum statistic over the mask (Nichols & Holmes 2002; Winkler et al. 2014)",
            opts.covariates
                .iter()
                .map(|c| format!(", {}", c.name()))
                .collect::<String>()
        ),
        sources: format!(
            "participant-level *_space-<template>_cbf.nii.gz, {} (before) and {} (during) of the placebo and naltrexone sessions",
            d.before, d.during
        ),
    };
    for gc in &opts.contrasts {
        let (name, tail) = (gc.name.as_str(), gc.tail);
        meta.extra = gc.sidecar();
        let covs = covariates.for_contrast(&gc.contrast.weights());
        if !covs.is_empty() {
            // centred nuisance regressors of the difference maps, as in the inference text
            meta.extra["Covariates"] = json!(covs.iter().map(|c| &c.name).collect::<Vec<_>>());
        }
        let popts = PermutationOptions {
            n_permutations: opts.n_permutations,
            seed: opts.seed,
            tail,
            tfce: Some(opts.tfce),
            cluster_threshold: Some(opts.cluster_threshold),
            ..PermutationOptions::default()
        };
        let t0 = std::time::Instant::now();
        let (_diff, res) = cbflow_stats::crossover_test(
            &maps,
            gc.contrast,
            Some(&sequence),
            &covs,
            Some(&geometry),
            &popts,
        )
        .map_err(|e| stats_err(&opts.output_dir, e))?;
        tracing::info!(
            "contrast {name}: {} shuffles{} in {:.1} s",
            res.n_shuffles,
            if res.exhaustive { " (exhaustive)" } else { "" },
            t0.elapsed().as_secs_f64()
        );
        let (n_voxel, n_tfce, n_cluster) =
            write_contrast(w, &mut files, tpl, name, &res, &popts, &to_volume, &meta)?;
        summary.push((name.to_string(), n_voxel, n_tfce, n_cluster));
    }
    files.extend(write_contrast_table(w, &opts.contrasts)?);
    crate::group_tables::write_tables(w, &layout, opts, &subjects, &covariates)?;
    drop(files);
    let files = staging.commit()?;
    Ok(GroupSummary {
        subjects: subjects.iter().map(|s| s.label.clone()).collect(),
        excluded,
        contrasts: summary,
        files,
    })
}

/// Subjects' template-space maps of each condition, restricted to the analysis mask.
pub(crate) struct MaskedMaps {
    /// Voxel indices of the mask, in memory order.
    pub(crate) ijk: Vec<[usize; 3]>,
    /// Mask geometry for TFCE and clusters.
    pub(crate) geometry: MaskGeometry,
    /// One `(subjects, voxels)` matrix per condition, smoothed inside the mask.
    pub(crate) data: Vec<Array2<f32>>,
}

/// A template-grid volume with `vals` at the mask voxels `ijk` and 0 elsewhere.
pub(crate) fn unmask(tpl: &Template, ijk: &[[usize; 3]], vals: &[f64]) -> Result<Volume> {
    let d = tpl.grid.dims;
    let mut a = Array3::<f32>::zeros((d[0], d[1], d[2]));
    for (v, p) in vals.iter().zip(ijk) {
        a[*p] = *v as f32;
    }
    Ok(Volume::new(a.into_dyn(), tpl.grid.affine)?)
}

/// The analysis mask (template brain ∧ covered by every map) and the masked, smoothed maps;
/// `raw[condition][subject]`.
pub(crate) fn masked_maps(
    tpl: &Template,
    raw: &[Vec<Volume>],
    smoothing_fwhm_mm: f64,
    output_dir: &Path,
) -> Result<MaskedMaps> {
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let n = raw.first().map_or(0, Vec::len);
    // analysis mask: brain ∧ every map covered
    let mut mask = brain.clone();
    for group in raw {
        for v in group {
            ndarray::Zip::from(&mut mask)
                .and(v.frame(0))
                .for_each(|m, &x| *m &= x.is_finite() && x != 0.0);
        }
    }
    let n_vox = mask.iter().filter(|&&m| m).count();
    if n_vox < 100 {
        return Err(meta_err(
            output_dir,
            "mask",
            format!("only {n_vox} voxels are covered by every subject's CBF map"),
        ));
    }
    let mut data: Vec<Array2<f32>> = Vec::with_capacity(4);
    for group in raw {
        let mut a = Array2::<f32>::zeros((n, n_vox));
        for (i, v) in group.iter().enumerate() {
            let sm = if smoothing_fwhm_mm > 0.0 {
                cbflow_image::smooth_fwhm_masked(v, &mask, smoothing_fwhm_mm)?
            } else {
                v.clone()
            };
            let vals: Vec<f32> = sm
                .frame(0)
                .iter()
                .zip(mask.iter())
                .filter(|(_, m)| **m)
                .map(|(x, _)| *x)
                .collect();
            a.row_mut(i).assign(&ndarray::Array1::from(vals));
        }
        data.push(a);
    }
    let ijk: Vec<[usize; 3]> = mask
        .indexed_iter()
        .filter(|(_, m)| **m)
        .map(|((i, j, k), _)| [i, j, k])
        .collect();
    let geometry =
        MaskGeometry::from_ijk(tpl.grid.dims, ijk.clone()).map_err(|e| stats_err(output_dir, e))?;
    Ok(MaskedMaps {
        ijk,
        geometry,
        data,
    })
}

fn stats_err(path: &Path, e: cbflow_stats::StatsError) -> Error {
    Error::Step {
        path: path.to_path_buf(),
        step: "group statistics",
        message: e.to_string(),
    }
}

/// What the sidecars of a contrast's maps say about how they were made.
pub(crate) struct ContrastMeta {
    /// Smoothing before the test (FWHM, mm).
    pub(crate) smoothing_fwhm_mm: f64,
    /// The inference scheme, with references.
    pub(crate) inference: String,
    /// The input maps.
    pub(crate) sources: String,
    /// Further sidecar fields of this contrast (an object), e.g. its weights.
    pub(crate) extra: serde_json::Value,
}

/// Writes a contrast's t, effect, TFCE and −log10 p maps and its cluster table; returns the
/// number of voxel-FWE and TFCE-FWE significant voxels and of FWE-significant clusters.
pub(crate) fn write_contrast(
    w: &DerivativesWriter,
    files: &mut Vec<PathBuf>,
    tpl: &Template,
    name: &str,
    res: &PermutationResult,
    popts: &PermutationOptions,
    to_volume: &dyn Fn(&[f64]) -> Result<Volume>,
    meta: &ContrastMeta,
) -> Result<(usize, usize, usize)> {
    let base = || {
        DerivativeName::group()
            .set("space", &tpl.name)
            .set("res", &tpl.res)
            .set("contrast", name)
    };
    let common = json!({
        "Contrast": name,
        "Tail": format!("{:?}", res.tail),
        "Permutations": res.n_shuffles,
        "Exhaustive": res.exhaustive,
        "Seed": popts.seed,
        "Inference": meta.inference,
        "SmoothingFWHM": meta.smoothing_fwhm_mm,
        "TFCE": popts.tfce,
        "ClusterFormingThreshold": popts.cluster_threshold,
        "DegreesOfFreedom": res.df,
        "Sources": meta.sources,
    });
    let mut common = common;
    if let (Some(c), Some(e)) = (common.as_object_mut(), meta.extra.as_object()) {
        c.extend(e.clone());
    }
    let mut put = |n: DerivativeName, vals: &[f64], desc: &str, units: &str| -> Result<()> {
        let mut side = common.clone();
        side["Description"] = json!(desc);
        side["Units"] = json!(units);
        let rel = n.rel_path()?;
        let mut v = to_volume(vals)?;
        if n.entities().get("stat") == Some("t") && res.df.is_finite() {
            // NIFTI_INTENT_TTEST with its degrees of freedom: viewers (FSLeyes, nilearn's
            // thresholding by p) can turn it into p values
            v.info.intent_code = 3;
            v.info.intent_p = [res.df, 0.0, 0.0];
            v.info.intent_name = "t".into();
        }
        files.push(w.write_nifti(&rel, &v, DataType::Float32, &side)?);
        Ok(())
    };
    let logp = "-log10(p): 1.3 is p = 0.05, larger is more significant";
    put(
        base()
            .set("stat", "t")
            .suffix("statmap")
            .extension(".nii.gz"),
        res.t.as_slice().expect("contiguous"),
        "t statistic",
        "t",
    )?;
    put(
        base()
            .set("stat", "effect")
            .suffix("statmap")
            .extension(".nii.gz"),
        res.effect.as_slice().expect("contiguous"),
        "mean CBF difference",
        "mL/100g/min",
    )?;
    let lp = |p: &ndarray::Array1<f64>| cbflow_stats::neg_log10(p).to_vec();
    put(
        base()
            .set("stat", "logp")
            .set("desc", "uncorrected")
            .suffix("statmap")
            .extension(".nii.gz"),
        &lp(&res.p_uncorrected),
        &format!("uncorrected permutation p; {logp}"),
        "-log10(p)",
    )?;
    put(
        base()
            .set("stat", "logp")
            .set("desc", "voxelFWE")
            .suffix("statmap")
            .extension(".nii.gz"),
        &lp(&res.p_fwe),
        &format!("voxel-level FWE p (max-T); {logp}"),
        "-log10(p)",
    )?;
    let n_voxel = res.p_fwe.iter().filter(|&&p| p < 0.05).count();
    let mut n_tfce = 0;
    if let Some(t) = &res.tfce {
        put(
            base()
                .set("stat", "tfce")
                .suffix("statmap")
                .extension(".nii.gz"),
            t.values.as_slice().expect("contiguous"),
            &popts.tfce.map_or_else(String::new, |p| {
                format!(
                    "TFCE (E = {}, H = {}, {} connectivity, dh {}; Smith & Nichols 2009)",
                    p.e,
                    p.h,
                    match p.connectivity {
                        cbflow_stats::Connectivity::Faces6 => "6",
                        cbflow_stats::Connectivity::Edges18 => "18",
                        cbflow_stats::Connectivity::Corners26 => "26",
                    },
                    match p.step {
                        cbflow_stats::TfceStep::Fixed(dh) => format!("= {dh}"),
                        cbflow_stats::TfceStep::ObservedMaxOver(n) =>
                            format!("= the observed maximum / {n}"),
                    }
                )
            }),
            "arbitrary",
        )?;
        put(
            base()
                .set("stat", "logp")
                .set("desc", "tfceUncorrected")
                .suffix("statmap")
                .extension(".nii.gz"),
            &lp(&t.p_uncorrected),
            &format!("uncorrected permutation p of TFCE; {logp}"),
            "-log10(p)",
        )?;
        put(
            base()
                .set("stat", "logp")
                .set("desc", "tfceFWE")
                .suffix("statmap")
                .extension(".nii.gz"),
            &lp(&t.p_fwe),
            &format!("TFCE FWE p (max-TFCE); {logp}"),
            "-log10(p)",
        )?;
        n_tfce = t.p_fwe.iter().filter(|&&p| p < 0.05).count();
    }
    let mut n_cluster = 0;
    if let Some(c) = &res.clusters {
        put(
            base()
                .set("stat", "logp")
                .set("desc", "clusterFWE")
                .suffix("statmap")
                .extension(".nii.gz"),
            &lp(&c.p_fwe),
            &format!("cluster-extent FWE p; {logp}"),
            "-log10(p)",
        )?;
        n_cluster = c.clusters.iter().filter(|c| c.p_fwe < 0.05).count();
        let labels = tpl.labels.frame(0);
        let rows = c
            .clusters
            .iter()
            .map(|cl| {
                let w = tpl.grid.voxel_to_world(cl.peak_ijk.map(|x| x as f64));
                let l = labels[cl.peak_ijk].round() as i32;
                vec![
                    cl.label.to_string(),
                    if cl.sign > 0 {
                        "positive".into()
                    } else {
                        "negative".into()
                    },
                    cl.size.to_string(),
                    format!("{:.3}", cl.peak_t),
                    format!("{:.1}", w[0]),
                    format!("{:.1}", w[1]),
                    format!("{:.1}", w[2]),
                    tpl.label_names
                        .get(&l)
                        .cloned()
                        .unwrap_or_else(|| if l == 0 { "n/a".into() } else { l.to_string() }),
                    format!("{:.5}", cl.p_fwe),
                ]
            })
            .collect();
        let cols = [
            "cluster",
            "sign",
            "size_voxels",
            "peak_t",
            "peak_x_mm",
            "peak_y_mm",
            "peak_z_mm",
            "peak_label",
            "p_fwe",
        ];
        let rel = base()
            .set("desc", "clusters")
            .suffix("table")
            .extension(".tsv")
            .rel_path()?;
        files.push(w.write_tsv(
            &rel,
            &Table::new(cols.iter().map(|s| s.to_string()).collect(), rows)?,
        )?);
        let mut side = common.clone();
        side["Description"] = json!(format!(
            "clusters of t beyond {} (26-connectivity); peak coordinates in {} world mm; peak_label from the template atlas (AAL3)",
            c.threshold, tpl.name
        ));
        files.push(w.write_json(&DerivativesWriter::sidecar_path(&rel), &side)?);
    }
    Ok((n_voxel, n_tfce, n_cluster))
}

/// Placebo/naltrexone arms as the LMM codes them.
pub(crate) fn arm(k: usize) -> Treatment {
    if k == 0 {
        Treatment::Placebo
    } else {
        Treatment::Naltrexone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receptors::mor_tests::write_study;

    /// Six subjects' template-space maps (the placebo ΔCBF follows the grey matter) and ROI
    /// tables whose global CBF varies by subject, session and run.
    fn crossover_fixture(tmp: &Path) -> (PathBuf, PathBuf, Template) {
        let tpl = Template::phantom();
        let (bids, out) = (tmp.join("bids"), tmp.join("out"));
        let effect = tpl.gm.frame(0).to_owned();
        write_study(&bids, &out, &tpl, &effect, 6, 3.0, 5);
        // the participant level's ROI tables, which the group tables read
        for s in 1..=6 {
            for ses in ["1", "2"] {
                for run in ["1", "2"] {
                    let p = crate::outputs::template_output_run(
                        &out,
                        &format!("{s:02}"),
                        ses,
                        run,
                        &tpl,
                        Some("roi"),
                        ".tsv",
                    )
                    .unwrap();
                    let v = 40.0 + s as f64 + if run == "2" { 3.0 } else { 0.0 };
                    let ses_n: usize = ses.parse().unwrap();
                    let wobble =
                        ((s * 7 + ses_n * 3 + (run == "2") as usize * 11) % 5) as f64 * 0.7;
                    let rows: String = ["ACC_sub", "ACC_pre", "ACC_sup", "grey_matter", "global"]
                        .iter()
                        .enumerate()
                        .map(|(k, r)| {
                            // ACC_sub stays the same in both sessions before ketamine; the
                            // others vary by subject, session and run
                            let g = match *r {
                                "global" => wobble,
                                "ACC_sub" => 0.0,
                                _ => {
                                    ((s * (k + 3) + ses_n * 5 + (run == "2") as usize * (k + 7))
                                        % 7) as f64
                                        * 0.3
                                }
                            };
                            format!("{r}\t{}\n", v + k as f64 + g)
                        })
                        .collect();
                    std::fs::write(&p, format!("region\tmean_cbf\n{rows}")).unwrap();
                }
            }
        }
        // write_study's own group map is not a group-level output
        for f in std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()) {
            if f.file_name().to_string_lossy().contains("_statmap") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        (bids, out, tpl)
    }

    /// Options for the fixture: the first default contrast, 20 permutations, no smoothing, the
    /// default regions, no covariates; tests change what they test.
    fn fixture_options(bids: &Path, out: &Path, tpl: &Template) -> GroupOptions {
        GroupOptions {
            bids_dir: bids.to_path_buf(),
            output_dir: out.to_path_buf(),
            template: tpl.clone(),
            design: StudyDesign::default(),
            n_permutations: 20,
            seed: 3,
            smoothing_fwhm_mm: 0.0,
            cluster_threshold: 3.1,
            tfce: Default::default(),
            correlation_ci: Default::default(),
            contrasts: vec![GroupContrast::defaults().remove(0)],
            rois: GroupOptions::default_rois(),
            baseline_roi: "ACC_sub".into(),
            covariates: vec![],
        }
    }

    /// The sidecar of the ketamineUnderPlacebo map of statistic `stat` in `out`.
    fn placebo_sidecar(out: &Path, stat: &str) -> serde_json::Value {
        serde_json::Value::Object(
            cbflow_bids::read_json_object(&out.join(format!(
                "space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-{stat}_statmap.json"
            )))
            .unwrap(),
        )
    }

    /// The entries of `dir` (to show that a refused run wrote nothing).
    fn listing(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    /// OLS t of the first column's coefficient, by the normal equations (naive reference).
    fn naive_t(x: &[Vec<f64>], y: &[f64]) -> f64 {
        let (n, p) = (y.len(), x.len());
        let xm = nalgebra::DMatrix::from_fn(n, p, |i, j| x[j][i]);
        let yv = nalgebra::DVector::from_column_slice(y);
        let inv = (xm.transpose() * &xm).try_inverse().unwrap();
        let b = &inv * xm.transpose() * &yv;
        let r = &yv - &xm * &b;
        let s2 = r.dot(&r) / (n - p) as f64;
        b[0] / (s2 * inv[(0, 0)]).sqrt()
    }

    fn centred(v: Vec<f64>) -> Vec<f64> {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.into_iter().map(|x| x - m).collect()
    }

    /// Declared covariates: the change of global CBF under the contrast's weights (uncentred)
    /// and a participants.tsv column (centred) enter the voxelwise GLM and the ROI tests (t
    /// equal to a naive OLS); a two-level column is coded 0/1; missing or unusable columns are
    /// refused by name before anything is written.
    #[test]
    fn covariates_enter_the_glm_and_the_roi_tests() {
        let tmp = tempfile::tempdir().unwrap();
        let (bids, out, tpl) = crossover_fixture(tmp.path());
        let ages = [23.0, 41.0, 35.0, 58.0, 29.0, 47.0];
        let sexes = ["F", "M", "M", "F", "F", "M"];
        let part: String = (0..6)
            .map(|s| {
                format!(
                    "sub-{:02}\t{}\t{}\t{}\n",
                    s + 1,
                    ages[s],
                    sexes[s],
                    ["a", "b", "c"][s % 3]
                )
            })
            .collect();
        std::fs::write(
            bids.join("participants.tsv"),
            format!("participant_id\tage\tsex\tsite\n{part}"),
        )
        .unwrap();
        let opts = GroupOptions {
            n_permutations: 64,
            covariates: vec![GroupCovariate::GlobalCbf, GroupCovariate::parse("age")],
            ..fixture_options(&bids, &out, &tpl)
        };
        // refused by name, before anything is written
        let before = listing(&out);
        for (covs, expect) in [
            (vec!["weight"], "weight"),
            (vec!["site"], "two levels"),
            (vec!["age", "age"], "twice"),
        ] {
            let o = GroupOptions {
                covariates: covs.iter().map(|c| GroupCovariate::parse(c)).collect(),
                ..opts.clone()
            };
            let e = group(&o).unwrap_err().to_string();
            assert!(e.contains(expect), "{e}");
        }
        assert_eq!(before, listing(&out));

        group(&opts).unwrap();
        // the naive design: intercept, centred sequence, Δglobal and age
        let roi = |sub: usize, ses: usize, run: &str, region: &str| -> f64 {
            let p = crate::outputs::template_output_run(
                &out,
                &format!("{sub:02}"),
                &ses.to_string(),
                run,
                &tpl,
                Some("roi"),
                ".tsv",
            )
            .unwrap();
            let t = std::fs::read_to_string(p).unwrap();
            t.lines()
                .find_map(|l| l.strip_prefix(&format!("{region}\t")))
                .unwrap()
                .parse()
                .unwrap()
        };
        let placebo_ses = |sub: usize| if sub % 2 == 1 { 1 } else { 2 };
        let dglobal: Vec<f64> = (1..=6)
            .map(|s| roi(s, placebo_ses(s), "2", "global") - roi(s, placebo_ses(s), "1", "global"))
            .collect();
        let seq = centred((1..=6).map(|s| (s % 2 == 0) as u8 as f64).collect());
        // global CBF enters uncentred: the contrast at no change of global CBF
        let x = vec![vec![1.0; 6], seq, dglobal.clone(), centred(ages.to_vec())];
        let read = |ses: usize, sub: usize, run: &str| {
            let p = crate::outputs::template_output_run(
                &out,
                &format!("{sub:02}"),
                &ses.to_string(),
                run,
                &tpl,
                None,
                ".nii.gz",
            )
            .unwrap();
            cbflow_image::read(&p).unwrap().frame(0).mapv(f64::from)
        };
        let diffs: Vec<_> = (1..=6)
            .map(|s| read(placebo_ses(s), s, "2") - read(placebo_ses(s), s, "1"))
            .collect();
        let t = cbflow_image::read(
            &out.join("space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-t_statmap.nii.gz"),
        )
        .unwrap();
        let mut n = 0;
        for (idx, &tv) in t.frame(0).indexed_iter() {
            if tv != 0.0 && n < 200 && idx.0 % 3 == 0 {
                let y: Vec<f64> = diffs.iter().map(|d| d[idx]).collect();
                let naive = naive_t(&x, &y);
                assert!(
                    (f64::from(tv) - naive).abs() < 1e-3 * naive.abs().max(1.0),
                    "{tv} vs {naive}"
                );
                n += 1;
            }
        }
        assert_eq!(n, 200);
        let side = placebo_sidecar(&out, "t");
        assert_eq!(side["Covariates"], json!(["global-cbf", "age"]));
        // the header says t with 6 subjects − 4 columns of the test's own design (intercept,
        // sequence, Δglobal, age) = 2 degrees of freedom
        let df = (x[0].len() - x.len()) as f64;
        assert_eq!(df, 2.0);
        assert_eq!(t.info.intent_code, 3);
        assert_eq!(t.info.intent_p[0], df);
        assert_eq!(side["DegreesOfFreedom"], json!(df));
        // the ROI test: intercept, Δglobal and age (no sequence)
        let y: Vec<f64> = (1..=6)
            .map(|s| {
                roi(s, placebo_ses(s), "2", "ACC_pre") - roi(s, placebo_ses(s), "1", "ACC_pre")
            })
            .collect();
        let naive = naive_t(&[vec![1.0; 6], dglobal, centred(ages.to_vec())], &y);
        let table = std::fs::read_to_string(out.join("desc-roiTtests_table.tsv")).unwrap();
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with("ACC_pre\tketamineUnderPlacebo\t"))
            .unwrap()
            .split('\t')
            .collect();
        let t_roi: f64 = row[6].parse().unwrap();
        assert!(
            (t_roi - naive).abs() < 1e-4 * naive.abs().max(1.0),
            "{t_roi} vs {naive}"
        );
        assert_eq!(row[7], "3.00000");
        // a two-level column is coded 0/1, named after the level coded 1
        let o = GroupOptions {
            covariates: vec![GroupCovariate::parse("sex")],
            ..opts.clone()
        };
        group(&o).unwrap();
        let side = placebo_sidecar(&out, "t");
        assert_eq!(side["Covariates"], json!(["sex=M"]));
    }

    /// Declared TFCE settings reach the maps: the TFCE map equals a direct TFCE of the written
    /// t map with those settings, and the sidecar records them.
    #[test]
    fn tfce_settings_reach_the_maps() {
        let tmp = tempfile::tempdir().unwrap();
        let (bids, out, tpl) = crossover_fixture(tmp.path());
        let tfce = TfceParams {
            e: 0.6,
            h: 1.5,
            step: cbflow_stats::TfceStep::Fixed(0.25),
            connectivity: cbflow_stats::Connectivity::Faces6,
        };
        let opts = GroupOptions {
            smoothing_fwhm_mm: 4.0,
            tfce,
            ..fixture_options(&bids, &out, &tpl)
        };
        group(&opts).unwrap();
        let map = |stat: &str| {
            cbflow_image::read(&out.join(format!(
                "space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-{stat}_statmap.nii.gz"
            )))
            .unwrap()
            .frame(0)
            .to_owned()
        };
        let (t, enhanced) = (map("t"), map("tfce"));
        let dims = tpl.grid.dims;
        let ijk: Vec<[usize; 3]> = t
            .indexed_iter()
            .filter(|(_, v)| **v != 0.0)
            .map(|((i, j, k), _)| [i, j, k])
            .collect();
        let geom = cbflow_stats::MaskGeometry::from_ijk(dims, ijk).unwrap();
        let vals: Vec<f64> = geom
            .ijk()
            .iter()
            .map(|&p| f64::from(t[p]).max(0.0))
            .collect();
        let direct = cbflow_stats::tfce(
            &vals,
            &geom.neighbours(cbflow_stats::Connectivity::Faces6),
            0.6,
            1.5,
            0.25,
        )
        .unwrap();
        let mut positive = 0;
        for (p, d) in geom.ijk().iter().zip(&direct) {
            let got = f64::from(enhanced[*p]);
            assert!(
                (got - d).abs() <= 1e-3 * d.abs().max(1.0),
                "{p:?}: {got} vs {d}"
            );
            positive += (*d > 0.0) as usize;
        }
        assert!(positive > 100, "{positive} enhanced voxels");
        let side = placebo_sidecar(&out, "tfce");
        assert_eq!(side["TFCE"], serde_json::to_value(tfce).unwrap(), "{side}");
        assert_eq!(
            side["Description"],
            "TFCE (E = 0.6, H = 1.5, 6 connectivity, dh = 0.25; Smith & Nichols 2009)"
        );
    }

    /// Bootstrap CIs of the brain–behaviour correlations: each row's interval is the percentile
    /// bootstrap of its own data (not the Fisher interval), the sidecar says so, and a rerun
    /// gives the same bytes.
    #[test]
    fn bootstrap_correlation_cis_are_declared_and_reproducible() {
        let tmp = tempfile::tempdir().unwrap();
        let (bids, out, tpl) = crossover_fixture(tmp.path());
        std::fs::create_dir_all(bids.join("phenotype")).unwrap();
        let rows: String = (1..=6)
            .flat_map(|s| {
                [1, 2].map(|ses| format!("sub-{s:02}\tses-{ses}\t{}\n", (s * 7 + ses * 3) % 11))
            })
            .collect();
        std::fs::write(
            bids.join("phenotype/infusion.tsv"),
            format!("participant_id\tsession_id\tcadss\n{rows}"),
        )
        .unwrap();
        let opts = GroupOptions {
            correlation_ci: CorrelationCi::Bootstrap { samples: 2000 },
            rois: vec!["ACC_pre".into()],
            ..fixture_options(&bids, &out, &tpl)
        };
        group(&opts).unwrap();
        let path = out.join("desc-brainBehaviour_table.tsv");
        let boot = std::fs::read_to_string(&path).unwrap();
        let side = std::fs::read_to_string(out.join("desc-brainBehaviour_table.json")).unwrap();
        assert!(
            side.contains("percentile bootstrap over subjects, 2000 resamples"),
            "{side}"
        );
        group(&opts).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), boot);
        group(&GroupOptions {
            correlation_ci: CorrelationCi::FisherZ,
            ..opts.clone()
        })
        .unwrap();
        let fisher = std::fs::read_to_string(&path).unwrap();
        // the ACC_pre / cadss rows: same r and p, other intervals that hold r
        let rows = |t: &str| -> Vec<Vec<f64>> {
            t.lines()
                .filter(|l| l.contains("\tACC_pre\tcadss\t") && !l.contains("difference"))
                .map(|l| l.split('\t').skip(6).map(|v| v.parse().unwrap()).collect())
                .collect()
        };
        let (b, fz) = (rows(&boot), rows(&fisher));
        assert_eq!(b.len(), 4, "{boot}");
        for (b, fz) in b.iter().zip(&fz) {
            // columns: r, ci95_low, ci95_high, p
            assert_eq!((b[0], b[3]), (fz[0], fz[3]));
            assert!(b[1] <= b[0] && b[0] <= b[2], "{b:?}");
            assert!(
                (b[1] - fz[1]).abs() > 1e-4 || (b[2] - fz[2]).abs() > 1e-4,
                "{b:?} {fz:?}"
            );
        }
    }

    /// Declared contrasts: each is tested and written with the weights in its sidecar, read
    /// back in declared order; a contrast beyond the study's four (naltrexone's effect on
    /// baseline CBF) has the effect map of the naive mean difference; bad ones are refused.
    #[test]
    fn declared_contrasts_are_tested_written_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (bids, out, tpl) = crossover_fixture(tmp.path());
        let nal_baseline = GroupContrast {
            name: "naltrexoneBaseline".into(),
            description: "naltrexone − placebo, before ketamine".into(),
            contrast: CrossoverContrast::Weights([-1.0, 0.0, 1.0, 0.0]),
            tail: Tail::TwoSided,
        };
        let mut opts = GroupOptions {
            n_permutations: 100,
            contrasts: vec![nal_baseline.clone(), GroupContrast::defaults().remove(0)],
            ..fixture_options(&bids, &out, &tpl)
        };
        // refused before anything is written: weights that do not sum to 0, a name twice
        let before = listing(&out);
        for bad in [
            vec![GroupContrast {
                contrast: CrossoverContrast::Weights([0.0, 1.0, 0.0, 0.0]),
                ..nal_baseline.clone()
            }],
            vec![nal_baseline.clone(), nal_baseline.clone()],
        ] {
            let o = GroupOptions {
                contrasts: bad,
                ..opts.clone()
            };
            let e = group(&o).unwrap_err().to_string();
            assert!(
                e.contains("contrasts") && e.contains("naltrexoneBaseline"),
                "{e}"
            );
        }
        assert_eq!(before, listing(&out));

        let s = group(&opts).unwrap();
        let names: Vec<&str> = s.contrasts.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["naltrexoneBaseline", "ketamineUnderPlacebo"]);
        // read back from the sidecars, in declared order
        assert_eq!(written_contrasts(&out).unwrap(), opts.contrasts);
        // the effect map is the mean over subjects of naltrexone-before − placebo-before (no
        // smoothing; 3 subjects per sequence, so the centred sequence regressor leaves it)
        let read = |ses: usize, sub: usize| {
            let p = crate::outputs::template_output_run(
                &out,
                &format!("{sub:02}"),
                &ses.to_string(),
                "1",
                &tpl,
                None,
                ".nii.gz",
            )
            .unwrap();
            cbflow_image::read(&p).unwrap().frame(0).mapv(f64::from)
        };
        let mut naive = ndarray::Array3::<f64>::zeros(tpl.grid.dims);
        for sub in 1..=6 {
            // odd subjects (index 0, 2, 4): placebo in ses-1
            let (pl, nl) = if sub % 2 == 1 { (1, 2) } else { (2, 1) };
            naive = naive + (read(nl, sub) - read(pl, sub)) / 6.0;
        }
        let eff = cbflow_image::read(
            &out.join("space-phantom_res-3_contrast-naltrexoneBaseline_stat-effect_statmap.nii.gz"),
        )
        .unwrap();
        let mut n = 0;
        for (e, v) in eff.frame(0).iter().zip(naive.iter()) {
            if *e != 0.0 {
                assert!((f64::from(*e) - v).abs() < 1e-3, "{e} vs {v}");
                n += 1;
            }
        }
        assert!(n > 1000, "{n} voxels compared");
        // its ROI test: ACC_sub is the same in both sessions before ketamine
        let t = std::fs::read_to_string(out.join("desc-roiTtests_table.tsv")).unwrap();
        let row = t
            .lines()
            .find(|l| l.starts_with("ACC_sub\tnaltrexoneBaseline\t"))
            .unwrap_or_else(|| panic!("no ROI row:\n{t}"));
        assert_eq!(row.split('\t').nth(3), Some("0.00000"), "{row}");
        // declared regions: one of them, another baseline region
        let o = GroupOptions {
            rois: vec!["ACC_pre".into()],
            baseline_roi: "ACC_sup".into(),
            ..opts.clone()
        };
        group(&o).unwrap();
        let t = std::fs::read_to_string(out.join("desc-roiTtests_table.tsv")).unwrap();
        let regions: std::collections::BTreeSet<&str> = t
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert_eq!(
            regions.into_iter().collect::<Vec<_>>(),
            ["ACC_pre", "global", "grey_matter"]
        );
        // a later run with fewer contrasts: the earlier maps stay on disk, but the contrasts of
        // the last run are what later steps and the report see
        let o = GroupOptions {
            contrasts: vec![nal_baseline.clone()],
            ..opts.clone()
        };
        group(&o).unwrap();
        assert!(
            out.join("space-phantom_res-3_contrast-ketamineUnderPlacebo_stat-t_statmap.nii.gz")
                .is_file()
        );
        assert_eq!(
            written_contrasts(&out).unwrap(),
            std::slice::from_ref(&nal_baseline)
        );
        // a region the participant level did not extract: named with the table
        let o = GroupOptions {
            rois: vec!["ACC_pre".into(), "Insula_L".into()],
            ..opts.clone()
        };
        let e = group(&o).unwrap_err().to_string();
        assert!(
            e.contains("Insula_L") && e.contains("desc-roi_cbf.tsv"),
            "{e}"
        );
        opts.contrasts.clear();
        assert!(
            group(&opts)
                .unwrap_err()
                .to_string()
                .contains("no contrast")
        );
    }
}
