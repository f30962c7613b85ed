//! Synthetic head phantom with known CBF, ATT, M0 and tissue maps.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

pub struct Phantom {
    pub gm: Array3<f32>,
    pub wm: Array3<f32>,
    pub csf: Array3<f32>,
    pub mask: Array3<bool>,
    pub cbf: Array3<f32>,
    pub att: Array3<f32>,
    pub m0: Array3<f32>,
}

impl Phantom {
    /// ΔM of the phantom's CBF and ATT at `delays` (one volume each) under `p`.
    pub fn delta_m(&self, delays: &[f64], p: &cbflow_cbf::QuantParams) -> Array4<f32> {
        cbflow_cbf::simulate_delta_m(self.cbf.view(), self.att.view(), self.m0.view(), delays, p)
            .unwrap()
    }

    /// Single-delay CBF of the first volume of `dm` at `delay` under `p`, with the phantom's
    /// M0 and mask.
    pub fn quantify_first(
        &self,
        dm: &Array4<f32>,
        p: &cbflow_cbf::QuantParams,
        delay: f64,
    ) -> Array3<f32> {
        cbflow_cbf::quantify_single(
            dm.index_axis(Axis(3), 0),
            self.m0.view(),
            self.mask.view(),
            p,
            delay,
        )
        .unwrap()
    }

    /// The multi-delay fit (default options) of `dm` at `delays` under `p`, with the phantom's
    /// M0 and mask.
    pub fn fit(
        &self,
        dm: ArrayView4<f32>,
        delays: &[f64],
        p: &cbflow_cbf::QuantParams,
    ) -> cbflow_cbf::MultiDelayFit {
        cbflow_cbf::fit_multi_delay(
            dm,
            delays,
            self.m0.view(),
            self.mask.view(),
            p,
            &cbflow_cbf::MultiDelayOptions::default(),
        )
        .unwrap()
    }

    /// [`max_rel_err`] of a CBF map against the phantom's over its mask.
    pub fn cbf_err(&self, est: ArrayView3<f32>) -> f64 {
        max_rel_err(est, self.cbf.view(), self.mask.view())
    }

    /// [`max_rel_err`] of an ATT map against the phantom's over its mask.
    pub fn att_err(&self, est: ArrayView3<f32>) -> f64 {
        max_rel_err(est, self.att.view(), self.mask.view())
    }
}

/// Ellipsoidal head: CSF core, WM, GM shell. CBF = 60 GM + 22 WM + 10 CSF with a ±10 %
/// smooth modulation; ATT from 0.8 s to 2.0 s across the head (x direction mostly);
/// M0 = 1000 GM-ish with ±10 % variation.
pub fn phantom(shape: [usize; 3]) -> Phantom {
    let mut p = Phantom {
        gm: Array3::zeros(shape),
        wm: Array3::zeros(shape),
        csf: Array3::zeros(shape),
        mask: Array3::from_elem(shape, false),
        cbf: Array3::zeros(shape),
        att: Array3::zeros(shape),
        m0: Array3::zeros(shape),
    };
    for i in 0..shape[0] {
        for j in 0..shape[1] {
            for k in 0..shape[2] {
                let Some((u, rho)) = cbflow_testdata::in_ellipsoid([i, j, k], shape, 0.6) else {
                    continue;
                };
                let (g, w, s) = if rho > 0.7 {
                    (1.0, 0.0, 0.0)
                } else if rho > 0.55 {
                    let t = (rho - 0.55) / 0.15;
                    (t, 1.0 - t, 0.0)
                } else if rho > 0.2 {
                    (0.0, 1.0, 0.0)
                } else {
                    (0.0, 0.3, 0.7)
                };
                let idx = [i, j, k];
                p.gm[idx] = g as f32;
                p.wm[idx] = w as f32;
                p.csf[idx] = s as f32;
                p.mask[idx] = true;
                let modu = 1.0 + 0.1 * (3.0 * u[0]).sin() * (2.0 * u[1]).cos();
                p.cbf[idx] = ((60.0 * g + 22.0 * w + 10.0 * s) * modu) as f32;
                p.att[idx] = (0.8 + 1.2 * (0.5 + 0.45 * u[0] + 0.05 * u[2]).clamp(0.0, 1.0)) as f32;
                p.m0[idx] =
                    (1000.0 * (1.0 + 0.1 * (2.0 * u[2]).sin()) * (0.8 + 0.2 * g + 0.4 * s)) as f32;
            }
        }
    }
    p
}

