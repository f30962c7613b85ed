//! The participant report `sub-<label>.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cbflow_image::{Interp, Volume};
use cbflow_pipeline::{StudyDesign, Template};
use ndarray::{Array3, Axis};
use serde_json::Value;

use crate::data::{self, RunFiles, col_f64, col_str, find_runs, fname};
use crate::html::{self, Cell, esc, num};
use crate::methods;
use crate::plots::{self, LinePanel, Series, palette};
use crate::slices::{Canonical, Cmap, Layer, Orient, Scene, canonical, spread_slices, window};
use crate::{Error, Result};

/// Pixels per millimetre of brain mosaics (a 3 mm voxel is 4 pixels wide, a 2 mm voxel 3).
pub const PX_PER_MM: f64 = 1.4;

/// What the sessions table says of a session: pre-treatment and period.
fn session_info(bids_dir: &Path, label: &str) -> BTreeMap<String, (String, String)> {
    let d = StudyDesign::default();
    let path = bids_dir.join(format!("sub-{label}/sub-{label}_sessions.tsv"));
    let mut out = BTreeMap::new();
    if let Ok(Some(t)) = data::table_opt(&path) {
        let ids = col_str(&t, &path, "session_id").unwrap_or_default();
        let pre = col_str(&t, &path, &d.pretreatment_column).unwrap_or_default();
        let per = col_str(&t, &path, &d.period_column).unwrap_or_default();
        for (i, id) in ids.iter().enumerate() {
            out.insert(
                id.trim_start_matches("ses-").to_string(),
                (
                    pre.get(i).cloned().unwrap_or_default(),
                    per.get(i).cloned().unwrap_or_default(),
                ),
            );
        }
    }
    out
}

fn run_meaning(r: &RunFiles) -> &'static str {
    let d = StudyDesign::default();
    let matches = |sel: &cbflow_pipeline::RunSelector| {
        sel.0
            .iter()
            .all(|(k, v)| r.entities.get(k).map(String::as_str) == Some(v.as_str()))
    };
    if matches(&d.before) {
        "before ketamine"
    } else if matches(&d.during) {
        "during ketamine"
    } else {
        ""
    }
}

