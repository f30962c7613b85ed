//! An ASL run with its sidecar, context and M0, as found in a layout.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::context::AslContext;
use super::timing::time_problem;
use super::types::{AslMetadata, M0Type};
use crate::{BidsFile, Entities, Error, Issue, Layout, Query, Result};

/// One ASL series ready for processing: the image, its context, checked metadata and M0.
#[derive(Debug, Clone)]
pub struct AslRun {
    /// The `_asl.nii[.gz]`.
    pub asl: BidsFile,
    /// The run's entities (those of `asl`).
    pub entities: Entities,
    /// Path of the `_aslcontext.tsv`.
    pub context: PathBuf,
    /// The volume types read from `context`.
    pub volumes: AslContext,
    /// Typed metadata (warnings included).
    pub metadata: AslMetadata,
    /// The merged sidecar the metadata was parsed from.
    pub sidecar: Map<String, Value>,
    /// The separate M0 image (`perf/*_m0scan.nii[.gz]`), if any: the one whose sidecar's
    /// `IntendedFor` names this series, else the one with the same entities.
    pub m0scan: Option<BidsFile>,
    /// The merged sidecar of `m0scan`.
    pub m0scan_metadata: Option<Map<String, Value>>,
}

impl Layout {
    /// Every ASL series (`perf/*_asl.nii[.gz]`) of the dataset, parsed and checked. `Err` lists
    /// all issues of all files when any is an error; use [`Layout::asl_runs_with_issues`] to
    /// keep the runs that are fine.
    pub fn asl_runs(&self) -> Result<Vec<AslRun>> {
        let (runs, issues) = self.asl_runs_with_issues(&Query::new());
        if issues.iter().any(Issue::is_error) {
            Err(Error::Issues(issues))
        } else {
            Ok(runs)
        }
    }

    /// The ASL series matching `filter` (e.g. one subject) that parse without errors, and every
    /// issue (errors and warnings) found in them, per file. A series with an error is left out
    /// of the runs and its errors are in the issues.
    pub fn asl_runs_with_issues(&self, filter: &Query) -> (Vec<AslRun>, Vec<Issue>) {
        let mut runs = Vec::new();
        let mut issues = Vec::new();
        let q = Query::new().datatype("perf").suffix("asl").nifti();
        for f in self.query(&q).into_iter().filter(|f| filter.matches(f)) {
            let (run, mut iss) = self.asl_run(f);
            issues.append(&mut iss);
            if let Some(r) = run {
                runs.push(r);
            }
        }
        (runs, issues)
    }

    pub(super) fn asl_run(&self, f: &BidsFile) -> (Option<AslRun>, Vec<Issue>) {
        let mut issues = Vec::new();
        let json_rel = self
            .companion(f, "asl", ".json")
            .map(|j| j.rel_path.clone());
        let report_path = json_rel.clone().unwrap_or_else(|| f.rel_path.clone());
        let sidecar = match self.metadata(f) {
            Ok(m) => m,
            Err(e) => {
                issues.push(Issue::error(&report_path, None, e.to_string()));
                return (None, issues);
            }
        };
        if self.sidecars(f).is_empty() {
            issues.push(Issue::error(
                &f.rel_path,
                None,
                "no JSON sidecar applies to this ASL series",
            ));
            return (None, issues);
        }
        let metadata = match AslMetadata::from_sidecar(&sidecar, &report_path) {
            Ok(m) => {
                issues.extend(m.warnings.iter().cloned());
                Some(m)
            }
            Err(mut e) => {
                issues.append(&mut e);
                None
            }
        };
        let ctx_file = self.companion(f, "aslcontext", ".tsv");
        let volumes = match ctx_file {
            None => {
                issues.push(Issue::error(
                    &f.rel_path,
                    None,
                    format!("missing {}_aslcontext.tsv", f.entities),
                ));
                None
            }
            Some(c) => match AslContext::read(&c.path) {
                Ok(v) => Some(v),
                Err(e) => {
                    issues.push(Issue::error(
                        &c.rel_path,
                        Some("volume_type"),
                        strip_path(&e, &c.path),
                    ));
                    None
                }
            },
        };
        let (m0scan, mut m0_issues) = self.find_m0scan(f);
        issues.append(&mut m0_issues);
        let m0scan_metadata = match &m0scan {
            Some(m) => match self.metadata(m) {
                Ok(md) => {
                    let at = self
                        .companion(m, "m0scan", ".json")
                        .map(|j| j.rel_path.clone())
                        .unwrap_or(m.rel_path.clone());
                    issues.extend(m0scan_time_issues(&md, &at));
                    Some(md)
                }
                Err(e) => {
                    issues.push(Issue::error(&m.rel_path, None, e.to_string()));
                    None
                }
            },
            None => None,
        };
        if let Some(md) = &metadata {
            match (md.m0_type, &m0scan) {
                (M0Type::Separate, None) => issues.push(Issue::error(
                    &report_path,
                    Some("M0Type"),
                    "M0Type is \"Separate\" but no perf/*_m0scan.nii[.gz] was found for this series (by IntendedFor or matching entities)",
                )),
                (M0Type::Absent, Some(m)) => issues.push(Issue::error(
                    &report_path,
                    Some("M0Type"),
                    format!("M0Type is \"Absent\" but {} is an M0 scan for this series", m.rel_path.display()),
                )),
                _ => {}
            }
            if let Some(v) = &volumes {
                issues.extend(md.check_against_context(v, &report_path));
            }
        }
        let run = match (metadata, volumes, ctx_file) {
            (Some(metadata), Some(volumes), Some(c)) if !issues.iter().any(Issue::is_error) => {
                Some(AslRun {
                    asl: f.clone(),
                    entities: f.entities.clone(),
                    context: c.path.clone(),
                    volumes,
                    metadata,
                    sidecar,
                    m0scan,
                    m0scan_metadata,
                })
            }
            _ => None,
        };
        (run, issues)
    }

