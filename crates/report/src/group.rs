//! The group report `group.html`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cbflow_bids::Table;
use cbflow_pipeline::{StudyDesign, Template};
use ndarray::Array3;

use crate::data::{self, col_f64, col_str, fname};
use crate::encode::{RgbImage, encode_png};
use crate::html::{self, Cell, esc, num, pval};
use crate::methods;
use crate::plots::{self, BarRow, LinePanel, ScatterPanel, Series, palette};
use crate::slices::{Cmap, Layer, Orient, Scene, canonical, window};
use crate::{Error, Result};

/// The study's regions, in display order, with their names (other declared regions follow,
/// under their own names).
pub const REGIONS: [(&str, &str); 5] = [
    ("ACC_sub", "subgenual ACC (sgACC)"),
    ("ACC_pre", "pregenual ACC (pgACC)"),
    ("ACC_sup", "supracallosal / dorsal ACC (dACC)"),
    ("grey_matter", "grey matter"),
    ("global", "whole brain"),
];

/// −log10(0.05): the FWE threshold on the `stat-logp` maps.
const LOGP_05: f32 = 1.301_03;

/// Each subject's ROI mean CBF before and during ketamine under one pre-treatment.
#[derive(Debug, Clone, PartialEq)]
pub struct RoiLine {
    /// `sub-<label>`.
    pub participant: String,
    /// Mean CBF before ketamine (mL/100 g/min).
    pub before: f64,
    /// Mean CBF during ketamine (mL/100 g/min).
    pub during: f64,
}

/// ROI lines from `desc-roiValues_table.tsv`: `(region, pre-treatment) → one line per subject`.
pub fn roi_lines(output_dir: &Path) -> Result<Option<BTreeMap<(String, String), Vec<RoiLine>>>> {
    let path = output_dir.join("desc-roiValues_table.tsv");
    let Some(t) = data::table_opt(&path)? else {
        return Ok(None);
    };
    let sub = col_str(&t, &path, "participant_id")?;
    let pre = col_str(&t, &path, "pretreatment")?;
    let time = col_str(&t, &path, "time")?;
    let reg = col_str(&t, &path, "region")?;
    let val = col_f64(&t, &path, "mean_cbf")?;
    let mut m: BTreeMap<(String, String), BTreeMap<String, (f64, f64)>> = BTreeMap::new();
    for i in 0..t.n_rows() {
        let e = m
            .entry((reg[i].clone(), pre[i].clone()))
            .or_default()
            .entry(sub[i].clone())
            .or_insert((f64::NAN, f64::NAN));
        match time[i].as_str() {
            "before" => e.0 = val[i],
            "during" => e.1 = val[i],
            other => {
                return Err(Error::invalid(
                    &path,
                    format!("time {other:?} on row {}: expected before or during", i + 2),
                ));
            }
        }
    }
    Ok(Some(
        m.into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.into_iter()
                        .map(|(s, (b, d))| RoiLine {
                            participant: s,
                            before: b,
                            during: d,
                        })
                        .collect(),
                )
            })
            .collect(),
    ))
}

/// The per-subject data behind one brain–behaviour relation.
#[derive(Debug, Clone)]
pub struct RelationData {
    /// `relation` column of the table.
    pub relation: String,
    /// Region.
    pub region: String,
    /// Behavioural score.
    pub score: String,
    /// Per pre-treatment: its name and the `(x, y)` points (x: regional CBF measure adjusted
    /// for global CBF; y: the score), subjects in table order.
    pub arms: Vec<(String, Vec<(f64, f64)>)>,
    /// Axis labels.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
}

/// Residuals of `y` after an ordinary least-squares fit on `1, x`.
fn residualise(y: &[f64], x: &[f64]) -> Vec<f64> {
    let n = y.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    y.iter()
        .zip(x)
        .map(|(yi, xi)| yi - my - b * (xi - mx))
        .collect()
}

/// Ordinary least-squares line with the 95 % confidence band of the mean, evaluated at 40
/// points across the x range: `(x, fit, low, high)`. Empty with fewer than 3 points.
pub fn regression_band(pts: &[(f64, f64)]) -> Vec<(f64, f64, f64, f64)> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let pts: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let n = pts.len();
    if n < 3 {
        return Vec::new();
    }
    let nf = n as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return Vec::new();
    }
    let b = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    let a = my - b * mx;
    let sse: f64 = pts.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let s = (sse / (nf - 2.0)).sqrt();
    let t = StudentsT::new(0.0, 1.0, nf - 2.0)
        .map(|d| d.inverse_cdf(0.975))
        .unwrap_or(f64::NAN);
    let (lo, hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.0), h.max(p.0))
        });
    (0..40)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / 39.0;
            let f = a + b * x;
            let half = t * s * (1.0 / nf + (x - mx).powi(2) / sxx).sqrt();
            (x, f, f - half, f + half)
        })
        .collect()
}

