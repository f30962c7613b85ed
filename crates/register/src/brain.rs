//! Brain extraction by registration: the template brain mask brought onto the T1w grid.

use cbflow_image::{Grid, Interp, Volume};
use ndarray::Array3;

use crate::linear::{LinearOptions, LinearResult, register_affine};
use crate::syn::{SynOptions, SynResult, register_syn};
use crate::transform::{TransformChain, apply};
use crate::{Error, Result};

/// Options of [`brain_mask_from_template`].
#[derive(Debug, Clone, PartialEq)]
pub struct BrainMaskOptions {
    /// Affine stage (template → T1w).
    pub linear: LinearOptions,
    /// Nonlinear stage; `None` for affine only. Shrink factors refer to the T1w grid.
    pub syn: Option<SynOptions>,
    /// Threshold on the linearly interpolated template mask (0.5).
    pub threshold: f32,
}

impl Default for BrainMaskOptions {
    fn default() -> Self {
        Self {
            linear: LinearOptions {
                metric: crate::LinearMetric::Ncc,
                ..Default::default()
            },
            syn: Some(SynOptions {
                shrink_factors: vec![8, 4, 2],
                smoothing_sigmas: vec![4.0, 2.0, 1.0],
                iterations: vec![60, 40, 10],
                ..Default::default()
            }),
            threshold: 0.5,
        }
    }
}

/// Result of [`brain_mask_from_template`].
#[derive(Debug, Clone, PartialEq)]
pub struct BrainExtraction {
    /// Brain mask on the T1w grid, shape of the T1w image.
    pub mask: Array3<bool>,
    /// Affine registration (fixed T1w, moving template).
    pub affine: LinearResult,
    /// Nonlinear registration (fixed T1w, moving template), when run.
    pub syn: Option<SynResult>,
}

/// Template brain mask (any grid; values in [0, 1]) resampled onto `t1_grid` through `chain`
/// (T1w world → template world) with trilinear interpolation and thresholded (`> threshold`).
/// Fails with [`Error::EmptyMask`] when the template mask or the result is empty.
pub fn brain_mask_from_transform(
    t1_grid: &Grid,
    template_mask: &Volume,
    chain: &TransformChain,
    threshold: f32,
) -> Result<Array3<bool>> {
    let n_tpl = template_mask
        .frame(0)
        .iter()
        .filter(|&&v| v > threshold)
        .count();
    if n_tpl == 0 {
        return Err(Error::EmptyMask {
            what: "template brain mask".into(),
            n_voxels: 0,
            needed: 1,
        });
    }
    let m = apply(template_mask, t1_grid, chain, Interp::Linear)?;
    let mask = m.frame(0).mapv(|v| v > threshold);
    let n = mask.iter().filter(|&&b| b).count();
    if n == 0 {
        return Err(Error::EmptyMask {
            what: "brain mask after warping the template mask".into(),
            n_voxels: 0,
            needed: 1,
        });
    }
    Ok(mask)
}

/// Brain extraction of a T1w image: register the template (moving) to the T1w (fixed), affine
/// then optionally diffeomorphic, and warp the template brain mask onto the T1w grid (as
/// ANTs' `antsBrainExtraction.sh` does, without its tissue refinement). `template_mask` must be
/// on the template's grid or any grid in the same world space.
pub fn brain_mask_from_template(
    t1: &Volume,
    template: &Volume,
    template_mask: &Volume,
    opts: &BrainMaskOptions,
) -> Result<BrainExtraction> {
    if template_mask.frame(0).iter().all(|&v| v <= opts.threshold) {
        return Err(Error::EmptyMask {
            what: "template brain mask".into(),
            n_voxels: 0,
            needed: 1,
        });
    }
    let affine = register_affine(t1, template, &opts.linear)?;
    let (chain, syn) = match &opts.syn {
        Some(so) => {
            let s = register_syn(t1, template, &affine.transform, so)?;
            (s.forward_chain(), Some(s))
        }
        None => (TransformChain::from_affine(affine.transform.clone()), None),
    };
    let mask = brain_mask_from_transform(&t1.grid(), template_mask, &chain, opts.threshold)?;
    Ok(BrainExtraction { mask, affine, syn })
}
