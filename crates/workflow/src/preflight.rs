//! Checks on a resolved plan that read more than its file names, run before any job starts.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Result;
use crate::plan::Plan;
use crate::plan_inputs::resolve_err;
use crate::runner::template_choice;
use crate::spec::Op;

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
