//! Similarity metrics: Mattes mutual information, normalised and local cross-correlation, mean
//! squares. All take the fixed image and the moving image already resampled onto the fixed grid
//! (same shape), and an optional mask (same shape) restricting the voxels used.

use ndarray::{Array3, ArrayView3, Axis, Zip};
use rayon::prelude::*;

use crate::{Error, Result};

const CHUNK: usize = 8192;

/// Cubic B-spline kernel β³(x).
#[inline]
fn bspline3(x: f64) -> f64 {
    let a = x.abs();
    if a < 1.0 {
        (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0
    } else if a < 2.0 {
        let t = 2.0 - a;
        t * t * t / 6.0
    } else {
        0.0
    }
}

/// Intensity ranges and bin count of a Mattes joint histogram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MiSpec {
    pub bins: usize,
    pub fixed_range: (f64, f64),
    pub moving_range: (f64, f64),
}

const PAD: f64 = 2.0;

#[inline]
fn bin_pos(v: f64, range: (f64, f64), bins: usize) -> f64 {
    let w = (range.1 - range.0).max(1e-12);
    let t = ((v - range.0) / w).clamp(0.0, 1.0);
    PAD + t * (bins as f64 - 2.0 * PAD - 1.0)
}

/// Mattes mutual information (nats) of paired samples with cubic B-spline Parzen windows on both
/// intensity axes (Mattes et al. 2003, IEEE TMI 22:120). Sums are over fixed-size chunks reduced
/// in order, so the result does not depend on the thread count.
pub(crate) fn mi_pairs(f: &[f32], m: &[f32], spec: &MiSpec) -> f64 {
    mi_of_histogram(&joint_histogram(f, m, spec), spec.bins).map_or(0.0, |(mi, ..)| mi)
}

/// Joint histogram `[bins × bins]` (fixed-major) of paired samples with cubic B-spline Parzen
/// windows; chunk sums reduced in order.
fn joint_histogram(f: &[f32], m: &[f32], spec: &MiSpec) -> Vec<f64> {
    let b = spec.bins;
    let partial: Vec<Vec<f64>> = f
        .par_chunks(CHUNK)
        .zip(m.par_chunks(CHUNK))
        .map(|(fc, mc)| {
            let mut h = vec![0.0f64; b * b];
            for (&fv, &mv) in fc.iter().zip(mc) {
                let pf = bin_pos(fv as f64, spec.fixed_range, b);
                let pm = bin_pos(mv as f64, spec.moving_range, b);
                let f0 = pf.floor() as isize - 1;
                let m0 = pm.floor() as isize - 1;
                let mut wf = [0.0; 4];
                let mut wm = [0.0; 4];
                for t in 0..4 {
                    wf[t] = bspline3(pf - (f0 + t as isize) as f64);
                    wm[t] = bspline3(pm - (m0 + t as isize) as f64);
                }
                for a in 0..4 {
                    let row = (f0 + a as isize) as usize * b;
                    for c in 0..4 {
                        h[row + (m0 + c as isize) as usize] += wf[a] * wm[c];
                    }
                }
            }
            h
        })
        .collect();
    let mut h = vec![0.0f64; b * b];
    for p in &partial {
        for (x, y) in h.iter_mut().zip(p) {
            *x += y;
        }
    }
    h
}

/// MI of a joint histogram, the table `log(p(i,j) / (p_f(i) p_m(j)))` (0 where `p` is 0) and
/// the histogram's total; `None` for an empty histogram.
fn mi_of_histogram(h: &[f64], b: usize) -> Option<(f64, Vec<f64>, f64)> {
    let total: f64 = h.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mut pf = vec![0.0; b];
    let mut pm = vec![0.0; b];
    for i in 0..b {
        for j in 0..b {
            let v = h[i * b + j] / total;
            pf[i] += v;
            pm[j] += v;
        }
    }
    let mut mi = 0.0;
    let mut l = vec![0.0f64; b * b];
    for i in 0..b {
        for j in 0..b {
            let p = h[i * b + j] / total;
            if p > 1e-16 {
                let v = (p / (pf[i] * pm[j])).ln();
                mi += p * v;
                l[i * b + j] = v;
            }
        }
    }
    Some((mi, l, total))
}

