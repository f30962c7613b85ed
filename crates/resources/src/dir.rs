//! Where the resources are: the one place that reads `$CBFLOW_RESOURCES`.

use std::path::{Path, PathBuf};

/// The environment variable naming the resource directory (laid out like `shared/data`:
/// `templates/`, `atlases/`, `pet/`).
pub const RESOURCES_ENV: &str = "CBFLOW_RESOURCES";

/// The resource directory: `explicit` (a `--resources` option) when given, else
/// `$CBFLOW_RESOURCES`, else `None`. Nothing is checked here; callers say what they need of it.
pub fn resource_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(RESOURCES_ENV).map(PathBuf::from))
}
