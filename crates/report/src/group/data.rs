//! What the group report reads of the group level's outputs: ROI time courses and the
//! brain–behaviour relations (the points the group level correlated; nothing is recomputed).

use std::collections::BTreeMap;
use std::path::Path;

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

/// An axis label of the group level (which names a region by its code) with a study region's
/// code replaced by its display name; other labels as they are.
pub(crate) fn with_region_name(label: &str, region: &str) -> String {
    match REGIONS.iter().find(|r| r.0 == region) {
        Some((code, name)) => label.replacen(code, name, 1),
        None => label.to_string(),
    }
}

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
    /// for global CBF; y: the score), subjects in the order of the points file.
    pub arms: Vec<(String, Vec<(f64, f64)>)>,
    /// Horizontal axis label (the group level's description of x).
    pub x_label: String,
    /// Vertical axis label (the group level's description of y).
    pub y_label: String,
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

/// The `which` (`x` or `y`) axis label of the relation, region and score `key` in the points
/// sidecar's `Axes` (at `side`): its first entry with those three values.
fn axis_label(
    axes: &[serde_json::Value],
    side: &Path,
    key: [&String; 3],
    which: &str,
) -> Result<String> {
    let names = ["relation", "region", "score"];
    axes.iter()
        .find(|a| {
            names
                .iter()
                .zip(key)
                .all(|(k, v)| a.get(k).and_then(|x| x.as_str()) == Some(v.as_str()))
        })
        .and_then(|a| a.get(which).and_then(|x| x.as_str()))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::invalid(
                side,
                format!(
                    "Axes: no {which} axis for relation {:?}, region {}, score {}",
                    key[0], key[1], key[2]
                ),
            )
        })
}

/// The points of every relation of the brain–behaviour table, as the group level correlated
/// them: read from `desc-brainBehaviour_points.tsv` (relations, pre-treatments and subjects in
/// the order written) and the axes from its sidecar. Empty when the group level wrote no
/// points file.
pub fn brain_behaviour_data(output_dir: &Path) -> Result<Vec<RelationData>> {
    let path = data::group_file(output_dir, &GroupFile::BrainBehaviourPoints)?;
    let Some(t) = data::table_opt(&path)? else {
        return Ok(Vec::new());
    };
    let side = data::group_sidecar(output_dir, &GroupFile::BrainBehaviourPoints)?;
    let axes = data::json_opt(&side)?
        .and_then(|j| j.get("Axes").and_then(|a| a.as_array()).cloned())
        .ok_or_else(|| Error::invalid(&side, "no Axes: the axes of the relations"))?;
    let rel = col_str(&t, &path, "relation")?;
    let reg = col_str(&t, &path, "region")?;
    let score = col_str(&t, &path, "score")?;
    let pre = col_str(&t, &path, "pretreatment")?;
    let x = col_f64(&t, &path, "x")?;
    let y = col_f64(&t, &path, "y")?;
    let mut out: Vec<RelationData> = Vec::new();
    for i in 0..t.n_rows() {
        let same =
            |r: &RelationData| r.relation == rel[i] && r.region == reg[i] && r.score == score[i];
        let k = match out.iter().position(same) {
            Some(k) => k,
            None => {
                let axis = |which| axis_label(&axes, &side, [&rel[i], &reg[i], &score[i]], which);
                out.push(RelationData {
                    relation: rel[i].clone(),
                    region: reg[i].clone(),
                    score: score[i].clone(),
                    arms: Vec::new(),
                    x_label: axis("x")?,
                    y_label: axis("y")?,
                });
                out.len() - 1
            }
        };
        let arms = &mut out[k].arms;
        match arms.iter_mut().find(|a| a.0 == pre[i]) {
            Some(a) => a.1.push((x[i], y[i])),
            None => arms.push((pre[i].clone(), vec![(x[i], y[i])])),
        }
    }
    Ok(out)
}
