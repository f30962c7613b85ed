//! The runner of the built-in operations: each calls its cbflow-pipeline stage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_err};
use crate::exec::{ExecOptions, JobContext, JobRunner, RunSummary, list_outputs};
use crate::plan::Plan;
use crate::spec::{GroupReportKind, Op, TemplateName};

/// Runs the built-in operations with cbflow-pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct PipelineRunner;

fn failed(ctx: &JobContext<'_>, e: impl std::fmt::Display) -> Error {
    Error::JobFailed {
        job: ctx.job.id.clone(),
        message: e.to_string(),
    }
}

/// The pipeline's template choice for a template name.
pub fn template_choice(
    name: TemplateName,
    resources: Option<&Path>,
) -> Option<cbflow_pipeline::TemplateChoice> {
    match name {
        TemplateName::None => None,
        TemplateName::Phantom => Some(cbflow_pipeline::TemplateChoice::Phantom),
        TemplateName::Mni152NLin6Asym => Some(cbflow_pipeline::TemplateChoice::Mni152NLin6Asym {
            resources: resources.map(Path::to_path_buf).unwrap_or_default(),
        }),
    }
}

/// Links (or, across file systems, copies) every upstream output into `out`; returns the
/// relative paths staged.
fn stage_upstream(ctx: &JobContext<'_>) -> Result<BTreeSet<PathBuf>> {
    let mut staged = BTreeSet::new();
    for up in &ctx.upstream {
        for rel in list_outputs(up)? {
            if !staged.insert(rel.clone()) {
                continue;
            }
            let to = ctx.out_dir.join(&rel);
            if let Some(p) = to.parent() {
                std::fs::create_dir_all(p).map_err(io_err(p))?;
            }
            let from = up.join(&rel);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(io_err(&to))?;
            }
        }
    }
    Ok(staged)
}

/// A group job's outputs: what it wrote that no upstream job made (a file an upstream job
/// made, e.g. dataset_description.json, stays the upstream one).
/// A group test's outputs, after saying how many subjects it tested and left out.
fn group_outputs(
    ctx: &JobContext<'_>,
    subjects: usize,
    left_out: usize,
    staged: &BTreeSet<PathBuf>,
) -> Result<Vec<PathBuf>> {
    tracing::info!("{}: {subjects} subjects, {left_out} left out", ctx.job.id);
    added_outputs(ctx, staged)
}

fn added_outputs(ctx: &JobContext<'_>, staged: &BTreeSet<PathBuf>) -> Result<Vec<PathBuf>> {
    Ok(list_outputs(ctx.out_dir)?
        .into_iter()
        .filter(|r| !staged.contains(r))
        .collect())
}

/// The template of a group-level job's inputs.
fn group_template(ctx: &JobContext<'_>) -> Result<cbflow_pipeline::Template> {
    let name = ctx
        .job
        .template
        .ok_or_else(|| failed(ctx, "no template-space input"))?;
    let choice = template_choice(name, ctx.plan.resources_dir.as_deref())
        .ok_or_else(|| failed(ctx, "the group level needs a template other than none"))?;
    cbflow_pipeline::Template::load(&choice).map_err(|e| failed(ctx, e))
}

