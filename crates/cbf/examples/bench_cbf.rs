//! Benchmark: one 3D pCASL run, 64×64×40, 30 control/label pairs + 1 M0 volume:
//! series split, pair subtraction, M0 calibration and brain mask, per-pair CBF, SCORE,
//! QC; then a 6-PLD multi-delay fit on the same grid. Prints wall times and peak
//! resident memory (VmHWM). Run: `cargo run --release -p cbflow-cbf --example bench_cbf`.

use std::time::Instant;

use cbflow_cbf::m0::M0Input;
use cbflow_cbf::{
    BackgroundSuppression, Labeling, M0Params, MultiDelayOptions, QcParams, QuantParams,
    ScoreParams, TissueMaps, VolumeType, brain_mask_from_m0, calibrate_m0, fit_multi_delay,
    pairwise_delta_m, qc_metrics, quantify_series, score, series::select_volumes, simulate_delta_m,
    split_series,
};
use ndarray::{Array3, Array4, Axis};

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Cheap deterministic pseudo-noise (xorshift), to avoid extra dependencies here.
struct XorShift(u64);
impl XorShift {
    fn normal(&mut self) -> f32 {
        let mut u = || {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        };
        let (a, b) = (u().max(1e-12), u());
        ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
    }
}

fn main() {
    let shape = [64usize, 64, 40];
    let n_pairs = 30;
    let mut gm = Array3::<f32>::zeros(shape);
    let mut wm = Array3::<f32>::zeros(shape);
    let mut csf = Array3::<f32>::zeros(shape);
    let mut cbf = Array3::<f32>::zeros(shape);
    let mut att = Array3::<f32>::zeros(shape);
    let mut m0 = Array3::<f32>::from_elem(shape, 20.0);
    for ((i, j, k), v) in cbf.indexed_iter_mut() {
        let Some((u, rho)) = cbflow_testdata::in_ellipsoid([i, j, k], shape, 2.0) else {
            continue;
        };
        let (g, w, s) = if rho > 0.7 {
            (1.0, 0.0, 0.0)
        } else if rho > 0.2 {
            (0.0, 1.0, 0.0)
        } else {
            (0.0, 0.3, 0.7)
        };
        gm[[i, j, k]] = g;
        wm[[i, j, k]] = w;
        csf[[i, j, k]] = s;
        *v = 60.0 * g + 22.0 * w + 10.0 * s;
        att[[i, j, k]] = (0.8 + 0.6 * (u[0] + 1.0)) as f32;
        m0[[i, j, k]] = 1000.0;
    }
    let mut p = QuantParams::consensus(
        Labeling::Pcasl {
            labeling_duration_s: 1.8,
        },
        3.0,
    );
    p.efficiency.background_suppression = BackgroundSuppression::PerPulse {
        n_pulses: 4,
        efficiency_per_pulse: 0.95,
    };
    let one = simulate_delta_m(cbf.view(), att.view(), m0.view(), &[2.0], &p).unwrap();
    let n_vol = 2 * n_pairs + 1;
    let mut types = vec![VolumeType::M0Scan];
    for _ in 0..n_pairs {
        types.push(VolumeType::Control);
        types.push(VolumeType::Label);
    }
    let mut series = Array4::<f32>::zeros((shape[0], shape[1], shape[2], n_vol));
    let mut rng = XorShift(0x9E3779B97F4A7C15);
    for t in 0..n_vol {
        let mut v = series.index_axis_mut(Axis(3), t);
        for ((i, j, k), x) in v.indexed_iter_mut() {
            let base = m0[[i, j, k]];
            *x = match types[t] {
                VolumeType::M0Scan => base,
                VolumeType::Control => 0.1 * base,
                _ => 0.1 * base - one[[i, j, k, 0]],
            } + 3.0 * rng.normal();
        }
    }
    println!(
        "input: {:?} x {} volumes ({} pairs + M0), f32",
        shape, n_vol, n_pairs
    );
    println!("VmHWM after synthesis: {} KiB", vm_hwm_kib().unwrap_or(0));

    let t_all = Instant::now();
    let t = Instant::now();
    let layout = split_series(&types, 0).unwrap();
    let dm = pairwise_delta_m(series.view(), &layout.pairs).unwrap();
    let t_sub = t.elapsed();
    let t = Instant::now();
    let m0v = select_volumes(series.view(), &layout.m0).unwrap();
    let (m0c, _) = calibrate_m0(
        &M0Input::Volumes {
            volumes: m0v.view(),
            repetition_time_s: None,
        },
        shape,
        &M0Params::default(),
    )
    .unwrap();
    let (mask, mrep) = brain_mask_from_m0(m0c.view()).unwrap();
    let t_m0 = t.elapsed();
    let t = Instant::now();
    let ts = quantify_series(dm.view(), m0c.view(), mask.view(), &p, &vec![2.0; n_pairs]).unwrap();
    let t_q = t.elapsed();
    let t = Instant::now();
    let tissue = TissueMaps {
        gm: gm.view(),
        wm: wm.view(),
        csf: Some(csf.view()),
    };
    let sc = score(ts.view(), &tissue, mask.view(), &ScoreParams::default()).unwrap();
    let t_score = t.elapsed();
    let t = Instant::now();
    let plain = ts.mean_axis(Axis(3)).unwrap();
    let qc = qc_metrics(
        sc.mean.view(),
        Some(&tissue),
        mask.view(),
        None,
        cbflow_cbf::QcCounts {
            pairs_total: n_pairs,
            pairs_kept: sc.kept.len(),
            voxels_left_out: 0,
        },
        &QcParams {
            voxel_size_mm: Some([3.4, 3.4, 4.0]),
            ..QcParams::default()
        },
    )
    .unwrap();
    let t_qc = t.elapsed();
    let total = t_all.elapsed();
    println!(
        "mask voxels {} (Otsu threshold {:.1})",
        mrep.n_voxels, mrep.threshold
    );
    println!(
        "subtraction {:.1} ms | M0 + mask {:.1} ms | per-pair CBF {:.1} ms | SCORE {:.1} ms (kept {}/{}) | mean + QC {:.1} ms",
        t_sub.as_secs_f64() * 1e3,
        t_m0.as_secs_f64() * 1e3,
        t_q.as_secs_f64() * 1e3,
        t_score.as_secs_f64() * 1e3,
        sc.kept.len(),
        n_pairs,
        t_qc.as_secs_f64() * 1e3
    );
    println!("single-PLD run total: {:.1} ms", total.as_secs_f64() * 1e3);
    println!(
        "GM CBF {:.2} (truth 60), GM/WM {:.2}, QEI {:.3}, plain-mean GM {:.2}",
        qc.mean_cbf_gm.unwrap_or(f64::NAN),
        qc.gm_wm_ratio.unwrap_or(f64::NAN),
        qc.qei.unwrap_or(f64::NAN),
        plain
            .iter()
            .zip(gm.iter())
            .filter(|(_, g)| **g >= 0.7)
            .map(|(v, _)| *v as f64)
            .sum::<f64>()
            / gm.iter().filter(|g| **g >= 0.7).count() as f64
    );
    println!(
        "VmHWM after single-PLD run: {} KiB",
        vm_hwm_kib().unwrap_or(0)
    );

    let plds = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0];
    let mut md = simulate_delta_m(cbf.view(), att.view(), m0.view(), &plds, &p).unwrap();
    md.iter_mut().for_each(|v| *v += 0.3 * rng.normal());
    let t = Instant::now();
    let fit = fit_multi_delay(
        md.view(),
        &plds,
        m0.view(),
        mask.view(),
        &p,
        &MultiDelayOptions::default(),
    )
    .unwrap();
    println!(
        "multi-delay fit (6 PLDs, {} voxels, {} threads): {:.1} ms, {} at ATT bound",
        mrep.n_voxels,
        rayon::current_num_threads(),
        t.elapsed().as_secs_f64() * 1e3,
        fit.n_at_bound
    );
    println!("VmHWM at end: {} KiB", vm_hwm_kib().unwrap_or(0));
}
