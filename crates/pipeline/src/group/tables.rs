//! Group-level tables: ROI values and paired tests, brain–behaviour correlations (and the
//! points they were computed from, for the report's scatter plots), and the crossover mixed
//! model, from the participant-level ROI tables and the phenotype TSVs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cbflow_bids::{DerivativesWriter, Layout};
use cbflow_stats::{CorrelationMethod, CrossoverObservation, StatsError};
use serde_json::json;

use super::covariates::CovariateValues;
use super::design::{StudyDesign, SubjectData, arm};
use super::maps::{roi_means, roi_table};
use super::options::{CorrelationCi, GroupOptions};
use crate::catalogue::GroupFile;
use crate::outputs::write_group_table;
use crate::{Error, Result};

fn f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.5}")
    } else {
        "n/a".into()
    }
}

/// The columns of a one-sample t test in the tables' order (mean, 95 % CI, t, df, p, Cohen's
/// d_z), each written by `f`.
/// The names of [`t_test_cells`]' columns.
pub(super) const T_TEST_COLUMNS: [&str; 7] = [
    "mean_difference",
    "ci95_low",
    "ci95_high",
    "t",
    "df",
    "p",
    "cohens_dz",
];

pub(super) fn t_test_cells(t: &cbflow_stats::TTest, f: impl Fn(f64) -> String) -> [String; 7] {
    [t.mean, t.ci95.0, t.ci95.1, t.t, t.df, t.p, t.cohens_dz].map(f)
}

/// The statistics columns of a row that has too few subjects: `n`, then n/a.
fn too_few(n: usize) -> [String; 5] {
    tracing::warn!("{n} subjects: too few for a correlation; its row is n/a");
    [n.to_string(), NA.into(), NA.into(), NA.into(), NA.into()]
}

const NA: &str = "n/a";

/// A row of the brain–behaviour table: relation, region and score, the arm (or the arms
/// compared), the method, then its five statistics columns.
fn correlation_row(
    what: [&str; 3],
    arm: String,
    method: String,
    stats: [String; 5],
) -> Vec<String> {
    let mut row: Vec<String> = what.map(String::from).into();
    row.extend([arm, method]);
    row.extend(stats);
    row
}

/// A value of the points table at full precision (the shortest text that reads back as the
/// same `f64`), so that the points reproduce the table's correlations exactly.
fn full(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        NA.into()
    }
}

/// The points of the brain–behaviour correlations, collected as they are correlated: rows of
/// `desc-brainBehaviour_points.tsv` and, per relation, region and score, its axes.
#[derive(Default)]
struct BehaviourPoints {
    rows: Vec<Vec<String>>,
    axes: Vec<serde_json::Value>,
}

/// The columns of the points table.
const POINT_COLUMNS: [&str; 8] = [
    "relation",
    "region",
    "score",
    "pretreatment",
    "participant_id",
    "session_id",
    "x",
    "y",
];

/// ROI mean CBF of one cell of a subject: region → mean.
fn roi_values(
    opts: &GroupOptions,
    s: &SubjectData,
    arm: usize,
    time: usize,
) -> Result<BTreeMap<String, f64>> {
    roi_means(&roi_table(&opts.output_dir, &opts.template, s, arm, time)?)
}

fn step_err(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Step {
        path: path.to_path_buf(),
        step: "group tables",
        message: e.to_string(),
    }
}

