//! Anatomy: T1w → template (affine + diffeomorphic), ASL → T1w (rigid, mutual information), and
//! the composed transforms that bring template maps to the ASL grid and ASL maps to the template,
//! each in one resampling.

use cbflow_bids::BidsFile;
use cbflow_image::{Grid, Interp, Volume};
use cbflow_register::{
    AffineTransform, LinearMetric, LinearOptions, NormaliseOptions, SynResult, Transform,
    TransformChain,
};
use ndarray::Array3;

use crate::asl::NativeTissue;
use crate::catalogue::NormaliseFile;
use crate::template::Template;
use crate::{Error, Result};

/// One session's normalisation: template world → T1w world.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// The T1w used.
    pub t1w_file: BidsFile,
    /// The T1w image after bias-field correction.
    pub t1w: Volume,
    /// Brain-to-brain affine + nonlinear registration (fixed: template, moving: T1w).
    pub syn: SynResult,
    /// Brain mask on the T1w grid (the input's own brain when it was skull-stripped, else the
    /// template brain mask pulled back through the head registration).
    pub brain_mask: Array3<bool>,
    /// The input T1w was already skull-stripped.
    pub skull_stripped_input: bool,
    /// Normalised cross-correlation of the T1w brain with the template brain after the affine.
    pub brain_correlation: f64,
    /// Dice of the T1w brain mask warped to the template with the template brain mask.
    pub brain_dice: f64,
}

fn reg_err<'a>(
    path: &'a std::path::Path,
    step: &'static str,
) -> impl Fn(cbflow_register::Error) -> Error + 'a {
    move |e| Error::Step {
        path: path.to_path_buf(),
        step,
        message: e.to_string(),
    }
}

/// Normalises a session's T1w to the template ([`normalise_image`]).
pub fn normalise(t1w_file: &BidsFile, tpl: &Template) -> Result<Anatomy> {
    let t1w = cbflow_image::read(&t1w_file.path)?;
    let n = normalise_image(&t1w, &t1w_file.path, tpl)?;
    Ok(Anatomy {
        t1w_file: t1w_file.clone(),
        t1w: n.corrected,
        syn: n.syn,
        brain_mask: n.brain_mask,
        skull_stripped_input: n.skull_stripped_input,
        brain_correlation: n.brain_correlation,
        brain_dice: n.brain_dice,
    })
}

/// Normalises a T1w image (`path` names it in errors) to the template, with or without its
/// skull: bias-field correction, brain extraction, brain-to-brain affine and symmetric
/// diffeomorphic registration ([`cbflow_register::normalise_t1w`]).
pub fn normalise_image(
    t1w: &Volume,
    path: &std::path::Path,
    tpl: &Template,
) -> Result<cbflow_register::Normalisation> {
    if t1w.n_volumes() != 1 {
        return Err(Error::Metadata {
            path: path.to_path_buf(),
            field: "dim".into(),
            message: format!("a T1w must be 3D, got {} volumes", t1w.n_volumes()),
        });
    }
    cbflow_register::normalise_t1w(t1w, &tpl.t1w, &tpl.brain_mask, &NormaliseOptions::default())
        .map_err(reg_err(path, "T1w to template normalisation"))
}

/// What [`normalise_to_dir`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NormaliseSummary {
    /// The input was already skull-stripped.
    pub skull_stripped_input: bool,
    /// Dice of the warped T1w brain mask with the template brain mask.
    pub brain_dice: f64,
    /// Determinant of the brain-to-brain affine.
    pub affine_determinant: f64,
    /// Normalised cross-correlation of the brains after the affine.
    pub brain_correlation: f64,
    /// Wall time of the normalisation, s.
    pub seconds: f64,
    /// Files written.
    pub files: Vec<std::path::PathBuf>,
}

