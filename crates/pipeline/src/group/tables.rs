//! Group-level tables: ROI values and paired tests, the brain–behaviour correlations (written
//! by `behaviour`), and the crossover mixed model, from the participant-level ROI tables.
//!
//! Depends on `cells`, `design`, `maps`, `covariates`, `options` and `behaviour`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cbflow_bids::{DerivativesWriter, Layout};
use cbflow_stats::{CrossoverObservation, StatsError};
use serde_json::json;

use super::cells::{NA, T_TEST_COLUMNS, f, step_err, t_test_cells};
use super::covariates::CovariateValues;
use super::design::{StudyDesign, SubjectData, arm};
use super::maps::{roi_means, roi_table};
use super::options::GroupOptions;
use crate::catalogue::GroupFile;
use crate::outputs::write_group_table;
use crate::{Error, Result};

/// ROI mean CBF of one cell of a subject: region → mean.
fn roi_values(
    opts: &GroupOptions,
    s: &SubjectData,
    arm: usize,
    time: usize,
) -> Result<BTreeMap<String, f64>> {
    roi_means(&roi_table(&opts.output_dir, &opts.template, s, arm, time)?)
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
    files.extend(super::behaviour::write_brain_behaviour(
        w, layout, opts, subjects, &get,
    )?);

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
