use std::path::PathBuf;

/// Errors of the participant and group stages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The BIDS dataset failed validation; nothing was written.
    #[error(
        "{root}: the dataset is not valid BIDS for cbflow ({n_errors} errors); nothing was written\n{report}"
    )]
    InvalidDataset {
        /// The dataset root.
        root: PathBuf,
        /// Number of errors.
        n_errors: usize,
        /// The validation report, one line per issue.
        report: String,
    },
    /// A requested participant is not in the dataset.
    #[error("participant '{label}' is not in {root} (it has: {available})")]
    UnknownParticipant {
        /// The label asked for.
        label: String,
        /// The dataset root.
        root: PathBuf,
        /// The participants present.
        available: String,
    },
    /// A metadata field or image content that cannot be used.
    #[error("{path}: {field}: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The field (sidecar key, TSV column or `data`).
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A processing step failed on a file.
    #[error("{path}: {step}: {message}")]
    Step {
        /// The input file being processed.
        path: PathBuf,
        /// The step.
        step: &'static str,
        /// The cause.
        message: String,
    },
    /// A template or atlas resource is missing or unusable.
    #[error("{path}: {message}")]
    Resource {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A BIDS input/output problem.
    #[error(transparent)]
    Bids(#[from] cbflow_bids::Error),
    /// An image input/output problem.
    #[error(transparent)]
    Image(#[from] cbflow_image::Error),
}

/// Result alias of the pipeline crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Metadata`]: `field` of the file at `path` cannot be used, and why.
pub(crate) fn meta_err(path: &std::path::Path, field: &str, message: impl Into<String>) -> Error {
    Error::Metadata {
        path: path.to_path_buf(),
        field: field.into(),
        message: message.into(),
    }
}

/// A statistics kernel's error in a group step, as an [`Error::Step`] on `path`.
pub(crate) fn stats_err(path: &std::path::Path, e: cbflow_stats::StatsError) -> Error {
    Error::Step {
        path: path.to_path_buf(),
        step: "group statistics",
        message: e.to_string(),
    }
}
