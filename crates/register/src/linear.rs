//! Rigid (6 parameters) and affine (12 parameters) registration: multi-resolution pyramid,
//! centre-of-mass or moments initialisation, Mattes MI / NCC / mean squares on deterministic
//! samples, and a regular-step gradient descent with scaled parameters.

use cbflow_image::Volume;
use nalgebra::{Matrix3, Matrix4, SymmetricEigen, Vector3};
use ndarray::{Array3, ArrayView3};
use rayon::prelude::*;

use crate::metric::{MiSpec, mi_pairs, msq_pairs, ncc_pairs};
use crate::transform::{AffineTransform, rotation_zyx};
use crate::util::{
    Img, hash01, inv4, linear_part, mul_point, prepare_moving, shrink, shrink_mask, smooth,
};
use crate::{Error, Result};

/// Similarity metric of a linear registration.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LinearMetric {
    /// Mattes mutual information with `bins` histogram bins (different contrasts).
    MattesMi {
        /// Histogram bins (≥ 8; 32 is usual).
        bins: usize,
    },
    /// Normalised cross-correlation (same contrast, linear intensity relation).
    Ncc,
    /// Mean squared difference (same contrast and scale).
    MeanSquares,
}

/// How the transform is initialised before optimisation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Initialisation {
    /// Start from the identity (the headers' world alignment).
    Identity,
    /// Translate the moving image's intensity centre of mass onto the fixed one's.
    CentreOfMass,
    /// Centre of mass plus the rotation aligning the principal axes of the intensity
    /// distributions (axis signs chosen closest to the identity, proper rotation).
    Moments,
    /// Start from a given transform (fixed → moving).
    Transform(AffineTransform),
}

/// Options of [`register_rigid`] and [`register_affine`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinearOptions {
    /// Similarity metric.
    pub metric: LinearMetric,
    /// Pyramid shrink factors of the fixed grid, coarse to fine (e.g. `[4, 2, 1]`).
    pub shrink_factors: Vec<usize>,
    /// Gaussian smoothing σ per level, in voxels of the full-resolution fixed image
    /// (applied to both images, in mm); same length as `shrink_factors`.
    pub smoothing_sigmas: Vec<f64>,
    /// Maximum optimiser iterations per level; same length as `shrink_factors`.
    pub iterations: Vec<usize>,
    /// Fraction of fixed voxels (within the fixed mask) used as samples, in (0, 1].
    pub sampling_fraction: f64,
    /// Upper bound on the number of samples per level (the fraction is lowered to meet it).
    pub max_samples: usize,
    /// Seed of the deterministic sample selection.
    pub seed: u64,
    /// Initialisation.
    pub initialisation: Initialisation,
    /// Optional fixed-image mask, shape of the fixed image; samples are drawn inside it.
    pub fixed_mask: Option<Array3<bool>>,
    /// Minimum fraction of samples that must map inside the moving image (else
    /// [`Error::NoOverlap`]); also the fraction below which a step is rejected.
    pub min_overlap: f64,
    /// Also register the left-right mirrored moving image and fail with
    /// [`Error::LeftRightFlip`] when its final cost is lower by more than 0.1 % (doubles the
    /// run time). Meant for images of the same subject (ASL ↔ T1w): brains and templates are
    /// nearly symmetric, so across subjects the test is not informative.
    pub check_flip: bool,
    /// Optimiser convergence: stop a level when the step falls below this many mm.
    pub min_step_mm: f64,
}

impl Default for LinearOptions {
    fn default() -> Self {
        Self {
            metric: LinearMetric::MattesMi { bins: 32 },
            shrink_factors: vec![4, 2, 1],
            smoothing_sigmas: vec![2.0, 1.0, 0.0],
            iterations: vec![200, 100, 50],
            sampling_fraction: 0.25,
            max_samples: 30_000,
            seed: 1,
            initialisation: Initialisation::CentreOfMass,
            fixed_mask: None,
            min_overlap: 0.5,
            check_flip: false,
            min_step_mm: 0.01,
        }
    }
}

/// Result of a linear registration.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearResult {
    /// Fixed → moving world transform (RAS mm).
    pub transform: AffineTransform,
    /// Final cost at the finest level (lower is better): `-MI` (nats), `-NCC`, or the mean
    /// squared difference.
    pub metric_value: f64,
    /// Optimiser iterations used per level.
    pub iterations: Vec<usize>,
    /// Fraction of samples mapping inside the moving image at the end.
    pub fraction_inside: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rigid,
    Affine,
}

