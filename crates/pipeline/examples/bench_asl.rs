//! Benchmark (not a test): quantify one 3D pCASL run of 64×64×40 voxels with 30 label/control
//! pairs and a separate M0 — realignment, M0 calibration, per-pair CBF — against the time to
//! only read its files. Run with `cargo run --release -p cbflow-pipeline --example bench_asl`.

use std::time::Instant;

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 2,
        seed: 1,
        ..Default::default()
    };
    spec.protocol.pairs = 30;
    spec.protocol.asl_dims = [64, 64, 40];
    spec.protocol.asl_voxel = [3.0, 3.0, 4.0];
    cbflow_synth::generate(&spec, &root).expect("synthetic study");
    let layout = cbflow_bids::Layout::index(&root).expect("index");
    let runs = layout.asl_runs().expect("runs");
    let run = &runs[0];
    let before = vm_hwm_mb();
    let reps = 3;
    let t = Instant::now();
    for _ in 0..reps {
        let a = cbflow_image::read(&run.asl.path).expect("asl");
        let m = cbflow_image::read(&run.m0scan.as_ref().expect("m0").path).expect("m0");
        std::hint::black_box((a, m));
    }
    let read = t.elapsed().as_secs_f64() / reps as f64;
    let opts = cbflow_pipeline::AslOptions::default();
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(cbflow_pipeline::process_run(run, &opts).expect("quantify"));
    }
    let full = t.elapsed().as_secs_f64() / reps as f64;
    let no_realign = cbflow_pipeline::AslOptions {
        realign: false,
        ..opts
    };
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(cbflow_pipeline::process_run(run, &no_realign).expect("quantify"));
    }
    let quant = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "run: {} (64x64x40, 60 volumes + M0), {} threads",
        run.asl.rel_path.display(),
        rayon::current_num_threads()
    );
    println!("read ASL + M0 only:                  {read:.3} s");
    println!(
        "read + quantify (no realignment):    {quant:.3} s  ({:.2}x the read time)",
        quant / read
    );
    println!(
        "read + realign + quantify:           {full:.3} s  ({:.2}x the read time)",
        full / read
    );
    println!(
        "peak memory (VmHWM): {:.0} MB (after generating the study: {before:.0} MB)",
        vm_hwm_mb()
    );
}
