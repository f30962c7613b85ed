//! The resolve step of a level run: the request checked as the pipeline will run it, the plan,
//! and the checks on the plan that read more than its file names, all before any job starts.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Result;
use crate::plan::{Plan, PlanRequest, plan};
use crate::plan_inputs::resolve_err;
use crate::runner::template_choice;
use crate::spec::{Level, Op, Workflow};

/// A level request resolved: its plan, the participants it selected and the dataset's
/// validation warnings.
#[derive(Debug)]
pub struct Resolved {
    /// The plan.
    pub plan: Plan,
    /// The participants of the request (without `sub-`, sorted): those named, else every one
    /// with data.
    pub participants: Vec<String>,
    /// Validation warnings (missing RECOMMENDED fields and the like) and the notes of the ASL
    /// runs' plans; not errors.
    pub warnings: Vec<String>,
}

/// Resolves a level request, writing nothing: the participant level's checks with the
/// workflow's own ASL options and regions ([`cbflow_pipeline::participant_preflight`]: safe
/// labels that exist, an output directory that is not the input, a dataset without validation
/// errors for them, every ASL run plannable), the plan ([`plan`]), and, at the participant level,
/// the template and atlas of its jobs ([`check_templates`]). A local run and a SLURM submission
/// both start here, so bad input fails before anything is written or queued.
pub fn resolve(workflow: &Workflow, req: &PlanRequest) -> Result<Resolved> {
    let asl = workflow.asl_step();
    let pre = cbflow_pipeline::participant_preflight(&cbflow_pipeline::ParticipantOptions {
        bids_dir: req.bids_dir.clone(),
        output_dir: req.output_dir.clone(),
        participant_labels: req.participant_labels.clone(),
        asl: asl.map(|p| p.asl_options()).unwrap_or_default(),
        // the template and the atlas are checked on what the plan resolved
        template: None,
        // every label of an atlas is read, named and checked by the plan
        rois: match asl {
            Some(p) => p.regions().unwrap_or_default(),
            None => cbflow_pipeline::default_rois(),
        },
        atlas: None,
    })?;
    let plan = plan(workflow, req)?;
    if req.level == Level::Participant {
        check_templates(&plan)?;
    }
    Ok(Resolved {
        plan,
        participants: pre.participants,
        warnings: pre.warnings,
    })
}

/// The participant level's template checks on what `plan` resolved, before any job starts:
/// every template a participant job of this level normalises to loads (with the step's atlas
/// on its grid), and each of the step's regions has a label in that atlas
/// ([`cbflow_pipeline::template_preflight`]; the job makes the same checks when it loads them).
/// Once per step; a group level's participant jobs are prerequisites, not run, and not checked.
pub fn check_templates(plan: &Plan) -> Result<()> {
    let mut checked: BTreeSet<&str> = BTreeSet::new();
    for j in plan.jobs.iter().filter(|j| !j.prerequisite) {
        let Op::AslCbf(p) = &j.op else {
            continue;
        };
        if !checked.insert(&j.step) {
            continue;
        }
        let Some(choice) = template_choice(p.template, plan.resources_dir.as_deref()) else {
            continue;
        };
        let rois = p.regions().unwrap_or_default();
        cbflow_pipeline::template_preflight(&choice, p.atlas_files().as_ref(), &rois)
            .map_err(|e| resolve_err(Path::new(&plan.origin), format!("step `{}`: {e}", j.step)))?;
    }
    Ok(())
}
