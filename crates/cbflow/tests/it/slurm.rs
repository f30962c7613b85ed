//! The SLURM executor against a real cluster (`.ci/slurm-cluster.sh start` sets up a single-node
//! slurmctld + slurmd; `.ci/run` starts it and runs these tests with `--ignored`): the same study
//! through SLURM gives the same bytes as the local run, and a participant that fails surfaces with
//! its log while the group job is never run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::cbflow;

fn small_study(dir: &Path) -> PathBuf {
    let root = dir.join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 3,
        seed: 21,
        ..Default::default()
    };
    spec.protocol.pairs = 3;
    cbflow_synth::generate(&spec, &root).unwrap();
    root
}

/// Every file under `root` except `logs/`, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            // logs (timings) and the work directory (the cache) are not outputs
            if rel.starts_with("logs") || rel.starts_with(".cbflow-work") {
                continue;
            }
            // the HTML reports name the output directory they describe
            if rel.extension().is_some_and(|e| e == "html") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

const OPTS: [&str; 4] = ["--template", "phantom", "--permutations", "64"];

#[test]
#[ignore = "needs a running SLURM cluster: .ci/slurm-cluster.sh start (run by .ci/run)"]
fn slurm_run_equals_local_run() {
    let t = tempfile::tempdir().unwrap();
    let root = small_study(t.path());
    let local = t.path().join("local");
    for level in ["participant", "group"] {
        cbflow()
            .arg(&root)
            .arg(&local)
            .arg(level)
            .args(OPTS)
            .assert()
            .success();
    }
    let cluster = t.path().join("cluster");
    cbflow()
        .arg(&root)
        .arg(&cluster)
        .arg("participant")
        .args(OPTS)
        .args([
            "--executor",
            "slurm",
            "--nprocs",
            "1",
            "--wait",
            "--wait-timeout",
            "30",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("submitted participant array job"))
        .stdout(predicate::str::contains("all SLURM jobs completed"));
    let (a, b) = (tree(&local), tree(&cluster));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the local and the SLURM run wrote different files"
    );
    let differing: Vec<_> = a
        .iter()
        .filter(|(k, v)| b[*k] != **v)
        .map(|(k, _)| k.display().to_string())
        .collect();
    assert!(differing.is_empty(), "bytes differ: {differing:?}");
    assert!(
        a.keys()
            .any(|k| k.to_string_lossy().contains("stat-t_statmap"))
    );
    // the submission directory holds the scripts and one log per task
    let logs: Vec<PathBuf> = std::fs::read_dir(cluster.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("slurm-")
        })
        .collect();
    assert_eq!(logs.len(), 1);
    for f in [
        "participant.sbatch",
        "group.sbatch",
        "tasks.tsv",
        "participant-2.log",
        "group.log",
    ] {
        assert!(
            logs[0].join(f).exists(),
            "{f} missing in {}",
            logs[0].display()
        );
    }
}

#[test]
#[ignore = "needs a running SLURM cluster: .ci/slurm-cluster.sh start (run by .ci/run)"]
fn failed_participant_surfaces_and_group_never_runs() {
    let t = tempfile::tempdir().unwrap();
    let root = small_study(t.path());
    // an M0 full of NaN passes validation (headers are fine) and fails inside the task
    let m0 = root.join("sub-02/ses-1/perf/sub-02_ses-1_run-1_m0scan.nii.gz");
    let mut v = cbflow_image::read(&m0).unwrap();
    v.data.fill(f32::NAN);
    cbflow_image::write(&m0, &v, cbflow_image::DataType::Float32).unwrap();
    let out = t.path().join("out");
    cbflow()
        .arg(&root)
        .arg(&out)
        .arg("participant")
        .args(OPTS)
        .args([
            "--executor",
            "slurm",
            "--nprocs",
            "1",
            "--wait",
            "--wait-timeout",
            "30",
        ])
        .assert()
        .failure()
        .code(1)
        .stderr(predicate::str::contains("sub-02 (job"))
        .stderr(predicate::str::contains("FAILED"))
        .stderr(predicate::str::contains("NaN or infinite"))
        .stderr(predicate::str::contains("DependencyNeverSatisfied"));
    // the other participants finished; no group output exists
    assert!(out.join("sub-01").is_dir() && out.join("sub-03").is_dir());
    assert!(!out.join("sub-02").exists());
    assert!(
        !std::fs::read_dir(&out).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("statmap"))
    );
}
