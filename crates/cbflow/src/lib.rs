//! The `cbflow` command line: argument parsing, terminal output and exit codes. Everything else
//! lives in the library crates; this crate only wires them to the terminal.
//!
//! Exit codes (decided in [`run`] only): 0 success, 1 the command failed (bad input, a failed
//! step), 2 the command line itself was wrong.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// `println!` for the command's results on stdout: a closed pipe (`cbflow validate DIR | head`)
/// ends the process quietly with exit 0, as `head` asked, instead of panicking; any other
/// write error is reported with exit 1.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            $crate::stdout_failed(e);
        }
    }};
}

/// See [`outln!`].
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1);
}

mod commands;
mod resources;

/// cbflow: a BIDS app that runs a pharmacological ASL crossover study end to end.
///
/// BIDS-Apps usage: `cbflow BIDS_DIR OUTPUT_DIR {participant,group} [options]`.
/// Other commands: validate, plan, schema, inspect, normalise, synth, demo, resources.
#[derive(Debug, Parser)]
#[command(
    name = "cbflow",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    app: AppArgs,
    /// Log more (repeat for more detail).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// The BIDS-Apps contract.
#[derive(Debug, Args)]
pub(crate) struct AppArgs {
    /// The input BIDS dataset (never written to).
    #[arg(value_name = "BIDS_DIR", required = true)]
    bids_dir: Option<PathBuf>,
    /// Where the derivatives dataset goes (may be `<BIDS_DIR>/derivatives/<name>`, not BIDS_DIR).
    #[arg(value_name = "OUTPUT_DIR", required = true)]
    output_dir: Option<PathBuf>,
    /// Analysis level.
    #[arg(value_name = "LEVEL", required = true)]
    level: Option<Level>,
    /// Participants to process, with or without `sub-` (default: all).
    #[arg(long = "participant-label", alias = "participant_label", num_args = 1..)]
    participant_label: Vec<String>,
    /// Workflow file (YAML); default: the built-in ketamine + naltrexone crossover workflow
    /// (`cbflow plan BIDS_DIR` prints what it would run).
    #[arg(long)]
    workflow: Option<PathBuf>,
    /// Working directory: every job's results under the hash of its inputs, parameters and
    /// code, so a rerun skips finished jobs and a killed run resumes (default:
    /// OUTPUT_DIR/.cbflow-work; put it on scratch on clusters).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Cores to use [default: $RAYON_NUM_THREADS, else $SLURM_CPUS_PER_TASK, else the machine's].
    #[arg(long)]
    nprocs: Option<usize>,
    /// Seed of every random draw (permutations, surrogates) [workflow's default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Template space: `MNI152NLin6Asym` (2 mm; needs resources), `phantom` (the synthetic
    /// brain of `cbflow synth`, built in), or `none` (native space only) [workflow's default:
    /// MNI152NLin6Asym].
    #[arg(long)]
    template: Option<String>,
    /// Resource directory with templates/ and atlases/ (default: $CBFLOW_RESOURCES).
    #[arg(long)]
    resources: Option<PathBuf>,
    /// Group level: permutations per contrast (exhaustive when fewer sign patterns exist)
    /// [workflow's default: 10000].
    #[arg(long)]
    permutations: Option<usize>,
    /// Group level: Gaussian smoothing (FWHM, mm) of each CBF map before the voxelwise test
    /// [workflow's default: 6].
    #[arg(long)]
    smoothing: Option<f64>,
    /// Memory budget (GB) for jobs running at once; with `--executor slurm`, the memory of each
    /// task.
    #[arg(long)]
    mem_gb: Option<f64>,
    /// Where the jobs run: here, or as SLURM jobs (participant level: one array task per
    /// participant, then the group level once all succeeded).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// Where jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Executor {
    /// In this process.
    Local,
    /// As sbatch jobs on a SLURM cluster.
    Slurm,
}

