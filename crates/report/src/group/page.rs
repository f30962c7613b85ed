//! The page: its header, design section and the order of the sections.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cbflow_pipeline::StudyDesign;
use cbflow_pipeline::catalogue::{GroupFile, StatMap};

use super::behaviour::behaviour_section;
use super::contrast::contrast_section;
use super::data::roi_lines;
use super::receptor::receptor_section;
use super::roi::roi_section;
use crate::data::{self, col_str, fname};
use crate::html::{self, Cell, esc};
use crate::methods;
use crate::{Error, ReportInputs, Result};

/// Writes `OUTPUT_DIR/group.html` from the group-level outputs at the derivatives root (and the
/// design files of the BIDS input: participants and sessions), atomically. Missing parts (e.g.
/// no receptor tables) become a note in their section.
pub fn group_report(inputs: &ReportInputs) -> Result<PathBuf> {
    write_group_page(inputs.output_dir, "group report", || build(inputs))
}

/// Writes `OUTPUT_DIR/group.html` (the group report `what`), atomically, from the page that
/// `build` draws once the derivatives directory is known to exist.
pub(super) fn write_group_page(
    output_dir: &Path,
    what: &str,
    build: impl FnOnce() -> Result<String>,
) -> Result<PathBuf> {
    if !output_dir.is_dir() {
        return Err(Error::Request {
            path: output_dir.to_path_buf(),
            message: "the derivatives directory does not exist".into(),
        });
    }
    tracing::debug!("{what} of {}", output_dir.display());
    let html = build()?;
    let path = output_dir.join("group.html");
    cbflow_bids::atomic_write(&path, html.as_bytes()).map_err(|e| Error::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

pub(super) fn root_space(output_dir: &Path) -> Result<Option<(String, String)>> {
    for p in data::list_dir(output_dir)? {
        let e = data::entities(&fname(&p));
        if GroupFile::is_stat_map(&fname(&p))
            && let (Some(s), Some(r)) = (e.get("space"), e.get("res"))
        {
            return Ok(Some((s.clone(), r.clone())));
        }
    }
    Ok(None)
}

pub(super) fn build(inputs: &ReportInputs) -> Result<String> {
    let (output_dir, design, resources) = (inputs.output_dir, inputs.design, inputs.resources);
    let mut body = String::new();
    let mut nav = Vec::new();
    let space = root_space(output_dir)?;
    let template = match &space {
        Some((s, _)) => data::load_template(s, resources),
        None => Err(
            "no group-level statistical maps (space-*_statmap.nii.gz) at the derivatives root"
                .to_string(),
        ),
    };
    let lines = roi_lines(output_dir)?;
    let n_sub = lines
        .as_ref()
        .and_then(|l| l.values().next().map(Vec::len))
        .unwrap_or(0);
    // the contrasts of the last group run (the catalogue's GroupFile::Contrasts)
    let contrasts: Vec<(String, String)> = cbflow_pipeline::written_contrasts(output_dir)
        .map_err(|e| Error::Invalid {
            path: output_dir.to_path_buf(),
            message: e.to_string(),
        })?
        .into_iter()
        .map(|c| (c.name, c.description))
        .collect();
    let stat_json = space
        .as_ref()
        .zip(contrasts.first())
        .and_then(|((s, r), (c, _))| {
            let side =
                data::group_sidecar(output_dir, &GroupFile::stat_map(s, r, c, StatMap::T)).ok()?;
            data::json_opt(&side).ok().flatten()
        });

    // summary
    nav.push(("summary".to_string(), "Summary".to_string()));
    body.push_str("<section id=\"summary\"><h2>Summary</h2><dl class=\"summary\">");
    let _ = write!(body, "<dt>Subjects analysed</dt><dd>{n_sub}</dd>");
    let _ = write!(
        body,
        "<dt>Template space</dt><dd>{}</dd>",
        space
            .as_ref()
            .map(|(s, r)| format!("{} (res-{})", esc(s), esc(r)))
            .unwrap_or_else(|| "none".into())
    );
    if let Some(j) = &stat_json {
        let _ = write!(
            body,
            "<dt>Permutations</dt><dd>{}</dd><dt>Smoothing</dt><dd>{} mm FWHM</dd><dt>Cluster-forming threshold</dt><dd>t &gt; {}</dd>",
            data::jtext(j, &["Permutations"]).unwrap_or_default(),
            data::jtext(j, &["SmoothingFWHM"]).unwrap_or_default(),
            data::jtext(j, &["ClusterFormingThreshold"]).unwrap_or_default(),
        );
        // nuisance regressors of the GLM, when the workflow declared any
        if let Some(covs) = j.get("Covariates").and_then(|v| v.as_array()) {
            let names: Vec<String> = covs
                .iter()
                .filter_map(|c| c.as_str())
                .map(|c| match c {
                    "global-cbf" => "global CBF (tested at no change)".to_string(),
                    other => esc(other),
                })
                .collect();
            let _ = write!(body, "<dt>Covariates</dt><dd>{}</dd>", names.join(", "));
        }
    }
    body.push_str("<dt>Contrasts</dt><dd>");
    body.push_str(
        &contrasts
            .iter()
            .map(|c| format!("<b>{}</b>: {}", esc(&c.0), esc(&c.1)))
            .collect::<Vec<_>>()
            .join("<br>"),
    );
    body.push_str("</dd></dl></section>\n");

    nav.push(("design".into(), "Design".into()));
    body.push_str("<section id=\"design\"><h2>Design</h2>");
    body.push_str(&design_section(inputs.bids_dir, design)?);
    body.push_str("</section>\n");

    nav.push(("voxelwise".into(), "Voxelwise".into()));
    body.push_str("<section id=\"voxelwise\"><h2>Voxelwise results</h2>");
    match (&space, &template) {
        (Some((s, r)), Ok(tpl)) => {
            for (c, desc) in &contrasts {
                body.push_str(&contrast_section(output_dir, s, r, tpl, c, desc)?);
            }
        }
        (_, Err(why)) => body.push_str(&html::missing(why)),
        _ => {}
    }
    body.push_str("</section>\n");

    nav.push(("roi".into(), "ROIs".into()));
    body.push_str("<section id=\"roi\"><h2>Regions of interest</h2>");
    body.push_str(&roi_section(output_dir, lines.as_ref(), design)?);
    body.push_str("</section>\n");

    nav.push(("behaviour".into(), "Brain–behaviour".into()));
    body.push_str("<section id=\"behaviour\"><h2>Brain–behaviour relations</h2>");
    body.push_str(&behaviour_section(output_dir, design)?);
    body.push_str("</section>\n");

    nav.push(("receptors".into(), "Receptors".into()));
    body.push_str("<section id=\"receptors\"><h2>Receptor-density correlations</h2>");
    let (rec_html, any_rec) = receptor_section(output_dir, &contrasts)?;
    body.push_str(&rec_html);
    body.push_str("</section>\n");

    nav.push(("methods".into(), "Methods".into()));
    body.push_str("<section id=\"methods\"><h2>Methods</h2>");
    // how the correlations' CIs were computed, from the table's sidecar
    let ci = data::group_sidecar(output_dir, &GroupFile::BrainBehaviour)
        .ok()
        .and_then(|side| data::json_opt(&side).ok().flatten())
        .and_then(|j| j.get("CI").and_then(|v| v.as_str()).map(str::to_string));
    body.push_str(&methods::group_methods(
        stat_json.as_ref(),
        ci.as_deref(),
        any_rec,
        design,
    ));
    body.push_str("</section>\n");
    Ok(finish_page("cbflow group report", &n_sub, nav, body))
}

/// A group report's last section (the group level's references) and the page around `body`,
/// headed by cbflow's version and the number of subjects (no path: the page is drawn in the
/// report job's directory and published elsewhere, and reads the same wherever it lands).
pub(super) fn finish_page(
    title: &str,
    n_sub: &dyn std::fmt::Display,
    mut nav: Vec<(String, String)>,
    mut body: String,
) -> String {
    nav.push(("references".into(), "References".into()));
    body.push_str("<section id=\"references\"><h2>References</h2>");
    body.push_str(&methods::references_html(methods::GROUP_REFS));
    body.push_str("</section>\n");
    html::page(
        title,
        &format!("cbflow {} · {n_sub} subjects", env!("CARGO_PKG_VERSION")),
        &nav,
        &body,
    )
}

pub(super) fn design_section(bids_dir: &Path, d: &StudyDesign) -> Result<String> {
    let ppath = bids_dir.join("participants.tsv");
    let Some(pt) = data::table_opt(&ppath)? else {
        return Ok(html::missing("no participants.tsv in the BIDS input"));
    };
    let ids = col_str(&pt, &ppath, "participant_id")?;
    let opt = |c: &str| col_str(&pt, &ppath, c).ok();
    let (age, sex, seq) = (opt("age"), opt("sex"), opt("sequence"));
    let mut rows = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let spath = bids_dir.join(format!("{id}/{id}_sessions.tsv"));
        let mut per = [String::from("n/a"), String::from("n/a")];
        if let Some(st) = data::table_opt(&spath)? {
            let sid = col_str(&st, &spath, "session_id")?;
            let pre = col_str(&st, &spath, &d.pretreatment_column).unwrap_or_default();
            let prd = col_str(&st, &spath, &d.period_column).unwrap_or_default();
            for k in 0..st.n_rows() {
                let slot = match prd.get(k).map(String::as_str) {
                    Some("1") => 0,
                    Some("2") => 1,
                    _ => continue,
                };
                per[slot] = format!("{} ({})", pre.get(k).cloned().unwrap_or_default(), sid[k]);
            }
        }
        let sq = seq
            .as_ref()
            .map(|s| s[i].clone())
            .unwrap_or_else(|| "n/a".into());
        *counts.entry(sq.clone()).or_default() += 1;
        rows.push((
            vec![
                Cell::text(id.clone()),
                Cell::text(sex.as_ref().map(|s| s[i].clone()).unwrap_or_default()),
                Cell::num(age.as_ref().map(|s| s[i].clone()).unwrap_or_default()),
                Cell::text(sq),
                Cell::text(per[0].clone()),
                Cell::text(per[1].clone()),
            ],
            false,
        ));
    }
    let mut s = format!(
        "<p>Crossover: each participant received {} or {} as pre-treatment before {}, in two periods. In every session, {} was acquired before and {} during {}. Sequences: {}.</p>",
        esc(&d.active),
        esc(&d.control),
        esc(&d.drug),
        esc(&d.before.to_string()),
        esc(&d.during.to_string()),
        esc(&d.drug),
        esc(&counts
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect::<Vec<_>>()
            .join(", "))
    );
    s.push_str(&html::table(
        "design-table",
        &[
            "participant",
            "sex",
            "age",
            "sequence",
            "period 1: pre-treatment (session)",
            "period 2: pre-treatment (session)",
        ],
        &rows,
    ));
    Ok(s)
}
