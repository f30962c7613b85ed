//! The participant level: ingest, validate, quantify each participant's ASL runs and write
//! their derivatives.

use std::path::{Path, PathBuf};

use cbflow_bids::{
    AslRun, DerivativesWriter, Layout, check_output_dir, normalize_participant_label,
};
use rayon::prelude::*;

use crate::anat::{
    Anatomy, asl_to_t1w, asl_to_template, native_tissue, normalise, template_to_asl,
    to_template_space,
};
use crate::asl::{AslOptions, process_run, score_and_qc};
use crate::outputs::{write_anatomy, write_asl_run, write_template_outputs};
use crate::staging::Staging;
use crate::template::{AtlasFiles, Template, TemplateChoice};
use crate::{Error, Result, generated_by, source_dataset};
use cbflow_register::Region;

/// Options of the participant level (the BIDS-Apps command line, resolved).
#[derive(Debug, Clone)]
pub struct ParticipantOptions {
    /// The input BIDS dataset (read only).
    pub bids_dir: PathBuf,
    /// The derivatives dataset to write.
    pub output_dir: PathBuf,
    /// Participants to process (without `sub-`); empty = all.
    pub participant_labels: Vec<String>,
    /// ASL step options.
    pub asl: AslOptions,
    /// Template space to normalise to; `None` = native space only.
    pub template: Option<TemplateChoice>,
    /// Regions of interest in the template's atlas (ROI tables and time courses);
    /// [`default_rois`] are the AAL3 anterior cingulate subdivisions. `grey_matter` and `global`
    /// are always added.
    pub rois: Vec<Region>,
    /// The atlas the regions are labels of, in place of the template's (AAL3v1 on
    /// MNI152NLin6Asym); `None`: the template's.
    pub atlas: Option<AtlasFiles>,
}

impl ParticipantOptions {
    /// Every participant of `bids_dir` into `output_dir`, normalised to `template` (`None`:
    /// native space only), with the default ASL options and regions and the template's atlas.
    pub fn new(bids_dir: PathBuf, output_dir: PathBuf, template: Option<TemplateChoice>) -> Self {
        Self {
            bids_dir,
            output_dir,
            participant_labels: Vec::new(),
            asl: AslOptions::default(),
            template,
            rois: default_rois(),
            atlas: None,
        }
    }
}

/// The AAL3v1 anterior cingulate regions (labels 151–156): `ACC_sub`, `ACC_pre` and `ACC_sup`,
/// each left, right and bilateral.
pub fn default_rois() -> Vec<Region> {
    cbflow_resources::aal3_acc_regions()
}

/// Region names the participant level adds itself.
pub(crate) const RESERVED_ROIS: [&str; 2] = ["grey_matter", "global"];

/// True for a usable region name: letters, digits and `_` (a TSV value and column name).
pub fn is_roi_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why these regions cannot be extracted, if they cannot: a name that cannot be a TSV column, a
/// reserved name, a name twice, or a region without positive atlas labels. The workflow's
/// checks and the participant level share it.
pub fn rois_problem(rois: &[Region]) -> Option<String> {
    for (k, r) in rois.iter().enumerate() {
        if !is_roi_name(&r.name) {
            return Some(format!(
                "ROI name '{}' must be letters, digits and '_' only",
                r.name
            ));
        }
        if RESERVED_ROIS.contains(&r.name.as_str()) {
            return Some(format!(
                "ROI name '{}' is reserved (added by cbflow, which adds it to every ROI table); choose another name",
                r.name
            ));
        }
        if rois[..k].iter().any(|o| o.name == r.name) {
            return Some(format!("ROI {} is declared twice", r.name));
        }
        if r.labels.is_empty() || r.labels.iter().any(|&l| l <= 0) {
            return Some(format!(
                "ROI {} has no atlas label: it needs one or more atlas labels above 0",
                r.name
            ));
        }
    }
    None
}

/// [`rois_problem`] as an error naming the output directory.
fn check_rois(rois: &[Region], out: &Path) -> Result<()> {
    match rois_problem(rois) {
        Some(message) => Err(Error::Metadata {
            path: out.to_path_buf(),
            field: "rois".into(),
            message,
        }),
        None => Ok(()),
    }
}

