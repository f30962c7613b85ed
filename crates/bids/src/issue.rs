//! Validation issues and the report that groups them per file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// How serious an [`Issue`] is: an error violates a REQUIRED rule of the BIDS specification (or
/// makes the data unusable); a warning a RECOMMENDED one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A REQUIRED rule is broken; the file cannot be processed as is.
    Error,
    /// A RECOMMENDED rule is broken, or something could not be checked.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the dataset root (`.` for the dataset as a whole).
    pub path: PathBuf,
    /// The JSON field or TSV column concerned, if any (e.g. `PostLabelingDelay`).
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Issue {
    /// An error about `path` (and `field`).
    pub fn error(
        path: impl Into<PathBuf>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// A warning about `path` (and `field`).
    pub fn warning(
        path: impl Into<PathBuf>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            path: path.into(),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.severity)?;
        if let Some(field) = &self.field {
            write!(f, " [{field}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The outcome of [`crate::validate`]: every issue found, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// All issues.
    pub issues: Vec<Issue>,
}

impl ValidationReport {
    /// True when at least one issue is an error.
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(Issue::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Issue> {
        self.issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
    }

    /// Issues grouped by file (sorted by path), errors before warnings within a file.
    pub fn by_file(&self) -> BTreeMap<PathBuf, Vec<&Issue>> {
        let mut m: BTreeMap<PathBuf, Vec<&Issue>> = BTreeMap::new();
        for i in &self.issues {
            m.entry(i.path.clone()).or_default().push(i);
        }
        for v in m.values_mut() {
            v.sort_by_key(|i| i.severity);
        }
        m
    }
}

impl fmt::Display for ValidationReport {
    /// One block per file: the path, then one indented line per issue; a summary line last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, issues) in self.by_file() {
            writeln!(f, "{}", path.display())?;
            for i in issues {
                write!(f, "  {}", i.severity)?;
                if let Some(field) = &i.field {
                    write!(f, " [{field}]")?;
                }
                writeln!(f, ": {}", i.message)?;
            }
        }
        let n_err = self.errors().count();
        let n_warn = self.warnings().count();
        write!(f, "{n_err} error(s), {n_warn} warning(s)")
    }
}
