//! What a submission asks for: the tasks' resources, how they start cbflow, and the options
//! they get, built from the plans ([`Request::from_plans`]).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::plan::{Job, Overrides, Plan};
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

/// What a submission takes from the command line besides the plans.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// The input dataset as the tasks name it (made absolute; the plan holds its canonical
    /// path, which a compute node need not reach by the same name).
    pub bids_dir: PathBuf,
    /// The work directory every task shares (made absolute), so that the group job finds the
    /// participant jobs in the cache.
    pub work_dir: PathBuf,
    /// The workflow file (made absolute and mounted); `None`: the built-in workflow.
    pub workflow: Option<PathBuf>,
    /// The overrides the plans were made with: every task gets them as options, so it plans
    /// what was planned here (the resource directory is the plans' resolved one).
    pub overrides: Overrides,
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
    /// of its jobs; `None`: no array) and `group` (the group-level plan: one job after the
    /// array; `None`: none). Each task gets the resources of its plan's largest job (for the
    /// group job, of the group's own jobs, not of the participant jobs it reads), then
    /// `opts`' CPUs, memory and time over them; the options the tasks run with are the
    /// overrides, the plans' resource directory, the workflow file and the work directory.
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
        let output_dir = absolute(&first.output_dir)?;
        // the options every task gets (absolute paths: tasks may start elsewhere)
        let work_dir = absolute(&opts.work_dir)?;
        let mut forward = vec!["--work-dir".to_string(), work_dir.display().to_string()];
        let mut extra_mounts = Vec::new();
        if !work_dir.starts_with(&output_dir) {
            extra_mounts.push((work_dir, false));
        }
        let ov = &opts.overrides;
        if ov.cluster_threshold.is_some() {
            return Err(slurm_err(
                "a cluster-threshold override has no command-line option to reach the tasks",
            ));
        }
        if let Some(t) = ov.template {
            forward.extend(["--template".into(), t.as_str().to_string()]);
        }
        if let Some(x) = ov.seed {
            forward.extend(["--seed".into(), x.to_string()]);
        }
        if let Some(x) = ov.permutations {
            forward.extend(["--permutations".into(), x.to_string()]);
        }
        if let Some(x) = ov.smoothing_fwhm_mm {
            forward.extend(["--smoothing".into(), x.to_string()]);
        }
        if let Some(r) = array
            .and_then(|p| p.resources_dir.as_ref())
            .or(group.and_then(|p| p.resources_dir.as_ref()))
        {
            let r = absolute(r)?;
            forward.extend(["--resources".into(), r.display().to_string()]);
            extra_mounts.push((r, true));
        }
        if let Some(w) = &opts.workflow {
            let w = absolute(w)?;
            forward.extend(["--workflow".into(), w.display().to_string()]);
            extra_mounts.push((w, true));
        }
        Ok(Self {
            bids_dir: absolute(&opts.bids_dir)?,
            output_dir,
            participants,
            group: group.is_some(),
            forward,
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
            workflow: None,
            overrides: Overrides::default(),
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
        assert!(r.group);
        // the work directory inside OUTPUT_DIR is mounted with it; the resources are the plan's
        assert_eq!(
            r.forward,
            ["--work-dir", "/out/.cbflow-work", "--resources", "/res"]
        );
        assert_eq!(r.extra_mounts, [(PathBuf::from("/res"), true)]);
    }

    #[test]
    fn the_command_line_wins_over_the_plans() {
        let (p, g) = (participant_plan(), group_plan());
        let opts = SubmitOptions {
            work_dir: "/scratch/work".into(),
            workflow: Some("/w/study.yaml".into()),
            overrides: Overrides {
                template: Some(TemplateName::Phantom),
                seed: Some(3),
                permutations: Some(50),
                smoothing_fwhm_mm: Some(4.5),
                ..Default::default()
            },
            cpus: Some(7),
            participant_mem_gb: Some(1.5),
            time_min: Some(33),
            ..options()
        };
        let r = Request::from_plans(Some(&p), Some(&g), &opts).unwrap();
        assert_eq!(r.participant_resources, res(7, 1.5, 33));
        // --mem-gb is the memory of each participant task; the group job keeps its plan's
        assert_eq!(r.group_resources, res(7, 8.0, 33));
        assert_eq!(
            r.forward,
            [
                "--work-dir",
                "/scratch/work",
                "--template",
                "phantom",
                "--seed",
                "3",
                "--permutations",
                "50",
                "--smoothing",
                "4.5",
                "--resources",
                "/res",
                "--workflow",
                "/w/study.yaml"
            ]
        );
        assert_eq!(
            r.extra_mounts,
            [
                (PathBuf::from("/scratch/work"), false),
                (PathBuf::from("/res"), true),
                (PathBuf::from("/w/study.yaml"), true)
            ]
        );
        // an override no task option carries is refused, not dropped
        let mut opts = opts;
        opts.overrides.cluster_threshold = Some(3.1);
        assert!(Request::from_plans(Some(&p), Some(&g), &opts).is_err());
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
        assert!(r.participants.is_empty() && r.group);
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
