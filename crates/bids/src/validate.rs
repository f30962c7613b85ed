//! `cbflow validate BIDS_DIR`: checks a dataset against the BIDS rules cbflow relies on and
//! reports errors and warnings per file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::layout::read_json_object;
use crate::{AslContext, Error, Issue, Layout, Query, Result, ValidationReport};

/// Files at or below this size are the empty placeholders of example datasets (the
/// bids-examples NIfTIs are 0 or 1 byte long); they are reported with a warning and not read.
const PLACEHOLDER_MAX_BYTES: u64 = 1;

/// Validates the BIDS dataset at `root`. Never writes to it.
///
/// Checks: `dataset_description.json` present with `Name` and `BIDSVersion`; every file name
/// parses; `sub-`/`ses-` directories match the file entities; no data file has two sidecars
/// at one level whose order is ambiguous; JSON sidecars are JSON objects;
/// every NIfTI header is readable (empty placeholders give a warning); ASL series: the sidecar
/// rules ([`crate::AslMetadata::from_sidecar`]), a readable `aslcontext.tsv` whose row count
/// equals the 4th dimension of the image and the lengths of per-volume arrays, the M0 rules
/// (Separate needs an `m0scan`, Included needs `m0scan` rows, Absent allows neither);
/// `m0scan` sidecars (`IntendedFor`, `EchoTime`, `RepetitionTimePreparation` REQUIRED);
/// `participants.tsv` (`participant_id` column; ids against `sub-` directories, warnings on
/// mismatch), `sub-*_sessions.tsv` (`session_id` against `ses-` directories) and
/// `phenotype/*.tsv` (`participant_id` column).
///
/// `Err` only when `root` cannot be read at all; everything else is an issue in the report.
pub fn validate(root: &Path) -> Result<ValidationReport> {
    let mut issues = Vec::new();
    check_description(root, &mut issues);
    let layout = Layout::index_lenient(root)?;

    for (rel, msg) in layout.unparsed() {
        issues.push(Issue::error(rel, None, msg.clone()));
    }
    check_directories(&layout, &mut issues);

    // JSON sidecars parse
    for f in layout.files().iter().filter(|f| f.extension == ".json") {
        if let Err(e) = read_json_object(&f.path) {
            issues.push(Issue::error(
                &f.rel_path,
                None,
                strip_prefix_path(&e, &f.path),
            ));
        }
    }

    // inheritance: no ambiguous sidecars for a data file
    for f in layout.files().iter().filter(|f| f.extension != ".json") {
        for (a, b) in layout.ambiguous_sidecars(f) {
            issues.push(Issue::error(
                &f.rel_path,
                None,
                format!(
                    "ambiguous inheritance: {} and {} both apply at the same level and neither's entities contain the other's",
                    a.display(),
                    b.display()
                ),
            ));
        }
    }

    // NIfTI headers
    let mut dims: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for f in layout.files().iter().filter(|f| f.is_nifti()) {
        match std::fs::metadata(&f.path) {
            Ok(m) if m.len() <= PLACEHOLDER_MAX_BYTES => {
                issues.push(Issue::warning(
                    &f.rel_path,
                    None,
                    format!("empty placeholder image, not checked ({} bytes)", m.len()),
                ));
            }
            Ok(_) => match cbflow_image::read_header(&f.path) {
                Ok(h) => {
                    dims.insert(f.rel_path.clone(), h.dims);
                }
                Err(e) => issues.push(Issue::error(
                    &f.rel_path,
                    None,
                    format!(
                        "unreadable NIfTI: {}",
                        strip_prefix_path(&Error::Image(e), &f.path)
                    ),
                )),
            },
            Err(e) => issues.push(Issue::error(&f.rel_path, None, format!("cannot read: {e}"))),
        }
    }

    // ASL series
    let (_runs, asl_issues) = layout.asl_runs_with_issues(&Query::new());
    issues.extend(asl_issues);
    for f in layout.query(&Query::new().datatype("perf").suffix("asl").nifti()) {
        let (Some(c), Some(d)) = (
            layout.companion(f, "aslcontext", ".tsv"),
            dims.get(&f.rel_path),
        ) else {
            continue;
        };
        let Ok(ctx) = AslContext::read(&c.path) else {
            continue;
        }; // reported above
        let n4 = if d.len() >= 4 { d[3] } else { 1 };
        if n4 != ctx.len() {
            issues.push(Issue::error(
                &c.rel_path,
                Some("volume_type"),
                format!(
                    "{} rows, but {} has {n4} volumes (4th dimension {:?})",
                    ctx.len(),
                    f.rel_path.display(),
                    d
                ),
            ));
        }
    }
    for m in layout.query(&Query::new().datatype("perf").suffix("m0scan").nifti()) {
        let Ok(md) = layout.metadata(m) else { continue };
        let at = layout
            .companion(m, "m0scan", ".json")
            .map(|j| j.rel_path.clone())
            .unwrap_or(m.rel_path.clone());
        for k in ["IntendedFor", "EchoTime", "RepetitionTimePreparation"] {
            if !md.contains_key(k) {
                issues.push(Issue::error(
                    &at,
                    Some(k),
                    format!("missing REQUIRED field {k} for an m0scan"),
                ));
            }
        }
    }

    check_tables(&layout, &mut issues);
    Ok(ValidationReport { issues })
}

