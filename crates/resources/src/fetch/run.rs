//! Filling a resource directory: each file of the manifest that is missing or not as pinned is
//! downloaded from its published home (or copied from another resource directory), checked
//! against its SHA-256 and only then put in place. Downloads in progress live in
//! `DIR/.partial/` (hidden: never read as a resource) and are resumed by the next fetch; one
//! fetch at a time per directory (a lock in `.partial/`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::content::{self, FileState, InstallError};
use super::http::{Client, DownloadError};
use super::manifest::ManifestEntry;
use crate::{Error, Result};

/// Where the files come from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Their published homes (the manifest's URLs).
    Published,
    /// Another resource directory laid out the same way (an offline copy, `shared/data`).
    Dir(&'a Path),
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was already there with the pinned content.
    AlreadyThere,
    /// Downloaded (`resumed_from` bytes were already there from an earlier, cut download).
    Downloaded {
        /// Bytes of the download.
        bytes: u64,
        /// Bytes an earlier fetch had received.
        resumed_from: u64,
    },
    /// Copied from the source directory.
    Copied,
}

/// Progress of a fetch, for a progress bar.
#[derive(Debug)]
pub enum Event<'a> {
    /// Work on a file starts (`from`: the URL or the source file).
    Start {
        /// The file.
        entry: &'a ManifestEntry,
        /// Where it comes from.
        from: String,
    },
    /// Bytes of the current download so far (and the total, when the server says).
    Bytes {
        /// Received.
        done: u64,
        /// Expected.
        total: Option<u64>,
    },
    /// A file is done, well or not.
    Done {
        /// The file.
        entry: &'a ManifestEntry,
        /// How it went.
        outcome: &'a Result<Outcome>,
    },
}

/// The result of one file of a fetch.
pub type FileResult<'a> = (&'a ManifestEntry, Result<Outcome>);

/// Fills the resource directory `dir` with `entries` from `source`. Every file is tried (one
/// failure does not stop the others); the per-file results come back in order. The outer error
/// is for the directory itself (cannot be created or locked).
pub fn fetch<'a>(
    entries: &[&'a ManifestEntry],
    dir: &Path,
    source: Source<'_>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<FileResult<'a>>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let partial = dir.join(".partial");
    std::fs::create_dir_all(&partial).map_err(io(&partial))?;
    let lock_path = partial.join("lock");
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;

    // made on the first download (a fetch with nothing to download opens no connection)
    let mut client: Option<Client> = None;
    // downloads complete in this fetch, by URL (several files can come from one zip)
    let mut complete: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut results = Vec::with_capacity(entries.len());
    for &entry in entries {
        let outcome = match content::file_state(dir, entry) {
            FileState::Verified => Ok(Outcome::AlreadyThere),
            _ => match source {
                Source::Dir(from) => {
                    let src = from.join(&entry.path);
                    progress(Event::Start {
                        entry,
                        from: src.display().to_string(),
                    });
                    copy_one(entry, &src, dir)
                }
                Source::Published => {
                    progress(Event::Start {
                        entry,
                        from: entry.url.clone(),
                    });
                    let client = client.get_or_insert_with(Client::new);
                    download_one(entry, dir, &partial, client, &mut complete, progress)
                }
            },
        };
        progress(Event::Done {
            entry,
            outcome: &outcome,
        });
        results.push((entry, outcome));
    }
    for done in complete.values() {
        let _ = std::fs::remove_file(done);
    }
    // leave no empty bookkeeping behind: the directory stays only while a download is resumable
    let parts_left = std::fs::read_dir(&partial)
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name() != "lock"))
        .unwrap_or(true);
    drop(lock);
    if !parts_left {
        let _ = std::fs::remove_file(&lock_path);
        let _ = std::fs::remove_dir(&partial);
    }
    Ok(results)
}

fn copy_one(entry: &ManifestEntry, src: &Path, dir: &Path) -> Result<Outcome> {
    if !src.is_file() {
        return Err(Error::Io {
            path: src.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not in the source directory",
            ),
        });
    }
    content::install_copy(src, &entry.how, &entry.sha256, &dir.join(&entry.path))
        .map_err(|e| install_error(entry, src.display().to_string(), src, e))?;
    Ok(Outcome::Copied)
}

fn install_error(
    entry: &ManifestEntry,
    source_name: String,
    file: &Path,
    e: InstallError,
) -> Error {
    match e {
        InstallError::Mismatch(found) => Error::Checksum {
            path: entry.path.clone(),
            source_name,
            pinned: entry.sha256.clone(),
            found,
        },
        InstallError::NoMember(member) => Error::Download {
            path: entry.path.clone(),
            url: entry.url.clone(),
            message: format!("the archive has no member {member}"),
        },
        // a file that cannot be decoded (e.g. a truncated gzip) is not the pinned content either
        InstallError::Io(source)
            if source.kind() == std::io::ErrorKind::InvalidData
                || source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Error::Checksum {
                path: entry.path.clone(),
                source_name,
                pinned: entry.sha256.clone(),
                found: format!("unreadable ({source})"),
            }
        }
        InstallError::Io(source) => Error::Io {
            path: file.to_path_buf(),
            source,
        },
    }
}

fn download_one(
    entry: &ManifestEntry,
    dir: &Path,
    partial: &Path,
    client: &Client,
    complete: &mut BTreeMap<String, PathBuf>,
    progress: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome> {
    let key = content::sha256_hex(entry.url.as_bytes()).expect("hashing bytes in memory");
    let part = partial.join(format!("{}.part", &key[..24]));
    let (bytes, resumed_from) = match complete.get(&entry.url) {
        Some(done) => (std::fs::metadata(done).map_or(0, |m| m.len()), 0),
        None => {
            let resumed_from = std::fs::metadata(&part).map_or(0, |m| m.len());
            client
                .download(&entry.url, &part, &mut |done, total| {
                    progress(Event::Bytes { done, total })
                })
                .map_err(|e| match e {
                    DownloadError::Failed(message) => Error::Download {
                        path: entry.path.clone(),
                        url: entry.url.clone(),
                        message,
                    },
                    DownloadError::Cut {
                        got,
                        total,
                        message,
                    } => Error::Interrupted {
                        path: entry.path.clone(),
                        url: entry.url.clone(),
                        got,
                        total: total.map_or("unknown".into(), |t| t.to_string()),
                        message,
                    },
                    DownloadError::Io(source) => Error::Io {
                        path: part.clone(),
                        source,
                    },
                })?;
            let done = partial.join(format!("{}.done", &key[..24]));
            std::fs::rename(&part, &done).map_err(|source| Error::Io {
                path: part.clone(),
                source,
            })?;
            complete.insert(entry.url.clone(), done.clone());
            (
                std::fs::metadata(&done).map_or(0, |m| m.len()),
                resumed_from,
            )
        }
    };
    let download = complete[&entry.url].clone();
    match content::install_download(&download, &entry.how, &entry.sha256, &dir.join(&entry.path)) {
        Ok(()) => Ok(Outcome::Downloaded {
            bytes,
            resumed_from,
        }),
        Err(e) => {
            if matches!(e, InstallError::Mismatch(_)) {
                // a download that is not what was pinned is not kept, not even to resume
                let _ = std::fs::remove_file(&download);
                complete.remove(&entry.url);
            }
            Err(install_error(entry, entry.url.clone(), &download, e))
        }
    }
}