impl Kind {
    fn n(self) -> usize {
        match self {
            Kind::Rigid => 6,
            Kind::Affine => 12,
        }
    }
}

/// Register `moving` to `fixed` with a rigid transform (3 rotations, 3 translations); both
/// 3D volumes (any grids; world RAS mm). Returns the fixed → moving transform.
///
/// Errors: [`Error::NoOverlap`] when the images do not overlap after initialisation,
/// [`Error::EmptyMask`] for an empty fixed mask, [`Error::LeftRightFlip`] (with `check_flip`).
pub fn register_rigid(
    fixed: &Volume,
    moving: &Volume,
    opts: &LinearOptions,
) -> Result<LinearResult> {
    register(fixed, moving, opts, Kind::Rigid)
}

/// Register `moving` to `fixed` with a 12-parameter affine, after a rigid stage with the same
/// options (as ANTs' `Rigid` then `Affine` stages). Errors as [`register_rigid`], plus
/// [`Error::Reflection`] if the result is not orientation-preserving.
pub fn register_affine(
    fixed: &Volume,
    moving: &Volume,
    opts: &LinearOptions,
) -> Result<LinearResult> {
    // the pyramid is built once and shared by both stages
    let (t0, levels) = prepare(fixed, moving, opts)?;
    let rigid = run_checked(fixed, moving, opts, Kind::Rigid, &t0, &levels)?;
    let res = run_pyramid(opts, Kind::Affine, &rigid.transform, &levels)?;
    let det = res.transform.determinant();
    if det <= 0.0 {
        return Err(Error::Reflection { determinant: det });
    }
    Ok(res)
}

fn validate(fixed: &Volume, moving: &Volume, opts: &LinearOptions) -> Result<()> {
    crate::error::check_pyramid(
        &opts.shrink_factors,
        &opts.smoothing_sigmas,
        &opts.iterations,
        false,
    )?;
    if !(opts.sampling_fraction > 0.0 && opts.sampling_fraction <= 1.0) {
        return Err(crate::error::invalid(
            "sampling_fraction",
            opts.sampling_fraction,
            "must be in (0, 1]",
        ));
    }
    if let LinearMetric::MattesMi { bins } = opts.metric
        && bins < 8
    {
        return Err(crate::error::invalid(
            "bins",
            bins,
            "at least 8 histogram bins are needed",
        ));
    }
    crate::error::check_3d(fixed, moving)?;
    if let Some(m) = &opts.fixed_mask {
        let d = fixed.grid().dims;
        if m.shape() != d {
            return Err(Error::ShapeMismatch {
                what: "fixed mask".into(),
                expected: d.to_vec(),
                got: m.shape().to_vec(),
            });
        }
        let n = m.iter().filter(|&&b| b).count();
        if n < 50 {
            return Err(Error::EmptyMask {
                what: "fixed mask".into(),
                n_voxels: n,
                needed: 50,
            });
        }
    }
    Ok(())
}

/// Intensity centre of mass (world mm) and second central moments, over positive finite voxels
/// (inside `mask` when given).
pub(crate) fn moments(
    v: ArrayView3<f32>,
    affine: &Matrix4<f64>,
    mask: Option<&Array3<bool>>,
) -> Option<([f64; 3], Matrix3<f64>)> {
    let mut w = 0.0;
    let mut s = Vector3::zeros();
    let mut ss = Matrix3::zeros();
    for ((i, j, k), &val) in v.indexed_iter() {
        if !(val.is_finite() && val > 0.0) || mask.is_some_and(|m| !m[[i, j, k]]) {
            continue;
        }
        let p = Vector3::from(mul_point(affine, [i as f64, j as f64, k as f64]));
        let val = val as f64;
        w += val;
        s += val * p;
        ss += val * p * p.transpose();
    }
    if w <= 0.0 {
        return None;
    }
    let c = s / w;
    let cov = ss / w - c * c.transpose();
    Some(([c[0], c[1], c[2]], cov))
}

