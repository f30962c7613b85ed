//! The crossover group level: voxelwise permutation inference on the template-space CBF maps of
//! the participant level, one test per declared contrast, then the ROI, brain–behaviour and
//! mixed-model tables.

use cbflow_bids::{DerivativesWriter, Layout};
use cbflow_stats::{CrossoverMaps, PermutationOptions};
use serde_json::json;

use super::covariates::{CovariateValues, GroupCovariate};
use super::design::{check_contrasts, find_runs, read_design, write_contrast_table};
use super::maps::{MaskedMaps, global_cells, masked_maps, read_cell_maps, unmask};
use super::options::{GroupOptions, GroupSummary};
use super::statmaps::{ContrastMeta, write_contrast};
use crate::error::{meta_err, stats_err};
use crate::{Error, Result};

/// Runs the group level.
pub fn group(opts: &GroupOptions) -> Result<GroupSummary> {
    if let Some(why) = opts.design.names_problem() {
        return Err(crate::error::meta_err(&opts.output_dir, "design", why));
    }
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
        global_cells(&opts.output_dir, tpl, &subjects[i]).map(|c| c.to_vec())
    })?;
    let raw = read_cell_maps(&opts.output_dir, tpl, &subjects)?;
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
            "participant-level *_space-<template>_cbf.nii.gz, {} (before) and {} (during) of the {} and {} sessions",
            d.before, d.during, d.control, d.active
        ),
    };
    for gc in &opts.contrasts {
        let (name, tail) = (gc.name.as_str(), gc.tail);
        meta.extra = gc.sidecar(d);
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
    files.extend(write_contrast_table(w, &opts.contrasts, d)?);
    super::tables::write_tables(w, &layout, opts, &subjects, &covariates)?;
    drop(files);
    let files = staging.commit()?;
    Ok(GroupSummary {
        subjects: subjects.iter().map(|s| s.label.clone()).collect(),
        excluded,
        contrasts: summary,
        files,
    })
}
