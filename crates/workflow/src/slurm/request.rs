//! What a submission asks for: the tasks' resources, how they start cbflow, and the options
//! they get, built from the plans ([`Request::from_plans`]).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::plan::{Job, Plan};
use crate::spec::Resources;

/// An [`Error::Slurm`] with this message.
pub(super) fn slurm_err(message: impl Into<String>) -> Error {
    Error::Slurm(message.into())
}

/// `r`, or an [`Error::Slurm`] saying what was being done and why it failed.
pub(super) fn ctx<T, E: std::fmt::Display>(
    r: std::result::Result<T, E>,
    what: impl FnOnce() -> String,
) -> Result<T> {
    r.map_err(|e| slurm_err(format!("{}: {e}", what())))
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
    pub(super) fn prefix(&self, mounts: &[(&Path, bool)]) -> Vec<String> {
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
    /// The participant-level plan the array tasks run (`plan-participant.json` in the
    /// submission directory), each its participant's part of it.
    pub participant_plan: Option<Plan>,
    /// The group-level plan the group job runs (`plan-group.json`).
    pub group_plan: Option<Plan>,
    /// The work directory every task shares (absolute), so that the group job finds the
    /// participant jobs in the cache.
    pub work_dir: PathBuf,
    /// Directories the tasks must see besides BIDS_DIR and OUTPUT_DIR (the dataset's canonical
    /// path, the resource directory, the work directory, the directories of files the jobs read
    /// elsewhere, e.g. an atlas next to the workflow file).
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

/// File name of the participant-level plan in the submission directory.
pub const PARTICIPANT_PLAN_FILE: &str = "plan-participant.json";

/// File name of the group-level plan in the submission directory.
pub const GROUP_PLAN_FILE: &str = "plan-group.json";

/// What a submission takes from the command line besides the plans.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// The input dataset as the command line named it (made absolute; mounted with the plans'
    /// canonical path when that differs).
    pub bids_dir: PathBuf,
    /// The work directory every task shares (made absolute), so that the group job finds the
    /// participant jobs in the cache.
    pub work_dir: PathBuf,
    /// CPUs of every task (`--nprocs`); unset: the plans' largest job.
    pub cpus: Option<usize>,
    /// Memory of each participant task (GB, `--mem-gb`); unset: the plan's largest job. The
    /// group job keeps its plan's.
    pub participant_mem_gb: Option<f64>,
    /// Wall time of every task (minutes, `--slurm-time`); unset: the plans' longest job.
    pub time_min: Option<u64>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// How tasks start cbflow.
    pub launcher: Launcher,
}

/// The resources of a task when its plan gives no job to take them from.
const FALLBACK: Resources = Resources {
    cpus: 2,
    mem_gb: 4.0,
    time_min: 120,
};

/// What one task needs to run `jobs` (one after another or side by side): the most CPUs,
/// memory and time of any of them; `None` for no job.
fn largest<'a>(jobs: impl Iterator<Item = &'a Job>) -> Option<Resources> {
    jobs.map(|j| j.resources).reduce(|a, r| Resources {
        cpus: a.cpus.max(r.cpus),
        mem_gb: a.mem_gb.max(r.mem_gb),
        time_min: a.time_min.max(r.time_min),
    })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    ctx(std::path::absolute(p), || {
        format!("resolving {}", p.display())
    })
}

