//! The cbflow workflow: a typed YAML format, the plan it resolves to on a BIDS dataset, and a
//! local executor with a content-addressed cache and provenance.
//!
//! Two stages, as in ripgrep's `LowArgs` → `HiArgs`: [`Workflow::parse`] checks what was
//! written (unknown keys, types, step references, cycles — every error with file, line and
//! column), then [`plan`] resolves it against a dataset and a request into a [`Plan`] of jobs.
//! [`execute`] runs the plan: independent jobs in parallel within `nprocs` and `mem_gb`, each
//! job's result cached in the work directory under the hash of its inputs, parameters and the
//! code, so that a rerun only publishes and a killed run resumes.
//!
//! Adding an operation: a parameter struct implementing [`OpSpec`], one line in the `ops!`
//! list of `spec.rs`, and one match arm in [`PipelineRunner`].

mod cache;
mod error;
mod exec;
mod job;
mod plan;
mod plan_file;
mod plan_inputs;
mod plan_reports;
mod preflight;
mod published;
mod runner;
pub mod slurm;
mod spec;

pub use cache::{Done, HashCache, OutputFile, code_id, job_key, sha256_file, sha256_hex};
pub use error::{Error, Result};
pub use exec::{
    ExecOptions, JobContext, JobReport, JobRunner, JobStatus, RunSummary, execute_with,
    list_outputs,
};
pub use plan::{Job, Overrides, Plan, PlanRequest, plan};
pub use plan_file::{PLAN_FILE_FORMAT, read_plan, write_plan};
pub use preflight::{Resolved, check_templates, resolve};
pub use runner::{PipelineRunner, execute, template_choice};
pub use spec::{
    AslCbfParams, AtlasSpec, BUILTIN_WORKFLOW, BidsQuery, BrainBehaviourSpec, ContrastSpec,
    CorrelationCiSpec, CrossoverDesign, CrossoverGroupParams, FORMAT_VERSION, GroupReportKind,
    GroupReportParams, Input, Level, Located, OUT_ANAT, OUT_CBF, OUT_CBF_TEMPLATE, OUT_RECEPTORS,
    OUT_REPORT, OUT_STATMAPS, OUT_TABLES, Op, OpKind, OpSpec, PairedDesign, PairedGroupParams,
    ParticipantReportParams, Pos, REPORT_STEP, ReceptorCorrelationParams, ResourceSpec, Resources,
    ResponseSpec, RoiSpec, SessionScoresSpec, Slot, SlotKind, Step, StepRef, TailSpec,
    TemplateName, TfceSpec, Workflow,
};
