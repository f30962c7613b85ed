//! BIDS-Derivatives naming and writing: file names built from the source entities plus
//! `space-`, `res-`, `desc-`; a writer that creates `dataset_description.json` and writes every
//! file atomically (temporary file in the same directory, fsync, rename).

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use crate::error::io_err;
use crate::layout::is_safe_relative;
use crate::{Entities, Error, Result, Table, validate_label};

/// BIDS version written into `dataset_description.json` of derivatives.
pub const BIDS_VERSION: &str = "1.10.0";

/// Builder of a derivative file name from source entities.
///
/// ```
/// # use cbflow_bids::{DerivativeName, parse_filename};
/// let (src, _, _) = parse_filename("sub-01_ses-pre_acq-pcasl_run-1_asl.nii.gz").unwrap();
/// let p = DerivativeName::from_entities(&src)
///     .datatype("perf")
///     .set("space", "MNI152NLin6Asym")
///     .set("res", "2")
///     .set("desc", "mean")
///     .suffix("cbf")
///     .extension(".nii.gz")
///     .rel_path()
///     .unwrap();
/// assert_eq!(
///     p.to_str().unwrap(),
///     "sub-01/ses-pre/perf/sub-01_ses-pre_acq-pcasl_run-1_space-MNI152NLin6Asym_res-2_desc-mean_cbf.nii.gz"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivativeName {
    entities: Entities,
    datatype: Option<String>,
    suffix: Option<String>,
    extension: String,
}

impl DerivativeName {
    /// Starts from the entities of a source file (all kept, in BIDS order).
    pub fn from_entities(entities: &Entities) -> Self {
        Self {
            entities: entities.clone(),
            datatype: None,
            suffix: None,
            extension: String::new(),
        }
    }

    /// A group-level name with no subject (written at the root of the derivatives dataset).
    pub fn group() -> Self {
        Self::from_entities(&Entities::new())
    }

    /// Sets the datatype directory (`perf`, `anat`, ...); ignored for group-level names.
    pub fn datatype(mut self, datatype: &str) -> Self {
        self.datatype = Some(datatype.into());
        self
    }

    /// Sets (or replaces) entity `key`; the label is checked by [`DerivativeName::rel_path`].
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.entities.set(key, value);
        self
    }

    /// Removes entity `key` (e.g. `run` for a per-session mean).
    pub fn remove(mut self, key: &str) -> Self {
        self.entities.remove(key);
        self
    }

    /// Sets the suffix (`cbf`, `mask`, `timeseries`, ...).
    pub fn suffix(mut self, suffix: &str) -> Self {
        self.suffix = Some(suffix.into());
        self
    }

    /// Sets the extension, with its dot (`.nii.gz`, `.json`, `.tsv`).
    pub fn extension(mut self, ext: &str) -> Self {
        self.extension = ext.into();
        self
    }

    /// The entities so far.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// The file name: entities in BIDS order, suffix, extension.
    pub fn file_name(&self) -> Result<String> {
        let suffix = self
            .suffix
            .as_deref()
            .ok_or_else(|| Error::Derivative(format!("no suffix set for {}", self.entities)))?;
        if suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::Derivative(format!(
                "suffix {suffix:?} must be alphanumeric"
            )));
        }
        for (k, v) in self.entities.iter() {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Error::Derivative(format!(
                    "entity key {k:?} must be alphanumeric"
                )));
            }
            validate_label(v).map_err(|e| Error::Derivative(format!("entity {k:?}: {e}")))?;
        }
        let ext = &self.extension;
        if !ext.is_empty()
            && (!ext.starts_with('.')
                || !ext[1..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.'))
        {
            return Err(Error::Derivative(format!(
                "extension {ext:?} must look like \".nii.gz\""
            )));
        }
        let prefix = self.entities.to_name_prefix();
        Ok(if prefix.is_empty() {
            format!("{suffix}{ext}")
        } else {
            format!("{prefix}_{suffix}{ext}")
        })
    }

    /// The path relative to the derivatives root:
    /// `sub-<sub>/[ses-<ses>/][<datatype>/]<file name>`, or just the file name when there is no
    /// `sub` entity (group level). Fails when a label is not alphanumeric or no suffix is set.
    pub fn rel_path(&self) -> Result<PathBuf> {
        let name = self.file_name()?;
        let mut p = PathBuf::new();
        if let Some(sub) = self.entities.get("sub") {
            p.push(format!("sub-{sub}"));
            if let Some(ses) = self.entities.get("ses") {
                p.push(format!("ses-{ses}"));
            }
            if let Some(dt) = &self.datatype {
                validate_label(dt).map_err(|e| Error::Derivative(format!("datatype: {e}")))?;
                p.push(dt);
            }
        }
        p.push(name);
        Ok(p)
    }
}

