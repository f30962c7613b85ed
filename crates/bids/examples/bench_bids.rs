//! Benchmark of the BIDS layer on a synthetic dataset: indexing, ASL run discovery (sidecar
//! inheritance, aslcontext, M0 matching), full validation (NIfTI headers included), and atomic
//! derivative writes. Prints wall times and peak memory (VmHWM).
//!
//! `cargo run --release -p cbflow-bids --example bench_bids [n_subjects]`

use std::path::Path;
use std::time::Instant;

use cbflow_bids::{DerivativeName, DerivativesWriter, GeneratedBy, Layout, validate};
use cbflow_image::{DataType, Volume};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn};

fn put(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let n_sub: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("bids");
    let t0 = Instant::now();
    put(
        &r,
        "dataset_description.json",
        r#"{"Name": "bench", "BIDSVersion": "1.10.0"}"#,
    );
    // shared acquisition parameters at the root (inheritance), run-specific ones per file
    put(
        &r,
        "asl.json",
        r#"{"ArterialSpinLabelingType": "PCASL", "LabelingDuration": 1.8, "BackgroundSuppression": true,
        "BackgroundSuppressionNumberPulses": 2, "BackgroundSuppressionPulseTime": [1.5, 2.9],
        "TotalAcquiredPairs": 4, "MagneticFieldStrength": 3, "MRAcquisitionType": "3D",
        "EchoTime": 0.0113, "RepetitionTimePreparation": 4.5, "Manufacturer": "Siemens"}"#,
    );
    let mut participants = String::from("participant_id\tage\n");
    let small = |n: usize| {
        let shape: Vec<usize> = if n == 1 {
            vec![8, 8, 4]
        } else {
            vec![8, 8, 4, n]
        };
        Volume::new(
            ArrayD::from_elem(IxDyn(&shape), 1.0f32),
            Matrix4::identity(),
        )
        .unwrap()
    };
    let asl_vol = small(8);
    let m0_vol = small(1);
    let ctx = format!("volume_type\n{}", "control\nlabel\n".repeat(4));
    for s in 0..n_sub {
        let sub = format!("{s:03}");
        participants.push_str(&format!("sub-{sub}\t{}\n", 20 + s % 40));
        let mut sessions = String::from("session_id\tdrug\n");
        for ses in ["nal", "pla"] {
            sessions.push_str(&format!("ses-{ses}\t{ses}\n"));
            let d = format!("sub-{sub}/ses-{ses}");
            let b = format!("sub-{sub}_ses-{ses}");
            put(
                &r,
                &format!("{d}/perf/{b}_asl.json"),
                r#"{"PostLabelingDelay": 1.8, "M0Type": "Separate"}"#,
            );
            put(&r, &format!("{d}/perf/{b}_aslcontext.tsv"), &ctx);
            cbflow_image::write(
                &r.join(format!("{d}/perf/{b}_asl.nii.gz")),
                &asl_vol,
                DataType::Int16,
            )
            .unwrap();
            cbflow_image::write(
                &r.join(format!("{d}/perf/{b}_m0scan.nii.gz")),
                &m0_vol,
                DataType::Int16,
            )
            .unwrap();
            put(
                &r,
                &format!("{d}/perf/{b}_m0scan.json"),
                &format!(
                    r#"{{"IntendedFor": "ses-{ses}/perf/{b}_asl.nii.gz", "EchoTime": 0.0113, "RepetitionTimePreparation": 6}}"#
                ),
            );
            put(
                &r,
                &format!("{d}/anat/{b}_T1w.json"),
                r#"{"EchoTime": 0.003}"#,
            );
            cbflow_image::write(
                &r.join(format!("{d}/anat/{b}_T1w.nii.gz")),
                &m0_vol,
                DataType::Int16,
            )
            .unwrap();
        }
        put(&r, &format!("sub-{sub}/sub-{sub}_sessions.tsv"), &sessions);
    }
    put(&r, "participants.tsv", &participants);
    let t_make = t0.elapsed();

    let t = Instant::now();
    let layout = Layout::index(&r).unwrap();
    let t_index = t.elapsed();
    let n_files = layout.files().len();

    let t = Instant::now();
    let runs = layout.asl_runs().unwrap();
    let t_runs = t.elapsed();
    assert_eq!(runs.len(), 2 * n_sub);
    assert!(runs.iter().all(|r| r.m0scan.is_some()));

    let t = Instant::now();
    let report = validate(&r).unwrap();
    let t_validate = t.elapsed();
    assert!(!report.has_errors(), "{report}");

    let t = Instant::now();
    let w = DerivativesWriter::create(
        &r.join("derivatives/cbflow"),
        GeneratedBy {
            name: "cbflow".into(),
            version: "bench".into(),
            code_url: None,
        },
        &[],
    )
    .unwrap();
    for run in &runs {
        let rel = DerivativeName::from_entities(&run.entities)
            .datatype("perf")
            .set("desc", "qc")
            .suffix("cbf")
            .extension(".json")
            .rel_path()
            .unwrap();
        w.write_json(&rel, &serde_json::json!({"n_volumes": run.volumes.len()}))
            .unwrap();
    }
    let t_write = t.elapsed();

    println!(
        "subjects {n_sub}, sessions {}, indexed files {n_files}",
        2 * n_sub
    );
    println!("make dataset     {:>8.3} s", t_make.as_secs_f64());
    println!("Layout::index    {:>8.3} s", t_index.as_secs_f64());
    println!(
        "asl_runs         {:>8.3} s ({} runs)",
        t_runs.as_secs_f64(),
        runs.len()
    );
    println!(
        "validate         {:>8.3} s ({} warnings)",
        t_validate.as_secs_f64(),
        report.warnings().count()
    );
    println!(
        "atomic writes    {:>8.3} s ({} JSON files, fsync each)",
        t_write.as_secs_f64(),
        runs.len()
    );
    if let Some(k) = vm_hwm_kib() {
        println!("peak memory      {:>8.1} MiB (VmHWM)", k as f64 / 1024.0);
    }
}
