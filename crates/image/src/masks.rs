//! Binary masks (`Array3<bool>`, shape `[nx, ny, nz]`): thresholding, Otsu's threshold,
//! 6-connected components, dilation, erosion and hole filling.
//!
//! Neighbourhoods are 6-connected (faces). Voxels outside the array count as background.

use ndarray::{Array3, ArrayView3, Axis, Zip};

use crate::{Error, Result, Volume};

/// `data > thr` voxelwise (NaN is false). `data` has shape `[nx, ny, nz]`.
pub fn threshold(data: ArrayView3<'_, f32>, thr: f32) -> Array3<bool> {
    data.map(|&v| v > thr)
}

/// A mask from a volume: `value > thr` for a 3D volume, `mean over time > thr` for 4D.
pub fn mask_from_volume(vol: &Volume, thr: f32) -> Array3<bool> {
    let nt = vol.n_volumes();
    if nt == 1 {
        return threshold(vol.frame(0), thr);
    }
    let mut sum = vol.frame(0).mapv(f64::from);
    for t in 1..nt {
        Zip::from(&mut sum)
            .and(vol.frame(t))
            .for_each(|s, &v| *s += f64::from(v));
    }
    sum.mapv(|s| (s / nt as f64) as f32 > thr)
}

/// Number of true voxels.
pub fn count(mask: &Array3<bool>) -> usize {
    mask.iter().filter(|&&m| m).count()
}

/// Otsu's threshold (Otsu 1979, IEEE Trans. SMC 9:62-66) of the finite values: the level that
/// maximises the between-class variance of a 256-bin histogram spanning `[min, max]`. Returns
/// the upper edge of the last background bin, so `value > threshold` is the bright class.
///
/// # Errors
/// [`Error::Invalid`] when there are no finite values.
pub fn otsu_threshold(values: &[f32]) -> Result<f32> {
    let finite = || {
        values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .map(f64::from)
    };
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut n = 0usize;
    for v in finite() {
        lo = lo.min(v);
        hi = hi.max(v);
        n += 1;
    }
    if n == 0 {
        return Err(Error::Invalid("otsu threshold of no finite values".into()));
    }
    if hi == lo {
        return Ok(lo as f32);
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f64;
    let mut hist = [0f64; BINS];
    for v in finite() {
        let b = (((v - lo) / width) as usize).min(BINS - 1);
        hist[b] += 1.0;
    }
    let total = n as f64;
    let sum_all: f64 = hist.iter().enumerate().map(|(i, h)| i as f64 * h).sum();
    let (mut w0, mut sum0) = (0.0, 0.0);
    let mut best = (f64::NEG_INFINITY, 0usize);
    for (i, &h) in hist.iter().enumerate().take(BINS - 1) {
        w0 += h;
        sum0 += i as f64 * h;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1).powi(2);
        if between > best.0 {
            best = (between, i);
        }
    }
    Ok((lo + (best.1 + 1) as f64 * width) as f32)
}

/// A head/brain mask of one image (shape `[nx, ny, nz]`): Otsu threshold, largest
/// 6-connected component, holes filled.
///
/// # Errors
/// [`Error::Invalid`] when the image has no finite values.
pub fn otsu_mask(data: ArrayView3<'_, f32>) -> Result<Array3<bool>> {
    let vals: Vec<f32> = data.iter().copied().collect();
    let t = otsu_threshold(&vals)?;
    Ok(fill_holes(&largest_component(&threshold(data, t))))
}

/// Face neighbours of a voxel inside `dims`.
fn neighbours(dims: [usize; 3], ix: [usize; 3]) -> impl Iterator<Item = [usize; 3]> {
    (0..3).flat_map(move |a| {
        let lower = (ix[a] > 0).then(|| {
            let mut n = ix;
            n[a] -= 1;
            n
        });
        let upper = (ix[a] + 1 < dims[a]).then(|| {
            let mut n = ix;
            n[a] += 1;
            n
        });
        lower.into_iter().chain(upper)
    })
}

fn dims_of(mask: &Array3<bool>) -> [usize; 3] {
    [mask.shape()[0], mask.shape()[1], mask.shape()[2]]
}

/// Label the 6-connected components of the `true` voxels of `mask`, scanning in index order
/// (`i` fastest); returns the labels (0 = background, components 1, 2, ...) and their sizes.
pub fn label_components(mask: &Array3<bool>) -> (Array3<u32>, Vec<usize>) {
    let dims = dims_of(mask);
    let mut labels = Array3::<u32>::zeros(mask.raw_dim());
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                if !mask[[i, j, k]] || labels[[i, j, k]] != 0 {
                    continue;
                }
                let label = sizes.len() as u32 + 1;
                let mut size = 0;
                labels[[i, j, k]] = label;
                stack.push([i, j, k]);
                while let Some(v) = stack.pop() {
                    size += 1;
                    for n in neighbours(dims, v) {
                        if mask[n] && labels[n] == 0 {
                            labels[n] = label;
                            stack.push(n);
                        }
                    }
                }
                sizes.push(size);
            }
        }
    }
    (labels, sizes)
}

