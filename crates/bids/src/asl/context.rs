//! `aslcontext.tsv`: the type of each volume of the series.

use std::path::{Path, PathBuf};

use crate::{Error, Result, Table};

/// A volume type of `aslcontext.tsv` (`volume_type` column): the ASL kernels' own type, so that
/// what the validator accepts and what the pipeline runs are spelled by one parser.
pub use cbflow_cbf::VolumeType;

/// The contents of an `_aslcontext.tsv`: the type of each volume of the ASL series, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AslContext {
    /// The file read.
    pub path: PathBuf,
    /// One entry per volume (row).
    pub volume_types: Vec<VolumeType>,
}

impl AslContext {
    /// Reads an `_aslcontext.tsv`: a `volume_type` column is required; other columns are
    /// ignored; an unknown value is an error naming the file, the row and the value.
    pub fn read(path: &Path) -> Result<AslContext> {
        let t = Table::read_tsv(path)?;
        Self::from_table(&t)
    }

    /// Builds the context from a table already read.
    pub fn from_table(t: &Table) -> Result<AslContext> {
        let col = t.column("volume_type")?;
        let volume_types = col
            .iter()
            .enumerate()
            .map(|(i, s)| {
                VolumeType::parse(s.trim()).ok_or_else(|| Error::Table {
                    path: t.path.clone(),
                    message: format!(
                        "row {}: unknown volume_type {s:?} (expected control, label, m0scan, deltam, cbf or noRF)",
                        i + 1
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AslContext {
            path: t.path.clone(),
            volume_types,
        })
    }

    /// Number of volumes.
    pub fn len(&self) -> usize {
        self.volume_types.len()
    }

    /// True when there are no volumes.
    pub fn is_empty(&self) -> bool {
        self.volume_types.is_empty()
    }

    /// Number of volumes of type `t`.
    pub fn count(&self, t: VolumeType) -> usize {
        self.volume_types.iter().filter(|v| **v == t).count()
    }

    /// Indices (0-based) of the volumes of type `t`.
    pub fn indices(&self, t: VolumeType) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.volume_types[i] == t)
            .collect()
    }
}
