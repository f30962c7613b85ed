//! The group level of the simplest pharmacological design: one session per subject, a run
//! before and a run during the drug. Voxelwise sign-flipping of the during − before maps
//! (max-T, TFCE and cluster FWE, as for the crossover contrasts) and paired t tests per ROI.

use std::collections::BTreeMap;

use std::path::PathBuf;

use cbflow_bids::{DerivativesWriter, Entities, Layout, Table};
use cbflow_image::Volume;
use cbflow_stats::{PermutationOptions, StatsError, Tail, TfceParams};
use serde_json::json;

use super::covariates::{CovariateValues, GroupCovariate};
use super::maps::{MaskedMaps, global_cbf, masked_maps, read_template_map, table_means, unmask};
use super::options::GroupSummary;
use super::statmaps::{ContrastMeta, write_contrast};
use crate::catalogue::{GroupFile, RunFile, TemplateSpace};
use crate::outputs::{RunSelector, find_template_run, template_output, wanted_template_cbf};
use crate::template::Template;
use crate::{Error, Result};

/// Options of the paired (before/during) group level.
#[derive(Debug, Clone)]
pub struct PairedGroupOptions {
    /// The input BIDS dataset.
    pub bids_dir: PathBuf,
    /// The derivatives of the participant level (read), where the group outputs go (written).
    pub output_dir: PathBuf,
    /// The template the participant level used.
    pub template: Template,
    /// `ses` entity of the session holding both runs; `None` for datasets without sessions.
    pub session: Option<String>,
    /// The run before the drug (by default `run-1`).
    pub before: RunSelector,
    /// The run during the drug (by default `run-2`).
    pub during: RunSelector,
    /// Name of the contrast in output names (`contrast-<name>`), e.g. `drug`.
    pub contrast: String,
    /// Tail of the voxelwise test.
    pub tail: Tail,
    /// Permutations (exhaustive when fewer sign patterns exist).
    pub n_permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Smoothing of each map before the test (FWHM, mm).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t).
    pub cluster_threshold: f64,
    /// TFCE settings.
    pub tfce: TfceParams,
    /// Covariates of the voxelwise GLM and the ROI tests (none by default): global CBF
    /// (during − before, uncentred: the change tested at no change of global CBF) or
    /// `participants.tsv` columns (centred).
    pub covariates: Vec<GroupCovariate>,
}

/// A subject of the paired design: its label and the entities of its before and during runs.
type PairedSubject = (String, [Entities; 2]);

/// Path of a run's template-space file of kind `kind` ([`RunFile::TemplateCbf`] for the CBF map,
/// [`RunFile::RoiTable`] for the table).
fn run_output(
    opts: &PairedGroupOptions,
    run: &Entities,
    kind: fn(TemplateSpace) -> RunFile,
) -> Result<PathBuf> {
    template_output(&opts.output_dir, run, &opts.template, kind)
}

