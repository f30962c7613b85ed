//! Reading the derivatives: tables, sidecars, volumes, transforms; template detection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cbflow_bids::Entities;
use cbflow_bids::Table;
use cbflow_image::Volume;
use cbflow_pipeline::catalogue::{AnatFile, GroupFile, RunFile};
use cbflow_pipeline::{Template, TemplateChoice};
use ndarray::Array3;
use serde_json::Value;

use crate::{Error, Result};

/// Reads a NIfTI image, naming the file on error.
pub fn volume(path: &Path) -> Result<Volume> {
    cbflow_image::read(path).map_err(|e| Error::read(path, e))
}

/// Reads a NIfTI image when the file exists.
pub fn volume_opt(path: &Path) -> Result<Option<Volume>> {
    if path.exists() {
        volume(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The path under `output_dir` of a group step's file, named by the pipeline's catalogue.
pub(crate) fn group_file(output_dir: &Path, file: &GroupFile) -> Result<PathBuf> {
    file.path(output_dir)
        .map_err(|e| Error::invalid(output_dir, e))
}

/// The path under `output_dir` of the JSON sidecar of a group step's file.
pub(crate) fn group_sidecar(output_dir: &Path, file: &GroupFile) -> Result<PathBuf> {
    file.sidecar_path(output_dir)
        .map_err(|e| Error::invalid(output_dir, e))
}

/// Reads a TSV table when the file exists.
pub fn table_opt(path: &Path) -> Result<Option<Table>> {
    if path.exists() {
        Table::read_tsv(path)
            .map(Some)
            .map_err(|e| Error::read(path, e))
    } else {
        Ok(None)
    }
}

/// Reads a JSON file when it exists.
pub fn json_opt(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::invalid(path, format!("invalid JSON: {e}")))
}

/// A numeric column (`n/a` → NaN), naming the file and column on error.
pub fn col_f64(t: &Table, path: &Path, name: &str) -> Result<Vec<f64>> {
    Ok(t.f64_column(name)
        .map_err(|e| Error::invalid(path, e))?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// A text column, naming the file and column on error.
pub fn col_str(t: &Table, path: &Path, name: &str) -> Result<Vec<String>> {
    Ok(t.column(name)
        .map_err(|e| Error::invalid(path, e))?
        .into_iter()
        .map(str::to_string)
        .collect())
}

/// Sorted entries of a directory (empty when it does not exist).
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// File name as text.
pub fn fname(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `key-value` entities of a file name (without suffix and extension), in order.
pub fn entities(name: &str) -> BTreeMap<String, String> {
    let stem = name.split('.').next().unwrap_or("");
    stem.split('_')
        .filter_map(|kv| kv.split_once('-'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The template space and resolution used in a derivatives directory, from the first
/// `*_space-<name>_res-<res>_*` file found (group maps at the root, else a participant's
/// `perf/` folder below `search`).
pub fn detect_space(search: &Path) -> Result<Option<(String, String)>> {
    let mut stack = vec![search.to_path_buf()];
    let mut depth = 0;
    while !stack.is_empty() && depth < 4 {
        let mut next = Vec::new();
        for dir in stack {
            for p in list_dir(&dir)? {
                if p.is_dir() {
                    next.push(p);
                    continue;
                }
                let e = entities(&fname(&p));
                if let (Some(s), Some(r)) = (e.get("space"), e.get("res")) {
                    return Ok(Some((s.clone(), r.clone())));
                }
            }
        }
        stack = next;
        depth += 1;
    }
    Ok(None)
}

/// Loads the template named `space`: the phantom is built in code; `MNI152NLin6Asym` is read
/// from `resources`, the directory the plan resolved. `Err(text)` says why it could not be
/// loaded (the report then omits what needs it).
pub fn load_template(
    space: &str,
    resources: Option<&Path>,
) -> std::result::Result<Template, String> {
    let phantom = Template::phantom();
    if space == phantom.name {
        return Ok(phantom);
    }
    if space == "MNI152NLin6Asym" {
        let Some(dir) = resources else {
            return Err(format!(
                "template {space}: no resource directory was given to the report, so it draws no template edges or atlas slices"
            ));
        };
        return Template::load(&TemplateChoice::Mni152NLin6Asym {
            resources: dir.to_path_buf(),
        })
        .map_err(|e| format!("template {space}: {e}"));
    }
    Err(format!(
        "template {space} is not known to this version of cbflow"
    ))
}

/// Reads the session's T1w → template transform (affine text + warp NIfTI) as the chain that
/// maps template world points to T1w world points (`[warp, affine]`, as
/// `cbflow_pipeline`'s anatomy writes it).
pub fn read_normalisation(
    affine_txt: &Path,
    warp_nii: &Path,
) -> Result<cbflow_register::TransformChain> {
    let text = std::fs::read_to_string(affine_txt).map_err(|e| Error::read(affine_txt, e))?;
    let affine = cbflow_register::AffineTransform::from_itk_str(&text)
        .map_err(|e| Error::invalid(affine_txt, e))?;
    let w = volume(warp_nii)?;
    let field = cbflow_register::DisplacementField::from_volume(&w)
        .map_err(|e| Error::invalid(warp_nii, e))?;
    Ok(cbflow_register::TransformChain::new()
        .then(cbflow_register::Transform::Field(field))
        .then(cbflow_register::Transform::Affine(affine)))
}

/// Reads an affine ITK text transform.
pub fn read_affine(path: &Path) -> Result<cbflow_register::AffineTransform> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    cbflow_register::AffineTransform::from_itk_str(&text).map_err(|e| Error::invalid(path, e))
}

/// Binary mask `> 0.5`.
pub fn mask(a: &Array3<f32>) -> Array3<bool> {
    a.mapv(|v| v > 0.5)
}

/// Integer labels (rounded).
pub fn labels(a: &Array3<f32>) -> Array3<i32> {
    a.mapv(|v| v.round() as i32)
}

/// A JSON value at a path of keys, as text (numbers and strings), for the methods paragraph.
pub fn jtext(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON number at a path of keys.
pub fn jnum(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    cur.as_f64()
}

/// One ASL run's derivatives, named through the pipeline's catalogue ([`RunFile`]).
#[derive(Debug, Clone)]
pub(crate) struct RunFiles {
    /// The derivatives directory.
    output_dir: PathBuf,
    pub(crate) ses: Option<String>,
    /// The run's entities (those of its ASL series), in BIDS order.
    pub(crate) entities: Entities,
    /// The entities after `sub-<label>_` (`ses-1_acq-pcasl_run-1`), empty for a bare run.
    pub(crate) tag: String,
}

impl RunFiles {
    /// The path of the run's file `file`.
    pub(crate) fn file(&self, file: &RunFile) -> Result<PathBuf> {
        file.path(&self.output_dir, &self.entities)
            .map_err(|e| Error::invalid(&self.output_dir, e))
    }
    /// The path of the JSON sidecar of the run's file `file` (`None` for a kind without one).
    pub(crate) fn sidecar(&self, file: &RunFile) -> Result<Option<PathBuf>> {
        file.sidecar_path(&self.output_dir, &self.entities)
            .map_err(|e| Error::invalid(&self.output_dir, e))
    }
    /// The anatomical file `file` of the run's session.
    pub(crate) fn anat(&self, file: &AnatFile) -> Result<PathBuf> {
        let label = self.entities.get("sub").unwrap_or_default();
        anat_file(&self.output_dir, label, self.ses.as_deref(), file)
    }
    /// The JSON sidecar of the anatomical file `file` of the run's session.
    pub(crate) fn anat_sidecar(&self, file: &AnatFile) -> Result<Option<PathBuf>> {
        let label = self.entities.get("sub").unwrap_or_default();
        anat_sidecar(&self.output_dir, label, self.ses.as_deref(), file)
    }
    pub(crate) fn label(&self) -> String {
        if self.tag.is_empty() {
            "run".into()
        } else {
            self.tag.replace('_', " ")
        }
    }
    pub(crate) fn id(&self) -> String {
        self.label().replace(' ', "-")
    }
}

/// Finds the native-space mean CBF maps ([`RunFile::Cbf`]) of participant `label`: one per run,
/// in the order of the participant's `perf/` folders (then of the file names).
pub(crate) fn find_runs(output_dir: &Path, label: &str) -> Result<Vec<RunFiles>> {
    let sub_dir = output_dir.join(format!("sub-{label}"));
    let mut dirs = vec![sub_dir.join("perf")];
    for p in list_dir(&sub_dir)? {
        if p.is_dir() && fname(&p).starts_with("ses-") {
            dirs.push(p.join("perf"));
        }
    }
    let mut runs = Vec::new();
    for d in dirs {
        for p in list_dir(&d)? {
            let Ok(rel) = p.strip_prefix(output_dir) else {
                continue;
            };
            let Some((RunFile::Cbf, e)) = RunFile::identify(rel) else {
                continue;
            };
            let tag = e
                .iter()
                .filter(|(k, _)| *k != "sub")
                .map(|(k, v)| format!("{k}-{v}"))
                .collect::<Vec<_>>()
                .join("_");
            runs.push(RunFiles {
                output_dir: output_dir.to_path_buf(),
                ses: e.get("ses").map(str::to_string),
                entities: e,
                tag,
            });
        }
    }
    Ok(runs)
}

/// The entities of participant `label`'s session `ses` (of the participant, without sessions):
/// the participant level names a session's anatomical files from its T1w's,
/// `sub-<label>[_ses-<ses>]_T1w`.
fn session_entities(label: &str, ses: Option<&str>) -> Entities {
    let mut e = Entities::new();
    e.set("sub", label);
    if let Some(s) = ses {
        e.set("ses", s);
    }
    e
}

/// The anatomical file `file` of participant `label`'s session `ses`.
pub(crate) fn anat_file(
    output_dir: &Path,
    label: &str,
    ses: Option<&str>,
    file: &AnatFile,
) -> Result<PathBuf> {
    file.path(output_dir, &session_entities(label, ses))
        .map_err(|err| Error::invalid(output_dir, err))
}

/// The JSON sidecar of the anatomical file `file` of participant `label`'s session `ses`.
pub(crate) fn anat_sidecar(
    output_dir: &Path,
    label: &str,
    ses: Option<&str>,
    file: &AnatFile,
) -> Result<Option<PathBuf>> {
    file.sidecar_path(output_dir, &session_entities(label, ses))
        .map_err(|err| Error::invalid(output_dir, err))
}

/// The BIDS input's T1w that the participant level normalised to `template` for a session: the
/// source (`bids:raw:<path>`) its warp's sidecar names, when that file exists in `bids_dir`.
pub(crate) fn normalised_t1w(
    output_dir: &Path,
    bids_dir: &Path,
    label: &str,
    ses: Option<&str>,
    template: &str,
) -> Result<Option<PathBuf>> {
    let Some(side) = anat_sidecar(output_dir, label, ses, &AnatFile::template_warp(template))?
    else {
        return Ok(None);
    };
    let Some(j) = json_opt(&side)? else {
        return Ok(None);
    };
    Ok(j.get("Sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|s| s.strip_prefix("bids:raw:"))
        .map(|rel| bids_dir.join(rel))
        .find(|p| p.is_file()))
}
