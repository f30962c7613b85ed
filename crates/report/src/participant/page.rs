//! The participant page: the runs found, the QC overview and the order of the sections.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

use super::anat::normalisation_section;
use super::figures::{Ctx, run_meaning, session_info};
use super::run::run_section;
use super::timecourse::timecourse_section;
use cbflow_pipeline::StudyDesign;
use cbflow_pipeline::catalogue::RunFile;

use crate::data::{self, RunFiles, col_f64, col_str, find_runs, fname};
use crate::html::{self, Cell, esc, num};
use crate::methods;
use crate::{Error, ReportInputs, Result};

/// Writes `OUTPUT_DIR/sub-<label>.html` for one participant from the derivatives written by
/// the participant level (and, for the anatomy and session labels, the BIDS input), atomically.
/// Missing optional inputs become a note in the section that needs them.
pub fn participant_report(inputs: &ReportInputs, label: &str) -> Result<PathBuf> {
    let ReportInputs {
        output_dir,
        bids_dir,
        design,
        resources,
    } = *inputs;
    let label = label.trim_start_matches("sub-");
    if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::Request {
            path: output_dir.to_path_buf(),
            message: format!("invalid participant label {label:?}"),
        });
    }
    let runs = find_runs(output_dir, label)?;
    if runs.is_empty() {
        return Err(Error::Request {
            path: output_dir.join(format!("sub-{label}")),
            message: "no participant-level CBF maps (*_cbf.nii.gz) for this participant".into(),
        });
    }
    tracing::info!("participant report for sub-{label}: {} runs", runs.len());
    let space = data::detect_space(&output_dir.join(format!("sub-{label}")))?;
    let template = match &space {
        Some((s, _)) => data::load_template(s, resources),
        None => Err("no template-space outputs".to_string()),
    };
    let ctx = Ctx {
        output_dir,
        bids_dir,
        label,
        design,
        template,
        space,
    };
    let html = build(&ctx, &runs)?;
    let path = output_dir.join(format!("sub-{label}.html"));
    cbflow_bids::atomic_write(&path, html.as_bytes()).map_err(|e| Error::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

pub(super) fn build(ctx: &Ctx, runs: &[RunFiles]) -> Result<String> {
    let sessions = session_info(ctx.bids_dir, ctx.label, ctx.design);
    let mut body = String::new();
    let mut nav = vec![("summary".to_string(), "Summary".to_string())];

    // QC of every run first: the summary counts its flags
    let mut qc_rows = Vec::new();
    let mut n_flags = 0;
    for r in runs {
        let row = qc_row(r, ctx.design)?;
        if let Some((_, flagged)) = &row {
            n_flags += usize::from(*flagged);
        }
        qc_rows.push((r, row));
    }

    // summary
    let mut ses_list: Vec<String> = runs.iter().filter_map(|r| r.ses.clone()).collect();
    ses_list.dedup();
    body.push_str("<section id=\"summary\"><h2>Summary</h2><dl class=\"summary\">");
    let _ = write!(body, "<dt>Participant</dt><dd>sub-{}</dd>", esc(ctx.label));
    let _ = write!(
        body,
        "<dt>Sessions</dt><dd>{}</dd>",
        if ses_list.is_empty() {
            "none (single-session dataset)".to_string()
        } else {
            ses_list
                .iter()
                .map(|s| match sessions.get(s) {
                    Some((pre, per)) => {
                        format!("ses-{} ({}, period {})", esc(s), esc(pre), esc(per))
                    }
                    None => format!("ses-{}", esc(s)),
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
    );
    let _ = write!(body, "<dt>ASL runs</dt><dd>{}</dd>", runs.len());
    let _ = write!(
        body,
        "<dt>Template space</dt><dd>{}</dd>",
        match &ctx.space {
            Some((s, r)) => format!("{} (res-{})", esc(s), esc(r)),
            None => "none (native space only)".into(),
        }
    );
    let _ = write!(
        body,
        "<dt>QC</dt><dd>{}</dd>",
        if n_flags == 0 {
            "no run flagged".to_string()
        } else {
            format!(
                "{n_flags} of {} runs flagged (see the QC table)",
                runs.len()
            )
        }
    );
    body.push_str("</dl></section>\n");

    // QC overview
    nav.push(("qc".into(), "QC".into()));
    body.push_str("<section id=\"qc\"><h2>Quality control</h2>");
    body.push_str(&qc_overview(&qc_rows)?);
    body.push_str("</section>\n");

    // per session
    let mut by_ses: BTreeMap<Option<String>, Vec<&RunFiles>> = BTreeMap::new();
    for r in runs {
        by_ses.entry(r.ses.clone()).or_default().push(r);
    }
    for (ses, rs) in &by_ses {
        let sid = match ses {
            Some(s) => format!("ses-{s}"),
            None => "runs".into(),
        };
        let title = match ses.as_ref().and_then(|s| sessions.get(s)) {
            Some((pre, per)) => format!("Session {sid}: {pre}, period {per}"),
            None => format!("Session {sid}"),
        };
        nav.push((sid.clone(), sid.clone()));
        let _ = writeln!(
            body,
            "<section id=\"{}\"><h2>{}</h2>",
            esc(&sid),
            esc(&title)
        );
        body.push_str(&normalisation_section(ctx, ses.as_deref(), &sid)?);
        for r in rs {
            body.push_str(&run_section(ctx, r)?);
        }
        body.push_str(&timecourse_section(ctx, rs, &sid)?);
        body.push_str("</section>\n");
    }

    // methods
    nav.push(("methods".into(), "Methods".into()));
    body.push_str("<section id=\"methods\"><h2>Methods</h2>");
    body.push_str(&methods::participant_methods(
        ctx.output_dir,
        ctx.bids_dir,
        runs,
        ctx.space.as_ref(),
    )?);
    body.push_str("</section>\n");
    nav.push(("references".into(), "References".into()));
    body.push_str("<section id=\"references\"><h2>References</h2>");
    body.push_str(&methods::references_html(methods::PARTICIPANT_REFS));
    body.push_str("</section>\n");

    Ok(html::page(
        &format!("cbflow participant report: sub-{}", ctx.label),
        &format!(
            "cbflow {} · {} ASL runs",
            env!("CARGO_PKG_VERSION"),
            runs.len()
        ),
        &nav,
        &body,
    ))
}

/// QC values of a run as table cells, and whether it is flagged. `None` when the QC table is
/// missing.
pub(super) fn qc_row(r: &RunFiles, d: &StudyDesign) -> Result<Option<(Vec<Cell>, bool)>> {
    let path = r.file(&RunFile::Qc)?;
    let Some(t) = data::table_opt(&path)? else {
        return Ok(None);
    };
    let flags = col_str(&t, &path, "flags")?
        .first()
        .cloned()
        .unwrap_or_default();
    let flagged: Vec<&str> = flags
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "n/a" && *s != "none")
        .collect();
    let mut cells = vec![Cell::text(r.label()), Cell::text(run_meaning(r, d))];
    for (c, digits) in QC_COLUMNS {
        let v = col_f64(&t, &path, c)
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f64::NAN);
        let mut cell = Cell::num(num(v, *digits));
        if flagged.contains(c) {
            cell = cell.class("flag");
        }
        cells.push(cell);
    }
    cells.push(if flagged.is_empty() {
        Cell::text("none").class("ok")
    } else {
        Cell::text(flagged.join(", ")).class("flag")
    });
    Ok(Some((cells, !flagged.is_empty())))
}

pub(super) const QC_COLUMNS: &[(&str, usize)] = &[
    ("mean_cbf_brain", 1),
    ("spatial_cov_brain", 2),
    ("voxels_left_out", 0),
    ("norm_brain_dice", 3),
    ("norm_affine_determinant", 2),
    ("mean_cbf_gm", 1),
    ("mean_cbf_wm", 1),
    ("gm_wm_ratio", 2),
    ("negative_gm_fraction", 3),
    ("qei", 3),
    ("fd_mean_mm", 3),
    ("fd_max_mm", 3),
    ("pairs_total", 0),
    ("pairs_kept", 0),
];

pub(super) fn qc_overview(rows: &[(&RunFiles, Option<(Vec<Cell>, bool)>)]) -> Result<String> {
    let mut header = vec!["run", "timing"];
    header.extend(QC_COLUMNS.iter().map(|c| c.0));
    header.push("flags");
    let mut present: Vec<(Vec<Cell>, bool)> = rows.iter().filter_map(|r| r.1.clone()).collect();
    // a metric no run has (the tissue metrics without a T1w) gets no column
    let keep: Vec<bool> = (0..header.len())
        .map(|c| {
            c < 2
                || c == header.len() - 1
                || present.iter().any(|(cells, _)| cells[c].text != "n/a")
        })
        .collect();
    let header: Vec<&str> = header
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(h, _)| *h)
        .collect();
    for (cells, _) in &mut present {
        let mut k = keep.iter();
        cells.retain(|_| *k.next().unwrap_or(&true));
    }
    let mut s = String::new();
    if !present.is_empty() {
        s.push_str(&html::table("qc-table", &header, &present));
    }
    for (r, row) in rows {
        if row.is_none() {
            s.push_str(&html::missing(&format!(
                "{}: no QC table ({})",
                r.label(),
                fname(&r.file(&RunFile::Qc)?)
            )));
        }
    }
    if let Some(r) = rows.first()
        && let Ok(Some(side)) = r.0.sidecar(&RunFile::Qc)
        && let Ok(Some(j)) = data::json_opt(&side)
        && let Some(p) = j.get("params")
    {
        let rng = |k: &str| -> String {
            p.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("–")
                })
                .unwrap_or_else(|| "n/a".into())
        };
        let _ = write!(
            s,
            "<p>Flags mark values outside cbflow's screening limits: brain CBF {} mL/100 g/min, GM CBF {} mL/100 g/min, GM/WM ratio {}, negative GM fraction ≤ {}, QEI ≥ {}, mean FD ≤ {} mm, normalisation brain-mask Dice ≥ {} and affine determinant {}. These catch gross failures; they are not normative values. The GM, WM and QEI columns need a T1w (n/a without one). Spatial CoV: standard deviation / mean CBF over the brain mask (Mutsaerts et al. 2017); voxels left out: brain-mask voxels with unusable M0 or ΔM; QEI: quality evaluation index (Dolui et al. 2024); FD: framewise displacement (Power et al. 2012).</p>",
            rng("brain_cbf_range"),
            rng("gm_cbf_range"),
            rng("gm_wm_ratio_range"),
            p.get("max_negative_gm_fraction")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            p.get("min_qei").map(|v| v.to_string()).unwrap_or_default(),
            p.get("max_mean_fd_mm")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            p.get("min_norm_brain_dice")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            rng("norm_determinant_range"),
        );
    }
    Ok(s)
}