/// Subjects in the ROI table with their sessions, from `desc-roiValues_table.tsv`:
/// `pre-treatment → participant → session`.
fn sessions_of(t: &Table, path: &Path) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let sub = col_str(t, path, "participant_id")?;
    let ses = col_str(t, path, "session_id")?;
    let pre = col_str(t, path, "pretreatment")?;
    let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for i in 0..t.n_rows() {
        m.entry(pre[i].clone())
            .or_default()
            .insert(sub[i].clone(), ses[i].clone());
    }
    Ok(m)
}

fn phenotype_value(t: &Table, path: &Path, col: &str, sub: &str, ses: &str) -> Result<Option<f64>> {
    if t.column_index(col).is_none() {
        return Ok(None);
    }
    let ids = col_str(t, path, "participant_id")?;
    let sess = col_str(t, path, "session_id").unwrap_or_default();
    let v = col_f64(t, path, col)?;
    Ok((0..t.n_rows())
        .find(|&i| ids[i] == sub && (sess.is_empty() || sess[i] == ses))
        .map(|i| v[i])
        .filter(|x| x.is_finite()))
}

/// Rebuilds the points of every relation of `desc-brainBehaviour_table.tsv` from the ROI table
/// and the phenotype files, as the group level computed them: ketamine ΔCBF of a region
/// adjusted for the global ΔCBF (residuals) against a subjective score of the same session;
/// baseline sgACC CBF adjusted for global CBF against the day-1 change of a mood scale.
pub fn brain_behaviour_data(output_dir: &Path, bids_dir: &Path) -> Result<Vec<RelationData>> {
    let bb_path = output_dir.join("desc-brainBehaviour_table.tsv");
    let rv_path = output_dir.join("desc-roiValues_table.tsv");
    let (Some(bb), Some(rv), Some(lines)) = (
        data::table_opt(&bb_path)?,
        data::table_opt(&rv_path)?,
        roi_lines(output_dir)?,
    ) else {
        return Ok(Vec::new());
    };
    let sess = sessions_of(&rv, &rv_path)?;
    let d = StudyDesign::default();
    let arms = [d.placebo.clone(), d.naltrexone.clone()];
    let pheno = |name: &str| -> Result<Option<(Table, PathBuf)>> {
        let p = bids_dir.join("phenotype").join(format!("{name}.tsv"));
        Ok(data::table_opt(&p)?.map(|t| (t, p)))
    };
    let infusion = pheno("infusion")?;
    let mood = pheno("mood")?;
    let rel = col_str(&bb, &bb_path, "relation")?;
    let reg = col_str(&bb, &bb_path, "region")?;
    let score = col_str(&bb, &bb_path, "score")?;
    let mut seen = Vec::new();
    for i in 0..bb.n_rows() {
        let k = (rel[i].clone(), reg[i].clone(), score[i].clone());
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    let line = |region: &str, arm: &str| lines.get(&(region.to_string(), arm.to_string()));
    let mut out = Vec::new();
    for (relation, region, sc) in seen {
        let baseline = relation.starts_with("baseline");
        let mut arm_pts = Vec::new();
        for arm in &arms {
            let (Some(r), Some(g)) = (line(&region, arm), line("global", arm)) else {
                continue;
            };
            let xr: Vec<f64> = r
                .iter()
                .map(|l| {
                    if baseline {
                        l.before
                    } else {
                        l.during - l.before
                    }
                })
                .collect();
            let xg: Vec<f64> = g
                .iter()
                .map(|l| {
                    if baseline {
                        l.before
                    } else {
                        l.during - l.before
                    }
                })
                .collect();
            let x = residualise(&xr, &xg);
            let mut pts = Vec::new();
            for (l, xv) in r.iter().zip(x) {
                let ses = sess
                    .get(arm)
                    .and_then(|m| m.get(&l.participant))
                    .cloned()
                    .unwrap_or_default();
                let y = if baseline {
                    let scale = sc.trim_end_matches("_change");
                    match &mood {
                        Some((t, p)) => match (
                            phenotype_value(t, p, &format!("{scale}_day1"), &l.participant, &ses)?,
                            phenotype_value(
                                t,
                                p,
                                &format!("{scale}_baseline"),
                                &l.participant,
                                &ses,
                            )?,
                        ) {
                            (Some(a), Some(b)) => a - b,
                            _ => f64::NAN,
                        },
                        None => f64::NAN,
                    }
                } else {
                    match &infusion {
                        Some((t, p)) => {
                            phenotype_value(t, p, &sc, &l.participant, &ses)?.unwrap_or(f64::NAN)
                        }
                        None => f64::NAN,
                    }
                };
                pts.push((xv, y));
            }
            arm_pts.push((arm.clone(), pts));
        }
        let rname = REGIONS
            .iter()
            .find(|r| r.0 == region)
            .map(|r| r.1)
            .unwrap_or(&region)
            .to_string();
        out.push(RelationData {
            x_label: if baseline {
                format!("baseline {rname} CBF, adjusted for global (mL/100 g/min)")
            } else {
                format!("ΔCBF {rname}, adjusted for global ΔCBF (mL/100 g/min)")
            },
            y_label: if baseline {
                format!("{} (day 1 − baseline)", sc.trim_end_matches("_change"))
            } else {
                sc.clone()
            },
            relation,
            region,
            score: sc,
            arms: arm_pts,
        });
    }
    Ok(out)
}

/// Writes `OUTPUT_DIR/group.html` from the group-level outputs at the derivatives root (and the
/// design and phenotype files of the BIDS input), atomically. Missing parts (e.g. no receptor
/// tables) become a note in their section.
pub fn group_report(output_dir: &Path, bids_dir: &Path) -> Result<PathBuf> {
    if !output_dir.is_dir() {
        return Err(Error::Request {
            path: output_dir.to_path_buf(),
            message: "the derivatives directory does not exist".into(),
        });
    }
    tracing::info!("group report for {}", output_dir.display());
    let html = build(output_dir, bids_dir)?;
    let path = output_dir.join("group.html");
    cbflow_bids::atomic_write(&path, html.as_bytes()).map_err(|e| Error::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

fn root_space(output_dir: &Path) -> Result<Option<(String, String)>> {
    for p in data::list_dir(output_dir)? {
        let e = data::entities(&fname(&p));
        if fname(&p).ends_with("_statmap.nii.gz")
            && let (Some(s), Some(r)) = (e.get("space"), e.get("res"))
        {
            return Ok(Some((s.clone(), r.clone())));
        }
    }
    Ok(None)
}

fn build(output_dir: &Path, bids_dir: &Path) -> Result<String> {
    let mut body = String::new();
    let mut nav = Vec::new();
    let space = root_space(output_dir)?;
    let template = match &space {
        Some((s, _)) => data::load_template(s),
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
    // the contrasts of the last group run (desc-contrasts_table.tsv)
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
            data::json_opt(&output_dir.join(format!(
                "space-{s}_res-{r}_contrast-{c}_stat-t_statmap.json"
            )))
            .ok()
            .flatten()
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
    body.push_str(&design_section(bids_dir)?);
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
    body.push_str(&roi_section(output_dir, lines.as_ref())?);
    body.push_str("</section>\n");

    nav.push(("behaviour".into(), "Brain–behaviour".into()));
    body.push_str("<section id=\"behaviour\"><h2>Brain–behaviour relations</h2>");
    body.push_str(&behaviour_section(output_dir, bids_dir)?);
    body.push_str("</section>\n");

    nav.push(("receptors".into(), "Receptors".into()));
    body.push_str("<section id=\"receptors\"><h2>Receptor-density correlations</h2>");
    let (rec_html, any_rec) = receptor_section(output_dir, &contrasts)?;
    body.push_str(&rec_html);
    body.push_str("</section>\n");

    nav.push(("methods".into(), "Methods".into()));
    body.push_str("<section id=\"methods\"><h2>Methods</h2>");
    // how the correlations' CIs were computed, from the table's sidecar
    let ci = data::json_opt(&output_dir.join("desc-brainBehaviour_table.json"))
        .ok()
        .flatten()
        .and_then(|j| j.get("CI").and_then(|v| v.as_str()).map(str::to_string));
    body.push_str(&methods::group_methods(
        stat_json.as_ref(),
        ci.as_deref(),
        any_rec,
    ));
    body.push_str("</section>\n");
    nav.push(("references".into(), "References".into()));
    body.push_str("<section id=\"references\"><h2>References</h2>");
    body.push_str(&methods::references_html(methods::GROUP_REFS));
    body.push_str("</section>\n");

    Ok(html::page(
        "cbflow group report",
        &format!(
            "cbflow {} · derivatives {} · {} subjects",
            env!("CARGO_PKG_VERSION"),
            output_dir.display(),
            n_sub
        ),
        &nav,
        &body,
    ))
}

fn design_section(bids_dir: &Path) -> Result<String> {
    let d = StudyDesign::default();
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
        "<p>Randomised, double-blind crossover: each participant received oral {} or {} before an intravenous ketamine infusion, in two periods. In every session, the run {} was acquired before and the run {} during the infusion. Sequences: {}.</p>",
        esc(&d.naltrexone),
        esc(&d.placebo),
        esc(&d.before.to_string()),
        esc(&d.during.to_string()),
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

/// Canonical-grid centroid (voxel indices) of the voxels whose label is in `set`.
fn centroid(labels: &Array3<i32>, set: &[i32]) -> Option<[usize; 3]> {
    let (mut s, mut n) = ([0.0f64; 3], 0usize);
    for ((i, j, k), l) in labels.indexed_iter() {
        if set.contains(l) {
            s[0] += i as f64;
            s[1] += j as f64;
            s[2] += k as f64;
            n += 1;
        }
    }
    (n > 0).then(|| s.map(|v| (v / n as f64).round() as usize))
}

/// Annotates an image with text (DejaVu Sans), white on the image.
fn annotate(img: &mut RgbImage, texts: &[(String, i32, i32, f64)]) -> Result<()> {
    plots::draw_text(img, texts)
}

fn contour_of(set: &[i32], labels: &Array3<i32>) -> Array3<i32> {
    labels.mapv(|l| if set.contains(&l) { l } else { 0 })
}

fn contrast_section(
    output_dir: &Path,
    space: &str,
    res: &str,
    tpl: &Template,
    c: &str,
    desc: &str,
) -> Result<String> {
    let mut s = format!("<h3 id=\"contrast-{c}\">{c}</h3><p>{}</p>\n", esc(desc));
    let f = |mid: &str| output_dir.join(format!("space-{space}_res-{res}_{mid}_statmap.nii.gz"));
    let tpath = f(&format!("contrast-{c}_stat-t"));
    let Some(t) = data::volume_opt(&tpath)? else {
        s.push_str(&html::missing(&format!("no t map ({})", fname(&tpath))));
        return Ok(s);
    };
    let tc = canonical(&t);
    let bg = canonical(&tpl.t1w);
    let brain = data::mask(&canonical(&tpl.brain_mask).data);
    let labels = data::labels(&canonical(&tpl.labels).data);
    if bg.data.shape() != tc.data.shape() {
        s.push_str(&html::missing(&format!(
            "{}: not on the grid of the template {}",
            fname(&tpath),
            tpl.name
        )));
        return Ok(s);
    }
    let inferences = [
        ("voxelFWE", "voxel-level FWE (max-T)"),
        ("tfceFWE", "TFCE FWE"),
        ("clusterFWE", "cluster-extent FWE"),
    ];
    let mut sig = Vec::new();
    let mut counts = Vec::new();
    for (d, name) in inferences {
        let p = f(&format!("desc-{d}_contrast-{c}_stat-logp"));
        match data::volume_opt(&p)? {
            Some(v) => {
                let m = canonical(&v).data.mapv(|x| x > LOGP_05);
                counts.push((name, m.iter().filter(|b| **b).count()));
                sig.push((name, Some(m)));
            }
            None => sig.push((name, None)),
        }
    }
    // colour range from the t values shown
    let mut tmin = f64::INFINITY;
    let mut tmax: f64 = 0.0;
    for (_, m) in &sig {
        if let Some(m) = m {
            for (v, b) in tc.data.iter().zip(m.iter()) {
                if *b {
                    tmin = tmin.min(v.abs() as f64);
                    tmax = tmax.max(v.abs() as f64);
                }
            }
        }
    }
    if !tmin.is_finite() {
        tmin = 2.0;
        tmax = tc.data.iter().fold(3.0f64, |a, v| a.max(v.abs() as f64));
    }
    if tmax <= tmin {
        tmax = tmin + 1.0;
    }
    let (lo, hi) = window(&bg.data, Some(&brain), 0.01, 0.995);
    // slice positions through the ACC regions of the atlas
    let sg = centroid(&labels, &[151, 152]);
    let pg = centroid(&labels, &[153, 154]);
    let dc = centroid(&labels, &[155, 156]);
    let left = centroid(&labels, &[151, 153, 155]);
    let (Some(sg), Some(pg), Some(dc), Some(left)) = (sg, pg, dc, left) else {
        s.push_str(&html::missing(
            "the template atlas has no ACC labels (AAL3 151–156): no slice positions",
        ));
        return Ok(s);
    };
    let cols = [
        (Orient::Sagittal, left[0], "sagittal, left ACC"),
        (Orient::Coronal, sg[1], "coronal, sgACC"),
        (Orient::Coronal, pg[1], "coronal, pgACC"),
        (Orient::Axial, dc[2], "axial, dACC"),
    ];
    let acc = contour_of(&[151, 152, 153, 154, 155, 156], &labels);
    let px = 1.6;
    let label_w = 190usize;
    let top = 24usize;
    let gap = 4usize;
    let sizes: Vec<(usize, usize)> = cols
        .iter()
        .map(|(o, _, _)| Scene::on(&tc).slice_size(*o, px))
        .collect();
    let row_h = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    let width = label_w + sizes.iter().map(|s| s.0 + gap).sum::<usize>();
    let height = top + sig.len() * (row_h + gap);
    let mut img = RgbImage::new(width, height, [0, 0, 0]);
    let mut texts = Vec::new();
    for (r, (name, m)) in sig.iter().enumerate() {
        let y0 = top + r * (row_h + gap);
        texts.push((name.to_string(), 6, (y0 + row_h / 2) as i32 - 8, 16.0));
        let Some(m) = m else {
            texts.push((
                "map missing".into(),
                label_w as i32 + 10,
                (y0 + row_h / 2) as i32,
                13.0,
            ));
            continue;
        };
        let pos = ndarray::Zip::from(m)
            .and(&tc.data)
            .map_collect(|b, v| *b && *v > 0.0);
        let neg = ndarray::Zip::from(m)
            .and(&tc.data)
            .map_collect(|b, v| *b && *v < 0.0);
        let scene = Scene::on(&tc)
            .with(Layer::Map {
                data: bg.data.clone(),
                lo,
                hi: lo + 1.4 * (hi - lo),
                cmap: Cmap::Gray,
                show: None,
            })
            .with(Layer::Map {
                data: tc.data.clone(),
                lo: tmin,
                hi: tmax,
                cmap: Cmap::RedYellow,
                show: Some(pos),
            })
            .with(Layer::Map {
                data: tc.data.mapv(|v| -v),
                lo: tmin,
                hi: tmax,
                cmap: Cmap::BlueLightBlue,
                show: Some(neg),
            })
            .with(Layer::Contour {
                labels: acc.clone(),
                colour: [80, 255, 120],
            });
        let mut x0 = label_w;
        for (k, (o, idx, _)) in cols.iter().enumerate() {
            let panel = scene.render(*o, *idx, px);
            img.blit(&panel, x0, y0);
            if r == 0 {
                texts.push((
                    format!("{} = {:.0} mm", o.letter(), tc.slice_mm(*o, *idx)),
                    x0 as i32 + 4,
                    3,
                    16.0,
                ));
            }
            x0 += sizes[k].0 + gap;
        }
    }
    annotate(&mut img, &texts)?;
    let png = encode_png(&img)?;
    let counts_txt: Vec<String> = counts
        .iter()
        .map(|(n, k)| format!("{n}: {k} voxels"))
        .collect();
    let cap = format!(
        "t statistic of {c} where FWE-corrected p &lt; 0.05, one row per inference, on the template T1w. Columns: {}. Green: the ACC regions of the atlas. Suprathreshold voxels — {}.{}",
        cols.iter().map(|c| c.2).collect::<Vec<_>>().join("; "),
        esc(&counts_txt.join(", ")),
        html::colour_bar(Cmap::RedYellow, tmin, tmax, "t (blue scale for negative t)")
    );
    s.push_str(&html::figure(
        &format!("fig-tmap-{c}"),
        "mosaic",
        &png,
        &format!("thresholded t map, {c}"),
        &cap,
    ));
    s.push_str(&cluster_table(output_dir, space, res, c)?);
    Ok(s)
}

fn cluster_table(output_dir: &Path, space: &str, res: &str, c: &str) -> Result<String> {
    let path = output_dir.join(format!(
        "space-{space}_res-{res}_desc-clusters_contrast-{c}_table.tsv"
    ));
    let Some(t) = data::table_opt(&path)? else {
        return Ok(html::missing(&format!(
            "no cluster table ({})",
            fname(&path)
        )));
    };
    let p = col_f64(&t, &path, "p_fwe")?;
    let n_sig = p.iter().filter(|v| **v < 0.05).count();
    let show = (n_sig.max(5)).min(t.n_rows());
    let mut rows = Vec::new();
    for i in 0..show {
        let sig = p[i] < 0.05;
        let cells: Vec<Cell> = t
            .columns
            .iter()
            .zip(&t.rows[i])
            .map(|(col, v)| {
                let cell = if col == "sign" || col == "peak_label" {
                    Cell::text(v.clone())
                } else {
                    Cell::num(v.clone())
                };
                if sig && col == "p_fwe" {
                    cell.class("sig")
                } else {
                    cell
                }
            })
            .collect();
        rows.push((cells, false));
    }
    let header: Vec<&str> = t.columns.iter().map(String::as_str).collect();
    let mut s = format!(
        "<p>Clusters of t beyond the cluster-forming threshold: {} with cluster-extent FWE p &lt; 0.05 (bold){}.</p>",
        n_sig,
        if t.n_rows() > show {
            format!("; the {show} largest of {} are listed", t.n_rows())
        } else {
            String::new()
        }
    );
    if t.n_rows() == 0 {
        s = "<p>No cluster beyond the cluster-forming threshold.</p>".into();
    } else {
        s.push_str(&html::table(&format!("clusters-{c}"), &header, &rows));
    }
    Ok(s)
}

fn roi_section(
    output_dir: &Path,
    lines: Option<&BTreeMap<(String, String), Vec<RoiLine>>>,
) -> Result<String> {
    let Some(lines) = lines else {
        return Ok(html::missing("no ROI table (desc-roiValues_table.tsv)"));
    };
    let d = StudyDesign::default();
    let mut s = String::from(
        "<p>Each line is one subject's mean CBF in the region before and during ketamine; the thick line is the group mean. Left: placebo pre-treatment; right: naltrexone.</p>",
    );
    // the study's regions first, in their order, then any other declared region
    let mut regions: Vec<(String, String)> = REGIONS
        .iter()
        .filter(|(r, _)| lines.keys().any(|k| k.0 == *r))
        .map(|(r, n)| (r.to_string(), n.to_string()))
        .collect();
    for (r, _) in lines.keys() {
        if !regions.iter().any(|x| x.0 == *r) {
            regions.push((r.clone(), r.replace('_', " ")));
        }
    }
    for (region, rname) in &regions {
        let (region, rname) = (region.as_str(), rname.as_str());
        let mut panels = Vec::new();
        for (arm, colour) in [(&d.placebo, palette::BLUE), (&d.naltrexone, palette::RED)] {
            let Some(ls) = lines.get(&(region.to_string(), arm.clone())) else {
                continue;
            };
            let mut series: Vec<Series> = ls
                .iter()
                .map(|l| Series {
                    name: String::new(),
                    colour: plotters::style::RGBColor(
                        ((colour.0 as u16 + 2 * 200) / 3) as u8,
                        ((colour.1 as u16 + 2 * 200) / 3) as u8,
                        ((colour.2 as u16 + 2 * 200) / 3) as u8,
                    ),
                    points: vec![(0.0, l.before), (1.0, l.during)],
                    width: 1,
                    markers: true,
                })
                .collect();
            let mean =
                |f: &dyn Fn(&RoiLine) -> f64| ls.iter().map(f).sum::<f64>() / ls.len() as f64;
            series.push(Series {
                name: format!("mean (n = {})", ls.len()),
                colour,
                points: vec![(0.0, mean(&|l| l.before)), (1.0, mean(&|l| l.during))],
                width: 4,
                markers: true,
            });
            panels.push(LinePanel {
                title: format!("{rname}: {arm}"),
                x_label: String::new(),
                y_label: "CBF (mL/100 g/min)".into(),
                series,
                x_range: Some((-0.25, 1.25)),
                x_categories: vec!["before".into(), "during".into()],
                ..Default::default()
            });
        }
        if panels.is_empty() {
            continue;
        }
        let all: Vec<f64> = panels
            .iter()
            .flat_map(|p| p.series.iter().flat_map(|q| q.points.iter().map(|x| x.1)))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let pad = 0.06 * (hi - lo).max(1.0);
        for p in &mut panels {
            p.y_range = Some((lo - pad, hi + pad));
        }
        let id = format!("fig-roi-{region}");
        let png = plots::line_panels(&id, &panels, 2, 430, 330)?;
        let _ = write!(s, "<h3 id=\"roi-{region}\">{}</h3>", esc(rname));
        s.push_str(&html::figure(
            &id,
            "plot",
            &png,
            &format!("ROI CBF before and during ketamine, {rname}"),
            &format!(
                "Mean CBF in {} before → during ketamine for each subject, by pre-treatment.",
                esc(rname)
            ),
        ));
    }
    // t tests
    let path = output_dir.join("desc-roiTtests_table.tsv");
    if let Some(t) = data::table_opt(&path)? {
        s.push_str("<h3 id=\"roi-tests\">Paired tests of the ketamine change</h3>");
        s.push_str(&numeric_table(
            "roi-ttests",
            &t,
            &path,
            &["region", "contrast"],
            "p",
        )?);
    } else {
        s.push_str(&html::missing("no ROI t tests (desc-roiTtests_table.tsv)"));
    }
    let path = output_dir.join("desc-lmm_table.tsv");
    if let Some(t) = data::table_opt(&path)? {
        s.push_str("<h3 id=\"roi-lmm\">Crossover mixed model of ΔCBF</h3><details><summary>show the fixed effects of every region</summary>");
        s.push_str(&numeric_table(
            "roi-lmm",
            &t,
            &path,
            &["region", "term"],
            "p",
        )?);
        s.push_str("</details>");
    }
    Ok(s)
}

/// A table of a TSV with numbers rounded to 3 decimals, `p` columns formatted, significant p bold.
fn numeric_table(
    id: &str,
    t: &Table,
    _path: &Path,
    text_cols: &[&str],
    p_col: &str,
) -> Result<String> {
    let rows: Vec<(Vec<Cell>, bool)> = t
        .rows
        .iter()
        .map(|r| {
            let cells = t
                .columns
                .iter()
                .zip(r)
                .map(|(c, v)| {
                    if text_cols.contains(&c.as_str()) {
                        Cell::text(v.clone())
                    } else if let Ok(x) = v.parse::<f64>() {
                        if c == p_col || c.starts_with("p_") || c.starts_with("q_") {
                            let cell = Cell::num(pval(x));
                            if x < 0.05 { cell.class("sig") } else { cell }
                        } else if c == "n" || c == "n_obs" {
                            Cell::num(v.clone())
                        } else {
                            Cell::num(num(x, 3))
                        }
                    } else {
                        Cell::text(v.clone())
                    }
                })
                .collect();
            (cells, false)
        })
        .collect();
    let header: Vec<&str> = t.columns.iter().map(String::as_str).collect();
    Ok(html::table(id, &header, &rows))
}

fn behaviour_section(output_dir: &Path, bids_dir: &Path) -> Result<String> {
    let path = output_dir.join("desc-brainBehaviour_table.tsv");
    let Some(t) = data::table_opt(&path)? else {
        return Ok(html::missing(
            "no brain–behaviour table (desc-brainBehaviour_table.tsv)",
        ));
    };
    let rels = brain_behaviour_data(output_dir, bids_dir)?;
    let rel = col_str(&t, &path, "relation")?;
    let reg = col_str(&t, &path, "region")?;
    let score = col_str(&t, &path, "score")?;
    let pre = col_str(&t, &path, "pretreatment")?;
    let method = col_str(&t, &path, "method")?;
    let r = col_f64(&t, &path, "r")?;
    let lo = col_f64(&t, &path, "ci95_low")?;
    let hi = col_f64(&t, &path, "ci95_high")?;
    let p = col_f64(&t, &path, "p")?;
    let find = |rd: &RelationData, arm: &str, m: &str| {
        (0..t.n_rows()).find(|&i| {
            rel[i] == rd.relation
                && reg[i] == rd.region
                && score[i] == rd.score
                && pre[i] == arm
                && method[i].starts_with(m)
        })
    };
    let mut s = String::from(
        "<p>One figure per relation: placebo left, naltrexone right; ordinary least-squares line with its 95 % confidence band. Captions give Pearson r with its 95 % CI and p from the group-level table, and the test of the difference between pre-treatments.</p>",
    );
    let mut current = String::new();
    for (k, rd) in rels.iter().enumerate() {
        if rd.relation != current {
            current = rd.relation.clone();
            let _ = write!(s, "<h3 id=\"behaviour-{k}\">{}</h3>", esc(&current));
        }
        let xs: Vec<f64> = rd
            .arms
            .iter()
            .flat_map(|a| a.1.iter().map(|p| p.0))
            .filter(|v| v.is_finite())
            .collect();
        let ys: Vec<f64> = rd
            .arms
            .iter()
            .flat_map(|a| a.1.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .collect();
        let rng = |v: &[f64]| {
            let (a, b) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                });
            let pad = 0.1 * (b - a).max(1e-6);
            (a - pad, b + pad)
        };
        let mut panels = Vec::new();
        let mut cap = Vec::new();
        for (arm, pts) in &rd.arms {
            let fit = regression_band(pts);
            let mut yr = rng(&ys);
            for f in &fit {
                yr = (yr.0.min(f.2), yr.1.max(f.3));
            }
            let stats = find(rd, arm, "pearson")
                .map(|i| {
                    format!(
                        "r = {:.2} [{:.2}, {:.2}], p = {}",
                        r[i],
                        lo[i],
                        hi[i],
                        pval(p[i])
                    )
                })
                .unwrap_or_default();
            cap.push(format!("{arm}: {stats}"));
            panels.push(ScatterPanel {
                title: format!("{arm}: {stats}"),
                x_label: rd.x_label.clone(),
                y_label: rd.y_label.clone(),
                points: pts.clone(),
                colour: Some(if arm == "placebo" {
                    palette::BLUE
                } else {
                    palette::RED
                }),
                fit,
                x_range: Some(rng(&xs)),
                y_range: Some(yr),
            });
        }
        // keep one vertical range for both panels
        let (ylo, yhi) = panels
            .iter()
            .filter_map(|p| p.y_range)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
                (a.min(r.0), b.max(r.1))
            });
        for p in &mut panels {
            p.y_range = Some((ylo, yhi));
        }
        let diff = (0..t.n_rows())
            .find(|&i| {
                rel[i] == rd.relation
                    && reg[i] == rd.region
                    && score[i] == rd.score
                    && method[i].contains("difference")
            })
            .map(|i| {
                format!(
                    "; difference of r ({}): {:.2} [{:.2}, {:.2}], p = {}",
                    pre[i],
                    r[i],
                    lo[i],
                    hi[i],
                    pval(p[i])
                )
            })
            .unwrap_or_default();
        let id = format!(
            "fig-bb-{}-{}-{}",
            if rd.relation.starts_with("baseline") {
                "baseline"
            } else {
                "delta"
            },
            rd.region,
            rd.score
        );
        let png = plots::scatter_panels(&id, &panels, 470, 340)?;
        s.push_str(&html::figure(
            &id,
            "plot",
            &png,
            &format!("{} vs {}", rd.region, rd.score),
            &format!(
                "<b>{}</b> × <b>{}</b>. {}{}",
                esc(&rd.region),
                esc(&rd.score),
                esc(&cap.join("; ")),
                esc(&diff)
            ),
        ));
    }
    s.push_str("<details><summary>the full table (Pearson and Spearman)</summary>");
    s.push_str(&numeric_table(
        "bb-table",
        &t,
        &path,
        &["relation", "region", "score", "pretreatment", "method"],
        "p",
    )?);
    s.push_str("</details>");
    Ok(s)
}

/// Receptor section; also says whether any receptor table was found.
fn receptor_section(output_dir: &Path, contrasts: &[(String, String)]) -> Result<(String, bool)> {
    let mut s = String::new();
    let mut any = false;
    for (c, _) in contrasts {
        let tp = output_dir.join(format!("desc-receptors_contrast-{c}_table.tsv"));
        let np = output_dir.join(format!("desc-receptorNulls_contrast-{c}_table.tsv"));
        let Some(t) = data::table_opt(&tp)? else {
            continue;
        };
        any = true;
        let maps = col_str(&t, &tp, "map")?;
        let r = col_f64(&t, &tp, "r")?;
        let nulls: Vec<String> = t
            .columns
            .iter()
            .filter_map(|c| c.strip_prefix("q_").map(str::to_string))
            .collect();
        let q: Vec<(String, Vec<f64>)> = nulls
            .iter()
            .map(|n| Ok((n.clone(), col_f64(&t, &tp, &format!("q_{n}"))?)))
            .collect::<Result<_>>()?;
        let mut draws: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        let null_note = match data::table_opt(&np)? {
            Some(nt) => {
                let m = col_str(&nt, &np, "map")?;
                let n = col_str(&nt, &np, "null")?;
                let v = col_f64(&nt, &np, "r")?;
                for i in 0..nt.n_rows() {
                    draws
                        .entry((m[i].clone(), n[i].clone()))
                        .or_default()
                        .push(v[i]);
                }
                String::new()
            }
            None => format!(" The null distributions ({}) are missing.", fname(&np)),
        };
        let rows: Vec<BarRow> = maps
            .iter()
            .enumerate()
            .map(|(i, m)| BarRow {
                label: m.clone(),
                value: r[i],
                nulls: nulls
                    .iter()
                    .filter_map(|n| {
                        draws
                            .get(&(m.clone(), n.clone()))
                            .map(|d| (n.clone(), d.clone()))
                    })
                    .collect(),
                mark: q
                    .iter()
                    .filter(|(_, qs)| qs[i] < 0.05)
                    .map(|(n, _)| format!("*{n}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        let id = format!("fig-receptors-{c}");
        let png = plots::bar_null_plot(
            &id,
            &format!("{c}: spatial correlation with receptor density"),
            "correlation r",
            &rows,
            900,
        )?;
        let _ = write!(s, "<h3 id=\"receptors-{c}\">{c}</h3>");
        s.push_str(&html::figure(
            &id,
            "plot",
            &png,
            &format!("receptor correlations, {c}"),
            &format!(
                "Bars: correlation of the contrast's effect map with each receptor map. Dots: the null distributions ({}), one row and colour each, with their 2.5–97.5 % interval as a line. *name: FDR q &lt; 0.05 under that null (Benjamini–Hochberg across maps).{}",
                esc(&nulls.join(", ")),
                esc(&null_note)
            ),
        ));
        s.push_str(&numeric_table(
            &format!("receptors-{c}"),
            &t,
            &tp,
            &["map", "target", "tracer", "method", "level", "parcellation"],
            "p",
        )?);
    }
    if !any {
        s.push_str(&html::missing("no receptor tables (desc-receptors_contrast-<contrast>_table.tsv) in these derivatives: the receptor step has not been run"));
    }
    Ok((s, any))
}
