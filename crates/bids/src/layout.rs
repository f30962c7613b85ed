//! The layout index of a BIDS dataset: every data and sidecar file with its entities, suffix
//! and extension, and metadata by the inheritance principle.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::io_err;
use crate::{Entities, Error, Result, Table, parse_filename};

/// One file of the dataset, parsed from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidsFile {
    /// Absolute path (the dataset root joined with `rel_path`).
    pub path: PathBuf,
    /// Path relative to the dataset root, e.g. `sub-01/perf/sub-01_asl.nii.gz`.
    pub rel_path: PathBuf,
    /// The datatype directory the file sits in (`perf`, `anat`, `fmap`, ...), `None` for files
    /// at the dataset root or directly in a subject/session directory.
    pub datatype: Option<String>,
    /// Entities from the file name, in BIDS order.
    pub entities: Entities,
    /// The suffix (`asl`, `m0scan`, `aslcontext`, `T1w`, ...).
    pub suffix: String,
    /// The extension including the leading dot (`.nii.gz`, `.json`, `.tsv`); empty if none.
    pub extension: String,
}

impl BidsFile {
    /// True for `.nii` and `.nii.gz` files.
    pub fn is_nifti(&self) -> bool {
        self.extension == ".nii" || self.extension == ".nii.gz"
    }

    /// The directory of the file relative to the dataset root.
    pub fn rel_dir(&self) -> &Path {
        self.rel_path.parent().unwrap_or(Path::new(""))
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        self.rel_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The BIDS URI of this file within a dataset named `dataset` in `DatasetLinks` (e.g.
    /// `raw`): `bids:raw:sub-01/perf/sub-01_asl.nii.gz`, for the `Sources` of a derivative.
    pub fn bids_uri(&self, dataset: &str) -> String {
        let rel: Vec<String> = self
            .rel_path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        format!("bids:{dataset}:{}", rel.join("/"))
    }

    /// The subject label (`sub` entity), if any.
    pub fn subject(&self) -> Option<&str> {
        self.entities.get("sub")
    }

    /// The session label (`ses` entity), if any.
    pub fn session(&self) -> Option<&str> {
        self.entities.get("ses")
    }
}

/// A filter for [`Layout::query`]; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Subject label (without `sub-`).
    pub sub: Option<String>,
    /// Session label (without `ses-`).
    pub ses: Option<String>,
    /// Datatype directory (`perf`, `anat`, ...).
    pub datatype: Option<String>,
    /// Suffix (`asl`, `T1w`, ...).
    pub suffix: Option<String>,
    /// Accepted extensions (with the dot); empty = any.
    pub extensions: Vec<String>,
    /// Other entities that must have these values (e.g. `("run", "1")`).
    pub entities: Vec<(String, String)>,
}

impl Query {
    /// A query that matches every file.
    pub fn new() -> Self {
        Self::default()
    }
    /// Restricts to subject `label`.
    #[allow(clippy::should_implement_trait)] // `sub` is the BIDS entity name
    pub fn sub(mut self, label: &str) -> Self {
        self.sub = Some(label.into());
        self
    }
    /// Restricts to session `label`.
    pub fn ses(mut self, label: &str) -> Self {
        self.ses = Some(label.into());
        self
    }
    /// Restricts to a datatype directory.
    pub fn datatype(mut self, datatype: &str) -> Self {
        self.datatype = Some(datatype.into());
        self
    }
    /// Restricts to a suffix.
    pub fn suffix(mut self, suffix: &str) -> Self {
        self.suffix = Some(suffix.into());
        self
    }
    /// Adds an accepted extension (`.nii.gz`).
    pub fn extension(mut self, ext: &str) -> Self {
        self.extensions.push(ext.into());
        self
    }
    /// Accepts `.nii` and `.nii.gz`.
    pub fn nifti(self) -> Self {
        self.extension(".nii").extension(".nii.gz")
    }
    /// Requires entity `key` to equal `value`.
    pub fn entity(mut self, key: &str, value: &str) -> Self {
        self.entities.push((key.into(), value.into()));
        self
    }

