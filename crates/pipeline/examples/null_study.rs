//! Family-wise error at the pipeline level: `cbflow synth --null` studies (no ketamine effect, no
//! naltrexone effect, no brain–behaviour link) run through the participant and group levels;
//! for each contrast and each FWE method (voxel max-T, TFCE, cluster extent), the number of
//! studies with any FWE-significant voxel (p < 0.05), with its exact (Clopper–Pearson) 95 %
//! interval. A valid test rejects in at most 5 % of null studies.
//!
//! `cargo run --release -p cbflow-pipeline --example null_study -- [subjects [first_seed [last_seed [permutations]]]]`
//!
//! Defaults: 26 subjects, seeds 1–20, 1 000 permutations. Each seed is one independent study
//! (its own subjects, noise and motion). With `NULL_STUDY_DIR` set, each study's outputs are
//! kept there as `seed-<s>/`, and a rerun reuses finished seeds (`seed-<s>/summary.tsv`), so
//! the study can be run in pieces.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cbflow_pipeline::{
    GroupContrast, GroupOptions, ParticipantOptions, StudyDesign, Template, TemplateChoice,
};
use cbflow_synth::SynthSpec;
use statrs::distribution::{Beta, ContinuousCDF};

const METHODS: [&str; 3] = ["voxel", "tfce", "cluster"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: usize, default: u64| args.get(k).and_then(|a| a.parse().ok()).unwrap_or(default);
    let subjects = arg(1, 26) as usize;
    let (first, last) = (arg(2, 1), arg(3, 20));
    let permutations = arg(4, 1000) as usize;
    let tmp = tempfile::tempdir().expect("temporary directory");
    let base = std::env::var_os("NULL_STUDY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "null studies: {subjects} subjects, seeds {first}–{last}, {permutations} permutations, in {}",
        base.display()
    );
    // per seed: (contrast, [voxel, tfce, cluster] counts)
    let mut results: Vec<(u64, Vec<(String, [usize; 3])>)> = Vec::new();
    for seed in first..=last {
        let dir = base.join(format!("seed-{seed}"));
        let rows = match read_summary(&dir) {
            Some(rows) => rows,
            None => {
                let rows = run_seed(&dir, subjects, seed, permutations);
                write_summary(&dir, &rows);
                if std::env::var_os("NULL_STUDY_DIR").is_some() {
                    // keep the summary, drop the images
                    for d in ["bids", "derivatives"] {
                        std::fs::remove_dir_all(dir.join(d)).ok();
                    }
                }
                rows
            }
        };
        let line: Vec<String> = rows
            .iter()
            .map(|(c, n)| format!("{c} {}/{}/{}", n[0], n[1], n[2]))
            .collect();
        println!(
            "seed {seed}: FWE voxels (voxel/TFCE/cluster): {}",
            line.join(", ")
        );
        results.push((seed, rows));
    }
    let n = results.len() as u64;
    println!(
        "\nstudies with any FWE-significant voxel, of {n} (95 % Clopper–Pearson interval of the rate):"
    );
    println!(
        "{:<26} {:>18} {:>18} {:>18}",
        "contrast", "voxel max-T", "TFCE", "cluster"
    );
    let names: Vec<String> = results[0].1.iter().map(|(c, _)| c.clone()).collect();
    let mut any = 0u64;
    for (k, name) in names.iter().enumerate() {
        let mut cells = Vec::new();
        for m in 0..3 {
            let hits = results.iter().filter(|(_, r)| r[k].1[m] > 0).count() as u64;
            let (lo, hi) = clopper_pearson(hits, n);
            cells.push(format!("{hits:>2} [{:.2}, {:.2}]", lo, hi));
        }
        println!(
            "{name:<26} {:>18} {:>18} {:>18}",
            cells[0], cells[1], cells[2]
        );
    }
    for (_, r) in &results {
        if r.iter().any(|(_, c)| c.iter().any(|&v| v > 0)) {
            any += 1;
        }
    }
    println!(
        "studies with any FWE finding in any contrast or method: {any} of {n} (each contrast × method is tested at 5 %; {} tests per study)",
        names.len() * METHODS.len()
    );
}

/// One null study: synth, participant level, group level; FWE counts per contrast.
fn run_seed(
    dir: &Path,
    subjects: usize,
    seed: u64,
    permutations: usize,
) -> Vec<(String, [usize; 3])> {
    let (bids, out) = (dir.join("bids"), dir.join("derivatives"));
    std::fs::remove_dir_all(dir).ok();
    let t = Instant::now();
    let spec = SynthSpec {
        subjects,
        seed,
        null: true,
        ..SynthSpec::default()
    };
    cbflow_synth::generate(&spec, &bids).expect("synthetic study");
    let t_synth = t.elapsed().as_secs_f64();
    let t = Instant::now();
    cbflow_pipeline::participant(&ParticipantOptions {
        bids_dir: bids.clone(),
        output_dir: out.clone(),
        participant_labels: vec![],
        asl: cbflow_pipeline::AslOptions::default(),
        template: Some(TemplateChoice::Phantom),
        rois: cbflow_pipeline::default_rois(),
    })
    .expect("participant level");
    let t_part = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let s = cbflow_pipeline::group(&GroupOptions {
        bids_dir: bids,
        output_dir: out,
        template: Template::phantom(),
        design: StudyDesign::default(),
        n_permutations: permutations,
        seed,
        smoothing_fwhm_mm: 6.0,
        cluster_threshold: 3.1,
        contrasts: GroupContrast::defaults(),
        rois: cbflow_pipeline::GroupOptions::default_rois(),
        baseline_roi: "ACC_sub".into(),
        covariates: vec![],
    })
    .expect("group level");
    eprintln!(
        "seed {seed}: synth {t_synth:.0} s, participant {t_part:.0} s, group {:.0} s",
        t.elapsed().as_secs_f64()
    );
    s.contrasts
        .into_iter()
        .map(|(c, v, t, k)| (c, [v, t, k]))
        .collect()
}

fn write_summary(dir: &Path, rows: &[(String, [usize; 3])]) {
    let mut s = String::from("contrast\tvoxel\ttfce\tcluster\n");
    for (c, n) in rows {
        s.push_str(&format!("{c}\t{}\t{}\t{}\n", n[0], n[1], n[2]));
    }
    std::fs::create_dir_all(dir).expect("seed directory");
    std::fs::write(dir.join("summary.tsv"), s).expect("summary");
}

fn read_summary(dir: &Path) -> Option<Vec<(String, [usize; 3])>> {
    let text = std::fs::read_to_string(dir.join("summary.tsv")).ok()?;
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let n = |k: usize| f.get(k)?.parse().ok();
            Some((f.first()?.to_string(), [n(1)?, n(2)?, n(3)?]))
        })
        .collect()
}

/// Exact central 95 % interval of a binomial rate with `k` successes in `n` trials.
fn clopper_pearson(k: u64, n: u64) -> (f64, f64) {
    let (k, n) = (k as f64, n as f64);
    let lo = if k == 0.0 {
        0.0
    } else {
        Beta::new(k, n - k + 1.0).expect("beta").inverse_cdf(0.025)
    };
    let hi = if k == n {
        1.0
    } else {
        Beta::new(k + 1.0, n - k).expect("beta").inverse_cdf(0.975)
    };
    (lo, hi)
}