/// Derivative of the cubic B-spline kernel, dβ³/dx.
#[inline]
fn bspline3_deriv(x: f64) -> f64 {
    let a = x.abs();
    if a < 1.0 {
        -2.0 * x + 1.5 * x * a
    } else if a < 2.0 {
        let t = 2.0 - a;
        -0.5 * t * t * x.signum()
    } else {
        0.0
    }
}

/// Mattes MI of paired samples and its derivative with respect to each moving value:
/// `(MI, ∂MI/∂m_s)`. With the sample set fixed, `dMI = Σ_ij dp(i,j) log(p(i,j) / (p_f(i)
/// p_m(j)))` (the other terms sum to 0), and `p(i,j)` depends on `m_s` through the derivative of
/// the moving Parzen window (Mattes et al. 2003, eq. 11–13). Ordered chunked reductions.
pub(crate) fn mi_pairs_deriv(f: &[f32], m: &[f32], spec: &MiSpec) -> (f64, Vec<f64>) {
    let b = spec.bins;
    let Some((mi, l, total)) = mi_of_histogram(&joint_histogram(f, m, spec), b) else {
        return (0.0, vec![0.0; m.len()]);
    };
    let w = (spec.moving_range.1 - spec.moving_range.0).max(1e-12);
    let scale = (b as f64 - 2.0 * PAD - 1.0) / w;
    let d: Vec<f64> = f
        .par_iter()
        .zip(m.par_iter())
        .map(|(&fv, &mv)| {
            let t = (mv as f64 - spec.moving_range.0) / w;
            if !(0.0..=1.0).contains(&t) {
                return 0.0; // clamped into the end bins: no derivative
            }
            let pf = bin_pos(fv as f64, spec.fixed_range, b);
            let pmv = bin_pos(mv as f64, spec.moving_range, b);
            let f0 = pf.floor() as isize - 1;
            let m0 = pmv.floor() as isize - 1;
            let mut g = 0.0;
            for a in 0..4 {
                let wa = bspline3(pf - (f0 + a as isize) as f64);
                let row = (f0 + a as isize) as usize * b;
                for c in 0..4 {
                    g += wa
                        * bspline3_deriv(pmv - (m0 + c as isize) as f64)
                        * l[row + (m0 + c as isize) as usize];
                }
            }
            g * scale / total
        })
        .collect();
    (mi, d)
}

/// Sums Σf, Σm, Σf², Σm², Σfm over paired samples (chunked, ordered reduction).
fn moments(f: &[f32], m: &[f32]) -> [f64; 5] {
    let partial: Vec<[f64; 5]> = f
        .par_chunks(CHUNK)
        .zip(m.par_chunks(CHUNK))
        .map(|(fc, mc)| {
            let mut s = [0.0f64; 5];
            for (&a, &b) in fc.iter().zip(mc) {
                let (a, b) = (a as f64, b as f64);
                s[0] += a;
                s[1] += b;
                s[2] += a * a;
                s[3] += b * b;
                s[4] += a * b;
            }
            s
        })
        .collect();
    let mut s = [0.0; 5];
    for p in partial {
        for t in 0..5 {
            s[t] += p[t];
        }
    }
    s
}

/// Pearson correlation of paired samples (0 when either is constant).
pub(crate) fn ncc_pairs(f: &[f32], m: &[f32]) -> f64 {
    let n = f.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let s = moments(f, m);
    let sff = s[2] - s[0] * s[0] / n;
    let smm = s[3] - s[1] * s[1] / n;
    let sfm = s[4] - s[0] * s[1] / n;
    if sff <= 1e-12 * s[2].abs().max(1.0) || smm <= 1e-12 * s[3].abs().max(1.0) {
        return 0.0;
    }
    sfm / (sff * smm).sqrt()
}

/// Mean of squared differences of paired samples.
pub(crate) fn msq_pairs(f: &[f32], m: &[f32]) -> f64 {
    let partial: Vec<f64> = f
        .par_chunks(CHUNK)
        .zip(m.par_chunks(CHUNK))
        .map(|(fc, mc)| {
            fc.iter()
                .zip(mc)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>()
        })
        .collect();
    partial.iter().sum::<f64>() / f.len().max(1) as f64
}

