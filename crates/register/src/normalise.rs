//! T1w → template normalisation that holds with or without the skull: bias-field correction,
//! template-based brain extraction (or the input's own brain when it is already skull-stripped),
//! then brain-to-brain affine and symmetric diffeomorphic registration, as fMRIPrep does with
//! ANTs (`antsBrainExtraction.sh`, then `antsRegistration` of the brain to the template brain).
//!
//! Why brain to brain: a nonlinear registration of a skull-stripped T1w to a whole-head template
//! (or the reverse) has nothing to stop it matching brain to scalp, and stretches the brain to
//! the head (measured here: a brain-extent Dice of 0.78 and a brain mask covering a third of the
//! brain on a stripped MPRAGE). Brain against brain, both with the same outline, it cannot.

use cbflow_image::{Volume, masks};
use ndarray::{Array3, Zip};

use crate::bias::{BiasCorrection, BiasOptions, correct_bias};
use crate::brain::brain_mask_from_transform;
use crate::linear::{Initialisation, LinearMetric, LinearOptions, LinearResult, register_affine};
use crate::syn::{SynOptions, SynResult, register_syn};
use crate::transform::{AffineTransform, TransformChain};
use crate::util::block_mean;
use crate::{Error, Result};

/// Options of [`normalise_t1w`].
#[derive(Debug, Clone, PartialEq)]
pub struct NormaliseOptions {
    /// Bias-field correction of the T1w (`None`: off); its `shrink` is set from
    /// [`NormaliseOptions::bias_voxel_mm`].
    pub bias: Option<BiasOptions>,
    /// Voxel size (mm) the bias field is fitted at (4: the T1w is block-averaged to it).
    pub bias_voxel_mm: f64,
    /// First affine (the head to the template head; a stripped brain to the template brain):
    /// coarse, it starts the brain extraction and the final affine.
    pub head_linear: LinearOptions,
    /// Final affine, brain to template brain, from the first.
    pub linear: LinearOptions,
    /// Nonlinear stage of the brain extraction (template head → T1w head); coarse.
    pub extraction_syn: SynOptions,
    /// Nonlinear stage of the normalisation (template brain → T1w brain).
    pub syn: SynOptions,
    /// Voxel size (mm) of the finest nonlinear level: the shrink factors of both nonlinear
    /// stages are multiplied by `round(syn_voxel_mm / template voxel)` (4 mm: shrink 2 of a
    /// 2 mm template; the field is then upsampled, as ANTs' default SyN stops at shrink 2).
    /// Tuned on the benchmark pair (docs/validation.md): a last level at the template's own
    /// 2 mm took 0.4 s per iteration for a GM Dice 0.003 higher.
    pub syn_voxel_mm: f64,
    /// An input is taken as already skull-stripped when more than this share of its voxels is
    /// exactly zero (a masked background; scanner images have noise there) …
    pub stripped_zero_share: f64,
    /// … and its non-zero part (largest component, holes filled) has the volume of a brain,
    /// in mL (up to 2800: the intracranial volume of MNI-sized brains, ~1.9 L for the ICBM
    /// 2009a template, and more for a large head; a head with its skull is 3.5 L or more).
    pub stripped_volume_ml: (f64, f64),
    /// Height (mm) of the head kept below its top for the first affine (170, FSL robustfov's).
    pub head_height_mm: f64,
    /// Smallest normalised cross-correlation of the T1w brain with the template brain after the
    /// affine (over the template brain eroded by 6 mm, where the T1w's brain is) for the input
    /// to count as a brain. Measured on the MNI152 template: T1w images 0.61–0.73 (the real
    /// MPRAGE with and without skull, the benchmark pair, synthetic heads), uniform noise 0.05;
    /// on the phantom: its T1w 0.92, noise 0.23.
    pub min_brain_correlation: f64,
    /// Smallest share of the template brain that must lie inside the T1w's field of view.
    pub min_coverage: f64,
}

