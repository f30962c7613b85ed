//! Nonlinear registration, symmetric and diffeomorphic: a stationary velocity field `v` whose
//! exponential maps the fixed image onto the moving one (log-domain diffeomorphic demons,
//! Vercauteren et al. 2008, MICCAI LNCS 5241:754; symmetric variant, Vercauteren et al. 2009,
//! NeuroImage 45:S61–S72), driven by the local cross-correlation of symmetric normalisation
//! (SyN, Avants et al. 2008, MedIA 12:26–41; LCC-demons, Lorenzi et al. 2013, NeuroImage
//! 81:470). At each iteration both images move halfway, by `exp(±v/2)`, and the update is the
//! CC gradient at that midpoint with respect to both, so neither image is the privileged
//! reference (SyN's symmetry). The map is `φ = exp(v)` computed by scaling and squaring
//! (Arsigny et al. 2006), so its inverse is exactly `exp(-v)`, computed the same way: the map
//! is a diffeomorphism (positive Jacobian) when each squaring step is small, which the
//! scaling keeps below half a voxel.

use cbflow_image::{Border, Volume};
use ndarray::Array4;
use rayon::prelude::*;

use crate::metric::{lncc_mean, local_stats};
use crate::transform::{AffineTransform, DisplacementField, Transform, TransformChain};
use crate::util::{Img, linear_part, mul_point, prepare_moving, reversed, shrink, smooth};
use crate::{Error, Result};

/// Options of [`register_syn`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynOptions {
    /// Pyramid shrink factors of the fixed grid, coarse to fine (e.g. `[4, 2, 1]`).
    pub shrink_factors: Vec<usize>,
    /// Gaussian smoothing σ of both images per level, in full-resolution fixed voxels.
    pub smoothing_sigmas: Vec<f64>,
    /// Maximum iterations per level.
    pub iterations: Vec<usize>,
    /// Radius (voxels of the level grid) of the local cross-correlation window.
    pub radius: usize,
    /// Largest update per iteration (voxels of the level grid), as ANTs' gradient step.
    pub step: f64,
    /// σ (level voxels) of the Gaussian smoothing of each update (fluid-like regularisation).
    pub update_sigma: f64,
    /// σ (level voxels) of the Gaussian smoothing of the velocity field after each update
    /// (diffusion-like regularisation).
    pub field_sigma: f64,
    /// Stop a level when the LNCC gained over the last 10 iterations is below this.
    pub convergence: f64,
}

impl Default for SynOptions {
    fn default() -> Self {
        Self {
            shrink_factors: vec![4, 2, 1],
            smoothing_sigmas: vec![2.0, 1.0, 0.0],
            iterations: vec![80, 60, 15],
            radius: 2,
            step: 0.5,
            update_sigma: 2.0,
            field_sigma: 0.7,
            convergence: 1e-4,
        }
    }
}

/// Result of [`register_syn`]: two displacement fields on the fixed grid.
///
/// The full fixed → moving map is `x ↦ A(x + u(x))` with `A` the initial affine and `u` the
/// forward field: as a chain `[Field(forward), Affine(A)]` ([`SynResult::forward_chain`]). The
/// moving → fixed map is `y ↦ z + w(z)`, `z = A⁻¹ y`, `w` the inverse field:
/// `[Affine(A⁻¹), Field(inverse)]` ([`SynResult::inverse_chain`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SynResult {
    /// Forward displacement `u` (fixed grid, world mm RAS): `exp(v)`.
    pub forward: DisplacementField,
    /// Inverse displacement `w` (fixed grid, world mm RAS): `exp(-v)`, so `x + u(x) + w(x + u(x)) ≈ x`.
    pub inverse: DisplacementField,
    /// The initial affine (fixed → moving).
    pub affine: AffineTransform,
    /// Final local cross-correlation (mean of squared local correlation, in [0, 1]).
    pub metric_value: f64,
    /// Iterations run per level.
    pub iterations: Vec<usize>,
}

