//! The receptor step of the group level: correlates each contrast's group map with PET receptor
//! maps (registry of `cbflow-receptor`), with spatial-autocorrelation-aware null models, and
//! writes the receptor tables of `CONTRACTS.md`.
//!
//! * Maps come from the registry (`cbflow_resources::Registry::builtin()`); their files are
//!   resolved under the resource directory (the same one as the template: `--resources` or
//!   `CBFLOW_RESOURCES`).
//! * Each map is read (`cbflow_image::read`: byte order, scaling, LAS/RAS through the affine),
//!   resampled to the template grid (trilinear), restricted to grey matter (template GM
//!   probability ≥ [`GM_THRESHOLD`], inside the brain mask) and to the map's own support (see
//!   [`load_receptor_map`]), and z-scored over the voxels kept.
//! * Nulls: `variogram` (Burt et al. 2020: full method for parcels, sampled method for voxels),
//!   `juspace` (Dukart et al. 2021: spatially smoothed permutation null maps, mirrored across
//!   hemispheres, with the grey-matter partial correlation; parcels only), `signflip` (subjects'
//!   ΔCBF maps sign-flipped, group map recomputed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cbflow_bids::{DerivativeName, DerivativesWriter, Layout, Table};
use cbflow_image::{Interp, Volume};
use cbflow_receptor::{
    CorrelationMethod, CorrelationResult, DistanceMatrix, GroupStat, NullModel, SampledParams,
    SampledSurrogates, VariogramParams, VariogramSurrogates,
};
use cbflow_resources::{ReceptorEntry, Registry};
use cbflow_stats::CrossoverMaps;
use ndarray::{Array2, Array3, ArrayView3, Zip};
use serde_json::{Value, json};

use crate::group::design::{find_runs, read_design};
use crate::group::maps::{MaskedMaps, masked_maps, read_cell_maps};
use crate::group::{GroupContrast, StudyDesign, written_contrasts};
use crate::template::Template;
use crate::{Error, Result};

/// Grey-matter probability (template prior, 0–1) from which a voxel counts as grey matter.
pub const GM_THRESHOLD: f32 = 0.3;
/// Smallest interpolated support weight (share of the interpolation inside the map's support)
/// at which a resampled receptor value is used.
pub const SUPPORT_WEIGHT: f32 = 0.5;
/// Fewest voxels a parcel must have (inside grey matter and the map's support) to be used.
pub const MIN_PARCEL_VOXELS: usize = 5;
/// Spacing (mm) of the voxel lattice of the voxel-wise analysis (every `round(4 / voxel size)`-th
/// voxel along each axis: ~20 000 grey-matter voxels in MNI space, what the sampled variogram
/// method is built for).
pub const VOXEL_SPACING_MM: f64 = 4.0;

/// Where the correlation is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceptorLevel {
    /// Parcel means of a parcellation of the registry.
    Parcel,
    /// Grey-matter voxels on a [`VOXEL_SPACING_MM`] lattice.
    Voxel,
}

impl ReceptorLevel {
    /// Name in the tables (`parcel` | `voxel`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReceptorLevel::Parcel => "parcel",
            ReceptorLevel::Voxel => "voxel",
        }
    }

    /// Parses `parcel` | `voxel`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "parcel" => Some(Self::Parcel),
            "voxel" => Some(Self::Voxel),
            _ => None,
        }
    }
}

/// A null model of the receptor step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReceptorNull {
    /// Variogram-matching surrogates of the receptor map (Burt et al. 2020): the full method at
    /// parcel level, the sampled nearest-neighbour method at voxel level.
    Variogram,
    /// JuSpace's spatial permutation null maps with its grey-matter partial correlation (Dukart
    /// et al. 2021); parcel level only (`n/a` at voxel level).
    Juspace,
    /// Sign flips of the subjects' ΔCBF maps, group map recomputed (exact under the design).
    SignFlip,
}

impl ReceptorNull {
    /// Name in the tables (`variogram` | `juspace` | `signflip`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReceptorNull::Variogram => "variogram",
            ReceptorNull::Juspace => "juspace",
            ReceptorNull::SignFlip => "signflip",
        }
    }

    /// Parses a table name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "variogram" => Some(Self::Variogram),
            "juspace" => Some(Self::Juspace),
            "signflip" | "sign-flip" => Some(Self::SignFlip),
            _ => None,
        }
    }
}

/// Options of [`receptor_correlations`].
#[derive(Debug, Clone)]
pub struct ReceptorOptions {
    /// The input BIDS dataset (for the design in `sessions.tsv`).
    pub bids_dir: PathBuf,
    /// The derivatives directory: group maps at its root, template-space CBF maps of the
    /// participant level in `sub-*/ses-*/perf/`; the tables are written to its root.
    pub output_dir: PathBuf,
    /// The template the participant and group levels used.
    pub template: Template,
    /// Resource directory laid out like `shared/data` (registry paths are relative to it).
    pub resources: PathBuf,
    /// Registry names of the maps to test; empty = every registered map.
    pub maps: Vec<String>,
    /// Registry name of the parcellation (parcel level), e.g. `schaefer200tian`.
    pub parcellation: String,
    /// Parcel or voxel level.
    pub level: ReceptorLevel,
    /// Spearman (default) or Pearson.
    pub method: CorrelationMethod,
    /// Null models to compute (each gets `p_<null>` and `q_<null>` columns).
    pub nulls: Vec<ReceptorNull>,
    /// Draws of each null (surrogates, null maps, sign flips; sign flips are exhaustive when
    /// `2^subjects ≤ n_null`).
    pub n_null: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// The design (as the group level).
    pub design: StudyDesign,
    /// Multiple regression of the group map on all maps with dominance analysis (≤ 16 maps).
    pub dominance: bool,
    /// Group map: the t map (`GroupStat::T`, default) or the mean ΔCBF (`GroupStat::Mean`).
    pub statistic: GroupStat,
    /// Smoothing of the subjects' CBF maps for the sign-flip null (FWHM mm; use the group
    /// level's value, 6 mm by default).
    pub smoothing_fwhm_mm: f64,
}

impl ReceptorOptions {
    /// Defaults: all maps, `schaefer200tian`, parcel level, Spearman, all three nulls, 1 000
    /// draws, seed 1, t maps, 6 mm smoothing, no dominance analysis.
    pub fn new(
        bids_dir: PathBuf,
        output_dir: PathBuf,
        template: Template,
        resources: PathBuf,
    ) -> Self {
        Self {
            bids_dir,
            output_dir,
            template,
            resources,
            maps: Vec::new(),
            parcellation: "schaefer200tian".into(),
            level: ReceptorLevel::Parcel,
            method: CorrelationMethod::Spearman,
            nulls: vec![
                ReceptorNull::Variogram,
                ReceptorNull::Juspace,
                ReceptorNull::SignFlip,
            ],
            n_null: 1000,
            seed: 1,
            design: StudyDesign::default(),
            dominance: false,
            statistic: GroupStat::T,
            smoothing_fwhm_mm: 6.0,
        }
    }
}