/// Runs the paired group level: every subject with both template-space maps enters.
pub fn paired_group(opts: &PairedGroupOptions) -> Result<GroupSummary> {
    if let Some(why) = GroupCovariate::list_problem(&opts.covariates) {
        return Err(Error::Metadata {
            path: opts.output_dir.clone(),
            field: "covariates".into(),
            message: why,
        });
    }
    let layout = Layout::index(&opts.bids_dir)?;
    let tpl = &opts.template;
    let mut subjects: Vec<PairedSubject> = Vec::new();
    let mut excluded = Vec::new();
    for sub in layout.subjects() {
        let mut missing = Vec::new();
        let mut runs = [Entities::new(), Entities::new()];
        for (t, sel) in [&opts.before, &opts.during].into_iter().enumerate() {
            match find_template_run(&opts.output_dir, tpl, &sub, opts.session.as_deref(), sel)? {
                Some(e) => runs[t] = e,
                None => missing.push(wanted_template_cbf(tpl, &sub, opts.session.as_deref(), sel)),
            }
        }
        if missing.is_empty() {
            subjects.push((sub, runs));
        } else {
            tracing::warn!(
                "sub-{sub} left out of the group analysis: missing {}",
                missing.join(", ")
            );
            excluded.push((
                sub,
                format!("missing participant-level outputs: {}", missing.join(", ")),
            ));
        }
    }
    if subjects.len() < 3 {
        return Err(Error::Metadata {
            path: opts.output_dir.clone(),
            field: "participants".into(),
            message: format!(
                "{} subjects have both runs ({} and {}) in {} space; the group level needs at least 3",
                subjects.len(),
                opts.before,
                opts.during,
                tpl.name
            ),
        });
    }
    let mut raw: Vec<Vec<Volume>> = vec![Vec::new(); 2];
    for (_, runs) in &subjects {
        for (t, run) in runs.iter().enumerate() {
            raw[t].push(read_template_map(
                tpl,
                &run_output(opts, run, RunFile::TemplateCbf)?,
            )?);
        }
    }
    let MaskedMaps {
        ijk,
        geometry,
        data,
    } = masked_maps(tpl, &raw, opts.smoothing_fwhm_mm, &opts.output_dir)?;
    let diff = &data[1] - &data[0];
    let labels: Vec<&str> = subjects.iter().map(|s| s.0.as_str()).collect();
    let covariates = CovariateValues::read(&opts.covariates, &layout, &labels, |i| {
        subjects[i]
            .1
            .iter()
            .map(|run| global_cbf(&run_output(opts, run, RunFile::RoiTable)?))
            .collect()
    })?;
    let covs = covariates.for_contrast(&[-1.0, 1.0]);
    let popts = PermutationOptions {
        n_permutations: opts.n_permutations,
        seed: opts.seed,
        tail: opts.tail,
        tfce: Some(opts.tfce),
        cluster_threshold: Some(opts.cluster_threshold),
        ..PermutationOptions::default()
    };
    let step_err = |e: StatsError| Error::Step {
        path: opts.output_dir.clone(),
        step: "paired permutation test",
        message: e.to_string(),
    };
    // without covariates the design is the one-sample intercept (one_sample_sign_flip's)
    let res = cbflow_stats::difference_design(diff.nrows(), None, &covs)
        .and_then(|design| {
            cbflow_stats::permutation_test(
                diff.view(),
                &design,
                &cbflow_stats::Scheme::SignFlip,
                Some(&geometry),
                &popts,
            )
        })
        .map_err(step_err)?;
    tracing::info!(
        "contrast {}: {} subjects, {} sign flips{}",
        opts.contrast,
        subjects.len(),
        res.n_shuffles,
        if res.exhaustive { " (exhaustive)" } else { "" }
    );
    let staging = crate::staging::Staging::new(&opts.output_dir)?;
    let w = DerivativesWriter::create(
        &staging.dir,
        crate::generated_by(),
        &[crate::source_dataset(&opts.bids_dir)],
    )?;
    let to_volume = |vals: &[f64]| unmask(tpl, &ijk, vals);
    let mut extra = serde_json::json!({"ContrastWeights": {"before": -1.0, "during": 1.0}});
    if !covs.is_empty() {
        extra["Covariates"] = serde_json::json!(covs.iter().map(|c| &c.name).collect::<Vec<_>>());
    }
    let meta = ContrastMeta {
        smoothing_fwhm_mm: opts.smoothing_fwhm_mm,
        extra,
        inference: format!(
            "sign-flipping of within-subject difference maps (during - before), one-sample t{}; FWE from the maximum statistic over the mask (Nichols & Holmes 2002; Winkler et al. 2014)",
            if covs.is_empty() {
                String::new()
            } else {
                format!(
                    " with {} as nuisance regressors by Freedman-Lane",
                    opts.covariates
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        sources: format!(
            "participant-level *_space-<template>_cbf.nii.gz, {} (before) and {} (during)",
            opts.before, opts.during
        ),
    };
    let mut staged = Vec::new();
    let (n_voxel, n_tfce, n_cluster) = write_contrast(
        &w,
        &mut staged,
        tpl,
        &opts.contrast,
        &res,
        &popts,
        &to_volume,
        &meta,
    )?;
    write_roi_tests(&w, opts, &subjects, &covs)?;
    let files = staging.commit()?;
    Ok(GroupSummary {
        subjects: subjects.into_iter().map(|s| s.0).collect(),
        excluded,
        contrasts: vec![(opts.contrast.clone(), n_voxel, n_tfce, n_cluster)],
        files,
    })
}

/// Paired t tests of ROI mean CBF, during − before (adjusted for `covariates`, if any).
fn write_roi_tests(
    w: &DerivativesWriter,
    opts: &PairedGroupOptions,
    subjects: &[PairedSubject],
    covariates: &[cbflow_stats::Covariate],
) -> Result<()> {
    // the regions in the first table's order; each run's means as the crossover level reads them
    let mut regions: Vec<String> = Vec::new();
    let mut per_run: Vec<Vec<BTreeMap<String, f64>>> = vec![Vec::new(), Vec::new()];
    for (_, runs) in subjects {
        for (t, run) in runs.iter().enumerate() {
            let table = Table::read_tsv(&run_output(opts, run, RunFile::RoiTable)?)?;
            if regions.is_empty() {
                regions = table
                    .column("region")?
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            }
            per_run[t].push(table_means(&table)?);
        }
    }
    let value =
        |t: &BTreeMap<String, f64>, region: &str| t.get(region).copied().unwrap_or(f64::NAN);
    let f = |x: f64| {
        if x.is_finite() {
            format!("{x:.6}")
        } else {
            "n/a".into()
        }
    };
    let mut rows = Vec::new();
    for r in &regions {
        let before: Vec<f64> = per_run[0].iter().map(|t| value(t, r)).collect();
        let during: Vec<f64> = per_run[1].iter().map(|t| value(t, r)).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mut row = vec![
            r.clone(),
            subjects.len().to_string(),
            f(mean(&before)),
            f(mean(&during)),
        ];
        let diff: Vec<f64> = during.iter().zip(&before).map(|(d, b)| d - b).collect();
        match cbflow_stats::one_sample_t_test_adjusted(&diff, covariates) {
            Ok(t) => row.extend(super::cells::t_test_cells(&t, f)),
            Err(StatsError::NonFinite { .. }) | Err(StatsError::TooFewObservations { .. }) => {
                row.extend(std::iter::repeat_n("n/a".to_string(), 7))
            }
            Err(e) => {
                return Err(Error::Step {
                    path: opts.output_dir.clone(),
                    step: "ROI paired t tests",
                    message: e.to_string(),
                });
            }
        }
        rows.push(row);
    }
    let cols: Vec<&str> = ["region", "n", "mean_before", "mean_during"]
        .into_iter()
        .chain(super::cells::T_TEST_COLUMNS)
        .collect();
    let rel = GroupFile::paired_roi_ttests(&opts.contrast).rel_path()?;
    let table = Table::new(cols.iter().map(|s| s.to_string()).collect(), rows)?;
    let mut side = json!({
        "Description": format!("paired t tests of ROI mean CBF, {} (during) minus {} (before)", opts.during, opts.before),
        "Units": "mL/100g/min (means and differences)",
        "p": "two-sided, Student's t with n - 1 degrees of freedom",
    });
    if !covariates.is_empty() {
        side["Covariates"] = json!(covariates.iter().map(|c| &c.name).collect::<Vec<_>>());
        side["p"] =
            json!("two-sided, Student's t with n - 1 - (number of covariates) degrees of freedom");
        side["CovariateAdjustment"] = json!(
            "mean_difference is the intercept of an OLS regression of the differences on the covariates: participants.tsv columns centred, global-cbf (its change) uncentred, so the difference at the average age (etc.) and at no change of global CBF; a region the covariates explain exactly (global with global-cbf) has n/a statistics"
        );
    }
    w.write_table(&rel, &table, &side)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_run(sub: &str, run: &str) -> Entities {
        let mut e = Entities::new();
        e.set("sub", sub);
        e.set("run", run);
        e
    }
    use ndarray::Array3;

    /// Jitter of subject `s`'s ACC ROI change (so no covariate explains it exactly).
    fn jitter(s: usize) -> f64 {
        0.3 * ((s * 5 % 3) as f64 - 1.0)
    }

    /// Synthetic subjects on the phantom grid (one per entry of `shift`; voxel noise SD
    /// `noise_sd`) with a known +12 mL/100 g/min in the ACC
    /// during the drug, plus a brain-wide shift `shift[s - 1]` of subject `s`'s during run (in
    /// the maps and in the ROI tables' ACC and global rows). Returns the options (no
    /// covariates) and the ACC mask.
    fn paired_study(
        dir: &std::path::Path,
        shift: &[f32],
        noise_sd: f32,
    ) -> (PairedGroupOptions, Array3<bool>) {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let tpl = Template::load(&crate::TemplateChoice::Phantom).unwrap();
        let bids = dir.join("bids");
        let out = dir.join("out");
        std::fs::create_dir_all(&bids).unwrap();
        std::fs::write(
            bids.join("dataset_description.json"),
            r#"{"Name": "paired", "BIDSVersion": "1.10.0"}"#,
        )
        .unwrap();
        let labels = tpl.labels.frame(0).mapv(|l| (151.0..=156.0).contains(&l));
        let gm = tpl.gm.frame(0).to_owned();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let noise = Normal::new(0.0, noise_sd).unwrap();
        let opts = PairedGroupOptions {
            bids_dir: bids.clone(),
            output_dir: out.clone(),
            template: tpl.clone(),
            session: None,
            before: RunSelector::run("1"),
            during: RunSelector::run("2"),
            contrast: "drug".into(),
            tail: Tail::Positive,
            n_permutations: 500,
            seed: 1,
            smoothing_fwhm_mm: 0.0,
            cluster_threshold: 3.0,
            tfce: TfceParams::default(),
            covariates: vec![],
        };
        for (k, &g) in shift.iter().enumerate() {
            let s = k + 1;
            let sub = format!("{s:02}");
            std::fs::create_dir_all(bids.join(format!("sub-{sub}"))).unwrap();
            for (t, run) in ["1", "2"].into_iter().enumerate() {
                let g = if t == 1 { g } else { 0.0 };
                let cbf = Array3::from_shape_fn(gm.dim(), |ix| {
                    let base = 20.0 + 40.0 * gm[ix];
                    let effect = if t == 1 && labels[ix] { 12.0 } else { 0.0 };
                    base + effect + g + noise.sample(&mut rng)
                });
                let p = run_output(&opts, &fixture_run(&sub, run), RunFile::TemplateCbf).unwrap();
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                let v = Volume::new(cbf.into_dyn(), tpl.grid.affine).unwrap();
                cbflow_image::write(&p, &v, cbflow_image::DataType::Float32).unwrap();
                let roi = run_output(&opts, &fixture_run(&sub, run), RunFile::RoiTable).unwrap();
                let during = if t == 1 { 12.0 + jitter(s) } else { 0.0 };
                let acc = 60.0 + during + s as f64 * 0.5 + f64::from(g);
                std::fs::write(
                    roi,
                    format!(
                        "region\tn_voxels\tmean_cbf\nACC\t10\t{acc}\nglobal\t100\t{}\n",
                        40.0 + (s % 3) as f64 + f64::from(g)
                    ),
                )
                .unwrap();
            }
        }
        (opts, labels)
    }

    /// FWE-significant voxels inside and outside the mask `labels`.
    fn significant(out: &std::path::Path, labels: &Array3<bool>) -> (usize, usize) {
        let logp = cbflow_image::read(
            &out.join("space-phantom_res-3_contrast-drug_stat-logp_desc-voxelFWE_statmap.nii.gz"),
        )
        .unwrap();
        let (mut inside, mut outside) = (0, 0);
        for (ix, &v) in logp.frame(0).indexed_iter() {
            if v > 1.3 {
                if labels[ix] {
                    inside += 1
                } else {
                    outside += 1
                }
            }
        }
        (inside, outside)
    }

    /// Asserts FWE-significant voxels inside `labels` and none outside; returns the ROI tests.
    fn found_in_acc_only(out: &std::path::Path, labels: &Array3<bool>) -> Table {
        let (inside, outside) = significant(out, labels);
        assert!(
            inside > 0 && outside == 0,
            "inside {inside}, outside {outside}"
        );
        Table::read_tsv(&out.join("contrast-drug_desc-roiTtests_table.tsv")).unwrap()
    }

    /// The paired test finds the simulated increase in the ACC and nowhere far from it.
    #[test]
    fn paired_design_finds_the_simulated_increase() {
        let dir = tempfile::tempdir().unwrap();
        let n = 8;
        let (opts, labels) = paired_study(dir.path(), &vec![0.0; n], 4.0);
        let out = opts.output_dir.clone();
        let s = paired_group(&opts).unwrap();
        assert_eq!(s.subjects.len(), n);
        let (_, n_voxel, _, _) = s.contrasts[0];
        assert!(n_voxel > 0, "no FWE-significant voxel");
        let roi = found_in_acc_only(&out, &labels);
        let d = roi.f64_column("mean_difference").unwrap();
        let expect = 12.0 + (1..=n).map(jitter).sum::<f64>() / n as f64;
        assert!(
            (d[0].unwrap() - expect).abs() < 1e-6,
            "ACC difference {:?}",
            d[0]
        );
        assert!(d[1].unwrap().abs() < 1e-9);
        // no staging directory is left behind
        assert!(std::fs::read_dir(&out).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".cbflow-staging")
        }));
    }

    /// A brain-wide shift during the drug (mean +5): without covariates it is found everywhere;
    /// with global-cbf the ACC increase is recovered at no global change and nothing outside
    /// the ACC is significant.
    #[test]
    fn global_cbf_covariate_recovers_the_regional_increase() {
        let dir = tempfile::tempdir().unwrap();
        let shift = [2.0f32, 9.0, 4.0, 7.5, 1.0, 6.0, 8.0, 2.5];
        let (mut opts, labels) = paired_study(dir.path(), &shift, 1.0);
        let out = opts.output_dir.clone();
        paired_group(&opts).unwrap();
        let (_, outside_plain) = significant(&out, &labels);
        assert!(
            outside_plain > 1000,
            "{outside_plain} voxels outside the ACC"
        );
        opts.covariates = vec![GroupCovariate::GlobalCbf];
        paired_group(&opts).unwrap();
        let roi = found_in_acc_only(&out, &labels);
        let d = roi.f64_column("mean_difference").unwrap();
        // ΔACC = 12 + jitter + g, Δglobal = g: the intercept at g = 0 by hand
        let n = shift.len() as f64;
        let g: Vec<f64> = shift.iter().map(|&v| f64::from(v)).collect();
        let y: Vec<f64> = (1..=shift.len())
            .map(|s| 12.0 + jitter(s) + g[s - 1])
            .collect();
        let (gm, ym) = (g.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let slope = g
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - gm) * (b - ym))
            .sum::<f64>()
            / g.iter().map(|a| (a - gm) * (a - gm)).sum::<f64>();
        let expect = ym - slope * gm;
        assert!(
            (d[0].unwrap() - expect).abs() < 1e-6,
            "{:?} vs {expect}",
            d[0]
        );
        assert!((expect - 12.0).abs() < 0.5);
        // the global row is explained exactly: n/a
        assert_eq!(roi.f64_column("t").unwrap()[1], None);
    }
}
