//! Point sampling of template maps (trilinear, zero outside) and their box prefilter.

use cbflow_image::{Border, Trilinear};

/// Trilinear interpolation of the first `N` channels of `data` (`[x, y, z, channel]`, standard
/// layout) at the fractional voxel index `v`, sharing the weights; the grid is zero-padded
/// ([`Border::Zero`]: the value falls to 0 one voxel beyond the edge centres, and is 0 further
/// out).
pub(crate) fn trilinear_channels<const N: usize>(
    data: &ndarray::Array4<f32>,
    v: [f64; 3],
) -> [f64; N] {
    let (nx, ny, nz, nc) = data.dim();
    assert!(N <= nc, "{N} channels asked of {nc}");
    let flat = data.as_slice().expect("standard layout");
    // C order, channel fastest: axes reversed (memory order), channel c at offset c
    let lin = Trilinear::new([nz, ny, nx], [nc, nz * nc, ny * nz * nc], Border::Zero);
    lin.cell([v[2], v[1], v[0]]).map_or([0.0; N], |cell| {
        cell.values(std::array::from_fn(|c| &flat[c..]))
    })
}

/// Filters every channel of `data` (`[x, y, z, channel]`) along each axis with the 3-tap kernel
/// `[h/2, 1 − h, h/2]`, `h = half[axis]` (0 ≤ h ≤ 1): at grid points this equals averaging the
/// trilinear interpolant at `±h` voxels, i.e. the 2×2×2 box average of a larger voxel whose
/// subsamples lie `h` fine voxels either side of its centre. Edges repeat the border value.
pub(crate) fn box_prefilter(data: &mut ndarray::Array4<f32>, half: [f64; 3]) {
    for (axis, &h) in half.iter().enumerate() {
        let (w0, w1) = ((1.0 - h) as f32, (h / 2.0) as f32);
        for mut lane in data.lanes_mut(ndarray::Axis(axis)) {
            let src = lane.to_owned();
            let n = src.len();
            for i in 0..n {
                let prev = src[i.saturating_sub(1)];
                let next = src[(i + 1).min(n - 1)];
                lane[i] = w0 * src[i] + w1 * (prev + next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_reproduce_linear_functions_inside() {
        let a = ndarray::Array4::from_shape_fn((5, 6, 7, 2), |(i, j, k, c)| {
            ((2 * i + 3 * j) as f32 - k as f32) * (c + 1) as f32
        });
        let out: [f64; 2] = trilinear_channels(&a, [1.25, 2.5, 3.75]);
        assert!((out[0] - (2.5 + 7.5 - 3.75)).abs() < 1e-5 && (out[1] - 2.0 * out[0]).abs() < 1e-5);
        assert_eq!(trilinear_channels(&a, [-1.5, 0.0, 0.0]), [0.0, 0.0]);
    }

    #[test]
    fn prefilter_equals_subsample_average() {
        let a = ndarray::Array4::from_shape_fn((6, 6, 6, 1), |(i, j, k, _)| {
            ((i * 7 + j * 3 + k * k) % 5) as f32
        });
        let mut f = a.clone();
        let h = [0.3, 0.4, 0.5];
        box_prefilter(&mut f, h);
        let mut acc = 0.0;
        for s in 0..8 {
            let o = [s & 1, (s >> 1) & 1, (s >> 2) & 1].map(|b| if b == 1 { 1.0 } else { -1.0 });
            let [v]: [f64; 1] = trilinear_channels(
                &a,
                [3.0 + o[0] * h[0], 3.0 + o[1] * h[1], 3.0 + o[2] * h[2]],
            );
            acc += v / 8.0;
        }
        assert!(
            (f[[3, 3, 3, 0]] as f64 - acc).abs() < 1e-5,
            "{} vs {acc}",
            f[[3, 3, 3, 0]]
        );
    }
}