fn check_pair(
    fixed: &ArrayView3<f32>,
    moving: &ArrayView3<f32>,
    mask: Option<&ArrayView3<bool>>,
) -> Result<()> {
    if fixed.shape() != moving.shape() {
        return Err(Error::ShapeMismatch {
            what: "moving image (resampled to the fixed grid)".into(),
            expected: fixed.shape().to_vec(),
            got: moving.shape().to_vec(),
        });
    }
    if let Some(m) = mask
        && m.shape() != fixed.shape()
    {
        return Err(Error::ShapeMismatch {
            what: "metric mask".into(),
            expected: fixed.shape().to_vec(),
            got: m.shape().to_vec(),
        });
    }
    Ok(())
}

fn gather(
    fixed: ArrayView3<f32>,
    moving: ArrayView3<f32>,
    mask: Option<ArrayView3<bool>>,
    needed: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    check_pair(&fixed, &moving, mask.as_ref())?;
    let mut f = Vec::new();
    let mut m = Vec::new();
    for ((idx, &a), &b) in fixed.indexed_iter().zip(moving.iter()) {
        if mask.as_ref().is_none_or(|mk| mk[idx]) && a.is_finite() && b.is_finite() {
            f.push(a);
            m.push(b);
        }
    }
    if f.len() < needed {
        return Err(Error::EmptyMask {
            what: "metric mask (finite voxels)".into(),
            n_voxels: f.len(),
            needed,
        });
    }
    Ok((f, m))
}

fn range(v: &[f32]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    (lo, hi)
}

/// Mattes mutual information (nats, ≥ 0; higher is more similar) between `fixed` and `moving`
/// (same shape `[nx, ny, nz]`, moving already on the fixed grid) over the voxels of `mask`
/// (all finite voxels when `None`), with `bins` histogram bins (≥ 8; 32 is usual) and cubic
/// B-spline Parzen windows on both axes (Mattes et al. 2003, IEEE TMI 22:120–128). Suited to
/// images of different contrast (M0 or mean control ↔ T1w).
pub fn mattes_mi(
    fixed: ArrayView3<f32>,
    moving: ArrayView3<f32>,
    mask: Option<ArrayView3<bool>>,
    bins: usize,
) -> Result<f64> {
    if bins < 8 {
        return Err(crate::error::invalid(
            "bins",
            bins,
            "at least 8 histogram bins are needed",
        ));
    }
    let (f, m) = gather(fixed, moving, mask, 2)?;
    let spec = MiSpec {
        bins,
        fixed_range: range(&f),
        moving_range: range(&m),
    };
    Ok(mi_pairs(&f, &m, &spec))
}

/// Normalised cross-correlation (Pearson r in [-1, 1]) over the mask (all finite voxels when
/// `None`); shapes `[nx, ny, nz]`, equal.
pub fn ncc(
    fixed: ArrayView3<f32>,
    moving: ArrayView3<f32>,
    mask: Option<ArrayView3<bool>>,
) -> Result<f64> {
    let (f, m) = gather(fixed, moving, mask, 2)?;
    Ok(ncc_pairs(&f, &m))
}

/// Mean squared intensity difference over the mask; shapes `[nx, ny, nz]`, equal.
pub fn mean_squares(
    fixed: ArrayView3<f32>,
    moving: ArrayView3<f32>,
    mask: Option<ArrayView3<bool>>,
) -> Result<f64> {
    let (f, m) = gather(fixed, moving, mask, 1)?;
    Ok(msq_pairs(&f, &m))
}