/// Normalises the T1w at `t1w_path` to `tpl` ([`normalise_image`]) and writes into `out_dir`
/// the files of [`NormaliseFile`]: the bias-corrected T1w and its brain mask (T1w grid), the
/// corrected T1w in template space, the transforms as ANTs reads them (the affine as ITK text,
/// the warp as a 5D LPS displacement field; ANTs order `[warp, affine]`), each of `warp` brought
/// into template space (trilinear) and the summary (QC figures).
/// Nothing is written when the normalisation fails.
pub fn normalise_to_dir(
    t1w_path: &std::path::Path,
    out_dir: &std::path::Path,
    tpl: &Template,
    warp: &[std::path::PathBuf],
) -> Result<NormaliseSummary> {
    use cbflow_image::DataType;
    let t1w = cbflow_image::read(t1w_path)?;
    let extra: Vec<(&std::path::PathBuf, Volume)> = warp
        .iter()
        .map(|p| Ok((p, cbflow_image::read(p)?)))
        .collect::<Result<_>>()?;
    let t = std::time::Instant::now();
    let n = normalise_image(&t1w, t1w_path, tpl)?;
    let seconds = t.elapsed().as_secs_f64();
    let io = |p: &std::path::Path, e: std::io::Error| {
        Error::Bids(cbflow_bids::Error::Io {
            path: p.to_path_buf(),
            source: e,
        })
    };
    std::fs::create_dir_all(out_dir).map_err(|e| io(out_dir, e))?;
    let forward = n.syn.forward_chain();
    let to_tpl = |v: &Volume| -> Result<Volume> {
        cbflow_register::apply(v, &tpl.grid, &forward, Interp::Linear)
            .map_err(reg_err(t1w_path, "resampling to template space"))
    };
    let mut files = Vec::new();
    let mut put = |file: NormaliseFile, v: &Volume, dt: DataType| -> Result<()> {
        let p = file.path(out_dir)?;
        cbflow_image::write(&p, v, dt)?;
        files.push(p);
        Ok(())
    };
    let template = || tpl.name.clone();
    put(NormaliseFile::PreprocT1w, &n.corrected, DataType::Float32)?;
    let mask = n
        .corrected
        .with_data3(n.brain_mask.mapv(|b| if b { 1.0 } else { 0.0 }))?;
    put(NormaliseFile::BrainMask, &mask, DataType::Uint8)?;
    put(
        NormaliseFile::TemplateT1w {
            template: template(),
        },
        &to_tpl(&n.corrected)?,
        DataType::Float32,
    )?;
    for (p, v) in &extra {
        let stem = p
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("image")
            .trim_end_matches(".gz")
            .trim_end_matches(".nii");
        put(
            NormaliseFile::Resampled {
                stem: stem.into(),
                template: template(),
            },
            &to_tpl(v)?,
            DataType::Float32,
        )?;
    }
    let (warp_file, affine_file) = (
        NormaliseFile::TemplateWarp {
            template: template(),
        },
        NormaliseFile::TemplateAffine {
            template: template(),
        },
    );
    let itk = n
        .syn
        .forward
        .to_itk_volume()
        .map_err(reg_err(t1w_path, "writing the warp"))?;
    put(warp_file.clone(), &itk, DataType::Float32)?;
    let aff = affine_file.path(out_dir)?;
    cbflow_bids::atomic_write(&aff, n.syn.affine.to_itk_string().as_bytes())?;
    files.push(aff);
    let summary = NormaliseSummary {
        skull_stripped_input: n.skull_stripped_input,
        brain_dice: n.brain_dice,
        affine_determinant: n.syn.affine.determinant(),
        brain_correlation: n.brain_correlation,
        seconds,
        files: files.clone(),
    };
    let qc = serde_json::json!({
        "T1w": t1w_path,
        "Template": tpl.name,
        "Summary": summary,
        "LNCC": n.syn.metric_value,
        "Iterations": n.syn.iterations,
        "Transforms": format!("{} then {} (ANTs order [warp, affine]): template point x ↦ T1w point A(x + u(x))", warp_file.file_name()?, affine_file.file_name()?),
    });
    let j = NormaliseFile::Summary.path(out_dir)?;
    cbflow_bids::atomic_write(
        &j,
        serde_json::to_string_pretty(&qc)
            .expect("plain data")
            .as_bytes(),
    )?;
    Ok(summary)
}

/// Rigid ASL → T1w registration by Mattes mutual information (M0 and T1w differ in contrast)
/// over the T1w brain mask dilated by two voxels: the brain's outline against CSF and skull is
/// the M0's strongest feature (inside the brain mask only, the phantom's M0 landed 1.2–1.6 mm
/// off; with the rim, 0.1 mm). Returns the T1w-world → ASL-world transform.
pub fn asl_to_t1w(
    anat: &Anatomy,
    m0: &Volume,
    asl_path: &std::path::Path,
) -> Result<AffineTransform> {
    let opts = LinearOptions {
        metric: LinearMetric::MattesMi { bins: 32 },
        shrink_factors: vec![2, 1],
        smoothing_sigmas: vec![1.0, 0.0],
        iterations: vec![100, 50],
        fixed_mask: Some(cbflow_image::masks::dilate(&anat.brain_mask, 2)),
        ..LinearOptions::default()
    };
    let r = cbflow_register::register_rigid(&anat.t1w, m0, &opts)
        .map_err(reg_err(asl_path, "ASL to T1w registration"))?;
    Ok(r.transform)
}

/// Template world → ASL world: `[warp, T1w affine, T1w → ASL rigid]`.
pub fn template_to_asl(anat: &Anatomy, rigid: &AffineTransform) -> TransformChain {
    anat.syn
        .forward_chain()
        .then(Transform::Affine(rigid.clone()))
}

/// ASL world → template world: `[rigid⁻¹, affine⁻¹, inverse warp]`.
pub fn asl_to_template(
    anat: &Anatomy,
    rigid: &AffineTransform,
    asl_path: &std::path::Path,
) -> Result<TransformChain> {
    let err = reg_err(asl_path, "inverting the ASL → template transform");
    let mut chain = TransformChain::from_affine(rigid.inverse().map_err(&err)?);
    chain
        .steps
        .extend(anat.syn.inverse_chain().map_err(&err)?.steps);
    Ok(chain)
}

/// The template's tissue priors on the ASL grid.
pub fn native_tissue(
    tpl: &Template,
    to_template: &TransformChain,
    asl_grid: &Grid,
) -> Result<NativeTissue> {
    let pull = |v: &Volume| -> Result<Array3<f32>> {
        let r = cbflow_register::apply(v, asl_grid, to_template, Interp::Linear).map_err(|e| {
            Error::Step {
                path: "template".into(),
                step: "tissue priors to ASL space",
                message: e.to_string(),
            }
        })?;
        Ok(r.frame(0).to_owned())
    };
    Ok(NativeTissue {
        gm: pull(&tpl.gm)?,
        wm: pull(&tpl.wm)?,
        csf: pull(&tpl.csf)?,
    })
}

/// A native-space map resampled once onto the template grid.
pub fn to_template_space(
    map: &Volume,
    tpl: &Template,
    template_to_asl: &TransformChain,
) -> Result<Volume> {
    cbflow_register::apply(map, &tpl.grid, template_to_asl, Interp::Linear).map_err(|e| {
        Error::Step {
            path: "ASL map".into(),
            step: "resampling to template space",
            message: e.to_string(),
        }
    })
}
