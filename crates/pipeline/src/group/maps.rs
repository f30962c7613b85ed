//! What the group steps read of the participant level: each subject's template-space CBF maps
//! (masked to what every map covers, smoothed inside the mask) and ROI tables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cbflow_bids::Table;
use cbflow_image::Volume;
use cbflow_stats::MaskGeometry;
use ndarray::{Array2, Array3};

use super::design::SubjectData;
use crate::Result;
use crate::catalogue::RunFile;
use crate::error::{meta_err, stats_err};
use crate::template::Template;

/// Every subject's template-space CBF map of each cell: `[cell][subject]`, cells in the order of
/// [`crate::StudyDesign::cells`]. A map not on the template grid is an error naming it.
pub(crate) fn read_cell_maps(
    output_dir: &Path,
    tpl: &Template,
    subjects: &[SubjectData],
) -> Result<Vec<Vec<Volume>>> {
    let mut raw: Vec<Vec<Volume>> = vec![Vec::new(); 4];
    for s in subjects {
        for k in 0..2 {
            for t in 0..2 {
                let p = s.output(output_dir, tpl, k, t, RunFile::TemplateCbf)?;
                raw[2 * k + t].push(read_template_map(tpl, &p)?);
            }
        }
    }
    Ok(raw)
}

/// One subject's template-space map at `path`; a map not on the template grid is an error
/// naming it. Every group step reads its maps through it.
pub(crate) fn read_template_map(tpl: &Template, path: &Path) -> Result<Volume> {
    let v = cbflow_image::read(path)?;
    if v.grid().dims != tpl.grid.dims {
        return Err(meta_err(
            path,
            "dim",
            format!("not on the {} grid", tpl.name),
        ));
    }
    Ok(v)
}

/// Subjects' template-space maps of each condition, restricted to the analysis mask.
pub(crate) struct MaskedMaps {
    /// Voxel indices of the mask, in memory order.
    pub(crate) ijk: Vec<[usize; 3]>,
    /// Mask geometry for TFCE and clusters.
    pub(crate) geometry: MaskGeometry,
    /// One `(subjects, voxels)` matrix per condition, smoothed inside the mask.
    pub(crate) data: Vec<Array2<f32>>,
}

/// A template-grid volume with `vals` at the mask voxels `ijk` and 0 elsewhere.
pub(crate) fn unmask(tpl: &Template, ijk: &[[usize; 3]], vals: &[f64]) -> Result<Volume> {
    let d = tpl.grid.dims;
    let mut a = Array3::<f32>::zeros((d[0], d[1], d[2]));
    for (v, p) in vals.iter().zip(ijk) {
        a[*p] = *v as f32;
    }
    Ok(Volume::new(a.into_dyn(), tpl.grid.affine)?)
}

/// The analysis mask (template brain ∧ covered by every map) and the masked, smoothed maps;
/// `raw[condition][subject]`.
pub(crate) fn masked_maps(
    tpl: &Template,
    raw: &[Vec<Volume>],
    smoothing_fwhm_mm: f64,
    output_dir: &Path,
) -> Result<MaskedMaps> {
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let n = raw.first().map_or(0, Vec::len);
    // analysis mask: brain ∧ every map covered
    let mut mask = brain.clone();
    for group in raw {
        for v in group {
            ndarray::Zip::from(&mut mask)
                .and(v.frame(0))
                .for_each(|m, &x| *m &= x.is_finite() && x != 0.0);
        }
    }
    let n_vox = mask.iter().filter(|&&m| m).count();
    if n_vox < 100 {
        return Err(meta_err(
            output_dir,
            "mask",
            format!("only {n_vox} voxels are covered by every subject's CBF map"),
        ));
    }
    let mut data: Vec<Array2<f32>> = Vec::with_capacity(4);
    for group in raw {
        let mut a = Array2::<f32>::zeros((n, n_vox));
        for (i, v) in group.iter().enumerate() {
            let sm = if smoothing_fwhm_mm > 0.0 {
                cbflow_image::smooth_fwhm_masked(v, &mask, smoothing_fwhm_mm)?
            } else {
                v.clone()
            };
            let vals: Vec<f32> = sm
                .frame(0)
                .iter()
                .zip(mask.iter())
                .filter(|(_, m)| **m)
                .map(|(x, _)| *x)
                .collect();
            a.row_mut(i).assign(&ndarray::Array1::from(vals));
        }
        data.push(a);
    }
    let ijk: Vec<[usize; 3]> = mask
        .indexed_iter()
        .filter(|(_, m)| **m)
        .map(|((i, j, k), _)| [i, j, k])
        .collect();
    let geometry =
        MaskGeometry::from_ijk(tpl.grid.dims, ijk.clone()).map_err(|e| stats_err(output_dir, e))?;
    Ok(MaskedMaps {
        ijk,
        geometry,
        data,
    })
}

/// Path of the participant ROI table of one cell (`arm`, `time`) of a subject.
pub(crate) fn roi_table(
    output_dir: &Path,
    tpl: &Template,
    s: &SubjectData,
    arm: usize,
    time: usize,
) -> Result<PathBuf> {
    s.output(output_dir, tpl, arm, time, RunFile::RoiTable)
}

/// The mean CBF of every region of a participant ROI table: region → mean (rows without a
/// value are left out).
pub(crate) fn roi_means(path: &Path) -> Result<BTreeMap<String, f64>> {
    table_means(&Table::read_tsv(path)?)
}

/// [`roi_means`] of a table already read.
pub(crate) fn table_means(t: &Table) -> Result<BTreeMap<String, f64>> {
    let names = t.column("region")?;
    let vals = t.f64_column("mean_cbf")?;
    Ok(names
        .iter()
        .zip(vals)
        .filter_map(|(n, v)| v.map(|v| (n.to_string(), v)))
        .collect())
}

/// Global CBF of one subject's four cells (order of [`crate::StudyDesign::cells`]), from the `global` row of
/// its participant ROI tables.
pub(crate) fn global_cells(output_dir: &Path, tpl: &Template, s: &SubjectData) -> Result<[f64; 4]> {
    let mut out = [0.0; 4];
    for a in 0..2 {
        for t in 0..2 {
            out[2 * a + t] = global_cbf(&roi_table(output_dir, tpl, s, a, t)?)?;
        }
    }
    Ok(out)
}

/// Global CBF of one run: the `global` row of its participant ROI table at `table`.
pub(crate) fn global_cbf(table: &Path) -> Result<f64> {
    roi_means(table)?.get("global").copied().ok_or_else(|| {
        meta_err(
            table,
            "region",
            "no global row, which the global-cbf covariate needs",
        )
    })
}
