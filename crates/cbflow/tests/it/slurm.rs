//! The SLURM executor against a real cluster (`.ci/slurm-cluster.sh start` sets up a single-node
//! slurmctld + slurmd; `.ci/run` starts it and runs these tests with `--ignored`): the same study
//! through SLURM gives the same bytes as the local run, and a participant that fails surfaces with
//! its log while the group job is never run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::{cbflow, run_level};

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

/// Every file under `root` except `logs/` and the work directory, with its bytes (the HTML
/// reports included: they are jobs like the rest and name no directory).
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

/// The SLURM executor, one process a task, waiting (at most 30 s) for the jobs to finish.
const SLURM_WAIT: [&str; 7] = [
    "--executor",
    "slurm",
    "--nprocs",
    "1",
    "--wait",
    "--wait-timeout",
    "30",
];

/// The small study in `dir` and its outputs of both levels run here (`dir/local`).
fn local_run(dir: &Path) -> (PathBuf, PathBuf) {
    let root = small_study(dir);
    let local = dir.join("local");
    for level in ["participant", "group"] {
        run_level(&root, &local, level)
            .args(OPTS)
            .assert()
            .success();
    }
    (root, local)
}

/// The two output directories hold the same files with the same bytes (logs and the work
/// directory aside), group statistical maps among them.
fn same_outputs(local: &Path, cluster: &Path) {
    let (a, b) = (tree(local), tree(cluster));
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
}