impl Default for NormaliseOptions {
    fn default() -> Self {
        Self {
            bias: Some(BiasOptions::default()),
            bias_voxel_mm: 4.0,
            head_linear: LinearOptions {
                metric: LinearMetric::MattesMi { bins: 32 },
                // principal axes are ill-defined for a near-spherical head: the moments
                // rotation started the synthetic heads in a wrong basin (determinant 0.65
                // instead of 0.84, a brain mask Dice of 0.80 instead of 0.95)
                initialisation: Initialisation::CentreOfMass,
                shrink_factors: vec![4, 2],
                smoothing_sigmas: vec![2.0, 1.0],
                iterations: vec![150, 60],
                ..LinearOptions::default()
            },
            linear: LinearOptions {
                metric: LinearMetric::MattesMi { bins: 32 },
                ..LinearOptions::default()
            },
            extraction_syn: SynOptions {
                shrink_factors: vec![2, 1],
                smoothing_sigmas: vec![2.0, 1.0],
                iterations: vec![60, 30],
                ..SynOptions::default()
            },
            syn: SynOptions {
                shrink_factors: vec![2, 1],
                smoothing_sigmas: vec![2.0, 1.0],
                iterations: vec![80, 60],
                // the velocity field smoothed at σ 1.5 voxels per iteration (the default 0.7
                // let the phantom's featureless deep white matter drift 6–7 mm where the truth
                // moves 2; benchmark pair GM Dice 0.801 → 0.799, synthetic T1w 0.888 → 0.900)
                field_sigma: 1.5,
                ..SynOptions::default()
            },
            syn_voxel_mm: 4.0,
            stripped_zero_share: 0.2,
            stripped_volume_ml: (600.0, 2800.0),
            head_height_mm: 170.0,
            min_brain_correlation: 0.4,
            min_coverage: 0.9,
        }
    }
}

/// Result of [`normalise_t1w`]. Registrations have the template as the fixed image.
#[derive(Debug, Clone)]
pub struct Normalisation {
    /// The T1w after bias-field correction (its grid).
    pub corrected: Volume,
    /// The multiplicative bias field (T1w grid), when corrected.
    pub bias_field: Option<Volume>,
    /// Brain mask on the T1w grid.
    pub brain_mask: Array3<bool>,
    /// The input was already skull-stripped (its brain is its non-zero voxels).
    pub skull_stripped_input: bool,
    /// Affine of the head (template head → T1w head), the start of everything else.
    pub head_affine: LinearResult,
    /// Brain-to-brain affine + nonlinear registration (template brain → T1w brain).
    pub syn: SynResult,
    /// Normalised cross-correlation of the T1w brain with the template brain after the affine.
    pub brain_correlation: f64,
    /// Dice of the T1w brain mask, warped to the template, with the template brain mask.
    pub brain_dice: f64,
}

