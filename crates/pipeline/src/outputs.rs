//! Writing a participant's derivatives: names from the catalogue ([`RunFile`], [`AnatFile`]) and
//! the source entities, a JSON sidecar with units, parameters and `Sources` next to every image.

use std::path::{Path, PathBuf};

use cbflow_bids::{AslRun, DerivativesWriter, Entities, Table};
use cbflow_image::{DataType, Volume};
use ndarray::{Array3, Array4};
use serde_json::{Value, json};

use crate::anat::Anatomy;
use crate::asl::AslResult;
use crate::catalogue::{AnatFile, GroupFile, RunFile, TemplateSpace};
use crate::template::Template;
use crate::{Error, Result};
use cbflow_register::AffineTransform;

/// BIDS URI of an input file (`bids:raw:<path relative to the dataset root>`).
pub(crate) fn source_uri(rel: &Path) -> String {
    format!("bids:raw:{}", rel.display())
}

/// The `space` and `res` entities of the template-space outputs made with `tpl`.
pub(crate) fn template_space(tpl: &Template) -> TemplateSpace {
    TemplateSpace::new(&tpl.name, &tpl.res)
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
/// participant level wrote into `out` ([`RunFile::TemplateCbf`] of `tpl`): its entities, or
/// `None` when there is none. Two matching runs are an error naming both.
pub(crate) fn find_template_run(
    out: &Path,
    tpl: &Template,
    sub: &str,
    ses: Option<&str>,
    sel: &RunSelector,
) -> Result<Option<Entities>> {
    let mut rel_dir = PathBuf::from(format!("sub-{sub}"));
    if let Some(s) = ses {
        rel_dir.push(format!("ses-{s}"));
    }
    rel_dir.push("perf");
    let dir = out.join(&rel_dir);
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut names: Vec<String> = listing
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let want = RunFile::TemplateCbf(template_space(tpl));
    let mut found: Vec<(Entities, String)> = Vec::new();
    for name in names {
        match RunFile::identify(&rel_dir.join(&name)) {
            Some((kind, e)) if kind == want && sel.matches(&e) => found.push((e, name)),
            _ => {}
        }
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

/// Path in `out` of the run's template-space file of kind `kind` (a [`RunFile`] variant holding
/// a [`TemplateSpace`]), in the space of `tpl`.
pub(crate) fn template_output(
    out: &Path,
    run: &Entities,
    tpl: &Template,
    kind: fn(TemplateSpace) -> RunFile,
) -> Result<PathBuf> {
    kind(template_space(tpl)).path(out, run)
}

/// The name of the template-space CBF map [`find_template_run`] looks for, for messages: the
/// selector's entities with `sub` and `ses` (the error, should a label be unusable).
pub(crate) fn wanted_template_cbf(
    tpl: &Template,
    sub: &str,
    ses: Option<&str>,
    sel: &RunSelector,
) -> String {
    let mut e: Entities = sel
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    e.set("sub", sub);
    if let Some(s) = ses {
        e.set("ses", s);
    }
    RunFile::TemplateCbf(template_space(tpl))
        .file_name(&e)
        .unwrap_or_else(|err| err.to_string())
}

/// Path in `out` of the template-space file of the run `sub-<sub>_ses-<ses>_run-<run>` (test
/// fixtures): `desc` `None` and `.nii.gz` for [`RunFile::TemplateCbf`], `roi` and `.tsv` for
/// [`RunFile::RoiTable`].
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
    let e: Entities = [("sub", sub), ("ses", ses), ("run", run)]
        .into_iter()
        .collect();
    let file = match (desc, extension) {
        (None, ".nii.gz") => RunFile::TemplateCbf(template_space(tpl)),
        (Some("roi"), ".tsv") => RunFile::RoiTable(template_space(tpl)),
        other => panic!("no template-space run file {other:?}"),
    };
    file.path(out, &e)
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
    let mut put = |file: RunFile, vol: &Volume, dtype: DataType, sidecar: Value| -> Result<()> {
        written.push(w.write_nifti(&file.rel_path(e)?, vol, dtype, &sidecar)?);
        Ok(())
    };
    let like = &r.reference;
    put(
        RunFile::Cbf,
        &volume3(like, &r.cbf)?,
        DataType::Float32,
        base(Some("mean CBF over all label/control pairs")),
    )?;
    put(
        RunFile::TimeseriesCbf,
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
        put(RunFile::ScoreCbf, &volume3(like, s)?, DataType::Float32, sc)?;
    }
    if let Some(att) = &r.att {
        let mut sc = base(Some("arterial transit time"));
        sc["Units"] = json!("s");
        put(RunFile::Att, &volume3(like, att)?, DataType::Float32, sc)?;
    }
    let mut dm = base(Some("mean ΔM (control − label) after realignment"));
    dm["Units"] = json!("arbitrary (scanner units)");
    put(
        RunFile::MeanDeltaM,
        &volume3(like, &r.mean_delta_m)?,
        DataType::Float32,
        dm,
    )?;
    let mut m0 = base(Some(
        "M0 used for calibration: averaged, corrected for RepetitionTimePreparation, scaled",
    ));
    m0["Units"] = json!("arbitrary (scanner units)");
    put(
        RunFile::CalibrationM0,
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
        RunFile::BrainMask,
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
    let confounds = RunFile::Confounds.rel_path(e)?;
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
        let qc_rel = RunFile::Qc.rel_path(e)?;
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
    let sources = vec![source_uri(&a.t1w_file.rel_path)];
    let mut out = Vec::new();
    let affine_rel = AnatFile::template_affine(&tpl.name).rel_path(e)?;
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
    out.push(w.write_nifti(&AnatFile::template_warp(&tpl.name).rel_path(e)?, &fv, DataType::Float32, &json!({"Units": "mm", "Convention": convention, "Sources": sources, "Method": "symmetric diffeomorphic registration of the T1w brain to the template brain: stationary velocity field, local cross-correlation, both images moved to the midpoint (cbflow-register, after SyN and log-domain demons), after N4-like bias correction and template-based brain extraction", "LNCC": a.syn.metric_value, "QC": qc}))?);
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
    out.push(w.write_nifti(
        &AnatFile::BrainMask.rel_path(e)?,
        &mask,
        DataType::Uint8,
        &json!({"Type": "Brain", "Description": how, "Sources": sources, "QC": qc}),
    )?);
    out.push(w.write_nifti(
        &AnatFile::PreprocT1w.rel_path(e)?,
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
    let space = template_space(tpl);
    let sources = vec![source_uri(&run.asl.rel_path)];
    let mut out = Vec::new();
    let xfm_rel = RunFile::AslToT1wXfm.rel_path(e)?;
    out.push(w.write_bytes(&xfm_rel, rigid.to_itk_string().as_bytes())?);
    let side = |desc: &str| json!({"Units": "mL/100g/min", "Sources": sources, "Description": desc, "SpatialReference": tpl.name, "Resampling": "one trilinear resampling through warp ∘ affine ∘ rigid", "Parameters": r.parameters});
    out.push(w.write_nifti(
        &RunFile::TemplateCbf(space.clone()).rel_path(e)?,
        cbf,
        DataType::Float32,
        &side("mean CBF in template space"),
    )?);
    if let Some(s) = score {
        out.push(w.write_nifti(
            &RunFile::TemplateScoreCbf(space.clone()).rel_path(e)?,
            s,
            DataType::Float32,
            &side("SCORE robust mean CBF in template space"),
        )?);
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
    out.extend(w.write_table(
        &RunFile::RoiTable(space.clone()).rel_path(e)?,
        &Table::new(cols, rows)?,
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
        out.extend(w.write_table(
            &RunFile::RoiTimeseries(space).rel_path(e)?,
            &Table::new(cols, rows)?,
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