/// `GeneratedBy` entry of a derivatives `dataset_description.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedBy {
    /// Pipeline name (`cbflow`).
    pub name: String,
    /// Pipeline version.
    pub version: String,
    /// Where the code lives.
    pub code_url: Option<String>,
}

/// `SourceDatasets` entry of a derivatives `dataset_description.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceDataset {
    /// URL or BIDS URI of the source (e.g. `file:///data/study`).
    pub url: Option<String>,
    /// DOI of the source.
    pub doi: Option<String>,
    /// Version of the source.
    pub version: Option<String>,
}

/// Checks that `out_dir` may receive outputs for the BIDS dataset at `bids_root`: the input
/// dataset is never written to, so `out_dir` must not be the dataset root, nor inside it other
/// than strictly under `<bids_root>/derivatives/`. Both paths are canonicalised (symlinks
/// resolved; for an `out_dir` that does not exist yet, its nearest existing ancestor). The
/// error names both paths.
pub fn check_output_dir(bids_root: &Path, out_dir: &Path) -> Result<()> {
    let root = fs::canonicalize(bids_root).map_err(io_err(bids_root))?;
    let out = canonicalize_maybe_missing(out_dir)?;
    let refuse = |message: &str| Error::OutputDir {
        bids_root: root.clone(),
        out_dir: out.clone(),
        message: message.into(),
    };
    if out == root {
        return Err(refuse("the output directory is the input BIDS dataset"));
    }
    if out.starts_with(&root) {
        let deriv = root.join("derivatives");
        if out == deriv {
            return Err(refuse(
                "write into a pipeline subdirectory of derivatives/ (e.g. derivatives/cbflow), not derivatives/ itself",
            ));
        }
        if !out.starts_with(&deriv) {
            return Err(refuse(
                "the output directory is inside the input BIDS dataset (only <bids_root>/derivatives/<name> is allowed)",
            ));
        }
    }
    Ok(())
}

fn canonicalize_maybe_missing(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(io_err(p))?.join(p)
    };
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = fs::canonicalize(&existing).map_err(io_err(&existing))?;
    for c in rest.iter().rev() {
        if Path::new(c)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(Error::Derivative(format!(
                "{}: '..' in a path that does not exist yet",
                p.display()
            )));
        }
        out.push(c);
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically and durably: creates the parent directories, then
/// [`cbflow_image::write_atomically`] with [`cbflow_image::Durability::Durable`] (a temporary
/// file in the same directory, fsynced, renamed over `path`, then the directory fsynced). A
/// reader sees either the old file or the complete new one; on error the temporary file is
/// removed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::Derivative(format!(
            "{}: not a file path",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    cbflow_image::write_atomically(path, cbflow_image::Durability::Durable, |f| {
        f.write_all(bytes)
    })
    .map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a BIDS derivatives dataset. Every write is atomic ([`atomic_write`]); relative paths
/// must stay inside the output directory.
#[derive(Debug, Clone)]
pub struct DerivativesWriter {
    out_dir: PathBuf,
}

impl DerivativesWriter {
    /// Creates `out_dir` (and parents) and writes its `dataset_description.json`: `Name`,
    /// `BIDSVersion` ([`BIDS_VERSION`]), `DatasetType: "derivative"`, `GeneratedBy` and
    /// `SourceDatasets` (when given). Call [`check_output_dir`] first so that the input dataset
    /// is never written to.
    pub fn create(
        out_dir: &Path,
        generated_by: GeneratedBy,
        source_datasets: &[SourceDataset],
    ) -> Result<Self> {
        fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
        let mut gb = json!({ "Name": generated_by.name, "Version": generated_by.version });
        if let Some(url) = &generated_by.code_url {
            gb["CodeURL"] = json!(url);
        }
        let mut dd = json!({
            "Name": format!("{} outputs", generated_by.name),
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [gb],
        });
        if !source_datasets.is_empty() {
            let sds: Vec<Value> = source_datasets
                .iter()
                .map(|s| {
                    let mut o = serde_json::Map::new();
                    if let Some(u) = &s.url {
                        o.insert("URL".into(), json!(u));
                    }
                    if let Some(d) = &s.doi {
                        o.insert("DOI".into(), json!(d));
                    }
                    if let Some(v) = &s.version {
                        o.insert("Version".into(), json!(v));
                    }
                    Value::Object(o)
                })
                .collect();
            dd["SourceDatasets"] = Value::Array(sds);
        }
        let w = Self {
            out_dir: out_dir.to_path_buf(),
        };
        w.write_json(Path::new("dataset_description.json"), &dd)?;
        Ok(w)
    }

