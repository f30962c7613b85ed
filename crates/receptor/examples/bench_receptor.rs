//! Benchmark of the variogram surrogate generators.
//!
//! `cargo run --release -p cbflow-receptor --example bench_receptor [-- n_surrogates]`
//!
//! 1. Full method: 1 000 surrogates of a 400-parcel map (Schaefer-400 centroids from
//!    shared/data, Euclidean distances).
//! 2. Sampled method: 1 000 surrogates of a ~20 000-voxel map: the MOR map (Hansen et al.'s
//!    [11C]carfentanil BPnd) at the voxels of the Tian grey-matter mask (2 mm grid, every second
//!    voxel along each axis = 4 mm spacing), knn = 1000, ns = 500.
//!
//! Prints wall times and the peak resident memory (VmHWM from /proc/self/status).

use std::time::Instant;

use cbflow_receptor::{
    DistanceMatrix, SampledParams, SampledSurrogates, VariogramParams, VariogramSurrogates,
};
use ndarray::Ix3;

fn vm_hwm_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Smooth test map for the parcels: sum of Gaussian bumps (deterministic) plus a gradient.
fn smooth_map(coords: &[[f64; 3]]) -> Vec<f64> {
    let bumps = [
        ([-40.0, -60.0, 10.0], 1.0),
        ([30.0, 20.0, 40.0], -0.7),
        ([0.0, 40.0, -10.0], 0.8),
        ([50.0, -20.0, 0.0], 0.5),
    ];
    coords
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let b: f64 = bumps
                .iter()
                .map(|(p, a)| {
                    a * (-((c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2) + (c[2] - p[2]).powi(2))
                        / (2.0 * 25.0f64.powi(2)))
                    .exp()
                })
                .sum();
            b + 0.005 * c[1] + 0.05 * ((i * 7919 % 1000) as f64 / 1000.0 - 0.5)
        })
        .collect()
}

fn main() {
    let n_surr: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let data = cbflow_testdata::data_dir();
    println!("threads: {}", rayon::current_num_threads());

    // 1. full method, 400 parcels
    let coords = cbflow_testdata::schaefer_centres(400);
    let x = smooth_map(&coords);
    let t = Instant::now();
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let gen_ = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
    let setup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let surr = gen_.generate(n_surr, 1);
    let gen_time = t.elapsed().as_secs_f64();
    let fit = gen_.fit_error(surr.view()).unwrap();
    println!(
        "full method: {} parcels, {n_surr} surrogates: setup {setup:.3} s, generation {gen_time:.2} s ({:.2} ms/surrogate); variogram rel RMSE {:.3}; VmHWM so far {:.0} MB",
        x.len(),
        gen_time * 1000.0 / n_surr as f64,
        fit.rel_rmse_mean,
        vm_hwm_mb()
    );
    drop((surr, gen_, d));

    // 2. sampled method, ~20 000 voxels
    let gm =
        cbflow_image::read(&data.join("atlases/schaefer2018_tian2020/Tian_GMmask.nii.gz")).unwrap();
    let aff = gm.affine;
    let m = gm.data.into_dimensionality::<Ix3>().unwrap();
    let mut vox = Vec::new();
    for ((i, j, k), &v) in m.indexed_iter() {
        if v > 0.5 && i % 2 == 0 && j % 2 == 0 && k % 2 == 0 {
            let p = [i as f64, j as f64, k as f64];
            let w = [0, 1, 2].map(|r| {
                aff[(r, 0)] * p[0] + aff[(r, 1)] * p[1] + aff[(r, 2)] * p[2] + aff[(r, 3)]
            });
            vox.push(w);
        }
    }
    // values: the MOR map ([11C]carfentanil, Hansen et al.) resampled to the 2 mm grid
    let mor =
        cbflow_image::read(&data.join("pet/hansen_receptors/MU_carfentanil_hc39_turtonen.nii.gz"))
            .unwrap();
    let grid = cbflow_image::Grid::new([m.shape()[0], m.shape()[1], m.shape()[2]], aff).unwrap();
    let mor = cbflow_image::resample_to_grid(&mor, &grid, cbflow_image::Interp::Linear).unwrap();
    let mor = mor.data.into_dimensionality::<Ix3>().unwrap();
    let inv = aff.try_inverse().unwrap();
    let (mut xv, mut cv) = (Vec::new(), Vec::new());
    for w in &vox {
        let ijk = [0, 1, 2].map(|r| {
            (inv[(r, 0)] * w[0] + inv[(r, 1)] * w[1] + inv[(r, 2)] * w[2] + inv[(r, 3)]).round()
                as usize
        });
        let v = mor[(ijk[0], ijk[1], ijk[2])];
        if v.is_finite() && v != 0.0 {
            xv.push(f64::from(v));
            cv.push(*w);
        }
    }
    let (x, vox) = (xv, cv);
    let t = Instant::now();
    let gen_ = SampledSurrogates::new(&x, &vox, SampledParams::default()).unwrap();
    let setup = t.elapsed().as_secs_f64();
    println!(
        "sampled method: {} voxels, knn 1000 search + kernel weights: {setup:.2} s; VmHWM so far {:.0} MB",
        x.len(),
        vm_hwm_mb()
    );
    let t = Instant::now();
    let surr = gen_.generate(n_surr, 1);
    let gen_time = t.elapsed().as_secs_f64();
    let hwm = vm_hwm_mb();
    let fit = gen_.fit_error(surr.view(), 3).unwrap();
    println!(
        "sampled method: {n_surr} surrogates: generation {gen_time:.2} s ({:.1} ms/surrogate); VmHWM after generation {hwm:.0} MB; variogram rel RMSE {:.3}; VmHWM after fit check {:.0} MB",
        gen_time * 1000.0 / n_surr as f64,
        fit.rel_rmse_mean,
        vm_hwm_mb()
    );
    // the same surrogates before rank-matching (de-meaned raw surrogates): variogram fit only
    drop(gen_);
    let raw = SampledSurrogates::new(
        &x,
        &vox,
        SampledParams {
            resample: false,
            ..SampledParams::default()
        },
    )
    .unwrap();
    let n_raw = n_surr.min(100);
    let surr = raw.generate(n_raw, 1);
    let fit = raw.fit_error(surr.view(), 3).unwrap();
    println!(
        "sampled method without rank-matching ({n_raw} surrogates): variogram rel RMSE {:.3}",
        fit.rel_rmse_mean
    );
}