    /// True when `f` passes every filter.
    pub fn matches(&self, f: &BidsFile) -> bool {
        let opt = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        opt(&self.sub, f.entities.get("sub"))
            && opt(&self.ses, f.entities.get("ses"))
            && opt(&self.datatype, f.datatype.as_deref())
            && opt(&self.suffix, Some(&f.suffix))
            && (self.extensions.is_empty() || self.extensions.contains(&f.extension))
            && self
                .entities
                .iter()
                .all(|(k, v)| f.entities.get(k) == Some(v.as_str()))
    }
}

/// Top-level entries that are not data files and are not indexed as [`BidsFile`]s.
const SKIP_DIRS: &[&str] = &["derivatives", "sourcedata", "code", "stimuli", "phenotype"];
const TOP_LEVEL_FILES: &[&str] = &[
    "dataset_description.json",
    "participants.tsv",
    "participants.json",
    "samples.tsv",
    "samples.json",
    "genetic_info.json",
    "CHANGES",
    "CITATION.cff",
    "LICENSE",
    "HED.tsv",
];

/// An index of a BIDS dataset. Built once by [`Layout::index`]; never writes to the dataset.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    description: Option<Map<String, Value>>,
    files: Vec<BidsFile>,
    unparsed: Vec<(PathBuf, String)>,
    subjects: Vec<String>,
    sessions: BTreeMap<String, Vec<String>>,
    /// Indices into `files` per directory (relative).
    by_dir: HashMap<PathBuf, Vec<usize>>,
    /// Indices into `files` of the `.json` files, per suffix.
    json_by_suffix: HashMap<String, Vec<usize>>,
}

impl Layout {
    /// Indexes the dataset at `root`: every file under `sub-*/` plus top-level inheritance
    /// sidecars (e.g. `asl.json`); skips `derivatives/`, `sourcedata/`, `code/`, `stimuli/`,
    /// `phenotype/` and hidden files. Reads `dataset_description.json`, which must exist and be
    /// a JSON object. Files whose names do not parse are kept aside ([`Layout::unparsed`]).
    pub fn index(root: &Path) -> Result<Layout> {
        let layout = Self::index_lenient(root)?;
        let dd = root.join("dataset_description.json");
        if layout.description.is_none() {
            // distinguish missing from invalid
            read_json_object(&dd)?;
        }
        Ok(layout)
    }

