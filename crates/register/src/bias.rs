//! Intensity non-uniformity (bias field) correction after N4 (Tustison et al. 2010, IEEE TMI
//! 29:1310–1320): in the log domain, alternately sharpen the intensity histogram (Wiener
//! deconvolution of a Gaussian of FWHM `histogram_fwhm`, after Sled et al. 1998's N3) and fit a
//! smooth cubic B-spline field to the residual by the scattered-data approximation of Lee,
//! Wolberg & Shin 1997 (the one N4 uses), on a control lattice refined level by level.
//!
//! Differences from ITK's N4, stated: the field is fitted on an image block-averaged by `shrink`
//! and brought to full resolution by trilinear interpolation of the fitted log field (smooth by
//! construction) rather than by evaluating the B-spline at every full-resolution voxel; each
//! level's B-spline is refitted to the total field accumulated so far, not refined exactly.

use cbflow_image::Volume;
use ndarray::{Array3, Zip};
use rayon::prelude::*;

use crate::util::{Img, block_mean};
use crate::{Error, Result};

/// Options of [`correct_bias`] (defaults: ANTsPy's `n4_bias_field_correction`).
#[derive(Debug, Clone, PartialEq)]
pub struct BiasOptions {
    /// Block-averaging factor before fitting (4).
    pub shrink: usize,
    /// Control-point spacing of the first level, mm (200); halved at each further level.
    pub spline_spacing_mm: f64,
    /// Iterations per level (`[50, 50, 50, 50]`: four levels).
    pub iterations: Vec<usize>,
    /// Stop a level when the coefficient of variation of the field change falls below this.
    pub convergence: f64,
    /// FWHM of the Gaussian the histogram is sharpened by, in log-intensity units (0.15).
    pub histogram_fwhm: f64,
    /// Wiener filter noise (0.01).
    pub wiener_noise: f64,
    /// Histogram bins (200).
    pub bins: usize,
}

impl Default for BiasOptions {
    fn default() -> Self {
        Self {
            shrink: 4,
            spline_spacing_mm: 200.0,
            iterations: vec![50, 50, 50, 50],
            convergence: 1e-3,
            histogram_fwhm: 0.15,
            wiener_noise: 0.01,
            bins: 200,
        }
    }
}

/// Result of [`correct_bias`].
#[derive(Debug, Clone)]
pub struct BiasCorrection {
    /// The image divided by the field (same grid).
    pub corrected: Volume,
    /// The multiplicative bias field (same grid; mean 1 over the mask).
    pub field: Volume,
    /// Iterations run per level.
    pub iterations: Vec<usize>,
}

