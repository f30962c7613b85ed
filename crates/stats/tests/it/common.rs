//! Shared helpers: seeded data, naive references.

use cbflow_stats::{Connectivity, MaskGeometry};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// Full-grid geometry (every voxel in the mask).
pub fn full_geometry(dims: [usize; 3]) -> MaskGeometry {
    MaskGeometry::from_mask(dims, &vec![true; dims[0] * dims[1] * dims[2]]).unwrap()
}

/// Separable Gaussian smoothing (sigma in voxels, kernel radius 3 sigma, zero padding,
/// renormalised at the borders) of a full-grid image in linear (i fastest) order.
pub fn smooth(img: &[f64], dims: [usize; 3], sigma: f64) -> Vec<f64> {
    let r = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f64> = (-r..=r)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let mut cur = img.to_vec();
    let strides = [1usize, dims[0], dims[0] * dims[1]];
    for axis in 0..3 {
        let mut next = vec![0.0; cur.len()];
        for lin in 0..cur.len() {
            let c = [
                lin % dims[0],
                (lin / dims[0]) % dims[1],
                lin / (dims[0] * dims[1]),
            ];
            let (mut acc, mut wsum) = (0.0, 0.0);
            for (ki, d) in (-r..=r).enumerate() {
                let p = c[axis] as i64 + d;
                if p < 0 || p >= dims[axis] as i64 {
                    continue;
                }
                let l2 = (lin as i64 + d * strides[axis] as i64) as usize;
                acc += kernel[ki] * cur[l2];
                wsum += kernel[ki];
            }
            next[lin] = acc / wsum;
        }
        cur = next;
    }
    cur
}

/// Smooth noise data set (n, V) of a full grid, each map scaled to unit variance overall.
pub fn smooth_noise(rng: &mut ChaCha8Rng, n: usize, dims: [usize; 3], sigma: f64) -> Array2<f32> {
    let nv = dims[0] * dims[1] * dims[2];
    let mut out = Array2::zeros((n, nv));
    for i in 0..n {
        let raw: Vec<f64> = (0..nv).map(|_| normal(rng)).collect();
        let sm = smooth(&raw, dims, sigma);
        let sd = (sm.iter().map(|x| x * x).sum::<f64>() / nv as f64).sqrt();
        for v in 0..nv {
            out[[i, v]] = (sm[v] / sd) as f32;
        }
    }
    out
}

/// Naive one-sample t per voxel of sign-flipped data.
pub fn naive_one_sample_t(data: &Array2<f32>, signs: &[f64]) -> Vec<f64> {
    let (n, nv) = data.dim();
    (0..nv)
        .map(|v| {
            let x: Vec<f64> = (0..n).map(|i| signs[i] * data[[i, v]] as f64).collect();
            let m = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n as f64 - 1.0);
            m / (var / n as f64).sqrt()
        })
        .collect()
}

/// Naive flood-fill labelling of `active` voxels of a geometry; returns component id per voxel
/// (usize::MAX inactive) and sizes.
pub fn flood_fill(
    geom: &MaskGeometry,
    conn: Connectivity,
    active: &[bool],
) -> (Vec<usize>, Vec<usize>) {
    let ijk = geom.ijk();
    let n = ijk.len();
    let maxn2 = match conn {
        Connectivity::Faces6 => 1,
        Connectivity::Edges18 => 2,
        Connectivity::Corners26 => 3,
    };
    let adjacent = |a: [usize; 3], b: [usize; 3]| {
        let d: Vec<i64> = (0..3).map(|k| a[k] as i64 - b[k] as i64).collect();
        d.iter().all(|x| x.abs() <= 1)
            && (1..=maxn2).contains(&d.iter().map(|x| x * x).sum::<i64>())
    };
    let mut lab = vec![usize::MAX; n];
    let mut sizes = Vec::new();
    for s in 0..n {
        if !active[s] || lab[s] != usize::MAX {
            continue;
        }
        let id = sizes.len();
        lab[s] = id;
        let mut queue = vec![s];
        let mut size = 0;
        while let Some(v) = queue.pop() {
            size += 1;
            for u in 0..n {
                if active[u] && lab[u] == usize::MAX && adjacent(ijk[u], ijk[v]) {
                    lab[u] = id;
                    queue.push(u);
                }
            }
        }
        sizes.push(size);
    }
    (lab, sizes)
}

/// Naive TFCE (Smith & Nichols 2009): for each height step h_k = k dh (k ≥ 1, h_k ≤ max),
/// label voxels with value ≥ h_k by flood fill and add extent^E h_k^H dh.
pub fn naive_tfce(
    values: &[f64],
    geom: &MaskGeometry,
    conn: Connectivity,
    e: f64,
    h: f64,
    dh: f64,
) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut k = 1usize;
    while k as f64 * dh <= max {
        let hk = k as f64 * dh;
        let active: Vec<bool> = values.iter().map(|&v| v >= hk).collect();
        let (lab, sizes) = flood_fill(geom, conn, &active);
        for v in 0..values.len() {
            if lab[v] != usize::MAX {
                out[v] += (sizes[lab[v]] as f64).powf(e) * hk.powf(h) * dh;
            }
        }
        k += 1;
    }
    out
}

/// Naive OLS t for contrast c, per voxel, by solving the normal equations.
pub fn naive_ols_t(y: &Array2<f64>, x: &Array2<f64>, c: &[f64]) -> Vec<f64> {
    let (n, p) = x.dim();
    let xm = nalgebra::DMatrix::from_fn(n, p, |i, j| x[[i, j]]);
    let xtx_inv = (xm.transpose() * &xm).try_inverse().unwrap();
    let cv = nalgebra::DVector::from_column_slice(c);
    let var_c = (cv.transpose() * &xtx_inv * &cv)[(0, 0)];
    (0..y.ncols())
        .map(|v| {
            let yv = nalgebra::DVector::from_fn(n, |i, _| y[[i, v]]);
            let beta = &xtx_inv * xm.transpose() * &yv;
            let res = &yv - &xm * &beta;
            let s2 = res.dot(&res) / (n - p) as f64;
            cv.dot(&beta) / (s2 * var_c).sqrt()
        })
        .collect()
}

/// Lower and upper 95% limits of a Binomial(n, p) count (central, exact).
pub fn binomial_interval(n: u64, p: f64) -> (u64, u64) {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let b = Binomial::new(p, n).unwrap();
    let lo = (0..=n).find(|&k| b.cdf(k) >= 0.025).unwrap();
    let hi = (0..=n).find(|&k| b.cdf(k) >= 0.975).unwrap();
    (lo, hi)
}
