//! What the group report reads of the group level's outputs: ROI time courses and the
//! brain–behaviour relations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cbflow_bids::Table;
use cbflow_pipeline::StudyDesign;
use cbflow_pipeline::catalogue::GroupFile;

use crate::data::{self, col_f64, col_str};
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
pub(super) const LOGP_05: f32 = 1.301_03;

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
    let path = data::group_file(output_dir, &GroupFile::RoiValues)?;
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
pub(super) fn residualise(y: &[f64], x: &[f64]) -> Vec<f64> {
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
pub(super) fn sessions_of(
    t: &Table,
    path: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
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

pub(super) fn phenotype_value(
    t: &Table,
    path: &Path,
    col: &str,
    sub: &str,
    ses: &str,
) -> Result<Option<f64>> {
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
pub fn brain_behaviour_data(
    output_dir: &Path,
    bids_dir: &Path,
    d: &StudyDesign,
) -> Result<Vec<RelationData>> {
    let bb_path = data::group_file(output_dir, &GroupFile::BrainBehaviour)?;
    let rv_path = data::group_file(output_dir, &GroupFile::RoiValues)?;
    let (Some(bb), Some(rv), Some(lines)) = (
        data::table_opt(&bb_path)?,
        data::table_opt(&rv_path)?,
        roi_lines(output_dir)?,
    ) else {
        return Ok(Vec::new());
    };
    let sess = sessions_of(&rv, &rv_path)?;
    let arms = d.arms();
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
        for arm in arms {
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
            arm_pts.push((arm.to_string(), pts));
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