/// Corrects the intensity non-uniformity of a 3D image within `mask` (shape of the image), or,
/// when `mask` is `None`, within the head: the Otsu foreground of the block-averaged image, its
/// largest component, dilated by one voxel, holes filled. Voxels ≤ 0 are left out of the fit.
/// Deterministic at any thread count.
///
/// Errors: not 3D, a mask of another shape, fewer than 100 positive voxels in the mask.
pub fn correct_bias(
    img: &Volume,
    mask: Option<&Array3<bool>>,
    opts: &BiasOptions,
) -> Result<BiasCorrection> {
    if img.n_volumes() != 1 {
        return Err(crate::error::invalid(
            "image",
            format!("{} volumes", img.n_volumes()),
            "a 3D image is required",
        ));
    }
    let full = img.frame(0).to_owned();
    if let Some(mask) = mask
        && mask.dim() != full.dim()
    {
        return Err(Error::ShapeMismatch {
            what: "bias-correction mask".into(),
            expected: full.shape().to_vec(),
            got: mask.shape().to_vec(),
        });
    }
    if opts.shrink == 0 || opts.iterations.is_empty() || opts.bins < 16 {
        return Err(crate::error::invalid(
            "bias options",
            format!("{opts:?}"),
            "shrink ≥ 1, at least one level, at least 16 bins",
        ));
    }
    let grid = img.grid();
    let s = opts.shrink;
    // the log image and the mask on the shrunk grid
    let inside = match mask {
        Some(mask) => Zip::from(&full).and(mask).map_collect(|&v, &m| {
            if m && v > 0.0 && v.is_finite() {
                1.0f32
            } else {
                0.0
            }
        }),
        None => full.mapv(|v| {
            if v > 0.0 && v.is_finite() {
                1.0f32
            } else {
                0.0
            }
        }),
    };
    let (wsum, saff) = block_mean(&inside, &grid.affine, s);
    let weighted = Zip::from(&full)
        .and(&inside)
        .map_collect(|&v, &w| if w > 0.0 { v } else { 0.0 });
    let (vsum, _) = block_mean(&weighted, &grid.affine, s);
    // a shrunk voxel is used when most of its block is inside
    let mut sm: Array3<bool> = wsum.mapv(|w| w > 0.5);
    if mask.is_none() {
        let mean = Zip::from(&vsum)
            .and(&wsum)
            .map_collect(|&v, &w| if w > 0.0 { v / w } else { 0.0 });
        if let Ok(fg) = cbflow_image::masks::otsu_mask(mean.view()) {
            let head = cbflow_image::masks::fill_holes(&cbflow_image::masks::dilate(
                &cbflow_image::masks::largest_component(&fg),
                1,
            ));
            Zip::from(&mut sm).and(&head).for_each(|s, &h| *s = *s && h);
        }
    }
    let n_in = sm.iter().filter(|&&b| b).count();
    if n_in < 100 {
        return Err(Error::EmptyMask {
            what: "bias-correction mask (positive voxels, shrunk)".into(),
            n_voxels: n_in,
            needed: 100,
        });
    }
    let logv: Array3<f32> = Zip::from(&vsum)
        .and(&wsum)
        .map_collect(|&v, &w| if w > 0.5 { (v / w).ln() } else { 0.0 });
    let sd = logv.dim();
    let svox = [0, 1, 2].map(|c| grid.voxel_size()[c] * s as f64);
    let mut total = Array3::<f32>::zeros(sd); // accumulated log field
    let mut its = Vec::new();
    for (level, &n_it) in opts.iterations.iter().enumerate() {
        let spacing = opts.spline_spacing_mm / 2f64.powi(level as i32);
        let lattice = Lattice::new([sd.0, sd.1, sd.2], svox, spacing);
        let mut done = 0;
        for _ in 0..n_it {
            done += 1;
            // current corrected log image
            let u = Zip::from(&logv).and(&total).map_collect(|&a, &b| a - b);
            let vals: Vec<f32> = u
                .iter()
                .zip(sm.iter())
                .filter(|(_, m)| **m)
                .map(|(v, _)| *v)
                .collect();
            let sharpened = sharpen(&vals, opts);
            // residual: observed − expected true log intensity
            let mut k = 0;
            let mut resid = Array3::<f32>::zeros(sd);
            for ((r, &m), &uv) in resid.iter_mut().zip(sm.iter()).zip(u.iter()) {
                if m {
                    *r = uv - sharpened[k];
                    k += 1;
                }
            }
            let update = lattice.fit(&resid, &sm);
            // convergence: CV of the update's exponential over the mask (N4's criterion)
            let ex: Vec<f64> = update
                .iter()
                .zip(sm.iter())
                .filter(|(_, m)| **m)
                .map(|(v, _)| (*v as f64).exp())
                .collect();
            let mean = ex.iter().sum::<f64>() / ex.len() as f64;
            let var = ex.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / ex.len() as f64;
            total += &update;
            if var.sqrt() / mean < opts.convergence {
                break;
            }
        }
        its.push(done);
        // refit the accumulated field on this level's lattice so it stays smooth
        total = lattice.fit(&total, &sm);
    }
    // normalise: mean field 1 over the mask (the correction keeps the image's scale)
    let mean_log = total
        .iter()
        .zip(sm.iter())
        .filter(|(_, m)| **m)
        .map(|(v, _)| *v as f64)
        .sum::<f64>()
        / n_in as f64;
    total.mapv_inplace(|v| v - mean_log as f32);
    // to full resolution: trilinear in shrunk voxel coordinates
    let simg = Img::from_array(total);
    let inv = saff
        .try_inverse()
        .ok_or_else(|| crate::error::invalid("shrunk affine", saff, "singular"))?;
    let to_s = inv * grid.affine;
    let d = grid.dims;
    let plane = d[1] * d[2];
    let mut field = vec![0f32; d[0] * plane];
    field.par_chunks_mut(plane).enumerate().for_each(|(i, ch)| {
        for j in 0..d[1] {
            for k in 0..d[2] {
                let p = crate::util::mul_point(&to_s, [i as f64, j as f64, k as f64]);
                ch[j * d[2] + k] = simg.sample_clamped(p).exp();
            }
        }
    });
    let field = Array3::from_shape_vec((d[0], d[1], d[2]), field).expect("grid-shaped");
    let corrected = Zip::from(&full)
        .and(&field)
        .map_collect(|&v, &f| if v.is_finite() { v / f } else { v });
    Ok(BiasCorrection {
        corrected: img.with_data3(corrected)?,
        field: img.with_data3(field)?,
        iterations: its,
    })
}