/// Options of `--executor slurm`.
#[derive(Debug, Args)]
struct SlurmArgs {
    /// SLURM partition.
    #[arg(long, value_name = "NAME")]
    slurm_partition: Option<String>,
    /// SLURM account.
    #[arg(long, value_name = "NAME")]
    slurm_account: Option<String>,
    /// Wall-time limit of each task (minutes) [default: the workflow's `time-min`].
    #[arg(long, value_name = "MIN")]
    slurm_time: Option<u64>,
    /// Submit the participant array only, without the dependent group job.
    #[arg(long)]
    slurm_no_group: bool,
    /// Run the tasks in a container instead of this binary: `podman:IMAGE` or
    /// `apptainer:FILE.sif` (BIDS_DIR, OUTPUT_DIR, --work-dir and --resources are mounted at
    /// the same paths).
    #[arg(long, value_name = "RUNTIME:IMAGE")]
    container: Option<String>,
    /// Wait until the jobs have ended and fail if one did (default: print the job ids and
    /// return).
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many minutes.
    #[arg(long, value_name = "MIN")]
    wait_timeout: Option<u64>,
}

/// BIDS-Apps analysis levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Level {
    /// One job per participant: CBF, registration, ROI values.
    Participant,
    /// The group analysis over all participants.
    Group,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a BIDS dataset: errors and warnings per file, and every ASL run resolved with the
    /// workflow's participant-level parameters, as a run would.
    Validate {
        /// The BIDS dataset.
        bids_dir: PathBuf,
        /// The workflow file (YAML) whose asl-cbf parameters the runs are checked with;
        /// default: the built-in crossover workflow.
        #[arg(long)]
        workflow: Option<PathBuf>,
    },
    /// Print the jobs a workflow would run on a dataset (nothing is run or written).
    Plan {
        /// The BIDS dataset.
        bids_dir: PathBuf,
        /// The workflow file (YAML); default: the built-in crossover workflow.
        #[arg(long)]
        workflow: Option<PathBuf>,
        /// Level to plan.
        #[arg(long, value_enum, default_value_t = Level::Participant)]
        level: Level,
        /// Participants (default: all).
        #[arg(long = "participant-label", num_args = 1..)]
        participant_label: Vec<String>,
        /// Template space (overrides the workflow's).
        #[arg(long)]
        template: Option<String>,
        /// Resource directory (default: $CBFLOW_RESOURCES).
        #[arg(long)]
        resources: Option<PathBuf>,
    },
    /// Print the JSON Schema of workflow files.
    Schema,
    /// Print the header facts of NIfTI images (like fslhd / mrinfo).
    Inspect {
        /// `.nii` or `.nii.gz` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Normalise one T1w image (with or without its skull) to a template: bias-field
    /// correction, brain extraction, brain-to-brain affine and symmetric diffeomorphic
    /// registration. Writes the brain mask, the corrected T1w in both spaces, the transforms
    /// (ITK/ANTs formats) and a QC summary (normalisation.json) into OUT_DIR.
    Normalise {
        /// The T1w image (`.nii` or `.nii.gz`).
        t1w: PathBuf,
        /// Output directory (created).
        out_dir: PathBuf,
        /// Template space: MNI152NLin6Asym or phantom.
        #[arg(long, default_value = "MNI152NLin6Asym")]
        template: String,
        /// Resource directory (default: $CBFLOW_RESOURCES).
        #[arg(long)]
        resources: Option<PathBuf>,
        /// Further images on the T1w's world space to bring into template space (trilinear),
        /// written as `<name>_space-<template>.nii.gz`.
        #[arg(long)]
        warp: Vec<PathBuf>,
    },
    /// Write a synthetic crossover study with known ground truth.
    Synth(SynthArgs),
    /// Get the templates, atlases and PET maps: list, fetch (from their published homes at
    /// pinned commits, SHA-256-checked, resumable) and verify.
    #[command(subcommand)]
    Resources(resources::ResourcesCommand),
    /// Run a plan a SLURM submission wrote (the command of its tasks): the participant
    /// part of a participant-level plan, or a group-level plan, exactly as resolved at
    /// submission.
    #[command(hide = true)]
    RunPlan {
        /// The plan file (`plan-participant.json` or `plan-group.json` in the submission's
        /// directory).
        plan: PathBuf,
        /// The participant whose jobs to run (participant-level plans: required).
        #[arg(long = "participant-label")]
        participant_label: Option<String>,
        /// The work directory shared by the tasks.
        #[arg(long)]
        work_dir: PathBuf,
        /// Cores to use.
        #[arg(long)]
        nprocs: Option<usize>,
        /// Memory budget (GB) for jobs running at once.
        #[arg(long)]
        mem_gb: Option<f64>,
    },
    /// Generate a synthetic study and run everything that works on it.
    Demo {
        /// Where the study (`OUT_DIR/bids`) and its outputs (`OUT_DIR/derivatives`) go.
        out_dir: PathBuf,
        /// Number of subjects.
        #[arg(long, default_value_t = 12)]
        subjects: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// Output directory (created; must be empty).
    out_dir: PathBuf,
    /// Number of subjects.
    #[arg(long, default_value_t = 26)]
    subjects: usize,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No effect anywhere (for false-positive checks).
    #[arg(long)]
    null: bool,
    /// Resource directory with templates/ and atlases/ (e.g. shared/data): use the MNI tissue
    /// priors and AAL3 instead of the built-in phantom.
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Make the ketamine effect follow a receptor map of the registry (e.g. `MOR`): +10 % CBF
    /// at the grey-matter mean of the map, ±6 % per standard deviation. Needs the PET maps:
    /// --resources DIR or $CBFLOW_RESOURCES.
    #[arg(long, value_name = "MAP", conflicts_with = "effect_sphere")]
    effect_map: Option<String>,
    /// Put the ketamine effect (+18 % CBF) in a sphere instead of the ACC: `X,Y,Z,R`, the
    /// centre in the study space's world mm and the radius in mm (e.g. `0,-75,18,15`, the
    /// precuneus of the phantom).
    #[arg(
        long,
        value_name = "X,Y,Z,R",
        value_parser = parse_sphere,
        allow_hyphen_values = true
    )]
    effect_sphere: Option<[f64; 4]>,
    /// Resource directory with pet/ (for --effect-map; default: --templates, then
    /// $CBFLOW_RESOURCES).
    #[arg(long)]
    resources: Option<PathBuf>,
    /// Scale of the measurement noise: the ASL/M0 voxel noise and the run-to-run global CBF
    /// fluctuation (1 = the default model; 0.25 = a four times more reliable measurement).
    /// How brain–behaviour correlations attenuate with measurement noise can be studied with it.
    #[arg(long, default_value_t = 1.0)]
    noise_scale: f64,
}

