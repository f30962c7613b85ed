//! The participant level: ingest, validate, and write each participant's derivatives.

use std::path::{Path, PathBuf};

use cbflow_bids::{
    DerivativesWriter, Layout, SourceDataset, check_output_dir, normalize_participant_label,
};

use crate::{Error, Result, generated_by};

/// Options of the participant level (the BIDS-Apps command line, resolved).
#[derive(Debug, Clone)]
pub struct ParticipantOptions {
    /// The input BIDS dataset (read only).
    pub bids_dir: PathBuf,
    /// The derivatives dataset to write.
    pub output_dir: PathBuf,
    /// Participants to process (without `sub-`); empty = all.
    pub participant_labels: Vec<String>,
}

/// What the participant level did.
#[derive(Debug, Clone)]
pub struct ParticipantSummary {
    /// Participants processed.
    pub participants: Vec<String>,
    /// ASL runs found per participant, in order.
    pub asl_runs: Vec<(String, usize)>,
    /// Validation warnings (the errors stop the run before anything is written).
    pub warnings: Vec<String>,
}

/// Validates the dataset and the request, then writes the derivatives of each participant.
///
/// Nothing is written when the output directory is the input dataset, a participant label is
/// unsafe or unknown, or the dataset has validation errors.
pub fn participant(opts: &ParticipantOptions) -> Result<ParticipantSummary> {
    let labels = opts
        .participant_labels
        .iter()
        .map(|l| normalize_participant_label(l))
        .collect::<Result<Vec<_>, _>>()?;
    check_output_dir(&opts.bids_dir, &opts.output_dir)?;
    let layout = Layout::index(&opts.bids_dir)?;
    let available = layout.subjects();
    for l in &labels {
        if !available.contains(l) {
            return Err(Error::UnknownParticipant {
                label: l.clone(),
                root: opts.bids_dir.clone(),
                available: available.join(", "),
            });
        }
    }
    let selected: Vec<String> = if labels.is_empty() { available } else { labels };
    let report = cbflow_bids::validate(&opts.bids_dir)?;
    let in_scope = |p: &Path| {
        let first = p
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        match first {
            Some(f) if f.starts_with("sub-") => selected.iter().any(|s| f == format!("sub-{s}")),
            _ => true,
        }
    };
    let errors: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.severity == cbflow_bids::Severity::Error && in_scope(&i.path))
        .collect();
    if !errors.is_empty() {
        return Err(Error::InvalidDataset {
            root: opts.bids_dir.clone(),
            n_errors: errors.len(),
            report: errors
                .iter()
                .map(|i| format!("  {i}"))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    let warnings = report
        .issues
        .iter()
        .filter(|i| i.severity == cbflow_bids::Severity::Warning && in_scope(&i.path))
        .map(|i| i.to_string())
        .collect();
    let runs = layout.asl_runs()?;
    let source = SourceDataset {
        url: Some(format!(
            "file://{}",
            std::fs::canonicalize(&opts.bids_dir)
                .unwrap_or(opts.bids_dir.clone())
                .display()
        )),
        ..SourceDataset::default()
    };
    let _writer = DerivativesWriter::create(&opts.output_dir, generated_by(), &[source])?;
    let asl_runs = selected
        .iter()
        .map(|s| {
            (
                s.clone(),
                runs.iter()
                    .filter(|r| r.asl.entities.get("sub") == Some(s.as_str()))
                    .count(),
            )
        })
        .collect();
    Ok(ParticipantSummary {
        participants: selected,
        asl_runs,
        warnings,
    })
}
