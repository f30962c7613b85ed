//! The SLURM executor: the participant level as an sbatch array job (one task per participant)
//! and the group level as one job that starts only when every task succeeded
//! (`--dependency=afterok`). Each task runs this same binary (or the container image) with the
//! same options, so a cluster run writes what a local run writes.
//!
//! Waiting is one loop that asks `scontrol` every few seconds: there is nothing to do
//! concurrently while jobs run, so no async runtime is involved (see ARCHITECTURE.md).
//!
//! `request` (what is submitted: resources, launcher, the tasks' options) → `script` (the
//! sbatch scripts) → `queue` (sbatch, scontrol, waiting).

mod queue;
mod request;
mod script;

pub use queue::{Submission, submit, wait};
pub use request::{Launcher, Request, SubmitOptions};
pub use script::scripts;
