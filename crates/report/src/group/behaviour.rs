//! The brain–behaviour section: scatter plots with regression bands and the correlation table.

use std::fmt::Write as _;
use std::path::Path;

use super::data::{RelationData, brain_behaviour_data, regression_band};
use super::roi::numeric_table;
use cbflow_pipeline::StudyDesign;
use cbflow_pipeline::catalogue::GroupFile;

use crate::Result;
use crate::data::{self, col_f64, col_str, fname};
use crate::html::{self, esc, pval};
use crate::plots::{self, ScatterPanel, palette};

pub(super) fn behaviour_section(output_dir: &Path, design: &StudyDesign) -> Result<String> {
    let path = data::group_file(output_dir, &GroupFile::BrainBehaviour)?;
    let Some(t) = data::table_opt(&path)? else {
        return Ok(html::missing(&format!(
            "no brain–behaviour table ({})",
            fname(&path)
        )));
    };
    let rels = brain_behaviour_data(output_dir)?;
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
    let mut s = format!(
        "<p>One figure per relation: {} left, {} right; ordinary least-squares line with its 95 % confidence band. Captions give Pearson r with its 95 % CI and p from the group-level table, and the test of the difference between pre-treatments.</p>",
        esc(&design.control),
        esc(&design.active)
    );
    if rels.is_empty() && t.n_rows() > 0 {
        let points = data::group_file(output_dir, &GroupFile::BrainBehaviourPoints)?;
        s.push_str(&html::missing(&format!(
            "no points of the correlations ({}): derivatives of a group level that did not write them; the table follows",
            fname(&points)
        )));
    }
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
                x_label: super::data::with_region_name(&rd.x_label, &rd.region),
                y_label: rd.y_label.clone(),
                points: pts.clone(),
                colour: Some(if *arm == design.control {
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
