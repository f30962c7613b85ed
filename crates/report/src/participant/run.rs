//! One run's section: CBF maps, the ASL on the T1w and the motion traces.

use cbflow_image::Interp;

use super::figures::{Ctx, map_layer, map_mosaic, mosaic_figure, run_meaning};
use crate::data::{self, RunFiles, col_f64, fname};
use crate::html::{self, esc};
use crate::plots::{self, LinePanel, Series, palette};
use crate::slices::{Cmap, Layer, Orient, Scene, canonical, spread_slices, window};
use crate::{Error, Result};
use cbflow_pipeline::catalogue::{AnatFile, RunFile};

pub(super) fn run_section(ctx: &Ctx, r: &RunFiles) -> Result<String> {
    let id = r.id();
    let meaning = run_meaning(r, ctx.design);
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
    let cbf = data::volume(&r.file(&RunFile::Cbf)?)?;
    let bmask = data::volume_opt(&r.file(&RunFile::BrainMask)?)?;
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
            let p = r.file(&RunFile::template_cbf(sp, res))?;
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
    match data::volume_opt(&r.file(&RunFile::CalibrationM0)?)? {
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
    match data::volume_opt(&r.file(&RunFile::MeanDeltaM)?)? {
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
pub(super) fn asl_on_t1w(ctx: &Ctx, r: &RunFiles, id: &str) -> Result<String> {
    let xfm = r.file(&RunFile::AslToT1wXfm)?;
    let m0p = r.file(&RunFile::CalibrationM0)?;
    // the T1w the rigid transform was estimated to: the session's normalised T1w
    let t1w_path = match &ctx.space {
        Some((sp, _)) => data::normalised_t1w(
            ctx.output_dir,
            ctx.bids_dir,
            ctx.label,
            r.ses.as_deref(),
            sp,
        )?,
        None => None,
    };
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
    let brain = match data::volume_opt(&r.anat(&AnatFile::BrainMask)?)? {
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

pub(super) fn motion_figure(r: &RunFiles, id: &str) -> Result<String> {
    let path = r.file(&RunFile::Confounds)?;
    let Some(t) = data::table_opt(&path)? else {
        return Ok(html::missing(&format!(
            "{}: no confounds table ({})",
            r.label(),
            fname(&path)
        )));
    };
    let qc_sidecar = r.sidecar(&RunFile::Qc)?;
    let fd_limit = qc_sidecar
        .map(|p| data::json_opt(&p))
        .transpose()?
        .flatten()
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

pub(super) type RGBc = plotters::style::RGBColor;