/// Writes the ROI, brain–behaviour and mixed-model tables.
pub(crate) fn write_tables(
    w: &DerivativesWriter,
    layout: &Layout,
    opts: &GroupOptions,
    subjects: &[SubjectData],
    covariates: &CovariateValues,
) -> Result<Vec<PathBuf>> {
    let d = &opts.design;
    let mut files = Vec::new();
    // values[s][arm][time] = region → mean
    let mut values = Vec::new();
    for s in subjects {
        let mut per = Vec::new();
        for a in 0..2 {
            per.push([roi_values(opts, s, a, 0)?, roi_values(opts, s, a, 1)?]);
        }
        values.push(per);
    }
    // every declared region must be in every ROI table
    let regions: Vec<&str> = opts
        .rois
        .iter()
        .map(String::as_str)
        // the regions the participant level always adds
        .chain(crate::participant::RESERVED_ROIS)
        .collect();
    for (s, subject) in subjects.iter().enumerate() {
        for a in 0..2 {
            for t in 0..2 {
                if let Some(r) = regions
                    .iter()
                    .chain([&opts.baseline_roi.as_str()])
                    .find(|r| !values[s][a][t].contains_key(**r))
                {
                    return Err(Error::Metadata {
                        path: roi_table(&opts.output_dir, &opts.template, subject, a, t)?,
                        field: "region".into(),
                        message: format!(
                            "no row for the group level's region {r} (declare it in the participant step's rois)"
                        ),
                    });
                }
            }
        }
    }
    let get =
        |s: usize, a: usize, t: usize, r: &str| values[s][a][t].get(r).copied().unwrap_or(f64::NAN);
    let delta = |a: usize, r: &str| -> Vec<f64> {
        (0..subjects.len())
            .map(|s| get(s, a, 1, r) - get(s, a, 0, r))
            .collect()
    };

    // long-form values for spreadsheets
    let mut rows = Vec::new();
    for (
        s,
        SubjectData {
            label: sub,
            sessions,
            periods,
            ..
        },
    ) in subjects.iter().enumerate()
    {
        for a in 0..2 {
            for (t, time) in ["before", "during"].iter().enumerate() {
                for &r in &regions {
                    rows.push(vec![
                        format!("sub-{sub}"),
                        format!("ses-{}", sessions[a]),
                        d.arms()[a].to_string(),
                        periods[a].to_string(),
                        time.to_string(),
                        r.to_string(),
                        f(get(s, a, t, r)),
                    ]);
                }
            }
        }
    }
    let cols = [
        "participant_id",
        "session_id",
        "pretreatment",
        "period",
        "time",
        "region",
        "mean_cbf",
    ];
    files.extend(write_group_table(w, &GroupFile::RoiValues, &cols, rows, json!({"Description": "ROI mean CBF (mL/100g/min) of every subject, session and run, in template space", "Units": "mL/100g/min"}))?);

    // paired tests per ROI and contrast
    let mut rows = Vec::new();
    for &r in &regions {
        // each declared contrast, on the ROI means (cells in the order of StudyDesign::cells)
        let contrasts = opts.contrasts.iter().map(|c| {
            let w = c.contrast.weights();
            let diff: Vec<f64> = (0..subjects.len())
                .map(|s| (0..4).map(|k| w[k] * get(s, k / 2, k % 2, r)).sum())
                .collect();
            (c.name.as_str(), diff, covariates.for_contrast(&w))
        });
        for (name, diff, covs) in contrasts {
            let t = cbflow_stats::one_sample_t_test_adjusted(&diff, &covs)
                .map_err(|e| step_err(&opts.output_dir, e))?;
            let mut row = vec![r.to_string(), name.to_string(), t.n.to_string()];
            row.extend(t_test_cells(&t, f));
            rows.push(row);
        }
    }
    let cols: Vec<&str> = ["region", "contrast", "n"]
        .into_iter()
        .chain(T_TEST_COLUMNS)
        .collect();
    let mut meta = json!({"Description": format!("paired t tests of ROI mean CBF for each contrast of the group level (the weighted sum of the four cells, as in the ContrastWeights of the contrast's maps; the defaults: during − before {} per pre-treatment, their mean, and their difference, the interaction); two-sided p; 95 % CI of the mean difference", opts.design.drug), "Units": "mL/100g/min"});
    if !opts.covariates.is_empty() {
        meta["Covariates"] = json!(opts.covariates.iter().map(|c| c.name()).collect::<Vec<_>>());
        meta["CovariateAdjustment"] = json!(
            "each test is the intercept of an OLS regression of the subjects' contrast values on the covariates: participants.tsv columns centred to mean 0, global-cbf (global CBF under the contrast's own weights) uncentred, so mean_difference is the difference at the average age (etc.) and at no change of global CBF; sd is the residual SD, df = n - 1 - number of covariates, cohens_dz = mean_difference / sd; a row whose values the covariates explain exactly (global adjusted for global-cbf) has n/a statistics"
        );
    }
    files.extend(write_group_table(
        w,
        &GroupFile::RoiTtests,
        &cols,
        rows,
        meta,
    )?);

    // brain–behaviour correlations
    let phenotype = layout.phenotype()?;
    let score_of = |table: &str, col: &str, sub: &str, ses: &str| -> Option<f64> {
        let t = phenotype.get(table)?;
        let ids = t.column("participant_id").ok()?;
        let sess = t.column("session_id").ok()?;
        let c = t.f64_column(col).ok()?;
        ids.iter()
            .zip(sess)
            .zip(c)
            .find(|((i, s), _)| **i == format!("sub-{sub}") && *s == format!("ses-{ses}"))
            .and_then(|(_, v)| v)
    };
    let mut rows = Vec::new();
    let mut points = BehaviourPoints::default();
    // one relation of a region and a score: its rows of the table, and the points it correlated
    // (x against y, per pre-treatment, subjects in design order) described by `axes` (x, y)
    let corr_row = |rows: &mut Vec<Vec<String>>,
                    points: &mut BehaviourPoints,
                    relation: &str,
                    region: &str,
                    score: &str,
                    axes: [String; 2],
                    x: [&Vec<f64>; 2],
                    y: [&Vec<f64>; 2]|
     -> Result<()> {
        let [x_axis, y_axis] = axes;
        points.axes.push(json!({
            "relation": relation,
            "region": region,
            "score": score,
            "x": x_axis,
            "y": y_axis,
        }));
        for a in 0..2 {
            for (s, subject) in subjects.iter().enumerate() {
                points.rows.push(vec![
                    relation.into(),
                    region.into(),
                    score.into(),
                    d.arms()[a].to_string(),
                    format!("sub-{}", subject.label),
                    format!("ses-{}", subject.sessions[a]),
                    full(x[a][s]),
                    full(y[a][s]),
                ]);
            }
        }
        for method in [CorrelationMethod::Pearson, CorrelationMethod::Spearman] {
            for a in 0..2 {
                // too few subjects for a correlation: the row stays, with n/a statistics
                let stats = match cbflow_stats::correlation(x[a], y[a], method) {
                    Ok(c) => {
                        let ci = match opts.correlation_ci {
                            CorrelationCi::FisherZ => c.ci95,
                            // one generator stream per row, from the group seed
                            CorrelationCi::Bootstrap { samples } => {
                                cbflow_stats::bootstrap_correlation_ci(
                                    x[a],
                                    y[a],
                                    method,
                                    samples,
                                    0.95,
                                    opts.seed
                                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                                        .wrapping_add(rows.len() as u64),
                                )
                                .map_err(|e| step_err(&opts.output_dir, e))?
                            }
                        };
                        [c.n.to_string(), f(c.r), f(ci.0), f(ci.1), f(c.p)]
                    }
                    Err(StatsError::TooFewObservations { got, .. }) => too_few(got),
                    Err(e) => return Err(step_err(&opts.output_dir, e)),
                };
                let (arm, method) = (
                    d.arms()[a].to_string(),
                    format!("{method:?}").to_lowercase(),
                );
                rows.push(correlation_row(
                    [relation, region, score],
                    arm,
                    method,
                    stats,
                ));
            }
        }
        let stats = match cbflow_stats::compare_dependent_correlations(x[0], y[0], x[1], y[1]) {
            Ok(t) => [
                t.n.to_string(),
                f(t.difference),
                f(t.ci95.0),
                f(t.ci95.1),
                f(t.p),
            ],
            Err(StatsError::TooFewObservations { got, .. }) => too_few(got),
            Err(e) => return Err(step_err(&opts.output_dir, e)),
        };
        rows.push(correlation_row(
            [relation, region, score],
            format!("{} - {}", d.control, d.active),
            "pearson difference (Raghunathan et al. 1996; Zou 2007 CI)".into(),
            stats,
        ));
        Ok(())
    };
    if let Some(inf) = phenotype.get("infusion") {
        let scores: Vec<String> = inf
            .columns
            .iter()
            .filter(|c| c.starts_with("psi_") || *c == "cadss")
            .cloned()
            .collect();
        for region in opts.rois.iter().map(String::as_str) {
            // ΔCBF adjusted for the global ΔCBF of the same session (residuals), as the
            // baseline sgACC value is adjusted for global CBF below
            let dx: Vec<Vec<f64>> = (0..2)
                .map(|a| {
                    cbflow_stats::residualise(&delta(a, region), &[&delta(a, "global")])
                        .map_err(|e| step_err(&opts.output_dir, e))
                })
                .collect::<Result<_>>()?;
            for score in &scores {
                let ys: Option<Vec<Vec<f64>>> = (0..2)
                    .map(|a| {
                        subjects
                            .iter()
                            .map(|s| score_of("infusion", score, &s.label, &s.sessions[a]))
                            .collect()
                    })
                    .collect();
                let Some(ys) = ys else {
                    tracing::warn!(
                        "phenotype/infusion.tsv: {score} is missing for some subject; not correlated"
                    );
                    continue;
                };
                corr_row(
                    &mut rows,
                    &mut points,
                    &format!("{} ΔCBF vs subjective effect", d.drug),
                    region,
                    score,
                    [
                        format!("ΔCBF {region}, adjusted for global ΔCBF (mL/100 g/min)"),
                        score.clone(),
                    ],
                    [&dx[0], &dx[1]],
                    [&ys[0], &ys[1]],
                )?;
            }
        }
    } else {
        tracing::warn!("no phenotype/infusion.tsv: ΔCBF–subjective-effect correlations skipped");
    }
    if phenotype.contains_key("mood") {
        // baseline sgACC adjusted for global CBF (residuals), per pre-treatment session
        let baseline_relation = format!(
            "baseline {} CBF (adjusted for global) vs day-1 change",
            if opts.baseline_roi == "ACC_sub" {
                "sgACC"
            } else {
                opts.baseline_roi.as_str()
            }
        );
        let adj: Vec<Vec<f64>> = (0..2)
            .map(|a| {
                let sg: Vec<f64> = (0..subjects.len())
                    .map(|s| get(s, a, 0, &opts.baseline_roi))
                    .collect();
                let gl: Vec<f64> = (0..subjects.len())
                    .map(|s| get(s, a, 0, "global"))
                    .collect();
                cbflow_stats::residualise(&sg, &[&gl]).map_err(|e| step_err(&opts.output_dir, e))
            })
            .collect::<Result<_>>()?;
        for scale in ["madrs", "qids"] {
            let ys: Option<Vec<Vec<f64>>> = (0..2)
                .map(|a| {
                    subjects
                        .iter()
                        .map(|s| {
                            let (sub, ses) = (&s.label, &s.sessions[a]);
                            Some(
                                score_of("mood", &format!("{scale}_day1"), sub, ses)?
                                    - score_of("mood", &format!("{scale}_baseline"), sub, ses)?,
                            )
                        })
                        .collect()
                })
                .collect();
            match ys {
                Some(ys) => corr_row(
                    &mut rows,
                    &mut points,
                    &baseline_relation,
                    &opts.baseline_roi,
                    &format!("{scale}_change"),
                    [
                        format!(
                            "baseline {} CBF, adjusted for global (mL/100 g/min)",
                            opts.baseline_roi
                        ),
                        format!("{scale} (day 1 − baseline)"),
                    ],
                    [&adj[0], &adj[1]],
                    [&ys[0], &ys[1]],
                )?,
                None => {
                    tracing::warn!("phenotype/mood.tsv: {scale} scores incomplete; not correlated")
                }
            }
        }
    } else {
        tracing::warn!("no phenotype/mood.tsv: baseline-sgACC–response correlations skipped");
    }
    let cols = [
        "relation",
        "region",
        "score",
        "pretreatment",
        "method",
        "n",
        "r",
        "ci95_low",
        "ci95_high",
        "p",
    ];
    let ci = match opts.correlation_ci {
        CorrelationCi::FisherZ => {
            "Fisher z transform; Bonett & Wright 2000 for Spearman".to_string()
        }
        CorrelationCi::Bootstrap { samples } => format!(
            "percentile bootstrap over subjects, {samples} resamples, seeded from the group seed {}; Efron & Tibshirani 1993",
            opts.seed
        ),
    };
    files.extend(write_group_table(w, &GroupFile::BrainBehaviour, &cols, rows, json!({"Description": "correlations with 95 % CIs under each pre-treatment (p from the t distribution of r), and the test of their difference in the same subjects (Zou 2007 CI)", "CI": ci}))?);
    files.extend(write_points(w, d, points)?);

    // crossover mixed model on ΔCBF
    let mut rows = Vec::new();
    for &r in &regions {
        let mut y = Vec::new();
        let mut obs = Vec::new();
        for (s, SubjectData { periods, .. }) in subjects.iter().enumerate() {
            for a in 0..2 {
                y.push(get(s, a, 1, r) - get(s, a, 0, r));
                obs.push(CrossoverObservation {
                    subject: s,
                    treatment: arm(a),
                    period: periods[a],
                });
            }
        }
        let (x, groups, names) =
            cbflow_stats::crossover_design(&obs).map_err(|e| step_err(&opts.output_dir, e))?;
        let fit = match cbflow_stats::fit_random_intercept(&y, &x, &groups, &names) {
            Ok(fit) => fit,
            Err(StatsError::TooFewObservations { got, .. }) => {
                tracing::warn!("{r}: {got} observations, too few for the crossover mixed model");
                let mut row = vec![r.to_string()];
                row.extend(std::iter::repeat_n(NA.to_string(), 8));
                row.push(got.to_string());
                rows.push(row);
                continue;
            }
            Err(e) => return Err(step_err(&opts.output_dir, e)),
        };
        for i in 0..fit.names.len() {
            rows.push(vec![
                r.to_string(),
                lmm_term(&fit.names[i], d),
                f(fit.beta[i]),
                f(fit.se[i]),
                f(fit.df[i]),
                f(fit.t[i]),
                f(fit.p[i]),
                f(fit.sigma2_subject),
                f(fit.sigma2_residual),
                fit.n_obs.to_string(),
            ]);
        }
    }
    let cols = [
        "region",
        "term",
        "estimate",
        "se",
        "df",
        "t",
        "p",
        "sigma2_subject",
        "sigma2_residual",
        "n_obs",
    ];
    let description = format!(
        "linear mixed model of the {} ΔCBF (during − before) per session: fixed effects intercept, {} ({} sessions 1, {} sessions 0), period2, {} (subjects who had {} in period 1); random intercept per subject; REML; Satterthwaite df",
        d.drug,
        lmm_term("naltrexone", d),
        d.active,
        d.control,
        lmm_term("sequence_NP", d),
        d.active
    );
    files.extend(write_group_table(
        w,
        &GroupFile::Lmm,
        &cols,
        rows,
        json!({"Description": description, "Units": "mL/100g/min"}),
    )?);
    Ok(files)
}

