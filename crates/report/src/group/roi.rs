//! The ROI section: time courses per region and the ROI tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use cbflow_bids::Table;
use cbflow_pipeline::StudyDesign;
use cbflow_pipeline::catalogue::GroupFile;

use super::data::{REGIONS, RoiLine};
use crate::Result;
use crate::data::{self, fname};
use crate::html::{self, Cell, esc, num, pval};
use crate::plots::{self, LinePanel, Series, palette};

pub(super) fn roi_section(
    output_dir: &Path,
    lines: Option<&BTreeMap<(String, String), Vec<RoiLine>>>,
    d: &StudyDesign,
) -> Result<String> {
    let Some(lines) = lines else {
        let path = data::group_file(output_dir, &GroupFile::RoiValues)?;
        return Ok(html::missing(&format!("no ROI table ({})", fname(&path))));
    };
    let mut s = format!(
        "<p>Each line is one subject's mean CBF in the region before and during {}; the thick line is the group mean. Left: {} pre-treatment; right: {}.</p>",
        esc(&d.drug),
        esc(&d.control),
        esc(&d.active)
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
        for (arm, colour) in [(&d.control, palette::BLUE), (&d.active, palette::RED)] {
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
            &format!("ROI CBF before and during {}, {rname}", d.drug),
            &format!(
                "Mean CBF in {} before → during {} for each subject, by pre-treatment.",
                esc(rname),
                esc(&d.drug)
            ),
        ));
    }
    // t tests
    let path = data::group_file(output_dir, &GroupFile::RoiTtests)?;
    if let Some(t) = data::table_opt(&path)? {
        let _ = write!(
            s,
            "<h3 id=\"roi-tests\">Paired tests of the {} change</h3>",
            esc(&d.drug)
        );
        s.push_str(&numeric_table(
            "roi-ttests",
            &t,
            &path,
            &["region", "contrast"],
            "p",
        )?);
    } else {
        s.push_str(&html::missing(&format!(
            "no ROI t tests ({})",
            fname(&path)
        )));
    }
    let path = data::group_file(output_dir, &GroupFile::Lmm)?;
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
pub(super) fn numeric_table(
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