/// A mosaic figure of one canonical scene: one row of slices per `(orientation, slices)`.
pub(crate) fn mosaic_figure(
    id: &str,
    scene: &Scene,
    c: &Canonical,
    rows: &[(Orient, Vec<usize>)],
    columns: usize,
    alt: &str,
    caption: &str,
    extra_html: &str,
) -> Result<String> {
    let imgs: Vec<_> = rows
        .iter()
        .map(|(o, sl)| scene.mosaic(*o, sl, PX_PER_MM, columns))
        .collect();
    let png = crate::encode::encode_png(&crate::encode::stack_vertical(&imgs, 6))?;
    let coords: Vec<String> = rows
        .iter()
        .map(|(o, sl)| {
            format!(
                "{} = {} mm",
                o.letter(),
                sl.iter()
                    .map(|&i| format!("{:.0}", c.slice_mm(*o, i)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let cap = format!(
        "{} Slices at {} (neurological view: left is left).{}",
        caption,
        coords.join("; "),
        extra_html
    );
    Ok(html::figure(id, "mosaic", &png, alt, &cap))
}

fn map_layer(data: Array3<f32>, lo: f64, hi: f64, cmap: Cmap, show: Option<Array3<bool>>) -> Layer {
    Layer::Map {
        data,
        lo,
        hi,
        cmap,
        show,
    }
}

/// A mosaic of a map inside a mask (colour `cmap` between robust limits) — CBF, M0, ΔM.
fn map_mosaic(
    id: &str,
    vol: &Volume,
    mask: Option<&Volume>,
    cmap: Cmap,
    zero_floor: bool,
    unit: &str,
    alt: &str,
    caption: &str,
) -> Result<String> {
    let c = canonical(vol);
    let m = match mask {
        Some(m) if m.data.shape()[..3] == vol.data.shape()[..3] => data::mask(&canonical(m).data),
        _ => c.data.mapv(|v| v != 0.0 && v.is_finite()),
    };
    let (mut lo, hi) = window(&c.data, Some(&m), 0.01, 0.99);
    if zero_floor {
        lo = 0.0;
    }
    let scene = Scene::on(&c).with(map_layer(c.data.clone(), lo, hi, cmap, Some(m.clone())));
    let slices = spread_slices(&m, Orient::Axial, 8);
    mosaic_figure(
        id,
        &scene,
        &c,
        &[(Orient::Axial, slices)],
        8,
        alt,
        caption,
        &html::colour_bar(cmap, lo, hi, unit),
    )
}

struct Ctx<'a> {
    output_dir: &'a Path,
    bids_dir: &'a Path,
    label: &'a str,
    template: std::result::Result<Template, String>,
    space: Option<(String, String)>,
}

/// Writes `OUTPUT_DIR/sub-<label>.html` for one participant from the derivatives written by
/// the participant level (and, for the anatomy and session labels, the BIDS input), atomically.
/// Missing optional inputs become a note in the section that needs them.
pub fn participant_report(output_dir: &Path, bids_dir: &Path, label: &str) -> Result<PathBuf> {
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
        Some((s, _)) => data::load_template(s),
        None => Err("no template-space outputs".to_string()),
    };
    let ctx = Ctx {
        output_dir,
        bids_dir,
        label,
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

fn build(ctx: &Ctx, runs: &[RunFiles]) -> Result<String> {
    let sessions = session_info(ctx.bids_dir, ctx.label);
    let mut body = String::new();
    let mut nav = vec![("summary".to_string(), "Summary".to_string())];

    // QC of every run first: the summary counts its flags
    let mut qc_rows = Vec::new();
    let mut n_flags = 0;
    for r in runs {
        let row = qc_row(r)?;
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
    body.push_str(&qc_overview(&qc_rows));
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
            "cbflow {} · derivatives {} · {} ASL runs",
            env!("CARGO_PKG_VERSION"),
            ctx.output_dir.display(),
            runs.len()
        ),
        &nav,
        &body,
    ))
}

/// QC values of a run as table cells, and whether it is flagged. `None` when the QC table is
/// missing.
fn qc_row(r: &RunFiles) -> Result<Option<(Vec<Cell>, bool)>> {
    let path = r.file("_desc-qc_cbf.tsv");
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
    let mut cells = vec![Cell::text(r.label()), Cell::text(run_meaning(r))];
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

const QC_COLUMNS: &[(&str, usize)] = &[
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

fn qc_overview(rows: &[(&RunFiles, Option<(Vec<Cell>, bool)>)]) -> String {
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
                fname(&r.file("_desc-qc_cbf.tsv"))
            )));
        }
    }
    if let Some(r) = rows.first()
        && let Ok(Some(j)) = data::json_opt(&r.0.file("_desc-qc_cbf.json"))
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
    s
}

