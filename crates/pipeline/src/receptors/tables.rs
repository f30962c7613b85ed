//! The receptor tables and their sidecars.

use std::path::PathBuf;

use cbflow_bids::{DerivativesWriter, Table};
use cbflow_receptor::{CorrelationMethod, CorrelationResult, GroupStat};
use cbflow_resources::ReceptorEntry;
use ndarray::{Array2, Array3, Zip};
use serde_json::{Value, json};

use super::load::{LoadedMap, rec_err};
use super::options::{
    GM_THRESHOLD, MIN_PARCEL_VOXELS, ReceptorLevel, ReceptorNull, ReceptorOptions,
    VOXEL_SPACING_MM, null_model_of,
};
use crate::Result;
use crate::catalogue::GroupFile;
use cbflow_receptor::{Points, flat_c};

pub(super) fn fmt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "n/a".into()
    }
}

pub(super) fn write_tables(
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
    let rel = GroupFile::receptors(contrast).rel_path()?;
    let table = Table::new(cols.clone(), rows)?;
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
    files.extend(w.write_table(&rel, &table, &side)?);
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
    let rel = GroupFile::receptor_nulls(contrast).rel_path()?;
    let table = Table::new(
        ["map", "null", "draw", "r"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows,
    )?;
    files.extend(w.write_table(
        &rel,
        &table,
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
pub(super) fn write_dominance(
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
    let points = Points::build(&mask, labels, &opts.template.grid);
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
    let rel = GroupFile::receptor_dominance(contrast).rel_path()?;
    let table = Table::new(
        ["map", "beta_std", "dominance_total", "dominance_relative"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows,
    )?;
    let files = w.write_table(
        &rel,
        &table,
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
    )?;
    Ok(files)
}