impl Request {
    /// The submission of `array` (the participant-level plan: one array task per participant
    /// of its jobs, each running its participant's part of the plan; `None`: no array) and
    /// `group` (the group-level plan: one job after the array; `None`: none). Each task gets
    /// the resources of its plan's largest job (for the group job, of the group's own jobs,
    /// not of the participant jobs it reads), then `opts`' CPUs, memory and time over them.
    /// The tasks run the plans themselves (written into the submission directory by
    /// [`super::submit`]): they resolve nothing again.
    pub fn from_plans(
        array: Option<&Plan>,
        group: Option<&Plan>,
        opts: &SubmitOptions,
    ) -> Result<Self> {
        let Some(first) = array.or(group) else {
            return Err(slurm_err(
                "nothing to submit: neither a participant nor a group plan",
            ));
        };
        let mut participant_resources = array
            .and_then(|p| largest(p.jobs.iter()))
            .unwrap_or(FALLBACK);
        let mut group_resources = group
            .and_then(|p| largest(p.jobs.iter().filter(|j| !j.prerequisite)))
            .unwrap_or(FALLBACK);
        if let Some(n) = opts.cpus {
            participant_resources.cpus = n;
            group_resources.cpus = n;
        }
        if let Some(m) = opts.participant_mem_gb {
            participant_resources.mem_gb = m;
        }
        if let Some(t) = opts.time_min {
            participant_resources.time_min = t;
            group_resources.time_min = t;
        }
        let participants = array.map_or_else(Vec::new, |p| {
            let mut labels: Vec<String> = p
                .jobs
                .iter()
                .filter_map(|j| j.participant.clone())
                .collect();
            // a participant's jobs need not be adjacent (its report comes after every
            // participant's jobs): one task each, in label order
            labels.sort();
            labels.dedup();
            labels
        });
        let bids_dir = absolute(&opts.bids_dir)?;
        let output_dir = absolute(&first.output_dir)?;
        let work_dir = absolute(&opts.work_dir)?;
        // what the tasks read or write besides BIDS_DIR and OUTPUT_DIR, at the same paths
        let mut extra_mounts: Vec<(PathBuf, bool)> = Vec::new();
        let plans = || array.into_iter().chain(group);
        let canonical = absolute(&first.bids_dir)?;
        if canonical != bids_dir {
            extra_mounts.push((canonical.clone(), true));
        }
        if !work_dir.starts_with(&output_dir) {
            extra_mounts.push((work_dir.clone(), false));
        }
        let resources = match plans().find_map(|p| p.resources_dir.as_ref()) {
            Some(r) => {
                let r = absolute(r)?;
                extra_mounts.push((r.clone(), true));
                Some(r)
            }
            None => None,
        };
        // files a job reads outside those directories (an atlas or mask next to the workflow
        // file, say): their directories, read-only
        let seen = [
            Some(&canonical),
            Some(&bids_dir),
            Some(&output_dir),
            resources.as_ref(),
        ];
        let mut dirs: Vec<PathBuf> = plans()
            .flat_map(|p| p.jobs.iter())
            .flat_map(|j| j.inputs.iter())
            .filter(|f| !seen.iter().flatten().any(|d| f.starts_with(d)))
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        // a directory inside another one listed is covered by it
        let covered = |d: &PathBuf, all: &[PathBuf]| all.iter().any(|o| o != d && d.starts_with(o));
        let outer: Vec<PathBuf> = dirs
            .iter()
            .filter(|d| !covered(d, &dirs))
            .cloned()
            .collect();
        extra_mounts.extend(outer.into_iter().map(|d| (d, true)));
        Ok(Self {
            bids_dir,
            output_dir,
            participants,
            participant_plan: array.cloned(),
            group_plan: group.cloned(),
            work_dir,
            extra_mounts,
            participant_resources,
            group_resources,
            partition: opts.partition.clone(),
            account: opts.account.clone(),
            launcher: opts.launcher.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{AslCbfParams, CrossoverGroupParams, Level, Op, TemplateName};

    fn res(cpus: usize, mem_gb: f64, time_min: u64) -> Resources {
        Resources {
            cpus,
            mem_gb,
            time_min,
        }
    }

    fn job(participant: Option<&str>, resources: Resources, prerequisite: bool) -> Job {
        let (level, op) = match participant {
            Some(_) => (Level::Participant, Op::AslCbf(AslCbfParams::default())),
            None => (
                Level::Group,
                Op::CrossoverGroup(CrossoverGroupParams::default()),
            ),
        };
        Job {
            id: participant.map_or("group".into(), |l| format!("cbf/sub-{l}")),
            step: "x".into(),
            level,
            participant: participant.map(str::to_string),
            op,
            template: Some(TemplateName::Phantom),
            inputs: Vec::new(),
            matched: BTreeMap::new(),
            deps: Vec::new(),
            resources,
            prerequisite,
        }
    }

    fn plan(level: Level, jobs: Vec<Job>) -> Plan {
        Plan {
            workflow: "w".into(),
            origin: "w.yaml".into(),
            workflow_text: String::new(),
            bids_dir: "/data/bids".into(),
            output_dir: "/out".into(),
            level,
            resources_dir: Some("/res".into()),
            resources_dir_missing: None,
            cbflow_version: "test".into(),
            jobs,
        }
    }

    /// Two participants, one with two jobs (e.g. two participant steps), then a job of the
    /// first again (as its report comes after every participant's jobs).
    fn participant_plan() -> Plan {
        plan(
            Level::Participant,
            vec![
                job(Some("01"), res(2, 4.0, 120), false),
                job(Some("01"), res(4, 3.0, 60), false),
                job(Some("02"), res(1, 6.5, 30), false),
                job(Some("01"), res(1, 2.0, 30), false),
            ],
        )
    }

    /// The group's own jobs after a large participant job it reads (a prerequisite).
    fn group_plan() -> Plan {
        plan(
            Level::Group,
            vec![
                job(Some("01"), res(16, 64.0, 999), true),
                job(None, res(1, 8.0, 30), false),
                job(None, res(3, 2.0, 45), false),
            ],
        )
    }

    fn options() -> SubmitOptions {
        SubmitOptions {
            bids_dir: "/data/bids".into(),
            work_dir: "/out/.cbflow-work".into(),
            cpus: None,
            participant_mem_gb: None,
            time_min: None,
            partition: None,
            account: None,
            launcher: Launcher::Podman("img".into()),
        }
    }

    #[test]
    fn each_task_gets_the_largest_job_of_its_plan() {
        let (p, g) = (participant_plan(), group_plan());
        let r = Request::from_plans(Some(&p), Some(&g), &options()).unwrap();
        assert_eq!(r.participant_resources, res(4, 6.5, 120));
        // the participant job the group reads is not the group job's to run
        assert_eq!(r.group_resources, res(3, 8.0, 45));
        assert_eq!(r.participants, ["01", "02"]);
        assert!(r.group_plan.is_some());
        // the work directory inside OUTPUT_DIR is mounted with it; the resources are the plan's
        assert_eq!(r.work_dir, PathBuf::from("/out/.cbflow-work"));
        assert_eq!(r.extra_mounts, [(PathBuf::from("/res"), true)]);
        // the tasks run the plans themselves
        assert_eq!(r.participant_plan.as_ref().map(|p| p.jobs.len()), Some(4));
        assert_eq!(r.group_plan.as_ref().map(|p| p.jobs.len()), Some(3));
    }

    #[test]
    fn the_command_line_wins_over_the_plans() {
        let (p, g) = (participant_plan(), group_plan());
        let mut g = g;
        // a file a job reads outside the dataset, the output and the resources (an atlas next
        // to the workflow file): its directory is mounted, once
        g.jobs[1].inputs = vec!["/w/atlas/a.nii.gz".into(), "/w/atlas/a.tsv".into()];
        g.jobs[2].inputs = vec!["/w/atlas/sub/b.nii.gz".into(), "/data/bids/x.tsv".into()];
        let opts = SubmitOptions {
            work_dir: "/scratch/work".into(),
            cpus: Some(7),
            participant_mem_gb: Some(1.5),
            time_min: Some(33),
            ..options()
        };
        let r = Request::from_plans(Some(&p), Some(&g), &opts).unwrap();
        assert_eq!(r.participant_resources, res(7, 1.5, 33));
        // --mem-gb is the memory of each participant task; the group job keeps its plan's
        assert_eq!(r.group_resources, res(7, 8.0, 33));
        assert_eq!(r.work_dir, PathBuf::from("/scratch/work"));
        assert_eq!(
            r.extra_mounts,
            [
                (PathBuf::from("/scratch/work"), false),
                (PathBuf::from("/res"), true),
                (PathBuf::from("/w/atlas"), true)
            ]
        );
    }

    #[test]
    fn a_plan_without_jobs_gets_the_fallback() {
        let empty = plan(Level::Participant, Vec::new());
        let only_prerequisites = plan(
            Level::Group,
            vec![job(Some("01"), res(16, 64.0, 999), true)],
        );
        let r = Request::from_plans(Some(&empty), Some(&only_prerequisites), &options()).unwrap();
        assert_eq!(r.participant_resources, FALLBACK);
        assert_eq!(r.group_resources, FALLBACK);
        assert!(r.participants.is_empty());
        // the overrides still apply to the fallback
        let opts = SubmitOptions {
            cpus: Some(5),
            time_min: Some(10),
            ..options()
        };
        let g = group_plan();
        let r = Request::from_plans(None, Some(&g), &opts).unwrap();
        assert_eq!(r.participant_resources, res(5, 4.0, 10));
        assert_eq!(r.group_resources, res(5, 8.0, 10));
        assert!(r.participants.is_empty() && r.group_plan.is_some());
        assert!(Request::from_plans(None, None, &options()).is_err());
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