/// N3/N4 histogram sharpening: the expected true log intensity of each value of `vals`, given
/// that the observed distribution is the true one blurred by a Gaussian of FWHM
/// `opts.histogram_fwhm`, by Wiener deconvolution of the histogram.
fn sharpen(vals: &[f32], opts: &BiasOptions) -> Vec<f32> {
    let (lo, hi) = vals
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return vals.to_vec();
    }
    let n = opts.bins;
    let width = (hi - lo) as f64 / (n - 1) as f64;
    // histogram with linear splatting
    let mut h = vec![0f64; n];
    for &v in vals {
        let x = (v - lo) as f64 / width;
        let i = (x.floor() as usize).min(n - 2);
        let f = x - i as f64;
        h[i] += 1.0 - f;
        h[i + 1] += f;
    }
    // zero-padded to a power of two, DFT by direct sums (n is small)
    let m = (2 * n).next_power_of_two();
    let mut hp = vec![0f64; m];
    let off = (m - n) / 2;
    hp[off..off + n].copy_from_slice(&h);
    let sigma = opts.histogram_fwhm / width / (8f64.ln() * 2.0).sqrt();
    let gauss: Vec<f64> = (0..m)
        .map(|i| {
            let d = if i <= m / 2 {
                i as f64
            } else {
                i as f64 - m as f64
            };
            (-0.5 * (d / sigma).powi(2)).exp()
        })
        .collect();
    let gs: f64 = gauss.iter().sum();
    let gauss: Vec<f64> = gauss.iter().map(|g| g / gs).collect();
    let (hr, hi_) = dft(&hp);
    let (gr, gi) = dft(&gauss);
    // F = conj(G) H / (|G|² + z)
    let (mut fr, mut fi) = (vec![0f64; m], vec![0f64; m]);
    for k in 0..m {
        let g2 = gr[k] * gr[k] + gi[k] * gi[k];
        let den = g2 + opts.wiener_noise;
        let (ar, ai) = (gr[k], -gi[k]);
        fr[k] = (ar * hr[k] - ai * hi_[k]) / den;
        fi[k] = (ar * hi_[k] + ai * hr[k]) / den;
    }
    let f: Vec<f64> = idft(&fr, &fi).iter().map(|v| v.max(0.0)).collect();
    // E[u | v] = ((F·x) ∗ G)(v) / (F ∗ G)(v)
    let xs: Vec<f64> = (0..m)
        .map(|i| lo as f64 + (i as f64 - off as f64) * width)
        .collect();
    let fx: Vec<f64> = f.iter().zip(&xs).map(|(a, b)| a * b).collect();
    let conv = |a: &[f64]| -> Vec<f64> {
        let (ar, ai) = dft(a);
        let (cr, ci): (Vec<f64>, Vec<f64>) = (0..m)
            .map(|k| (ar[k] * gr[k] - ai[k] * gi[k], ar[k] * gi[k] + ai[k] * gr[k]))
            .unzip();
        idft(&cr, &ci)
    };
    let num = conv(&fx);
    let den = conv(&f);
    let map: Vec<f64> = (0..n)
        .map(|i| {
            let j = i + off;
            if den[j] > 1e-12 {
                num[j] / den[j]
            } else {
                xs[j]
            }
        })
        .collect();
    vals.iter()
        .map(|&v| {
            let x = (v - lo) as f64 / width;
            let i = (x.floor() as usize).min(n - 2);
            let f = x - i as f64;
            (map[i] * (1.0 - f) + map[i + 1] * f) as f32
        })
        .collect()
}

/// Discrete Fourier transform of a real sequence by direct sums with a table of twiddle
/// factors (used on ≤ 512 bins).
fn dft(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m = x.len();
    let (c, s) = twiddles(m);
    (0..m)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &v) in x.iter().enumerate() {
                let a = k * t % m;
                re += v * c[a];
                im -= v * s[a];
            }
            (re, im)
        })
        .unzip()
}

