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

/// CPU seconds of this process so far, all threads (user + system, from /proc/self/stat; 10 ms
/// ticks): on a machine shared with other work, wall times of the same binary vary two- to
/// threefold and CPU times by about a tenth, so changes are judged by CPU time.
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command name in parentheses: utime and stime are the 12th and 13th
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// Runs `f` `reps` times: (wall, CPU) seconds per run.
fn timed(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_s());
    for _ in 0..reps {
        f();
    }
    (
        t.elapsed().as_secs_f64() / reps as f64,
        (cpu_s() - c) / reps as f64,
    )
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
    let (read, _) = timed(reps, || {
        let a = cbflow_image::read(&run.asl.path).expect("asl");
        let m = cbflow_image::read(&run.m0scan.as_ref().expect("m0").path).expect("m0");
        std::hint::black_box((a, m));
    });
    let opts = cbflow_pipeline::AslOptions::default();
    let (full, full_cpu) = timed(reps, || {
        std::hint::black_box(cbflow_pipeline::process_run(run, &opts).expect("quantify"));
    });
    let no_realign = cbflow_pipeline::AslOptions {
        realign: false,
        ..opts
    };
    let (quant, quant_cpu) = timed(reps, || {
        std::hint::black_box(cbflow_pipeline::process_run(run, &no_realign).expect("quantify"));
    });
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
        "realignment: {:.3} s wall, {:.3} s CPU (both threads; the difference of the two runs)",
        full - quant,
        full_cpu - quant_cpu
    );
    println!(
        "peak memory (VmHWM): {:.0} MB (after generating the study: {before:.0} MB)",
        vm_hwm_mb()
    );
}
