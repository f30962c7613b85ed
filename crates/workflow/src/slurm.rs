//! The SLURM executor: the participant level as an sbatch array job (one task per participant)
//! and the group level as one job that starts only when every task succeeded
//! (`--dependency=afterok`). Each task runs this same binary (or the container image) with the
//! same options, so a cluster run writes what a local run writes.
//!
//! Waiting is one loop that asks `scontrol` every few seconds: there is nothing to do
//! concurrently while jobs run, so no async runtime is involved (see ARCHITECTURE.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// An [`Error::Slurm`] with this message.
fn slurm_err(message: impl Into<String>) -> Error {
    Error::Slurm(message.into())
}

/// `r`, or an [`Error::Slurm`] saying what was being done and why it failed.
fn ctx<T, E: std::fmt::Display>(
    r: std::result::Result<T, E>,
    what: impl FnOnce() -> String,
) -> Result<T> {
    r.map_err(|e| slurm_err(format!("{}: {e}", what())))
}

/// Cluster resources of one job.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    /// CPUs per task.
    pub cpus: usize,
    /// Memory per task (GB).
    pub mem_gb: f64,
    /// Wall-time limit (minutes).
    pub time_min: u64,
}

/// How tasks start the program.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// This binary, by its absolute path (it must be visible on the compute nodes).
    Binary(PathBuf),
    /// `podman run` of an image, with the dataset, output and work directories mounted at the
    /// same paths inside.
    Podman(String),
    /// `apptainer run --cleanenv` of a SIF file, same bind mounts.
    Apptainer(PathBuf),
}

impl Launcher {
    /// Parses `--container podman:IMAGE` / `apptainer:FILE.sif`; `None` = this binary.
    pub fn parse(container: Option<&str>) -> Result<Self> {
        match container {
            None => Ok(Self::Binary(ctx(std::env::current_exe(), || {
                "locating the cbflow binary".into()
            })?)),
            Some(c) => match c.split_once(':') {
                Some(("podman", image)) if !image.is_empty() => Ok(Self::Podman(image.into())),
                Some(("apptainer" | "singularity", sif)) if !sif.is_empty() => {
                    Ok(Self::Apptainer(PathBuf::from(sif)))
                }
                _ => Err(slurm_err(format!(
                    "--container {c:?}: expected podman:IMAGE or apptainer:FILE.sif (e.g. podman:localhost/cbflow)"
                ))),
            },
        }
    }

    /// The words that start the program, with `mounts` (absolute host paths) made visible.
    fn prefix(&self, mounts: &[(&Path, bool)]) -> Vec<String> {
        match self {
            Self::Binary(exe) => vec![exe.display().to_string()],
            Self::Podman(image) => {
                let mut v: Vec<String> = ["podman", "run", "--rm", "--pull=never"]
                    .map(String::from)
                    .to_vec();
                for (p, ro) in mounts {
                    v.push("-v".into());
                    v.push(format!(
                        "{0}:{0}{1}",
                        p.display(),
                        if *ro { ":ro" } else { "" }
                    ));
                }
                v.push(image.clone());
                v
            }
            Self::Apptainer(sif) => {
                let mut v: Vec<String> = ["apptainer", "run", "--cleanenv"]
                    .map(String::from)
                    .to_vec();
                for (p, ro) in mounts {
                    v.push("-B".into());
                    v.push(format!(
                        "{0}:{0}{1}",
                        p.display(),
                        if *ro { ":ro" } else { "" }
                    ));
                }
                v.push(sif.display().to_string());
                v
            }
        }
    }
}

/// A submission request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Input dataset (absolute).
    pub bids_dir: PathBuf,
    /// Output dataset (absolute).
    pub output_dir: PathBuf,
    /// Participants of the array (empty: no participant job).
    pub participants: Vec<String>,
    /// Submit the group job.
    pub group: bool,
    /// Options given to both levels (after BIDS_DIR OUTPUT_DIR LEVEL).
    pub forward: Vec<String>,
    /// Directories the tasks must see besides BIDS_DIR and OUTPUT_DIR (resources, work dir).
    pub extra_mounts: Vec<(PathBuf, bool)>,
    /// Resources of each participant task.
    pub participant_resources: Resources,
    /// Resources of the group job.
    pub group_resources: Resources,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// How tasks start cbflow.
    pub launcher: Launcher,
}

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

/// Quotes a word for bash.
fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn header(name: &str, r: &Resources, req: &Request, log: &str) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", r.cpus);
    let _ = writeln!(
        s,
        "#SBATCH --mem={}M",
        (r.mem_gb * 1024.0).ceil().max(1.0) as u64
    );
    let _ = writeln!(
        s,
        "#SBATCH --time={}:{:02}:00",
        r.time_min / 60,
        r.time_min % 60
    );
    let _ = writeln!(s, "#SBATCH --output={log}");
    if let Some(p) = &req.partition {
        let _ = writeln!(s, "#SBATCH --partition={}", sh(p));
    }
    if let Some(a) = &req.account {
        let _ = writeln!(s, "#SBATCH --account={}", sh(a));
    }
    s
}

