//! Submitting the scripts (sbatch) and waiting for the jobs (scontrol).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::request::{GROUP_PLAN_FILE, PARTICIPANT_PLAN_FILE, Request, ctx, slurm_err};
use super::script::scripts;
use crate::error::Result;

/// What was submitted.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Scripts, the task table and the logs.
    pub dir: PathBuf,
    /// The array job id.
    pub participant_job: Option<String>,
    /// The group job id.
    pub group_job: Option<String>,
    /// Participant of each array index.
    pub participants: Vec<String>,
}

fn sbatch(script: &Path, dependency: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(d) = dependency {
        cmd.arg(format!("--dependency=afterok:{d}"))
            .arg("--kill-on-invalid-dep=yes");
    }
    cmd.arg(script);
    let out = ctx(cmd.output(), || {
        format!(
            "running sbatch for {} (is SLURM installed and on PATH?)",
            script.display()
        )
    })?;
    if !out.status.success() {
        return Err(slurm_err(format!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(slurm_err(format!(
            "sbatch {} printed no job id: {text:?}",
            script.display()
        )));
    }
    Ok(id)
}

/// Writes the scripts into `dir` and submits them; the group job depends on the array.
pub fn submit(req: &Request, dir: &Path) -> Result<Submission> {
    ctx(std::fs::create_dir_all(dir), || {
        format!("creating {}", dir.display())
    })?;
    let (p_script, g_script) = scripts(req, dir);
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        ctx(cbflow_bids::atomic_write(&path, text.as_bytes()), || {
            format!("writing {}", path.display())
        })?;
        Ok(path)
    };
    let mut tasks = String::from("array_index\tparticipant_id\tlog\n");
    for (i, l) in req.participants.iter().enumerate() {
        let _ = writeln!(tasks, "{i}\tsub-{l}\tparticipant-{i}.log");
    }
    write("tasks.tsv", &tasks)?;
    // the plans the tasks run, resolved here once
    for (plan, name) in [
        (&req.participant_plan, PARTICIPANT_PLAN_FILE),
        (&req.group_plan, GROUP_PLAN_FILE),
    ] {
        if let Some(plan) = plan {
            crate::plan_file::write_plan(plan, &dir.join(name))?;
        }
    }
    let participant_job = match &p_script {
        Some(s) => Some(sbatch(&write("participant.sbatch", s)?, None)?),
        None => None,
    };
    let group_job = match &g_script {
        Some(s) => Some(sbatch(
            &write("group.sbatch", s)?,
            participant_job.as_deref(),
        )?),
        None => None,
    };
    Ok(Submission {
        dir: dir.to_path_buf(),
        participant_job,
        group_job,
        participants: req.participants.clone(),
    })
}

/// State of one job or array task, from `scontrol show job -o`.
#[derive(Debug, Clone, PartialEq)]
struct TaskState {
    /// Array index, when an array task (ranges like `0-3` while pending are `None`).
    index: Option<usize>,
    state: String,
    exit_code: String,
    reason: String,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn parse_scontrol(text: &str) -> Vec<TaskState> {
    text.lines()
        .filter(|l| l.contains("JobState="))
        .map(|l| TaskState {
            index: field(l, "ArrayTaskId").and_then(|v| v.parse().ok()),
            state: field(l, "JobState").unwrap_or("UNKNOWN").to_string(),
            exit_code: field(l, "ExitCode").unwrap_or("?").to_string(),
            reason: field(l, "Reason").unwrap_or("None").to_string(),
        })
        .collect()
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
    )
}

fn query(job: &str) -> Result<Vec<TaskState>> {
    let out = ctx(
        Command::new("scontrol")
            .args(["show", "job", "-o", job])
            .output(),
        || "running scontrol".into(),
    )?;
    if !out.status.success() {
        return Err(slurm_err(format!(
            "scontrol show job {job}: {} (a finished job is forgotten after SLURM's MinJobAge; its log is in the submission directory)",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(parse_scontrol(&String::from_utf8_lossy(&out.stdout)))
}

/// Polls until `job` has ended (for an array: every task; tasks not yet started show as one
/// pending line).
fn wait_job(job: &str, poll: Duration, deadline: Option<Instant>) -> Result<Vec<TaskState>> {
    loop {
        let states = query(job)?;
        if !states.is_empty() && states.iter().all(|s| is_terminal(&s.state)) {
            return Ok(states);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(slurm_err(format!(
                "job {job} has not ended within the --wait-timeout; it is still queued or running"
            )));
        }
        std::thread::sleep(poll);
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let v: Vec<&str> = t.lines().collect();
            v[v.len().saturating_sub(lines)..]
                .iter()
                .map(|l| format!("    | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (log {} unreadable: {e})", path.display()),
    }
}

/// Waits for a submission; a failed task is reported with the end of its log.
pub fn wait(s: &Submission, poll: Duration, timeout: Option<Duration>) -> Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut failures = Vec::new();
    if let Some(job) = &s.participant_job {
        let states = wait_job(job, poll, deadline)?;
        for t in states.iter().filter(|t| t.state != "COMPLETED") {
            let i = t.index.unwrap_or(0);
            let label = s.participants.get(i).map_or("?", String::as_str);
            let log = s.dir.join(format!("participant-{i}.log"));
            failures.push(format!(
                "  sub-{label} (job {job}_{i}) {} with exit code {}; {}:\n{}",
                t.state,
                t.exit_code,
                log.display(),
                log_tail(&log, 12)
            ));
        }
        let ok = states.len() - failures.len();
        tracing::info!(
            "participant array {job}: {ok} of {} tasks completed",
            s.participants.len()
        );
    }
    if let Some(job) = &s.group_job {
        let states = wait_job(job, poll, deadline)?;
        for t in states.iter().filter(|t| t.state != "COMPLETED") {
            let log = s.dir.join("group.log");
            let why = if t.reason == "DependencyNeverSatisfied" {
                "not run: a participant task failed (DependencyNeverSatisfied)".to_string()
            } else {
                format!(
                    "{} with exit code {}; {}:\n{}",
                    t.state,
                    t.exit_code,
                    log.display(),
                    log_tail(&log, 12)
                )
            };
            failures.push(format!("  group (job {job}) {why}"));
        }
    }
    if !failures.is_empty() {
        return Err(slurm_err(format!(
            "{} SLURM job(s) did not complete:\n{}",
            failures.len(),
            failures.join("\n")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_lines_parse() {
        let text = "JobId=7 ArrayJobId=7 ArrayTaskId=0 JobName=x JobState=COMPLETED Reason=None ExitCode=0:0\n\
                    JobId=8 ArrayJobId=7 ArrayTaskId=1 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0\n";
        let s = parse_scontrol(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].index, Some(1));
        assert_eq!(s[1].state, "FAILED");
        assert_eq!(s[1].exit_code, "1:0");
        let pending = parse_scontrol(
            "JobId=9 ArrayJobId=9 ArrayTaskId=0-3 JobState=PENDING Reason=Priority\n",
        );
        assert_eq!(pending[0].index, None);
        assert!(!is_terminal(&pending[0].state));
    }
}
