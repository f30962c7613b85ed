//! Benchmark of the variogram surrogate generators.
//!
//! `cargo run --release -p cbflow-receptor --example bench_receptor [-- [full|sampled] [n_surrogates]]`
//!
//! 1. Full method (`full`): 1 000 surrogates of a 400-parcel map (Schaefer-400 centroids from
//!    shared/data, Euclidean distances).
//! 2. Sampled method (`sampled`): 1 000 surrogates of a ~20 000-voxel map: the MOR map (Hansen
//!    et al.'s [11C]carfentanil BPnd) at the voxels of the Tian grey-matter mask (2 mm grid,
//!    every second voxel along each axis = 4 mm spacing), knn = 1000, ns = 500.
//!
//! Without `full` or `sampled` both run. Prints wall times, the fit error of the surrogates
//! (`fit_error`: relative RMS error of their mean smoothed variogram against the target's) and
//! the peak resident memory (VmHWM from /proc/self/status).
//!
//! For the peer script (`benchmarks/surrogates.py`, BrainSMASH):
//! * `CBFLOW_BENCH_WRITE=DIR` writes the inputs as little-endian f64: `full_coords.f64` (n × 3,
//!   mm), `full_values.f64` (n), `sampled_coords.f64`, `sampled_values.f64`;
//! * `CBFLOW_BENCH_DUMP=DIR` writes the surrogates (`full_surrogates.f64`,
//!   `sampled_surrogates.f64`, and the sampled method's first 100 without rank-matching,
//!   `sampled_raw_surrogates.f64`; rows of n values), also to compare two builds value by value;
//! * `bench_receptor fit full|sampled FILE` prints the fit error of the surrogates in FILE (rows
//!   of n little-endian f64) by the same measure, so both tools are judged alike.

use std::path::Path;
use std::time::Instant;

use cbflow_receptor::{
    DistanceMatrix, SampledParams, SampledSurrogates, VariogramParams, VariogramSurrogates,
};
use ndarray::{Array2, Ix3};

/// Seed of the sample of points on which the sampled method's fit error is measured.
const FIT_SEED: u64 = 3;

