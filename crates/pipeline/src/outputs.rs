//! Writing a participant's derivatives: names from the source entities, a JSON sidecar with
//! units, parameters and `Sources` next to every image.

use std::path::{Path, PathBuf};

use cbflow_bids::{AslRun, DerivativeName, DerivativesWriter, Entities, Table};
use cbflow_image::{DataType, Volume};
use ndarray::{Array3, Array4};
use serde_json::{Value, json};

use crate::anat::Anatomy;
use crate::asl::AslResult;
use crate::catalogue::GroupFile;
use crate::template::Template;
use crate::{Error, Result};
use cbflow_register::AffineTransform;

/// BIDS URI of an input file (`bids:raw:<path relative to the dataset root>`).
pub(crate) fn source_uri(rel: &Path) -> String {
    format!("bids:raw:{}", rel.display())
}

/// Derivative name in `perf/` built from a run's entities.
pub(crate) fn perf_name(entities: &Entities) -> DerivativeName {
    DerivativeName::from_entities(entities).datatype("perf")
}

/// Name of a run's template-space derivative (`perf/`, the run's entities, `space-`, `res-`):
/// the one naming rule the participant level writes by and the group level reads by.
pub(crate) fn template_name(entities: &Entities, tpl: &Template) -> DerivativeName {
    perf_name(entities)
        .set("space", &tpl.name)
        .set("res", &tpl.res)
}

/// Which run of a session a design means: entity values the run's file name must carry, e.g.
/// `run-1`, or `acq-pre`, or both. Every other entity of the run is kept: outputs are found and
/// named by the run's full entities, as the participant level wrote them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunSelector(pub Vec<(String, String)>);

impl RunSelector {
    /// The run with `run-<label>`.
    pub fn run(label: &str) -> Self {
        Self(vec![("run".into(), label.into())])
    }

    /// True when `e` has every entity value of the selector.
    pub fn matches(&self, e: &Entities) -> bool {
        self.0.iter().all(|(k, v)| e.get(k) == Some(v.as_str()))
    }

    /// Why the selector cannot pick a run, if it cannot: empty, `sub`/`ses` (the design's own
    /// business), an entity a participant-level run name cannot carry, or an unsafe label.
    pub fn problem(&self) -> Option<String> {
        if self.0.is_empty() {
            return Some("names no entity: give e.g. {run: \"1\"} or {acq: pre}".into());
        }
        for (k, v) in &self.0 {
            if !["task", "acq", "ce", "rec", "dir", "run", "echo", "part"].contains(&k.as_str()) {
                return Some(format!(
                    "entity {k:?} cannot select a run (use task, acq, ce, rec, dir, run, echo or part; sessions come from sessions.tsv)"
                ));
            }
            if cbflow_bids::validate_label(v).is_err() {
                return Some(format!("{k}-{v}: a label is letters and digits only"));
            }
        }
        None
    }
}

impl std::fmt::Display for RunSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}-{v}")).collect();
        f.write_str(&parts.join("_"))
    }
}

