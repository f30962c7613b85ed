//! Anatomy: T1w → template (affine + diffeomorphic), ASL → T1w (rigid, mutual information), and
//! the composed transforms that bring template maps to the ASL grid and ASL maps to the template,
//! each in one resampling.

use cbflow_bids::BidsFile;
use cbflow_image::{Grid, Interp, Volume};
use cbflow_register::{
    AffineTransform, LinearMetric, LinearOptions, SynOptions, SynResult, Transform, TransformChain,
};
use ndarray::Array3;

use crate::asl::NativeTissue;
use crate::template::Template;
use crate::{Error, Result};

/// One session's normalisation: template world → T1w world.
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// The T1w used.
    pub t1w_file: BidsFile,
    /// The T1w image.
    pub t1w: Volume,
    /// Affine + nonlinear registration (fixed: template, moving: T1w).
    pub syn: SynResult,
    /// Brain mask on the T1w grid (the template brain mask pulled back).
    pub brain_mask: Array3<bool>,
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

/// Registers a T1w to the template: affine (Mattes MI, moments initialisation), then the
/// diffeomorphic demons of `cbflow-register` with the LNCC force.
pub fn normalise(t1w_file: &BidsFile, tpl: &Template) -> Result<Anatomy> {
    let t1w = cbflow_image::read(&t1w_file.path)?;
    if t1w.n_volumes() != 1 {
        return Err(Error::Metadata {
            path: t1w_file.path.clone(),
            field: "dim".into(),
            message: format!("a T1w must be 3D, got {} volumes", t1w.n_volumes()),
        });
    }
    let err = reg_err(&t1w_file.path, "T1w to template registration");
    let lin = LinearOptions::default();
    let affine = cbflow_register::register_affine(&tpl.t1w, &t1w, &lin).map_err(&err)?;
    let syn =
        cbflow_register::register_syn(&tpl.t1w, &t1w, &affine.transform, &SynOptions::default())
            .map_err(&err)?;
    let inv = syn.inverse_chain().map_err(&err)?;
    let brain_mask =
        cbflow_register::brain_mask_from_transform(&t1w.grid(), &tpl.brain_mask, &inv, 0.5)
            .map_err(&err)?;
    Ok(Anatomy {
        t1w_file: t1w_file.clone(),
        t1w,
        syn,
        brain_mask,
    })
}

/// Rigid ASL → T1w registration by Mattes mutual information (M0 and T1w differ in contrast):
/// returns the T1w-world → ASL-world transform.
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
        fixed_mask: Some(anat.brain_mask.clone()),
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
