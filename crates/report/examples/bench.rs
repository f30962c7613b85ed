//! Renders every participant report and the group report of a derivatives directory and
//! prints the wall time, the file sizes and the peak memory.
//!
//! `cargo run --release -p cbflow-report --example bench -- OUTPUT_DIR BIDS_DIR [--group-only]`
//!
//! The MNI template's drawings need the resource directory in `$CBFLOW_RESOURCES`.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 && !(args.len() == 4 && args[3] == "--group-only") {
        eprintln!("usage: bench OUTPUT_DIR BIDS_DIR [--group-only]");
        std::process::exit(2);
    }
    let (out, bids) = (
        std::path::Path::new(&args[1]),
        std::path::Path::new(&args[2]),
    );
    let mut labels: Vec<String> = std::fs::read_dir(out)
        .expect("output dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("sub-"))
                .map(str::to_string)
        })
        .collect();
    labels.sort();
    if args.len() == 4 {
        labels.clear();
    }
    let resources = std::env::var_os("CBFLOW_RESOURCES").map(std::path::PathBuf::from);
    let design = cbflow_pipeline::StudyDesign::default();
    let inputs = cbflow_report::ReportInputs {
        output_dir: out,
        bids_dir: bids,
        design: &design,
        resources: resources.as_deref(),
    };
    let t0 = Instant::now();
    for l in &labels {
        let t = Instant::now();
        match cbflow_report::participant_report(&inputs, l) {
            Ok(p) => println!(
                "sub-{l}: {:.2} s, {} kB",
                t.elapsed().as_secs_f64(),
                std::fs::metadata(&p).map(|m| m.len() / 1024).unwrap_or(0)
            ),
            Err(e) => println!("sub-{l}: error: {e}"),
        }
    }
    let tp = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    match cbflow_report::group_report(&inputs) {
        Ok(p) => println!(
            "group: {:.2} s, {} kB",
            t.elapsed().as_secs_f64(),
            std::fs::metadata(&p).map(|m| m.len() / 1024).unwrap_or(0)
        ),
        Err(e) => println!("group: error: {e}"),
    }
    println!(
        "participant reports: {tp:.2} s for {} participants",
        labels.len()
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
        println!(
            "peak memory: {}",
            l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
        );
    }
}