    /// The separate M0 scan of ASL series `f`: among `perf/*_m0scan.nii[.gz]` of the same
    /// subject and session, the one whose `IntendedFor` names `f` (paths relative to the
    /// subject directory, or `bids::` URIs), else the one with identical entities.
    pub fn find_m0scan(&self, f: &BidsFile) -> (Option<BidsFile>, Vec<Issue>) {
        let mut issues = Vec::new();
        let mut q = Query::new().datatype("perf").suffix("m0scan").nifti();
        if let Some(s) = f.subject() {
            q = q.sub(s);
        }
        if let Some(s) = f.session() {
            q = q.ses(s);
        }
        let cands = self.query(&q);
        let target = f.rel_path.to_string_lossy().replace('\\', "/");
        let mut intended = Vec::new();
        for c in &cands {
            let md = match self.metadata(c) {
                Ok(m) => m,
                Err(e) => {
                    issues.push(Issue::error(&c.rel_path, None, e.to_string()));
                    continue;
                }
            };
            let entries: Vec<&str> = match md.get("IntendedFor") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let sub_dir = format!("sub-{}/", c.subject().unwrap_or_default());
            if entries
                .iter()
                .any(|e| resolve_intended_for(e, &sub_dir) == target)
            {
                intended.push(*c);
            }
        }
        let pick = if intended.is_empty() {
            cands.iter().find(|c| c.entities == f.entities).copied()
        } else {
            let best = intended
                .iter()
                .find(|c| c.entities == f.entities)
                .copied()
                .unwrap_or(intended[0]);
            if intended.len() > 1 {
                issues.push(Issue::warning(
                    &f.rel_path,
                    Some("IntendedFor"),
                    format!(
                        "{} M0 scans name this series in IntendedFor; using {}",
                        intended.len(),
                        best.rel_path.display()
                    ),
                ));
            }
            Some(best)
        };
        (pick.cloned(), issues)
    }
}

/// The time fields of an `m0scan` sidecar checked by [`TIME_RULES`] (its
/// `RepetitionTimePreparation` sets the M0's saturation-recovery correction).
pub(super) fn m0scan_time_issues(md: &Map<String, Value>, path: &Path) -> Vec<Issue> {
    let mut out = Vec::new();
    for key in ["RepetitionTimePreparation", "RepetitionTime", "EchoTime"] {
        let v: Option<Vec<f64>> = match md.get(key) {
            Some(Value::Number(n)) => n.as_f64().map(|x| vec![x]),
            Some(Value::Array(a)) => a.iter().map(Value::as_f64).collect(),
            _ => None,
        };
        if let Some(msg) = v.and_then(|v| time_problem(key, &v)) {
            out.push(Issue::error(path, Some(key), msg));
        }
    }
    out
}

/// Resolves an `IntendedFor` entry to a dataset-relative path with `/` separators.
pub(super) fn resolve_intended_for(entry: &str, sub_dir: &str) -> String {
    if let Some(rest) = entry.strip_prefix("bids::") {
        rest.trim_start_matches('/').to_string()
    } else if entry.starts_with("sub-") {
        entry.to_string() // some datasets give it from the root
    } else {
        format!("{sub_dir}{}", entry.trim_start_matches("./"))
    }
}

pub(super) fn strip_path(e: &Error, path: &Path) -> String {
    let s = e.to_string();
    let p = format!("{}: ", path.display());
    s.strip_prefix(&p).map(str::to_string).unwrap_or(s)
}
