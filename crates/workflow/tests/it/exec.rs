//! The executor with a fake runner: parallelism within the budget, dependency order, cache
//! hits, resuming after a crash, failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use cbflow_workflow::{
    AslCbfParams, CrossoverGroupParams, Error, ExecOptions, Job, JobContext, JobRunner, JobStatus,
    Level, Op, Plan, Resources, RunSummary, TemplateName, execute_with,
};

use crate::tree;

/// A plan of `n` participant jobs (`p/sub-XX`, each reading `bids/sub-XX/data.txt`) and one
/// group job `g` reading all of them.
fn fake_plan(dir: &Path, n: usize, res: Resources) -> Plan {
    let bids = dir.join("bids");
    let mut jobs = Vec::new();
    for s in 1..=n {
        let sub = format!("{s:02}");
        let f = bids.join(format!("sub-{sub}/data.txt"));
        if !f.exists() {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, format!("data of {sub}")).unwrap();
        }
        jobs.push(Job {
            id: format!("p/sub-{sub}"),
            step: "p".into(),
            level: Level::Participant,
            participant: Some(sub),
            op: Op::AslCbf(AslCbfParams {
                template: TemplateName::Phantom,
                ..AslCbfParams::default()
            }),
            template: Some(TemplateName::Phantom),
            inputs: vec![f],
            matched: BTreeMap::new(),
            deps: vec![],
            resources: res,
            prerequisite: false,
        });
    }
    jobs.push(Job {
        id: "g".into(),
        step: "g".into(),
        level: Level::Group,
        participant: None,
        op: Op::CrossoverGroup(CrossoverGroupParams::default()),
        template: Some(TemplateName::Phantom),
        inputs: vec![],
        matched: BTreeMap::new(),
        deps: (0..n).collect(),
        resources: Resources {
            cpus: 1,
            mem_gb: 1.0,
            time_min: 1,
        },
        prerequisite: false,
    });
    Plan {
        workflow: "fake".into(),
        origin: "fake.yaml".into(),
        workflow_text: String::new(),
        bids_dir: bids,
        output_dir: dir.join("out"),
        level: Level::Participant,
        resources_dir: None,
        resources_dir_missing: None,
        cbflow_version: "test".into(),
        jobs,
    }
}

#[derive(Default)]
struct Fake {
    sleep: Duration,
    fail: Option<String>,
    calls: Mutex<Vec<String>>,
    finished: Mutex<Vec<String>>,
    /// (jobs, cpus, mem) running now and at most.
    active: Mutex<(usize, usize, f64)>,
    peak: Mutex<(usize, usize, f64)>,
    /// jobs started before a dependency finished
    early: Mutex<Vec<String>>,
    /// threads seen inside each job's pool
    threads: Mutex<BTreeMap<String, usize>>,
}

impl Fake {
    fn new(sleep_ms: u64) -> Self {
        Self {
            sleep: Duration::from_millis(sleep_ms),
            ..Self::default()
        }
    }
    fn calls(&self) -> Vec<String> {
        assert!(
            self.early.lock().unwrap().is_empty(),
            "{:?}",
            self.early.lock().unwrap()
        );
        let mut c = self.calls.lock().unwrap().clone();
        c.sort();
        c
    }
}