fn initial_transform(
    fixed: &Volume,
    moving: &Volume,
    opts: &LinearOptions,
) -> Result<AffineTransform> {
    let need = |what: &str| Error::EmptyMask {
        what: format!("{what} image (no positive voxels)"),
        n_voxels: 0,
        needed: 1,
    };
    match &opts.initialisation {
        Initialisation::Identity => Ok(AffineTransform::identity()),
        Initialisation::Transform(t) => Ok(t.clone()),
        Initialisation::CentreOfMass | Initialisation::Moments => {
            let (cf, covf) = moments(fixed.frame(0), &fixed.affine, opts.fixed_mask.as_ref())
                .ok_or_else(|| need("fixed"))?;
            let (cm, covm) =
                moments(moving.frame(0), &moving.affine, None).ok_or_else(|| need("moving"))?;
            let r = if opts.initialisation == Initialisation::Moments {
                principal_rotation(&covf, &covm)
            } else {
                Matrix3::identity()
            };
            let c = Vector3::from(cf);
            let off = Vector3::from(cm) - r * c;
            let mut m = Matrix4::identity();
            m.fixed_view_mut::<3, 3>(0, 0).copy_from(&r);
            m[(0, 3)] = off[0];
            m[(1, 3)] = off[1];
            m[(2, 3)] = off[2];
            Ok(AffineTransform { matrix: m })
        }
    }
}

/// Rotation taking the fixed principal axes onto the moving ones (fixed → moving), with each
/// axis sign chosen closest to the identity and a proper rotation enforced.
fn principal_rotation(covf: &Matrix3<f64>, covm: &Matrix3<f64>) -> Matrix3<f64> {
    let sorted = |c: &Matrix3<f64>| {
        let e = SymmetricEigen::new(*c);
        let mut idx = [0usize, 1, 2];
        idx.sort_by(|&a, &b| e.eigenvalues[b].total_cmp(&e.eigenvalues[a]));
        Matrix3::from_columns(&[
            e.eigenvectors.column(idx[0]),
            e.eigenvectors.column(idx[1]),
            e.eigenvectors.column(idx[2]),
        ])
    };
    let ef = sorted(covf);
    let mut em = sorted(covm);
    let mut dots = [0.0; 3];
    for k in 0..3 {
        let d = ef.column(k).dot(&em.column(k));
        if d < 0.0 {
            em.column_mut(k).neg_mut();
        }
        dots[k] = d.abs();
    }
    let mut r = em * ef.transpose();
    if r.determinant() < 0.0 {
        let k = (0..3)
            .min_by(|&a, &b| dots[a].total_cmp(&dots[b]))
            .expect("3 axes");
        em.column_mut(k).neg_mut();
        r = em * ef.transpose();
    }
    r
}

/// One pyramid level: fixed samples (world mm, value) and the smoothed, shrunk moving image.
struct Level {
    pts: Vec<[f64; 3]>,
    vals: Vec<f32>,
    moving: Img,
    moving_inv: Matrix4<f64>,
    moving_range: (f64, f64),
    fixed_range: (f64, f64),
    spacing: f64,
}

fn build_level(fixed: &Volume, moving: &Volume, opts: &LinearOptions, l: usize) -> Result<Level> {
    let s = opts.shrink_factors[l];
    let fvox = fixed.grid().voxel_size();
    let fmin = fvox.iter().copied().fold(f64::INFINITY, f64::min);
    let sigma_mm = opts.smoothing_sigmas[l] * fmin;
    let spacing = s as f64 * fmin;
    let mut f = fixed.frame(0).to_owned();
    f.mapv_inplace(|v| if v.is_finite() { v } else { 0.0 });
    smooth(f.view_mut(), [0, 1, 2].map(|a| sigma_mm / fvox[a]));
    let (fs, faff) = shrink(&f, &fixed.affine, s);
    let fmask = opts.fixed_mask.as_ref().map(|m| shrink_mask(m, s));
    let (ms, maff) = prepare_moving(moving.frame(0), &moving.affine, sigma_mm, spacing);
    let moving = Img::from_array(ms);
    let moving_inv =
        inv4(&maff).ok_or_else(|| crate::error::invalid("moving affine", maff, "singular"))?;
    let mut pts = Vec::new();
    let mut vals = Vec::new();
    let d = fs.dim();
    let n_cand = fmask
        .as_ref()
        .map_or(fs.len(), |m| m.iter().filter(|&&b| b).count())
        .max(1);
    let fraction = opts
        .sampling_fraction
        .min(opts.max_samples.max(50) as f64 / n_cand as f64);
    for ((i, j, k), &v) in fs.indexed_iter() {
        if fmask.as_ref().is_some_and(|mk| !mk[[i, j, k]]) {
            continue;
        }
        let idx = ((i * d.1 + j) * d.2 + k) as u64;
        if fraction < 1.0 && hash01(idx, opts.seed.wrapping_add(l as u64)) >= fraction {
            continue;
        }
        pts.push(mul_point(&faff, [i as f64, j as f64, k as f64]));
        vals.push(v);
    }
    if pts.len() < 50 {
        return Err(Error::EmptyMask {
            what: format!(
                "fixed samples at level {l} (shrink {s}, sampling fraction {})",
                opts.sampling_fraction
            ),
            n_voxels: pts.len(),
            needed: 50,
        });
    }
    let (lo, hi) = moving.min_max();
    let flo = vals.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let fhi = vals.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    Ok(Level {
        pts,
        vals,
        moving,
        moving_inv,
        moving_range: (lo as f64, hi as f64),
        fixed_range: (flo, fhi),
        spacing,
    })
}

