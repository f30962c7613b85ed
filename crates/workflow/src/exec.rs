//! The local executor: runs the plan's jobs in dependency order, independent jobs in
//! parallel within a CPU and memory budget; each job in its own rayon pool of `cpus` threads.
//!
//! Each job has a cache key (see [`crate::cache::job_key`]). Its outputs are written to
//! `<work>/jobs/<key>.tmp/out`, then `done.json` (the file list with content hashes) is
//! written and the directory renamed to `<work>/jobs/<key>`: a job directory exists only
//! complete. A rerun finds it and only publishes; a killed run leaves a `.tmp` directory that
//! the next run removes before running that job again. Publishing copies each file into
//! OUTPUT_DIR atomically (temporary file, then rename) and skips files already identical.
//! A per-job lock file (`<key>.lock`, released by the OS when a process dies) keeps two
//! processes sharing a work directory from running the same job at once.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cache::{self, Done, HashCache, OutputFile};
use crate::error::{Error, Result, io_err};
use crate::plan::{Job, Plan};
use crate::plan_inputs::walk_files;
use crate::spec::Level;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Working directory: the job cache (`jobs/`) and the file-hash cache.
    pub work_dir: PathBuf,
    /// CPU cores to use at once (sum of the running jobs' `cpus`).
    pub nprocs: usize,
    /// Memory to use at once (GB; sum of the running jobs' `mem-gb`).
    pub mem_gb: f64,
    /// Identity of the code in the cache keys; `None` = cbflow's version and the SHA-256 of
    /// the running executable ([`cache::code_id`]).
    pub code_id: Option<String>,
    /// Progress bars to draw into (e.g. shared with the log writer); `None` = own bars on
    /// stderr when it is a terminal, none otherwise.
    pub progress: Option<MultiProgress>,
}

impl ExecOptions {
    /// `work_dir` with the cores the process was given and 4 GB per core. The cores are
    /// `RAYON_NUM_THREADS` when set (rayon's own variable, which batch scripts and containers
    /// set), else `SLURM_CPUS_PER_TASK` (a cluster allocation), else the machine's
    /// (`available_parallelism`, which honours cgroup and affinity limits).
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        let from_env = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
        };
        let n = from_env("RAYON_NUM_THREADS")
            .or_else(|| from_env("SLURM_CPUS_PER_TASK"))
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        Self {
            work_dir: work_dir.into(),
            nprocs: n,
            mem_gb: 4.0 * n as f64,
            code_id: None,
            progress: None,
        }
    }
}

/// What a job runner gets.
#[derive(Debug)]
pub struct JobContext<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The job.
    pub job: &'a Job,
    /// Where to write the outputs (empty, exists); paths below it are the paths in
    /// OUTPUT_DIR.
    pub out_dir: &'a Path,
    /// Output directories of the jobs it depends on, in the order of `job.deps`.
    pub upstream: Vec<PathBuf>,
    /// Threads the job may use (its rayon pool has this many).
    pub threads: usize,
}

/// Runs one job: writes its outputs under `ctx.out_dir` and returns their paths relative to
/// it. Anything else left in `out_dir` (e.g. upstream files staged there) is discarded.
pub trait JobRunner: Send + Sync {
    /// Runs the job.
    fn run(&self, ctx: &JobContext<'_>) -> Result<Vec<PathBuf>>;
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Found finished in the work directory; only published.
    Cached,
    /// Run now.
    Ran,
    /// A job of another level, read from what an earlier run published in OUTPUT_DIR (checked
    /// against that run's provenance record), not run.
    ReadFromOutputs,
    /// Failed.
    Failed,
    /// Not started (an upstream job or another job failed).
    NotRun,
}

impl JobStatus {
    /// The name in the provenance record and the run summary (`cached`, `ran`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Cached => "cached",
            JobStatus::Ran => "ran",
            JobStatus::ReadFromOutputs => "read-from-outputs",
            JobStatus::Failed => "failed",
            JobStatus::NotRun => "not-run",
        }
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One job of a run.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    /// The job id.
    pub id: String,
    /// Its cache key.
    pub key: String,
    /// How it ended.
    pub status: JobStatus,
    /// Wall time in this run (s), publishing included.
    pub seconds: f64,
    /// Wall time of the run that computed it (s).
    pub compute_seconds: Option<f64>,
    /// Output files.
    pub files: usize,
    /// Each output file (path in OUTPUT_DIR, SHA-256, size): what a later level checks before
    /// it reads them.
    pub outputs: Vec<OutputFile>,
    /// Seed of its random draws, if any.
    pub seed: Option<u64>,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Per job, in plan order.
    pub jobs: Vec<JobReport>,
    /// Wall time (s).
    pub seconds: f64,
    /// The provenance file written into OUTPUT_DIR.
    pub provenance: PathBuf,
}