/// Refuses a ROI whose labels have no voxel in the template's atlas.
fn check_rois_in_atlas(rois: &[Region], tpl: &Template) -> Result<()> {
    let present: std::collections::BTreeSet<i32> = tpl
        .labels
        .frame(0)
        .iter()
        .map(|&v| v.round() as i32)
        .collect();
    for r in rois {
        if !r.labels.iter().any(|l| present.contains(l)) {
            return Err(Error::Resource {
                path: tpl.name.clone().into(),
                message: format!(
                    "ROI {}: none of its labels {:?} occurs in the atlas of template {}",
                    r.name, r.labels, tpl.name
                ),
            });
        }
    }
    Ok(())
}

/// The template, with `atlas`'s regions in place of its own when one is given.
fn load_template(choice: &TemplateChoice, atlas: Option<&AtlasFiles>) -> Result<Template> {
    let t = Template::load(choice)?;
    match atlas {
        Some(a) => t.with_atlas(a),
        None => Ok(t),
    }
}

/// The checks of the template and atlas the participant level makes when it loads them,
/// without writing anything: the template loads, so does the atlas's label image on its grid,
/// and every region has a label that occurs in it. A workflow's plan runs them (see
/// `cbflow_workflow::check_templates`), so that a region the atlas does not have fails before
/// any job starts rather than in every job.
pub fn template_preflight(
    choice: &TemplateChoice,
    atlas: Option<&AtlasFiles>,
    rois: &[Region],
) -> Result<()> {
    check_rois_in_atlas(rois, &load_template(choice, atlas)?)
}

/// What the participant level did.
#[derive(Debug, Clone)]
pub struct ParticipantSummary {
    /// Participants processed.
    pub participants: Vec<String>,
    /// ASL runs processed per participant, in order.
    pub asl_runs: Vec<(String, usize)>,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Validation warnings (the errors stop the run before anything is written).
    pub warnings: Vec<String>,
}