/// Maximum relative error |est − truth| / truth over the mask.
pub fn max_rel_err(est: ArrayView3<f32>, truth: ArrayView3<f32>, mask: ArrayView3<bool>) -> f64 {
    let mut worst: f64 = 0.0;
    for ((idx, &m), (&e, &t)) in mask.indexed_iter().zip(est.iter().zip(truth.iter())) {
        let _ = idx;
        if m {
            worst = worst.max(((e - t) as f64).abs() / (t as f64).abs());
        }
    }
    worst
}

/// Mean over voxels with GM probability ≥ 0.7 inside the mask.
pub fn gm_mean(img: ArrayView3<f32>, p: &Phantom) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for ((idx, &v), &g) in img.indexed_iter().zip(p.gm.iter()) {
        if g >= 0.7 && p.mask[idx] {
            s += v as f64;
            n += 1;
        }
    }
    s / n as f64
}

/// Build a raw control/label (and m0/other) series from per-pair ΔM following the
/// volume order of `layout`; static tissue = `static_frac` × M0 in every control.
pub fn assemble_series(
    n_volumes: usize,
    layout: &cbflow_cbf::SeriesLayout,
    pair_delta_m: &Array4<f32>,
    static_img: &Array3<f32>,
) -> Array4<f32> {
    let (nx, ny, nz) = static_img.dim();
    let mut s = Array4::<f32>::zeros((nx, ny, nz, n_volumes));
    for (k, pr) in layout.pairs.iter().enumerate() {
        s.index_axis_mut(Axis(3), pr.control).assign(static_img);
        let lab = static_img - &pair_delta_m.index_axis(Axis(3), k);
        s.index_axis_mut(Axis(3), pr.label).assign(&lab);
    }
    s
}

/// Add i.i.d. Gaussian noise (seeded).
pub fn add_noise(a: &mut Array4<f32>, sd: f64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = Normal::new(0.0, sd).unwrap();
    a.iter_mut().for_each(|v| *v += n.sample(&mut rng) as f32);
}

/// The test-data folder (`cbflow_testdata::data_dir`), for the BIDS examples.
pub fn shared_data() -> std::path::PathBuf {
    cbflow_testdata::data_dir()
}

/// Voxels whose true ATT is identifiable from the delays: the signal at some delay
/// changes by more than 1 % when ATT is shortened by 50 ms (for pCASL: some PLD at least
/// a little before arrival; for PASL: some TI before the end of the bolus). Elsewhere ATT
/// is flat (or nearly so) in the likelihood and only CBF is determined.
pub fn att_identifiable(p: &cbflow_cbf::QuantParams, delays: &[f64], ph: &Phantom) -> Array3<bool> {
    let mut out = ph.mask.clone();
    for ((i, j, k), o) in out.indexed_iter_mut() {
        if !*o {
            continue;
        }
        let a = ph.att[[i, j, k]] as f64;
        let off = p.slice_offset([i, j, k]);
        *o = delays.iter().any(|&d| {
            let g0 = cbflow_cbf::kinetic_factor(p, d + off, a);
            let g1 = cbflow_cbf::kinetic_factor(p, d + off, a - 0.05);
            (g1 - g0).abs() > 0.01 * g0.abs().max(g1.abs())
        });
    }
    out
}

/// The voxel with the largest relative error: (index, estimate, truth).
pub fn worst_voxel(
    est: ArrayView3<f32>,
    truth: ArrayView3<f32>,
    mask: ArrayView3<bool>,
) -> ([usize; 3], f32, f32) {
    let mut best = ([0; 3], 0.0f32, 0.0f32, -1.0f64);
    for ((i, j, k), &m) in mask.indexed_iter() {
        if m {
            let (e, t) = (est[[i, j, k]], truth[[i, j, k]]);
            let r = ((e - t) as f64).abs() / (t as f64).abs();
            if r > best.3 {
                best = ([i, j, k], e, t, r);
            }
        }
    }
    (best.0, best.1, best.2)
}