/// Box sums over a `(2r+1)³` window truncated at the borders (separable running sums; for
/// standard-layout arrays plane by plane and row by row, in contiguous memory).
pub(crate) fn box_sum(a: &ArrayView3<f32>, r: usize) -> Array3<f32> {
    let mut out = a.as_standard_layout().into_owned();
    let (n0, n1, n2) = out.dim();
    let data = out.as_slice_mut().expect("standard layout");
    // along k: running sums within each row
    data.par_chunks_mut(n2).for_each(|row| {
        let mut cs = vec![0.0f64; n2 + 1];
        for i in 0..n2 {
            cs[i + 1] = cs[i] + row[i] as f64;
        }
        for i in 0..n2 {
            row[i] = (cs[(i + r + 1).min(n2)] - cs[i.saturating_sub(r)]) as f32;
        }
    });
    // along j: within each i-plane, rows combined
    data.par_chunks_mut(n1 * n2).for_each(|plane| {
        let mut cs = vec![0.0f64; (n1 + 1) * n2];
        for j in 0..n1 {
            for k in 0..n2 {
                cs[(j + 1) * n2 + k] = cs[j * n2 + k] + plane[j * n2 + k] as f64;
            }
        }
        for j in 0..n1 {
            let (hi, lo) = ((j + r + 1).min(n1), j.saturating_sub(r));
            for k in 0..n2 {
                plane[j * n2 + k] = (cs[hi * n2 + k] - cs[lo * n2 + k]) as f32;
            }
        }
    });
    // along i: planes combined
    let p = n1 * n2;
    let mut cs = vec![0.0f64; (n0 + 1) * p];
    for i in 0..n0 {
        let (done, rest) = cs.split_at_mut((i + 1) * p);
        let prev = &done[i * p..];
        for (t, c) in rest[..p].iter_mut().enumerate() {
            *c = prev[t] + data[i * p + t] as f64;
        }
    }
    data.par_chunks_mut(p).enumerate().for_each(|(i, plane)| {
        let (hi, lo) = ((i + r + 1).min(n0), i.saturating_sub(r));
        for (t, v) in plane.iter_mut().enumerate() {
            *v = (cs[hi * p + t] - cs[lo * p + t]) as f32;
        }
    });
    out
}

/// [`box_sum`] lane by lane (the reference the fast version is tested against).
#[cfg(test)]
fn box_sum_lanes(a: &ArrayView3<f32>, r: usize) -> Array3<f32> {
    let mut out = a.to_owned();
    for ax in 0..3 {
        Zip::from(out.lanes_mut(Axis(ax))).for_each(|mut lane| {
            let n = lane.len();
            let mut cs = vec![0.0f64; n + 1];
            for i in 0..n {
                cs[i + 1] = cs[i] + lane[i] as f64;
            }
            for i in 0..n {
                let lo = i.saturating_sub(r);
                let hi = (i + r + 1).min(n);
                lane[i] = (cs[hi] - cs[lo]) as f32;
            }
        });
    }
    out
}

/// Local statistics of a window of radius `r` at every voxel: `(sFF, sMM, sFM, f - f̄, m - m̄)`
/// where `sXY = Σ (x - x̄)(y - ȳ)` over the window (Avants et al. 2008, MedIA 12:26, eq. 5).
pub(crate) struct LocalStats {
    pub sff: Array3<f32>,
    pub smm: Array3<f32>,
    pub sfm: Array3<f32>,
    pub fc: Array3<f32>,
    pub mc: Array3<f32>,
}

pub(crate) fn local_stats(f: &ArrayView3<f32>, m: &ArrayView3<f32>, r: usize) -> LocalStats {
    let d = f.dim();
    let count = |i: usize, n: usize| ((i + r + 1).min(n) - i.saturating_sub(r)) as f32;
    let ff = Zip::from(f).par_map_collect(|&a| a * a);
    let mm = Zip::from(m).par_map_collect(|&a| a * a);
    let fm = Zip::from(f).and(m).par_map_collect(|&a, &b| a * b);
    let sf = box_sum(f, r);
    let sm = box_sum(m, r);
    let sff = box_sum(&ff.view(), r);
    let smm = box_sum(&mm.view(), r);
    let sfm = box_sum(&fm.view(), r);
    let mut out = LocalStats {
        sff: Array3::zeros(d),
        smm: Array3::zeros(d),
        sfm: Array3::zeros(d),
        fc: Array3::zeros(d),
        mc: Array3::zeros(d),
    };
    Zip::indexed(&mut out.sff)
        .and(&mut out.smm)
        .and(&mut out.sfm)
        .and(&mut out.fc)
        .and(&mut out.mc)
        .par_for_each(|(i, j, k), a, b, c, e, g| {
            let n = count(i, d.0) * count(j, d.1) * count(k, d.2);
            let mf = sf[[i, j, k]] / n;
            let mmv = sm[[i, j, k]] / n;
            *a = (sff[[i, j, k]] - mf * sf[[i, j, k]]).max(0.0);
            *b = (smm[[i, j, k]] - mmv * sm[[i, j, k]]).max(0.0);
            *c = sfm[[i, j, k]] - mf * sm[[i, j, k]];
            *e = f[[i, j, k]] - mf;
            *g = m[[i, j, k]] - mmv;
        });
    out
}

