//! Staged writing: a level writes its outputs into a private directory inside OUTPUT_DIR and
//! moves them into place only when everything succeeded, so a failed run leaves no partial
//! outputs.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A staging directory inside the output directory: everything is written there first and
/// renamed into place by [`Staging::commit`]; dropped without commit, it is removed (and so is
/// the output directory, if this run created it).
pub(crate) struct Staging {
    out: PathBuf,
    /// Where to write.
    pub(crate) dir: PathBuf,
    created_out: bool,
    committed: bool,
}

impl Staging {
    /// A new staging directory in `out` (created if needed).
    pub(crate) fn new(out: &Path) -> Result<Self> {
        let created_out = !out.exists();
        // unique across processes and hosts sharing OUTPUT_DIR (SLURM array tasks)
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = out.join(format!(".cbflow-staging-{}-{nonce}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Step {
            path: dir.clone(),
            step: "creating the output directory",
            message: e.to_string(),
        })?;
        Ok(Self {
            out: out.to_path_buf(),
            dir,
            created_out,
            committed: false,
        })
    }

    /// Moves everything written into the staging directory into the output directory (keeping
    /// relative paths; a file already there is replaced); returns the final paths.
    pub(crate) fn commit(mut self) -> Result<Vec<PathBuf>> {
        let err = |p: &Path, e: std::io::Error| Error::Step {
            path: p.to_path_buf(),
            step: "writing outputs",
            message: e.to_string(),
        };
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
                .map_err(|e| err(&d, e))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(|e| err(&d, e))?;
            entries.sort();
            for f in entries {
                if f.is_dir() {
                    stack.push(f);
                    continue;
                }
                let rel = f
                    .strip_prefix(&self.dir)
                    .expect("inside the staging directory");
                let dest = self.out.join(rel);
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p).map_err(|e| err(p, e))?;
                }
                std::fs::rename(&f, &dest).map_err(|e| err(&dest, e))?;
                out.push(dest);
            }
        }
        self.committed = true;
        let _ = std::fs::remove_dir_all(&self.dir);
        out.sort();
        Ok(out)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
            if self.created_out {
                let _ = std::fs::remove_dir(&self.out);
            }
        }
    }
}