impl JobRunner for PipelineRunner {
    fn run(&self, ctx: &JobContext<'_>) -> Result<Vec<PathBuf>> {
        let plan = ctx.plan;
        let job = ctx.job;
        match &job.op {
            Op::AslCbf(p) => {
                let label = job
                    .participant
                    .clone()
                    .ok_or_else(|| failed(ctx, "a participant-level job without a participant"))?;
                let opts = cbflow_pipeline::ParticipantOptions {
                    bids_dir: plan.bids_dir.clone(),
                    output_dir: ctx.out_dir.to_path_buf(),
                    participant_labels: vec![label],
                    asl: p.asl_options(),
                    template: template_choice(p.template, plan.resources_dir.as_deref()),
                    // the plan declared every label of an atlas given without regions
                    rois: p
                        .regions()
                        .ok_or_else(|| failed(ctx, "the plan left the atlas's regions unread"))?,
                    atlas: p.atlas_files(),
                };
                let s = cbflow_pipeline::participant(&opts).map_err(|e| failed(ctx, e))?;
                if !s.warnings.is_empty() {
                    tracing::debug!("{}: {} validation warnings", job.id, s.warnings.len());
                }
                list_outputs(ctx.out_dir)
            }
            Op::CrossoverGroup(p) => {
                let (template, staged) = (group_template(ctx)?, stage_upstream(ctx)?);
                let opts = p.group_options(plan.bids_dir.clone(), ctx.out_dir.into(), template);
                let s = cbflow_pipeline::group(&opts).map_err(|e| failed(ctx, e))?;
                group_outputs(ctx, s.subjects.len(), s.excluded.len(), &staged)
            }
            Op::PairedGroup(p) => {
                let (template, staged) = (group_template(ctx)?, stage_upstream(ctx)?);
                let opts = p.group_options(plan.bids_dir.clone(), ctx.out_dir.into(), template);
                let s = cbflow_pipeline::paired_group(&opts).map_err(|e| failed(ctx, e))?;
                group_outputs(ctx, s.subjects.len(), s.excluded.len(), &staged)
            }
            Op::ReceptorCorrelation(p) => {
                // PET maps live under <resources>/pet; a resource directory without them (e.g.
                // templates only, or the container's empty default mount point) skips the step
                // (no resource directory at all is the demo's case and not a mistake: said at
                // info level; one without pet/ is likely a wrong path: a warning). The plan
                // resolved the directory: nothing is looked up again here.
                let Some(resources) = plan
                    .resources_dir
                    .clone()
                    .filter(|r| r.join("pet").is_dir())
                else {
                    match plan
                        .resources_dir
                        .as_ref()
                        .or(plan.resources_dir_missing.as_ref())
                    {
                        None => tracing::info!(
                            "{}: receptor correlations skipped: they need the PET maps (`cbflow resources fetch` gets them; or a resource directory with pet/, e.g. shared/data, by --resources DIR or {})",
                            job.id,
                            cbflow_pipeline::RESOURCES_ENV
                        ),
                        Some(d) => tracing::warn!(
                            "{}: {} has no pet/ directory with the PET maps: receptor correlations skipped (`cbflow resources fetch` gets them)",
                            job.id,
                            d.display()
                        ),
                    }
                    return Ok(Vec::new());
                };
                let template = group_template(ctx)?;
                let staged = stage_upstream(ctx)?;
                let mut opts = cbflow_pipeline::ReceptorOptions::new(
                    plan.bids_dir.clone(),
                    ctx.out_dir.to_path_buf(),
                    template,
                    resources,
                );
                p.apply(&mut opts);
                let s =
                    cbflow_pipeline::receptor_correlations(&opts).map_err(|e| failed(ctx, e))?;
                tracing::info!("{}: {} contrasts", job.id, s.contrasts.len());
                added_outputs(ctx, &staged)
            }
            Op::ParticipantReport(p) => {
                let label = job
                    .participant
                    .as_deref()
                    .ok_or_else(|| failed(ctx, "a participant report without a participant"))?;
                let staged = stage_upstream(ctx)?;
                cbflow_report::participant_report(&report_inputs(ctx, &p.design), label)
                    .map_err(|e| failed(ctx, e))?;
                added_outputs(ctx, &staged)
            }
            Op::GroupReport(p) => {
                let staged = stage_upstream(ctx)?;
                let inputs = report_inputs(ctx, &p.design);
                match &p.report {
                    GroupReportKind::Crossover => cbflow_report::group_report(&inputs),
                    GroupReportKind::Paired { contrast } => {
                        cbflow_report::paired_report(&inputs, contrast)
                    }
                }
                .map_err(|e| failed(ctx, e))?;
                added_outputs(ctx, &staged)
            }
        }
    }
}

/// What a report job draws from: its own directory (the upstream jobs' outputs staged into
/// it), the dataset, the design and the resource directory the plan resolved.
fn report_inputs<'a>(
    ctx: &'a JobContext<'_>,
    design: &'a cbflow_pipeline::StudyDesign,
) -> cbflow_report::ReportInputs<'a> {
    cbflow_report::ReportInputs {
        output_dir: ctx.out_dir,
        bids_dir: &ctx.plan.bids_dir,
        design,
        resources: ctx.plan.resources_dir.as_deref(),
    }
}

/// Runs `plan` with the cbflow pipeline (see [`crate::execute_with`]).
pub fn execute(plan: &Plan, opts: &ExecOptions) -> Result<RunSummary> {
    crate::exec::execute_with(plan, opts, &PipelineRunner)
}