/// Local (windowed) cross-correlation: the mean over the mask of `sFM² / (sFF·sMM)` in
/// `(2·radius+1)³` windows (Avants et al. 2008, MedIA 12:26–41; ANTs `CC`), in [0, 1]; windows
/// where either image is constant are skipped. Shapes `[nx, ny, nz]`, equal.
pub fn lncc(
    fixed: ArrayView3<f32>,
    moving: ArrayView3<f32>,
    mask: Option<ArrayView3<bool>>,
    radius: usize,
) -> Result<f64> {
    check_pair(&fixed, &moving, mask.as_ref())?;
    if radius == 0 {
        return Err(crate::error::invalid(
            "radius",
            radius,
            "the window radius must be at least 1 voxel",
        ));
    }
    let clean = |a: ArrayView3<f32>| a.mapv(|v| if v.is_finite() { v } else { 0.0 });
    let st = local_stats(&clean(fixed).view(), &clean(moving).view(), radius);
    let (s, n) = lncc_mean(&st, mask.as_ref(), (0.0, 0.0));
    if n == 0 {
        return Err(Error::EmptyMask {
            what: "lncc mask (non-constant windows)".into(),
            n_voxels: 0,
            needed: 1,
        });
    }
    Ok(s)
}

/// Mean of the local squared correlation over the mask (ordered reduction over i-planes).
/// `eps` (fixed, moving) is added to each window's variances, `sFM² / ((sFF+ε_F)(sMM+ε_M))`:
/// with zeros, windows where either image is constant are skipped; with a small share of
/// each image's variance (as [`crate::register_syn`] uses), a flat region of a noise-free
/// image contributes about nothing instead of a correlation of its rounding errors.
pub(crate) fn lncc_mean(
    st: &LocalStats,
    mask: Option<&ArrayView3<bool>>,
    eps: (f32, f32),
) -> (f64, usize) {
    let planes: Vec<(f64, usize)> = (0..st.sff.dim().0)
        .into_par_iter()
        .map(|i| {
            let mut s = 0.0;
            let mut n = 0;
            let (a, b, c) = (
                st.sff.index_axis(Axis(0), i),
                st.smm.index_axis(Axis(0), i),
                st.sfm.index_axis(Axis(0), i),
            );
            for ((jk, &ff), (&mm, &fm)) in a.indexed_iter().zip(b.iter().zip(c.iter())) {
                if mask.is_some_and(|mk| !mk[[i, jk.0, jk.1]]) {
                    continue;
                }
                if ff > 1e-6 && mm > 1e-6 {
                    s += (fm as f64).powi(2) / ((ff + eps.0) as f64 * (mm + eps.1) as f64);
                    n += 1;
                }
            }
            (s, n)
        })
        .collect();
    let (s, n) = planes
        .iter()
        .fold((0.0, 0), |acc, p| (acc.0 + p.0, acc.1 + p.1));
    (if n > 0 { s / n as f64 } else { 0.0 }, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plane/row box sums equal the lane-by-lane reference.
    #[test]
    fn box_sums_equal_the_lane_reference() {
        let a = Array3::from_shape_fn((9, 12, 7), |(i, j, k)| {
            ((i * 5 + j * 3 + k * 11) % 13) as f32 - 4.0
        });
        for r in [1, 2, 4] {
            let fast = box_sum(&a.view(), r);
            let slow = box_sum_lanes(&a.view(), r);
            let worst = fast
                .iter()
                .zip(slow.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "r {r}: {worst}");
        }
    }

    /// The analytic derivative of Mattes MI equals central differences of `mi_pairs`.
    #[test]
    fn mi_derivative_matches_finite_differences() {
        let n = 400;
        let f: Vec<f32> = (0..n)
            .map(|i| ((i * 37) % 101) as f32 + 0.5 * (i % 7) as f32)
            .collect();
        let m: Vec<f32> = f
            .iter()
            .enumerate()
            .map(|(i, &v)| 0.02 * v * v + 3.0 * ((i * 13) % 17) as f32)
            .collect();
        let spec = MiSpec {
            bins: 16,
            fixed_range: (0.0, 110.0),
            moving_range: (-10.0, 320.0),
        };
        let (mi, d) = mi_pairs_deriv(&f, &m, &spec);
        assert!((mi - mi_pairs(&f, &m, &spec)).abs() < 1e-12);
        for s in [3usize, 50, 123, 399] {
            let h = 1e-2f32;
            let mut a = m.clone();
            let mut c = m.clone();
            a[s] += h;
            c[s] -= h;
            let fd = (mi_pairs(&f, &a, &spec) - mi_pairs(&f, &c, &spec)) / (2.0 * h as f64);
            assert!(
                (fd - d[s]).abs() < 1e-3 * fd.abs().max(1e-6) + 1e-9,
                "sample {s}: analytic {} vs numeric {fd}",
                d[s]
            );
        }
    }

    fn naive_lncc(f: &Array3<f32>, m: &Array3<f32>, r: usize) -> f64 {
        let d = f.dim();
        let (mut s, mut n) = (0.0, 0);
        for i in 0..d.0 {
            for j in 0..d.1 {
                for k in 0..d.2 {
                    let mut v = vec![];
                    for a in i.saturating_sub(r)..(i + r + 1).min(d.0) {
                        for b in j.saturating_sub(r)..(j + r + 1).min(d.1) {
                            for c in k.saturating_sub(r)..(k + r + 1).min(d.2) {
                                v.push((f[[a, b, c]] as f64, m[[a, b, c]] as f64));
                            }
                        }
                    }
                    let nn = v.len() as f64;
                    let mf = v.iter().map(|x| x.0).sum::<f64>() / nn;
                    let mm = v.iter().map(|x| x.1).sum::<f64>() / nn;
                    let sff: f64 = v.iter().map(|x| (x.0 - mf).powi(2)).sum();
                    let smm: f64 = v.iter().map(|x| (x.1 - mm).powi(2)).sum();
                    let sfm: f64 = v.iter().map(|x| (x.0 - mf) * (x.1 - mm)).sum();
                    if sff > 1e-6 && smm > 1e-6 {
                        s += sfm * sfm / (sff * smm);
                        n += 1;
                    }
                }
            }
        }
        s / n as f64
    }

    #[test]
    fn lncc_matches_naive_window_computation() {
        let f = Array3::from_shape_fn((9, 8, 7), |(i, j, k)| {
            ((i * 7 + j * 3 + k * 5) % 11) as f32 + 0.1 * i as f32
        });
        let m = Array3::from_shape_fn((9, 8, 7), |(i, j, k)| {
            ((i * 2 + j * 5 + k) % 7) as f32 - 0.3 * k as f32
        });
        let fast = lncc(f.view(), m.view(), None, 2).unwrap();
        let slow = naive_lncc(&f, &m, 2);
        assert!((fast - slow).abs() < 1e-4, "{fast} vs {slow}");
        let same = lncc(f.view(), f.view(), None, 1).unwrap();
        assert!((same - 1.0).abs() < 1e-4);
    }

    #[test]
    fn mi_is_maximal_for_a_nonlinear_remap_and_low_for_independent() {
        use std::f32::consts::PI;
        let f = Array3::from_shape_fn((20, 20, 20), |(i, j, k)| {
            ((i * 13 + j * 7 + k * 3) % 17) as f32
        });
        let g = f.mapv(|v| (v * PI / 10.0).sin() * 5.0); // non-monotone remap
        let h = Array3::from_shape_fn((20, 20, 20), |(i, j, k)| {
            ((i * 5 + j * 11 + k * 13) % 19) as f32
        });
        let mi_remap = mattes_mi(f.view(), g.view(), None, 32).unwrap();
        let mi_self = mattes_mi(f.view(), f.view(), None, 32).unwrap();
        let mi_ind = mattes_mi(f.view(), h.view(), None, 32).unwrap();
        assert!(mi_remap > 0.8 * mi_self, "{mi_remap} {mi_self}");
        assert!(mi_ind < 0.3 * mi_self, "{mi_ind} {mi_self}");
        // ncc of an affine remap is 1
        let a = f.mapv(|v| 3.0 * v - 2.0);
        assert!((ncc(f.view(), a.view(), None).unwrap() - 1.0).abs() < 1e-9);
        let empty = Array3::from_elem((20, 20, 20), false);
        assert!(matches!(
            ncc(f.view(), a.view(), Some(empty.view())),
            Err(Error::EmptyMask { .. })
        ));
    }
}
