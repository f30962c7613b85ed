//! Covariates of the group level's GLM: global CBF under each contrast's weights, and columns
//! of `participants.tsv` (age, sex, …), nuisance variables of the one-sample design of the
//! within-subject differences ([`cbflow_stats::difference_design`]; Freedman–Lane in the
//! permutation test). A `participants.tsv` column is centred, so the contrast is tested at the
//! average age; global CBF is not, so the contrast is tested at no change of global CBF — the
//! regional effect beyond a brain-wide shift (ANCOVA global adjustment, as SPM does for PET).

use std::path::Path;

use cbflow_bids::Layout;
use cbflow_stats::Covariate;
use serde::Serialize;

use crate::{Error, Result};

/// One declared covariate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum GroupCovariate {
    /// Global CBF (the `global` row of the participant ROI tables), combined with each
    /// contrast's own weights: for a during − before contrast, the change of global CBF. It
    /// removes brain-wide shifts (e.g. from arterial CO₂ or haematocrit) from the regional
    /// contrast.
    GlobalCbf,
    /// A column of `participants.tsv`: numbers, or exactly two levels coded 0 (the first in
    /// sorted order) and 1.
    Participant(String),
}

/// How the workflow names [`GroupCovariate::GlobalCbf`].
pub const GLOBAL_CBF: &str = "global-cbf";

impl GroupCovariate {
    /// `global-cbf` or the name of a `participants.tsv` column.
    pub fn parse(name: &str) -> Self {
        if name == GLOBAL_CBF {
            Self::GlobalCbf
        } else {
            Self::Participant(name.to_string())
        }
    }

    /// The name in the workflow and in sidecars.
    pub fn name(&self) -> &str {
        match self {
            Self::GlobalCbf => GLOBAL_CBF,
            Self::Participant(c) => c,
        }
    }

    /// Why a list of covariates cannot be used, if it cannot (checked before anything runs):
    /// a name twice, `participant_id`, or a name that is not a plausible column name.
    pub fn list_problem(list: &[Self]) -> Option<String> {
        for (i, c) in list.iter().enumerate() {
            let name = c.name();
            if list[..i].iter().any(|o| o.name() == name) {
                return Some(format!("covariate {name} is listed twice"));
            }
            if name == "participant_id" {
                return Some("participant_id is the subject, not a covariate".into());
            }
            if name.is_empty() || name.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                return Some(format!(
                    "covariate {name:?}: expected {GLOBAL_CBF} or a participants.tsv column name"
                ));
            }
        }
        None
    }
}

/// The covariates' values for the subjects of the analysis (in their order), in declared order.
#[derive(Debug, Clone, Default)]
pub(crate) struct CovariateValues(Vec<Values>);

#[derive(Debug, Clone)]
enum Values {
    /// Per subject, global CBF in each cell of the design (for the crossover, the order of
    /// [`crate::StudyDesign::cells`]; for the paired design, before and during).
    Global(Vec<Vec<f64>>),
    /// A participants.tsv column.
    Column(Covariate),
}

impl CovariateValues {
    /// Reads every declared covariate for the subjects `labels` (without `sub-`);
    /// `global_cells(i)` gives subject `i`'s global CBF in each cell. An error names the file,
    /// the column and the subject.
    pub(crate) fn read(
        covariates: &[GroupCovariate],
        layout: &Layout,
        labels: &[&str],
        global_cells: impl Fn(usize) -> Result<Vec<f64>>,
    ) -> Result<Self> {
        let mut out = Vec::with_capacity(covariates.len());
        for c in covariates {
            out.push(match c {
                GroupCovariate::GlobalCbf => Values::Global(
                    (0..labels.len())
                        .map(&global_cells)
                        .collect::<Result<_>>()?,
                ),
                GroupCovariate::Participant(col) => {
                    let (path, table) = participants(layout, col)?;
                    Values::Column(column_covariate(&path, &table, col, Some(labels))?)
                }
            });
        }
        Ok(Self(out))
    }

    /// The covariates of the contrast with cell weights `w`, in declared order.
    pub(crate) fn for_contrast(&self, w: &[f64]) -> Vec<Covariate> {
        self.0
            .iter()
            .map(|v| match v {
                // not centred: a contrast is tested at no change of global CBF
                Values::Global(g) => Covariate::uncentred(
                    GLOBAL_CBF,
                    g.iter()
                        .map(|cells| cells.iter().zip(w).map(|(c, w)| c * w).sum())
                        .collect(),
                ),
                Values::Column(c) => c.clone(),
            })
            .collect()
    }
}