/// `X,Y,Z,R`: four numbers separated by commas.
fn parse_sphere(s: &str) -> std::result::Result<[f64; 4], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("{s:?}: {e}; expected X,Y,Z,R (four numbers, mm)"))?;
    <[f64; 4]>::try_from(v).map_err(|v| {
        format!(
            "{s:?}: {} numbers; expected X,Y,Z,R (four numbers, mm)",
            v.len()
        )
    })
}

/// Runs the command line and decides the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose, cli.quiet);
    // a level run keeps a JSON-lines copy of its log in OUTPUT_DIR/logs (when OUTPUT_DIR exists
    // at the end: bad input leaves nothing behind)
    let log_target = match (
        &cli.command,
        &cli.app.bids_dir,
        &cli.app.output_dir,
        cli.app.level,
    ) {
        (None, Some(bids), Some(out), Some(level)) => Some((bids.clone(), out.clone(), level)),
        _ => None,
    };
    let result = dispatch(cli);
    if let Err(e) = &result {
        let message = error_chain(e);
        eprintln!("error: {message}");
        let line = serde_json::json!({"level": "ERROR", "fields": {"message": message}});
        json_log().extend_from_slice(format!("{line}\n").as_bytes());
    }
    if let Some((bids, out, level)) = log_target {
        // a run that failed before writing any output leaves OUTPUT_DIR as it found it, and
        // nothing is ever written where outputs may not go (e.g. into the input dataset)
        let allowed = cbflow_bids::check_output_dir(&bids, &out).is_ok();
        let wrote_outputs = allowed
            && std::fs::read_dir(&out).is_ok_and(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .any(|e| e.file_name() != "logs")
            });
        if result.is_ok() || wrote_outputs {
            save_json_log(&out, level);
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the message already
/// shows (errors that print their source would otherwise repeat it).
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// The JSON-lines log of this process, in memory until [`save_json_log`].
static JSON_LOG: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

fn json_log() -> std::sync::MutexGuard<'static, Vec<u8>> {
    JSON_LOG.lock().unwrap_or_else(|e| e.into_inner())
}