/// Normalises a T1w (with or without its skull) to a template given as its whole-head T1w
/// (`template_head`) and its brain mask (`template_brain`, values in [0, 1], same grid):
///
/// 1. bias-field correction ([`correct_bias`]) within the head (Otsu foreground, filled);
/// 2. an input whose background is exactly zero and whose non-zero part has a brain's volume
///    ([`NormaliseOptions::stripped_volume_ml`]) is skull-stripped: its brain is that part,
///    and it is registered to the template brain from the start;
/// 3. otherwise the template head is registered to the T1w head (affine, Mattes MI, moments
///    initialisation; then a coarse nonlinear stage) and the template brain mask pulled back
///    through it, thresholded at ½, holes filled (template-based brain extraction);
/// 4. affine and symmetric diffeomorphic registration ([`register_syn`]) of the template brain
///    to the T1w brain (each image zero outside its brain).
///
/// Errors: a constant image; no head found; an input that does not correlate with the template
/// brain after the affine (noise, another kind of image: [`Error::NotABrain`]); a field of view
/// that misses part of the brain ([`Error::NoOverlap`]); any error of the registrations.
pub fn normalise_t1w(
    t1w: &Volume,
    template_head: &Volume,
    template_brain: &Volume,
    opts: &NormaliseOptions,
) -> Result<Normalisation> {
    for (what, v) in [
        ("T1w", t1w),
        ("template", template_head),
        ("template brain mask", template_brain),
    ] {
        if v.n_volumes() != 1 {
            return Err(crate::error::invalid(
                what,
                format!("{} volumes", v.n_volumes()),
                "a 3D image is required",
            ));
        }
    }
    let raw = t1w.frame(0).mapv(|v| if v.is_finite() { v } else { 0.0 });
    let (lo, hi) = raw
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Err(Error::NotABrain {
            reason: format!("the image is constant ({lo})"),
        });
    }
    // 1. bias field within the head
    let t1vox = smallest_voxel(t1w);
    let (corrected, bias_field) = match &opts.bias {
        Some(b) => {
            // the field is fitted on voxels of about `bias_voxel_mm` whatever the input's
            let b = BiasOptions {
                shrink: ((opts.bias_voxel_mm / t1vox).round() as usize).max(1),
                ..b.clone()
            };
            let BiasCorrection {
                corrected, field, ..
            } = correct_bias(&t1w.with_data3(raw.clone())?, None, &b)?;
            (corrected, Some(field))
        }
        None => (t1w.with_data3(raw.clone())?, None),
    };
    // registrations run on the T1w block-averaged to about the template's voxel size: the
    // transforms are world maps, so they apply to the full-resolution image unchanged
    let tvox = smallest_voxel(template_head);
    let factor = ((tvox / t1vox).round() as usize).max(1);
    let coarse = |v: &Volume| -> Result<Volume> {
        if factor == 1 {
            return Ok(v.clone());
        }
        let (a, aff) = block_mean(&v.frame(0).to_owned(), &v.affine, factor);
        Ok(Volume::new(a.into_dyn(), aff)?)
    };
    let work = coarse(&corrected)?;
    let f = ((opts.syn_voxel_mm / tvox).round() as usize).max(1);
    let scaled = |o: &SynOptions| SynOptions {
        shrink_factors: o.shrink_factors.iter().map(|s| s * f).collect(),
        ..o.clone()
    };
    let (extraction_syn, final_syn) = (scaled(&opts.extraction_syn), scaled(&opts.syn));
    // 2. is the input already skull-stripped? Its background is exactly zero and its non-zero
    // part has the volume of a brain, not of a head
    let t1grid = t1w.grid();
    let voxel_ml = t1grid.voxel_size().iter().product::<f64>() / 1000.0;
    let nonzero = raw.mapv(|v| v.abs() > 1e-6 * hi.abs().max(lo.abs()));
    let body = masks::fill_holes(&masks::largest_component(&nonzero));
    let body_ml = masks::count(&body) as f64 * voxel_ml;
    let zero_share = 1.0 - masks::count(&nonzero) as f64 / nonzero.len() as f64;
    let skull_stripped_input = zero_share > opts.stripped_zero_share
        && body_ml >= opts.stripped_volume_ml.0
        && body_ml <= opts.stripped_volume_ml.1;
    // the brain as one filled envelope (ventricles inside it): a mask with holes would put edges
    // of its own making into both brain images, and the brain-to-brain registration would copy
    // the extraction's errors at them
    let tb = masks::fill_holes(&template_brain.frame(0).mapv(|v| v > 0.5));
    let template_brain = &template_brain.with_data3(tb.mapv(|b| if b { 1.0 } else { 0.0 }))?;
    let tgrid = template_head.grid();
    let tpl_brain = Zip::from(template_head.frame(0))
        .and(&tb)
        .map_collect(|&v, &m| if m { v } else { 0.0 });
    let tpl_brain = template_head.with_data3(tpl_brain)?;
    // 3. the affine everything else starts from: brain to brain for a stripped input (a
    // stripped brain against a head stretches the affine); otherwise the head without the
    // neck, within `head_height_mm` of the top of the head (world superior), as FSL's
    // robustfov, so that the neck and shoulders of a large field of view neither move the
    // centre of mass nor pull the affine
    let head_work = if skull_stripped_input {
        None
    } else {
        Some(crop_below(&work, opts.head_height_mm)?)
    };
    let head_affine = match &head_work {
        None => register_affine(&tpl_brain, &work, &opts.head_linear)?,
        Some(w) => register_affine(template_head, w, &opts.head_linear)?,
    };
    // before any nonlinear work: the field of view must hold the brain
    let coverage = coverage(&tb, &tgrid, &t1grid, &head_affine.transform);
    if coverage < opts.min_coverage {
        return Err(Error::NoOverlap {
            stage: "T1w field of view over the template brain".into(),
            fraction_inside: coverage,
            minimum: opts.min_coverage,
        });
    }
    // brain extraction: the template brain mask pulled back through a coarse nonlinear
    // registration of the heads (a diffeomorphism keeps the mask's topology: one component,
    // no holes)
    let brain_mask = match &head_work {
        None => body,
        Some(w) => {
            let s = register_syn(template_head, w, &head_affine.transform, &extraction_syn)?;
            brain_mask_from_transform(&t1grid, template_brain, &s.inverse_chain()?, 0.5)?
        }
    };
    // 4. brain to brain
    let t1_brain = Zip::from(corrected.frame(0))
        .and(&brain_mask)
        .map_collect(|&v, &m| if m { v } else { 0.0 });
    let t1_brain = coarse(&corrected.with_data3(t1_brain)?)?;
    let lin = LinearOptions {
        initialisation: Initialisation::Transform(head_affine.transform.clone()),
        fixed_mask: Some(masks::dilate(&tb, 2)),
        ..opts.linear.clone()
    };
    let brain_affine = register_affine(&tpl_brain, &t1_brain, &lin)?;
    // over the template brain eroded by 6 mm: along the outline both images drop to zero
    // (each is masked), which correlates whatever lies inside (uniform noise: r = 0.42 over the
    // whole mask)
    let core = masks::erode(&tb, ((6.0 / tvox).round() as usize).max(1));
    let brain_correlation = masked_ncc(&tpl_brain, &t1_brain, &core, &brain_affine.transform)?;
    if brain_correlation < opts.min_brain_correlation {
        return Err(Error::NotABrain {
            reason: format!(
                "after the affine, its brain correlates with the template brain at r = {brain_correlation:.2} (a T1w brain gives above {:.2})",
                opts.min_brain_correlation
            ),
        });
    }
    let syn = register_syn(&tpl_brain, &t1_brain, &brain_affine.transform, &final_syn)?;
    // figure of merit: the T1w brain mask in template space against the template's
    let m = t1w.with_data3(brain_mask.mapv(|b| if b { 1.0 } else { 0.0 }))?;
    let warped = crate::transform::apply(
        &m,
        &tgrid,
        &syn.forward_chain(),
        cbflow_image::Interp::Linear,
    )?;
    let wm = warped.frame(0).mapv(|v| v > 0.5);
    let inter = Zip::from(&wm)
        .and(&tb)
        .fold(0usize, |n, &a, &b| n + usize::from(a && b)) as f64;
    let brain_dice = 2.0 * inter / (masks::count(&wm) + masks::count(&tb)).max(1) as f64;
    Ok(Normalisation {
        corrected,
        bias_field,
        brain_mask,
        skull_stripped_input,
        head_affine,
        syn,
        brain_correlation,
        brain_dice,
    })
}

