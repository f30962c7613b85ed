//! What a submission asks for: the tasks' resources, how they start cbflow, and the options
//! they get.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