/// The parameterised part `P(p)` (fixed space, about `c`, scaled by `r`).
fn param_matrix(kind: Kind, p: &[f64], c: [f64; 3], r: f64) -> Matrix4<f64> {
    let a = match kind {
        Kind::Rigid => rotation_zyx(p[0] / r, p[1] / r, p[2] / r),
        Kind::Affine => Matrix3::identity() + Matrix3::from_row_slice(&p[..9]) / r,
    };
    let t = match kind {
        Kind::Rigid => [p[3], p[4], p[5]],
        Kind::Affine => [p[9], p[10], p[11]],
    };
    let cv = Vector3::from(c);
    let off = cv + Vector3::from(t) - a * cv;
    let mut m = Matrix4::identity();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(&a);
    m[(0, 3)] = off[0];
    m[(1, 3)] = off[1];
    m[(2, 3)] = off[2];
    m
}

struct Problem<'a> {
    level: &'a Level,
    kind: Kind,
    t0: Matrix4<f64>,
    c: [f64; 3],
    r: f64,
    metric: LinearMetric,
    min_overlap: f64,
}

impl Problem<'_> {
    fn transform(&self, p: &[f64]) -> Matrix4<f64> {
        self.t0 * param_matrix(self.kind, p, self.c, self.r)
    }

    /// Cost and fraction of samples inside the moving image.
    fn eval(&self, p: &[f64]) -> (f64, f64) {
        let lv = self.level;
        let m = lv.moving_inv * self.transform(p);
        let chunks: Vec<(Vec<f32>, Vec<f32>)> = lv
            .pts
            .par_chunks(4096)
            .zip(lv.vals.par_chunks(4096))
            .map(|(pc, vc)| {
                let mut f = Vec::with_capacity(pc.len());
                let mut mv = Vec::with_capacity(pc.len());
                for (x, &v) in pc.iter().zip(vc) {
                    if let Some(s) = lv.moving.sample(mul_point(&m, *x)) {
                        f.push(v);
                        mv.push(s);
                    }
                }
                (f, mv)
            })
            .collect();
        let n: usize = chunks.iter().map(|c| c.0.len()).sum();
        let mut f = Vec::with_capacity(n);
        let mut mv = Vec::with_capacity(n);
        for (a, b) in chunks {
            f.extend(a);
            mv.extend(b);
        }
        let frac = n as f64 / lv.pts.len() as f64;
        if frac < self.min_overlap || n < 10 {
            return (f64::INFINITY, frac);
        }
        let cost = match self.metric {
            LinearMetric::MattesMi { bins } => -mi_pairs(
                &f,
                &mv,
                &MiSpec {
                    bins,
                    fixed_range: lv.fixed_range,
                    moving_range: lv.moving_range,
                },
            ),
            LinearMetric::Ncc => -ncc_pairs(&f, &mv),
            LinearMetric::MeanSquares => msq_pairs(&f, &mv),
        };
        (cost, frac)
    }
}