/// The session's T1w in template space under the template's edges.
fn normalisation_section(ctx: &Ctx, ses: Option<&str>, sid: &str) -> Result<String> {
    let mut s = format!(
        "<h3 id=\"norm-{}\">Normalisation of the T1w to the template</h3>\n",
        esc(sid)
    );
    let tpl = match &ctx.template {
        Ok(t) => t,
        Err(why) => {
            s.push_str(&html::missing(why));
            return Ok(s);
        }
    };
    let (sub_ses, anat_dir, bids_anat) = match ses {
        Some(x) => (
            format!("sub-{}_ses-{x}", ctx.label),
            ctx.output_dir
                .join(format!("sub-{}/ses-{x}/anat", ctx.label)),
            ctx.bids_dir.join(format!("sub-{}/ses-{x}/anat", ctx.label)),
        ),
        None => (
            format!("sub-{}", ctx.label),
            ctx.output_dir.join(format!("sub-{}/anat", ctx.label)),
            ctx.bids_dir.join(format!("sub-{}/anat", ctx.label)),
        ),
    };
    let affine = anat_dir.join(format!(
        "{sub_ses}_desc-affine_from-T1w_to-{}_mode-image_xfm.txt",
        tpl.name
    ));
    let warp = anat_dir.join(format!(
        "{sub_ses}_desc-warp_from-T1w_to-{}_mode-image_xfm.nii.gz",
        tpl.name
    ));
    let t1w_path = find_t1w(&bids_anat, &sub_ses)?;
    let (Some(t1w_path), true, true) = (t1w_path, affine.exists(), warp.exists()) else {
        s.push_str(&html::missing(&format!(
            "no T1w normalisation for {sid}: needs the T1w in {} and {} and {}",
            bids_anat.display(),
            fname(&affine),
            fname(&warp)
        )));
        return Ok(s);
    };
    let t1w = data::volume(&t1w_path)?;
    let chain = data::read_normalisation(&affine, &warp)?;
    let warped = cbflow_register::apply(&t1w, &tpl.grid, &chain, Interp::Linear)
        .map_err(|e| Error::invalid(&t1w_path, e))?;
    let c = canonical(&warped);
    let brain = data::mask(&canonical(&tpl.brain_mask).data);
    let gm = canonical(&tpl.gm).data.mapv(|v| i32::from(v > 0.5));
    let (_, hi) = window(&c.data, Some(&brain), 0.01, 0.995);
    let scene = Scene::on(&c)
        .with(map_layer(c.data.clone(), 0.0, 1.15 * hi, Cmap::Gray, None))
        .with(Layer::Contour {
            labels: gm,
            colour: [255, 60, 60],
        })
        .with(Layer::Contour {
            labels: brain.mapv(i32::from),
            colour: [60, 200, 255],
        });
    let rows: Vec<(Orient, Vec<usize>)> = [Orient::Axial, Orient::Coronal, Orient::Sagittal]
        .into_iter()
        .map(|o| (o, spread_slices(&brain, o, 6)))
        .collect();
    let figs = mosaic_figure(
        &format!("fig-norm-{sid}"),
        &scene,
        &c,
        &rows,
        6,
        &format!("T1w of {sid} in {} space with template edges", tpl.name),
        &format!(
            "The T1w of {sid} resampled to {} through the affine and the warp of the participant level (one trilinear resampling). Red: the template's grey-matter boundary (probability 0.5); blue: the template brain mask. A good normalisation puts the subject's cortex and ventricles on these lines.",
            tpl.name
        ),
        "",
    )?;
    s.push_str(&figs);
    // the brain extraction on the T1w's own grid
    let mask_path = anat_dir.join(format!("{sub_ses}_desc-brain_mask.nii.gz"));
    if let Ok(Some(m)) = data::volume_opt(&mask_path) {
        let cm = canonical(&m);
        let ct = canonical(&t1w);
        let mask = data::mask(&cm.data);
        let (_, hi) = window(&ct.data, Some(&mask), 0.01, 0.995);
        let scene = Scene::on(&ct)
            .with(map_layer(ct.data.clone(), 0.0, 1.15 * hi, Cmap::Gray, None))
            .with(Layer::Contour {
                labels: mask.mapv(i32::from),
                colour: [255, 200, 40],
            });
        let rows: Vec<(Orient, Vec<usize>)> = [Orient::Axial, Orient::Coronal, Orient::Sagittal]
            .into_iter()
            .map(|o| (o, spread_slices(&mask, o, 6)))
            .collect();
        let side = data::json_opt(&mask_path.with_extension("").with_extension("json"))
            .ok()
            .flatten();
        let qc = side.as_ref().and_then(|j| j.get("QC"));
        let dice = qc
            .and_then(|q| q.get("BrainMaskDice"))
            .and_then(Value::as_f64)
            .map_or("n/a".into(), |v| format!("{v:.3}"));
        let det = qc
            .and_then(|q| q.get("AffineDeterminant"))
            .and_then(Value::as_f64)
            .map_or("n/a".into(), |v| format!("{v:.2}"));
        s.push_str(&mosaic_figure(
            &format!("fig-brain-{sid}"),
            &scene,
            &ct,
            &rows,
            6,
            &format!("Brain mask of {sid} on its T1w"),
            &format!(
                "Yellow: the brain mask the normalisation used ({}). Normalised to the template it overlaps the template brain mask with a Dice of {dice}; the affine's determinant is {det} (the QC table flags a Dice below 0.9 and a determinant outside 0.6–1.5).",
                side.as_ref()
                    .and_then(|j| j.get("Description"))
                    .and_then(Value::as_str)
                    .unwrap_or("template-based brain extraction")
            ),
            "",
        )?);
    }
    Ok(s)
}

