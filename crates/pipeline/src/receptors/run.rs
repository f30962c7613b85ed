//! The receptor step: correlations of every contrast's group map with the selected maps, the
//! null models and FDR.

use std::path::PathBuf;

use cbflow_bids::DerivativesWriter;
use cbflow_receptor::{
    CorrelationResult, DistanceMatrix, NullModel, SampledParams, SampledSurrogates,
    VariogramParams, VariogramSurrogates,
};
use cbflow_resources::Registry;
use cbflow_stats::CrossoverMaps;
use ndarray::{Array2, Array3, Zip};
use rayon::prelude::*;
use serde_json::{Value, json};

use super::load::{
    LoadedMap, group_map_path, load_parcellation, load_receptor_map, load_subject_maps, rec_err,
    resources_path,
};
use super::options::{
    ContrastReceptors, ReceptorLevel, ReceptorNull, ReceptorOptions, ReceptorSummary,
};
use super::tables::{write_dominance, write_tables};
use crate::group::{GroupContrast, written_contrasts};
use crate::{Error, Result};
use cbflow_receptor::{Points, flat_c};

/// Stable 64-bit hash (FNV-1a) used to derive per-map, per-null seeds.
pub(super) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(super) fn sub_seed(seed: u64, map: &str, null: &str) -> u64 {
    seed ^ fnv(&format!("{map}/{null}"))
}

/// Wall time of the parts of the step, summed per part name in the order they first ran.
#[derive(Debug)]
struct Timings {
    parts: Vec<(&'static str, f64)>,
    last: std::time::Instant,
}

impl Timings {
    fn start() -> Self {
        Self {
            parts: Vec::new(),
            last: std::time::Instant::now(),
        }
    }

