//! The normalisation section: the T1w in template space with the template's outline and the brain mask.

use cbflow_image::Interp;
use cbflow_pipeline::catalogue::AnatFile;
use serde_json::Value;

use super::figures::{Ctx, map_layer, mosaic_figure};
use crate::data::{self, fname};
use crate::html::{self, esc};
use crate::slices::{Cmap, Layer, Orient, Scene, canonical, spread_slices, window};
use crate::{Error, Result};

/// The session's T1w in template space under the template's edges.
pub(super) fn normalisation_section(ctx: &Ctx, ses: Option<&str>, sid: &str) -> Result<String> {
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
    let bids_anat = match ses {
        Some(x) => ctx.bids_dir.join(format!("sub-{}/ses-{x}/anat", ctx.label)),
        None => ctx.bids_dir.join(format!("sub-{}/anat", ctx.label)),
    };
    let anat = |file: &AnatFile| data::anat_file(ctx.output_dir, ctx.label, ses, file);
    let affine = anat(&AnatFile::template_affine(&tpl.name))?;
    let warp = anat(&AnatFile::template_warp(&tpl.name))?;
    // the T1w the participant level normalised, as the warp's sidecar records it
    let t1w_path = data::normalised_t1w(ctx.output_dir, ctx.bids_dir, ctx.label, ses, &tpl.name)?;
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
    let mask_path = anat(&AnatFile::BrainMask)?;
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
        let side = data::anat_sidecar(ctx.output_dir, ctx.label, ses, &AnatFile::BrainMask)?
            .and_then(|p| data::json_opt(&p).ok().flatten());
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
