//! The separable smoother against a direct convolution written here, for both precisions,
//! truncations, border rules and layouts.

use ndarray::{Array3, Axis, ShapeBuilder};

use super::*;

#[test]
fn kernel_is_normalised_with_the_right_variance_and_radius() {
    for truncate in [3.0, 4.0] {
        for sigma in [0.8, 1.3, 2.5] {
            let k = gaussian_kernel(sigma, truncate);
            assert_eq!(k.len(), 2 * (truncate * sigma).ceil() as usize + 1);
            let r = (k.len() / 2) as f64;
            let sum: f64 = k.iter().sum();
            let var: f64 = k
                .iter()
                .enumerate()
                .map(|(i, w)| w * (i as f64 - r).powi(2))
                .sum();
            assert!((sum - 1.0).abs() < 1e-12);
            // truncation at 3σ loses 0.3 % of the variance, at 4σ nothing measurable
            let tol = if truncate == 3.0 { 2e-2 } else { 1e-3 };
            assert!(
                (var.sqrt() / sigma - 1.0).abs() < tol,
                "sigma {sigma}: {var}"
            );
        }
    }
    for sigma in [0.0, 0.01, -1.0, f64::NAN] {
        assert_eq!(gaussian_kernel(sigma, 4.0), vec![1.0]);
    }
}

/// Direct convolution of one axis: every output is `Σ g(x − i) v[x]` over the inside taps
/// within `ceil(truncate σ)`, `g` the Gaussian normalised over the whole kernel, divided by the
/// inside weight with renormalised edges.
fn naive_axis(
    a: &Array3<f64>,
    axis: usize,
    sigma: f64,
    truncate: f64,
    edges: Edges,
) -> Array3<f64> {
    let r = (truncate * sigma).ceil() as i64;
    let g = |d: i64| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp();
    let total: f64 = (-r..=r).map(g).sum();
    let mut out = a.clone();
    for (mut o, l) in out
        .lanes_mut(Axis(axis))
        .into_iter()
        .zip(a.lanes(Axis(axis)))
    {
        let n = l.len() as i64;
        for i in 0..n {
            let (mut num, mut den) = (0.0, 0.0);
            for x in (i - r).max(0)..=(i + r).min(n - 1) {
                num += g(x - i) / total * l[x as usize];
                den += g(x - i) / total;
            }
            o[i as usize] = match edges {
                Edges::Renormalise => num / den,
                Edges::Zero => num,
            };
        }
    }
    out
}

fn random(shape: (usize, usize, usize), seed: u64) -> Array3<f64> {
    let mut s = seed;
    Array3::from_shape_fn(shape, |_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    })
}

/// `a` smoothed by `g` through a buffer in `layout`, as `T`, back in `f64`.
fn smoothed<T: Real + Into<f64>>(
    a: &Array3<f64>,
    g: &Gaussian,
    layout: Layout,
    cast: impl Fn(f64) -> T,
) -> Array3<f64> {
    let (n0, n1, n2) = a.dim();
    let mut buf: Vec<T> = match layout {
        Layout::ColumnMajor => a.t().iter().map(|&v| cast(v)).collect(),
        Layout::RowMajor => a.iter().map(|&v| cast(v)).collect(),
    };
    g.smooth(&mut buf, [n0, n1, n2], layout);
    let buf: Vec<f64> = buf.into_iter().map(Into::into).collect();
    match layout {
        Layout::ColumnMajor => Array3::from_shape_vec((n0, n1, n2).f(), buf),
        Layout::RowMajor => Array3::from_shape_vec((n0, n1, n2), buf),
    }
    .expect("shape")
}

#[test]
fn separable_smoothing_equals_the_direct_convolution() {
    let a = random((17, 13, 11), 3);
    let sigma = [1.3, 0.7, 2.2];
    for (truncate, edges) in [
        (TRUNCATE_SIGMAS, Edges::Renormalise),
        (3.0, Edges::Renormalise),
        (TRUNCATE_SIGMAS, Edges::Zero),
        (3.0, Edges::Zero),
    ] {
        let g = Gaussian {
            sigma,
            truncate,
            edges,
        };
        for layout in [Layout::ColumnMajor, Layout::RowMajor] {
            // the naive reference in the smoother's order (memory order, fastest axis first)
            let order = match layout {
                Layout::ColumnMajor => [0, 1, 2],
                Layout::RowMajor => [2, 1, 0],
            };
            let mut want = a.clone();
            for ax in order {
                want = naive_axis(&want, ax, sigma[ax], truncate, edges);
            }
            let f64_got = smoothed(&a, &g, layout, |v| v);
            let f32_got = smoothed(&a, &g, layout, |v| v as f32);
            let worst = |got: &Array3<f64>| {
                got.iter()
                    .zip(&want)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max)
            };
            assert!(
                worst(&f64_got) < 1e-14,
                "{edges:?} {truncate} {layout:?} f64"
            );
            assert!(
                worst(&f32_got) < 2e-6,
                "{edges:?} {truncate} {layout:?} f32"
            );
        }
    }
}

#[test]
fn constants_stay_and_an_impulse_keeps_its_mass_and_variance() {
    let g = Gaussian {
        sigma: [1.5, 1.0, 0.7],
        truncate: 3.0,
        edges: Edges::Renormalise,
    };
    let mut c = vec![3.0f32; 9 * 9 * 9];
    g.smooth(&mut c, [9, 9, 9], Layout::RowMajor);
    assert!(c.iter().all(|v| (v - 3.0).abs() < 1e-5));
    let g = Gaussian {
        sigma: [1.5; 3],
        ..g
    };
    let mut b = Array3::<f32>::zeros((21, 21, 21));
    b[[10, 10, 10]] = 1.0;
    g.smooth(
        b.as_slice_mut().expect("standard"),
        [21; 3],
        Layout::RowMajor,
    );
    let s: f32 = b.iter().sum();
    assert!((s - 1.0).abs() < 1e-4);
    let var: f64 = b
        .indexed_iter()
        .map(|((i, _, _), v)| (i as f64 - 10.0).powi(2) * f64::from(*v))
        .sum();
    assert!((var - 2.25).abs() < 0.05, "{var}");
}

#[test]
fn small_sigmas_and_single_voxel_axes() {
    let a = random((6, 1, 5), 9);
    let buf = || a.iter().copied().collect::<Vec<f64>>();
    // σ ≤ 0.01 on every axis: untouched
    let mut b = buf();
    let g = Gaussian {
        sigma: [0.01, 2.0, 0.0],
        truncate: 4.0,
        edges: Edges::Renormalise,
    };
    g.smooth(&mut b, [6, 1, 5], Layout::RowMajor);
    assert_eq!(b, buf());
    // with zero edges an axis of length 1 is scaled by the kernel's centre weight
    let mut z = buf();
    let g = Gaussian {
        edges: Edges::Zero,
        ..g
    };
    g.smooth(&mut z, [6, 1, 5], Layout::RowMajor);
    let centre = gaussian_kernel(2.0, 4.0)[8];
    for (x, y) in z.iter().zip(buf()) {
        assert_eq!(*x, centre * y);
    }
}