impl JobRunner for Fake {
    fn run(&self, ctx: &JobContext<'_>) -> cbflow_workflow::Result<Vec<PathBuf>> {
        let job = ctx.job;
        self.calls.lock().unwrap().push(job.id.clone());
        self.threads
            .lock()
            .unwrap()
            .insert(job.id.clone(), rayon::current_num_threads());
        let mem = job.resources.mem_gb;
        {
            let mut a = self.active.lock().unwrap();
            a.0 += 1;
            a.1 += ctx.threads;
            a.2 += mem;
            let mut p = self.peak.lock().unwrap();
            *p = (p.0.max(a.0), p.1.max(a.1), p.2.max(a.2));
        }
        // every dependency finished (in this run or an earlier one) before this job started
        for (k, &d) in job.deps.iter().enumerate() {
            if !ctx.upstream[k]
                .parent()
                .unwrap()
                .join("done.json")
                .is_file()
            {
                self.early
                    .lock()
                    .unwrap()
                    .push(format!("{} started before {}", job.id, ctx.plan.jobs[d].id));
            }
        }
        std::thread::sleep(self.sleep);
        let out = ctx.out_dir;
        let mut files = Vec::new();
        match &job.participant {
            Some(sub) => {
                let data = std::fs::read_to_string(&job.inputs[0]).unwrap();
                let rel = PathBuf::from(format!("sub-{sub}/result.txt"));
                std::fs::create_dir_all(out.join(format!("sub-{sub}"))).unwrap();
                std::fs::write(out.join(&rel), format!("{} from {data}\n", job.id)).unwrap();
                files.push(rel);
                std::fs::write(out.join("dataset_description.json"), "{}\n").unwrap();
                files.push("dataset_description.json".into());
            }
            None => {
                let mut all = String::new();
                for up in &ctx.upstream {
                    for rel in cbflow_workflow::list_outputs(up).unwrap() {
                        if rel.ends_with("result.txt") {
                            all += &std::fs::read_to_string(up.join(rel)).unwrap();
                        }
                    }
                }
                std::fs::create_dir_all(out.join("group")).unwrap();
                std::fs::write(out.join("group/summary.txt"), all).unwrap();
                files.push("group/summary.txt".into());
            }
        }
        // scratch the runner does not list: discarded
        std::fs::write(out.join("scratch.tmp"), "x").unwrap();
        {
            let mut a = self.active.lock().unwrap();
            a.0 -= 1;
            a.1 -= ctx.threads;
            a.2 -= mem;
        }
        self.finished.lock().unwrap().push(job.id.clone());
        if self.fail.as_deref() == Some(job.id.as_str()) {
            return Err(Error::JobFailed {
                job: job.id.clone(),
                message: "simulated failure".into(),
            });
        }
        Ok(files)
    }
}

fn opts(work: &Path, nprocs: usize, mem_gb: f64) -> ExecOptions {
    ExecOptions {
        code_id: Some("test".into()),
        nprocs,
        mem_gb,
        ..ExecOptions::new(work)
    }
}

fn res(cpus: usize, mem_gb: f64) -> Resources {
    Resources {
        cpus,
        mem_gb,
        time_min: 1,
    }
}

fn key_of(s: &RunSummary, id: &str) -> String {
    s.jobs.iter().find(|j| j.id == id).unwrap().key.clone()
}

#[test]
fn parallelism_stays_within_cpus_and_memory() {
    let t = tempfile::tempdir().unwrap();
    // cpu-bound: 6 jobs of 1 cpu on 2 cpus
    let plan = fake_plan(t.path(), 6, res(1, 1.0));
    let f = Fake::new(150);
    execute_with(&plan, &opts(&t.path().join("w1"), 2, 100.0), &f).unwrap();
    assert_eq!(f.peak.lock().unwrap().0, 2, "two jobs at a time");
    assert!(f.peak.lock().unwrap().1 <= 2);
    // memory-bound: 6 jobs of 1 GB on 3 GB (6 cpus)
    let f = Fake::new(150);
    execute_with(&plan, &opts(&t.path().join("w2"), 6, 3.0), &f).unwrap();
    let p = *f.peak.lock().unwrap();
    assert_eq!(p.0, 3, "three jobs at a time");
    assert!(p.2 <= 3.0 + 1e-9);
    // each job runs in a pool of its cpus
    let t2 = tempfile::tempdir().unwrap();
    let plan = fake_plan(t2.path(), 3, res(2, 1.0));
    let f = Fake::new(50);
    execute_with(&plan, &opts(&t2.path().join("w"), 4, 100.0), &f).unwrap();
    assert_eq!(f.threads.lock().unwrap()["p/sub-01"], 2);
    assert_eq!(f.threads.lock().unwrap()["g"], 1);
    assert_eq!(f.peak.lock().unwrap().0, 2, "2 + 2 cpus of 4");
    // a job larger than the budget runs alone, with the whole budget
    let t3 = tempfile::tempdir().unwrap();
    let plan = fake_plan(t3.path(), 2, res(8, 64.0));
    let f = Fake::new(50);
    execute_with(&plan, &opts(&t3.path().join("w"), 2, 4.0), &f).unwrap();
    assert_eq!(f.peak.lock().unwrap().0, 1);
    assert_eq!(f.threads.lock().unwrap()["p/sub-01"], 2);
}

