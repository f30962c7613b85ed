//! The one way cbflow replaces a file: write it under a temporary name in the same directory,
//! then rename it into place, so that a reader sees the old file or the whole new one and an
//! error leaves nothing behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How far a replaced file survives a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Renamed into place without syncing: atomic for readers, not against power loss (the
    /// files a job writes, which the job's own directory rename publishes).
    Atomic,
    /// The file is synced before the rename and its directory after it (Unix): the new content
    /// is on disk once this returns.
    Durable,
}

/// Writes `path` by `write` on a new temporary file `.<name>.tmp-<pid>-<n>` in the same
/// directory (which must exist), then renames it over `path`; with [`Durability::Durable`] the
/// file and then its directory are synced. On error the temporary file is removed and `path`
/// is untouched.
pub fn write_atomically(
    path: &Path,
    durability: Durability,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path (no file name)",
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        write(&mut f)?;
        if durability == Durability::Durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    #[cfg(unix)]
    if durability == Durability::Durable
        && let Ok(d) = File::open(&dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsv");
        for d in [Durability::Atomic, Durability::Durable] {
            write_atomically(&path, d, |f| f.write_all(b"new\n")).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        }
        // a failing writer leaves the old file and no temporary one
        let err = write_atomically(&path, Durability::Durable, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        assert_eq!(names(dir.path()), ["a.tsv"]);
        // a missing directory is an error, not created
        let deep = dir.path().join("no/such/b.tsv");
        assert!(write_atomically(&deep, Durability::Atomic, |_| Ok(())).is_err());
        assert_eq!(names(dir.path()), ["a.tsv"]);
    }
}