/// Checks, before anything runs, that each declared `participants.tsv` covariate exists and is
/// numbers or two levels over the subjects that have a value (a value missing for a subject
/// the group level analyses stops it then, naming the subject).
pub fn covariates_preflight(layout: &Layout, covariates: &[GroupCovariate]) -> Result<()> {
    if let Some(why) = GroupCovariate::list_problem(covariates) {
        return Err(participants_err(
            &layout.root().join("participants.tsv"),
            "covariates",
            why,
        ));
    }
    let columns: Vec<&str> = covariates
        .iter()
        .filter_map(|c| match c {
            GroupCovariate::Participant(col) => Some(col.as_str()),
            GroupCovariate::GlobalCbf => None,
        })
        .collect();
    if columns.is_empty() {
        return Ok(());
    }
    let (path, table) = participants(layout, columns[0])?;
    for col in columns {
        column_covariate(&path, &table, col, None)?;
    }
    Ok(())
}

fn participants_err(path: &Path, column: &str, message: String) -> Error {
    Error::Metadata {
        path: path.to_path_buf(),
        field: column.into(),
        message,
    }
}

/// The dataset's `participants.tsv` and its path; an error names the `column` that needs it.
fn participants(layout: &Layout, column: &str) -> Result<(std::path::PathBuf, cbflow_bids::Table)> {
    let path = layout.root().join("participants.tsv");
    match layout.participants()? {
        Some(table) => Ok((path, table)),
        None => Err(participants_err(
            &path,
            column,
            "the covariate needs participants.tsv, which the dataset does not have".into(),
        )),
    }
}

/// A `participants.tsv` column as a covariate: numbers as they are; two levels coded 0/1 (the
/// name then says which level is 1, e.g. `sex=M`). `labels`: the subjects, in order, each of
/// which needs a value; `None`: every row that has a value (the check before anything runs).
fn column_covariate(
    path: &Path,
    table: &cbflow_bids::Table,
    column: &str,
    labels: Option<&[&str]>,
) -> Result<Covariate> {
    let Some(i) = table.column_index(column) else {
        return Err(participants_err(
            path,
            column,
            "no such column (declare global-cbf or a column of participants.tsv)".into(),
        ));
    };
    let missing = |cell: &str| cell.is_empty() || cell == "n/a";
    let cells: Vec<String> = match labels {
        Some(labels) => {
            let mut cells = Vec::with_capacity(labels.len());
            for s in labels {
                let id = format!("sub-{s}");
                let row = table.row_by("participant_id", &id)?.ok_or_else(|| {
                    participants_err(path, "participant_id", format!("no row for {id}"))
                })?;
                let cell = row[i].trim();
                if missing(cell) {
                    return Err(participants_err(
                        path,
                        column,
                        format!(
                            "{id} has no value; a covariate needs one for every subject analysed"
                        ),
                    ));
                }
                cells.push(cell.to_string());
            }
            cells
        }
        None => table
            .column(column)?
            .into_iter()
            .map(str::trim)
            .filter(|c| !missing(c))
            .map(str::to_string)
            .collect(),
    };
    let numbers: Option<Vec<f64>> = cells
        .iter()
        .map(|c| c.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    if let Some(values) = numbers {
        return Ok(Covariate::centred(column, values));
    }
    let mut levels: Vec<&str> = cells.iter().map(String::as_str).collect();
    levels.sort_unstable();
    levels.dedup();
    if levels.len() == 1 {
        return Err(participants_err(
            path,
            column,
            format!(
                "every subject has {}: a constant covariate cannot be estimated",
                levels[0]
            ),
        ));
    }
    if levels.len() != 2 {
        return Err(participants_err(
            path,
            column,
            format!(
                "neither numbers nor two levels (found {}: {}); code it as numbers or as two levels",
                levels.len(),
                levels.join(", ")
            ),
        ));
    }
    let one = levels[1].to_string();
    Ok(Covariate::centred(
        format!("{column}={one}"),
        cells.iter().map(|c| (*c == one) as u8 as f64).collect(),
    ))
}
