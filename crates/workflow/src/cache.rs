//! Content addressing: SHA-256 of files (remembered by path, size, mtime, ctime and inode in
//! `<work>/file-hashes.json` so that a rerun does not reread unchanged files), job keys, and
//! the `done.json` record of a finished job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    cbflow_resources::fetch::sha256_hex(bytes).expect("reading bytes in memory")
}

/// Lower-case hex SHA-256 of a file's content.
pub fn sha256_file(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    cbflow_resources::fetch::sha256_hex(f).map_err(io_err(path))
}

/// What identifies a file version without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

fn stamp(path: &Path) -> Result<Stamp> {
    let m = std::fs::metadata(path).map_err(io_err(path))?;
    let ns = |t: std::io::Result<std::time::SystemTime>| -> i128 {
        t.ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(-1)
    };
    #[cfg(unix)]
    let (ctime_ns, ino) = {
        use std::os::unix::fs::MetadataExt;
        (
            m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
            m.ino(),
        )
    };
    #[cfg(not(unix))]
    let (ctime_ns, ino) = (-1, 0);
    Ok(Stamp {
        size: m.len(),
        mtime_ns: ns(m.modified()),
        ctime_ns,
        ino,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    sha256: String,
}

/// File hashes remembered across runs. A file whose size, mtime, ctime and inode are those
/// recorded is not read again (as git's index and make do; a change that keeps all four is
/// not seen).
#[derive(Debug)]
pub struct HashCache {
    path: Option<PathBuf>,
    map: Mutex<BTreeMap<PathBuf, Entry>>,
}

impl HashCache {
    /// A cache that is not persisted.
    pub fn in_memory() -> Self {
        Self {
            path: None,
            map: Mutex::new(BTreeMap::new()),
        }
    }

    /// Loads `path` (a missing or unreadable file starts empty).
    pub fn load(path: &Path) -> Self {
        let map = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path: Some(path.to_path_buf()),
            map: Mutex::new(map),
        }
    }

    /// SHA-256 of `path`, from the cache when the file is unchanged.
    pub fn hash(&self, path: &Path) -> Result<String> {
        let st = stamp(path)?;
        if let Some(e) = self.map.lock().expect("not poisoned").get(path)
            && e.stamp == st
        {
            return Ok(e.sha256.clone());
        }
        let h = sha256_file(path)?;
        // a file modified while it was read gets a new stamp: record only a stable one
        if stamp(path)? == st {
            self.map.lock().expect("not poisoned").insert(
                path.to_path_buf(),
                Entry {
                    stamp: st,
                    sha256: h.clone(),
                },
            );
        }
        Ok(h)
    }

    /// Writes the cache (atomically) if it has a path; entries of files that no longer exist
    /// are dropped.
    pub fn save(&self) -> Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        let mut map = self.map.lock().expect("not poisoned").clone();
        map.retain(|k, _| k.exists());
        let bytes = serde_json::to_vec(&map).map_err(|e| Error::Io {
            path: p.clone(),
            message: e.to_string(),
        })?;
        cbflow_bids::atomic_write(p, &bytes)?;
        Ok(())
    }
}

/// One output file of a finished job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path relative to the job's output directory (= to OUTPUT_DIR once published).
    pub path: PathBuf,
    /// SHA-256 of its content.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// The record of a finished job, `<work>/jobs/<key>/done.json`; written last, so a job
/// directory with it is complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    /// The job's cache key.
    pub key: String,
    /// The job id.
    pub job: String,
    /// The operation.
    pub op: String,
    /// Its outputs.
    pub files: Vec<OutputFile>,
    /// Wall time of the run that made it (s).
    pub seconds: f64,
}

impl Done {
    /// Reads `<dir>/done.json`; `None` if absent or unreadable (the job is then not done).
    pub fn read(dir: &Path) -> Option<Done> {
        let b = std::fs::read(dir.join("done.json")).ok()?;
        serde_json::from_slice(&b).ok()
    }
}

/// The cache key of a job: SHA-256 of a canonical JSON document with the operation, its
/// parameters, the participant, the dataset root, the code identity, the content hash of
/// every input file (by its path relative to the dataset or resource directory) and the keys
/// of the jobs it reads from.
pub fn job_key(
    op: &str,
    params: &serde_json::Value,
    participant: Option<&str>,
    bids_root: &Path,
    code_id: &str,
    inputs: &[(String, String)],
    upstream: &[String],
) -> String {
    let doc = serde_json::json!({
        "op": op,
        "params": params,
        "participant": participant,
        "bids": bids_root.to_string_lossy(),
        "code": code_id,
        "inputs": inputs,
        "upstream": upstream,
    });
    sha256_hex(serde_json::to_string(&doc).expect("plain data").as_bytes())
}

/// The identity of the running code: cbflow's version and the SHA-256 of the executable, so
/// that a rebuilt binary does not reuse results of an older one.
pub fn code_id() -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| sha256_file(&p).ok())
        .unwrap_or_else(|| "unknown-executable".into());
    format!("cbflow {} {exe}", env!("CARGO_PKG_VERSION"))
}
