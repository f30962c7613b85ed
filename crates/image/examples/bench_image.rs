//! Benchmark: write and read a 91×109×91×60 float32 `.nii.gz` (gzip level 6) and compare the
//! read with nibabel (`python3` with nibabel installed) on the same file; also times
//! `read_header`, one cubic B-spline resampling and a 4D smoothing.
//!
//! Run with `cargo run --release -p cbflow-image --example bench_image`.

use std::process::Command;
use std::time::Instant;

use cbflow_image::{
    DataType, Grid, Interp, Volume, read, read_header, resample_to_grid, smooth_fwhm, write,
};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let (nx, ny, nz, nt) = (91usize, 109usize, 91usize, 60usize);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    // Smooth random field: a sum of 8 plane waves with random wave vectors and phases, a slow
    // temporal drift, and values rounded to 1/64 (like scanner data, which carries a few
    // significant bits, not 24 bits of noise that no compressor can squeeze).
    let unit = Normal::new(0.0f32, 1.0).unwrap();
    let waves: Vec<[f32; 5]> = (0..8)
        .map(|_| {
            let kx = 0.15 * unit.sample(&mut rng);
            let ky = 0.15 * unit.sample(&mut rng);
            let kz = 0.15 * unit.sample(&mut rng);
            [
                kx,
                ky,
                kz,
                std::f32::consts::TAU * unit.sample(&mut rng),
                60.0 * unit.sample(&mut rng),
            ]
        })
        .collect();
    let mut v = Vec::with_capacity(nx * ny * nz * nt);
    for t in 0..nt {
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let (x, y, z) = (i as f32, j as f32, k as f32);
                    let s: f32 = waves
                        .iter()
                        .map(|w| {
                            w[4] * (w[0] * x + w[1] * y + w[2] * z + w[3] + 0.02 * t as f32).sin()
                        })
                        .sum();
                    let val = 800.0 + s + 2.0 * t as f32;
                    v.push((val * 64.0).round() / 64.0);
                }
            }
        }
    }
    let data = ArrayD::from_shape_vec(IxDyn(&[nx, ny, nz, nt]).f(), v).unwrap();
    let mut affine = Matrix4::identity() * 2.0;
    affine[(3, 3)] = 1.0;
    affine[(0, 0)] = -2.0;
    affine[(0, 3)] = 90.0;
    affine[(1, 3)] = -126.0;
    affine[(2, 3)] = -72.0;
    let mut vol = Volume::new(data, affine).unwrap();
    vol.info.pixdim[3] = 4.0;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.nii.gz");
    let t = Instant::now();
    write(&path, &vol, DataType::Float32).unwrap();
    let t_write = t.elapsed().as_secs_f64();
    let size_mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;

    let t = Instant::now();
    let h = read_header(&path).unwrap();
    let t_header = t.elapsed().as_secs_f64();
    assert_eq!(h.dims, vec![nx, ny, nz, nt]);

    let t = Instant::now();
    let back = read(&path).unwrap();
    let t_read = t.elapsed().as_secs_f64();
    assert!(
        back.data
            .iter()
            .zip(vol.data.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    // Uncompressed, to separate gzip from conversion and I/O.
    let raw = dir.path().join("bench.nii");
    let t = Instant::now();
    write(&raw, &vol, DataType::Float32).unwrap();
    let t_write_raw = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = read(&raw).unwrap();
    let t_read_raw = t.elapsed().as_secs_f64();
    drop(std::fs::remove_file(&raw));

    let py = format!(
        "import nibabel as nib, time; t=time.time(); img=nib.load({:?}); d=img.get_fdata(dtype='float32'); print(time.time()-t)",
        path.to_str().unwrap()
    );
    let nib = Command::new("python3").args(["-c", &py]).output();
    let t_nib = match &nib {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<f64>()
            .ok(),
        _ => None,
    };

    // A 3 mm target grid for resampling one frame, and 4D smoothing.
    let mut a3 = Matrix4::identity() * 3.0;
    a3[(3, 3)] = 1.0;
    a3[(0, 0)] = -3.0;
    a3[(0, 3)] = 90.0;
    a3[(1, 3)] = -126.0;
    a3[(2, 3)] = -72.0;
    let g3 = Grid::new([61, 73, 61], a3).unwrap();
    let frame0 = Volume::new(back.frame(0).to_owned().into_dyn(), back.affine).unwrap();
    let t = Instant::now();
    let _ = resample_to_grid(&frame0, &g3, Interp::CubicBSpline).unwrap();
    let t_cubic = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = resample_to_grid(&back, &g3, Interp::Linear).unwrap();
    let t_lin4d = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = smooth_fwhm(&back, 6.0).unwrap();
    let t_smooth = t.elapsed().as_secs_f64();

    println!("image: {nx}x{ny}x{nz}x{nt} float32, .nii.gz level 6, {size_mb:.1} MB on disk");
    println!(
        "rayon threads:                    {}",
        rayon::current_num_threads()
    );
    println!("cbflow-image write (gzip 6):      {t_write:.3} s");
    println!("cbflow-image read_header:         {:.6} s", t_header);
    println!("cbflow-image read (to f32):       {t_read:.3} s");
    println!("cbflow-image write/read .nii:     {t_write_raw:.3} s / {t_read_raw:.3} s");
    match t_nib {
        Some(n) => println!(
            "nibabel load + get_fdata(f32):    {n:.3} s  (nibabel / cbflow = {:.2})",
            n / t_read
        ),
        None => println!(
            "nibabel: not available ({:?})",
            nib.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        ),
    }
    println!("resample 1 frame -> 3 mm, cubic:  {t_cubic:.3} s");
    println!("resample 60 frames -> 3 mm, lin.: {t_lin4d:.3} s");
    println!("smooth 4D, FWHM 6 mm:             {t_smooth:.3} s");
    println!("peak RSS (VmHWM):                 {:.0} MB", peak_rss_mb());
}