impl SynResult {
    /// The fixed → moving chain `[Field(forward), Affine(affine)]` (to resample the moving image
    /// onto the fixed grid with [`crate::apply`]).
    pub fn forward_chain(&self) -> TransformChain {
        TransformChain::new()
            .then(Transform::Field(self.forward.clone()))
            .then(Transform::Affine(self.affine.clone()))
    }

    /// The moving → fixed chain `[Affine(affine⁻¹), Field(inverse)]` (to resample fixed-space
    /// images, e.g. a template mask, onto the moving grid).
    pub fn inverse_chain(&self) -> Result<TransformChain> {
        Ok(TransformChain::new()
            .then(Transform::Affine(self.affine.inverse()?))
            .then(Transform::Field(self.inverse.clone())))
    }
}

type Field = [Img; 3];

/// Share of an image's variance added to every window's variance in the local correlation.
const VARIANCE_FLOOR: f64 = 1e-3;

/// Variance of the values (ordered sums: deterministic).
fn variance(x: &[f32]) -> f64 {
    let n = x.len().max(1) as f64;
    let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n
}

fn zeros(dims: [usize; 3]) -> Field {
    [Img::zeros(dims), Img::zeros(dims), Img::zeros(dims)]
}

/// Parallel map over voxels producing a new image (ordered, deterministic).
fn par_map(dims: [usize; 3], f: impl Fn(usize, usize, usize) -> f32 + Sync) -> Img {
    let plane = dims[1] * dims[2];
    let mut out = Img::zeros(dims);
    out.data
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(i, ch)| {
            for j in 0..dims[1] {
                for k in 0..dims[2] {
                    ch[j * dims[2] + k] = f(i, j, k);
                }
            }
        });
    out
}

fn max_norm(u: &Field) -> f64 {
    let n = u[0].data.len();
    (0..n)
        .into_par_iter()
        .map(|t| {
            ((u[0].data[t] as f64).powi(2)
                + (u[1].data[t] as f64).powi(2)
                + (u[2].data[t] as f64).powi(2))
            .sqrt()
        })
        .reduce(|| 0.0, f64::max)
}

/// `exp(sign · v)` by scaling and squaring: `u ← v / 2^N`, then N times `u ← u + u∘(x + u)`.
fn exp_field(v: &Field, sign: f32) -> Field {
    exp_field_to(v, sign, 0.5)
}

/// `exp(sign · v)` scaled until no vector exceeds `max_step` voxels before squaring (0.5 for
/// the fields returned; the iterations' own exponentials, which only drive the next update, use
/// 1 voxel and one squaring fewer).
fn exp_field_to(v: &Field, sign: f32, max_step: f64) -> Field {
    let dims = v[0].dims;
    let m = max_norm(v);
    let n = if m > max_step {
        (m / max_step).log2().ceil() as i32
    } else {
        0
    };
    let scale = sign / 2f32.powi(n);
    let mut u: Field = [0, 1, 2].map(|c| Img {
        data: v[c].data.par_iter().map(|x| x * scale).collect(),
        dims,
    });
    for _ in 0..n {
        let mut next = zeros(dims);
        let plane = dims[1] * dims[2];
        let [n0, n1, n2] = &mut next;
        n0.data
            .par_chunks_mut(plane)
            .zip(n1.data.par_chunks_mut(plane))
            .zip(n2.data.par_chunks_mut(plane))
            .enumerate()
            .for_each(|(i, ((c0, c1), c2))| {
                for j in 0..dims[1] {
                    for k in 0..dims[2] {
                        let t = u[0].idx(i, j, k);
                        let p = [
                            i as f64 + u[0].data[t] as f64,
                            j as f64 + u[1].data[t] as f64,
                            k as f64 + u[2].data[t] as f64,
                        ];
                        let s = sample3(&u, p);
                        let o = j * dims[2] + k;
                        c0[o] = u[0].data[t] + s[0];
                        c1[o] = u[1].data[t] + s[1];
                        c2[o] = u[2].data[t] + s[2];
                    }
                }
            });
        u = next;
    }
    u
}

