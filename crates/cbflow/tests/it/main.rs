//! The command line as users meet it: exit codes, error messages naming file and field, and no
//! partial outputs on bad input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use predicates::prelude::*;

mod group;
mod mni;
mod participant;
mod peers;
mod real_asl;
mod resources;
mod slurm;

/// The test-data folder (`cbflow_testdata::data_dir`): real scanner data, whole-folder copies.
pub(crate) fn shared_data() -> PathBuf {
    cbflow_testdata::data_dir()
}

/// Pearson correlation of two equally long samples.
pub(crate) fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// A small synthetic study, generated once per test binary; tests copy it before changing it.
pub(crate) fn base_study() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = DIR.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("bids");
        let mut spec = cbflow_synth::SynthSpec {
            subjects: 2,
            seed: 5,
            ..Default::default()
        };
        spec.protocol.pairs = 3;
        cbflow_synth::generate(&spec, &root).unwrap();
        (t, root)
    });
    p
}

pub(crate) fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A private copy of the base study.
pub(crate) fn study() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    copy_dir(base_study(), &root);
    (t, root)
}

pub(crate) fn cbflow() -> Command {
    let mut c = Command::cargo_bin("cbflow").unwrap();
    c.env("CBFLOW_LOG", "error");
    // hermetic: a resource cache the developer fetched into (~/.cache/cbflow) is not read
    c.env(
        "XDG_CACHE_HOME",
        std::env::temp_dir().join("cbflow-tests-no-user-cache"),
    );
    c
}

/// `cbflow ROOT OUT LEVEL` (a BIDS-Apps run), to add options to.
pub(crate) fn run_level(root: &Path, out: &Path, level: &str) -> Command {
    let mut c = cbflow();
    c.arg(root).arg(out).arg(level);
    c
}

const ASL: &str = "sub-01/ses-1/perf/sub-01_ses-1_run-1_asl.nii.gz";

/// Runs the participant level (`--template none` unless `extra` names one) and expects failure
/// with `needles` in stderr and no output dir.
pub(crate) fn participant_fails(root: &Path, out: &Path, extra: &[&str], needles: &[&str]) {
    let mut c = cbflow();
    c.arg(root).arg(out).arg("participant");
    if !extra.contains(&"--template") {
        c.args(["--template", "none"]);
    }
    c.args(extra);
    let mut assert = c.assert().failure().code(1);
    for n in needles {
        assert = assert.stderr(predicate::str::contains(*n));
    }
    assert!(!out.exists(), "{} was created on bad input", out.display());
}

#[test]
fn synth_output_validates() {
    cbflow()
        .arg("validate")
        .arg(base_study())
        .assert()
        .success()
        .stdout(predicate::str::contains("0 errors"));
}

#[test]
fn synth_refuses_a_bad_noise_scale() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("study");
    for bad in ["0", "-1", "NaN", "11"] {
        cbflow()
            .args(["synth", "--subjects", "2", &format!("--noise-scale={bad}")])
            .arg(&out)
            .assert()
            .failure()
            .stderr(predicate::str::contains("--noise-scale"));
        assert!(!out.exists(), "{} was created", out.display());
    }
}

#[test]
fn inspect_prints_header_facts() {
    cbflow()
        .arg("inspect")
        .arg(base_study().join(ASL))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("orientation:   LAS")
                .and(predicate::str::contains("int16"))
                .and(predicate::str::contains("x 6")),
        );
}

#[test]
fn truncated_nifti_is_named() {
    let (t, root) = study();
    let p = root.join(ASL);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    cbflow()
        .arg("inspect")
        .arg(&p)
        .assert()
        .failure()
        .code(1)
        .stderr(predicate::str::contains("sub-01_ses-1_run-1_asl.nii.gz"));
    participant_fails(
        &root,
        &t.path().join("out"),
        &[],
        &["sub-01_ses-1_run-1_asl.nii.gz"],
    );
}

#[test]
fn impossible_header_dims_are_named() {
    let (t, root) = study();
    let p = root.join(ASL);
    let mut raw = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    raw[40..42].copy_from_slice(&9i16.to_le_bytes()); // dim[0] = 9
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    std::fs::write(&p, enc.finish().unwrap()).unwrap();
    cbflow()
        .arg("inspect")
        .arg(&p)
        .assert()
        .failure()
        .stderr(predicate::str::contains("dim"));
    participant_fails(
        &root,
        &t.path().join("out"),
        &[],
        &["sub-01_ses-1_run-1_asl.nii.gz", "dim"],
    );
}