#[test]
fn rerun_is_all_cache_hits_and_publishes_identical_bytes() {
    let t = tempfile::tempdir().unwrap();
    let plan = fake_plan(t.path(), 4, res(1, 1.0));
    let work = t.path().join("work");
    let f = Fake::new(20);
    let s = execute_with(&plan, &opts(&work, 2, 8.0), &f).unwrap();
    assert_eq!(s.count(JobStatus::Ran), 5);
    assert_eq!(f.calls.lock().unwrap().last().unwrap(), "g", "group last");
    let first = tree(&plan.output_dir);
    let names: Vec<String> = first.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "dataset_description.json",
            "group/summary.txt",
            "sub-01/result.txt",
            "sub-02/result.txt",
            "sub-03/result.txt",
            "sub-04/result.txt"
        ],
        "unlisted scratch files are not published"
    );
    let summary = String::from_utf8(first[1].1.clone()).unwrap();
    assert_eq!(summary.lines().count(), 4, "{summary}");
    // second run: nothing runs
    let f2 = Fake::new(20);
    let s2 = execute_with(&plan, &opts(&work, 2, 8.0), &f2).unwrap();
    assert!(f2.calls().is_empty(), "{:?}", f2.calls());
    assert_eq!(s2.count(JobStatus::Cached), 5);
    assert_eq!(tree(&plan.output_dir), first);
    // a deleted output is published again, from the cache
    std::fs::remove_file(plan.output_dir.join("sub-02/result.txt")).unwrap();
    let f3 = Fake::new(0);
    execute_with(&plan, &opts(&work, 2, 8.0), &f3).unwrap();
    assert!(f3.calls().is_empty());
    assert_eq!(tree(&plan.output_dir), first);
    // provenance: plan, seeds, statuses
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&s2.provenance).unwrap()).unwrap();
    assert_eq!(
        s2.provenance,
        plan.output_dir.join("logs/provenance-participant.json")
    );
    assert_eq!(prov["jobs"][0]["status"], "cached");
    assert_eq!(prov["seeds"]["g"], 1);
    assert_eq!(prov["plan"]["jobs"][4]["op"], "crossover-group");
    assert!(prov["jobs"][0]["compute_seconds"].as_f64().unwrap() > 0.0);
    // a changed input reruns that participant and the group only
    std::fs::write(plan.bids_dir.join("sub-03/data.txt"), "new data").unwrap();
    let f4 = Fake::new(0);
    execute_with(&plan, &opts(&work, 2, 8.0), &f4).unwrap();
    assert_eq!(f4.calls(), ["g", "p/sub-03"]);
    let changed = std::fs::read_to_string(plan.output_dir.join("sub-03/result.txt")).unwrap();
    assert!(changed.contains("new data"));
}

#[test]
fn resume_after_a_crash_runs_exactly_the_missing_jobs() {
    let t = tempfile::tempdir().unwrap();
    // uninterrupted reference run
    let plan_a = fake_plan(&t.path().join("a"), 4, res(1, 1.0));
    execute_with(
        &plan_a,
        &opts(&t.path().join("a/work"), 2, 8.0),
        &Fake::new(0),
    )
    .unwrap();
    // the run that "crashes": same inputs elsewhere
    let dir_b = t.path().join("b");
    let plan_b = fake_plan(&dir_b, 4, res(1, 1.0));
    let work = dir_b.join("work");
    let s = execute_with(&plan_b, &opts(&work, 2, 8.0), &Fake::new(0)).unwrap();
    let jobs = work.join("jobs");
    // sub-02 never finished and was never published
    let k2 = key_of(&s, "p/sub-02");
    std::fs::remove_dir_all(jobs.join(&k2)).unwrap();
    std::fs::remove_dir_all(plan_b.output_dir.join("sub-02")).unwrap();
    // sub-04 was killed while writing: a .tmp directory with partial output, no done.json
    let k4 = key_of(&s, "p/sub-04");
    std::fs::rename(jobs.join(&k4), jobs.join(format!("{k4}.tmp"))).unwrap();
    std::fs::remove_file(jobs.join(format!("{k4}.tmp/done.json"))).unwrap();
    std::fs::write(jobs.join(format!("{k4}.tmp/out/sub-04/result.txt")), "half").unwrap();
    // the group was killed mid-publish: its file half-written under a temporary name only
    std::fs::remove_file(plan_b.output_dir.join("group/summary.txt")).unwrap();
    let f = Fake::new(0);
    let s2 = execute_with(&plan_b, &opts(&work, 2, 8.0), &f).unwrap();
    assert_eq!(
        f.calls(),
        ["p/sub-02", "p/sub-04"],
        "exactly the missing jobs"
    );
    assert_eq!(s2.count(JobStatus::Cached), 3);
    assert!(
        !jobs.join(format!("{k4}.tmp")).exists(),
        "leftovers removed"
    );
    assert_eq!(tree(&plan_b.output_dir), tree(&plan_a.output_dir));
}