impl Problem<'_> {
    /// Analytic gradient of the Mattes MI cost with respect to the parameters: per sample,
    /// `∂cost/∂m_s` ([`crate::metric::mi_pairs_deriv`]) times the moving image's world
    /// gradient at the mapped point times `∂T/∂p · x` (the parameter derivative of the 4×4
    /// transform, by central differences of the matrix, which involve no image). `None` for
    /// other metrics or too little overlap (the caller then differences the cost).
    fn gradient(&self, p: &[f64]) -> Option<Vec<f64>> {
        let LinearMetric::MattesMi { bins } = self.metric else {
            return None;
        };
        let lv = self.level;
        let m = lv.moving_inv * self.transform(p);
        let n = self.kind.n();
        let dts: Vec<Matrix4<f64>> = (0..n)
            .map(|k| {
                let h = 1e-5;
                let mut a = p.to_vec();
                let mut b = p.to_vec();
                a[k] += h;
                b[k] -= h;
                (self.transform(&a) - self.transform(&b)) / (2.0 * h)
            })
            .collect();
        let inv = linear_part(&lv.moving_inv);
        type Gathered = (Vec<f32>, Vec<f32>, Vec<[f64; 3]>, Vec<[f64; 3]>);
        let chunks: Vec<Gathered> = lv
            .pts
            .par_chunks(4096)
            .zip(lv.vals.par_chunks(4096))
            .map(|(pc, vc)| {
                let mut g: Gathered = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (x, &v) in pc.iter().zip(vc) {
                    if let Some((val, gv)) = lv.moving.sample_grad(mul_point(&m, *x)) {
                        // world gradient: ∂M/∂y = (∂M/∂voxel) · ∂voxel/∂y
                        let gw = [0, 1, 2].map(|a| (0..3).map(|b| gv[b] * inv[(b, a)]).sum());
                        g.0.push(v);
                        g.1.push(val as f32);
                        g.2.push(*x);
                        g.3.push(gw);
                    }
                }
                g
            })
            .collect();
        let mut all: Gathered = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for c in chunks {
            all.0.extend(c.0);
            all.1.extend(c.1);
            all.2.extend(c.2);
            all.3.extend(c.3);
        }
        let inside = all.0.len();
        if (inside as f64 / lv.pts.len() as f64) < self.min_overlap || inside < 10 {
            return None;
        }
        let spec = MiSpec {
            bins,
            fixed_range: lv.fixed_range,
            moving_range: lv.moving_range,
        };
        let (_, d) = crate::metric::mi_pairs_deriv(&all.0, &all.1, &spec);
        let partial: Vec<Vec<f64>> = (0..inside)
            .collect::<Vec<_>>()
            .par_chunks(4096)
            .map(|idx| {
                let mut g = vec![0.0; n];
                for &s in idx {
                    let x = all.2[s];
                    let gw = all.3[s];
                    for (k, dt) in dts.iter().enumerate() {
                        // ∂y/∂p_k = (∂T/∂p_k)·[x; 1]
                        let dy = mul_point(dt, x);
                        let dot = gw[0] * dy[0] + gw[1] * dy[1] + gw[2] * dy[2];
                        g[k] -= d[s] * dot;
                    }
                }
                g
            })
            .collect();
        let mut g = vec![0.0; n];
        for pg in partial {
            for k in 0..n {
                g[k] += pg[k];
            }
        }
        Some(g)
    }
}

/// Regular-step gradient descent: step along the normalised negative gradient (analytic for
/// Mattes MI, [`Problem::gradient`]; else central finite differences of the cost), accept when
/// the cost decreases (then grow the step by 1.2), otherwise halve it; stop when the step falls
/// below `min_step` or after `max_iter`.
fn optimise(
    pb: &Problem,
    p: &mut [f64],
    step0: f64,
    min_step: f64,
    h: f64,
    max_iter: usize,
) -> (f64, usize) {
    let n = p.len();
    let (mut f, _) = pb.eval(p);
    let mut step = step0;
    let mut it = 0;
    while it < max_iter && step >= min_step {
        it += 1;
        let grads: Vec<f64> = pb.gradient(p).unwrap_or_else(|| {
            (0..n)
                .map(|k| {
                    let mut a = p.to_vec();
                    let mut b = p.to_vec();
                    a[k] += h;
                    b[k] -= h;
                    let (fa, _) = pb.eval(&a);
                    let (fb, _) = pb.eval(&b);
                    if fa.is_finite() && fb.is_finite() {
                        (fa - fb) / (2.0 * h)
                    } else {
                        0.0
                    }
                })
                .collect()
        });
        let norm = grads.iter().map(|g| g * g).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            break;
        }
        loop {
            let trial: Vec<f64> = p
                .iter()
                .zip(&grads)
                .map(|(x, g)| x - step * g / norm)
                .collect();
            let (ft, _) = pb.eval(&trial);
            if ft < f {
                p.copy_from_slice(&trial);
                f = ft;
                step *= 1.2;
                break;
            }
            step *= 0.5;
            if step < min_step {
                break;
            }
        }
    }
    (f, it)
}

