//! A resolved plan written to a file and read back: what a SLURM task runs. The submission
//! resolves the request once ([`crate::resolve`]) and writes each level's plan next to its
//! sbatch script; every task reads that plan and runs its own part of it
//! ([`Plan::for_participant`]), so the tasks run exactly what was checked before submission,
//! with nothing resolved again (no workflow parsed, no dataset indexed, no environment read).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::plan::Plan;

/// Version of the plan-file layout; a file of another version is refused.
pub const PLAN_FILE_FORMAT: u32 = 1;

/// The file's content: the plan with the workflow text the provenance records.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PlanFile {
    /// [`PLAN_FILE_FORMAT`].
    format: u32,
    /// The workflow file's text (not part of [`Plan`]'s own serialisation).
    workflow_text: String,
    /// The plan.
    plan: Plan,
}

fn plan_file_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Resolve {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes `plan` (with its workflow text) to `path` as JSON, atomically.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub fn write_plan(plan: &Plan, path: &Path) -> Result<()> {
    let file = PlanFile {
        format: PLAN_FILE_FORMAT,
        workflow_text: plan.workflow_text.clone(),
        plan: plan.clone(),
    };
    let mut text = serde_json::to_string_pretty(&file).expect("a plan is plain data");
    text.push('\n');
    cbflow_bids::atomic_write(path, text.as_bytes()).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads a plan written by [`write_plan`].
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Resolve`] naming the file when it is
/// not a plan file, is of another format, or was written by another cbflow version (its jobs'
/// parameters might mean something else to this one).
pub fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let file: PlanFile = serde_json::from_str(&text)
        .map_err(|e| plan_file_err(path, format!("not a cbflow plan file: {e}")))?;
    if file.format != PLAN_FILE_FORMAT {
        return Err(plan_file_err(
            path,
            format!(
                "format: plan-file format {} (this cbflow reads format {PLAN_FILE_FORMAT})",
                file.format
            ),
        ));
    }
    let version = env!("CARGO_PKG_VERSION");
    if file.plan.cbflow_version != version {
        return Err(plan_file_err(
            path,
            format!(
                "cbflow-version: the plan was resolved by cbflow {}, this is cbflow {version}; submit again with this version",
                file.plan.cbflow_version
            ),
        ));
    }
    let mut plan = file.plan;
    plan.workflow_text = file.workflow_text;
    Ok(plan)
}

impl Plan {
    /// The part of this plan one participant's task runs: the jobs of participant `label`
    /// (with or without `sub-`), in the plan's order, with their dependencies renumbered; the
    /// same jobs, parameters and inputs as a plan resolved for that participant alone.
    ///
    /// # Errors
    /// [`Error::Resolve`] when the plan has no job of that participant, or one of its jobs
    /// depends on a job of another participant.
    pub fn for_participant(&self, label: &str) -> Result<Plan> {
        let label = label.strip_prefix("sub-").unwrap_or(label);
        let keep: Vec<usize> = (0..self.jobs.len())
            .filter(|&i| self.jobs[i].participant.as_deref() == Some(label))
            .collect();
        if keep.is_empty() {
            return Err(plan_file_err(
                Path::new(&self.origin),
                format!("the plan has no job of participant sub-{label}"),
            ));
        }
        let mut new_index = vec![None; self.jobs.len()];
        for (n, &i) in keep.iter().enumerate() {
            new_index[i] = Some(n);
        }
        let mut jobs = Vec::with_capacity(keep.len());
        for &i in &keep {
            let mut job = self.jobs[i].clone();
            job.deps = job
                .deps
                .iter()
                .map(|&d| {
                    new_index[d].ok_or_else(|| {
                        plan_file_err(
                            Path::new(&self.origin),
                            format!(
                                "job {} depends on {}, which is not a job of sub-{label}",
                                job.id, self.jobs[d].id
                            ),
                        )
                    })
                })
                .collect::<Result<_>>()?;
            jobs.push(job);
        }
        Ok(Plan {
            jobs,
            ..self.clone()
        })
    }
}