#[test]
fn a_failure_stops_dependents_and_the_rerun_resumes() {
    let t = tempfile::tempdir().unwrap();
    let plan = fake_plan(t.path(), 3, res(1, 1.0));
    let work = t.path().join("work");
    let f = Fake {
        fail: Some("p/sub-02".into()),
        ..Fake::new(0)
    };
    let e = execute_with(&plan, &opts(&work, 1, 8.0), &f).unwrap_err();
    assert!(
        e.to_string().contains("p/sub-02") && e.to_string().contains("simulated"),
        "{e}"
    );
    assert!(
        !f.calls().contains(&"g".to_string()),
        "the group did not start"
    );
    let prov: serde_json::Value = serde_json::from_slice(
        &std::fs::read(plan.output_dir.join("logs/provenance-participant.json")).unwrap(),
    )
    .unwrap();
    let status: Vec<&str> = prov["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(status[1], "failed");
    assert_eq!(status[3], "not-run");
    assert!(
        !plan.output_dir.join("sub-02").exists(),
        "nothing of the failed job published"
    );
    let f2 = Fake::new(0);
    execute_with(&plan, &opts(&work, 1, 8.0), &f2).unwrap();
    let calls = f2.calls();
    assert!(calls.contains(&"p/sub-02".to_string()) && calls.contains(&"g".to_string()));
    assert!(!calls.contains(&"p/sub-01".to_string()), "{calls:?}");
}

#[test]
fn bad_options_are_named() {
    let t = tempfile::tempdir().unwrap();
    let plan = fake_plan(t.path(), 1, res(1, 1.0));
    let e = execute_with(&plan, &opts(&t.path().join("w"), 0, 1.0), &Fake::new(0)).unwrap_err();
    assert!(e.to_string().starts_with("nprocs"), "{e}");
    let e = execute_with(&plan, &opts(&t.path().join("w"), 1, 0.0), &Fake::new(0)).unwrap_err();
    assert!(e.to_string().starts_with("mem_gb"), "{e}");
}

/// The participant jobs of `fake_plan` as the participant level plans them, and the whole plan
/// as the group level does (the participant jobs its prerequisites).
fn split_levels(dir: &Path, n: usize) -> (Plan, Plan) {
    let mut group = fake_plan(dir, n, res(1, 1.0));
    group.level = Level::Group;
    let mut participant = group.clone();
    participant.level = Level::Participant;
    participant.jobs.truncate(n);
    for j in &mut group.jobs[..n] {
        j.prerequisite = true;
    }
    (participant, group)
}

#[test]
fn the_group_level_reads_participant_outputs_from_output_dir_and_never_reruns_them() {
    let t = tempfile::tempdir().unwrap();
    let (participant, group) = split_levels(t.path(), 3);
    // without any participant run: refused before anything runs, each missing job named
    let f = Fake::new(0);
    let e = execute_with(&group, &opts(&t.path().join("w0"), 2, 8.0), &f).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Prerequisites { .. }), "{msg}");
    for id in ["p/sub-01", "p/sub-02", "p/sub-03"] {
        assert!(msg.contains(id), "{msg}");
    }
    assert!(
        msg.contains("participant` (with the same workflow"),
        "{msg}"
    );
    assert!(f.calls().is_empty());
    assert!(tree(&group.output_dir).is_empty(), "nothing written");
    // the participant level, then its work directory deleted (a wiped scratch)
    let w1 = t.path().join("w1");
    execute_with(&participant, &opts(&w1, 2, 8.0), &Fake::new(0)).unwrap();
    std::fs::remove_dir_all(&w1).unwrap();
    let f = Fake::new(0);
    let s = execute_with(&group, &opts(&t.path().join("w2"), 2, 8.0), &f).unwrap();
    assert_eq!(f.calls(), ["g"], "no participant job runs");
    assert_eq!(s.count(JobStatus::ReadFromOutputs), 3);
    assert_eq!(s.count(JobStatus::Ran), 1);
    let summary = std::fs::read_to_string(group.output_dir.join("group/summary.txt")).unwrap();
    assert_eq!(summary.lines().count(), 3, "{summary}");
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&s.provenance).unwrap()).unwrap();
    assert_eq!(prov["jobs"][0]["status"], "read-from-outputs");
    // a participant output changed after the participant level wrote it: refused, file named
    std::fs::write(group.output_dir.join("sub-02/result.txt"), "edited").unwrap();
    let f = Fake::new(0);
    let msg = execute_with(&group, &opts(&t.path().join("w3"), 2, 8.0), &f)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("sub-02/result.txt is missing or was changed"),
        "{msg}"
    );
    assert!(
        !msg.contains("p/sub-01"),
        "only the changed job is named: {msg}"
    );
    assert!(f.calls().is_empty());
    // an input changed since (another key): refused as made from other inputs
    std::fs::write(group.bids_dir.join("sub-03/data.txt"), "new data").unwrap();
    let msg = execute_with(&group, &opts(&t.path().join("w4"), 2, 8.0), &Fake::new(0))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("p/sub-03: the outputs in OUTPUT_DIR were made with other parameters, inputs"),
        "{msg}"
    );
}

