//! Where the resources are: the one place that reads `$CBFLOW_RESOURCES`.

use std::path::{Path, PathBuf};

/// The environment variable naming the resource directory (laid out like `shared/data`:
/// `templates/`, `atlases/`, `pet/`).
pub const RESOURCES_ENV: &str = "CBFLOW_RESOURCES";

/// The resource directory to read: `explicit` (a `--resources` option) when given, else
/// `$CBFLOW_RESOURCES`, else the user cache directory ([`user_cache_dir`]) when
/// `cbflow resources fetch` has made it, else `None`. Nothing is checked here; callers say what
/// they need of it.
pub fn resource_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(RESOURCES_ENV).map(PathBuf::from))
        .or_else(|| user_cache_dir().filter(|d| d.is_dir()))
}

/// The resource directory `cbflow resources fetch` fills: `explicit`, else
/// `$CBFLOW_RESOURCES`, else [`user_cache_dir`] (`None` only when there is no home directory).
pub fn fetch_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(RESOURCES_ENV).map(PathBuf::from))
        .or_else(user_cache_dir)
}

/// The platform's per-user cache directory for cbflow's resources: `$XDG_CACHE_HOME/cbflow`
/// (else `~/.cache/cbflow`) on Linux and other Unix, `~/Library/Caches/cbflow` on macOS,
/// `%LOCALAPPDATA%\cbflow` on Windows.
pub fn user_cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = if cfg!(windows) {
        env("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Caches"))
    } else {
        env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("cbflow"))
}
