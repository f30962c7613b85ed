//! Jobs of another level read back from OUTPUT_DIR (the BIDS-App contract): the group level
//! uses the participant derivatives a participant run published, and never recomputes them.
//!
//! A prerequisite job (a participant job a group job reads) that is not in the work
//! directory's cache is looked up in `OUTPUT_DIR/logs/provenance-<level>.json`: the record of
//! the same job id with the same cache key (same operation, parameters, inputs and cbflow
//! build), and the files it lists, each still in OUTPUT_DIR with its recorded size and
//! SHA-256. Those files are then hard-linked (copied across file systems) into the cache as
//! that job's finished directory, so the group job sees them as if the job had just run. A
//! prerequisite found neither way stops the run before any job starts, naming each missing
//! job and why, and the command that makes it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cache::{Done, HashCache, OutputFile};
use crate::error::{Error, Result, io_err};
use crate::plan::{Job, Plan};
use crate::spec::Level;

#[derive(Deserialize)]
struct Record {
    code_id: Option<String>,
    #[serde(default)]
    jobs: Vec<RecordJob>,
}

#[derive(Deserialize)]
struct RecordJob {
    id: String,
    key: String,
    status: String,
    #[serde(default)]
    compute_seconds: Option<f64>,
    #[serde(default)]
    outputs: Option<Vec<OutputFile>>,
}

/// The provenance file of `level` in `output_dir`.
pub(crate) fn provenance_path(output_dir: &Path, level: Level) -> PathBuf {
    output_dir
        .join("logs")
        .join(format!("provenance-{level}.json"))
}

/// For every prerequisite job of `plan` not finished in `jobs_dir`, makes its cache entry from
/// OUTPUT_DIR. Returns which jobs were so read (plan order). Fails, before anything is run,
/// when any prerequisite is neither cached nor published with matching contents.
pub(crate) fn read_prerequisites(
    plan: &Plan,
    keys: &[String],
    jobs_dir: &Path,
    hashes: &HashCache,
    code: &str,
) -> Result<Vec<bool>> {
    let mut read = vec![false; plan.jobs.len()];
    let mut missing: Vec<String> = Vec::new();
    let mut records: std::collections::BTreeMap<Level, Option<Record>> = Default::default();
    for (i, job) in plan.jobs.iter().enumerate() {
        if !job.prerequisite || jobs_dir.join(&keys[i]).join("done.json").is_file() {
            continue;
        }
        let path = provenance_path(&plan.output_dir, job.level);
        let record = records.entry(job.level).or_insert_with(|| {
            std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        });
        match adopt(plan, job, &keys[i], record.as_ref(), code, jobs_dir, hashes) {
            Ok(()) => {
                tracing::info!("{}: read from {}", job.id, plan.output_dir.display());
                read[i] = true;
            }
            Err(why) => missing.push(format!("  {}: {why}", job.id)),
        }
    }
    if missing.is_empty() {
        return Ok(read);
    }
    let level = plan
        .jobs
        .iter()
        .find(|j| j.prerequisite)
        .map(|j| j.level)
        .unwrap_or(Level::Participant);
    Err(Error::Prerequisites {
        output_dir: plan.output_dir.clone(),
        level,
        message: format!(
            "{}\nthe {} level does not recompute them: run `cbflow {} {} {level}` (with the same workflow and options) first",
            missing.join("\n"),
            plan.level,
            plan.bids_dir.display(),
            plan.output_dir.display(),
        ),
    })
}

/// Checks `job`'s published outputs against its record and links them into the cache as
/// `<jobs_dir>/<key>`; the error says why it cannot.
fn adopt(
    plan: &Plan,
    job: &Job,
    key: &str,
    record: Option<&Record>,
    code: &str,
    jobs_dir: &Path,
    hashes: &HashCache,
) -> std::result::Result<(), String> {
    let (out, id) = (&plan.output_dir, job.id.as_str());
    let Some(record) = record else {
        return Err("not in the work directory's cache, and OUTPUT_DIR has no readable logs/provenance record of the participant level".into());
    };
    if !record.jobs.iter().any(|j| j.id == id) {
        return Err(
            "not in the work directory's cache, and no participant run into OUTPUT_DIR made it"
                .into(),
        );
    }
    let Some(rec) = record.jobs.iter().find(|j| j.id == id && j.key == key) else {
        let build = match &record.code_id {
            Some(c) if c != code => format!(" (they were made by `{c}`, this is `{code}`)"),
            _ => String::new(),
        };
        return Err(format!(
            "the outputs in OUTPUT_DIR were made with other parameters, inputs or another cbflow build{build}"
        ));
    };
    if !matches!(rec.status.as_str(), "ran" | "cached" | "read-from-outputs") {
        return Err(format!("its participant run ended `{}`", rec.status));
    }
    let Some(files) = &rec.outputs else {
        return Err("its record lists no output files (written by an older cbflow)".into());
    };
    for f in files {
        let p = out.join(&f.path);
        let ok = std::fs::metadata(&p).map(|m| m.len()).ok() == Some(f.bytes)
            && hashes.hash(&p).ok().as_deref() == Some(f.sha256.as_str());
        if !ok {
            return Err(format!(
                "{} is missing or was changed since the participant level wrote it",
                p.display()
            ));
        }
    }
    let tmp = jobs_dir.join(format!("{key}.tmp"));
    let link = || -> Result<()> {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        for f in files {
            let (from, to) = (out.join(&f.path), tmp.join("out").join(&f.path));
            let parent = to.parent().expect("inside out/");
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(io_err(&to))?;
            }
        }
        let done = Done {
            key: key.to_string(),
            job: id.to_string(),
            op: job.op.kind().name().to_string(),
            files: files.clone(),
            seconds: rec.compute_seconds.unwrap_or(0.0),
        };
        let bytes = serde_json::to_vec_pretty(&done).expect("plain data");
        cbflow_bids::atomic_write(&tmp.join("done.json"), &bytes)?;
        let dir = jobs_dir.join(key);
        std::fs::rename(&tmp, &dir).map_err(io_err(&dir))
    };
    link().map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        format!("linking its outputs into the work directory: {e}")
    })
}