fn vm_hwm_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system, s) of this process so far, from /proc/self/stat (clock ticks of
/// 10 ms): the work done, whatever the machine's load.
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command name (which is in parentheses)
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state
    f.get(10)
        .zip(f.get(11))
        .map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
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

/// The full method's data: Schaefer-400 centroids and the smooth test map.
fn full_data() -> (Vec<[f64; 3]>, Vec<f64>) {
    let coords = cbflow_testdata::schaefer_centres(400);
    let x = smooth_map(&coords);
    (coords, x)
}

/// The sampled method's data: the MOR map at the Tian grey-matter voxels on a 4 mm lattice.
fn sampled_data() -> (Vec<[f64; 3]>, Vec<f64>) {
    let data = cbflow_testdata::data_dir();
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
    (cv, xv)
}

fn write_f64(path: &Path, values: impl IntoIterator<Item = f64>) {
    let bytes: Vec<u8> = values.into_iter().flat_map(f64::to_le_bytes).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Rows of `n` little-endian f64 values.
fn read_rows(path: &Path, n: usize) -> Array2<f64> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    assert!(
        !v.is_empty() && v.len().is_multiple_of(n),
        "{}: {} values are not rows of {n}",
        path.display(),
        v.len()
    );
    Array2::from_shape_vec((v.len() / n, n), v).expect("rows of n")
}

/// Writes the inputs (`CBFLOW_BENCH_WRITE`) and the surrogates (`CBFLOW_BENCH_DUMP`) of one
/// method, when asked.
fn write_for_peers(name: &str, coords: &[[f64; 3]], x: &[f64], surr: &Array2<f64>) {
    if let Some(dir) = std::env::var_os("CBFLOW_BENCH_WRITE") {
        let dir = Path::new(&dir);
        write_f64(
            &dir.join(format!("{name}_coords.f64")),
            coords.iter().flatten().copied(),
        );
        write_f64(&dir.join(format!("{name}_values.f64")), x.iter().copied());
    }
    if let Some(dir) = std::env::var_os("CBFLOW_BENCH_DUMP") {
        let path = Path::new(&dir).join(format!("{name}_surrogates.f64"));
        write_f64(&path, surr.iter().copied());
    }
}

fn full(n_surr: usize) {
    let (coords, x) = full_data();
    let t = Instant::now();
    let d = DistanceMatrix::from_coordinates(&coords).unwrap();
    let gen_ = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
    let setup = t.elapsed().as_secs_f64();
    let (t, c) = (Instant::now(), cpu_s());
    let surr = gen_.generate(n_surr, 1);
    let (gen_time, gen_cpu) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    let fit = gen_.fit_error(surr.view()).unwrap();
    println!(
        "full method: {} parcels, {n_surr} surrogates: setup {setup:.3} s, generation {gen_time:.2} s ({:.3} ms/surrogate; CPU {gen_cpu:.2} s); variogram rel RMSE {:.3}; VmHWM so far {:.0} MB",
        x.len(),
        gen_time * 1000.0 / n_surr as f64,
        fit.rel_rmse_mean,
        vm_hwm_mb()
    );
    write_for_peers("full", &coords, &x, &surr);
}

fn sampled(n_surr: usize) {
    let (vox, x) = sampled_data();
    let t = Instant::now();
    let gen_ = SampledSurrogates::new(&x, &vox, SampledParams::default()).unwrap();
    let setup = t.elapsed().as_secs_f64();
    println!(
        "sampled method: {} voxels, knn 1000 search + kernel weights: {setup:.2} s; VmHWM so far {:.0} MB",
        x.len(),
        vm_hwm_mb()
    );
    let (t, c) = (Instant::now(), cpu_s());
    let surr = gen_.generate(n_surr, 1);
    let (gen_time, gen_cpu) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    let hwm = vm_hwm_mb();
    let fit = gen_.fit_error(surr.view(), FIT_SEED).unwrap();
    println!(
        "sampled method: {n_surr} surrogates: generation {gen_time:.2} s ({:.2} ms/surrogate; CPU {gen_cpu:.2} s); VmHWM after generation {hwm:.0} MB; variogram rel RMSE {:.3}; VmHWM after fit check {:.0} MB",
        gen_time * 1000.0 / n_surr as f64,
        fit.rel_rmse_mean,
        vm_hwm_mb()
    );
    write_for_peers("sampled", &vox, &x, &surr);
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
    if let Some(dir) = std::env::var_os("CBFLOW_BENCH_DUMP") {
        let path = Path::new(&dir).join("sampled_raw_surrogates.f64");
        write_f64(&path, surr.iter().copied());
    }
    let fit = raw.fit_error(surr.view(), FIT_SEED).unwrap();
    println!(
        "sampled method without rank-matching ({n_raw} surrogates): variogram rel RMSE {:.3}",
        fit.rel_rmse_mean
    );
}

/// The fit error of surrogates read from `file`, by the measure of [`full`] and [`sampled`].
fn fit(method: &str, file: &Path) {
    let fit = match method {
        "full" => {
            let (coords, x) = full_data();
            let d = DistanceMatrix::from_coordinates(&coords).unwrap();
            let g = VariogramSurrogates::new(&x, &d, VariogramParams::default()).unwrap();
            g.fit_error(read_rows(file, x.len()).view()).unwrap()
        }
        "sampled" => {
            let (vox, x) = sampled_data();
            let g = SampledSurrogates::new(&x, &vox, SampledParams::default()).unwrap();
            g.fit_error(read_rows(file, x.len()).view(), FIT_SEED)
                .unwrap()
        }
        other => panic!("fit: unknown method {other:?} (full or sampled)"),
    };
    println!(
        "fit {method}: {}: variogram rel RMSE {:.4} (median of single surrogates {:.4})",
        file.display(),
        fit.rel_rmse_mean,
        fit.rel_rmse_median
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("fit") {
        let (Some(method), Some(file)) = (args.get(1), args.get(2)) else {
            panic!("usage: bench_receptor fit full|sampled FILE");
        };
        fit(method, Path::new(file));
        return;
    }
    let n_surr: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let only = |m: &str| args.iter().any(|a| a == m);
    let both = !only("full") && !only("sampled");
    println!("threads: {}", rayon::current_num_threads());
    if both || only("full") {
        full(n_surr);
    }
    if both || only("sampled") {
        sampled(n_surr);
    }
}
