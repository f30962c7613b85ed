//! The ROI time courses of a session's runs.

use cbflow_pipeline::catalogue::RunFile;
use ndarray::Axis;

use super::figures::{Ctx, run_meaning};
use crate::Result;
use crate::data::{self, RunFiles, col_f64, fname};
use crate::html::{self, esc};
use crate::plots::{self, LinePanel, Series, palette};

/// The CBF time course per ROI through the infusion (ROI time-series tables when present, else
/// the brain-mask mean of the per-pair CBF series).
pub(super) fn timecourse_section(ctx: &Ctx, rs: &[&RunFiles], sid: &str) -> Result<String> {
    let mut s = format!(
        "<h3 id=\"timecourse-{}\">CBF time course through the infusion</h3>\n",
        esc(sid)
    );
    let mut panels = Vec::new();
    let mut fallback = false;
    let mut notes = Vec::new();
    // (shown, of) when there are more regions than distinct colours
    let mut omitted: Option<(usize, usize)> = None;
    for r in rs {
        let title = format!("{} {}", r.label(), run_meaning(r, ctx.design));
        let roi = ctx
            .space
            .as_ref()
            .map(|(sp, res)| r.file(&RunFile::roi_timeseries(sp, res)))
            .transpose()?;
        if let Some(p) = roi.filter(|p| p.exists()) {
            let t = data::table_opt(&p)?.expect("exists");
            let time = col_f64(&t, &p, "time_s")?;
            let regions: Vec<&String> = t
                .columns
                .iter()
                .filter(|c| *c != "pair" && *c != "time_s")
                .collect();
            let shown = shown_regions(&regions, palette::CYCLE.len());
            if shown.len() < regions.len() {
                omitted = Some((shown.len(), regions.len()));
            }
            let mut series = Vec::new();
            for (k, c) in shown.iter().enumerate() {
                let y = col_f64(&t, &p, c)?;
                series.push(Series {
                    name: (*c).clone(),
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
        let ts = r.file(&RunFile::TimeseriesCbf)?;
        match data::volume_opt(&ts)? {
            Some(v) if v.n_volumes() >= 1 => {
                fallback = true;
                let m = data::volume_opt(&r.file(&RunFile::BrainMask)?)?
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
    let mut caption = if fallback {
        "Per-pair CBF averaged in the native ASL brain mask (fallback: the ROI time-series table of the participant level, desc-roi_timeseries, is not in these derivatives, so the ACC regions cannot be shown separately).".to_string()
    } else {
        format!(
            "Per-pair CBF in each region of interest (template space), from the start of each run, for each run of the session ({0}: the run before it on the left, the run during it on the right).",
            ctx.design.drug
        )
    };
    if let Some((shown, of)) = omitted {
        caption.push_str(&format!(
            " {shown} of the {of} regions are drawn, one colour each (the bilateral ones, grey matter and global); every region is in each run's desc-roi_timeseries table."
        ));
    }
    s.push_str(&html::figure(
        &id,
        "plot",
        &png,
        "CBF time course",
        &caption,
    ));
    Ok(s)
}

/// At most `max` of the time-series `regions` (so that each has its own colour): when there are
/// more, the bilateral regions (names without a hemisphere suffix `_L`, `_R`, `_lh`, `_rh`) when
/// there are any, else the first ones, in table order, and `grey_matter` and `global` always.
fn shown_regions<'a>(regions: &[&'a String], max: usize) -> Vec<&'a String> {
    if regions.len() <= max {
        return regions.to_vec();
    }
    let always = |c: &str| c == "grey_matter" || c == "global";
    let one_sided = |c: &str| {
        ["_L", "_R", "_lh", "_rh", "_LH", "_RH"]
            .iter()
            .any(|s| c.ends_with(s))
    };
    let n_always = regions.iter().filter(|c| always(c)).count();
    let room = max.saturating_sub(n_always);
    // bilateral regions when there are any (their sides are in the table), else the others
    let bilateral: Vec<&String> = regions
        .iter()
        .copied()
        .filter(|c| !always(c) && !one_sided(c))
        .collect();
    let pool: Vec<&String> = if bilateral.is_empty() {
        regions.iter().copied().filter(|c| !always(c)).collect()
    } else {
        bilateral
    };
    let mut picked: Vec<&String> = pool.into_iter().take(room).collect();
    picked.extend(regions.iter().copied().filter(|c| always(c)));
    // table order
    regions
        .iter()
        .copied()
        .filter(|c| picked.contains(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shown_regions;

    #[test]
    fn at_most_one_colour_each_bilateral_regions_when_there_are_more() {
        let names: Vec<String> = [
            "ACC_sub_L",
            "ACC_sub_R",
            "ACC_sub",
            "ACC_pre_L",
            "ACC_pre_R",
            "ACC_pre",
            "ACC_sup_L",
            "ACC_sup_R",
            "ACC_sup",
            "grey_matter",
            "global",
        ]
        .map(String::from)
        .to_vec();
        let refs: Vec<&String> = names.iter().collect();
        let shown: Vec<&str> = shown_regions(&refs, 6).iter().map(|s| s.as_str()).collect();
        assert_eq!(
            shown,
            ["ACC_sub", "ACC_pre", "ACC_sup", "grey_matter", "global"]
        );
        let few = &refs[..4];
        assert_eq!(shown_regions(few, 6).len(), 4);
        // one-sided only (e.g. Schaefer parcels): the first ones
        let parcels: Vec<String> = (1..=9).map(|i| format!("p{i}_L")).collect();
        let refs: Vec<&String> = parcels.iter().collect();
        assert_eq!(shown_regions(&refs, 6).len(), 6);
    }
}
