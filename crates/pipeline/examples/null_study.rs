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
//!
//! Each study's group level runs twice: as the default workflow does (no covariates;
//! `summary.tsv`) and with the `global-cbf` covariate (`summary-global-cbf.tsv`), which removes
//! brain-wide shifts of CBF between runs from the voxelwise test.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cbflow_pipeline::{GroupCovariate, GroupOptions, ParticipantOptions, Template, TemplateChoice};
use cbflow_synth::SynthSpec;
use statrs::distribution::{Beta, ContinuousCDF};

const METHODS: [&str; 3] = ["voxel", "tfce", "cluster"];

/// FWE-significant voxels (voxel max-T, TFCE) and clusters per contrast of one group run.
type Counts = Vec<(String, [usize; 3])>;

/// The group-level variants: summary file and covariates.
fn variants() -> [(&'static str, Vec<GroupCovariate>); 2] {
    [
        ("summary.tsv", vec![]),
        ("summary-global-cbf.tsv", vec![GroupCovariate::GlobalCbf]),
    ]
}

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
    // per variant, per seed: (contrast, [voxel, tfce, cluster] counts); a seed finished before
    // the global-cbf variant existed has only the default one
    let mut results: [Vec<(u64, Counts)>; 2] = [Vec::new(), Vec::new()];
    for seed in first..=last {
        let dir = base.join(format!("seed-{seed}"));
        let runs = match read_summary(&dir.join("summary.tsv")) {
            Some(rows) => vec![
                Some(rows),
                read_summary(&dir.join("summary-global-cbf.tsv")),
            ],
            None => {
                let runs = run_seed(&dir, subjects, seed, permutations);
                for ((file, _), rows) in variants().iter().zip(&runs) {
                    write_summary(&dir.join(file), rows);
                }
                if std::env::var_os("NULL_STUDY_DIR").is_some() {
                    // keep the summaries, drop the images
                    for d in ["bids", "derivatives"] {
                        std::fs::remove_dir_all(dir.join(d)).ok();
                    }
                }
                runs.into_iter().map(Some).collect()
            }
        };
        for (v, rows) in runs.into_iter().enumerate() {
            let Some(rows) = rows else { continue };
            let line: Vec<String> = rows
                .iter()
                .map(|(c, n)| format!("{c} {}/{}/{}", n[0], n[1], n[2]))
                .collect();
            println!(
                "seed {seed}{}: FWE voxels (voxel/TFCE/cluster): {}",
                ["", " (global-cbf)"][v],
                line.join(", ")
            );
            results[v].push((seed, rows));
        }
    }
    for (v, title) in [
        "default workflow, no covariates",
        "with the global-cbf covariate",
    ]
    .iter()
    .enumerate()
    {
        if !results[v].is_empty() {
            report(title, &results[v]);
        }
    }
}

/// Prints, per contrast and method, the studies with any FWE finding and the interval.
fn report(title: &str, results: &[(u64, Counts)]) {
    let n = results.len() as u64;
    println!(
        "\n{title}: studies with any FWE-significant voxel, of {n} (95 % Clopper–Pearson interval of the rate):"
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
    for (_, r) in results {
        if r.iter().any(|(_, c)| c.iter().any(|&v| v > 0)) {
            any += 1;
        }
    }
    println!(
        "studies with any FWE finding in any contrast or method: {any} of {n} (each contrast × method is tested at 5 %; {} tests per study)",
        names.len() * METHODS.len()
    );
}

/// One null study: synth, participant level, the group level of each variant; FWE counts per
/// contrast.
fn run_seed(dir: &Path, subjects: usize, seed: u64, permutations: usize) -> Vec<Counts> {
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
    let phantom = Some(TemplateChoice::Phantom);
    cbflow_pipeline::participant(&ParticipantOptions::new(bids.clone(), out.clone(), phantom))
        .expect("participant level");
    let t_part = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut counts = Vec::new();
    for (_, covariates) in variants() {
        let s = cbflow_pipeline::group(&GroupOptions {
            n_permutations: permutations,
            seed,
            covariates,
            ..GroupOptions::new(bids.clone(), out.clone(), Template::phantom())
        })
        .expect("group level");
        counts.push(
            s.contrasts
                .into_iter()
                .map(|(c, v, t, k)| (c, [v, t, k]))
                .collect(),
        );
    }
    eprintln!(
        "seed {seed}: synth {t_synth:.0} s, participant {t_part:.0} s, group (both variants) {:.0} s",
        t.elapsed().as_secs_f64()
    );
    counts
}

fn write_summary(path: &Path, rows: &[(String, [usize; 3])]) {
    let mut s = String::from("contrast\tvoxel\ttfce\tcluster\n");
    for (c, n) in rows {
        s.push_str(&format!("{c}\t{}\t{}\t{}\n", n[0], n[1], n[2]));
    }
    std::fs::create_dir_all(path.parent().expect("seed directory")).expect("seed directory");
    std::fs::write(path, s).expect("summary");
}

fn read_summary(path: &Path) -> Option<Counts> {
    let text = std::fs::read_to_string(path).ok()?;
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