const RECEPTOR_CHILD_ENV: &str = "CBFLOW_WORKFLOW_TEST_RECEPTOR_CHILD";

/// Not a test by itself: the child process of
/// `a_receptor_job_reads_the_plans_resource_directory_only` (its environment names a resource
/// directory with PET maps; the plan it runs has none).
#[test]
#[ignore = "run by a_receptor_job_reads_the_plans_resource_directory_only"]
fn child_receptor_job() {
    let Ok(dir) = std::env::var(RECEPTOR_CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let bids = dir.join("bids");
    std::fs::create_dir_all(&bids).unwrap();
    let plan = Plan {
        workflow: "receptors".into(),
        origin: "receptors.yaml".into(),
        workflow_text: String::new(),
        bids_dir: bids,
        output_dir: dir.join("out"),
        level: Level::Group,
        // what `--resources <a path that is no directory>` resolves to
        resources_dir: None,
        resources_dir_missing: Some(dir.join("no-such-dir")),
        cbflow_version: "test".into(),
        jobs: vec![Job {
            id: "receptors".into(),
            step: "receptors".into(),
            level: Level::Group,
            participant: None,
            op: Op::ReceptorCorrelation(Default::default()),
            template: Some(TemplateName::Phantom),
            inputs: vec![],
            matched: BTreeMap::new(),
            deps: vec![],
            resources: res(1, 1.0),
            prerequisite: false,
        }],
    };
    let s = cbflow_workflow::execute(&plan, &opts(&dir.join("work"), 1, 4.0)).unwrap();
    assert_eq!(s.jobs[0].status, JobStatus::Ran);
    assert_eq!(s.jobs[0].files, 0, "the receptor step had something to do");
}

/// The receptor step runs with the resource directory the plan resolved, not one it looks up
/// again: with the plan's directory unusable it has nothing to do, though `$CBFLOW_RESOURCES`
/// names a directory with pet/ (it used to fall back on it, whose PET maps the job's cache key
/// did not hash).
#[test]
fn a_receptor_job_reads_the_plans_resource_directory_only() {
    let t = tempfile::tempdir().unwrap();
    let env_resources = t.path().join("env-resources");
    std::fs::create_dir_all(env_resources.join("pet")).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "exec::child_receptor_job",
            "--ignored",
            "--nocapture",
        ])
        .env(RECEPTOR_CHILD_ENV, t.path())
        .env("CBFLOW_RESOURCES", &env_resources)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run: {stdout}"
    );
}