fn check_description(root: &Path, issues: &mut Vec<Issue>) {
    let rel = Path::new("dataset_description.json");
    let p = root.join(rel);
    if !p.is_file() {
        issues.push(Issue::error(
            rel,
            None,
            "missing dataset_description.json (REQUIRED)",
        ));
        return;
    }
    match read_json_object(&p) {
        Err(e) => issues.push(Issue::error(rel, None, strip_prefix_path(&e, &p))),
        Ok(m) => {
            for k in ["Name", "BIDSVersion"] {
                match m.get(k) {
                    Some(Value::String(s)) if !s.trim().is_empty() => {}
                    Some(v) => issues.push(Issue::error(
                        rel,
                        Some(k),
                        format!("expected a non-empty string, got {v}"),
                    )),
                    None => issues.push(Issue::error(
                        rel,
                        Some(k),
                        format!("missing REQUIRED field {k}"),
                    )),
                }
            }
            if let Some(t) = m.get("DatasetType")
                && t != "raw"
                && t != "derivative"
            {
                issues.push(Issue::error(
                    rel,
                    Some("DatasetType"),
                    format!("expected \"raw\" or \"derivative\", got {t}"),
                ));
            }
        }
    }
}

fn check_directories(layout: &Layout, issues: &mut Vec<Issue>) {
    for f in layout.files() {
        let comps: Vec<String> = f
            .rel_path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if comps.len() < 2 {
            continue; // top-level inheritance sidecar
        }
        let dir_sub = comps[0].strip_prefix("sub-").unwrap_or_default();
        match f.subject() {
            Some(s) if s == dir_sub => {}
            Some(s) => issues.push(Issue::error(
                &f.rel_path,
                Some("sub"),
                format!("file entity sub-{s} does not match its directory sub-{dir_sub}"),
            )),
            None => issues.push(Issue::error(
                &f.rel_path,
                Some("sub"),
                format!("missing sub-{dir_sub} entity"),
            )),
        }
        let dir_ses = (comps.len() > 2)
            .then(|| comps[1].strip_prefix("ses-"))
            .flatten();
        match (dir_ses, f.session()) {
            (Some(d), Some(s)) if d == s => {}
            (Some(d), Some(s)) => issues.push(Issue::error(
                &f.rel_path,
                Some("ses"),
                format!("file entity ses-{s} does not match its directory ses-{d}"),
            )),
            (Some(d), None) => issues.push(Issue::error(
                &f.rel_path,
                Some("ses"),
                format!("missing ses-{d} entity"),
            )),
            (None, Some(s)) => issues.push(Issue::error(
                &f.rel_path,
                Some("ses"),
                format!("file has entity ses-{s} but is not in a ses-{s} directory"),
            )),
            (None, None) => {}
        }
    }
}

