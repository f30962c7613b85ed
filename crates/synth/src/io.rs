//! Writing the dataset: every file goes through one place so the count and atomicity hold.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cbflow_image::{DataType, Volume};

use crate::{Error, Result};

/// Writes files under a root, counting them.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) root: PathBuf,
    count: AtomicUsize,
}

impl Writer {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            count: AtomicUsize::new(0),
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn prepare(&self, rel: &str) -> Result<PathBuf> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Write {
                path: parent.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(path)
    }

    pub(crate) fn text(&self, rel: &str, text: &str) -> Result<()> {
        let path = self.prepare(rel)?;
        cbflow_bids::atomic_write(&path, text.as_bytes()).map_err(|e| Error::Write {
            path: path.clone(),
            message: e.to_string(),
        })
    }

    pub(crate) fn json(&self, rel: &str, value: &serde_json::Value) -> Result<()> {
        let mut s = serde_json::to_string_pretty(value).expect("JSON values serialise");
        s.push('\n');
        self.text(rel, &s)
    }

    /// A TSV from a header and rows (already formatted cells).
    pub(crate) fn tsv(&self, rel: &str, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
        let mut s = header.join("\t");
        s.push('\n');
        for r in rows {
            s.push_str(&r.join("\t"));
            s.push('\n');
        }
        self.text(rel, &s)
    }

    pub(crate) fn nifti(&self, rel: &str, vol: &Volume, dtype: DataType) -> Result<()> {
        let path = self.prepare(rel)?;
        cbflow_image::write(&path, vol, dtype).map_err(Error::Image)
    }
}

/// Formats a float for a table with enough digits to be useful and no noise.
pub(crate) fn fmt(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}
