use std::path::PathBuf;

/// Errors of the synthetic-study generator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing a file failed.
    #[error("{path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A template or atlas could not be read.
    #[error("template resource {path}: {source}")]
    Resource {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: cbflow_image::Error,
    },
    /// An impossible request.
    #[error("invalid synthetic study: {0}")]
    Invalid(String),
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] cbflow_image::Error),
}

/// Result alias of the synth crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
