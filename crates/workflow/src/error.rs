use std::path::PathBuf;

/// Errors of the workflow crate: reading and checking a workflow file, resolving it against a
/// dataset, and running the plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Submitting to or waiting for SLURM failed (the message names the command and its output).
    #[error("{0}")]
    Slurm(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The workflow file is not valid YAML for the format: syntax, an unknown key, a wrong
    /// type, a missing field (located by the YAML parser).
    #[error("{origin}:{line}:{column}: {message}\n{snippet}")]
    Parse {
        /// The workflow file (or `<builtin ...>`).
        origin: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
        /// The offending line with a caret under the column.
        snippet: String,
    },
    /// The workflow parses but does not make sense: a duplicate step id, an input that names
    /// an output no step makes, a cycle between steps, a parameter out of range.
    #[error("{origin}:{line}:{column}: {message}\n{snippet}")]
    Invalid {
        /// The workflow file (or `<builtin ...>`).
        origin: String,
        /// 1-based line of the offending step, input or value.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong and what was expected.
        message: String,
        /// The offending line with a caret under the column.
        snippet: String,
    },
    /// The workflow does not fit the dataset or the request (no matching files, an unknown
    /// participant, a missing resource directory).
    #[error("{path}: {message}")]
    Resolve {
        /// The dataset, file or directory concerned.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A job failed; the jobs that finished are cached and a rerun resumes from there.
    #[error("job {job} failed: {message}")]
    JobFailed {
        /// The job id (`step/sub-label` or `step`).
        job: String,
        /// The cause.
        message: String,
    },
    /// Jobs of another level that this level reads are neither in the work directory's cache
    /// nor published in OUTPUT_DIR with matching contents (the group level does not recompute
    /// participant jobs).
    #[error(
        "{output_dir}: the outputs of the {level} level this run reads are not there:\n{message}"
    )]
    Prerequisites {
        /// The derivatives directory.
        output_dir: PathBuf,
        /// The level whose outputs are missing.
        level: crate::spec::Level,
        /// Each missing job and why, then what to run.
        message: String,
    },
    /// An operation this build cannot run.
    #[error("job {job}: operation `{op}` is not available in this build: {message}")]
    NotAvailable {
        /// The job id.
        job: String,
        /// The operation.
        op: String,
        /// What is missing.
        message: String,
    },
    /// Invalid execution options.
    #[error("{option}: {message}")]
    Options {
        /// The option (`nprocs`, `mem_gb`, `work_dir`).
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A BIDS problem while resolving the plan.
    #[error(transparent)]
    Bids(#[from] cbflow_bids::Error),
    /// A request the pipeline's checks refuse before anything runs (labels, output directory,
    /// dataset validation, ASL runs that cannot be planned).
    #[error(transparent)]
    Pipeline(#[from] cbflow_pipeline::Error),
}

/// Result alias of the workflow crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The line `line` (1-based) of `text` with a caret under `column` (1-based, in characters).
pub(crate) fn snippet(text: &str, line: u64, column: u64) -> String {
    let Some(l) = text.lines().nth(line.saturating_sub(1) as usize) else {
        return String::new();
    };
    let num = line.to_string();
    let pad = " ".repeat(num.len());
    let caret: String = l
        .chars()
        .take(column.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!("{pad} |\n{num} | {l}\n{pad} | {caret}^")
}
