//! The brain–behaviour correlations of the crossover group level: which phenotype scores are
//! correlated (declared by the workflow, [`BehaviourScores`]; the study's by default), the
//! correlations with their CIs under each pre-treatment and the test of their difference
//! (`desc-brainBehaviour_table.tsv`), and the points they were computed from
//! (`desc-brainBehaviour_points.tsv`, which the report draws).
//!
//! Depends on `cells`, `design`, `scores` and `options` of the group level.

use std::path::PathBuf;

use cbflow_bids::{DerivativesWriter, Layout};
use cbflow_stats::{CorrelationMethod, StatsError};
use serde_json::json;

use super::cells::{NA, f, step_err};
use super::design::SubjectData;
use super::options::{CorrelationCi, GroupOptions};
#[cfg(doc)]
use super::scores::BehaviourScores;
use crate::Result;
use crate::catalogue::GroupFile;
use crate::outputs::write_group_table;

/// A column suffix as words for the tables' text: a digit after a letter starts a new word,
/// joined by `sep` (`day1` → `day 1` or `day-1`).
fn words(s: &str, sep: char) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for c in s.chars() {
        if c.is_ascii_digit() && prev.is_some_and(|p| p.is_ascii_alphabetic()) {
            out.push(sep);
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// The statistics columns of a row that has too few subjects: `n`, then n/a.
fn too_few(n: usize) -> [String; 5] {
    tracing::warn!("{n} subjects: too few for a correlation; its row is n/a");
    [n.to_string(), NA.into(), NA.into(), NA.into(), NA.into()]
}

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

/// Writes the brain–behaviour table and its points: the correlations of the declared scores
/// ([`GroupOptions::behaviour`]) with the regions' CBF, from `get(subject, arm, time, region)`
/// (ROI mean CBF; time 0 before, 1 during the drug).
pub(super) fn write_brain_behaviour(
    w: &DerivativesWriter,
    layout: &Layout,
    opts: &GroupOptions,
    subjects: &[SubjectData],
    get: &dyn Fn(usize, usize, usize, &str) -> f64,
) -> Result<Vec<PathBuf>> {
    let d = &opts.design;
    let delta = |a: usize, r: &str| -> Vec<f64> {
        (0..subjects.len())
            .map(|s| get(s, a, 1, r) - get(s, a, 0, r))
            .collect()
    };
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
    let session = opts.behaviour.session_scores.as_ref();
    if let Some((spec, inf)) = session.and_then(|s| phenotype.get(&s.table).map(|t| (s, t))) {
        let scores: Vec<String> = inf
            .columns
            .iter()
            .filter(|c| spec.selects(c))
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
                            .map(|s| score_of(&spec.table, score, &s.label, &s.sessions[a]))
                            .collect()
                    })
                    .collect();
                let Some(ys) = ys else {
                    tracing::warn!(
                        "phenotype/{}.tsv: {score} is missing for some subject; not correlated",
                        spec.table
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
    } else if let Some(spec) = session {
        tracing::warn!(
            "no phenotype/{}.tsv: ΔCBF–subjective-effect correlations skipped",
            spec.table
        );
    }
    let response = opts.behaviour.response.as_ref();
    if let Some(spec) = response.filter(|s| phenotype.contains_key(&s.table)) {
        // baseline sgACC adjusted for global CBF (residuals), per pre-treatment session
        let baseline_relation = format!(
            "baseline {} CBF (adjusted for global) vs {} change",
            if opts.baseline_roi == "ACC_sub" {
                "sgACC"
            } else {
                opts.baseline_roi.as_str()
            },
            words(&spec.follow_up, '-')
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
        for scale in &spec.scales {
            let ys: Option<Vec<Vec<f64>>> = (0..2)
                .map(|a| {
                    subjects
                        .iter()
                        .map(|s| {
                            let (sub, ses) = (&s.label, &s.sessions[a]);
                            Some(
                                score_of(
                                    &spec.table,
                                    &spec.column(scale, &spec.follow_up),
                                    sub,
                                    ses,
                                )? - score_of(
                                    &spec.table,
                                    &spec.column(scale, &spec.baseline),
                                    sub,
                                    ses,
                                )?,
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
                        format!(
                            "{scale} ({} − {})",
                            words(&spec.follow_up, ' '),
                            words(&spec.baseline, ' ')
                        ),
                    ],
                    [&adj[0], &adj[1]],
                    [&ys[0], &ys[1]],
                )?,
                None => {
                    tracing::warn!(
                        "phenotype/{}.tsv: {scale} scores incomplete; not correlated",
                        spec.table
                    )
                }
            }
        }
    } else if let Some(spec) = response {
        tracing::warn!(
            "no phenotype/{}.tsv: baseline-{}–response correlations skipped",
            spec.table,
            if opts.baseline_roi == "ACC_sub" {
                "sgACC"
            } else {
                opts.baseline_roi.as_str()
            }
        );
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
    let mut files = write_group_table(
        w,
        &GroupFile::BrainBehaviour,
        &cols,
        rows,
        json!({"Description": "correlations with 95 % CIs under each pre-treatment (p from the t distribution of r), and the test of their difference in the same subjects (Zou 2007 CI)", "CI": ci}),
    )?;
    files.extend(write_points(w, opts, points)?);
    Ok(files)
}

/// Writes `desc-brainBehaviour_points.tsv`: every point of every relation of the
/// brain–behaviour table, the values its correlations were computed from.
fn write_points(
    w: &DerivativesWriter,
    opts: &GroupOptions,
    points: BehaviourPoints,
) -> Result<Vec<PathBuf>> {
    let d = &opts.design;
    let b = &opts.behaviour;
    let scores: Vec<String> = [
        b.session_scores
            .as_ref()
            .map(|s| format!("the session's value of a phenotype/{}.tsv column", s.table)),
        b.response.as_ref().map(|s| {
            format!(
                "a {0} scale's {1} value minus its {2} (phenotype/{0}.tsv)",
                s.table,
                words(&s.follow_up, '-'),
                words(&s.baseline, ' ')
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
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
        "y": {"Description": format!("the score correlated: {}", scores.join(", or "))},
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_suffix_reads_as_words() {
        assert_eq!(super::words("day1", ' '), "day 1");
        assert_eq!(super::words("day1", '-'), "day-1");
        assert_eq!(super::words("week12", '-'), "week-12");
        assert_eq!(super::words("baseline", ' '), "baseline");
        assert_eq!(super::words("t2", ' '), "t 2");
    }
}
