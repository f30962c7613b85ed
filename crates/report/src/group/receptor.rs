//! The receptor section: correlations of each contrast's map with the PET maps and their nulls.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use cbflow_pipeline::catalogue::GroupFile;

use super::roi::numeric_table;
use crate::Result;
use crate::data::{self, col_f64, col_str, fname};
use crate::html::{self, esc};
use crate::plots::{self, BarRow};

/// Receptor section; also says whether any receptor table was found.
pub(super) fn receptor_section(
    output_dir: &Path,
    contrasts: &[(String, String)],
) -> Result<(String, bool)> {
    let mut s = String::new();
    let mut any = false;
    for (c, _) in contrasts {
        let tp = data::group_file(output_dir, &GroupFile::receptors(c))?;
        let np = data::group_file(output_dir, &GroupFile::receptor_nulls(c))?;
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
        let example = match contrasts.first() {
            Some((c, _)) => format!(
                " ({} for contrast {c})",
                fname(&data::group_file(output_dir, &GroupFile::receptors(c))?)
            ),
            None => String::new(),
        };
        s.push_str(&html::missing(&format!(
            "no receptor tables{example} in these derivatives: the receptor step has not been run"
        )));
    }
    Ok((s, any))
}