fn run_pyramid(
    opts: &LinearOptions,
    kind: Kind,
    t0: &AffineTransform,
    levels: &[Level],
) -> Result<LinearResult> {
    // centre and scale: centroid and RMS radius of the finest-level samples
    let last = levels.last().expect("at least one level");
    let n = last.pts.len() as f64;
    let mut c = [0.0; 3];
    for p in &last.pts {
        for a in 0..3 {
            c[a] += p[a] / n;
        }
    }
    let r = (last
        .pts
        .iter()
        .map(|p| (0..3).map(|a| (p[a] - c[a]).powi(2)).sum::<f64>())
        .sum::<f64>()
        / n)
        .sqrt()
        .max(10.0);
    let mut p = vec![0.0; kind.n()];
    let mut its = Vec::new();
    let mut cost = f64::INFINITY;
    let mut frac = 0.0;
    for (l, lv) in levels.iter().enumerate() {
        let pb = Problem {
            level: lv,
            kind,
            t0: t0.matrix,
            c,
            r,
            metric: opts.metric,
            min_overlap: opts.min_overlap,
        };
        let (_, f0) = pb.eval(&p);
        if f0 < opts.min_overlap {
            return Err(Error::NoOverlap {
                stage: if l == 0 {
                    "initialisation".into()
                } else {
                    format!("level {l}")
                },
                fraction_inside: f0,
                minimum: opts.min_overlap,
            });
        }
        let step0 = lv.spacing;
        // coarse levels only need to bring the finer ones into their capture range
        let min_step = if l + 1 == levels.len() {
            opts.min_step_mm.max(1e-6)
        } else {
            opts.min_step_mm.max(0.05 * lv.spacing)
        };
        let h = 0.25 * lv.spacing;
        let (cst, it) = optimise(&pb, &mut p, step0, min_step, h, opts.iterations[l]);
        cost = cst;
        its.push(it);
        frac = pb.eval(&p).1;
    }
    if !cost.is_finite() {
        return Err(Error::NonFinite {
            what: "final registration cost".into(),
        });
    }
    let m = t0.matrix * param_matrix(kind, &p, c, r);
    Ok(LinearResult {
        transform: AffineTransform { matrix: m },
        metric_value: cost,
        iterations: its,
        fraction_inside: frac,
    })
}

fn register(
    fixed: &Volume,
    moving: &Volume,
    opts: &LinearOptions,
    kind: Kind,
) -> Result<LinearResult> {
    let (t0, levels) = prepare(fixed, moving, opts)?;
    run_checked(fixed, moving, opts, kind, &t0, &levels)
}

/// The checked request's initial transform and its pyramid of levels.
fn prepare(
    fixed: &Volume,
    moving: &Volume,
    opts: &LinearOptions,
) -> Result<(AffineTransform, Vec<Level>)> {
    validate(fixed, moving, opts)?;
    let t0 = initial_transform(fixed, moving, opts)?;
    let levels = (0..opts.shrink_factors.len())
        .map(|l| build_level(fixed, moving, opts, l))
        .collect::<Result<_>>()?;
    Ok((t0, levels))
}

/// Run the pyramid and, with `check_flip`, the mirrored alternative.
fn run_checked(
    fixed: &Volume,
    moving: &Volume,
    opts: &LinearOptions,
    kind: Kind,
    t0: &AffineTransform,
    levels: &[Level],
) -> Result<LinearResult> {
    let res = run_pyramid(opts, kind, t0, levels)?;
    if opts.check_flip {
        // Mirror world x about the moving image's centre of mass: S·T0 searches reflected maps.
        let cm = moments(moving.frame(0), &moving.affine, None)
            .map(|m| m.0)
            .unwrap_or([0.0; 3]);
        let mut s = Matrix4::identity();
        s[(0, 0)] = -1.0;
        s[(0, 3)] = 2.0 * cm[0];
        let t0m = AffineTransform {
            matrix: s * t0.matrix,
        };
        if let Ok(mir) = run_pyramid(opts, kind, &t0m, levels)
            && mir.metric_value < res.metric_value - 0.001 * res.metric_value.abs()
        {
            return Err(Error::LeftRightFlip {
                metric: res.metric_value,
                mirrored_metric: mir.metric_value,
                moving_determinant: linear_part(&moving.affine).determinant(),
                fixed_determinant: linear_part(&fixed.affine).determinant(),
            });
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_rotation_recovers_a_known_rotation() {
        let covf = Matrix3::from_diagonal(&Vector3::new(900.0, 400.0, 100.0));
        let r = rotation_zyx(0.2, -0.1, 0.3);
        let covm = r * covf * r.transpose();
        let est = principal_rotation(&covf, &covm);
        assert!((est - r).abs().max() < 1e-9, "{est} vs {r}");
        assert!((est.determinant() - 1.0).abs() < 1e-12);
    }
}
