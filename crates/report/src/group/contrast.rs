//! One contrast's section: statistic-map slices with the ROI outlines and the cluster table.

use std::path::Path;

use cbflow_pipeline::Template;
use cbflow_pipeline::catalogue::{GroupFile, Inference, StatMap};
use ndarray::Array3;

use super::data::LOGP_05;
use crate::Result;
use crate::data::{self, col_f64, fname};
use crate::encode::{RgbImage, encode_png};
use crate::html::{self, Cell, esc};
use crate::plots::{self};
use crate::slices::{Cmap, Layer, Orient, Scene, canonical, window};

/// Canonical-grid centroid (voxel indices) of the voxels whose label is in `set`.
pub(super) fn centroid(labels: &Array3<i32>, set: &[i32]) -> Option<[usize; 3]> {
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
pub(super) fn annotate(img: &mut RgbImage, texts: &[(String, i32, i32, f64)]) -> Result<()> {
    plots::draw_text(img, texts)
}

pub(super) fn contour_of(set: &[i32], labels: &Array3<i32>) -> Array3<i32> {
    labels.mapv(|l| if set.contains(&l) { l } else { 0 })
}

pub(super) fn contrast_section(
    output_dir: &Path,
    space: &str,
    res: &str,
    tpl: &Template,
    c: &str,
    desc: &str,
) -> Result<String> {
    let mut s = format!("<h3 id=\"contrast-{c}\">{c}</h3><p>{}</p>\n", esc(desc));
    let f = |map: StatMap| data::group_file(output_dir, &GroupFile::stat_map(space, res, c, map));
    let tpath = f(StatMap::T)?;
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
        (Inference::VoxelFwe, "voxel-level FWE (max-T)"),
        (Inference::TfceFwe, "TFCE FWE"),
        (Inference::ClusterFwe, "cluster-extent FWE"),
    ];
    let mut sig = Vec::new();
    let mut counts = Vec::new();
    for (inference, name) in inferences {
        let p = f(StatMap::Logp(inference))?;
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
    let view = View {
        tc: &tc,
        bg: &bg,
        window: (lo, hi),
        t_range: (tmin, tmax),
        acc: &acc,
    };
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
        let scene = view.scene(m);
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
    s.push_str(&cluster_figure(output_dir, space, res, c, &view)?);
    s.push_str(&cluster_table(output_dir, space, res, c)?);
    Ok(s)
}

/// What the contrast's figures share: the t map and background on the canonical grid, the
/// grey window, the t colour range and the ACC outline.
struct View<'a> {
    tc: &'a crate::slices::Canonical,
    bg: &'a crate::slices::Canonical,
    window: (f64, f64),
    t_range: (f64, f64),
    acc: &'a Array3<i32>,
}

impl View<'_> {
    /// The template T1w in grey, the t map where `shown` (red–yellow where positive,
    /// blue–light blue where negative) and the ACC outline in green.
    fn scene(&self, shown: &Array3<bool>) -> Scene {
        let pos = ndarray::Zip::from(shown)
            .and(&self.tc.data)
            .map_collect(|b, t| *b && *t > 0.0);
        let neg = ndarray::Zip::from(shown)
            .and(&self.tc.data)
            .map_collect(|b, t| *b && *t < 0.0);
        let (lo, hi) = self.window;
        let (tmin, tmax) = self.t_range;
        Scene::on(self.tc)
            .with(Layer::Map {
                data: self.bg.data.clone(),
                lo,
                hi: lo + 1.4 * (hi - lo),
                cmap: Cmap::Gray,
                show: None,
            })
            .with(Layer::Map {
                data: self.tc.data.clone(),
                lo: tmin,
                hi: tmax,
                cmap: Cmap::RedYellow,
                show: Some(pos),
            })
            .with(Layer::Map {
                data: self.tc.data.mapv(|x| -x),
                lo: tmin,
                hi: tmax,
                cmap: Cmap::BlueLightBlue,
                show: Some(neg),
            })
            .with(Layer::Contour {
                labels: self.acc.clone(),
                colour: [80, 255, 120],
            })
    }
}

/// Most significant clusters drawn, one row each.
const MAX_CLUSTER_ROWS: usize = 6;