/// Writes `desc-brainBehaviour_points.tsv`: every point of every relation of the
/// brain–behaviour table, the values its correlations were computed from.
fn write_points(
    w: &DerivativesWriter,
    d: &StudyDesign,
    points: BehaviourPoints,
) -> Result<Vec<PathBuf>> {
    let table = GroupFile::BrainBehaviour.file_name()?;
    let sidecar = json!({
        "Description": format!("the points of every correlation of {table}: one row per relation, region, score, pre-treatment and subject, with the values correlated (full precision); the report draws its scatter plots from them"),
        "relation": {"Description": format!("the relation, as in {table}")},
        "region": {"Description": "the region whose CBF is on the x axis"},
        "score": {"Description": "the behavioural score on the y axis"},
        "pretreatment": {"Description": format!("the pre-treatment of the session ({} or {}); the correlation of a row of {table} is over its subjects", d.control, d.active)},
        "participant_id": {"Description": "the subject"},
        "session_id": {"Description": "the subject's session under this pre-treatment"},
        "x": {"Description": format!("the CBF measure correlated: the region's ΔCBF (during − before {}) of the session, or its CBF before {} (the baseline relations), as the residual of an ordinary least-squares fit on the same measure of global CBF over the subjects of the pre-treatment", d.drug, d.drug), "Units": "mL/100g/min"},
        "y": {"Description": "the score correlated: the session's value of a phenotype/infusion.tsv column, or a mood scale's day-1 value minus its baseline (phenotype/mood.tsv)"},
        "Axes": points.axes,
    });
    write_group_table(
        w,
        &GroupFile::BrainBehaviourPoints,
        &POINT_COLUMNS,
        points.rows,
        sidecar,
    )
}

/// A term of the crossover mixed model named in the design's words: the active pre-treatment
/// (`naltrexone` in the study) and its sequence (`sequence_naltrexoneFirst`: the subjects who had
/// it in period 1); intercept and period2 as they are.
fn lmm_term(name: &str, d: &StudyDesign) -> String {
    match name {
        "naltrexone" => d.active.clone(),
        "sequence_NP" => format!("sequence_{}First", d.active),
        other => other.to_string(),
    }
}
