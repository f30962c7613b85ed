//! What the participant sections share: session facts, run meanings and map mosaics.

use std::collections::BTreeMap;
use std::path::Path;

use cbflow_image::Volume;
use cbflow_pipeline::{StudyDesign, Template};
use ndarray::Array3;

use crate::Result;
use crate::data::{self, RunFiles, col_str};
use crate::html::{self};
use crate::slices::{Canonical, Cmap, Layer, Orient, Scene, canonical, spread_slices, window};

/// Pixels per millimetre of brain mosaics (a 3 mm voxel is 4 pixels wide, a 2 mm voxel 3).
pub const PX_PER_MM: f64 = 1.4;

/// What the sessions table says of a session: pre-treatment and period.
pub(super) fn session_info(
    bids_dir: &Path,
    label: &str,
    d: &StudyDesign,
) -> BTreeMap<String, (String, String)> {
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

pub(super) fn run_meaning(r: &RunFiles, d: &StudyDesign) -> String {
    if d.before.matches(&r.entities) {
        format!("before {}", d.drug)
    } else if d.during.matches(&r.entities) {
        format!("during {}", d.drug)
    } else {
        String::new()
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

pub(super) fn map_layer(
    data: Array3<f32>,
    lo: f64,
    hi: f64,
    cmap: Cmap,
    show: Option<Array3<bool>>,
) -> Layer {
    Layer::Map {
        data,
        lo,
        hi,
        cmap,
        show,
    }
}

/// A mosaic of a map inside a mask (colour `cmap` between robust limits) — CBF, M0, ΔM.
pub(super) fn map_mosaic(
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

pub(super) struct Ctx<'a> {
    pub(super) output_dir: &'a Path,
    pub(super) bids_dir: &'a Path,
    pub(super) label: &'a str,
    /// The workflow's design: which column names the pre-treatment, which runs are before and
    /// during the drug.
    pub(super) design: &'a StudyDesign,
    pub(super) template: std::result::Result<Template, String>,
    pub(super) space: Option<(String, String)>,
}