/// Slices through the peak of every cluster with cluster-extent FWE p < 0.05 (the cluster
/// table's rows, up to [`MAX_CLUSTER_ROWS`]), so that a result outside the ACC is seen: the t
/// map where the cluster-level FWE p < 0.05, on the template T1w. Empty when no cluster is
/// significant (the table says so).
fn cluster_figure(output_dir: &Path, space: &str, res: &str, c: &str, v: &View) -> Result<String> {
    let path = data::group_file(output_dir, &GroupFile::clusters(space, res, c))?;
    let Some(t) = data::table_opt(&path)? else {
        return Ok(String::new());
    };
    let p = col_f64(&t, &path, "p_fwe")?;
    let xyz = [
        col_f64(&t, &path, "peak_x_mm")?,
        col_f64(&t, &path, "peak_y_mm")?,
        col_f64(&t, &path, "peak_z_mm")?,
    ];
    let peak_t = col_f64(&t, &path, "peak_t")?;
    let size = col_f64(&t, &path, "size_voxels")?;
    let label = t.column("peak_label").unwrap_or_default();
    let rows: Vec<usize> = (0..t.n_rows())
        .filter(|&i| p[i] < 0.05)
        .take(MAX_CLUSTER_ROWS)
        .collect();
    if rows.is_empty() {
        return Ok(String::new());
    }
    let cmap = data::group_file(
        output_dir,
        &GroupFile::stat_map(space, res, c, StatMap::Logp(Inference::ClusterFwe)),
    )?;
    let Some(cl) = data::volume_opt(&cmap)? else {
        return Ok(html::missing(&format!(
            "no cluster FWE map ({})",
            fname(&cmap)
        )));
    };
    let scene = v.scene(&canonical(&cl).data.mapv(|x| x > LOGP_05));
    let (tmin, tmax) = v.t_range;
    let orients = [Orient::Sagittal, Orient::Coronal, Orient::Axial];
    let px = 1.6;
    let (label_w, top, gap) = (230usize, 24usize, 4usize);
    let sizes: Vec<(usize, usize)> = orients.iter().map(|o| scene.slice_size(*o, px)).collect();
    let row_h = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    let width = label_w + sizes.iter().map(|s| s.0 + gap).sum::<usize>();
    let mut img = RgbImage::new(width, top + rows.len() * (row_h + gap), [0, 0, 0]);
    let mut texts = Vec::new();
    for (k, name) in ["sagittal", "coronal", "axial"].iter().enumerate() {
        let x0 = label_w + sizes[..k].iter().map(|s| s.0 + gap).sum::<usize>();
        texts.push((name.to_string(), x0 as i32 + 4, 3, 16.0));
    }
    let dims = v.tc.data.shape();
    for (r, &i) in rows.iter().enumerate() {
        let y0 = top + r * (row_h + gap);
        let vox = v.tc.world_to_voxel([xyz[0][i], xyz[1][i], xyz[2][i]]);
        let idx: Vec<usize> = (0..3)
            .map(|a| (vox[a].round().max(0.0) as usize).min(dims[a] - 1))
            .collect();
        texts.push((format!("cluster {}", t.rows[i][0]), 6, y0 as i32 + 4, 15.0));
        texts.push((
            format!("{:.0} voxels, p = {:.3}", size[i], p[i]),
            6,
            y0 as i32 + 24,
            13.0,
        ));
        texts.push((
            format!(
                "peak t {:.2} at ({:.0}, {:.0}, {:.0})",
                peak_t[i], xyz[0][i], xyz[1][i], xyz[2][i]
            ),
            6,
            y0 as i32 + 42,
            13.0,
        ));
        if let Some(l) = label.get(i) {
            texts.push((l.to_string(), 6, y0 as i32 + 60, 13.0));
        }
        let mut x0 = label_w;
        for (k, o) in orients.iter().enumerate() {
            img.blit(&scene.render(*o, idx[o.axis()], px), x0, y0);
            x0 += sizes[k].0 + gap;
        }
    }
    annotate(&mut img, &texts)?;
    let png = encode_png(&img)?;
    let n_sig = p.iter().filter(|x| **x < 0.05).count();
    let listed: Vec<String> = rows
        .iter()
        .map(|&i| {
            format!(
                "cluster {}: {:.0} voxels, p = {:.3}, peak t {:.2} at ({:.0}, {:.0}, {:.0}) mm{}",
                t.rows[i][0],
                size[i],
                p[i],
                peak_t[i],
                xyz[0][i],
                xyz[1][i],
                xyz[2][i],
                label.get(i).map(|l| format!(", {l}")).unwrap_or_default()
            )
        })
        .collect();
    let cap = format!(
        "Each cluster with cluster-extent FWE p &lt; 0.05 ({n_sig}{}), through its peak (the cluster table's coordinates): the t map where the cluster-level FWE p &lt; 0.05. Green: the ACC regions of the atlas. {}.{}",
        if n_sig > rows.len() {
            format!("; the first {} of the table shown", rows.len())
        } else {
            String::new()
        },
        esc(&listed.join("; ")),
        html::colour_bar(Cmap::RedYellow, tmin, tmax, "t (blue scale for negative t)")
    );
    Ok(html::figure(
        &format!("fig-clusters-{c}"),
        "mosaic",
        &png,
        &format!("significant clusters, {c}"),
        &cap,
    ))
}

pub(super) fn cluster_table(output_dir: &Path, space: &str, res: &str, c: &str) -> Result<String> {
    let path = data::group_file(output_dir, &GroupFile::clusters(space, res, c))?;
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