fn check_tables(layout: &Layout, issues: &mut Vec<Issue>) {
    let root = layout.root();
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_path_buf();
    let subjects: BTreeSet<String> = layout.subjects().into_iter().collect();
    match layout.participants() {
        Ok(None) => issues.push(Issue::warning(
            "participants.tsv",
            None,
            "missing participants.tsv (RECOMMENDED)",
        )),
        Ok(Some(t)) => match t.column("participant_id") {
            Err(_) => issues.push(Issue::error(
                rel(&t.path),
                Some("participant_id"),
                "missing REQUIRED column participant_id",
            )),
            Ok(ids) => id_consistency(
                &rel(&t.path),
                &ids,
                "sub-",
                &subjects,
                "participant_id",
                issues,
            ),
        },
        Err(e) => issues.push(table_issue(e, root)),
    }
    for sub in &subjects {
        match layout.sessions_table(sub) {
            Ok(None) => {}
            Ok(Some(t)) => match t.column("session_id") {
                Err(_) => issues.push(Issue::error(
                    rel(&t.path),
                    Some("session_id"),
                    "missing REQUIRED column session_id",
                )),
                Ok(ids) => {
                    let ses: BTreeSet<String> = layout.sessions(sub).into_iter().collect();
                    id_consistency(&rel(&t.path), &ids, "ses-", &ses, "session_id", issues);
                }
            },
            Err(e) => issues.push(table_issue(e, root)),
        }
    }
    match layout.phenotype() {
        Ok(tables) => {
            for t in tables.values() {
                match t.column("participant_id") {
                    Err(_) => issues.push(Issue::error(
                        rel(&t.path),
                        Some("participant_id"),
                        "missing REQUIRED column participant_id",
                    )),
                    Ok(ids) => {
                        for (i, id) in ids.iter().enumerate() {
                            let label = id.strip_prefix("sub-");
                            if label.is_none_or(|l| !subjects.contains(l)) {
                                issues.push(Issue::warning(
                                    rel(&t.path),
                                    Some("participant_id"),
                                    format!("row {}: {id:?} has no sub- directory", i + 1),
                                ));
                            }
                        }
                    }
                }
            }
        }
        Err(e) => issues.push(table_issue(e, root)),
    }
}

fn id_consistency(
    path: &Path,
    ids: &[&str],
    prefix: &str,
    dirs: &BTreeSet<String>,
    column: &str,
    issues: &mut Vec<Issue>,
) {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(label) = id.strip_prefix(prefix) else {
            issues.push(Issue::error(
                path,
                Some(column),
                format!("row {}: {id:?} must start with {prefix:?}", i + 1),
            ));
            continue;
        };
        if !seen.insert(label.to_string()) {
            issues.push(Issue::error(
                path,
                Some(column),
                format!("row {}: {id:?} appears twice", i + 1),
            ));
        }
        if !dirs.contains(label) {
            issues.push(Issue::warning(
                path,
                Some(column),
                format!("row {}: {id:?} has no {prefix}{label} directory", i + 1),
            ));
        }
    }
    for d in dirs.difference(&seen) {
        issues.push(Issue::warning(
            path,
            Some(column),
            format!("directory {prefix}{d} is not listed"),
        ));
    }
}

fn table_issue(e: Error, root: &Path) -> Issue {
    match e {
        Error::Table { path, message } => {
            Issue::error(path.strip_prefix(root).unwrap_or(&path), None, message)
        }
        Error::Io { path, source } => Issue::error(
            path.strip_prefix(root).unwrap_or(&path),
            None,
            source.to_string(),
        ),
        other => Issue::error(".", None, other.to_string()),
    }
}

fn strip_prefix_path(e: &Error, path: &Path) -> String {
    let s = e.to_string();
    let p = format!("{}: ", path.display());
    s.strip_prefix(&p).map(str::to_string).unwrap_or(s)
}