    /// Adds the time since the previous mark to `part`.
    fn mark(&mut self, part: &'static str) {
        let now = std::time::Instant::now();
        let secs = (now - self.last).as_secs_f64();
        self.last = now;
        match self.parts.iter_mut().find(|(p, _)| *p == part) {
            Some((_, s)) => *s += secs,
            None => self.parts.push((part, secs)),
        }
    }
}

pub(super) struct MapNulls {
    pub(super) variogram: Option<(NullModel, Array2<f64>)>,
    pub(super) juspace: Option<Array2<f64>>,
}

/// A receptor map on the template and the points it is correlated over.
struct Placed {
    map: LoadedMap,
    points: Points,
    /// The map's mean z over each point.
    receptor: Vec<f64>,
    /// The template's mean grey-matter probability over each point.
    gm: Vec<f64>,
}

/// A map ready for the contrasts: its points, values and contrast-independent nulls.
struct Prepared {
    map: LoadedMap,
    points: Points,
    receptor: Vec<f64>,
    gm: Vec<f64>,
    nulls: MapNulls,
    /// The variogram surrogates' fit (first 100), for the sidecar.
    fit: Option<Value>,
}

/// The nulls of one receptor map that do not depend on the contrast: variogram surrogates
/// and JuSpace null maps, as asked, and the surrogates' variogram fit.
fn map_nulls(
    opts: &ReceptorOptions,
    p: &Placed,
    timings: &mut Timings,
) -> Result<(MapNulls, Option<Value>)> {
    let entry = &p.map.entry;
    let path = resources_path(opts, entry);
    let mut nulls = MapNulls {
        variogram: None,
        juspace: None,
    };
    let mut fit = None;
    if opts.nulls.contains(&ReceptorNull::Variogram) {
        let seed = sub_seed(opts.seed, &entry.name, "variogram");
        match opts.level {
            ReceptorLevel::Parcel => {
                let d = DistanceMatrix::from_coordinates(&p.points.coords)
                    .map_err(|e| rec_err(&path, e))?;
                let g = VariogramSurrogates::new(&p.receptor, &d, VariogramParams::default())
                    .map_err(|e| rec_err(&path, e))?;
                let s = g.generate(opts.n_null, seed);
                let f = g
                    .fit_error(s.slice(ndarray::s![..s.nrows().min(100), ..]))
                    .map_err(|e| rec_err(&path, e))?;
                fit = Some(serde_json::to_value(&f).unwrap_or(Value::Null));
                nulls.variogram = Some((NullModel::Variogram, s));
            }
            ReceptorLevel::Voxel => {
                let n = p.receptor.len();
                let params = SampledParams {
                    knn: SampledParams::default().knn.min(n - 1),
                    ns: SampledParams::default().ns.min(n),
                    ..SampledParams::default()
                };
                let g = SampledSurrogates::new(&p.receptor, &p.points.coords, params)
                    .map_err(|e| rec_err(&path, e))?;
                nulls.variogram =
                    Some((NullModel::VariogramSampled, g.generate(opts.n_null, seed)));
            }
        }
        timings.mark("variogram nulls");
    }
    if opts.nulls.contains(&ReceptorNull::Juspace) && opts.level == ReceptorLevel::Parcel {
        let seed = sub_seed(opts.seed, &entry.name, "juspace");
        let mirror = cbflow_receptor::mirror_by_centroids(&p.points.coords)
            .map_err(|e| rec_err(&path, e))?;
        nulls.juspace = Some(
            cbflow_receptor::juspace_null_maps(
                &p.receptor,
                &p.points.coords,
                Some(&mirror),
                opts.n_null,
                seed,
            )
            .map_err(|e| rec_err(&path, e))?,
        );
        timings.mark("juspace nulls");
    }
    Ok((nulls, fit))
}

/// Correlates the group map of every contrast with the selected receptor maps, computes the
/// selected null models and Benjamini–Hochberg FDR across maps per null, and writes per contrast
/// `contrast-<c>_desc-receptors_table.tsv`, `contrast-<c>_desc-receptorNulls_table.tsv` (and
/// `contrast-<c>_desc-receptorDominance_table.tsv` when asked), each with a JSON sidecar, at the
/// root of `output_dir`.
///
/// The group map of a contrast is the group level's `stat-t` (or `stat-effect`) map; contrasts
/// without one are skipped (an error if none exists). Points: parcels of `parcellation` with ≥
/// [`MIN_PARCEL_VOXELS`](super::MIN_PARCEL_VOXELS) valid voxels, or lattice voxels; valid = group mask (group map finite
/// and non-zero) ∧ the map's [`LoadedMap::valid`]. The variogram and JuSpace nulls are of the
/// receptor map (computed once per map, shared by the contrasts); the sign-flip null recomputes
/// the group map (one-sample t or mean of the subjects' smoothed ΔCBF maps, without the
/// sequence regressor of the group GLM) for every sign vector; its p-value is the exact
/// sign-flip p of that recomputed map's correlation. With the JuSpace null the p-value is that
/// of the partial correlation controlling for parcel grey-matter probability (the partial r is
/// in the sidecar). Deterministic for a given seed at any thread count.
pub fn receptor_correlations(opts: &ReceptorOptions) -> Result<ReceptorSummary> {
    let mut timings = Timings::start();
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
                group_map_path(opts, &GroupContrast::defaults(&opts.design)[0].name)?.display()
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
    timings.mark("group maps, parcellation");
    let signflip = opts.nulls.contains(&ReceptorNull::SignFlip);
    // the subjects' maps (for the sign-flip null) and the receptor maps on the template, read
    // at the same time (the former is mostly one file after another)
    let (subjects, maps) = rayon::join(
        || signflip.then(|| load_subject_maps(opts)).transpose(),
        || {
            entries
                .par_iter()
                .map(|entry| load_receptor_map(entry, &opts.resources, tpl))
                .collect::<Vec<_>>()
        },
    );
    let subjects = subjects?;
    let maps = maps.into_iter().collect::<Result<Vec<_>>>()?;
    timings.mark("subjects' and receptor maps");
    // per map: points, receptor vector (in parallel, each map on its own)
    let covered = subjects.as_ref().map(|s| {
        // sign-flip points must be covered by every subject's map
        let mut covered = Array3::from_elem(group_mask.raw_dim(), false);
        let flat = covered.as_slice_mut().expect("standard layout");
        for &c in &s.cols {
            flat[c] = true;
        }
        covered
    });
    let placed: Vec<Result<Placed>> = maps
        .into_par_iter()
        .map(|map| {
            let entry = &map.entry;
            let mut mask = map.valid.clone();
            Zip::from(&mut mask)
                .and(&group_mask)
                .for_each(|m, &g| *m &= g);
            if let Some(c) = &covered {
                Zip::from(&mut mask).and(c).for_each(|m, &c| *m &= c);
            }
            let points = Points::build(&mask, labels.as_ref(), &tpl.grid);
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
            Ok(Placed {
                map,
                points,
                receptor,
                gm,
            })
        })
        .collect();
    let placed = placed.into_iter().collect::<Result<Vec<_>>>()?;
    timings.mark("points");
    // per map: the contrast-independent nulls (each drawn in parallel)
    let mut prepared = Vec::with_capacity(placed.len());
    for p in placed {
        let (nulls, fit) = map_nulls(opts, &p, &mut timings)?;
        tracing::info!(
            "receptor map {}: {} {}s, coverage {:.2}",
            p.map.entry.name,
            p.points.n(),
            opts.level.as_str(),
            p.map.coverage,
        );
        prepared.push(Prepared {
            map: p.map,
            points: p.points,
            receptor: p.receptor,
            gm: p.gm,
            nulls,
            fit,
        });
    }

    let writer = DerivativesWriter::create(out, crate::generated_by(), &[])?;
    timings.mark("tables");
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
        timings.mark("sign-flip nulls");
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
            timings.mark("correlations");
            if let Some((model, s)) = &p.nulls.variogram {
                let null = cbflow_receptor::null_correlations(&g, s.view(), opts.method, None)
                    .map_err(|err| rec_err(&path, err))?;
                res.add_null(*model, null);
                timings.mark("variogram null correlations");
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
                timings.mark("juspace null correlations");
            }
            if let (Some(d), Some(s)) = (&diff, &subjects) {
                // subjects × points
                let n_sub = d.nrows();
                let mut dp = Array2::<f64>::zeros((n_sub, p.points.n()));
                for (i, mut out) in dp.outer_iter_mut().enumerate() {
                    let row = d.row(i);
                    let row = row.as_slice().expect("standard layout");
                    for (o, m) in out.iter_mut().zip(&p.points.members) {
                        let sum: f64 = m.iter().map(|&v| f64::from(row[s.col_of[v]])).sum();
                        *o = sum / m.len() as f64;
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
                timings.mark("sign-flip nulls");
            }
            if let Some(f) = &p.fit {
                info.insert("variogram_fit".into(), f.clone());
            }
            extra.insert(e.name.clone(), Value::Object(info));
            results.push(res);
        }
        cbflow_receptor::apply_fdr(&mut results).map_err(|err| rec_err(gpath, err))?;
        timings.mark("correlations");
        files.extend(write_tables(
            &writer,
            opts,
            cname,
            &results,
            &prepared.iter().map(|p| &p.map.entry).collect::<Vec<_>>(),
            extra,
        )?);
        timings.mark("tables");
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
            timings.mark("dominance");
        }
        summary.push(ContrastReceptors {
            contrast: cname.to_string(),
            results,
        });
    }
    Ok(ReceptorSummary {
        contrasts: summary,
        files,
        timings: timings.parts,
    })
}