impl RunSummary {
    /// Number of jobs with this status.
    pub fn count(&self, s: JobStatus) -> usize {
        self.jobs.iter().filter(|j| j.status == s).count()
    }
}

struct Finished {
    status: JobStatus,
    seconds: f64,
    compute_seconds: Option<f64>,
    files: Vec<OutputFile>,
}

/// Runs `plan` with `runner`: computes every job's key, then starts each job whose
/// dependencies are done as soon as its `cpus` and `mem-gb` fit in the budget (a job larger
/// than the whole budget runs alone). Stops starting jobs after a failure, waits for the
/// running ones, writes `OUTPUT_DIR/logs/provenance-<level>.json` and returns the first
/// failure.
pub fn execute_with(plan: &Plan, opts: &ExecOptions, runner: &dyn JobRunner) -> Result<RunSummary> {
    if opts.nprocs == 0 {
        return Err(Error::Options {
            option: "nprocs",
            message: "must be at least 1".into(),
        });
    }
    if !(opts.mem_gb.is_finite() && opts.mem_gb > 0.0) {
        return Err(Error::Options {
            option: "mem_gb",
            message: format!("{} must be more than 0", opts.mem_gb),
        });
    }
    let started = SystemTime::now();
    let t0 = Instant::now();
    let jobs_dir = opts.work_dir.join("jobs");
    std::fs::create_dir_all(&jobs_dir).map_err(io_err(&jobs_dir))?;
    std::fs::create_dir_all(&plan.output_dir).map_err(io_err(&plan.output_dir))?;
    let hashes = HashCache::load(&opts.work_dir.join("file-hashes.json"));
    let code = opts.code_id.clone().unwrap_or_else(cache::code_id);
    let keys = job_keys(plan, &hashes, &code)?;
    // the other level's jobs come from the cache or from OUTPUT_DIR, never from a rerun
    let read_back = crate::published::read_prerequisites(plan, &keys, &jobs_dir, &hashes, &code)?;
    let n = plan.jobs.len();

    let mp = opts.progress.clone().unwrap_or_else(|| {
        if std::io::stderr().is_terminal() {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        }
    });
    let bar = mp.add(ProgressBar::new(n as u64));
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} jobs, {elapsed}{left}")
            .expect("valid template")
            .with_key(
                "left",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    // an estimate only once a job has finished (before, there is no rate)
                    if s.pos() > 0 && s.pos() < s.len().unwrap_or(0) {
                        let _ = write!(w, ", about {} left", indicatif::HumanDuration(s.eta()));
                    }
                },
            )
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} level", plan.level));
    // the clock moves while jobs run, not only when one finishes
    bar.enable_steady_tick(Duration::from_secs(1));

    let mut reports: Vec<Option<Finished>> = (0..n).map(|_| None).collect();
    let mut errors: Vec<Option<String>> = vec![None; n];
    let mut waiting: Vec<usize> = plan.jobs.iter().map(|j| j.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, j) in plan.jobs.iter().enumerate() {
        for &d in &j.deps {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut first_err: Option<Error> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Finished>)>();
        let mut running = 0usize;
        let (mut cpus_used, mut mem_used) = (0usize, 0f64);
        let mut cost = vec![(0usize, 0f64); n];
        loop {
            if first_err.is_none() {
                let candidates: Vec<usize> = ready.iter().copied().collect();
                for i in candidates {
                    let job = &plan.jobs[i];
                    let cached = jobs_dir.join(&keys[i]).join("done.json").is_file();
                    let (c, m) = if cached {
                        (1, 0.0)
                    } else {
                        (
                            job.resources.cpus.clamp(1, opts.nprocs),
                            job.resources.mem_gb.min(opts.mem_gb),
                        )
                    };
                    let fits = running == 0
                        || (cpus_used + c <= opts.nprocs && mem_used + m <= opts.mem_gb + 1e-9);
                    if !fits {
                        continue;
                    }
                    ready.remove(&i);
                    cost[i] = (c, m);
                    cpus_used += c;
                    mem_used += m;
                    running += 1;
                    let tx = tx.clone();
                    let keys = &keys;
                    let jobs_dir = &jobs_dir;
                    let hashes = &hashes;
                    let mp = &mp;
                    scope.spawn(move || {
                        // a panicking job is a failed job, not a hung executor
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run_job(plan, i, keys, jobs_dir, hashes, runner, c, mp)
                        }))
                        .unwrap_or_else(|p| {
                            let msg = p
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panicked".into());
                            Err(Error::JobFailed {
                                job: plan.jobs[i].id.clone(),
                                message: format!("panicked: {msg}"),
                            })
                        });
                        let _ = tx.send((i, r));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let (i, r) = rx.recv().expect("a worker is running");
            running -= 1;
            cpus_used -= cost[i].0;
            mem_used -= cost[i].1;
            bar.inc(1);
            if bar.position() == 1 && n > 1 {
                // an estimate of what is left once there is a rate to estimate it from
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {pos}/{len} jobs, {elapsed}, about {eta} left",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
            }
            match r {
                Ok(f) => {
                    reports[i] = Some(f);
                    for &d in &dependents[i] {
                        waiting[d] -= 1;
                        if waiting[d] == 0 {
                            ready.insert(d);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("{}: {e}", plan.jobs[i].id);
                    errors[i] = Some(e.to_string());
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
    });
    bar.finish_and_clear();
    let _ = hashes.save();
    let job_reports: Vec<JobReport> = plan
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let f = reports[i].as_ref();
            JobReport {
                id: j.id.clone(),
                key: keys[i].clone(),
                status: match (f, &errors[i]) {
                    (Some(_), _) if read_back[i] => JobStatus::ReadFromOutputs,
                    (Some(f), _) => f.status,
                    (None, Some(_)) => JobStatus::Failed,
                    (None, None) => JobStatus::NotRun,
                },
                seconds: f.map(|f| f.seconds).unwrap_or(0.0),
                compute_seconds: f.and_then(|f| f.compute_seconds),
                files: f.map(|f| f.files.len()).unwrap_or(0),
                outputs: f.map(|f| f.files.clone()).unwrap_or_default(),
                seed: j.op.spec().seed(),
                error: errors[i].clone(),
            }
        })
        .collect();
    let seconds = t0.elapsed().as_secs_f64();
    let provenance = write_provenance(plan, opts, &code, &job_reports, started, seconds)?;
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(RunSummary {
        jobs: job_reports,
        seconds,
        provenance,
    })
}

/// Every job's key, in plan order (dependencies first).
fn job_keys(plan: &Plan, hashes: &HashCache, code: &str) -> Result<Vec<String>> {
    use rayon::prelude::*;
    let files: BTreeSet<&PathBuf> = plan.jobs.iter().flat_map(|j| j.inputs.iter()).collect();
    let files: Vec<&PathBuf> = files.into_iter().collect();
    let hashed: Vec<(PathBuf, String)> = files
        .par_iter()
        .map(|p| hashes.hash(p).map(|h| ((*p).clone(), h)))
        .collect::<Result<_>>()?;
    let map: std::collections::HashMap<PathBuf, String> = hashed.into_iter().collect();
    let rel = |p: &Path| -> String {
        if let Ok(r) = p.strip_prefix(&plan.bids_dir) {
            return format!("bids:{}", r.display());
        }
        if let Some(res) = &plan.resources_dir
            && let Ok(r) = p.strip_prefix(res)
        {
            return format!("resources:{}", r.display());
        }
        p.display().to_string()
    };
    let mut keys: Vec<String> = Vec::with_capacity(plan.jobs.len());
    for j in &plan.jobs {
        let inputs: Vec<(String, String)> =
            j.inputs.iter().map(|p| (rel(p), map[p].clone())).collect();
        let upstream: Vec<String> = j.deps.iter().map(|&d| keys[d].clone()).collect();
        let mut params = j.op.params_json();
        if let Some(t) = j.template {
            params["template-used"] = serde_json::json!(t.as_str());
        }
        keys.push(cache::job_key(
            j.op.kind().name(),
            &params,
            j.participant.as_deref(),
            &plan.bids_dir,
            code,
            &inputs,
            &upstream,
        ));
    }
    Ok(keys)
}

/// Runs or reuses job `i`, then publishes its outputs.
fn run_job(
    plan: &Plan,
    i: usize,
    keys: &[String],
    jobs_dir: &Path,
    hashes: &HashCache,
    runner: &dyn JobRunner,
    threads: usize,
    mp: &MultiProgress,
) -> Result<Finished> {
    let job = &plan.jobs[i];
    let t0 = Instant::now();
    let key = &keys[i];
    let dir = jobs_dir.join(key);
    let (done, status) = match Done::read(&dir) {
        Some(d) => (d, JobStatus::Cached),
        None => {
            let lock_path = jobs_dir.join(format!("{key}.lock"));
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err(&lock_path))?;
            lock.lock().map_err(io_err(&lock_path))?;
            // another process may have finished it while we waited
            match Done::read(&dir) {
                Some(d) => (d, JobStatus::Cached),
                None => {
                    let d = compute(plan, i, keys, jobs_dir, runner, threads, mp)?;
                    (d, JobStatus::Ran)
                }
            }
        }
    };
    if status == JobStatus::Cached {
        tracing::info!("{}: cached ({} files)", job.id, done.files.len());
    }
    publish(&dir.join("out"), &plan.output_dir, &done.files, hashes)?;
    Ok(Finished {
        status,
        seconds: t0.elapsed().as_secs_f64(),
        compute_seconds: Some(done.seconds),
        files: done.files,
    })
}

/// Runs job `i` into `<key>.tmp`, keeps the outputs the runner names, writes `done.json` and
/// renames the directory to `<key>`.
fn compute(
    plan: &Plan,
    i: usize,
    keys: &[String],
    jobs_dir: &Path,
    runner: &dyn JobRunner,
    threads: usize,
    mp: &MultiProgress,
) -> Result<Done> {
    let job = &plan.jobs[i];
    let key = &keys[i];
    let dir = jobs_dir.join(key);
    let tmp = jobs_dir.join(format!("{key}.tmp"));
    for stale in [&tmp, &dir] {
        if stale.exists() {
            tracing::info!("{}: removing the leftovers of an interrupted run", job.id);
            std::fs::remove_dir_all(stale).map_err(io_err(stale))?;
        }
    }
    let out = tmp.join("out");
    std::fs::create_dir_all(&out).map_err(io_err(&out))?;
    let spinner = mp.add(ProgressBar::new_spinner());
    spinner.set_style(
        ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("valid template"),
    );
    spinner.set_message(format!("{} ({})", job.id, job.op.kind()));
    spinner.enable_steady_tick(Duration::from_millis(200));
    tracing::info!("{}: started ({} threads)", job.id, threads);
    let t0 = Instant::now();
    let ctx = JobContext {
        plan,
        job,
        out_dir: &out,
        upstream: job
            .deps
            .iter()
            .map(|&d| jobs_dir.join(&keys[d]).join("out"))
            .collect(),
        threads,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::JobFailed {
            job: job.id.clone(),
            message: format!("starting {threads} threads: {e}"),
        })?;
    let result = pool.install(|| runner.run(&ctx));
    spinner.finish_and_clear();
    mp.remove(&spinner);
    let listed = match result {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let seconds = t0.elapsed().as_secs_f64();
    // keep exactly the listed outputs
    let mut keep: BTreeSet<PathBuf> = BTreeSet::new();
    for rel in listed {
        let rel = rel.strip_prefix(&out).map(Path::to_path_buf).unwrap_or(rel);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::JobFailed {
                job: job.id.clone(),
                message: format!(
                    "output path {} is not inside the job directory",
                    rel.display()
                ),
            });
        }
        if !out.join(&rel).is_file() {
            return Err(Error::JobFailed {
                job: job.id.clone(),
                message: format!("listed output {} was not written", rel.display()),
            });
        }
        keep.insert(rel);
    }
    let mut all = Vec::new();
    walk_files_all(&out, &mut all)?;
    for f in all {
        let rel = f.strip_prefix(&out).expect("inside").to_path_buf();
        if !keep.contains(&rel) {
            std::fs::remove_file(&f).map_err(io_err(&f))?;
        }
    }
    let mut files = Vec::with_capacity(keep.len());
    for rel in keep {
        let p = out.join(&rel);
        let meta = std::fs::metadata(&p).map_err(io_err(&p))?;
        files.push(OutputFile {
            sha256: cache::sha256_file(&p)?,
            bytes: meta.len(),
            path: rel,
        });
    }
    let done = Done {
        key: key.clone(),
        job: job.id.clone(),
        op: job.op.kind().name().to_string(),
        files,
        seconds,
    };
    let bytes = serde_json::to_vec_pretty(&done).expect("plain data");
    cbflow_bids::atomic_write(&tmp.join("done.json"), &bytes)?;
    std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    tracing::info!(
        "{}: finished in {seconds:.1} s ({} files)",
        job.id,
        done.files.len()
    );
    Ok(done)
}

