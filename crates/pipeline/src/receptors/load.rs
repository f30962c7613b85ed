//! Reading the receptor step's inputs: PET maps and parcellations from the resource directory
//! onto the template grid, the group maps, and the subjects' maps for the sign-flip null.

use std::path::{Path, PathBuf};

use cbflow_bids::Layout;
use cbflow_image::Interp;
use cbflow_receptor::GroupStat;
use cbflow_resources::{ReceptorEntry, Registry};
use ndarray::{Array2, Array3};
use rayon::prelude::*;

use super::options::ReceptorOptions;
use crate::catalogue::{GroupFile, StatMap};
use crate::group::design::{find_runs, read_design};
use crate::group::maps::{MaskedMaps, masked_maps, read_cell_maps};
use crate::template::Template;
use crate::{Error, Result};

/// A receptor map on the template grid.
#[derive(Debug, Clone)]
pub struct LoadedMap {
    /// Its registry entry.
    pub entry: ReceptorEntry,
    /// z-scored values (over `valid`), NaN elsewhere; template grid.
    pub z: Array3<f32>,
    /// Grey matter ∧ brain mask ∧ inside the map's support.
    pub valid: Array3<bool>,
    /// Fraction of the template's grey-matter voxels that are valid.
    pub coverage: f64,
}

pub(super) fn rec_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Step {
        path: path.to_path_buf(),
        step: "receptor correlation",
        message: e.to_string(),
    }
}

pub(super) fn resource(resources: &Path, rel: &str, what: &str) -> Result<PathBuf> {
    let p = resources.join(rel);
    if !p.is_file() {
        return Err(Error::Resource {
            path: p,
            message: format!(
                "missing {what}; {}, or point --resources or {} at a directory laid out like shared/data (pet/, atlases/)",
                cbflow_resources::fetch::fetch_hint(rel),
                crate::RESOURCES_ENV
            ),
        });
    }
    Ok(p)
}

/// Reads one registered map and puts it on the template grid
/// ([`cbflow_receptor::map_on_template`]: normalised trilinear interpolation, valid where the
/// template's grey matter and brain mask and the map's support meet, z-scored over them).
pub fn load_receptor_map(
    entry: &ReceptorEntry,
    resources: &Path,
    template: &Template,
) -> Result<LoadedMap> {
    let path = resource(
        resources,
        &entry.file,
        &format!("receptor map {}", entry.name),
    )?;
    let vol = cbflow_image::read(&path)?;
    let on = cbflow_receptor::map_on_template(
        &vol,
        &template.grid,
        template.gm.frame(0),
        template.brain_mask.frame(0),
    )
    .map_err(|e| match e {
        cbflow_receptor::Error::TooFew { got, .. } => Error::Resource {
            path: path.clone(),
            message: format!(
                "receptor map {} covers only {got} grey-matter voxels of the {} template",
                entry.name, template.name
            ),
        },
        e => rec_err(&path, e),
    })?;
    Ok(LoadedMap {
        entry: entry.clone(),
        coverage: on.coverage(),
        z: on.z,
        valid: on.valid,
    })
}

/// Reads a registered parcellation and puts it on the template grid (nearest neighbour);
/// returns the label image (0 = background).
pub fn load_parcellation(
    registry: &Registry,
    name: &str,
    resources: &Path,
    template: &Template,
) -> Result<Array3<i32>> {
    let entry = registry.parcellation(name).ok_or_else(|| Error::Resource {
        path: resources.to_path_buf(),
        message: format!(
            "unknown parcellation {name:?}; known: {}",
            registry
                .parcellations
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })?;
    let path = resource(resources, &entry.file, &format!("parcellation {name}"))?;
    let vol = cbflow_image::read(&path)?;
    let on = cbflow_image::resample_to_grid(&vol, &template.grid, Interp::Nearest)?;
    Ok(on
        .frame(0)
        .mapv(|v| if v.is_finite() { v.round() as i32 } else { 0 }))
}

/// Subjects' template-space CBF maps, smoothed as the group level does, and the group mask.
pub(super) struct SubjectMaps {
    /// [arm: placebo before, placebo during, naltrexone before, naltrexone during], each
    /// (subjects × V) over the voxels of `mask` in C order.
    pub(super) arms: Vec<Array2<f32>>,
    /// Flat C-order index of each column.
    pub(super) cols: Vec<usize>,
    /// The column of each flat C-order index (`usize::MAX` outside the mask).
    pub(super) col_of: Vec<usize>,
}

/// The group level's own loader ([`crate::group::maps`]): the same subjects, mask and
/// smoothing as the group test, so the sign-flip null cannot drift from it.
pub(super) fn load_subject_maps(opts: &ReceptorOptions) -> Result<SubjectMaps> {
    let layout = Layout::index(&opts.bids_dir)?;
    let (subjects, _excluded) = read_design(&layout, &opts.design)?;
    let tpl = &opts.template;
    let (subjects, missing) = find_runs(&opts.output_dir, tpl, &opts.design, subjects)?;
    for (sub, why) in missing {
        tracing::warn!("sub-{sub} left out of the sign-flip null: {why}");
    }
    if subjects.len() < 3 {
        return Err(Error::Metadata {
            path: opts.output_dir.clone(),
            field: "participants".into(),
            message: format!(
                "{} subjects with all four template-space CBF maps; the sign-flip null needs at least 3",
                subjects.len()
            ),
        });
    }
    // the group level's reader, one subject per task (its files are decompressed one after
    // another), the maps then in subject order as it returns them
    let per_subject: Vec<Result<Vec<Vec<cbflow_image::Volume>>>> = subjects
        .par_iter()
        .map(|s| read_cell_maps(&opts.output_dir, tpl, std::slice::from_ref(s)))
        .collect();
    let mut raw: Vec<Vec<cbflow_image::Volume>> = vec![Vec::new(); 4];
    for maps in per_subject {
        for (cell, v) in raw.iter_mut().zip(maps?) {
            cell.extend(v);
        }
    }
    let MaskedMaps { ijk, data, .. } =
        masked_maps(tpl, &raw, opts.smoothing_fwhm_mm, &opts.output_dir)?;
    let [_, ny, nz] = tpl.grid.dims;
    let cols: Vec<usize> = ijk.iter().map(|[i, j, k]| (i * ny + j) * nz + k).collect();
    let mut col_of = vec![usize::MAX; tpl.grid.dims.iter().product()];
    for (c, &idx) in cols.iter().enumerate() {
        col_of[idx] = c;
    }
    Ok(SubjectMaps {
        arms: data,
        cols,
        col_of,
    })
}

/// Path of a group statistic map written by the group level.
pub(super) fn group_map_path(opts: &ReceptorOptions, contrast: &str) -> Result<PathBuf> {
    let map = match opts.statistic {
        GroupStat::T => StatMap::T,
        GroupStat::Mean => StatMap::Effect,
    };
    let t = &opts.template;
    GroupFile::stat_map(&t.name, &t.res, contrast, map).path(&opts.output_dir)
}

pub(super) fn resources_path(opts: &ReceptorOptions, e: &ReceptorEntry) -> PathBuf {
    opts.resources.join(&e.file)
}