/// The largest 6-connected component of `mask` (the first found, in index order, on ties); an
/// all-false mask stays all false.
pub fn largest_component(mask: &Array3<bool>) -> Array3<bool> {
    let (labels, sizes) = label_components(mask);
    let Some((best, _)) = sizes
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
    else {
        return mask.clone();
    };
    let best = best as u32 + 1;
    labels.mapv(|l| l == best)
}

/// Dilate `iterations` times with the 6-connected cross (each step adds the face neighbours).
pub fn dilate(mask: &Array3<bool>, iterations: usize) -> Array3<bool> {
    step(mask, iterations, true)
}

/// Erode `iterations` times with the 6-connected cross (each step removes voxels with a
/// background face neighbour; outside the array counts as background).
pub fn erode(mask: &Array3<bool>, iterations: usize) -> Array3<bool> {
    step(mask, iterations, false)
}

fn step(mask: &Array3<bool>, iterations: usize, grow: bool) -> Array3<bool> {
    let dims = dims_of(mask);
    let mut cur = mask.clone();
    for _ in 0..iterations {
        let prev = cur.clone();
        Zip::indexed(&mut cur).par_for_each(|(i, j, k), out| {
            let ix = [i, j, k];
            if grow {
                *out = prev[ix] || neighbours(dims, ix).any(|n| prev[n]);
            } else {
                let on_border = (0..3).any(|a| ix[a] == 0 || ix[a] + 1 == dims[a]);
                *out = prev[ix] && !on_border && neighbours(dims, ix).all(|n| prev[n]);
            }
        });
    }
    cur
}

/// Fill holes: background voxels not 6-connected to the array border become foreground.
pub fn fill_holes(mask: &Array3<bool>) -> Array3<bool> {
    let dims = dims_of(mask);
    let mut outside = Array3::<bool>::from_elem(mask.raw_dim(), false);
    let mut stack = Vec::new();
    for ((i, j, k), &m) in mask.indexed_iter() {
        let border =
            i == 0 || j == 0 || k == 0 || i + 1 == dims[0] || j + 1 == dims[1] || k + 1 == dims[2];
        if border && !m {
            outside[[i, j, k]] = true;
            stack.push([i, j, k]);
        }
    }
    while let Some(v) = stack.pop() {
        for n in neighbours(dims, v) {
            if !mask[n] && !outside[n] {
                outside[n] = true;
                stack.push(n);
            }
        }
    }
    outside.mapv(|o| !o)
}

/// Set voxels outside `mask` to `fill` in every frame of a volume (in place).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the mask shape differs from the volume's.
pub fn apply_mask(vol: &mut Volume, mask: &Array3<bool>, fill: f32) -> Result<()> {
    let g = vol.grid();
    if mask.shape() != g.dims {
        return Err(Error::ShapeMismatch {
            what: "mask".into(),
            expected: g.dims.to_vec(),
            got: mask.shape().to_vec(),
        });
    }
    if vol.data.ndim() == 3 {
        Zip::from(&mut vol.data)
            .and(&mask.view().into_dyn())
            .for_each(|v, &m| {
                if !m {
                    *v = fill;
                }
            });
    } else {
        for mut frame in vol.data.axis_iter_mut(Axis(3)) {
            Zip::from(&mut frame)
                .and(&mask.view().into_dyn())
                .for_each(|v, &m| {
                    if !m {
                        *v = fill;
                    }
                });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morphology_on_a_ball() {
        let c = 10.0;
        let ball = Array3::from_shape_fn((21, 21, 21), |(i, j, k)| {
            ((i as f64 - c).powi(2) + (j as f64 - c).powi(2) + (k as f64 - c).powi(2)).sqrt() <= 6.0
        });
        // A hollow ball fills back to the ball.
        let mut hollow = ball.clone();
        let inner = erode(&ball, 2);
        Zip::from(&mut hollow)
            .and(&inner)
            .for_each(|h, &i| *h &= !i);
        assert!(count(&hollow) < count(&ball));
        assert_eq!(fill_holes(&hollow), ball);
        // Erode then dilate stays within the ball; dilation grows by the cross.
        assert!(
            Zip::from(&dilate(&erode(&ball, 1), 1))
                .and(&ball)
                .all(|&a, &b| !a || b)
        );
        let mut one = Array3::from_elem((5, 5, 5), false);
        one[[2, 2, 2]] = true;
        assert_eq!(count(&dilate(&one, 1)), 7);
        assert_eq!(count(&dilate(&one, 2)), 25);
        assert_eq!(count(&erode(&dilate(&one, 1), 1)), 1);
        // Largest of two components; diagonal contact does not connect.
        let mut two = Array3::from_elem((8, 8, 8), false);
        two[[0, 0, 0]] = true;
        two[[1, 1, 1]] = true;
        two[[1, 1, 2]] = true;
        let (_, sizes) = label_components(&two);
        assert_eq!(sizes, vec![1, 2]);
        let big = largest_component(&two);
        assert!(big[[1, 1, 1]] && big[[1, 1, 2]] && !big[[0, 0, 0]]);
    }
}