/// Every file under `dir`, hidden ones included.
fn walk_files_all(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let p = e.map_err(io_err(dir))?.path();
        let ft = std::fs::symlink_metadata(&p)
            .map_err(io_err(&p))?
            .file_type();
        if ft.is_dir() {
            walk_files_all(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

static PUBLISH_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Copies each file of `files` from `src` into `dest` atomically, skipping files already
/// there with the same content.
fn publish(src: &Path, dest: &Path, files: &[OutputFile], hashes: &HashCache) -> Result<()> {
    for f in files {
        let to = dest.join(&f.path);
        remove_stale_temporaries(&to);
        if to.is_file()
            && std::fs::metadata(&to).map(|m| m.len()).ok() == Some(f.bytes)
            && hashes.hash(&to)? == f.sha256
        {
            continue;
        }
        let from = src.join(&f.path);
        let parent = to.parent().unwrap_or(dest);
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        let name = to
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(
            ".{name}.cbflow-{}-{}",
            std::process::id(),
            PUBLISH_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let r = (|| -> std::io::Result<()> {
            std::fs::copy(&from, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &to)
        })();
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Io {
                path: to,
                message: format!("publishing {}: {e}", from.display()),
            });
        }
    }
    Ok(())
}

/// Removes `.<name>.cbflow-<pid>-<n>` files next to `to` left by a process that no longer
/// runs (a publish interrupted by a kill). Where process ids cannot be checked (no `/proc`),
/// nothing is removed.
fn remove_stale_temporaries(to: &Path) {
    let (Some(parent), Some(name)) = (to.parent(), to.file_name()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{}.cbflow-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[derive(Serialize)]
struct Provenance<'a> {
    cbflow_version: &'a str,
    code_id: &'a str,
    level: Level,
    workflow: &'a str,
    workflow_origin: &'a str,
    workflow_sha256: String,
    workflow_text: &'a str,
    started_unix: f64,
    seconds: f64,
    nprocs: usize,
    mem_gb: f64,
    work_dir: &'a Path,
    seeds: std::collections::BTreeMap<&'a str, u64>,
    jobs: &'a [JobReport],
    plan: &'a Plan,
}

/// Writes `OUTPUT_DIR/logs/provenance-<level>.json`: the resolved plan, versions, seeds and
/// per-job cache use and timings.
fn write_provenance(
    plan: &Plan,
    opts: &ExecOptions,
    code: &str,
    jobs: &[JobReport],
    started: SystemTime,
    seconds: f64,
) -> Result<PathBuf> {
    let p = Provenance {
        cbflow_version: env!("CARGO_PKG_VERSION"),
        code_id: code,
        level: plan.level,
        workflow: &plan.workflow,
        workflow_origin: &plan.origin,
        workflow_sha256: cache::sha256_hex(plan.workflow_text.as_bytes()),
        workflow_text: &plan.workflow_text,
        started_unix: started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        seconds,
        nprocs: opts.nprocs,
        mem_gb: opts.mem_gb,
        work_dir: &opts.work_dir,
        seeds: plan
            .jobs
            .iter()
            .filter_map(|j| j.op.spec().seed().map(|s| (j.id.as_str(), s)))
            .collect(),
        jobs,
        plan,
    };
    let path = crate::published::provenance_path(&plan.output_dir, plan.level);
    let mut record = serde_json::to_value(&p).expect("plain data");
    let started_unix = record["started_unix"].clone();
    for j in record["jobs"].as_array_mut().expect("a list") {
        j["run_started_unix"] = started_unix.clone();
    }
    // Runs of other participants into the same OUTPUT_DIR (one after the other, or at once on a
    // cluster) keep their jobs' records: read, merge and write under a lock on the logs
    // directory, so that no run's jobs are lost.
    // (flock on the directory itself: no lock file is left among the outputs)
    let logs = path.parent().expect("logs/");
    std::fs::create_dir_all(logs).map_err(io_err(logs))?;
    let lock = std::fs::File::open(logs).map_err(io_err(logs))?;
    lock.lock().map_err(io_err(logs))?;
    merge_earlier_jobs(&mut record, &path);
    let mut bytes = serde_json::to_vec_pretty(&record).expect("plain data");
    bytes.push(b'\n');
    let written = cbflow_bids::atomic_write(&path, &bytes);
    drop(lock);
    written?;
    Ok(path)
}

/// Appends to `record["jobs"]` the job records of the provenance file at `path` (an earlier run)
/// whose job this run did not plan, in their earlier order. A missing or unreadable earlier file
/// adds nothing (a record that cannot be read is not worth failing a finished run for).
fn merge_earlier_jobs(record: &mut serde_json::Value, path: &Path) {
    let Some(earlier) = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return;
    };
    let Some(old_jobs) = earlier["jobs"].as_array() else {
        return;
    };
    let jobs = record["jobs"].as_array_mut().expect("a list");
    // this run reports every job it planned
    let mut seen: BTreeSet<String> = jobs
        .iter()
        .filter_map(|j| j["id"].as_str().map(str::to_string))
        .collect();
    for j in old_jobs {
        let Some(id) = j["id"].as_str() else { continue };
        if !seen.insert(id.to_string()) {
            continue;
        }
        let mut j = j.clone();
        if j.get("run_started_unix").is_none() {
            j["run_started_unix"] = earlier["started_unix"].clone();
        }
        jobs.push(j);
    }
}

/// Files of a finished job's output directory (for runners that stage upstream outputs).
pub fn list_outputs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    walk_files(dir, &mut v)?;
    Ok(v.into_iter()
        .map(|p| p.strip_prefix(dir).expect("inside").to_path_buf())
        .collect())
}