/// Trilinear sample of the three components at once (edge-clamped): one cell, three values,
/// in `f32` by product weights ([`cbflow_image::Cell::product_weighted_f32`]; the grid's axes
/// reversed, so the weights multiply i, j, k factors in that order).
#[inline(always)]
fn sample3(u: &Field, p: [f64; 3]) -> [f32; 3] {
    let cell = u[0].trilinear(Border::Clamp).cell(reversed(p));
    let cell = cell.expect("clamped: never outside");
    cell.product_weighted_f32([&u[0].data, &u[1].data, &u[2].data])
}

/// `img(x + u(x))` on the field's grid (edge-clamped sampling).
fn warp(img: &Img, u: &Field) -> Img {
    par_map(u[0].dims, |i, j, k| {
        let t = u[0].idx(i, j, k);
        img.sample_clamped([
            i as f64 + u[0].data[t] as f64,
            j as f64 + u[1].data[t] as f64,
            k as f64 + u[2].data[t] as f64,
        ])
    })
}

/// Central-difference gradient (per voxel), one-sided at the borders.
fn gradient(img: &Img) -> Field {
    let d = img.dims;
    let g = |c: usize| {
        par_map(d, |i, j, k| {
            let ix = [i, j, k];
            let n = d[c];
            if n < 2 {
                return 0.0;
            }
            let (lo, hi) = (ix[c].saturating_sub(1), (ix[c] + 1).min(n - 1));
            let mut a = ix;
            let mut b = ix;
            a[c] = lo;
            b[c] = hi;
            (img.get(b[0], b[1], b[2]) - img.get(a[0], a[1], a[2])) / (hi - lo) as f32
        })
    };
    [g(0), g(1), g(2)]
}

fn smooth_field(u: &mut Field, sigma: f64) {
    for c in u.iter_mut() {
        smooth(c.view_mut(), [sigma; 3]);
    }
}

/// Velocity field of a coarser level resampled onto a finer one (`ratio` = old / new voxel size).
fn upsample(v: &Field, dims: [usize; 3], ratio: f64) -> Field {
    let out: Vec<Img> = (0..3)
        .map(|c| {
            par_map(dims, |i, j, k| {
                v[c].sample_clamped([i as f64 / ratio, j as f64 / ratio, k as f64 / ratio])
                    * ratio as f32
            })
        })
        .collect();
    let mut it = out.into_iter();
    [
        it.next().expect("3"),
        it.next().expect("3"),
        it.next().expect("3"),
    ]
}

