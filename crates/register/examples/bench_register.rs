//! Benchmark: a 1 mm T1w (ICBM 2009a, deformed by a known affine and smooth warp) registered to
//! the 2 mm FSL MNI152 template, affine then diffeomorphic. Prints wall times and peak memory.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo run --release -p cbflow-register --example bench_register`

use std::time::Instant;

use cbflow_image::{Interp, read, resample_mapped};
use cbflow_register::{
    AffineTransform, LinearMetric, LinearOptions, SynOptions, TransformChain, apply, ncc,
    register_affine, register_syn,
};

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "n/a".into())
}

/// User + system CPU seconds of this process (from /proc/self/stat; clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let f: Vec<&str> = rest.split(' ').collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

fn main() {
    let data = cbflow_testdata::data_dir();
    let template = read(&data.join("templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz"))
        .expect("template");
    let icbm = read(&data.join(
        "templates/nilearn_icbm152_2009a_1mm/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    ))
    .expect("icbm");
    let g = icbm.grid();
    let centre = g.voxel_to_world([
        (g.dims[0] - 1) as f64 / 2.0,
        (g.dims[1] - 1) as f64 / 2.0,
        (g.dims[2] - 1) as f64 / 2.0,
    ]);
    // known deformation of the 1 mm image: a rigid+scaling affine and a smooth sinusoidal warp
    let aff = AffineTransform::from_affine_params(
        [
            1.04, 0.02, 0.0, -0.01, 0.97, 0.03, 0.0, -0.02, 1.02, 4.0, -6.0, 3.0,
        ],
        centre,
    )
    .then(&AffineTransform::from_rigid(
        [0.0, 0.0, 0.0, 0.06, -0.04, 0.08],
        centre,
    ));
    let warp = |x: [f64; 3]| {
        let t = 2.0 * std::f64::consts::PI / 90.0;
        [
            x[0] + 3.0 * (t * x[1] + 0.3).sin(),
            x[1] + 3.0 * (t * x[2] + 1.1).sin(),
            x[2] + 3.0 * (t * x[0] + 2.0).sin(),
        ]
    };
    let t = Instant::now();
    let subject =
        resample_mapped(&icbm, &g, Interp::Linear, &|y| aff.map_point(warp(y))).expect("resample");
    eprintln!(
        "subject: {:?} voxels (1 mm), simulated in {:.2?}",
        g.dims,
        t.elapsed()
    );
    let t0 = Instant::now();
    let cpu0 = cpu_seconds();
    let lin = LinearOptions {
        metric: LinearMetric::MattesMi { bins: 32 },
        ..Default::default()
    };
    let a = register_affine(&template, &subject, &lin).expect("affine");
    let t_aff = t0.elapsed();
    let t1 = Instant::now();
    let syn = register_syn(&template, &subject, &a.transform, &SynOptions::default()).expect("syn");
    let t_syn = t1.elapsed();
    let total = t0.elapsed();
    let cpu = cpu_seconds() - cpu0;
    // similarity to the template after each stage
    let tg = template.grid();
    let after_aff = apply(
        &subject,
        &tg,
        &TransformChain::from_affine(a.transform.clone()),
        Interp::Linear,
    )
    .expect("apply");
    let after_syn = apply(&subject, &tg, &syn.forward_chain(), Interp::Linear).expect("apply");
    let c_aff = ncc(template.frame(0), after_aff.frame(0), None).expect("ncc");
    let c_syn = ncc(template.frame(0), after_syn.frame(0), None).expect("ncc");
    let l_aff =
        cbflow_register::lncc(template.frame(0), after_aff.frame(0), None, 2).expect("lncc");
    let l_syn =
        cbflow_register::lncc(template.frame(0), after_syn.frame(0), None, 2).expect("lncc");
    println!("threads: {}", rayon::current_num_threads());
    println!(
        "affine (rigid+affine, MI): {:.2} s, iterations {:?}",
        t_aff.as_secs_f64(),
        a.iterations
    );
    println!(
        "nonlinear (log-demons LNCC, shrink 4,2,1): {:.2} s, iterations {:?}",
        t_syn.as_secs_f64(),
        syn.iterations
    );
    println!(
        "total registration wall time: {:.2} s (CPU time {cpu:.1} s)",
        total.as_secs_f64()
    );
    println!(
        "NCC to template: affine {c_aff:.4}, nonlinear {c_syn:.4}; LNCC(r=2): affine {l_aff:.4}, nonlinear {l_syn:.4}"
    );
    println!("peak memory (VmHWM): {}", vm_hwm());
}
