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
    /// A resource manifest is malformed (`origin:line: ...`).
    #[error("resource manifest {0}")]
    Manifest(String),
    /// A resource name the manifest does not know.
    #[error("unknown resource {name:?}; the manifest knows: {known}")]
    UnknownResource {
        /// The name asked for.
        name: String,
        /// The names it knows.
        known: String,
    },
    /// A download failed before any content arrived (no connection, an HTTP error status).
    #[error("{path}: download from {url} failed: {message}")]
    Download {
        /// The destination, relative to the resource directory.
        path: String,
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A download stopped part-way; what arrived is kept for the next fetch to resume.
    #[error(
        "{path}: the download from {url} stopped after {got} of {total} bytes ({message}); what arrived waits in .partial/ of the resource directory, is never used as a resource, and running `cbflow resources fetch` again resumes it"
    )]
    Interrupted {
        /// The destination, relative to the resource directory.
        path: String,
        /// The URL.
        url: String,
        /// Bytes received so far.
        got: u64,
        /// Bytes expected (`unknown` when the server did not say).
        total: String,
        /// Why it stopped.
        message: String,
    },
    /// The content is not what the manifest pins: nothing of it is kept.
    #[error(
        "{path}: SHA-256 of the content from {source_name} is {found}, not the pinned {pinned}; nothing of it was kept"
    )]
    Checksum {
        /// The destination, relative to the resource directory.
        path: String,
        /// Where it came from (a URL or a file).
        source_name: String,
        /// The pinned digest.
        pinned: String,
        /// The digest found (`unreadable` when the content could not be read).
        found: String,
    },
    /// A file of a resource directory or a download could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
