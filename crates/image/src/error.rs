use std::path::PathBuf;

/// Errors of the image crate. Each names the file (where there is one) and what was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The NIfTI header or data is malformed.
    #[error("{path}: invalid NIfTI: {field}: {message}")]
    InvalidNifti {
        /// The file.
        path: PathBuf,
        /// The header field or part of the file at fault (e.g. `dim`, `datatype`, `data`).
        field: String,
        /// What was expected.
        message: String,
    },
    /// Two arrays or grids that must agree in shape do not.
    #[error("shape mismatch: {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// What was being combined.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// An affine that cannot be inverted or is otherwise unusable.
    #[error("invalid affine: {0}")]
    InvalidAffine(String),
    /// Any other invalid argument.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of the image crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