/// The scripts a submission writes, run by hand as SLURM would run them (each array task with
/// its `SLURM_ARRAY_TASK_ID`, then the group job): they run the plans resolved at submission
/// and write what the local run writes. Needs no cluster.
#[cfg(unix)]
#[test]
#[ignore = "two runs of both levels (about a minute): run by .ci/run with the cluster tests"]
fn the_submitted_scripts_run_the_resolved_plans_and_equal_the_local_run() {
    let t = tempfile::tempdir().unwrap();
    let (root, local) = local_run(t.path());
    let cluster = t.path().join("cluster");
    run_level(&root, &cluster, "participant")
        .env("PATH", fake_sbatch(t.path()))
        .args(OPTS)
        .args(["--executor", "slurm", "--nprocs", "1"])
        .assert()
        .success();
    let dir = &submission_dirs(&cluster)[0];
    let bash = |script: &str, task: Option<usize>| {
        let mut c = std::process::Command::new("bash");
        c.arg(dir.join(script));
        if let Some(i) = task {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string());
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{script} {task:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    for i in 0..3 {
        bash("participant.sbatch", Some(i));
    }
    bash("group.sbatch", None);
    same_outputs(&local, &cluster);
}

#[test]
#[ignore = "needs a running SLURM cluster: .ci/slurm-cluster.sh start (run by .ci/run)"]
fn slurm_run_equals_local_run() {
    let t = tempfile::tempdir().unwrap();
    let (root, local) = local_run(t.path());
    let cluster = t.path().join("cluster");
    run_level(&root, &cluster, "participant")
        .args(OPTS)
        .args(SLURM_WAIT)
        .assert()
        .success()
        .stdout(predicate::str::contains("submitted participant array job"))
        .stdout(predicate::str::contains("all SLURM jobs completed"));
    same_outputs(&local, &cluster);
    // the submission directory holds the scripts and one log per task
    let logs = submission_dirs(&cluster);
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
    run_level(&root, &out, "participant")
        .args(OPTS)
        .args(SLURM_WAIT)
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

/// A directory with an `sbatch` that prints a job id and submits nothing.
#[cfg(unix)]
fn fake_sbatch(dir: &Path) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sbatch = bin.join("sbatch");
    std::fs::write(&sbatch, "#!/bin/sh\necho 4242\n").unwrap();
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut path = bin.into_os_string();
    if let Some(p) = std::env::var_os("PATH") {
        path.push(":");
        path.push(p);
    }
    path
}

/// The submission as the binary makes it, without a cluster: the resources come from the
/// plans (the workflow's 2 cpus / 4 GB / 120 min per participant, the group step's 8 GB /
/// 8 h), the command line wins over them, and the tasks run the plans resolved at submission
/// (with the command line's overrides in them).
#[cfg(unix)]
#[test]
fn slurm_scripts_take_their_resources_from_the_plans_and_the_command_line() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let path = fake_sbatch(t.path());
    cbflow()
        .env("PATH", &path)
        .arg(crate::base_study())
        .arg(&out)
        .arg("participant")
        .args([
            "--template",
            "phantom",
            "--seed",
            "9",
            "--executor",
            "slurm",
        ])
        .args(["--nprocs", "3", "--mem-gb", "7.5", "--slurm-time", "45"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "submitted participant array job 4242: 2 tasks (sub-01, sub-02)",
        ))
        .stdout(predicate::str::contains("submitted group job 4242"));
    let dirs = submission_dirs(&out);
    assert_eq!(dirs.len(), 1);
    let p = std::fs::read_to_string(dirs[0].join("participant.sbatch")).unwrap();
    let g = std::fs::read_to_string(dirs[0].join("group.sbatch")).unwrap();
    for (s, level) in [(&p, "participant"), (&g, "group")] {
        assert!(s.contains("#SBATCH --cpus-per-task=3\n"), "{s}");
        assert!(s.contains("#SBATCH --time=0:45:00\n"), "{s}");
        let plan_file = dirs[0].join(format!("plan-{level}.json"));
        assert!(
            s.contains(&format!(" run-plan {} --work-dir ", plan_file.display())),
            "{s}"
        );
        // the overrides reach the tasks inside the plan, not as options
        assert!(!s.contains("--seed") && !s.contains("--template"), "{s}");
        let plan = cbflow_workflow::read_plan(&plan_file).unwrap();
        assert!(
            plan.jobs
                .iter()
                .all(|j| j.template == Some(cbflow_workflow::TemplateName::Phantom))
        );
        let text = std::fs::read_to_string(&plan_file).unwrap();
        if level == "group" {
            assert!(text.contains("\"seed\": 9"), "{text}");
        }
    }
    assert!(p.contains("#SBATCH --mem=7680M\n"), "{p}");
    assert!(p.contains("#SBATCH --array=0-1\n"), "{p}");
    // --mem-gb is each participant task's; the group job keeps the group step's 8 GB
    assert!(g.contains("#SBATCH --mem=8192M\n"), "{g}");
    // without overrides: the plans' resources
    let out = t.path().join("out2");
    cbflow()
        .env("PATH", &path)
        .arg(crate::base_study())
        .arg(&out)
        .arg("participant")
        .args(["--template", "phantom", "--executor", "slurm"])
        .assert()
        .success();
    let dir = std::fs::read_dir(out.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("slurm-")
        })
        .unwrap();
    let p = std::fs::read_to_string(dir.join("participant.sbatch")).unwrap();
    let g = std::fs::read_to_string(dir.join("group.sbatch")).unwrap();
    assert!(
        p.contains("#SBATCH --cpus-per-task=2\n#SBATCH --mem=4096M\n#SBATCH --time=2:00:00\n"),
        "{p}"
    );
    assert!(
        g.contains("#SBATCH --cpus-per-task=4\n#SBATCH --mem=8192M\n#SBATCH --time=8:00:00\n"),
        "{g}"
    );
}

/// A region the template's atlas does not have is refused before anything is queued (it used
/// to be found by each array task, after submission).
#[cfg(unix)]
#[test]
fn a_region_the_atlas_lacks_is_refused_before_submission() {
    let t = tempfile::tempdir().unwrap();
    let workflow = t.path().join("one-roi.yaml");
    std::fs::write(
        &workflow,
        cbflow_testdata::one_roi_workflow("nowhere", "9999"),
    )
    .unwrap();
    let out = t.path().join("out");
    cbflow()
        .env("PATH", fake_sbatch(t.path()))
        .arg(crate::base_study())
        .arg(&out)
        .arg("participant")
        .arg("--workflow")
        .arg(&workflow)
        .args(["--executor", "slurm", "--slurm-no-group"])
        .assert()
        .failure()
        .code(1)
        .stderr(predicate::str::contains(
            "step `cbf`: phantom: ROI nowhere: none of its labels [9999] occurs in the atlas of template phantom",
        ))
        .stdout(predicate::str::contains("submitted").not());
    assert!(!out.exists(), "{} was created", out.display());
}

/// The SLURM submission directories (`logs/slurm-*`: scripts and task logs) of an output
/// directory.
fn submission_dirs(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("slurm-")
        })
        .collect()
}