    /// Like [`Layout::index`] but without requiring a valid `dataset_description.json` (the
    /// validator reports that itself).
    pub(crate) fn index_lenient(root: &Path) -> Result<Layout> {
        let meta = std::fs::metadata(root).map_err(io_err(root))?;
        if !meta.is_dir() {
            return Err(Error::Dataset {
                path: root.to_path_buf(),
                message: "not a directory".into(),
            });
        }
        let root = root.to_path_buf();
        let description = read_json_object(&root.join("dataset_description.json")).ok();
        let mut files = Vec::new();
        let mut unparsed = Vec::new();
        let walker = walkdir::WalkDir::new(&root)
            .follow_links(true)
            .sort_by_file_name()
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                if e.depth() > 0 && name.starts_with('.') {
                    return false;
                }
                !(e.depth() == 1 && e.file_type().is_dir() && SKIP_DIRS.contains(&name.as_ref()))
            });
        for entry in walker {
            let entry = entry.map_err(|e| {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.clone());
                Error::Io {
                    path,
                    source: e.into(),
                }
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            let path = entry.path().to_path_buf();
            let rel = path
                .strip_prefix(&root)
                .expect("walked under root")
                .to_path_buf();
            let name = entry.file_name().to_string_lossy().into_owned();
            let comps: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if comps.len() == 1
                && (TOP_LEVEL_FILES.contains(&name.as_str())
                    || name.starts_with("README")
                    || name.starts_with("CHANGES")
                    || name.starts_with("LICENSE"))
            {
                continue;
            }
            if comps.len() > 1 && !comps[0].starts_with("sub-") {
                unparsed.push((
                    rel,
                    format!("unexpected top-level directory {:?}", comps[0]),
                ));
                continue;
            }
            match parse_filename(&name) {
                Ok((entities, suffix, extension)) => {
                    // sub-X/[ses-Y/]<datatype>/file
                    let mut rest = &comps[..comps.len() - 1];
                    if rest.first().is_some_and(|c| c.starts_with("sub-")) {
                        rest = &rest[1..];
                    }
                    if rest.first().is_some_and(|c| c.starts_with("ses-")) {
                        rest = &rest[1..];
                    }
                    let datatype = rest.first().cloned();
                    files.push(BidsFile {
                        path,
                        rel_path: rel,
                        datatype,
                        entities,
                        suffix,
                        extension,
                    });
                }
                Err(e) => unparsed.push((rel, e.to_string())),
            }
        }
        let mut subjects = Vec::new();
        let mut sessions = BTreeMap::new();
        for sub in list_prefixed_dirs(&root, "sub-")? {
            let ses = list_prefixed_dirs(&root.join(format!("sub-{sub}")), "ses-")?;
            sessions.insert(sub.clone(), ses);
            subjects.push(sub);
        }
        let mut by_dir: HashMap<PathBuf, Vec<usize>> = HashMap::new();
        let mut json_by_suffix: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            by_dir.entry(f.rel_dir().to_path_buf()).or_default().push(i);
            if f.extension == ".json" {
                json_by_suffix.entry(f.suffix.clone()).or_default().push(i);
            }
        }
        Ok(Layout {
            root,
            description,
            files,
            unparsed,
            subjects,
            sessions,
            by_dir,
            json_by_suffix,
        })
    }

    /// The dataset root as given to [`Layout::index`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The contents of `dataset_description.json`.
    pub fn description(&self) -> Option<&Map<String, Value>> {
        self.description.as_ref()
    }

    /// Every indexed file, sorted by relative path.
    pub fn files(&self) -> &[BidsFile] {
        &self.files
    }

    /// Files whose names did not parse, with the reason: `(relative path, message)`.
    pub fn unparsed(&self) -> &[(PathBuf, String)] {
        &self.unparsed
    }

    /// Subject labels (without `sub-`), from the `sub-*` directories, sorted.
    pub fn subjects(&self) -> Vec<String> {
        self.subjects.clone()
    }

    /// Session labels (without `ses-`) of subject `sub`, from its `ses-*` directories, sorted;
    /// empty for a single-session dataset or an unknown subject.
    pub fn sessions(&self, sub: &str) -> Vec<String> {
        self.sessions.get(sub).cloned().unwrap_or_default()
    }

    /// The files that match `q`, in path order.
    pub fn query(&self, q: &Query) -> Vec<&BidsFile> {
        self.files.iter().filter(|f| q.matches(f)).collect()
    }

    /// The file at `rel` (relative to the root), if indexed.
    pub fn get(&self, rel: &Path) -> Option<&BidsFile> {
        self.files.iter().find(|f| f.rel_path == rel)
    }

    /// A file in the same directory with the same entities and the given suffix and extension
    /// (e.g. the `_aslcontext.tsv` of an `_asl.nii.gz`).
    pub fn companion(&self, f: &BidsFile, suffix: &str, extension: &str) -> Option<&BidsFile> {
        let idx = self.by_dir.get(f.rel_dir())?;
        idx.iter()
            .map(|&i| &self.files[i])
            .find(|g| g.suffix == suffix && g.extension == extension && g.entities == f.entities)
    }

    /// The JSON sidecars that apply to `f` under the inheritance principle, shallowest first
    /// (so later ones override earlier ones): every `.json` file in `f`'s directory or one of
    /// its ancestors up to the root, with the same suffix, whose entities are a subset of `f`'s.
    /// Within one directory level, a sidecar with fewer entities comes first.
    pub fn sidecars(&self, f: &BidsFile) -> Vec<&BidsFile> {
        let dir = f.rel_dir();
        let Some(idx) = self.json_by_suffix.get(&f.suffix) else {
            return Vec::new();
        };
        let mut c: Vec<&BidsFile> = idx
            .iter()
            .map(|&i| &self.files[i])
            .filter(|g| {
                g.entities.is_subset_of(&f.entities)
                    && g.rel_path != f.rel_path
                    && dir.starts_with(g.rel_dir())
            })
            .collect();
        c.sort_by(|a, b| {
            let key = |g: &BidsFile| (g.rel_dir().components().count(), g.entities.len());
            key(a)
                .cmp(&key(b))
                .then_with(|| a.rel_path.cmp(&b.rel_path))
        });
        c
    }

    /// Pairs of applicable sidecars of `f` ([`Layout::sidecars`]) in the same directory whose
    /// load order is ambiguous: neither one's entities are a subset of the other's (e.g.
    /// `task-a_bold.json` and `run-1_bold.json`). The inheritance principle forbids this.
    pub fn ambiguous_sidecars(&self, f: &BidsFile) -> Vec<(PathBuf, PathBuf)> {
        let sc = self.sidecars(f);
        let mut out = Vec::new();
        for (i, a) in sc.iter().enumerate() {
            for b in &sc[i + 1..] {
                if a.rel_dir() == b.rel_dir()
                    && !a.entities.is_subset_of(&b.entities)
                    && !b.entities.is_subset_of(&a.entities)
                {
                    out.push((a.rel_path.clone(), b.rel_path.clone()));
                }
            }
        }
        out
    }

    /// The metadata of `f` by the inheritance principle: the key-value pairs of every applicable
    /// sidecar ([`Layout::sidecars`]) merged from the root down, deeper files overriding
    /// shallower ones key by key. An unreadable or non-object sidecar is an error naming it.
    pub fn metadata(&self, f: &BidsFile) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for s in self.sidecars(f) {
            for (k, v) in read_json_object(&s.path)? {
                out.insert(k, v);
            }
        }
        Ok(out)
    }

    /// `participants.tsv` at the root, if present.
    pub fn participants(&self) -> Result<Option<Table>> {
        read_optional_table(&self.root.join("participants.tsv"))
    }

    /// `sub-<sub>/sub-<sub>_sessions.tsv`, if present.
    pub fn sessions_table(&self, sub: &str) -> Result<Option<Table>> {
        crate::validate_label(sub)?;
        read_optional_table(
            &self
                .root
                .join(format!("sub-{sub}"))
                .join(format!("sub-{sub}_sessions.tsv")),
        )
    }

    /// Every `phenotype/*.tsv`, keyed by the file name without `.tsv` (e.g. `madrs`).
    pub fn phenotype(&self) -> Result<BTreeMap<String, Table>> {
        let dir = self.root.join("phenotype");
        let mut out = BTreeMap::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        for e in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".tsv")
                && !name.starts_with('.')
            {
                out.insert(stem.to_string(), Table::read_tsv(&e.path())?);
            }
        }
        Ok(out)
    }
}

fn read_optional_table(path: &Path) -> Result<Option<Table>> {
    if path.is_file() {
        Table::read_tsv(path).map(Some)
    } else {
        Ok(None)
    }
}

fn list_prefixed_dirs(dir: &Path, prefix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(label) = name.strip_prefix(prefix)
            && e.path().is_dir()
        {
            out.push(label.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a JSON file that must hold an object.
pub fn read_json_object(path: &Path) -> Result<Map<String, Value>> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Json {
            path: path.to_path_buf(),
            message: "expected a JSON object".into(),
        }),
        Err(e) => Err(Error::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// True when `rel` is a relative path without `..`, root or prefix components.
pub(crate) fn is_safe_relative(rel: &Path) -> bool {
    !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}