/// Validates the dataset and the request, processes every selected participant, then writes
/// their derivatives.
///
/// Nothing is written when the output directory is the input dataset, a participant label is
/// unsafe or unknown, the dataset has validation errors, or any run fails: outputs are first
/// written to a staging directory inside OUTPUT_DIR and moved into place only when every run
/// succeeded.
pub fn participant(opts: &ParticipantOptions) -> Result<ParticipantSummary> {
    let Preflight {
        layout,
        participants: selected,
        warnings,
    } = participant_preflight(opts)?;
    let runs: Vec<AslRun> = layout
        .asl_runs()?
        .into_iter()
        .filter(|r| {
            r.entities
                .get("sub")
                .is_some_and(|s| selected.iter().any(|x| x == s))
        })
        .collect();
    tracing::debug!("{} participants, {} ASL runs", selected.len(), runs.len());
    let staging = Staging::new(&opts.output_dir)?;
    let writer = DerivativesWriter::create(
        &staging.dir,
        generated_by(),
        &[source_dataset(&opts.bids_dir)],
    )?;
    // the template is loaded only when some session has a T1w to normalise
    let any_t1w = selected.iter().any(|sub| {
        !layout
            .query(&cbflow_bids::Query::new().sub(sub).suffix("T1w").nifti())
            .is_empty()
    });
    let template = match &opts.template {
        Some(c) if any_t1w => Some(load_template(c, opts.atlas.as_ref())?),
        Some(_) => {
            tracing::warn!(
                "no T1w image for {}: native-space CBF and QC only; template-space outputs and SCORE are skipped",
                selected
                    .iter()
                    .map(|s| format!("sub-{s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            None
        }
        None => None,
    };
    if let Some(t) = &template {
        check_rois_in_atlas(&opts.rois, t)?;
    }
    // one job per session: its anatomy, then its runs
    let mut sessions: Vec<(String, Option<String>)> = runs
        .iter()
        .map(|r| {
            (
                r.entities.get("sub").unwrap_or("").to_string(),
                r.entities.get("ses").map(str::to_string),
            )
        })
        .collect();
    sessions.dedup();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let written: Vec<Result<Vec<PathBuf>>> = sessions
        .par_iter()
        .map(|(sub, ses)| {
            let session_runs: Vec<&AslRun> = runs
                .iter()
                .filter(|r| {
                    r.entities.get("sub") == Some(sub.as_str())
                        && r.entities.get("ses").map(str::to_string) == *ses
                })
                .collect();
            let files = process_session(
                &layout,
                &writer,
                template.as_ref(),
                &opts.asl,
                &opts.rois,
                sub,
                ses.as_deref(),
                &session_runs,
            )?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            tracing::info!(
                "[{n}/{}] sub-{sub}{} done ({} runs)",
                sessions.len(),
                ses.as_ref()
                    .map(|s| format!(" ses-{s}"))
                    .unwrap_or_default(),
                session_runs.len()
            );
            Ok(files)
        })
        .collect();
    // any failed session stops here, before anything reaches OUTPUT_DIR
    for w in written {
        w?;
    }
    let files = staging.commit()?;
    let asl_runs = selected
        .iter()
        .map(|s| {
            (
                s.clone(),
                runs.iter()
                    .filter(|r| r.entities.get("sub") == Some(s.as_str()))
                    .count(),
            )
        })
        .collect();
    Ok(ParticipantSummary {
        participants: selected,
        asl_runs,
        files,
        warnings,
    })
}

/// The checks the participant level makes before it writes anything, and what it would process.
#[derive(Debug)]
pub struct Preflight {
    /// The indexed input dataset.
    pub layout: Layout,
    /// The participants that would be processed (without `sub-`), sorted.
    pub participants: Vec<String>,
    /// Validation warnings.
    pub warnings: Vec<String>,
}

/// Checks a participant-level request without writing anything: safe labels that exist, an
/// output directory that is not the input, and a dataset without validation errors for the
/// selected participants. Executors that fan participants out (e.g. to SLURM) call this first,
/// so that bad input fails before anything is submitted.
pub fn participant_preflight(opts: &ParticipantOptions) -> Result<Preflight> {
    let labels = opts
        .participant_labels
        .iter()
        .map(|l| normalize_participant_label(l))
        .collect::<Result<Vec<_>, _>>()?;
    check_output_dir(&opts.bids_dir, &opts.output_dir)?;
    check_rois(&opts.rois, &opts.output_dir)?;
    let layout = Layout::index(&opts.bids_dir)?;
    let available = layout.subjects();
    for l in &labels {
        if !available.contains(l) {
            return Err(Error::UnknownParticipant {
                label: l.clone(),
                root: opts.bids_dir.clone(),
                available: available.join(", "),
            });
        }
    }
    let selected: Vec<String> = if labels.is_empty() { available } else { labels };
    let mut warnings = check_dataset(&opts.bids_dir, &selected)?;
    warnings.extend(check_run_plans(&layout, &selected, &opts.asl)?);
    Ok(Preflight {
        layout,
        participants: selected,
        warnings,
    })
}

/// Resolves every selected ASL run with the step's options ([`crate::plan_run`]: pairing, volumes
/// left out, background suppression, clock), as the run will; fails listing every run that cannot
/// be planned, and returns the plans' notes as warnings.
fn check_run_plans(layout: &Layout, selected: &[String], asl: &AslOptions) -> Result<Vec<String>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for run in layout.asl_runs()? {
        if !run
            .entities
            .get("sub")
            .is_some_and(|s| selected.iter().any(|x| x == s))
        {
            continue;
        }
        match crate::plan_run(&run, asl) {
            Ok(p) => notes.extend(
                p.notes
                    .iter()
                    .map(|n| format!("{}: {n}", run.asl.rel_path.display())),
            ),
            Err(e) => errors.push(format!("  {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(Error::InvalidDataset {
            root: layout.root().to_path_buf(),
            n_errors: errors.len(),
            report: errors.join("\n"),
        });
    }
    Ok(notes)
}

/// Runs the validator and fails on errors that concern the selected participants (or the whole
/// dataset); returns the warnings.
fn check_dataset(root: &Path, selected: &[String]) -> Result<Vec<String>> {
    let report = cbflow_bids::validate(root)?;
    let in_scope = |p: &Path| {
        let first = p
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        match first {
            Some(f) if f.starts_with("sub-") => selected.iter().any(|s| f == format!("sub-{s}")),
            _ => true,
        }
    };
    let errors: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.severity == cbflow_bids::Severity::Error && in_scope(&i.path))
        .collect();
    if !errors.is_empty() {
        return Err(Error::InvalidDataset {
            root: root.to_path_buf(),
            n_errors: errors.len(),
            report: errors
                .iter()
                .map(|i| format!("  {i}"))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(report
        .issues
        .iter()
        .filter(|i| i.severity == cbflow_bids::Severity::Warning && in_scope(&i.path))
        .map(|i| i.to_string())
        .collect())
}

/// One session: normalise its T1w (when there is one and a template is chosen), then quantify
/// each ASL run, add SCORE/QC and the template-space maps, and write everything.
fn process_session(
    layout: &Layout,
    writer: &DerivativesWriter,
    template: Option<&Template>,
    asl_opts: &AslOptions,
    rois: &[Region],
    sub: &str,
    ses: Option<&str>,
    runs: &[&AslRun],
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut q = cbflow_bids::Query::new().sub(sub).suffix("T1w").nifti();
    if let Some(s) = ses {
        q = q.ses(s);
    }
    let t1ws = layout.query(&q);
    let anatomy: Option<Anatomy> = match (template, t1ws.first()) {
        (Some(tpl), Some(t1w)) => {
            if t1ws.len() > 1 {
                tracing::warn!(
                    "sub-{sub}: {} T1w images; using {}",
                    t1ws.len(),
                    t1w.rel_path.display()
                );
            }
            let a = normalise(t1w, tpl)?;
            files.extend(write_anatomy(writer, &a, tpl)?);
            Some(a)
        }
        (Some(_), None) => {
            tracing::warn!(
                "sub-{sub}{}: no T1w; template-space outputs, SCORE and QC are skipped for this session",
                ses.map(|s| format!(" ses-{s}")).unwrap_or_default()
            );
            None
        }
        (None, _) => None,
    };
    for run in runs {
        let mut r = process_run(run, asl_opts)?;
        if let (Some(tpl), Some(anat)) = (template, &anatomy) {
            let rigid = asl_to_t1w(anat, &r.reference, &run.asl.path)?;
            let to_tpl = asl_to_template(anat, &rigid, &run.asl.path)?;
            let tissue = native_tissue(tpl, &to_tpl, &r.reference.grid())?;
            score_and_qc(&mut r, Some(&tissue))?;
            if let Some(q) = r.qc.as_mut() {
                q.add_normalisation(anat.brain_dice, anat.syn.affine.determinant());
            }
            let chain = template_to_asl(anat, &rigid);
            let cbf_tpl = to_template_space(
                &crate::asl::grid_volume(&r.reference, r.cbf.clone())?,
                tpl,
                &chain,
            )?;
            let score_tpl = match &r.cbf_score {
                Some(s) => Some(to_template_space(
                    &crate::asl::grid_volume(&r.reference, s.clone())?,
                    tpl,
                    &chain,
                )?),
                None => None,
            };
            let series_tpl = to_template_space(
                &crate::asl::grid_volume4(&r.reference, r.cbf_series.clone())?,
                tpl,
                &chain,
            )?;
            files.extend(write_template_outputs(
                writer,
                run,
                &r,
                tpl,
                &rigid,
                &cbf_tpl,
                score_tpl.as_ref(),
                Some(&series_tpl),
                rois,
            )?);
        }
        if r.qc.is_none() {
            // no T1w (or no template): the QC that needs no tissue maps
            score_and_qc(&mut r, None)?;
        }
        if let Some(q) = r.qc.as_ref().filter(|q| !q.flags.is_empty()) {
            // the flags are in the QC table and the report; say so where the user is looking
            let what: Vec<String> = q
                .flags
                .iter()
                .map(|f| {
                    format!(
                        "{} = {:.3} (accepted {}–{})",
                        f.metric, f.value, f.range.0, f.range.1
                    )
                })
                .collect();
            tracing::warn!(
                "{}: QC flagged: {}",
                run.asl
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                what.join("; ")
            );
        }
        files.extend(write_asl_run(writer, run, &r)?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_rois_are_checked() {
        let out = Path::new("/out");
        check_rois(&default_rois(), out).unwrap();
        let bad = |rois: Vec<Region>, needle: &str| {
            let e = check_rois(&rois, out).unwrap_err().to_string();
            assert!(e.contains("rois") && e.contains(needle), "{e}");
        };
        bad(vec![Region::new("ACC sub", vec![151])], "letters, digits");
        bad(vec![Region::new("global", vec![151])], "reserved");
        bad(
            vec![Region::new("a", vec![151]), Region::new("a", vec![152])],
            "twice",
        );
        bad(vec![Region::new("a", vec![])], "no atlas label");
        // the phantom's atlas has the ACC labels only
        let tpl = Template::phantom();
        check_rois_in_atlas(&default_rois(), &tpl).unwrap();
        let e = check_rois_in_atlas(&[Region::new("Insula_L", vec![33])], &tpl)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Insula_L") && e.contains("[33]") && e.contains("phantom"),
            "{e}"
        );
    }
}
