//! The files a plan reads and hashes besides the dataset's: the dataset root's own files, the
//! template's resource directories, a workflow's atlas files (resolved against the workflow
//! file) and the receptor step's PET maps.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_err};

/// Subdirectories of a resource directory that the MNI template reads: the directories of
/// [`cbflow_pipeline::Template::MNI_FILES`], in order. Every file in them (licences included)
/// keys the participant jobs.
pub(crate) fn mni_resource_dirs() -> Vec<&'static str> {
    let mut dirs: Vec<&'static str> = Vec::new();
    for f in cbflow_pipeline::Template::MNI_FILES {
        let (dir, _) = f.rsplit_once('/').expect("a file in a directory");
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

pub(crate) fn resolve_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Resolve {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Every regular file under `dir` (recursively, sorted; hidden entries skipped).
pub(crate) fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io_err(dir))?;
    entries.sort();
    for p in entries {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            walk_files(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// The files directly in the dataset root (dataset_description.json, participants.tsv,
/// top-level sidecars...).
pub(crate) fn root_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(io_err(root))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Makes an `asl-cbf` atlas's paths absolute (relative ones against the workflow file's
/// directory; the current directory for the built-in workflow) and checks that its files exist.
pub(crate) fn resolve_atlas(
    a: &mut crate::spec::AtlasSpec,
    origin: &str,
    step: &str,
) -> Result<()> {
    let origin_path = Path::new(origin);
    let base = if origin_path.is_file() {
        origin_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        PathBuf::new()
    };
    let mut paths = vec![("image", &mut a.image)];
    if let Some(labels) = &mut a.labels {
        paths.push(("labels", labels));
    }
    for (field, path) in paths {
        let full = if path.is_absolute() {
            path.clone()
        } else {
            base.join(&*path)
        };
        let full = std::fs::canonicalize(&full).map_err(|e| {
            resolve_err(
                &full,
                format!("step `{step}`: atlas {field}: {e} (relative paths are relative to the workflow file's directory)"),
            )
        })?;
        *path = full;
    }
    Ok(())
}

/// The PET maps and parcellation a receptor step reads (they key its cache: a run without the
/// resource directory, which skips the step, is not a cache hit for a run with it).
pub(crate) fn receptor_files(
    p: &crate::spec::ReceptorCorrelationParams,
    resources: Option<&Path>,
    origin: &str,
) -> Result<Vec<PathBuf>> {
    let Some(root) = resources else {
        return Ok(Vec::new());
    };
    let registry = cbflow_resources::Registry::builtin()
        .map_err(|e| resolve_err(Path::new(origin), e.to_string()))?;
    let maps = registry
        .select(&p.maps)
        .map_err(|e| resolve_err(Path::new(origin), e.to_string()))?;
    let mut files: Vec<PathBuf> = maps.iter().map(|m| root.join(&m.file)).collect();
    if let Some(parc) = registry.parcellation(&p.parcellation) {
        files.push(root.join(&parc.file));
        files.push(root.join(&parc.labels));
    }
    Ok(files.into_iter().filter(|f| f.is_file()).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mni_directories_are_those_of_the_template_files() {
        assert_eq!(
            super::mni_resource_dirs(),
            [
                "templates/fsl_mni152nlin6asym_2mm",
                "templates/spm12_2mm",
                "atlases/aal3"
            ]
        );
    }
}