#[test]
fn sidecar_without_post_labeling_delay_is_named() {
    let (t, root) = study();
    let p = root.join("sub-02/ses-2/perf/sub-02_ses-2_run-1_asl.json");
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    j.as_object_mut().unwrap().remove("PostLabelingDelay");
    std::fs::write(&p, serde_json::to_vec_pretty(&j).unwrap()).unwrap();
    participant_fails(
        &root,
        &t.path().join("out"),
        &[],
        &["sub-02_ses-2_run-1_asl.json", "PostLabelingDelay"],
    );
    cbflow()
        .arg("validate")
        .arg(&root)
        .assert()
        .failure()
        .stdout(predicate::str::contains("PostLabelingDelay"));
}

#[test]
fn aslcontext_with_wrong_row_count_is_named() {
    let (t, root) = study();
    let p = root.join("sub-01/ses-2/perf/sub-01_ses-2_run-2_aslcontext.tsv");
    std::fs::write(&p, "volume_type\ncontrol\nlabel\n").unwrap();
    participant_fails(
        &root,
        &t.path().join("out"),
        &[],
        &["sub-01_ses-2_run-2_aslcontext.tsv"],
    );
}

#[test]
fn unsafe_participant_label_is_refused() {
    let (t, root) = study();
    participant_fails(
        &root,
        &t.path().join("out"),
        &["--participant-label", "../x"],
        &["../x"],
    );
}

#[test]
fn unknown_participant_label_is_refused() {
    let (t, root) = study();
    participant_fails(
        &root,
        &t.path().join("out"),
        &["--participant-label", "99"],
        &["99", "01, 02"],
    );
}

#[test]
fn output_dir_must_not_be_the_input_dataset() {
    let (_t, root) = study();
    let before = std::fs::read_dir(&root).unwrap().count();
    run_level(&root, &root, "participant")
        .args(["--template", "none"])
        .assert()
        .failure()
        .code(1)
        .stderr(predicate::str::contains("input BIDS dataset"));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), before);
}

#[test]
fn missing_template_resources_are_named() {
    let (t, root) = study();
    let out = t.path().join("out");
    let mut c = cbflow();
    c.env_remove("CBFLOW_RESOURCES")
        .arg(&root)
        .arg(&out)
        .arg("participant");
    c.assert().failure().code(1).stderr(
        predicate::str::contains("--resources").and(predicate::str::contains("CBFLOW_RESOURCES")),
    );
    assert!(!out.exists());
}

#[test]
fn usage_errors_exit_with_two() {
    cbflow().assert().failure().code(2);
    cbflow()
        .arg("a")
        .arg("b")
        .arg("sideways")
        .assert()
        .failure()
        .code(2);
}

#[test]
fn rayon_num_threads_sets_the_cores_and_nprocs_overrides_it() {
    let (t, root) = study();
    let nprocs = |extra: &[&str], out: &str| -> u64 {
        let out = t.path().join(out);
        cbflow()
            .env("RAYON_NUM_THREADS", "1")
            .arg(&root)
            .arg(&out)
            .arg("participant")
            .args(["--template", "none", "--participant-label", "01"])
            .args(extra)
            .assert()
            .success();
        let p: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("logs/provenance-participant.json")).unwrap(),
        )
        .unwrap();
        p["nprocs"].as_u64().unwrap()
    };
    assert_eq!(nprocs(&[], "a"), 1, "RAYON_NUM_THREADS=1 not honoured");
    assert_eq!(
        nprocs(&["--nprocs", "2"], "b"),
        2,
        "--nprocs does not override it"
    );
}

#[test]
fn runs_of_different_participants_into_one_output_dir_keep_every_job_record() {
    let (t, root) = study();
    let out = t.path().join("out");
    let ids = || -> Vec<String> {
        let p: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("logs/provenance-participant.json")).unwrap(),
        )
        .unwrap();
        p["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect()
    };
    for label in ["01", "02"] {
        run_level(&root, &out, "participant")
            .args(["--template", "none", "--participant-label", label])
            .assert()
            .success();
    }
    assert_eq!(
        ids(),
        ["cbf/sub-02", "report/sub-02", "cbf/sub-01", "report/sub-01"],
        "the second run lost the first's record"
    );
    // a rerun of one participant replaces its own record and keeps the other's
    run_level(&root, &out, "participant")
        .args(["--template", "none", "--participant-label", "01"])
        .assert()
        .success();
    assert_eq!(
        ids(),
        ["cbf/sub-01", "report/sub-01", "cbf/sub-02", "report/sub-02"]
    );
    assert!(!out.join("logs/provenance-participant.lock").exists());
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    // `cbflow schema | head -c 0`: head exits before cbflow writes, the write fails with EPIPE
    let bin = assert_cmd::cargo::cargo_bin("cbflow");
    for cmd in ["schema", "validate"] {
        let arg = if cmd == "validate" {
            base_study().display().to_string()
        } else {
            String::new()
        };
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "'{}' {cmd} {arg} | head -c 0; echo \"${{PIPESTATUS[0]}}\"",
                bin.display()
            ))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "0",
            "{cmd}: exit code; {stderr}"
        );
    }
}
