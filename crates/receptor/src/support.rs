//! Where a PET map has data: its support, without the background its source wrote around it.

use std::collections::BTreeMap;

use ndarray::{Array3, ArrayView3};

/// Most frequent value among the voxels on the six faces of `a` (the image background).
fn border_mode(a: ArrayView3<f32>) -> f32 {
    let (nx, ny, nz) = a.dim();
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for ((i, j, k), &v) in a.indexed_iter() {
        if (i == 0 || j == 0 || k == 0 || i + 1 == nx || j + 1 == ny || k + 1 == nz)
            && v.is_finite()
        {
            *counts.entry(v.to_bits()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or(0.0, |(b, _)| f32::from_bits(b))
}

/// Support of a map in its own grid: finite and above `max(background, 0)`, where the
/// background is the most frequent value on the image's faces. This drops the constant non-zero
/// backgrounds of rescaled maps (JuSpace's −0.003), the zero background of tightly masked maps
/// and the negative values outside the brain of several maps (receptor densities are positive).
pub fn map_support(a: ArrayView3<f32>) -> Array3<bool> {
    let b = border_mode(a).max(0.0);
    let max = a
        .iter()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let eps = 1e-6 * (max - b).abs().max(f32::MIN_POSITIVE);
    a.mapv(|v| v.is_finite() && v > b + eps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_drops_a_constant_background_and_negative_values() {
        // a rescaled map: background −0.003 everywhere on the faces, data inside
        let mut a = Array3::from_elem((6, 6, 6), -0.003_f32);
        a[[2, 2, 2]] = 1.5;
        a[[3, 3, 3]] = 0.2;
        a[[2, 3, 3]] = -0.5; // negative inside the head: not a receptor density
        a[[3, 2, 2]] = f32::NAN;
        let s = map_support(a.view());
        assert_eq!(s.iter().filter(|&&x| x).count(), 2);
        assert!(s[[2, 2, 2]] && s[[3, 3, 3]]);
        // a zero background: everything above zero is support
        let mut z = Array3::<f32>::zeros((5, 5, 5));
        z[[2, 2, 2]] = 3.0;
        assert_eq!(map_support(z.view()).iter().filter(|&&x| x).count(), 1);
    }
}