/// Inverse of [`dft`], real part.
fn idft(re: &[f64], im: &[f64]) -> Vec<f64> {
    let m = re.len();
    let (c, s) = twiddles(m);
    (0..m)
        .map(|t| {
            let mut acc = 0.0;
            for k in 0..m {
                let a = k * t % m;
                acc += re[k] * c[a] - im[k] * s[a];
            }
            acc / m as f64
        })
        .collect()
}

/// cos and sin of 2πa/m for a in 0..m.
fn twiddles(m: usize) -> (Vec<f64>, Vec<f64>) {
    (0..m)
        .map(|a| {
            let t = 2.0 * std::f64::consts::PI * a as f64 / m as f64;
            (t.cos(), t.sin())
        })
        .unzip()
}

/// A cubic B-spline control lattice over a grid.
struct Lattice {
    dims: [usize; 3],
    /// Control points per axis (spans + 3).
    n: [usize; 3],
    /// Grid voxels per lattice span, per axis.
    per_span: [f64; 3],
}

#[inline]
fn bspline(t: f64) -> [f64; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    [
        (1.0 - t).powi(3) / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    ]
}

impl Lattice {
    fn new(dims: [usize; 3], vox_mm: [f64; 3], spacing_mm: f64) -> Self {
        let mut n = [0; 3];
        let mut per_span = [0.0; 3];
        for a in 0..3 {
            let extent = (dims[a].max(2) - 1) as f64 * vox_mm[a];
            let spans = (extent / spacing_mm).ceil().max(1.0) as usize;
            n[a] = spans + 3;
            per_span[a] = (dims[a].max(2) - 1) as f64 / spans as f64;
        }
        Self { dims, n, per_span }
    }

    /// Lattice position of voxel index `i` on axis `a`: (first control index, fraction).
    #[inline]
    fn pos(&self, a: usize, i: usize) -> (usize, f64) {
        let x = i as f64 / self.per_span[a];
        let spans = self.n[a] - 3;
        let s = (x.floor() as usize).min(spans - 1);
        (s, x - s as f64)
    }

    /// Weights of every voxel index along axis `a`: (first control index, the 4 B-spline
    /// weights).
    fn axis_weights(&self, a: usize) -> Vec<(usize, [f64; 4])> {
        (0..self.dims[a])
            .map(|i| {
                let (s, t) = self.pos(a, i);
                (s, bspline(t))
            })
            .collect()
    }