/// The participant array script and the group script (`None` when not requested).
pub fn scripts(req: &Request, dir: &Path) -> (Option<String>, Option<String>) {
    let mut mounts: Vec<(&Path, bool)> = vec![(&req.bids_dir, true), (&req.output_dir, false)];
    mounts.extend(req.extra_mounts.iter().map(|(p, ro)| (p.as_path(), *ro)));
    let prefix: Vec<String> = req.launcher.prefix(&mounts).iter().map(|w| sh(w)).collect();
    let common = |level: &str| {
        let mut v = prefix.clone();
        v.push(sh(&req.bids_dir.display().to_string()));
        v.push(sh(&req.output_dir.display().to_string()));
        v.push(level.into());
        v.extend(req.forward.iter().map(|w| sh(w)));
        v.join(" ")
    };
    let participant = (!req.participants.is_empty()).then(|| {
        let r = &req.participant_resources;
        let mut s = header(
            "cbflow-participant",
            r,
            req,
            &dir.join("participant-%a.log").display().to_string(),
        );
        let _ = writeln!(s, "#SBATCH --array=0-{}", req.participants.len() - 1);
        s.push_str("set -euo pipefail\n");
        let labels: Vec<String> = req.participants.iter().map(|l| sh(l)).collect();
        let _ = writeln!(s, "labels=({})", labels.join(" "));
        s.push_str("label=${labels[$SLURM_ARRAY_TASK_ID]}\n");
        let _ = writeln!(
            s,
            "exec {} --participant-label \"$label\" --nprocs \"${{SLURM_CPUS_PER_TASK:-{}}}\"",
            common("participant"),
            r.cpus
        );
        s
    });
    let group = req.group.then(|| {
        let r = &req.group_resources;
        let mut s = header(
            "cbflow-group",
            r,
            req,
            &dir.join("group.log").display().to_string(),
        );
        s.push_str("set -euo pipefail\n");
        let _ = writeln!(
            s,
            "exec {} --nprocs \"${{SLURM_CPUS_PER_TASK:-{}}}\"",
            common("group"),
            r.cpus
        );
        s
    });
    (participant, group)
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

    fn request() -> Request {
        Request {
            bids_dir: "/data/my study".into(),
            output_dir: "/out".into(),
            participants: vec!["01".into(), "02".into()],
            group: true,
            forward: vec!["--template".into(), "phantom".into()],
            extra_mounts: vec![("/res".into(), true)],
            participant_resources: Resources {
                cpus: 2,
                mem_gb: 3.5,
                time_min: 90,
            },
            group_resources: Resources {
                cpus: 2,
                mem_gb: 8.0,
                time_min: 30,
            },
            partition: Some("debug".into()),
            account: None,
            launcher: Launcher::Podman("localhost/cbflow".into()),
        }
    }

    #[test]
    fn scripts_carry_resources_labels_and_quoted_paths() {
        let (p, g) = scripts(&request(), Path::new("/out/logs/slurm"));
        let p = p.unwrap();
        assert!(
            p.contains("#SBATCH --array=0-1\nset -euo pipefail\n"),
            "{p}"
        );
        // sbatch reads directives only before the first command
        let first_command = p.lines().position(|l| !l.starts_with('#')).unwrap();
        assert!(
            p.lines()
                .skip(first_command)
                .all(|l| !l.starts_with("#SBATCH"))
        );
        assert!(p.contains("#SBATCH --cpus-per-task=2\n"));
        assert!(p.contains("#SBATCH --mem=3584M\n"));
        assert!(p.contains("#SBATCH --time=1:30:00\n"));
        assert!(p.contains("#SBATCH --partition=debug\n"));
        assert!(p.contains("labels=(01 02)\n"));
        assert!(p.contains(
            "podman run --rm --pull=never -v '/data/my study:/data/my study:ro' -v /out:/out -v /res:/res:ro localhost/cbflow '/data/my study' /out participant --template phantom --participant-label \"$label\""
        ), "{p}");
        let g = g.unwrap();
        assert!(g.contains("#SBATCH --mem=8192M\n"));
        assert!(g.contains(" /out group --template phantom --nprocs"), "{g}");
        assert!(!g.contains("--array"));
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh("a'b"), r"'a'\''b'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("/x/y-1.nii.gz"), "/x/y-1.nii.gz");
    }

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

    #[test]
    fn launcher_parsing() {
        assert!(matches!(
            Launcher::parse(Some("podman:img")).unwrap(),
            Launcher::Podman(i) if i == "img"
        ));
        assert!(matches!(
            Launcher::parse(Some("apptainer:/x.sif")).unwrap(),
            Launcher::Apptainer(_)
        ));
        assert!(Launcher::parse(Some("docker")).is_err());
    }
}