/// `v` with every voxel more than `height` mm below the top of the head (the most superior
/// voxel of the Otsu foreground's largest component, in world z) set to 0.
fn crop_below(v: &Volume, height: f64) -> Result<Volume> {
    let data = v.frame(0);
    let Ok(fg) = masks::otsu_mask(data) else {
        return Ok(v.clone());
    };
    let fg = masks::largest_component(&fg);
    let g = v.grid();
    let z = |i: usize, j: usize, k: usize| g.voxel_to_world([i as f64, j as f64, k as f64])[2];
    let top = fg
        .indexed_iter()
        .filter(|(_, b)| **b)
        .map(|((i, j, k), _)| z(i, j, k))
        .fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return Ok(v.clone());
    }
    let out = ndarray::Array3::from_shape_fn(data.dim(), |(i, j, k)| {
        if z(i, j, k) >= top - height {
            data[[i, j, k]]
        } else {
            0.0
        }
    });
    Ok(v.with_data3(out)?)
}

/// Share of the template brain's voxels whose image under `t` lies inside the T1w grid.
fn coverage(
    tb: &Array3<bool>,
    tgrid: &cbflow_image::Grid,
    t1grid: &cbflow_image::Grid,
    t: &AffineTransform,
) -> f64 {
    let Some(inv) = t1grid.affine.try_inverse() else {
        return 0.0;
    };
    let m = inv * t.matrix * tgrid.affine;
    let (mut n, mut inside) = (0usize, 0usize);
    for ((i, j, k), &b) in tb.indexed_iter() {
        if !b {
            continue;
        }
        n += 1;
        let p = crate::util::mul_point(&m, [i as f64, j as f64, k as f64]);
        if (0..3).all(|a| p[a] >= -0.5 && p[a] <= t1grid.dims[a] as f64 - 0.5) {
            inside += 1;
        }
    }
    inside as f64 / n.max(1) as f64
}

/// NCC over the template mask of the template brain and the T1w brain resampled through `t`.
/// The smallest voxel dimension (mm) of an image.
fn smallest_voxel(v: &Volume) -> f64 {
    v.grid()
        .voxel_size()
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
}

fn masked_ncc(tpl: &Volume, t1: &Volume, mask: &Array3<bool>, t: &AffineTransform) -> Result<f64> {
    let r = crate::transform::apply(
        t1,
        &tpl.grid(),
        &TransformChain::from_affine(t.clone()),
        cbflow_image::Interp::Linear,
    )?;
    // and only where the T1w's brain is (its mask's zeros against the template's darker
    // grey matter would correlate by themselves: uniform noise on the phantom gave r = 0.52)
    let both = Zip::from(mask)
        .and(r.frame(0))
        .map_collect(|&m, &v| m && v > 0.0);
    crate::metric::ncc(tpl.frame(0), r.frame(0), Some(both.view()))
}
