//! The maps and cluster table of one tested contrast, as every group step writes them.

use std::path::PathBuf;

use cbflow_bids::{DerivativesWriter, Table};
use cbflow_image::{DataType, Volume};
use cbflow_stats::{PermutationOptions, PermutationResult};
use serde_json::json;

use crate::Result;
use crate::catalogue::{GroupFile, Inference, StatMap};
use crate::template::Template;

/// What the sidecars of a contrast's maps say about how they were made.
pub(crate) struct ContrastMeta {
    /// Smoothing before the test (FWHM, mm).
    pub(crate) smoothing_fwhm_mm: f64,
    /// The inference scheme, with references.
    pub(crate) inference: String,
    /// The input maps.
    pub(crate) sources: String,
    /// Further sidecar fields of this contrast (an object), e.g. its weights.
    pub(crate) extra: serde_json::Value,
}

/// Writes a contrast's t, effect, TFCE and −log10 p maps and its cluster table; returns the
/// number of voxel-FWE and TFCE-FWE significant voxels and of FWE-significant clusters.
pub(crate) fn write_contrast(
    w: &DerivativesWriter,
    files: &mut Vec<PathBuf>,
    tpl: &Template,
    name: &str,
    res: &PermutationResult,
    popts: &PermutationOptions,
    to_volume: &dyn Fn(&[f64]) -> Result<Volume>,
    meta: &ContrastMeta,
) -> Result<(usize, usize, usize)> {
    let file = |map: StatMap| GroupFile::stat_map(&tpl.name, &tpl.res, name, map);
    let common = json!({
        "Contrast": name,
        "Tail": format!("{:?}", res.tail),
        "Permutations": res.n_shuffles,
        "Exhaustive": res.exhaustive,
        "Seed": popts.seed,
        "Inference": meta.inference,
        "SmoothingFWHM": meta.smoothing_fwhm_mm,
        "TFCE": popts.tfce,
        "ClusterFormingThreshold": popts.cluster_threshold,
        "DegreesOfFreedom": res.df,
        "Sources": meta.sources,
    });
    let mut common = common;
    if let (Some(c), Some(e)) = (common.as_object_mut(), meta.extra.as_object()) {
        c.extend(e.clone());
    }
    let mut put = |map: StatMap, vals: &[f64], desc: &str, units: &str| -> Result<()> {
        let mut side = common.clone();
        side["Description"] = json!(desc);
        side["Units"] = json!(units);
        let rel = file(map).rel_path()?;
        let mut v = to_volume(vals)?;
        if map == StatMap::T && res.df.is_finite() {
            // NIFTI_INTENT_TTEST with its degrees of freedom: viewers (FSLeyes, nilearn's
            // thresholding by p) can turn it into p values
            v.info.intent_code = 3;
            v.info.intent_p = [res.df, 0.0, 0.0];
            v.info.intent_name = "t".into();
        }
        files.push(w.write_nifti(&rel, &v, DataType::Float32, &side)?);
        Ok(())
    };
    let logp = "-log10(p): 1.3 is p = 0.05, larger is more significant";
    put(
        StatMap::T,
        res.t.as_slice().expect("contiguous"),
        "t statistic",
        "t",
    )?;
    put(
        StatMap::Effect,
        res.effect.as_slice().expect("contiguous"),
        "mean CBF difference",
        "mL/100g/min",
    )?;
    let lp = |p: &ndarray::Array1<f64>| cbflow_stats::neg_log10(p).to_vec();
    put(
        StatMap::Logp(Inference::Uncorrected),
        &lp(&res.p_uncorrected),
        &format!("uncorrected permutation p; {logp}"),
        "-log10(p)",
    )?;
    put(
        StatMap::Logp(Inference::VoxelFwe),
        &lp(&res.p_fwe),
        &format!("voxel-level FWE p (max-T); {logp}"),
        "-log10(p)",
    )?;
    let n_voxel = res.p_fwe.iter().filter(|&&p| p < 0.05).count();
    let mut n_tfce = 0;
    if let Some(t) = &res.tfce {
        put(
            StatMap::Tfce,
            t.values.as_slice().expect("contiguous"),
            &popts.tfce.map_or_else(String::new, |p| {
                format!(
                    "TFCE (E = {}, H = {}, {} connectivity, dh {}; Smith & Nichols 2009)",
                    p.e,
                    p.h,
                    match p.connectivity {
                        cbflow_stats::Connectivity::Faces6 => "6",
                        cbflow_stats::Connectivity::Edges18 => "18",
                        cbflow_stats::Connectivity::Corners26 => "26",
                    },
                    match p.step {
                        cbflow_stats::TfceStep::Fixed(dh) => format!("= {dh}"),
                        cbflow_stats::TfceStep::ObservedMaxOver(n) =>
                            format!("= the observed maximum / {n}"),
                    }
                )
            }),
            "arbitrary",
        )?;
        put(
            StatMap::Logp(Inference::TfceUncorrected),
            &lp(&t.p_uncorrected),
            &format!("uncorrected permutation p of TFCE; {logp}"),
            "-log10(p)",
        )?;
        put(
            StatMap::Logp(Inference::TfceFwe),
            &lp(&t.p_fwe),
            &format!("TFCE FWE p (max-TFCE); {logp}"),
            "-log10(p)",
        )?;
        n_tfce = t.p_fwe.iter().filter(|&&p| p < 0.05).count();
    }
    let mut n_cluster = 0;
    if let Some(c) = &res.clusters {
        put(
            StatMap::Logp(Inference::ClusterFwe),
            &lp(&c.p_fwe),
            &format!("cluster-extent FWE p; {logp}"),
            "-log10(p)",
        )?;
        n_cluster = c.clusters.iter().filter(|c| c.p_fwe < 0.05).count();
        let labels = tpl.labels.frame(0);
        let rows = c
            .clusters
            .iter()
            .map(|cl| {
                let w = tpl.grid.voxel_to_world(cl.peak_ijk.map(|x| x as f64));
                let l = labels[cl.peak_ijk].round() as i32;
                vec![
                    cl.label.to_string(),
                    if cl.sign > 0 {
                        "positive".into()
                    } else {
                        "negative".into()
                    },
                    cl.size.to_string(),
                    format!("{:.3}", cl.peak_t),
                    format!("{:.1}", w[0]),
                    format!("{:.1}", w[1]),
                    format!("{:.1}", w[2]),
                    tpl.label_names
                        .get(&l)
                        .cloned()
                        .unwrap_or_else(|| if l == 0 { "n/a".into() } else { l.to_string() }),
                    format!("{:.5}", cl.p_fwe),
                ]
            })
            .collect();
        let cols = [
            "cluster",
            "sign",
            "size_voxels",
            "peak_t",
            "peak_x_mm",
            "peak_y_mm",
            "peak_z_mm",
            "peak_label",
            "p_fwe",
        ];
        let rel = GroupFile::clusters(&tpl.name, &tpl.res, name).rel_path()?;
        let table = Table::new(cols.iter().map(|s| s.to_string()).collect(), rows)?;
        let mut side = common.clone();
        side["Description"] = json!(format!(
            "clusters of t beyond {} (26-connectivity); peak coordinates in {} world mm; peak_label from the template atlas (AAL3)",
            c.threshold, tpl.name
        ));
        files.extend(w.write_table(&rel, &table, &side)?);
    }
    Ok((n_voxel, n_tfce, n_cluster))
}