/// The run of `sub` (and `ses`) chosen by `sel` among the template-space CBF maps the
/// participant level wrote into `out` (`*_space-<tpl>_res-<r>_cbf.nii.gz`): its entities, or
/// `None` when there is none. Two matching runs are an error naming both.
pub(crate) fn find_template_run(
    out: &Path,
    tpl: &Template,
    sub: &str,
    ses: Option<&str>,
    sel: &RunSelector,
) -> Result<Option<Entities>> {
    let mut dir = out.join(format!("sub-{sub}"));
    if let Some(s) = ses {
        dir = dir.join(format!("ses-{s}"));
    }
    let dir = dir.join("perf");
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut names: Vec<String> = listing
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut found: Vec<(Entities, String)> = Vec::new();
    for name in names {
        let Ok((mut e, suffix, ext)) = cbflow_bids::parse_filename(&name) else {
            continue;
        };
        if suffix != "cbf"
            || ext != ".nii.gz"
            || e.get("desc").is_some()
            || e.get("space") != Some(tpl.name.as_str())
            || e.get("res") != Some(tpl.res.as_str())
            || e.get("sub") != Some(sub)
            || e.get("ses") != ses
            || !sel.matches(&e)
        {
            continue;
        }
        e.remove("space");
        e.remove("res");
        found.push((e, name));
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop().map(|f| f.0)),
        _ => Err(Error::Metadata {
            path: dir,
            field: "design".into(),
            message: format!(
                "{} runs match {sel}: {}; select one with more entities in the design (e.g. acq and run)",
                found.len(),
                found
                    .iter()
                    .map(|f| f.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Path in `out` of a run's template-space output `<entities>_space-*_res-*[_desc-*]_cbf<ext>`
/// (`suffix` `cbf`), named by the run's full entities.
pub(crate) fn template_output(
    out: &Path,
    entities: &Entities,
    tpl: &Template,
    desc: Option<&str>,
    extension: &str,
) -> Result<PathBuf> {
    let mut name = template_name(entities, tpl)
        .suffix("cbf")
        .extension(extension);
    if let Some(d) = desc {
        name = name.set("desc", d);
    }
    Ok(out.join(rel(name)?))
}

/// [`template_output`] of the run `sub-<sub>_ses-<ses>_run-<run>` (test fixtures).
#[cfg(test)]
pub(crate) fn template_output_run(
    out: &Path,
    sub: &str,
    ses: &str,
    run: &str,
    tpl: &Template,
    desc: Option<&str>,
    extension: &str,
) -> Result<PathBuf> {
    let mut e = Entities::new();
    e.set("sub", sub);
    e.set("ses", ses);
    e.set("run", run);
    template_output(out, &e, tpl, desc, extension)
}

fn rel(name: DerivativeName) -> Result<PathBuf> {
    Ok(name.rel_path()?)
}

fn volume3(like: &Volume, data: &Array3<f32>) -> Result<Volume> {
    crate::asl::grid_volume(like, data.clone())
}

fn volume4(like: &Volume, data: &Array4<f32>, tr: f64) -> Result<Volume> {
    let mut v = Volume::new(data.clone().into_dyn(), like.affine)?;
    v.info.pixdim[3] = tr;
    Ok(v)
}

/// Writes every native-space output of one ASL run; returns the paths written.
pub(crate) fn write_asl_run(
    w: &DerivativesWriter,
    run: &AslRun,
    r: &AslResult,
) -> Result<Vec<PathBuf>> {
    let e = &run.entities;
    let context_rel = run
        .asl
        .rel_path
        .with_file_name(run.context.file_name().unwrap_or_default());
    let mut sources = vec![source_uri(&run.asl.rel_path), source_uri(&context_rel)];
    if let Some(m0) = &run.m0scan {
        sources.push(source_uri(&m0.rel_path));
    }
    let cbf_units = json!("mL/100g/min");
    let base = |desc: Option<&str>| -> Value {
        let mut v = json!({"Units": cbf_units, "Sources": sources, "Parameters": r.parameters});
        if let Some(d) = desc {
            v["Description"] = json!(d);
        }
        v
    };
    let mut written = Vec::new();
    let mut put =
        |name: DerivativeName, vol: &Volume, dtype: DataType, sidecar: Value| -> Result<()> {
            written.push(w.write_nifti(&rel(name)?, vol, dtype, &sidecar)?);
            Ok(())
        };
    let like = &r.reference;
    put(
        perf_name(e).suffix("cbf").extension(".nii.gz"),
        &volume3(like, &r.cbf)?,
        DataType::Float32,
        base(Some("mean CBF over all label/control pairs")),
    )?;
    put(
        perf_name(e)
            .set("desc", "timeseries")
            .suffix("cbf")
            .extension(".nii.gz"),
        &volume4(like, &r.cbf_series, r.pair_spacing_s)?,
        DataType::Float32,
        base(Some(
            "CBF of each label/control pair in acquisition order (the 4th axis is pairs)",
        )),
    )?;
    if let Some(s) = &r.cbf_score {
        let mut sc = base(Some(
            "SCORE robust mean of the per-pair CBF (Dolui et al. 2017)",
        ));
        sc["PairsKept"] = json!(r.score_kept);
        put(
            perf_name(e)
                .set("desc", "score")
                .suffix("cbf")
                .extension(".nii.gz"),
            &volume3(like, s)?,
            DataType::Float32,
            sc,
        )?;
    }
    if let Some(att) = &r.att {
        let mut sc = base(Some("arterial transit time"));
        sc["Units"] = json!("s");
        put(
            perf_name(e)
                .set("desc", "att")
                .suffix("cbf")
                .extension(".nii.gz"),
            &volume3(like, att)?,
            DataType::Float32,
            sc,
        )?;
    }
    let mut dm = base(Some("mean ΔM (control − label) after realignment"));
    dm["Units"] = json!("arbitrary (scanner units)");
    put(
        perf_name(e)
            .set("desc", "mean")
            .suffix("deltam")
            .extension(".nii.gz"),
        &volume3(like, &r.mean_delta_m)?,
        DataType::Float32,
        dm,
    )?;
    let mut m0 = base(Some(
        "M0 used for calibration: averaged, corrected for RepetitionTimePreparation, scaled",
    ));
    m0["Units"] = json!("arbitrary (scanner units)");
    put(
        perf_name(e)
            .set("desc", "calibration")
            .suffix("m0scan")
            .extension(".nii.gz"),
        &volume3(like, &r.m0)?,
        DataType::Float32,
        m0,
    )?;
    let mut mk = base(Some(
        "brain mask from M0 (Otsu threshold, largest component, holes filled)",
    ));
    mk["Type"] = json!("Brain");
    mk.as_object_mut().expect("object").remove("Units");
    put(
        perf_name(e)
            .set("desc", "brain")
            .suffix("mask")
            .extension(".nii.gz"),
        &volume3(like, &r.mask.mapv(|b| if b { 1.0 } else { 0.0 }))?,
        DataType::Uint8,
        mk,
    )?;

    // confounds: one row per volume
    let cols = [
        "trans_x",
        "trans_y",
        "trans_z",
        "rot_x",
        "rot_y",
        "rot_z",
        "framewise_displacement",
        "volume_type",
    ];
    let rows = r
        .motion
        .iter()
        .zip(&r.fd)
        .zip(&run.volumes.volume_types)
        .map(|((m, fd), t)| {
            let num = |x: f64| {
                if x.is_finite() {
                    format!("{x:.6}")
                } else {
                    "n/a".to_string()
                }
            };
            let mut row: Vec<String> = m.iter().map(|&x| num(x)).collect();
            row.push(num(*fd));
            row.push(t.as_str().to_string());
            row
        })
        .collect();
    let confounds = rel(perf_name(e)
        .set("desc", "confounds")
        .suffix("timeseries")
        .extension(".tsv"))?;
    let table = Table::new(cols.iter().map(|s| s.to_string()).collect(), rows)?;
    written.extend(w.write_table(
        &confounds,
        &table,
        &json!({
            "trans_x": {"Units": "mm", "Description": "translation of the rigid realignment transform (reference → volume) about MotionCentre; n/a for volumes not realigned (dummies, volumes left out)"},
            "rot_x": {"Units": "rad", "Description": "rotation about x; R = Rz·Ry·Rx"},
            "framewise_displacement": {"Units": "mm", "Description": "Power et al. 2012: sum of absolute parameter differences, rotations on a 50 mm sphere, between successive realigned volumes"},
            "Sources": sources,
        }),
    )?);
    if let Some(qc) = &r.qc {
        let qc_json = serde_json::to_value(qc).map_err(|e| Error::Step {
            path: run.asl.path.clone(),
            step: "QC",
            message: e.to_string(),
        })?;
        let mut cols = vec![];
        let mut row = vec![];
        for (k, v) in qc_json.as_object().expect("QC is an object") {
            match v {
                Value::Number(n) => {
                    cols.push(k.clone());
                    row.push(match n.as_i64() {
                        Some(i) => i.to_string(),
                        None => format!("{:.6}", n.as_f64().unwrap_or(f64::NAN)),
                    });
                }
                // an absent metric (no tissue maps without a T1w) is n/a; its nested
                // components live in the JSON sidecar only
                Value::Null if k != "qei_components" => {
                    cols.push(k.clone());
                    row.push("n/a".into());
                }
                _ => {}
            }
        }
        cols.push("flags".into());
        row.push(if qc.flags.is_empty() {
            "none".into()
        } else {
            qc.flags
                .iter()
                .map(|f| f.metric.clone())
                .collect::<Vec<_>>()
                .join(",")
        });
        let qc_rel = rel(perf_name(e)
            .set("desc", "qc")
            .suffix("cbf")
            .extension(".tsv"))?;
        let mut j = qc_json;
        j["Sources"] = json!(sources);
        written.extend(w.write_table(&qc_rel, &Table::new(cols, vec![row])?, &j)?);
    }
    Ok(written)
}

/// The session's normalisation: the template → T1w affine (ITK text), the warp (an ITK/ANTs
/// displacement field on the template grid), the T1w brain mask and the bias-corrected T1w;
/// the sidecars carry the normalisation's QC figures.
pub(crate) fn write_anatomy(
    w: &DerivativesWriter,
    a: &Anatomy,
    tpl: &Template,
) -> Result<Vec<PathBuf>> {
    let e = &a.t1w_file.entities;
    let anat = |n: DerivativeName| n.datatype("anat");
    let sources = vec![source_uri(&a.t1w_file.rel_path)];
    let mut out = Vec::new();
    let xfm = |desc: &str, ext: &str| {
        anat(
            DerivativeName::from_entities(e)
                .set("from", "T1w")
                .set("to", &tpl.name)
                .set("mode", "image")
                .set("desc", desc)
                .suffix("xfm")
                .extension(ext),
        )
    };
    let affine_rel = rel(xfm("affine", ".txt"))?;
    out.push(w.write_bytes(&affine_rel, a.syn.affine.to_itk_string().as_bytes())?);
    let fv = a.syn.forward.to_itk_volume().map_err(|e| Error::Step {
        path: a.t1w_file.path.clone(),
        step: "writing the warp",
        message: e.to_string(),
    })?;
    let convention = "ITK/ANTs displacement field (a 5D NIfTI vector image [i, j, k, 1, 3], intent 1007, vectors in LPS millimetres) on the template grid: template world point x maps to T1w world point A(x + u(x)), A the desc-affine transform (ITK text); apply both as ANTs does, e.g. antsApplyTransforms -r <template> -i <T1w-space image> -t <this warp> -t <the affine>";
    let qc = json!({
        "BrainMaskDice": a.brain_dice,
        "AffineDeterminant": a.syn.affine.determinant(),
        "BrainCorrelation": a.brain_correlation,
        "SkullStrippedInput": a.skull_stripped_input,
    });
    out.push(w.write_nifti(&rel(xfm("warp", ".nii.gz"))?, &fv, DataType::Float32, &json!({"Units": "mm", "Convention": convention, "Sources": sources, "Method": "symmetric diffeomorphic registration of the T1w brain to the template brain: stationary velocity field, local cross-correlation, both images moved to the midpoint (cbflow-register, after SyN and log-domain demons), after N4-like bias correction and template-based brain extraction", "LNCC": a.syn.metric_value, "QC": qc}))?);
    let mask = a
        .t1w
        .with_data3(a.brain_mask.mapv(|b| if b { 1.0 } else { 0.0 }))?;
    let how = if a.skull_stripped_input {
        "the T1w was already skull-stripped: its non-zero voxels (largest component, holes filled)"
            .to_string()
    } else {
        format!(
            "{} brain mask pulled back to the bias-corrected T1w through a registration of the template head to the T1w head (template-based brain extraction)",
            tpl.name
        )
    };
    out.push(
        w.write_nifti(
            &rel(anat(
                DerivativeName::from_entities(e)
                    .set("desc", "brain")
                    .suffix("mask")
                    .extension(".nii.gz"),
            ))?,
            &mask,
            DataType::Uint8,
            &json!({"Type": "Brain", "Description": how, "Sources": sources, "QC": qc}),
        )?,
    );
    out.push(w.write_nifti(
        &rel(anat(DerivativeName::from_entities(e).set("desc", "preproc").suffix("T1w").extension(".nii.gz")))?,
        &a.t1w,
        DataType::Float32,
        &json!({"Description": "the T1w after intensity non-uniformity correction (N4-like B-spline bias field; Tustison et al. 2010)", "SkullStripped": false, "Sources": sources}),
    )?);
    Ok(out)
}

/// The run's template-space CBF maps, its ASL → T1w transform and its ROI table.
pub(crate) fn write_template_outputs(
    w: &DerivativesWriter,
    run: &AslRun,
    r: &AslResult,
    tpl: &Template,
    rigid: &AffineTransform,
    cbf: &Volume,
    score: Option<&Volume>,
    series: Option<&Volume>,
    regions: &[cbflow_register::Region],
) -> Result<Vec<PathBuf>> {
    let e = &run.entities;
    let sources = vec![source_uri(&run.asl.rel_path)];
    let mut out = Vec::new();
    let xfm_rel = rel(perf_name(e)
        .set("from", "asl")
        .set("to", "T1w")
        .set("mode", "image")
        .suffix("xfm")
        .extension(".txt"))?;
    out.push(w.write_bytes(&xfm_rel, rigid.to_itk_string().as_bytes())?);
    let side = |desc: &str| json!({"Units": "mL/100g/min", "Sources": sources, "Description": desc, "SpatialReference": tpl.name, "Resampling": "one trilinear resampling through warp ∘ affine ∘ rigid", "Parameters": r.parameters});
    out.push(w.write_nifti(
        &rel(template_name(e, tpl).suffix("cbf").extension(".nii.gz"))?,
        cbf,
        DataType::Float32,
        &side("mean CBF in template space"),
    )?);
    if let Some(s) = score {
        out.push(
            w.write_nifti(
                &rel(template_name(e, tpl)
                    .set("desc", "score")
                    .suffix("cbf")
                    .extension(".nii.gz"))?,
                s,
                DataType::Float32,
                &side("SCORE robust mean CBF in template space"),
            )?,
        );
    }
    // ROI table in template space
    let labels = cbflow_register::labels_from_volume(tpl.labels.frame(0));
    let brain = tpl.brain_mask.frame(0).mapv(|v| v > 0.5);
    let gm = ndarray::Zip::from(tpl.gm.frame(0))
        .and(&brain)
        .map_collect(|&g, &b| b && g > 0.5);
    let err = |e: cbflow_register::Error| Error::Step {
        path: run.asl.path.clone(),
        step: "ROI extraction",
        message: e.to_string(),
    };
    let atlas = json!({
        "Atlas": format!("labels of {} on the {} template's grid", tpl.atlas, tpl.name),
        "Regions": regions.iter().map(|r| (r.name.clone(), json!(r.labels))).collect::<serde_json::Map<_, _>>(),
    });
    let mut rows = Vec::new();
    let maps: Vec<(&str, &Volume)> = std::iter::once(("cbf", cbf))
        .chain(score.map(|s| ("cbf_score", s)))
        .collect();
    let mut per_map = Vec::new();
    for (_, m) in &maps {
        let mut stats =
            cbflow_register::roi_stats(m.frame(0), labels.view(), regions, None).map_err(err)?;
        stats.push(cbflow_register::mask_stats(m.frame(0), gm.view(), "grey_matter").map_err(err)?);
        stats.push(cbflow_register::mask_stats(m.frame(0), brain.view(), "global").map_err(err)?);
        per_map.push(stats);
    }
    for i in 0..per_map[0].len() {
        let mut row = vec![
            per_map[0][i].name.clone(),
            per_map[0][i].n_voxels.to_string(),
        ];
        for stats in &per_map {
            row.push(format!("{:.4}", stats[i].mean));
            row.push(format!("{:.4}", stats[i].median));
        }
        rows.push(row);
    }
    let mut cols = vec!["region".to_string(), "n_voxels".to_string()];
    for (name, _) in &maps {
        cols.push(format!("mean_{name}"));
        cols.push(format!("median_{name}"));
    }
    let roi_rel = rel(template_name(e, tpl)
        .set("desc", "roi")
        .suffix("cbf")
        .extension(".tsv"))?;
    out.push(w.write_tsv(&roi_rel, &Table::new(cols, rows)?)?);
    out.push(w.write_json(
        &DerivativesWriter::sidecar_path(&roi_rel),
        &json!({"Units": "mL/100g/min", "Atlas": atlas["Atlas"], "Regions": atlas["Regions"], "grey_matter": "template GM probability > 0.5 inside the brain mask", "global": "template brain mask", "Sources": sources}),
    )?);
    // ROI means of every pair's CBF: the time course through the infusion
    if let Some(series) = series.filter(|s| s.n_volumes() > 1) {
        let n_frames = series.n_volumes();
        let mut cols = vec!["pair".to_string(), "time_s".to_string()];
        let mut columns: Vec<Vec<f64>> = Vec::new();
        for t in 0..n_frames {
            let frame = series.frame(t);
            let mut stats =
                cbflow_register::roi_stats(frame, labels.view(), regions, None).map_err(err)?;
            stats.push(cbflow_register::mask_stats(frame, gm.view(), "grey_matter").map_err(err)?);
            stats.push(cbflow_register::mask_stats(frame, brain.view(), "global").map_err(err)?);
            if t == 0 {
                cols.extend(stats.iter().map(|s| s.name.clone()));
                columns = vec![Vec::with_capacity(n_frames); stats.len()];
            }
            for (c, s) in columns.iter_mut().zip(&stats) {
                c.push(s.mean);
            }
        }
        let rows = (0..n_frames)
            .map(|t| {
                let mut row = vec![
                    t.to_string(),
                    r.pair_times_s
                        .get(t)
                        .map_or("n/a".to_string(), |x| format!("{x:.3}")),
                ];
                row.extend(columns.iter().map(|c| {
                    if c[t].is_finite() {
                        format!("{:.4}", c[t])
                    } else {
                        "n/a".to_string()
                    }
                }));
                row
            })
            .collect();
        let ts_rel = rel(template_name(e, tpl)
            .set("desc", "roi")
            .suffix("timeseries")
            .extension(".tsv"))?;
        out.push(w.write_tsv(&ts_rel, &Table::new(cols, rows)?)?);
        out.push(w.write_json(
            &DerivativesWriter::sidecar_path(&ts_rel),
            &json!({
                "Description": "mean CBF of each label/control pair in each region, in template space: the time course through the run",
                "pair": {"Description": "pair index in acquisition order (0-based)"},
                "time_s": {"Description": "onset of the pair's label volume from the start of the run", "Units": "s"},
                "Units": "mL/100g/min",
                "Atlas": atlas["Atlas"],
                "Regions": atlas["Regions"],
                "Sources": sources,
            }),
        )?);
    }
    Ok(out)
}

/// Writes the group-level table `file` (a TSV kind of the catalogue) and its sidecar into `w`;
/// returns both paths.
pub(crate) fn write_group_table(
    w: &DerivativesWriter,
    file: &GroupFile,
    cols: &[&str],
    rows: Vec<Vec<String>>,
    sidecar: serde_json::Value,
) -> Result<Vec<PathBuf>> {
    let rel = file.rel_path()?;
    let t = Table::new(cols.iter().map(|s| s.to_string()).collect(), rows)?;
    Ok(w.write_table(&rel, &t, &sidecar)?)
}
