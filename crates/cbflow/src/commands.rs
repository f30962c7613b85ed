//! One function per command: call the library, print for people.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

pub(crate) fn validate(bids_dir: &Path) -> Result<()> {
    let report = cbflow_bids::validate(bids_dir)
        .with_context(|| format!("validating {}", bids_dir.display()))?;
    let n_err = report
        .issues
        .iter()
        .filter(|i| i.severity == cbflow_bids::Severity::Error)
        .count();
    let n_warn = report.issues.len() - n_err;
    if !report.issues.is_empty() {
        println!("{report}");
    }
    println!("{}: {n_err} errors, {n_warn} warnings", bids_dir.display());
    if n_err > 0 {
        bail!("{} is not valid ({n_err} errors)", bids_dir.display());
    }
    Ok(())
}

pub(crate) fn inspect(files: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match cbflow_image::describe(f) {
            Ok(d) => print!("{d}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be read", files.len());
    }
    Ok(())
}

pub(crate) fn synth(
    out_dir: &Path,
    subjects: usize,
    seed: u64,
    null: bool,
    templates: Option<PathBuf>,
) -> Result<()> {
    let spec = cbflow_synth::SynthSpec {
        subjects,
        seed,
        null,
        templates,
        ..Default::default()
    };
    let t = Instant::now();
    tracing::info!(
        "writing a synthetic study of {subjects} subjects to {}",
        out_dir.display()
    );
    let s = cbflow_synth::generate(&spec, out_dir)
        .with_context(|| format!("cbflow synth {}", out_dir.display()))?;
    println!(
        "{}: {} subjects, {} files, truth in {} space ({:.1} s)",
        s.root.display(),
        s.subjects.len(),
        s.files,
        s.space,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Resolves `--template` and `--resources` (or `$CBFLOW_RESOURCES`).
pub(crate) fn template_choice(
    name: &str,
    resources: Option<PathBuf>,
) -> Result<Option<cbflow_pipeline::TemplateChoice>> {
    use cbflow_pipeline::{RESOURCES_ENV, TemplateChoice};
    match name {
        "none" => Ok(None),
        "phantom" => Ok(Some(TemplateChoice::Phantom)),
        "MNI152NLin6Asym" => {
            let dir = resources.or_else(|| std::env::var_os(RESOURCES_ENV).map(PathBuf::from)).with_context(|| {
                format!("template MNI152NLin6Asym needs its files: pass --resources DIR or set {RESOURCES_ENV} (a directory with templates/ and atlases/), or use --template none for native-space outputs only")
            })?;
            Ok(Some(TemplateChoice::Mni152NLin6Asym { resources: dir }))
        }
        other => bail!("unknown --template {other:?}: expected MNI152NLin6Asym, phantom or none"),
    }
}

pub(crate) fn participant(
    bids_dir: &Path,
    output_dir: &Path,
    labels: Vec<String>,
    template: Option<cbflow_pipeline::TemplateChoice>,
) -> Result<()> {
    let opts = cbflow_pipeline::ParticipantOptions {
        bids_dir: bids_dir.to_path_buf(),
        output_dir: output_dir.to_path_buf(),
        participant_labels: labels,
        asl: cbflow_pipeline::AslOptions::default(),
        template,
    };
    let s = cbflow_pipeline::participant(&opts)?;
    for w in &s.warnings {
        tracing::debug!("{w}");
    }
    if !s.warnings.is_empty() {
        tracing::warn!(
            "{} validation warnings (missing RECOMMENDED fields and the like); `cbflow validate {}` lists them",
            s.warnings.len(),
            bids_dir.display()
        );
    }
    for (sub, n) in &s.asl_runs {
        println!("sub-{sub}: {n} ASL runs quantified");
    }
    println!(
        "{} files written to {}",
        s.files.len(),
        output_dir.display()
    );
    Ok(())
}

pub(crate) fn group(
    bids_dir: &Path,
    output_dir: &Path,
    template: cbflow_pipeline::TemplateChoice,
    permutations: usize,
    seed: u64,
    smoothing: f64,
) -> Result<()> {
    let opts = cbflow_pipeline::GroupOptions {
        bids_dir: bids_dir.to_path_buf(),
        output_dir: output_dir.to_path_buf(),
        template: cbflow_pipeline::Template::load(&template)?,
        design: cbflow_pipeline::StudyDesign::default(),
        n_permutations: permutations,
        seed,
        smoothing_fwhm_mm: smoothing,
        cluster_threshold: 3.1,
    };
    let s = cbflow_pipeline::group(&opts)?;
    println!(
        "group level: {} subjects ({} left out)",
        s.subjects.len(),
        s.excluded.len()
    );
    for (name, v, t, c) in &s.contrasts {
        println!(
            "  {name:<26} FWE p < 0.05: {v:>6} voxels (max-T), {t:>6} voxels (TFCE), {c:>3} clusters"
        );
    }
    println!(
        "{} group-level files written to {}",
        s.files.len(),
        output_dir.display()
    );
    Ok(())
}

pub(crate) fn demo(out_dir: &Path, subjects: usize, seed: u64) -> Result<()> {
    let bids = out_dir.join("bids");
    let deriv = out_dir.join("derivatives").join("cbflow");
    synth(&bids, subjects, seed, false, None)?;
    validate(&bids)?;
    participant(
        &bids,
        &deriv,
        vec![],
        Some(cbflow_pipeline::TemplateChoice::Phantom),
    )?;
    group(
        &bids,
        &deriv,
        cbflow_pipeline::TemplateChoice::Phantom,
        2000,
        seed,
        6.0,
    )?;
    println!(
        "demo: study in {}, outputs in {}",
        bids.display(),
        deriv.display()
    );
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

/// `--executor slurm`: checks the request as the local run would, then submits the participant
/// array (one task per participant) and the group job that depends on it.
pub(crate) fn submit_slurm(
    a: &crate::AppArgs,
    bids_dir: &Path,
    output_dir: &Path,
    level: crate::Level,
) -> Result<()> {
    use crate::slurm::{Launcher, Request, Resources};
    let bids_dir = absolute(bids_dir)?;
    let output_dir = absolute(output_dir)?;
    let template = template_choice(&a.template, a.resources.clone())?;
    let participants = match level {
        crate::Level::Participant => {
            let pre =
                cbflow_pipeline::participant_preflight(&cbflow_pipeline::ParticipantOptions {
                    bids_dir: bids_dir.clone(),
                    output_dir: output_dir.clone(),
                    participant_labels: a.participant_label.clone(),
                    asl: cbflow_pipeline::AslOptions::default(),
                    template: template.clone(),
                })?;
            pre.participants
        }
        crate::Level::Group => {
            if template.is_none() {
                bail!(
                    "the group level works in template space: --template none is not possible here"
                );
            }
            cbflow_bids::check_output_dir(&bids_dir, &output_dir)?;
            Vec::new()
        }
    };
    if let Some(cbflow_pipeline::TemplateChoice::Mni152NLin6Asym { resources }) = &template
        && !resources.is_dir()
    {
        bail!("--resources {}: not a directory", resources.display());
    }
    // options both levels get, with absolute paths (tasks may start elsewhere)
    let mut forward = vec![
        "--template".to_string(),
        a.template.clone(),
        "--seed".into(),
        a.seed.to_string(),
        "--permutations".into(),
        a.permutations.to_string(),
        "--smoothing".into(),
        a.smoothing.to_string(),
    ];
    let mut extra_mounts = Vec::new();
    if let Some(cbflow_pipeline::TemplateChoice::Mni152NLin6Asym { resources }) = &template {
        let r = absolute(resources)?;
        forward.extend(["--resources".into(), r.display().to_string()]);
        extra_mounts.push((r, true));
    }
    if let Some(w) = &a.workflow {
        let w = absolute(w)?;
        forward.extend(["--workflow".into(), w.display().to_string()]);
        extra_mounts.push((w, true));
    }
    if let Some(w) = &a.work_dir {
        let w = absolute(w)?;
        forward.extend(["--work-dir".into(), w.display().to_string()]);
        extra_mounts.push((w, false));
    }
    let mni = matches!(
        template,
        Some(cbflow_pipeline::TemplateChoice::Mni152NLin6Asym { .. })
    );
    let cpus = a.nprocs.unwrap_or(2).max(1);
    let req = Request {
        bids_dir: bids_dir.clone(),
        output_dir: output_dir.clone(),
        group: level == crate::Level::Group || !a.slurm.slurm_no_group,
        participants,
        forward,
        extra_mounts,
        participant_resources: Resources {
            cpus,
            mem_gb: a.mem_gb.unwrap_or(if mni { 6.0 } else { 2.0 }),
            time_min: a.slurm.slurm_time,
        },
        group_resources: Resources {
            cpus,
            mem_gb: a.mem_gb.unwrap_or(if mni { 12.0 } else { 4.0 }).max(2.0),
            time_min: a.slurm.slurm_time,
        },
        partition: a.slurm.slurm_partition.clone(),
        account: a.slurm.slurm_account.clone(),
        launcher: Launcher::parse(a.slurm.container.as_deref())?,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = output_dir.join("logs").join(format!("slurm-{stamp}"));
    let created_out = !output_dir.exists();
    let s = match crate::slurm::submit(&req, &dir) {
        Ok(s) => s,
        Err(e) => {
            // nothing was queued (or only the array, which the message names): leave no trace
            if created_out {
                let _ = std::fs::remove_dir_all(&output_dir);
            } else {
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_dir(output_dir.join("logs"));
            }
            return Err(e);
        }
    };
    if let Some(id) = &s.participant_job {
        println!(
            "submitted participant array job {id}: {} tasks ({})",
            s.participants.len(),
            s.participants
                .iter()
                .map(|l| format!("sub-{l}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(id) = &s.group_job {
        match &s.participant_job {
            Some(p) => {
                println!("submitted group job {id} (starts after every task of {p} succeeded)")
            }
            None => println!("submitted group job {id}"),
        }
    }
    println!("scripts and logs: {}", s.dir.display());
    if a.slurm.wait {
        crate::slurm::wait(
            &s,
            std::time::Duration::from_secs(2),
            a.slurm
                .wait_timeout
                .map(|m| std::time::Duration::from_secs(m * 60)),
        )?;
        println!("all SLURM jobs completed");
    }
    Ok(())
}
