//! The one error type of the crate.

use std::path::PathBuf;

/// Errors of report generation. Missing optional inputs are not errors: the section that needs
/// them says what is missing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or listed.
    #[error("{path}: {message}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A table, sidecar or image whose content is not what the report expects.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (the column, the field, the shape).
        message: String,
    },
    /// The report could not be written.
    #[error("{path}: cannot write the report: {message}")]
    Write {
        /// The report file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The request itself is wrong (no such participant, no derivatives).
    #[error("{path}: {message}")]
    Request {
        /// The directory concerned.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A figure could not be drawn.
    #[error("figure {figure}: {message}")]
    Figure {
        /// The figure id.
        figure: String,
        /// What went wrong.
        message: String,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Read {
            path: path.into(),
            message: e.to_string(),
        }
    }
    pub(crate) fn invalid(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Invalid {
            path: path.into(),
            message: e.to_string(),
        }
    }
    pub(crate) fn figure(figure: &str, e: impl std::fmt::Display) -> Self {
        Error::Figure {
            figure: figure.into(),
            message: e.to_string(),
        }
    }
}
