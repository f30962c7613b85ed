use std::path::PathBuf;

use crate::Issue;

/// Errors of the BIDS crate. Each names the file (where there is one), the field or entity, and
/// what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read, written or listed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file could not be parsed, or is not a JSON object where one is required.
    #[error("{path}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What went wrong (with line and column where known).
        message: String,
    },
    /// A file name that does not follow the BIDS `key-value_..._suffix.extension` pattern.
    #[error("invalid BIDS file name {name:?}: {message}")]
    Filename {
        /// The file name.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A BIDS label (the value of an entity, e.g. a participant label) that is not allowed.
    #[error("invalid label {label:?}: {message}")]
    Label {
        /// The label as given.
        label: String,
        /// Why it was refused.
        message: String,
    },
    /// A TSV file that is malformed: no header, a ragged row, a missing column or a bad value.
    #[error("{path}: {message}")]
    Table {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the row and column where there is one.
        message: String,
    },
    /// The dataset is not a BIDS dataset (e.g. the root does not exist or is not a directory).
    #[error("{path}: {message}")]
    Dataset {
        /// The dataset root.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The output directory would write into the input dataset.
    #[error("refusing output directory {out_dir}: {message} (BIDS dataset at {bids_root})")]
    OutputDir {
        /// The BIDS dataset root (canonical).
        bids_root: PathBuf,
        /// The output directory requested (canonical where it exists).
        out_dir: PathBuf,
        /// Why it was refused.
        message: String,
    },
    /// A derivative name or relative output path that cannot be built or used.
    #[error("invalid derivative path: {0}")]
    Derivative(String),
    /// Validation problems (errors and warnings) found in one or more files; at least one is an
    /// error. The message lists the errors and counts the warnings.
    #[error("{}", format_issues(.0))]
    Issues(Vec<Issue>),
    /// An error from the image crate (reading or writing NIfTI).
    #[error(transparent)]
    Image(#[from] cbflow_image::Error),
}

fn format_issues(issues: &[Issue]) -> String {
    let n_err = issues.iter().filter(|i| i.is_error()).count();
    let n_warn = issues.len() - n_err;
    let mut s = format!("{n_err} BIDS error(s)");
    for i in issues.iter().filter(|i| i.is_error()) {
        s.push_str("\n  ");
        s.push_str(&i.to_string());
    }
    if n_warn > 0 {
        s.push_str(&format!(
            "\n  (and {n_warn} warning(s); `cbflow validate` lists them)"
        ));
    }
    s
}

/// Result alias of the BIDS crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
