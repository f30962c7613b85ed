/// Errors of the resources layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The receptor registry (YAML) is malformed or inconsistent.
    #[error("receptor registry: {0}")]
    Registry(String),
    /// An atlas label table cannot be read.
    #[error("label table: {0}")]
    LabelTable(String),
    /// A resource directory is needed and none was given.
    #[error("{what} needs a resource directory: {hint}")]
    NoResourceDir {
        /// What needs it (e.g. `the MNI152NLin6Asym template`).
        what: String,
        /// How to give one.
        hint: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