/// The receptor results of one contrast.
#[derive(Debug, Clone)]
pub struct ContrastReceptors {
    /// Contrast name (`ketamineUnderPlacebo`, ...).
    pub contrast: String,
    /// One result per map, registry order; `p`/`p_fdr` keyed by the null models used
    /// (`Variogram`/`VariogramSampled`, `Juspace`, `SignFlip`).
    pub results: Vec<CorrelationResult>,
}

/// What [`receptor_correlations`] did.
#[derive(Debug, Clone)]
pub struct ReceptorSummary {
    /// Per contrast whose group map exists.
    pub contrasts: Vec<ContrastReceptors>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

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

fn rec_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Step {
        path: path.to_path_buf(),
        step: "receptor correlation",
        message: e.to_string(),
    }
}

fn resource(resources: &Path, rel: &str, what: &str) -> Result<PathBuf> {
    let p = resources.join(rel);
    if !p.is_file() {
        return Err(Error::Resource {
            path: p,
            message: format!(
                "missing {what}; point --resources or {} at a directory laid out like shared/data (pet/, atlases/)",
                crate::RESOURCES_ENV
            ),
        });
    }
    Ok(p)
}

/// Most frequent value among the voxels on the six faces of `a` (the image background).
fn border_mode(a: ArrayView3<f32>) -> f32 {
    let (nx, ny, nz) = a.dim();
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for ((i, j, k), &v) in a.indexed_iter() {
        if (i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz)
            && v.is_finite()
        {
            *counts.entry(v.to_bits()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or(0.0, |(b, _)| f32::from_bits(b))
}

/// Support of a map in its own grid: finite and above `max(background, 0)`, where the
/// background is the most frequent value on the image's faces. This drops the constant non-zero
/// backgrounds of rescaled maps (JuSpace's −0.003), the zero background of tightly masked maps
/// and the negative values outside the brain of several maps (receptor densities are positive).
pub fn map_support(a: ArrayView3<f32>) -> Array3<bool> {
    let b = border_mode(a).max(0.0);
    let max = a
        .iter()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let eps = 1e-6 * (max - b).abs().max(f32::MIN_POSITIVE);
    a.mapv(|v| v.is_finite() && v > b + eps)
}

/// Reads one registered map and puts it on the template grid by normalised trilinear
/// interpolation through the affines: `value = lin(v · s) / lin(s)` with `s` the map's
/// [`map_support`] (1 inside, 0 outside), so that no background value leaks into edge voxels;
/// valid = template GM probability ≥ [`GM_THRESHOLD`] ∧ template brain mask ∧
/// `lin(s)` ≥ [`SUPPORT_WEIGHT`]; values z-scored over the valid voxels (sample SD).
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
    let src = vol.frame(0);
    let support = map_support(src);
    let grid = &template.grid;
    // normalised interpolation: background voxels get weight 0, so no background value leaks
    // into an edge voxel; edge voxels keep the mean of their in-support neighbours
    let masked = Zip::from(&src)
        .and(&support)
        .map_collect(|&v, &s| if s { v } else { 0.0 });
    let num = cbflow_image::resample_to_grid(
        &Volume::new(masked.into_dyn(), vol.affine)?,
        grid,
        Interp::Linear,
    )?;
    let weight = cbflow_image::resample_to_grid(
        &Volume::new(
            support.mapv(|s| if s { 1.0f32 } else { 0.0 }).into_dyn(),
            vol.affine,
        )?,
        grid,
        Interp::Linear,
    )?;
    let values = Zip::from(num.frame(0))
        .and(weight.frame(0))
        .map_collect(|&n, &w| if w >= SUPPORT_WEIGHT { n / w } else { f32::NAN });
    let gm = template.gm.frame(0);
    let brain = template.brain_mask.frame(0);
    let gm_mask = Zip::from(&gm)
        .and(&brain)
        .map_collect(|&g, &b| g >= GM_THRESHOLD && b > 0.5);
    let valid = Zip::from(&gm_mask)
        .and(&values)
        .map_collect(|&m, &v| m && v.is_finite());
    let n_gm = gm_mask.iter().filter(|&&m| m).count();
    let n_valid = valid.iter().filter(|&&m| m).count();
    if n_valid < 100 {
        return Err(Error::Resource {
            path,
            message: format!(
                "receptor map {} covers only {n_valid} grey-matter voxels of the {} template",
                entry.name, template.name
            ),
        });
    }
    let vals: Vec<f64> = values
        .iter()
        .zip(valid.iter())
        .filter(|(_, m)| **m)
        .map(|(v, _)| f64::from(*v))
        .collect();
    let zs = cbflow_receptor::zscore(&vals).map_err(|e| rec_err(&path, e))?;
    let mut z = Array3::from_elem(valid.raw_dim(), f32::NAN);
    let mut it = zs.into_iter();
    Zip::from(&mut z).and(&valid).for_each(|o, &m| {
        if m {
            *o = it.next().expect("one z per valid voxel") as f32;
        }
    });
    Ok(LoadedMap {
        entry: entry.clone(),
        z,
        valid,
        coverage: n_valid as f64 / n_gm.max(1) as f64,
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

/// Stable 64-bit hash (FNV-1a) used to derive per-map, per-null seeds.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn sub_seed(seed: u64, map: &str, null: &str) -> u64 {
    seed ^ fnv(&format!("{map}/{null}"))
}

/// The points (parcels or lattice voxels) of one map: which voxels feed each point.
struct Points {
    /// Parcel labels (parcel level) — empty at voxel level.
    labels: Vec<i32>,
    /// For each point, the flat voxel indices (C order of the template grid) averaged.
    members: Vec<Vec<usize>>,
    /// World coordinates (mm) of each point (parcel centroid or voxel centre).
    coords: Vec<[f64; 3]>,
}

impl Points {
    fn n(&self) -> usize {
        self.members.len()
    }

    /// Mean of `a` (template grid, C-order flat) over each point's voxels.
    fn reduce(&self, a: &[f64]) -> Vec<f64> {
        self.members
            .iter()
            .map(|m| m.iter().map(|&i| a[i]).sum::<f64>() / m.len() as f64)
            .collect()
    }
}

fn flat_c(a: ArrayView3<f32>) -> Vec<f64> {
    a.iter().map(|&v| f64::from(v)).collect()
}

fn build_points(mask: &Array3<bool>, labels: Option<&Array3<i32>>, template: &Template) -> Points {
    let (nx, ny, nz) = mask.dim();
    let flat = |i: usize, j: usize, k: usize| (i * ny + j) * nz + k;
    let grid = &template.grid;
    match labels {
        Some(l) => {
            let mut acc: BTreeMap<i32, (Vec<usize>, [f64; 3])> = BTreeMap::new();
            for ((i, j, k), &m) in mask.indexed_iter() {
                let lab = l[(i, j, k)];
                if m && lab > 0 {
                    let e = acc.entry(lab).or_insert((Vec::new(), [0.0; 3]));
                    e.0.push(flat(i, j, k));
                    e.1[0] += i as f64;
                    e.1[1] += j as f64;
                    e.1[2] += k as f64;
                }
            }
            let mut p = Points {
                labels: vec![],
                members: vec![],
                coords: vec![],
            };
            for (lab, (m, s)) in acc {
                if m.len() >= MIN_PARCEL_VOXELS {
                    let c = m.len() as f64;
                    p.coords
                        .push(grid.voxel_to_world([s[0] / c, s[1] / c, s[2] / c]));
                    p.labels.push(lab);
                    p.members.push(m);
                }
            }
            p
        }
        None => {
            let vs = grid.voxel_size();
            let step = ((VOXEL_SPACING_MM / vs[0].min(vs[1]).min(vs[2])).round() as usize).max(1);
            let mut p = Points {
                labels: vec![],
                members: vec![],
                coords: vec![],
            };
            for i in (0..nx).step_by(step) {
                for j in (0..ny).step_by(step) {
                    for k in (0..nz).step_by(step) {
                        if mask[(i, j, k)] {
                            p.members.push(vec![flat(i, j, k)]);
                            p.coords
                                .push(grid.voxel_to_world([i as f64, j as f64, k as f64]));
                        }
                    }
                }
            }
            p
        }
    }
}

/// Subjects' template-space CBF maps, smoothed as the group level does, and the group mask.
struct SubjectMaps {
    /// [arm: placebo before, placebo during, naltrexone before, naltrexone during], each
    /// (subjects × V) over the voxels of `mask` in C order.
    arms: Vec<Array2<f32>>,
    /// Flat C-order index of each column.
    cols: Vec<usize>,
}

/// The group level's own loader ([`crate::group::maps`]): the same subjects, mask and
/// smoothing as the group test, so the sign-flip null cannot drift from it.
fn load_subject_maps(opts: &ReceptorOptions) -> Result<SubjectMaps> {
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
    let raw = read_cell_maps(&opts.output_dir, tpl, &subjects)?;
    let MaskedMaps { ijk, data, .. } =
        masked_maps(tpl, &raw, opts.smoothing_fwhm_mm, &opts.output_dir)?;
    let [_, ny, nz] = tpl.grid.dims;
    let cols = ijk.iter().map(|[i, j, k]| (i * ny + j) * nz + k).collect();
    Ok(SubjectMaps { arms: data, cols })
}

/// Path of a group statistic map written by the group level.
fn group_map_path(opts: &ReceptorOptions, contrast: &str) -> Result<PathBuf> {
    let stat = match opts.statistic {
        GroupStat::T => "t",
        GroupStat::Mean => "effect",
    };
    let rel = DerivativeName::group()
        .set("space", &opts.template.name)
        .set("res", &opts.template.res)
        .set("contrast", contrast)
        .set("stat", stat)
        .suffix("statmap")
        .extension(".nii.gz")
        .rel_path()?;
    Ok(opts.output_dir.join(rel))
}

/// Null distributions of one map that do not depend on the contrast.
struct MapNulls {
    variogram: Option<(NullModel, Array2<f64>)>,
    juspace: Option<Array2<f64>>,
}

fn fmt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "n/a".into()
    }
}

/// Correlates the group map of every contrast with the selected receptor maps, computes the
/// selected null models and Benjamini–Hochberg FDR across maps per null, and writes per contrast
/// `desc-receptors_contrast-<c>_table.tsv`, `desc-receptorNulls_contrast-<c>_table.tsv` (and
/// `desc-receptorDominance_contrast-<c>_table.tsv` when asked), each with a JSON sidecar, at the
/// root of `output_dir`.
///
/// The group map of a contrast is the group level's `stat-t` (or `stat-effect`) map; contrasts
/// without one are skipped (an error if none exists). Points: parcels of `parcellation` with ≥
/// [`MIN_PARCEL_VOXELS`] valid voxels, or lattice voxels; valid = group mask (group map finite
/// and non-zero) ∧ the map's [`LoadedMap::valid`]. The variogram and JuSpace nulls are of the
/// receptor map (computed once per map, shared by the contrasts); the sign-flip null recomputes
/// the group map (one-sample t or mean of the subjects' smoothed ΔCBF maps, without the
/// sequence regressor of the group GLM) for every sign vector; its p-value is the exact
/// sign-flip p of that recomputed map's correlation. With the JuSpace null the p-value is that
/// of the partial correlation controlling for parcel grey-matter probability (the partial r is
/// in the sidecar). Deterministic for a given seed at any thread count.
pub fn receptor_correlations(opts: &ReceptorOptions) -> Result<ReceptorSummary> {
    let out = &opts.output_dir;
    let registry = Registry::builtin().map_err(|e| rec_err(out, e))?;
    let entries = registry.select(&opts.maps).map_err(|e| rec_err(out, e))?;
    if opts.n_null == 0 && !opts.nulls.is_empty() {
        return Err(Error::Metadata {
            path: out.clone(),
            field: "n_null".into(),
            message: "need at least one null draw".into(),
        });
    }
    let tpl = &opts.template;
    // group maps
    let mut group: Vec<(GroupContrast, Vec<f64>, PathBuf)> = Vec::new();
    let mut group_mask = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    for gc in written_contrasts(out)? {
        let p = group_map_path(opts, &gc.name)?;
        if !p.exists() {
            continue;
        }
        let v = cbflow_image::read(&p)?;
        if v.grid().dims != tpl.grid.dims {
            return Err(Error::Metadata {
                path: p,
                field: "dim".into(),
                message: format!("not on the {} grid", tpl.name),
            });
        }
        Zip::from(&mut group_mask)
            .and(v.frame(0))
            .for_each(|m, &x| *m &= x.is_finite() && x != 0.0);
        group.push((gc, flat_c(v.frame(0)), p));
    }
    if group.is_empty() {
        return Err(Error::Metadata {
            path: out.clone(),
            field: "group maps".into(),
            message: format!(
                "no group statistic map of a crossover contrast found (e.g. {}); run the group level first",
                group_map_path(opts, "ketamineUnderPlacebo")?.display()
            ),
        });
    }
    let labels = match opts.level {
        ReceptorLevel::Parcel => Some(load_parcellation(
            &registry,
            &opts.parcellation,
            &opts.resources,
            tpl,
        )?),
        ReceptorLevel::Voxel => None,
    };
    let gm_flat = flat_c(tpl.gm.frame(0));
    let signflip = opts.nulls.contains(&ReceptorNull::SignFlip);
    let subjects = if signflip {
        Some(load_subject_maps(opts)?)
    } else {
        None
    };
    // per map: points, receptor vector, contrast-independent nulls
    struct Prepared {
        map: LoadedMap,
        points: Points,
        receptor: Vec<f64>,
        gm: Vec<f64>,
        nulls: MapNulls,
        fit: Option<Value>,
    }
    let mut prepared = Vec::with_capacity(entries.len());
    for entry in &entries {
        let t0 = std::time::Instant::now();
        let map = load_receptor_map(entry, &opts.resources, tpl)?;
        let mut mask = map.valid.clone();
        Zip::from(&mut mask)
            .and(&group_mask)
            .for_each(|m, &g| *m &= g);
        if let Some(s) = &subjects {
            // sign-flip points must be covered by every subject's map
            let mut covered = Array3::from_elem(mask.raw_dim(), false);
            let flat = covered.as_slice_mut().expect("standard layout");
            for &c in &s.cols {
                flat[c] = true;
            }
            Zip::from(&mut mask).and(&covered).for_each(|m, &c| *m &= c);
        }
        let points = build_points(&mask, labels.as_ref(), tpl);
        if points.n() < 10 {
            return Err(Error::Metadata {
                path: out.clone(),
                field: entry.name.clone(),
                message: format!(
                    "only {} {}s are covered by receptor map {} and the group mask",
                    points.n(),
                    opts.level.as_str(),
                    entry.name
                ),
            });
        }
        let receptor = points.reduce(&flat_c(map.z.view()));
        let gm = points.reduce(&gm_flat);
        let mut nulls = MapNulls {
            variogram: None,
            juspace: None,
        };
        let mut fit = None;
        let path = resources_path(opts, entry);
        if opts.nulls.contains(&ReceptorNull::Variogram) {
            let seed = sub_seed(opts.seed, &entry.name, "variogram");
            match opts.level {
                ReceptorLevel::Parcel => {
                    let d = DistanceMatrix::from_coordinates(&points.coords)
                        .map_err(|e| rec_err(&path, e))?;
                    let g = VariogramSurrogates::new(&receptor, &d, VariogramParams::default())
                        .map_err(|e| rec_err(&path, e))?;
                    let s = g.generate(opts.n_null, seed);
                    let f = g
                        .fit_error(s.slice(ndarray::s![..s.nrows().min(100), ..]))
                        .map_err(|e| rec_err(&path, e))?;
                    fit = Some(serde_json::to_value(&f).unwrap_or(Value::Null));
                    nulls.variogram = Some((NullModel::Variogram, s));
                }
                ReceptorLevel::Voxel => {
                    let n = receptor.len();
                    let params = SampledParams {
                        knn: SampledParams::default().knn.min(n - 1),
                        ns: SampledParams::default().ns.min(n),
                        ..SampledParams::default()
                    };
                    let g = SampledSurrogates::new(&receptor, &points.coords, params)
                        .map_err(|e| rec_err(&path, e))?;
                    nulls.variogram =
                        Some((NullModel::VariogramSampled, g.generate(opts.n_null, seed)));
                }
            }
        }
        if opts.nulls.contains(&ReceptorNull::Juspace) && opts.level == ReceptorLevel::Parcel {
            let seed = sub_seed(opts.seed, &entry.name, "juspace");
            let mirror = cbflow_receptor::mirror_by_centroids(&points.coords)
                .map_err(|e| rec_err(&path, e))?;
            nulls.juspace = Some(
                cbflow_receptor::juspace_null_maps(
                    &receptor,
                    &points.coords,
                    Some(&mirror),
                    opts.n_null,
                    seed,
                )
                .map_err(|e| rec_err(&path, e))?,
            );
        }
        tracing::info!(
            "receptor map {}: {} {}s, coverage {:.2}, nulls in {:.1} s",
            entry.name,
            points.n(),
            opts.level.as_str(),
            map.coverage,
            t0.elapsed().as_secs_f64()
        );
        prepared.push(Prepared {
            map,
            points,
            receptor,
            gm,
            nulls,
            fit,
        });
    }

    let writer = DerivativesWriter::create(out, crate::generated_by(), &[])?;
    let mut files = Vec::new();
    let mut summary = Vec::new();
    let space = match opts.level {
        ReceptorLevel::Parcel => opts.parcellation.clone(),
        ReceptorLevel::Voxel => "voxel".to_string(),
    };
    for (gc, gflat, gpath) in &group {
        let (cname, contrast) = (gc.name.as_str(), gc.contrast);
        // subjects' ΔCBF for this contrast, over the group-mask columns
        let diff = match &subjects {
            Some(s) => {
                let maps = CrossoverMaps {
                    placebo_before: s.arms[0].view(),
                    placebo_during: s.arms[1].view(),
                    naltrexone_before: s.arms[2].view(),
                    naltrexone_during: s.arms[3].view(),
                };
                Some(
                    cbflow_stats::crossover_difference(&maps, contrast).map_err(|e| {
                        Error::Step {
                            path: gpath.clone(),
                            step: "receptor correlation",
                            message: e.to_string(),
                        }
                    })?,
                )
            }
            None => None,
        };
        let mut results = Vec::with_capacity(prepared.len());
        let mut extra = serde_json::Map::new();
        for p in &prepared {
            let e = &p.map.entry;
            let path = resources_path(opts, e);
            let g = p.points.reduce(gflat);
            let r = cbflow_receptor::correlate(&g, &p.receptor, opts.method)
                .map_err(|err| rec_err(gpath, err))?;
            let mut res = CorrelationResult::new(
                cname,
                e.name.clone(),
                e.target.clone(),
                space.clone(),
                opts.method,
                r,
                p.points.n(),
            );
            let mut info = serde_json::Map::new();
            info.insert("coverage".into(), json!(p.map.coverage));
            if let Some((model, s)) = &p.nulls.variogram {
                let null = cbflow_receptor::null_correlations(&g, s.view(), opts.method, None)
                    .map_err(|err| rec_err(&path, err))?;
                res.add_null(*model, null);
            }
            if let Some(nm) = &p.nulls.juspace {
                let rp = cbflow_receptor::partial_correlation(&g, &p.receptor, &p.gm, opts.method)
                    .map_err(|err| rec_err(&path, err))?;
                let null =
                    cbflow_receptor::null_correlations(&g, nm.view(), opts.method, Some(&p.gm))
                        .map_err(|err| rec_err(&path, err))?;
                res.add_p(
                    NullModel::Juspace,
                    cbflow_receptor::null_p_value(rp, &null),
                    null,
                );
                info.insert("juspace_partial_r".into(), json!(rp));
            }
            if let (Some(d), Some(s)) = (&diff, &subjects) {
                // subjects × points
                let mut col_of = vec![usize::MAX; gflat.len()];
                for (c, &idx) in s.cols.iter().enumerate() {
                    col_of[idx] = c;
                }
                let n_sub = d.nrows();
                let mut dp = Array2::<f64>::zeros((n_sub, p.points.n()));
                for (j, m) in p.points.members.iter().enumerate() {
                    for i in 0..n_sub {
                        let sum: f64 = m.iter().map(|&v| f64::from(d[(i, col_of[v])])).sum();
                        dp[(i, j)] = sum / m.len() as f64;
                    }
                }
                let rec = Array2::from_shape_vec((1, p.receptor.len()), p.receptor.clone())
                    .expect("one row");
                let sf = cbflow_receptor::sign_flip_null(
                    dp.view(),
                    rec.view(),
                    opts.method,
                    opts.statistic,
                    opts.n_null,
                    sub_seed(opts.seed, &e.name, "signflip"),
                )
                .map_err(|err| rec_err(gpath, err))?;
                res.add_p(NullModel::SignFlip, sf.p[0], sf.null[0].clone());
                info.insert("signflip_r".into(), json!(sf.r[0]));
                info.insert("signflip_exhaustive".into(), json!(sf.exhaustive));
                info.insert("signflip_subjects".into(), json!(n_sub));
            }
            if let Some(f) = &p.fit {
                info.insert("variogram_fit".into(), f.clone());
            }
            extra.insert(e.name.clone(), Value::Object(info));
            results.push(res);
        }
        cbflow_receptor::apply_fdr(&mut results).map_err(|err| rec_err(gpath, err))?;
        files.extend(write_tables(
            &writer,
            opts,
            cname,
            &results,
            &prepared.iter().map(|p| &p.map.entry).collect::<Vec<_>>(),
            extra,
        )?);
        if opts.dominance {
            files.extend(write_dominance(
                &writer,
                opts,
                cname,
                gflat,
                &prepared
                    .iter()
                    .map(|p| (&p.map, &p.points))
                    .collect::<Vec<_>>(),
                labels.as_ref(),
                &group_mask,
            )?);
        }
        summary.push(ContrastReceptors {
            contrast: cname.to_string(),
            results,
        });
    }
    Ok(ReceptorSummary {
        contrasts: summary,
        files,
    })
}

fn resources_path(opts: &ReceptorOptions, e: &ReceptorEntry) -> PathBuf {
    opts.resources.join(&e.file)
}

fn null_model_of(n: ReceptorNull, level: ReceptorLevel) -> NullModel {
    match (n, level) {
        (ReceptorNull::Variogram, ReceptorLevel::Parcel) => NullModel::Variogram,
        (ReceptorNull::Variogram, ReceptorLevel::Voxel) => NullModel::VariogramSampled,
        (ReceptorNull::Juspace, _) => NullModel::Juspace,
        (ReceptorNull::SignFlip, _) => NullModel::SignFlip,
    }
}

fn write_tables(
    w: &DerivativesWriter,
    opts: &ReceptorOptions,
    contrast: &str,
    results: &[CorrelationResult],
    entries: &[&ReceptorEntry],
    extra: serde_json::Map<String, Value>,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let parcellation = match opts.level {
        ReceptorLevel::Parcel => opts.parcellation.as_str(),
        ReceptorLevel::Voxel => "n/a",
    };
    let mut cols: Vec<String> = [
        "map",
        "target",
        "tracer",
        "method",
        "level",
        "parcellation",
        "n",
        "r",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in &opts.nulls {
        cols.push(format!("p_{}", n.as_str()));
        cols.push(format!("q_{}", n.as_str()));
    }
    let method = match opts.method {
        CorrelationMethod::Spearman => "spearman",
        CorrelationMethod::Pearson => "pearson",
    };
    let rows: Vec<Vec<String>> = results
        .iter()
        .zip(entries)
        .map(|(r, e)| {
            let mut row = vec![
                r.map.clone(),
                e.target.clone(),
                e.tracer.clone(),
                method.into(),
                opts.level.as_str().into(),
                parcellation.into(),
                r.n.to_string(),
                fmt(r.r),
            ];
            for n in &opts.nulls {
                let m = null_model_of(*n, opts.level);
                row.push(fmt(r.p.get(&m).copied().unwrap_or(f64::NAN)));
                row.push(fmt(r.p_fdr.get(&m).copied().unwrap_or(f64::NAN)));
            }
            row
        })
        .collect();
    let rel = DerivativeName::group()
        .set("desc", "receptors")
        .set("contrast", contrast)
        .suffix("table")
        .extension(".tsv")
        .rel_path()?;
    files.push(w.write_tsv(&rel, &Table::new(cols.clone(), rows)?)?);
    let null_desc: serde_json::Map<String, Value> = opts
        .nulls
        .iter()
        .map(|n| {
            let d = match (n, opts.level) {
                (ReceptorNull::Variogram, ReceptorLevel::Parcel) => "variogram-matching surrogates of the receptor map, full method (Burt et al. 2020, NeuroImage 220:117038; BrainSMASH Base), pv = 90, rank-matched; p = (1 + #{|r_null| >= |r|}) / (1 + N)",
                (ReceptorNull::Variogram, ReceptorLevel::Voxel) => "variogram-matching surrogates of the receptor map, sampled nearest-neighbour method (Burt et al. 2020; BrainSMASH Sampled), knn = 1000, ns = 500, rank-matched; p = (1 + #{|r_null| >= |r|}) / (1 + N)",
                (ReceptorNull::Juspace, ReceptorLevel::Parcel) => "JuSpace spatial permutation (Dukart et al. 2021, Hum Brain Mapp 42:555): permuted, Gaussian-smoothed receptor null maps matching the distance-difference correlation, mirrored across hemispheres; correlations are partial correlations controlling for parcel grey-matter probability (r in JuspacePartialR); p = (1 + #{|r_null| >= |r|}) / (1 + N)",
                (ReceptorNull::Juspace, ReceptorLevel::Voxel) => "not available at voxel level (JuSpace's null maps are parcel-wise): n/a",
                (ReceptorNull::SignFlip, _) => "sign flips of the subjects' smoothed ΔCBF maps of the contrast; group map (one-sample t or mean, without the sequence regressor) and its correlation recomputed per sign vector; exhaustive when 2^subjects <= N; p of the recomputed map's correlation (SignFlipR)",
            };
            (n.as_str().to_string(), json!(d))
        })
        .collect();
    let mut columns = serde_json::Map::new();
    for (c, d) in [
        ("map", "receptor registry name"),
        ("target", "molecular target"),
        ("tracer", "radiotracer"),
        ("method", "correlation coefficient (spearman | pearson)"),
        ("level", "parcel | voxel"),
        (
            "parcellation",
            "registry name of the parcellation, n/a at voxel level",
        ),
        ("n", "number of parcels or voxels correlated"),
        (
            "r",
            "correlation of the group map with the z-scored receptor map",
        ),
    ] {
        columns.insert(c.into(), json!({"Description": d}));
    }
    for n in &opts.nulls {
        columns.insert(
            format!("p_{}", n.as_str()),
            json!({"Description": format!("two-sided p-value under the {} null", n.as_str())}),
        );
        columns.insert(
            format!("q_{}", n.as_str()),
            json!({"Description": format!("Benjamini-Hochberg FDR-adjusted p_{} across the maps of this table", n.as_str())}),
        );
    }
    let mut per_map = serde_json::Map::new();
    for (name, v) in extra {
        let mut o = serde_json::Map::new();
        if let Value::Object(m) = v {
            for (k, val) in m {
                let key = match k.as_str() {
                    "coverage" => "GreyMatterCoverage",
                    "juspace_partial_r" => "JuspacePartialR",
                    "signflip_r" => "SignFlipR",
                    "signflip_exhaustive" => "SignFlipExhaustive",
                    "signflip_subjects" => "SignFlipSubjects",
                    "variogram_fit" => "VariogramFit",
                    other => other,
                };
                o.insert(key.into(), val);
            }
        }
        per_map.insert(name, Value::Object(o));
    }
    let side = json!({
        "Description": format!("correlation of the group map of contrast {contrast} with PET receptor maps"),
        "Contrast": contrast,
        "GroupMap": match opts.statistic { GroupStat::T => "t statistic (stat-t statmap)", GroupStat::Mean => "mean CBF difference (stat-effect statmap)" },
        "Level": opts.level.as_str(),
        "Parcellation": parcellation,
        "Method": method,
        "NullModels": Value::Object(null_desc),
        "NullDraws": opts.n_null,
        "Seed": opts.seed,
        "GreyMatterThreshold": GM_THRESHOLD,
        "MinParcelVoxels": MIN_PARCEL_VOXELS,
        "VoxelSpacingMM": VOXEL_SPACING_MM,
        "SmoothingFWHM": opts.smoothing_fwhm_mm,
        "ReceptorMapPreparation": "read through the NIfTI affine; support = finite and above max(background, 0) (background = most frequent value on the image faces); normalised trilinear resampling to the template grid, lin(value x support) / lin(support), used where lin(support) >= 0.5; voxels kept where the template GM probability >= GreyMatterThreshold, inside the brain mask and the group mask; z-scored",
        "FDR": "Benjamini-Hochberg across the maps of this table, per null model",
        "Maps": Value::Object(per_map),
        "Columns": Value::Object(columns),
    });
    files.push(w.write_json(&DerivativesWriter::sidecar_path(&rel), &side)?);
    // null distributions
    let mut rows = Vec::new();
    for r in results {
        for n in &opts.nulls {
            let m = null_model_of(*n, opts.level);
            if let Some(v) = r.null.get(&m) {
                for (i, x) in v.iter().enumerate() {
                    rows.push(vec![
                        r.map.clone(),
                        n.as_str().into(),
                        i.to_string(),
                        fmt(*x),
                    ]);
                }
            }
        }
    }
    let rel = DerivativeName::group()
        .set("desc", "receptorNulls")
        .set("contrast", contrast)
        .suffix("table")
        .extension(".tsv")
        .rel_path()?;
    files.push(
        w.write_tsv(
            &rel,
            &Table::new(
                ["map", "null", "draw", "r"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                rows,
            )?,
        )?,
    );
    files.push(w.write_json(
        &DerivativesWriter::sidecar_path(&rel),
        &json!({
            "Description": format!("null distributions of the receptor correlations of contrast {contrast} (long format), for the report's figure"),
            "Contrast": contrast,
            "Columns": {
                "map": {"Description": "receptor registry name"},
                "null": {"Description": "null model (variogram | juspace | signflip)"},
                "draw": {"Description": "0-based index of the surrogate, null map or sign vector"},
                "r": {"Description": "correlation under this draw (JuSpace: partial correlation)"},
            },
        }),
    )?);
    Ok(files)
}

/// Multiple regression of the group map on all selected receptor maps over the points every map
/// covers, with dominance analysis (Hansen et al. 2022).
fn write_dominance(
    w: &DerivativesWriter,
    opts: &ReceptorOptions,
    contrast: &str,
    gflat: &[f64],
    maps: &[(&LoadedMap, &Points)],
    labels: Option<&Array3<i32>>,
    group_mask: &Array3<bool>,
) -> Result<Vec<PathBuf>> {
    let out = &opts.output_dir;
    if maps.len() > cbflow_receptor::MAX_PREDICTORS || maps.is_empty() {
        tracing::warn!(
            "dominance analysis skipped: {} maps (1 to {} allowed)",
            maps.len(),
            cbflow_receptor::MAX_PREDICTORS
        );
        return Ok(vec![]);
    }
    let mut mask = group_mask.clone();
    for (m, _) in maps {
        Zip::from(&mut mask).and(&m.valid).for_each(|a, &b| *a &= b);
    }
    let points = build_points(&mask, labels, &opts.template);
    let y = points.reduce(gflat);
    let mut x = Array2::<f64>::zeros((points.n(), maps.len()));
    for (j, (m, _)) in maps.iter().enumerate() {
        let v = points.reduce(&flat_c(m.z.view()));
        for (i, val) in v.into_iter().enumerate() {
            x[(i, j)] = val;
        }
    }
    let d = cbflow_receptor::dominance_analysis(&y, x.view()).map_err(|e| rec_err(out, e))?;
    let rows = maps
        .iter()
        .enumerate()
        .map(|(j, (m, _))| {
            vec![
                m.entry.name.clone(),
                fmt(d.beta_std[j]),
                fmt(d.total[j]),
                fmt(d.relative[j]),
            ]
        })
        .collect();
    let rel = DerivativeName::group()
        .set("desc", "receptorDominance")
        .set("contrast", contrast)
        .suffix("table")
        .extension(".tsv")
        .rel_path()?;
    let mut files = vec![
        w.write_tsv(
            &rel,
            &Table::new(
                ["map", "beta_std", "dominance_total", "dominance_relative"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                rows,
            )?,
        )?,
    ];
    files.push(w.write_json(
        &DerivativesWriter::sidecar_path(&rel),
        &json!({
            "Description": format!("multiple regression of the group map of {contrast} on all receptor maps (z-scored) with dominance analysis (Budescu 1993; Azen & Budescu 2003; Hansen et al. 2022)"),
            "R2": d.r2,
            "R2Adjusted": d.r2_adjusted,
            "N": points.n(),
            "Level": opts.level.as_str(),
            "ConditionalDominance": d.conditional,
            "Columns": {
                "beta_std": {"Description": "standardised regression coefficient of the full model"},
                "dominance_total": {"Description": "mean R² increment over all subset sizes; sums to R2"},
                "dominance_relative": {"Description": "dominance_total / R2"},
            },
        }),
    )?);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbflow_resources::Role;

    fn data_dir() -> PathBuf {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        assert!(
            p.join("pet").is_dir() && p.join("templates").is_dir(),
            "test data not found at {} (expected the shared data folder with pet/, templates/, atlases/)",
            p.display()
        );
        p
    }

    fn entry(name: &str, file: &str) -> ReceptorEntry {
        ReceptorEntry {
            name: name.into(),
            target: name.into(),
            tracer: "t".into(),
            file: file.into(),
            citation: "c".into(),
            licence: "l".into(),
            role: Role::Receptor,
            notes: None,
        }
    }

    /// Pearson correlation of `a` with `b` shifted by `d` voxels (b[i + d]) over voxels valid
    /// in both.
    fn shifted_r(a: &LoadedMap, b: &LoadedMap, d: [isize; 3], mirror: bool) -> f64 {
        let (nx, ny, nz) = a.z.dim();
        let (mut x, mut y) = (vec![], vec![]);
        for ((i, j, k), &va) in a.z.indexed_iter() {
            if !a.valid[(i, j, k)] {
                continue;
            }
            let ii = if mirror {
                nx as isize - 1 - i as isize
            } else {
                i as isize
            } + d[0];
            let jj = j as isize + d[1];
            let kk = k as isize + d[2];
            if ii < 0
                || jj < 0
                || kk < 0
                || ii >= nx as isize
                || jj >= ny as isize
                || kk >= nz as isize
            {
                continue;
            }
            let q = (ii as usize, jj as usize, kk as usize);
            if b.valid[q] {
                x.push(f64::from(va));
                y.push(f64::from(b.z[q]));
            }
        }
        cbflow_receptor::pearson(&x, &y).unwrap()
    }

    /// Each awkward kind of file (1 / 1.5 / 2 / 3 mm grids, LAS and RAS storage, big-endian
    /// float32, int16/int32 with scl_slope, constant non-zero and negative backgrounds) read and
    /// resampled to the MNI 2 mm grid agrees with a map of the same target from another grid and
    /// file, best at zero shift: a misplacement by one voxel (2 mm) along any axis lowers the
    /// agreement.
    #[test]
    fn maps_of_every_kind_are_placed_right() {
        let root = data_dir();
        let tpl = Template::mni(&root).unwrap();
        // (map, reference of the same target, minimum r, same data in another file?)
        let pairs = [
            // 1.5 mm LAS int16 + scl_slope vs its JuSpace 3 mm int32 copy (same data)
            (
                "pet/hansen_receptors/MU_carfentanil_hc39_turtonen.nii.gz",
                "pet/juspace_v1.5/MU_carfentanil_hc39_turtonen.nii.gz",
                0.99,
                true,
            ),
            // 2 mm LAS float32, negative background vs its 3 mm JuSpace copy (same data)
            (
                "pet/opioid_shokrikojori2022/KOR.nii.gz",
                "pet/juspace_v1.5/KappaOp_LY2795050_hc10_ShokriKojori.nii.gz",
                0.93,
                true,
            ),
            // 1 mm RAS (MNI152NLin2009cAsym grid), negative background vs 3 mm JuSpace version
            (
                "pet/hansen_receptorvar/NMDA_ge179_hc29_galovic_mean.nii.gz",
                "pet/juspace_v1.5/NMDA_ge179_29hc_galovic2021.nii.gz",
                0.7,
                false,
            ),
            // 1 mm LAS GABA-A a5 component vs 2 mm LAS total Ro15-4513 (different cohorts and components)
            (
                "pet/hansen_receptorvar/GABAa5_ro154513_hc23_chang_mean.nii.gz",
                "pet/lukow2022_ro154513/GABAa5_Ro15_10hc_lukow.nii.gz",
                0.55,
                false,
            ),
            // big-endian float32, tightly masked, vs int32 with -0.003 background (other cohort)
            (
                "pet/juspace_v1.5/GABAa_FLUMAZENIL_c11.nii.gz",
                "pet/juspace_v1.5/GABAa_flumazenil_hc16_norgaard.nii.gz",
                0.7,
                false,
            ),
            // 2 mm MOR (N = 10) vs 3 mm MOR (N = 204)
            (
                "pet/opioid_shokrikojori2022/MOR.nii.gz",
                "pet/juspace_v1.5/MU_CARFENTANIL_c11.nii.gz",
                0.7,
                false,
            ),
        ];
        for (a, b, min_r, same_data) in pairs {
            let ma = load_receptor_map(&entry("a", a), &root, &tpl).unwrap();
            let mb = load_receptor_map(&entry("b", b), &root, &tpl).unwrap();
            // the 1 mm NMDA map lies on the MNI152NLin2009cAsym grid and misses some cortex edge
            assert!(
                ma.coverage > 0.7 && mb.coverage > 0.7,
                "{a}: coverage {} / {}",
                ma.coverage,
                mb.coverage
            );
            let r0 = shifted_r(&ma, &mb, [0, 0, 0], false);
            let rm = shifted_r(&ma, &mb, [0, 0, 0], true);
            // same data: one voxel (2 mm) off is worse; different data: two voxels (4 mm)
            let step = if same_data { 1 } else { 2 };
            let mut shifts = vec![];
            for ax in 0..3 {
                for s in [-step, step] {
                    let mut d = [0isize; 3];
                    d[ax] = s;
                    shifts.push(shifted_r(&ma, &mb, d, false));
                }
            }
            eprintln!(
                "{a}: r {r0:.4}, mirrored {rm:.4}, shifted by {step} {shifts:.4?}, coverage {:.3}",
                ma.coverage
            );
            assert!(r0 >= min_r, "{a} vs {b}: r = {r0}");
            assert!(
                shifts.iter().all(|&s| s < r0),
                "{a}: a shift fits better: {shifts:?} vs {r0}"
            );
            if same_data {
                // left and right are not swapped (the maps are not symmetric enough to hide it)
                assert!(r0 - rm > 0.02, "{a}: mirrored {rm} vs {r0}");
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod mor_tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn data_dir() -> PathBuf {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        assert!(
            p.join("pet").is_dir(),
            "test data not found at {} (expected the shared data folder with pet/, atlases/)",
            p.display()
        );
        p
    }

    /// Writes a minimal crossover dataset: `sessions.tsv` per subject (BIDS side) and the
    /// participant level's template-space CBF maps (derivatives side), ΔCBF under placebo =
    /// `amplitude × effect × (1 + 0.5 N(0,1))` plus noise; then the one-sample t map of the
    /// smoothed placebo ΔCBF as the group level's `ketamineUnderPlacebo` t map.
    pub(crate) fn write_study(
        bids: &Path,
        out: &Path,
        tpl: &Template,
        effect: &Array3<f32>,
        n_sub: usize,
        amplitude: f32,
        seed: u64,
    ) {
        std::fs::create_dir_all(bids).unwrap();
        std::fs::write(
            bids.join("dataset_description.json"),
            r#"{"Name": "t", "BIDSVersion": "1.10.0"}"#,
        )
        .unwrap();
        let mut part = String::from("participant_id\n");
        let base = Zip::from(tpl.gm.frame(0))
            .and(tpl.wm.frame(0))
            .map_collect(|&g, &w| 60.0 * g + 22.0 * w);
        let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
        let noise = Normal::new(0.0f32, 4.0).unwrap();
        let std = Normal::new(0.0f32, 1.0).unwrap();
        for s in 0..n_sub {
            let sub = format!("{:02}", s + 1);
            part.push_str(&format!("sub-{sub}\n"));
            let dir = bids.join(format!("sub-{sub}"));
            std::fs::create_dir_all(&dir).unwrap();
            let (pl, nl) = if s % 2 == 0 { (1, 2) } else { (2, 1) };
            std::fs::write(
                dir.join(format!("sub-{sub}_sessions.tsv")),
                format!("session_id\tpretreatment\tperiod\nses-{pl}\tplacebo\t{pl}\nses-{nl}\tnaltrexone\t{nl}\n"),
            )
            .unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(s as u64);
            let scale = 1.0 + 0.5 * std.sample(&mut rng);
            for (ses, gain) in [(pl, 1.0f32), (nl, 0.3)] {
                for run in ["1", "2"] {
                    let mut a = base.clone();
                    Zip::from(&mut a)
                        .and(effect)
                        .and(&brain)
                        .for_each(|v, &e, &b| {
                            if !b {
                                *v = 0.0;
                                return;
                            }
                            if run == "2" {
                                *v += amplitude * gain * scale * e;
                            }
                            *v += noise.sample(&mut rng);
                        });
                    let p = crate::outputs::template_output_run(
                        out,
                        &sub,
                        &ses.to_string(),
                        run,
                        tpl,
                        None,
                        ".nii.gz",
                    )
                    .unwrap();
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    cbflow_image::write(
                        &p,
                        &Volume::new(a.into_dyn(), tpl.grid.affine).unwrap(),
                        cbflow_image::DataType::Float32,
                    )
                    .unwrap();
                }
            }
        }
        std::fs::write(bids.join("participants.tsv"), part).unwrap();
        // group t map of ketamineUnderPlacebo (one-sample t of the smoothed placebo ΔCBF)
        let mut opts = ReceptorOptions::new(
            bids.to_path_buf(),
            out.to_path_buf(),
            tpl.clone(),
            PathBuf::new(),
        );
        opts.smoothing_fwhm_mm = 6.0;
        let sm = load_subject_maps(&opts).unwrap();
        let d = &sm.arms[1] - &sm.arms[0];
        let dd = d.mapv(f64::from);
        let t = cbflow_receptor::group_map(dd.view(), GroupStat::T).unwrap();
        let mut img = Array3::<f32>::zeros(brain.raw_dim());
        let flat = img.as_slice_mut().unwrap();
        for (c, &idx) in sm.cols.iter().enumerate() {
            flat[idx] = t[c] as f32;
        }
        let p = group_map_path(&opts, "ketamineUnderPlacebo").unwrap();
        cbflow_image::write(
            &p,
            &Volume::new(img.into_dyn(), tpl.grid.affine).unwrap(),
            cbflow_image::DataType::Float32,
        )
        .unwrap();
        // the contrast table, from which the receptor step rebuilds the contrast
        std::fs::write(
            out.join("desc-contrasts_table.tsv"),
            "contrast\tdescription\ttail\tplacebo_before\tplacebo_during\tnaltrexone_before\tnaltrexone_during\nketamineUnderPlacebo\tketamine under placebo\tpositive\t-1\t1\t0\t0\n",
        )
        .unwrap();
    }

    /// A ΔCBF effect built to follow the MOR map (plus noise, 10 subjects) correlates with MOR
    /// significantly under all three nulls (after FDR); an unrelated control map does not.
    #[test]
    fn effect_following_mor_is_found_and_control_is_not() {
        let root = data_dir();
        let tpl = Template::phantom();
        let reg = Registry::builtin().unwrap();
        let mor = load_receptor_map(reg.receptor("MOR").unwrap(), &root, &tpl).unwrap();
        let effect = mor.z.mapv(|v| if v.is_finite() { v } else { 0.0 });
        let tmp = tempfile::tempdir().unwrap();
        let (bids, out) = (tmp.path().join("bids"), tmp.path().join("out"));
        write_study(&bids, &out, &tpl, &effect, 10, 3.0, 7);
        let mut opts = ReceptorOptions::new(bids, out.clone(), tpl, root);
        // NET: a registered control whose parcel values are unrelated to MOR's (r = 0.03 here)
        opts.maps = vec!["MOR".into(), "NET".into()];
        opts.parcellation = "schaefer100tian".into();
        opts.n_null = 500;
        let s = receptor_correlations(&opts).unwrap();
        assert_eq!(
            s.contrasts.len(),
            1,
            "only the placebo contrast has a group map"
        );
        let res = &s.contrasts[0].results;
        for r in res {
            eprintln!(
                "{} r {:.3} n {} p {:?} q {:?}",
                r.map, r.r, r.n, r.p, r.p_fdr
            );
        }
        let (mor, net) = (&res[0], &res[1]);
        assert!(mor.r > 0.8, "MOR r = {}", mor.r);
        for m in [
            NullModel::Variogram,
            NullModel::Juspace,
            NullModel::SignFlip,
        ] {
            assert!(mor.p_fdr[&m] < 0.05, "MOR {m:?}: q = {}", mor.p_fdr[&m]);
            assert!(net.p[&m] > 0.05, "NET {m:?}: p = {}", net.p[&m]);
        }
        // the contract's table: columns in order, one row per map
        let table = std::fs::read_to_string(
            out.join("desc-receptors_contrast-ketamineUnderPlacebo_table.tsv"),
        )
        .unwrap();
        let mut lines = table.lines();
        assert_eq!(
            lines.next().unwrap(),
            "map\ttarget\ttracer\tmethod\tlevel\tparcellation\tn\tr\tp_variogram\tq_variogram\tp_juspace\tq_juspace\tp_signflip\tq_signflip"
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("MOR\tMOR\t[11C]carfentanil\tspearman\tparcel\tschaefer100tian\t")
        );
        assert_eq!(lines.count(), 1);
        assert!(
            out.join("desc-receptors_contrast-ketamineUnderPlacebo_table.json")
                .is_file()
        );
        let nulls = std::fs::read_to_string(
            out.join("desc-receptorNulls_contrast-ketamineUnderPlacebo_table.tsv"),
        )
        .unwrap();
        assert_eq!(nulls.lines().count(), 1 + 2 * 3 * 500);
        // same bytes with one thread
        let again = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| receptor_correlations(&opts).unwrap());
        assert_eq!(again.contrasts[0].results, s.contrasts[0].results);
        assert_eq!(
            std::fs::read_to_string(
                out.join("desc-receptorNulls_contrast-ketamineUnderPlacebo_table.tsv")
            )
            .unwrap(),
            nulls
        );
    }
}