fn find_t1w(dir: &Path, sub_ses: &str) -> Result<Option<PathBuf>> {
    for p in data::list_dir(dir)? {
        let n = fname(&p);
        if n.starts_with(sub_ses) && (n.ends_with("_T1w.nii.gz") || n.ends_with("_T1w.nii")) {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn run_section(ctx: &Ctx, r: &RunFiles) -> Result<String> {
    let id = r.id();
    let meaning = run_meaning(r);
    let mut s = format!(
        "<h3 id=\"{}\">{}{}</h3>\n",
        esc(&id),
        esc(&r.label()),
        if meaning.is_empty() {
            String::new()
        } else {
            format!(" — {meaning}")
        }
    );
    let cbf = data::volume(&r.file("_cbf.nii.gz"))?;
    let bmask = data::volume_opt(&r.file("_desc-brain_mask.nii.gz"))?;
    s.push_str(&map_mosaic(
        &format!("fig-cbf-native-{id}"),
        &cbf,
        bmask.as_ref(),
        Cmap::Inferno,
        true,
        "mL/100 g/min",
        "mean CBF, native space",
        "Mean CBF over all label/control pairs in native ASL space, inside the ASL brain mask.",
    )?);
    // template space
    match (&ctx.space, &ctx.template) {
        (Some((sp, res)), Ok(tpl)) => {
            let p = r.file(&format!("_space-{sp}_res-{res}_cbf.nii.gz"));
            match data::volume_opt(&p)? {
                Some(v) => {
                    let c = canonical(&v);
                    let brain = data::mask(&canonical(&tpl.brain_mask).data);
                    let acc = canonical(&tpl.labels).data.mapv(|l| {
                        let l = l.round() as i32;
                        if (151..=156).contains(&l) { l } else { 0 }
                    });
                    let (_, hi) = window(&c.data, Some(&brain), 0.01, 0.99);
                    let scene = Scene::on(&c)
                        .with(map_layer(c.data.clone(), 0.0, hi, Cmap::Inferno, None))
                        .with(Layer::Contour {
                            labels: brain.mapv(i32::from),
                            colour: [60, 200, 255],
                        })
                        .with(Layer::Contour {
                            labels: acc,
                            colour: [80, 255, 120],
                        });
                    let sl = spread_slices(&brain, Orient::Axial, 8);
                    s.push_str(&mosaic_figure(
                        &format!("fig-cbf-template-{id}"),
                        &scene,
                        &c,
                        &[(Orient::Axial, sl)],
                        8,
                        "mean CBF in template space",
                        &format!("Mean CBF resampled to {sp} (res-{res}). Blue: template brain mask; green: the ACC regions of the atlas (AAL3 151–156: subgenual, pregenual, supracallosal)."),
                        &html::colour_bar(Cmap::Inferno, 0.0, hi, "mL/100 g/min"),
                    )?);
                }
                None => s.push_str(&html::missing(&format!(
                    "no template-space CBF ({})",
                    fname(&p)
                ))),
            }
        }
        (_, Err(why)) => s.push_str(&html::missing(why)),
        _ => {}
    }
    // M0 and mean ΔM
    match data::volume_opt(&r.file("_desc-calibration_m0scan.nii.gz"))? {
        Some(m0) => s.push_str(&map_mosaic(
            &format!("fig-m0-{id}"),
            &m0,
            bmask.as_ref(),
            Cmap::Gray,
            false,
            "a.u.",
            "calibration M0",
            "Calibration M0 (after the TR correction) used to scale ΔM to CBF.",
        )?),
        None => s.push_str(&html::missing(
            "no calibration M0 (desc-calibration_m0scan)",
        )),
    }
    match data::volume_opt(&r.file("_desc-mean_deltam.nii.gz"))? {
        Some(dm) => s.push_str(&map_mosaic(
            &format!("fig-deltam-{id}"),
            &dm,
            bmask.as_ref(),
            Cmap::Gray,
            false,
            "a.u.",
            "mean ΔM",
            "Mean control − label difference (ΔM) over the pairs.",
        )?),
        None => s.push_str(&html::missing("no mean ΔM (desc-mean_deltam)")),
    }
    s.push_str(&asl_on_t1w(ctx, r, &id)?);
    s.push_str(&motion_figure(r, &id)?);
    Ok(s)
}

/// The M0 on the T1w grid through the rigid ASL → T1w transform, under the T1w's edges.
fn asl_on_t1w(ctx: &Ctx, r: &RunFiles, id: &str) -> Result<String> {
    let xfm = r.file("_from-asl_to-T1w_mode-image_xfm.txt");
    let m0p = r.file("_desc-calibration_m0scan.nii.gz");
    let (sub_ses, bids_anat, anat_dir) = match &r.ses {
        Some(x) => (
            format!("sub-{}_ses-{x}", ctx.label),
            ctx.bids_dir.join(format!("sub-{}/ses-{x}/anat", ctx.label)),
            ctx.output_dir
                .join(format!("sub-{}/ses-{x}/anat", ctx.label)),
        ),
        None => (
            format!("sub-{}", ctx.label),
            ctx.bids_dir.join(format!("sub-{}/anat", ctx.label)),
            ctx.output_dir.join(format!("sub-{}/anat", ctx.label)),
        ),
    };
    let t1w_path = find_t1w(&bids_anat, &sub_ses)?;
    let (Some(t1w_path), true, true) = (t1w_path, xfm.exists(), m0p.exists()) else {
        return Ok(html::missing(&format!(
            "{}: no ASL → T1w overlay (needs the T1w, {} and the calibration M0)",
            r.label(),
            fname(&xfm)
        )));
    };
    let t1w = data::volume(&t1w_path)?;
    let rigid = data::read_affine(&xfm)?;
    let m0 = data::volume(&m0p)?;
    let on_t1 = cbflow_register::apply(
        &m0,
        &t1w.grid(),
        &cbflow_register::TransformChain::from_affine(rigid),
        Interp::Linear,
    )
    .map_err(|e| Error::invalid(&m0p, e))?;
    let c = canonical(&on_t1);
    let ct = canonical(&t1w);
    let brain = match data::volume_opt(&anat_dir.join(format!("{sub_ses}_desc-brain_mask.nii.gz")))?
    {
        Some(b) if b.data.shape()[..3] == t1w.data.shape()[..3] => data::mask(&canonical(&b).data),
        _ => {
            let vals: Vec<f32> = ct.data.iter().copied().collect();
            let t = cbflow_image::masks::otsu_threshold(&vals).unwrap_or(0.0);
            ct.data.mapv(|v| v > t)
        }
    };
    // white matter: the brighter class of an Otsu split of the T1w inside the brain
    let inside: Vec<f32> = ct
        .data
        .iter()
        .zip(brain.iter())
        .filter(|(_, b)| **b)
        .map(|(v, _)| *v)
        .collect();
    let wm_t = cbflow_image::masks::otsu_threshold(&inside).unwrap_or(f32::INFINITY);
    let wm = ndarray::Zip::from(&ct.data)
        .and(&brain)
        .map_collect(|v, b| i32::from(*b && *v > wm_t));
    let (lo, hi) = window(&c.data, Some(&brain), 0.01, 0.99);
    let scene = Scene::on(&c)
        .with(map_layer(c.data.clone(), lo, hi, Cmap::Gray, None))
        .with(Layer::Contour {
            labels: wm,
            colour: [255, 60, 60],
        })
        .with(Layer::Contour {
            labels: brain.mapv(i32::from),
            colour: [60, 200, 255],
        });
    let rows: Vec<(Orient, Vec<usize>)> = [Orient::Axial, Orient::Coronal]
        .into_iter()
        .map(|o| (o, spread_slices(&brain, o, 6)))
        .collect();
    mosaic_figure(
        &format!("fig-asl2t1w-{id}"),
        &scene,
        &c,
        &rows,
        6,
        "calibration M0 on the T1w",
        "ASL → T1w registration: the calibration M0 resampled onto the T1w grid through the rigid transform (mutual information). Red: the T1w's white-matter boundary (Otsu split inside the brain); blue: the T1w brain mask.",
        "",
    )
}

fn motion_figure(r: &RunFiles, id: &str) -> Result<String> {
    let path = r.file("_desc-confounds_timeseries.tsv");
    let Some(t) = data::table_opt(&path)? else {
        return Ok(html::missing(&format!(
            "{}: no confounds table ({})",
            r.label(),
            fname(&path)
        )));
    };
    let fd_limit = data::json_opt(&r.file("_desc-qc_cbf.json"))?
        .and_then(|j| data::jnum(&j, &["params", "max_mean_fd_mm"]))
        .unwrap_or(0.5);
    let n = t.n_rows();
    let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let mk = |cols: &[(&str, RGBc)], scale: f64| -> Result<Vec<Series>> {
        cols.iter()
            .map(|(c, colour)| {
                Ok(Series {
                    name: c.to_string(),
                    colour: *colour,
                    points: x
                        .iter()
                        .copied()
                        .zip(col_f64(&t, &path, c)?.into_iter().map(|v| v * scale))
                        .collect(),
                    width: 2,
                    markers: false,
                })
            })
            .collect()
    };
    let trans = mk(
        &[
            ("trans_x", palette::BLUE),
            ("trans_y", palette::ORANGE),
            ("trans_z", palette::GREEN),
        ],
        1.0,
    )?;
    let rot = mk(
        &[
            ("rot_x", palette::BLUE),
            ("rot_y", palette::ORANGE),
            ("rot_z", palette::GREEN),
        ],
        180.0 / std::f64::consts::PI,
    )?;
    let fd = mk(&[("framewise_displacement", palette::RED)], 1.0)?;
    let panels = vec![
        LinePanel {
            title: "Translation".into(),
            x_label: "volume".into(),
            y_label: "mm".into(),
            series: trans,
            ..Default::default()
        },
        LinePanel {
            title: "Rotation".into(),
            x_label: "volume".into(),
            y_label: "degrees".into(),
            series: rot,
            ..Default::default()
        },
        LinePanel {
            title: "Framewise displacement".into(),
            x_label: "volume".into(),
            y_label: "FD (mm)".into(),
            series: fd
                .into_iter()
                .map(|mut s| {
                    s.name = "FD".into();
                    s.markers = true;
                    s
                })
                .collect(),
            hlines: vec![(fd_limit, format!("mean-FD limit {fd_limit} mm"))],
            ..Default::default()
        },
    ];
    let png = plots::line_panels(&format!("fig-motion-{id}"), &panels, 3, 420, 260)?;
    Ok(html::figure(
        &format!("fig-motion-{id}"),
        "plot",
        &png,
        "realignment parameters and framewise displacement",
        "Realignment parameters of every volume (rigid, about the MotionCentre of the CBF sidecar) and framewise displacement (Power et al. 2012; rotations on a 50 mm sphere).",
    ))
}

type RGBc = plotters::style::RGBColor;

/// The CBF time course per ROI through the infusion (ROI time-series tables when present, else
/// the brain-mask mean of the per-pair CBF series).
fn timecourse_section(ctx: &Ctx, rs: &[&RunFiles], sid: &str) -> Result<String> {
    let mut s = format!(
        "<h3 id=\"timecourse-{}\">CBF time course through the infusion</h3>\n",
        esc(sid)
    );
    let mut panels = Vec::new();
    let mut fallback = false;
    let mut notes = Vec::new();
    for r in rs {
        let title = format!("{} {}", r.label(), run_meaning(r));
        let roi = ctx
            .space
            .as_ref()
            .map(|(sp, res)| r.file(&format!("_space-{sp}_res-{res}_desc-roi_timeseries.tsv")));
        if let Some(p) = roi.filter(|p| p.exists()) {
            let t = data::table_opt(&p)?.expect("exists");
            let time = col_f64(&t, &p, "time_s")?;
            let mut series = Vec::new();
            for (k, c) in t
                .columns
                .iter()
                .filter(|c| *c != "pair" && *c != "time_s")
                .enumerate()
            {
                let y = col_f64(&t, &p, c)?;
                series.push(Series {
                    name: c.clone(),
                    colour: palette::CYCLE[k % palette::CYCLE.len()],
                    points: time.iter().copied().zip(y).collect(),
                    width: 2,
                    markers: true,
                });
            }
            panels.push(LinePanel {
                title,
                x_label: "time from the start of the run (s)".into(),
                y_label: "CBF (mL/100 g/min)".into(),
                series,
                ..Default::default()
            });
            continue;
        }
        let ts = r.file("_desc-timeseries_cbf.nii.gz");
        match data::volume_opt(&ts)? {
            Some(v) if v.n_volumes() >= 1 => {
                fallback = true;
                let m = data::volume_opt(&r.file("_desc-brain_mask.nii.gz"))?
                    .map(|m| data::mask(&m.frame(0).to_owned()))
                    .unwrap_or_else(|| v.frame(0).mapv(|x| x != 0.0));
                let pts: Vec<(f64, f64)> = v
                    .data
                    .axis_iter(Axis(3))
                    .enumerate()
                    .map(|(i, f)| {
                        let (mut sum, mut n) = (0.0f64, 0usize);
                        for (x, b) in f.iter().zip(m.iter()) {
                            if *b && x.is_finite() {
                                sum += *x as f64;
                                n += 1;
                            }
                        }
                        (i as f64, if n > 0 { sum / n as f64 } else { f64::NAN })
                    })
                    .collect();
                panels.push(LinePanel {
                    title,
                    x_label: "label/control pair".into(),
                    y_label: "CBF (mL/100 g/min)".into(),
                    series: vec![Series {
                        name: "brain-mask mean".into(),
                        colour: palette::BLUE,
                        points: pts,
                        width: 2,
                        markers: true,
                    }],
                    ..Default::default()
                });
            }
            _ => notes.push(format!(
                "{}: neither a ROI time-series table nor {}",
                r.label(),
                fname(&ts)
            )),
        }
    }
    for n in &notes {
        s.push_str(&html::missing(n));
    }
    if panels.is_empty() {
        return Ok(s);
    }
    // one vertical range for all runs of the session, so before and during compare
    let all: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|q| q.points.iter().map(|x| x.1)))
        .filter(|v| v.is_finite())
        .collect();
    if let (Some(lo), Some(hi)) = (
        all.iter().copied().reduce(f64::min),
        all.iter().copied().reduce(f64::max),
    ) {
        let pad = 0.08 * (hi - lo).max(1.0);
        for p in &mut panels {
            p.y_range = Some((lo - pad, hi + pad));
        }
    }
    let id = format!("fig-timecourse-{sid}");
    let png = plots::line_panels(&id, &panels, panels.len().min(2), 560, 320)?;
    let caption = if fallback {
        "Per-pair CBF averaged in the native ASL brain mask (fallback: the ROI time-series table of the participant level, desc-roi_timeseries, is not in these derivatives, so the ACC regions cannot be shown separately)."
    } else {
        "Per-pair CBF in each region of interest (template space), from the start of each run; the before-ketamine run left, the run during the infusion right."
    };
    s.push_str(&html::figure(&id, "plot", &png, "CBF time course", caption));
    Ok(s)
}
