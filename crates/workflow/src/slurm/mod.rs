//! The SLURM executor: the participant level as an sbatch array job (one task per participant)
//! and the group level as one job that starts only when every task succeeded
//! (`--dependency=afterok`). The submission resolves the request once and writes each level's
//! plan into the submission directory; each task runs this same binary (or the container
//! image) on that plan (`cbflow run-plan`, a participant task on its participant's part), so a
//! cluster run runs what was checked before submission and writes what a local run writes.
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
pub use request::{GROUP_PLAN_FILE, Launcher, PARTICIPANT_PLAN_FILE, Request, SubmitOptions};
pub use script::scripts;