/// `tracing` writer into [`JSON_LOG`].
struct JsonLogWriter;

impl std::io::Write for JsonLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        json_log().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the JSON-lines log to `OUTPUT_DIR/logs/cbflow-<level>-<time>-<pid>.jsonl` (one file
/// per process: SLURM tasks share OUTPUT_DIR).
fn save_json_log(out: &std::path::Path, level: Level) {
    if !out.is_dir() {
        return;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = out.join("logs").join(format!(
        "cbflow-{}-{stamp}-{}.jsonl",
        format!("{level:?}").to_lowercase(),
        std::process::id()
    ));
    let bytes = std::mem::take(&mut *json_log());
    if let Err(e) = cbflow_bids::atomic_write(&path, &bytes) {
        eprintln!("warning: could not write the log {}: {e}", path.display());
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CBFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .with_filter(filter);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(|| JsonLogWriter)
        .with_filter(tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(terminal)
        .with(json)
        .try_init();
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Validate { bids_dir, workflow }) => {
            commands::validate(&bids_dir, workflow.as_deref())
        }
        Some(Command::Plan {
            bids_dir,
            workflow,
            level,
            participant_label,
            template,
            resources,
        }) => commands::plan(
            &bids_dir,
            workflow.as_deref(),
            level,
            participant_label,
            template,
            resources,
        ),
        Some(Command::Schema) => {
            outln!("{}", cbflow_workflow::Workflow::json_schema());
            Ok(())
        }
        Some(Command::Inspect { files }) => commands::inspect(&files),
        Some(Command::Normalise {
            t1w,
            out_dir,
            template,
            resources,
            warp,
        }) => commands::normalise(&t1w, &out_dir, &template, resources, &warp),
        Some(Command::Synth(a)) => commands::synth(
            &a.out_dir,
            a.subjects,
            a.seed,
            a.null,
            a.templates,
            match (a.effect_map, a.effect_sphere) {
                (Some(m), _) => Some(commands::Effect::Map(m, a.resources)),
                (None, Some([x, y, z, r])) => Some(commands::Effect::Sphere([x, y, z], r)),
                (None, None) => None,
            },
            a.noise_scale,
        ),
        Some(Command::Resources(c)) => resources::run(c),
        Some(Command::RunPlan {
            plan,
            participant_label,
            work_dir,
            nprocs,
            mem_gb,
        }) => commands::run_plan(
            &plan,
            participant_label.as_deref(),
            work_dir,
            nprocs,
            mem_gb,
        ),
        Some(Command::Demo {
            out_dir,
            subjects,
            seed,
        }) => commands::demo(&out_dir, subjects, seed),
        None => {
            let a = cli.app;
            let (Some(bids_dir), Some(output_dir), Some(level)) =
                (a.bids_dir.clone(), a.output_dir.clone(), a.level)
            else {
                bail!("BIDS_DIR, OUTPUT_DIR and LEVEL are required");
            };
            if a.executor == Executor::Slurm {
                return commands::submit_slurm(&a, &bids_dir, &output_dir, level)
                    .context("submitting to SLURM");
            }
            commands::run_level(&a, &bids_dir, &output_dir, level).with_context(|| {
                format!("{level:?} level on {}", bids_dir.display()).to_lowercase()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// An error whose message already shows its source.
    #[derive(Debug)]
    struct Shows(std::io::Error);
    impl std::fmt::Display for Shows {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "/data/study: {}", self.0)
        }
    }
    impl std::error::Error for Shows {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_shown_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Shows(io)).context("participant level on /data/study");
        assert_eq!(
            error_chain(&e),
            "participant level on /data/study: /data/study: no such file"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