/// Diffeomorphic registration of `moving` to `fixed` after the affine `initial` (fixed → moving,
/// e.g. from [`crate::register_affine`]): log-domain demons with a stationary velocity field and
/// the local cross-correlation (LNCC, window `2·radius+1`) force, Gaussian regularisation of the
/// update and of the field, multi-resolution. Returns forward and inverse displacement fields on
/// the fixed grid (see [`SynResult`] for how they compose with `initial`).
pub fn register_syn(
    fixed: &Volume,
    moving: &Volume,
    initial: &AffineTransform,
    opts: &SynOptions,
) -> Result<SynResult> {
    crate::error::check_pyramid(
        &opts.shrink_factors,
        &opts.smoothing_sigmas,
        &opts.iterations,
        true,
    )?;
    let nl = opts.shrink_factors.len();
    if opts.radius == 0 || opts.step.is_nan() || opts.step <= 0.0 {
        return Err(crate::error::invalid(
            "radius/step",
            format!("{}/{}", opts.radius, opts.step),
            "must be positive",
        ));
    }
    crate::error::check_3d(fixed, moving)?;
    let fgrid = fixed.grid();
    let fvox = fgrid.voxel_size();
    let fmin = fvox.iter().copied().fold(f64::INFINITY, f64::min);
    let mut v: Option<(Field, usize)> = None;
    let mut its = Vec::new();
    let mut metric = 0.0;
    let mut fraction_checked = false;
    for l in 0..nl {
        let s = opts.shrink_factors[l];
        let sigma_mm = opts.smoothing_sigmas[l] * fmin;
        let mut f = fixed.frame(0).mapv(|x| if x.is_finite() { x } else { 0.0 });
        smooth(f.view_mut(), [0, 1, 2].map(|a| sigma_mm / fvox[a]));
        let (fs, faff) = shrink(&f, &fgrid.affine, s);
        let fimg = Img::from_array(fs);
        let dims = fimg.dims;
        // moving, smoothed (anti-aliased) and mapped through the affine onto the level grid
        let spacing = s as f64 * fmin;
        let (m, maff) = prepare_moving(moving.frame(0), &moving.affine, sigma_mm, spacing);
        let minv = maff
            .try_inverse()
            .ok_or_else(|| crate::error::invalid("moving affine", maff, "singular"))?;
        let mimg = Img::from_array(m);
        let to_m = minv * initial.matrix * faff;
        let inside = std::sync::atomic::AtomicUsize::new(0);
        let mres = par_map(dims, |i, j, k| {
            match mimg.sample(mul_point(&to_m, [i as f64, j as f64, k as f64])) {
                Some(x) => {
                    inside.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    x
                }
                None => 0.0,
            }
        });
        if !fraction_checked {
            let frac = inside.into_inner() as f64 / fimg.data.len() as f64;
            if frac < 0.1 {
                return Err(Error::NoOverlap {
                    stage: "nonlinear initialisation".into(),
                    fraction_inside: frac,
                    minimum: 0.1,
                });
            }
            fraction_checked = true;
        }
        let mut vel = match v.take() {
            None => zeros(dims),
            Some((old, s_old)) => upsample(&old, dims, s_old as f64 / s as f64),
        };
        // variance floors of the local correlation (see `lncc_mean`): without them a flat
        // region of a noise-free image (the phantom's white matter) has windows of variance
        // ~1e-6 whose correlation gradient, divided by it, outweighs every edge; the
        // max-normalised step then goes to the same spot at each iteration and the field
        // drains into it (measured: a 21 mm sink in the phantom's deep white matter)
        let eps = (
            (VARIANCE_FLOOR * variance(&fimg.data)) as f32,
            (VARIANCE_FLOOR * variance(&mres.data)) as f32,
        );
        let mut history: Vec<f64> = Vec::new();
        let mut it_done = 0;
        for _ in 0..opts.iterations[l] {
            it_done += 1;
            // symmetric: both images move halfway, to the midpoint of the path exp(t·v)
            let half: Field = [0, 1, 2].map(|c| Img {
                data: vel[c].data.par_iter().map(|x| 0.5 * x).collect(),
                dims,
            });
            let (uh, wh) = (
                exp_field_to(&half, 1.0, 1.0),
                exp_field_to(&half, -1.0, 1.0),
            );
            let mh = warp(&mres, &uh);
            let fh = warp(&fimg, &wh);
            let st = local_stats(&fh.view(), &mh.view(), opts.radius);
            let (cc, _) = lncc_mean(&st, None, eps);
            metric = cc;
            history.push(cc);
            if history.len() > 10 && cc - history[history.len() - 11] < opts.convergence {
                break;
            }
            let (gm, gf) = (gradient(&mh), gradient(&fh));
            // ∂CC/∂M and ∂CC/∂F at the midpoint (Avants et al. 2008, eq. 6, local means fixed)
            let coef = |i: usize, j: usize, k: usize| -> (f32, f32) {
                let (a, b, c) = (st.sff[[i, j, k]], st.smm[[i, j, k]], st.sfm[[i, j, k]]);
                if a > 1e-6 && b > 1e-6 {
                    let (a, b) = (a + eps.0, b + eps.1);
                    let g = 2.0 * c / (a * b);
                    (
                        g * (st.fc[[i, j, k]] - c / b * st.mc[[i, j, k]]),
                        g * (st.mc[[i, j, k]] - c / a * st.fc[[i, j, k]]),
                    )
                } else {
                    (0.0, 0.0)
                }
            };
            // the force of each voxel in one parallel pass: dM·∇M − dF·∇F
            let plane = dims[1] * dims[2];
            let mut force: Field = zeros(dims);
            {
                let [f0, f1, f2] = &mut force;
                f0.data
                    .par_chunks_mut(plane)
                    .zip(f1.data.par_chunks_mut(plane))
                    .zip(f2.data.par_chunks_mut(plane))
                    .enumerate()
                    .for_each(|(i, ((c0, c1), c2))| {
                        for j in 0..dims[1] {
                            for k in 0..dims[2] {
                                let (dmv, dfv) = coef(i, j, k);
                                if dmv == 0.0 && dfv == 0.0 {
                                    continue;
                                }
                                let t = (i * dims[1] + j) * dims[2] + k;
                                let o = j * dims[2] + k;
                                c0[o] = dmv * gm[0].data[t] - dfv * gf[0].data[t];
                                c1[o] = dmv * gm[1].data[t] - dfv * gf[1].data[t];
                                c2[o] = dmv * gm[2].data[t] - dfv * gf[2].data[t];
                            }
                        }
                    });
            }
            smooth_field(&mut force, opts.update_sigma);
            let mx = max_norm(&force);
            if mx.is_nan() || mx <= 0.0 || !mx.is_finite() {
                break;
            }
            let scale = (opts.step / mx) as f32;
            for c in 0..3 {
                vel[c]
                    .data
                    .par_iter_mut()
                    .zip(&force[c].data)
                    .for_each(|(a, b)| *a += scale * b);
            }
            smooth_field(&mut vel, opts.field_sigma);
        }
        its.push(it_done);
        v = Some((vel, s));
    }
    let (vel, s_last) = v.expect("at least one level");
    let full = fgrid.dims;
    let vel = if s_last == 1 {
        vel
    } else {
        upsample(&vel, full, s_last as f64)
    };
    let to_field = |u: &Field| -> DisplacementField {
        let lin = linear_part(&fgrid.affine);
        let mut data = Array4::<f32>::zeros((full[0], full[1], full[2], 3));
        let sl = data.as_slice_mut().expect("standard layout");
        sl.par_chunks_mut(3).enumerate().for_each(|(t, out)| {
            let d = nalgebra::Vector3::new(
                u[0].data[t] as f64,
                u[1].data[t] as f64,
                u[2].data[t] as f64,
            );
            let w = lin * d;
            out[0] = w[0] as f32;
            out[1] = w[1] as f32;
            out[2] = w[2] as f32;
        });
        DisplacementField {
            grid: fgrid.clone(),
            data,
        }
    };
    let forward = to_field(&exp_field(&vel, 1.0));
    let inverse = to_field(&exp_field(&vel, -1.0));
    if forward.data.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "forward displacement field".into(),
        });
    }
    Ok(SynResult {
        forward,
        inverse,
        affine: initial.clone(),
        metric_value: metric,
        iterations: its,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_of_minus_v_inverts_exp_of_v() {
        let dims = [20, 22, 18];
        let v: Field = [0, 1, 2].map(|c| {
            par_map(dims, |i, j, k| {
                let (x, y, z) = (i as f32 / 19.0, j as f32 / 21.0, k as f32 / 17.0);
                2.0 * ((3.0 * x + c as f32).sin() * (2.0 * y).cos() * (1.0 + z))
            })
        });
        let u = exp_field(&v, 1.0);
        let w = exp_field(&v, -1.0);
        // x + u(x) + w(x + u(x)) = x, away from the borders
        let mut worst = 0.0f64;
        for i in 5..15 {
            for j in 5..17 {
                for k in 5..13 {
                    let t = u[0].idx(i, j, k);
                    let p = [
                        i as f64 + u[0].data[t] as f64,
                        j as f64 + u[1].data[t] as f64,
                        k as f64 + u[2].data[t] as f64,
                    ];
                    for c in 0..3 {
                        let back = p[c] + w[c].sample_clamped(p) as f64 - [i, j, k][c] as f64;
                        worst = worst.max(back.abs());
                    }
                }
            }
        }
        assert!(worst < 0.1, "inverse consistency error {worst} voxels");
        assert!(max_norm(&u) > 1.0);
    }
}