    /// Scattered-data approximation (Lee et al. 1997) of `r` at the voxels of `mask`, evaluated
    /// at every voxel. A point's contribution to control point `c` is `w_c² φ_c` with
    /// `φ_c = w_c r / Σ w²`; with tensor-product weights both sums factor by axis, so they are
    /// accumulated axis by axis (k, then j, then i) instead of over 64 neighbours per voxel.
    fn fit(&self, r: &Array3<f32>, mask: &Array3<bool>) -> Array3<f32> {
        let [n0, n1, n2] = self.n;
        let d = self.dims;
        let w = [
            self.axis_weights(0),
            self.axis_weights(1),
            self.axis_weights(2),
        ];
        // per-axis factor of Σ_c w_c² = Π_axes Σ_a w_a²
        let w2: [Vec<f64>; 3] = [0, 1, 2].map(|a| {
            w[a].iter()
                .map(|(_, ws)| ws.iter().map(|x| x * x).sum())
                .collect()
        });
        // numerator weights w³ / Σw² per axis, denominator weights w²
        let num_w = |a: usize, i: usize, c: usize| w[a][i].1[c].powi(3) / w2[a][i];
        let den_w = |a: usize, i: usize, c: usize| w[a][i].1[c].powi(2);
        // accumulate along k: [i][j][ck]
        let along_k = |val: &(dyn Fn(usize, usize, usize) -> f64 + Sync),
                       f: &(dyn Fn(usize, usize, usize) -> f64 + Sync)| {
            let mut out = vec![0f64; d[0] * d[1] * n2];
            out.par_chunks_mut(d[1] * n2)
                .enumerate()
                .for_each(|(i, ch)| {
                    for j in 0..d[1] {
                        for k in 0..d[2] {
                            let v = val(i, j, k);
                            if v == 0.0 {
                                continue;
                            }
                            let s = w[2][k].0;
                            for c in 0..4 {
                                ch[j * n2 + s + c] += v * f(2, k, c);
                            }
                        }
                    }
                });
            out
        };
        let collapse_j = |a: &[f64], f: &(dyn Fn(usize, usize, usize) -> f64 + Sync)| {
            let mut out = vec![0f64; d[0] * n1 * n2];
            out.par_chunks_mut(n1 * n2).enumerate().for_each(|(i, ch)| {
                for j in 0..d[1] {
                    let s = w[1][j].0;
                    for c in 0..4 {
                        let wj = f(1, j, c);
                        for ck in 0..n2 {
                            ch[(s + c) * n2 + ck] += wj * a[(i * d[1] + j) * n2 + ck];
                        }
                    }
                }
            });
            out
        };
        let collapse_i = |a: &[f64], f: &(dyn Fn(usize, usize, usize) -> f64 + Sync)| {
            let mut out = vec![0f64; n0 * n1 * n2];
            for i in 0..d[0] {
                let s = w[0][i].0;
                for c in 0..4 {
                    let wi = f(0, i, c);
                    let dst = &mut out[(s + c) * n1 * n2..(s + c + 1) * n1 * n2];
                    let src = &a[i * n1 * n2..(i + 1) * n1 * n2];
                    for (o, v) in dst.iter_mut().zip(src) {
                        *o += wi * v;
                    }
                }
            }
            out
        };
        let rv = |i: usize, j: usize, k: usize| {
            if mask[[i, j, k]] {
                r[[i, j, k]] as f64
            } else {
                0.0
            }
        };
        let mv = |i: usize, j: usize, k: usize| if mask[[i, j, k]] { 1.0 } else { 0.0 };
        let num = collapse_i(&collapse_j(&along_k(&rv, &num_w), &num_w), &num_w);
        let den = collapse_i(&collapse_j(&along_k(&mv, &den_w), &den_w), &den_w);
        let phi: Vec<f64> = num
            .iter()
            .zip(&den)
            .map(|(a, b)| if *b > 0.0 { a / b } else { 0.0 })
            .collect();
        // evaluate: separable as well (k, then j, then i)
        let mut t_k = vec![0f64; n0 * n1 * d[2]];
        t_k.par_chunks_mut(n1 * d[2])
            .enumerate()
            .for_each(|(ci, ch)| {
                for cj in 0..n1 {
                    for k in 0..d[2] {
                        let (s, ws) = w[2][k];
                        let base = (ci * n1 + cj) * n2 + s;
                        ch[cj * d[2] + k] = (0..4).map(|c| ws[c] * phi[base + c]).sum();
                    }
                }
            });
        let mut t_j = vec![0f64; n0 * d[1] * d[2]];
        t_j.par_chunks_mut(d[1] * d[2])
            .enumerate()
            .for_each(|(ci, ch)| {
                for j in 0..d[1] {
                    let (s, ws) = w[1][j];
                    for k in 0..d[2] {
                        ch[j * d[2] + k] = (0..4)
                            .map(|c| ws[c] * t_k[(ci * n1 + s + c) * d[2] + k])
                            .sum();
                    }
                }
            });
        let mut out = Array3::<f32>::zeros((d[0], d[1], d[2]));
        Zip::indexed(&mut out).par_for_each(|(i, j, k), o| {
            let (s, ws) = w[0][i];
            let mut v = 0.0;
            for c in 0..4 {
                v += ws[c] * t_j[((s + c) * d[1] + j) * d[2] + k];
            }
            *o = v as f32;
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix4;

    /// The separable fit equals the direct sums of Lee et al. 1997 over the 64 control points
    /// of every voxel (a naive reference).
    #[test]
    fn separable_fit_equals_the_direct_sums() {
        let d = [13, 11, 9];
        let lat = Lattice::new(d, [2.0, 2.5, 3.0], 9.0);
        let r = Array3::from_shape_fn((d[0], d[1], d[2]), |(i, j, k)| {
            ((i * 7 + j * 3 + k) % 11) as f32 - 5.0 + 0.1 * i as f32
        });
        let mask = Array3::from_shape_fn((d[0], d[1], d[2]), |(i, j, k)| (i + 2 * j + k) % 5 != 0);
        let fast = lat.fit(&r, &mask);
        let [n0, n1, n2] = lat.n;
        let mut num = vec![0f64; n0 * n1 * n2];
        let mut den = vec![0f64; n0 * n1 * n2];
        for ((i, j, k), &m) in mask.indexed_iter() {
            if !m {
                continue;
            }
            let (p, q, u) = (lat.pos(0, i), lat.pos(1, j), lat.pos(2, k));
            let (wi, wj, wk) = (bspline(p.1), bspline(q.1), bspline(u.1));
            let mut w2 = 0.0;
            for a in 0..4 {
                for b in 0..4 {
                    for c in 0..4 {
                        w2 += (wi[a] * wj[b] * wk[c]).powi(2);
                    }
                }
            }
            for a in 0..4 {
                for b in 0..4 {
                    for c in 0..4 {
                        let w = wi[a] * wj[b] * wk[c];
                        let t = ((p.0 + a) * n1 + q.0 + b) * n2 + u.0 + c;
                        num[t] += w * w * (w * r[[i, j, k]] as f64 / w2);
                        den[t] += w * w;
                    }
                }
            }
        }
        let phi: Vec<f64> = num
            .iter()
            .zip(&den)
            .map(|(a, b)| if *b > 0.0 { a / b } else { 0.0 })
            .collect();
        for ((i, j, k), &v) in fast.indexed_iter() {
            let (p, q, u) = (lat.pos(0, i), lat.pos(1, j), lat.pos(2, k));
            let (wi, wj, wk) = (bspline(p.1), bspline(q.1), bspline(u.1));
            let mut e = 0.0;
            for a in 0..4 {
                for b in 0..4 {
                    for c in 0..4 {
                        e += wi[a] * wj[b] * wk[c] * phi[((p.0 + a) * n1 + q.0 + b) * n2 + u.0 + c];
                    }
                }
            }
            assert!((v as f64 - e).abs() < 1e-4, "{v} vs {e} at {i},{j},{k}");
        }
    }

    /// A two-tissue phantom times a smooth multiplicative field: the corrected image has the
    /// flat tissue intensities back (within-tissue CV falls from the field's to near the noise).
    #[test]
    fn recovers_a_smooth_field() {
        let d = (48, 56, 40);
        let mut affine = Matrix4::identity() * 2.0;
        affine[(3, 3)] = 1.0;
        let c = [24.0, 28.0, 20.0];
        let mut truth = Array3::<f32>::zeros(d);
        let mut mask = Array3::from_elem(d, false);
        let mut field = Array3::<f32>::zeros(d);
        for ((i, j, k), t) in truth.indexed_iter_mut() {
            let p = [i as f64 - c[0], j as f64 - c[1], k as f64 - c[2]];
            let rho =
                ((p[0] / 20.0).powi(2) + (p[1] / 24.0).powi(2) + (p[2] / 17.0).powi(2)).sqrt();
            if rho < 1.0 {
                mask[[i, j, k]] = true;
                // stripes of two tissues
                *t = if ((i / 4) + (k / 5)) % 2 == 0 {
                    600.0
                } else {
                    900.0
                };
            }
            field[[i, j, k]] = (0.25 * (p[0] / 24.0) - 0.2 * (p[2] / 20.0)
                + 0.1 * (p[1] / 28.0).powi(2))
            .exp() as f32;
        }
        let observed = &truth * &field;
        let img = Volume::new(observed.clone().into_dyn(), affine).unwrap();
        let opts = BiasOptions {
            shrink: 2,
            spline_spacing_mm: 120.0,
            iterations: vec![50, 50, 50],
            ..BiasOptions::default()
        };
        let r = correct_bias(&img, Some(&mask), &opts).unwrap();
        let cv = |a: &Array3<f32>, level: f32| -> f64 {
            let v: Vec<f64> = a
                .iter()
                .zip(truth.iter())
                .filter(|(_, t)| **t == level)
                .map(|(x, _)| *x as f64)
                .collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt() / m
        };
        let corrected = r.corrected.frame(0).to_owned();
        for level in [600.0, 900.0] {
            let before = cv(&observed, level);
            let after = cv(&corrected, level);
            assert!(before > 0.08, "the field is not visible: CV {before}");
            assert!(
                after < 0.3 * before,
                "tissue {level}: CV {before:.3} → {after:.3}"
            );
        }
        // deterministic at any thread count
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| correct_bias(&img, Some(&mask), &opts).unwrap());
        assert_eq!(one.field.data, r.field.data);
    }
}
