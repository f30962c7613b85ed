//! `cbflow resources`: the files a resource directory can hold, fetched from their published
//! homes at pinned commits and checked against their SHA-256, the way TemplateFlow fills
//! `$TEMPLATEFLOW_HOME`.
//!
//! Modules, in dependency order: [`manifest`] (what can be fetched; pure), `content` (digests,
//! states, atomic installs), `http` (resumable downloads), `run` (the fetch itself).

pub mod manifest;

mod content;
mod http;
mod run;

pub use content::{FileState, file_state, sha256_hex};
pub use manifest::{BUILTIN_MANIFEST, How, Manifest, ManifestEntry, fetch_hint};
pub use run::{Event, FileResult, Outcome, Source, fetch};