    /// The output directory.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The absolute path of `rel`, refusing absolute paths and `..`.
    pub fn path_of(&self, rel: &Path) -> Result<PathBuf> {
        if !is_safe_relative(rel) {
            return Err(Error::Derivative(format!(
                "{}: must be a relative path inside the output directory",
                rel.display()
            )));
        }
        Ok(self.out_dir.join(rel))
    }

    /// Writes a JSON value (pretty-printed, trailing newline) at `rel`.
    pub fn write_json(&self, rel: &Path, value: &Value) -> Result<PathBuf> {
        let p = self.path_of(rel)?;
        let mut s = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
            path: p.clone(),
            message: e.to_string(),
        })?;
        s.push('\n');
        atomic_write(&p, s.as_bytes())?;
        Ok(p)
    }

    /// Writes a table as TSV at `rel` and its JSON sidecar beside it (what every table of a
    /// derivatives dataset has); returns both paths, the table first.
    pub fn write_table(&self, rel: &Path, table: &Table, sidecar: &Value) -> Result<Vec<PathBuf>> {
        Ok(vec![
            self.write_tsv(rel, table)?,
            self.write_json(&Self::sidecar_path(rel), sidecar)?,
        ])
    }

    /// Writes a table as TSV at `rel`.
    pub fn write_tsv(&self, rel: &Path, table: &Table) -> Result<PathBuf> {
        let p = self.path_of(rel)?;
        let s = table.to_tsv().map_err(|e| match e {
            Error::Table { message, .. } => Error::Table {
                path: p.clone(),
                message,
            },
            other => other,
        })?;
        atomic_write(&p, s.as_bytes())?;
        Ok(p)
    }

    /// Writes raw bytes (an HTML report, an SVG figure) at `rel`.
    pub fn write_bytes(&self, rel: &Path, bytes: &[u8]) -> Result<PathBuf> {
        let p = self.path_of(rel)?;
        atomic_write(&p, bytes)?;
        Ok(p)
    }

    /// Writes a NIfTI image at `rel` (`.nii` or `.nii.gz`) with [`cbflow_image::write`] (which is
    /// atomic), creating parent directories, then its JSON sidecar next to it (`x.nii.gz` →
    /// `x.json`). Returns the image path.
    pub fn write_nifti(
        &self,
        rel: &Path,
        vol: &cbflow_image::Volume,
        dtype: cbflow_image::DataType,
        sidecar: &Value,
    ) -> Result<PathBuf> {
        let p = self.path_of(rel)?;
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        // an image in an MNI152 space (`space-MNI152…`) says so in its header, as FSL's and
        // TemplateFlow's MNI files do: sform and qform code 4 (NIFTI_XFORM_MNI_152)
        let mni = rel.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.split('_').any(|e| {
                e.strip_prefix("space-")
                    .is_some_and(|s| s.starts_with("MNI152"))
            })
        });
        let coded;
        let vol = if mni && (vol.info.sform_code != 4 || vol.info.qform_code != 4) {
            let mut v = vol.clone();
            v.info.sform_code = 4;
            v.info.qform_code = 4;
            coded = v;
            &coded
        } else {
            vol
        };
        cbflow_image::write(&p, vol, dtype)?;
        self.write_json(&Self::sidecar_path(rel), sidecar)?;
        Ok(p)
    }

    /// Path of the JSON sidecar of an image at `rel` (`x.nii.gz` → `x.json`).
    pub fn sidecar_path(rel: &Path) -> PathBuf {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.split_once('.').map(|(s, _)| s).unwrap_or(&name);
        rel.with_file_name(format!("{stem}.json"))
    }
}
