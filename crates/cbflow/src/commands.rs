//! One function per command: call the library, print for people.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

pub(crate) fn validate(bids_dir: &Path, workflow: Option<&Path>) -> Result<()> {
    let report = cbflow_bids::validate(bids_dir)
        .with_context(|| format!("validating {}", bids_dir.display()))?;
    let mut n_err = report
        .issues
        .iter()
        .filter(|i| i.severity == cbflow_bids::Severity::Error)
        .count();
    let mut n_warn = report.issues.len() - n_err;
    if !report.issues.is_empty() {
        outln!("{report}");
    }
    // the runs as the participant level resolves them, with the workflow's parameters
    if n_err == 0 {
        let wf = load_workflow(workflow)?;
        let asl = wf.asl_step().map(|p| p.asl_options()).unwrap_or_default();
        let layout = cbflow_bids::Layout::index(bids_dir)?;
        for step in &wf.steps {
            let cbflow_workflow::Op::CrossoverGroup(p) = &step.value.params.value else {
                continue;
            };
            match cbflow_pipeline::design_preflight(&layout, &p.design.study_design()) {
                Ok((_, left_out)) => {
                    for (sub, why) in left_out {
                        outln!(
                            "sub-{sub}\n  warning: not in the crossover group step `{}`: {why}",
                            *step.value.id
                        );
                        n_warn += 1;
                    }
                }
                Err(e) => {
                    outln!(
                        "crossover design of step `{}`\n  error: {e}",
                        *step.value.id
                    );
                    n_err += 1;
                }
            }
        }
        for run in layout.asl_runs()? {
            match cbflow_pipeline::plan_run(&run, &asl) {
                Ok(p) => {
                    for note in &p.notes {
                        outln!("{}\n  warning: {note}", run.asl.rel_path.display());
                        n_warn += 1;
                    }
                }
                Err(e) => {
                    outln!("{}\n  error: {e}", run.asl.rel_path.display());
                    n_err += 1;
                }
            }
        }
    }
    outln!("{}: {n_err} errors, {n_warn} warnings", bids_dir.display());
    if n_err > 0 {
        bail!("{} is not valid ({n_err} errors)", bids_dir.display());
    }
    Ok(())
}

/// `cbflow normalise T1W OUT_DIR`: one T1w to a template, with the files a user (or another
/// tool) needs.
pub(crate) fn normalise(
    t1w_path: &Path,
    out_dir: &Path,
    template: &str,
    resources: Option<PathBuf>,
    warp: &[PathBuf],
) -> Result<()> {
    let choice = match template {
        "phantom" => cbflow_pipeline::TemplateChoice::Phantom,
        "MNI152NLin6Asym" => cbflow_pipeline::TemplateChoice::Mni152NLin6Asym {
            resources: cbflow_resources::resource_dir(resources.as_deref()).with_context(|| {
                format!(
                    "template MNI152NLin6Asym needs its files: run `cbflow resources fetch MNI152NLin6Asym`, or pass --resources DIR or set {}",
                    cbflow_pipeline::RESOURCES_ENV
                )
            })?,
        },
        other => bail!("--template {other:?}: expected MNI152NLin6Asym or phantom"),
    };
    let tpl = cbflow_pipeline::Template::load(&choice)?;
    let n = cbflow_pipeline::normalise_to_dir(t1w_path, out_dir, &tpl, warp)?;
    outln!(
        "{}: normalised to {} in {:.1} s ({}; brain-mask Dice with the template {:.3}, affine determinant {:.2}); outputs in {}",
        t1w_path.display(),
        tpl.name,
        n.seconds,
        if n.skull_stripped_input {
            "skull-stripped input"
        } else {
            "brain extracted"
        },
        n.brain_dice,
        n.affine_determinant,
        out_dir.display()
    );
    Ok(())
}

pub(crate) fn inspect(files: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            outln!();
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

/// Where `synth` puts the ketamine effect, when not in the ACC.
pub(crate) enum Effect {
    /// Following a receptor map of the registry (its name, the resource directory).
    Map(String, Option<PathBuf>),
    /// In a sphere (centre in world mm, radius in mm).
    Sphere([f64; 3], f64),
}

pub(crate) fn synth(
    out_dir: &Path,
    subjects: usize,
    seed: u64,
    null: bool,
    templates: Option<PathBuf>,
    effect: Option<Effect>,
    noise_scale: f64,
) -> Result<()> {
    if !(noise_scale.is_finite() && noise_scale > 0.0 && noise_scale <= 10.0) {
        bail!("--noise-scale {noise_scale}: expected a number above 0 and at most 10");
    }
    let mut spec = cbflow_synth::SynthSpec {
        subjects,
        seed,
        null,
        templates: templates.clone(),
        ..Default::default()
    };
    spec.noise.asl_sigma *= noise_scale;
    spec.noise.run_global_sd *= noise_scale;
    if let Some(Effect::Sphere(centre, radius)) = effect {
        let space = match &templates {
            Some(dir) => cbflow_synth::Space::from_resources(dir)?,
            None => cbflow_synth::Space::phantom(),
        };
        spec.effect = cbflow_synth::EffectPattern::sphere(&space, centre, radius)?;
        tracing::info!(
            "the ketamine effect is within {radius} mm of {centre:?} mm, not in the ACC"
        );
    } else if let Some(Effect::Map(name, resources)) = effect {
        let resources = cbflow_resources::resource_dir(resources.or(templates.clone()).as_deref())
            .with_context(|| {
                format!(
                    "--effect-map {name} needs the PET maps: run `cbflow resources fetch {name}`, or pass --resources DIR or set {}",
                    cbflow_pipeline::RESOURCES_ENV
                )
            })?;
        let registry = cbflow_resources::Registry::builtin()?;
        let entry = registry.receptor(&name).with_context(|| {
            format!(
                "--effect-map {name:?} is not in the receptor registry; known maps: {}",
                registry
                    .receptors
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        // the map on the grid of the study's space (the phantom or the MNI template)
        let choice = match &templates {
            Some(dir) => cbflow_pipeline::TemplateChoice::Mni152NLin6Asym {
                resources: dir.clone(),
            },
            None => cbflow_pipeline::TemplateChoice::Phantom,
        };
        let template = cbflow_pipeline::Template::load(&choice)?;
        let map = cbflow_pipeline::load_receptor_map(entry, &resources, &template)?;
        spec.effect = cbflow_synth::EffectPattern::from_z_map(&entry.name, &map.z, 0.10, 0.06);
        tracing::info!(
            "the ketamine effect follows {} ({:.0} % of grey matter covered)",
            entry.name,
            100.0 * map.coverage
        );
    }
    let t = Instant::now();
    tracing::info!(
        "writing a synthetic study of {subjects} subjects to {}",
        out_dir.display()
    );
    let s = cbflow_synth::generate(&spec, out_dir)
        .with_context(|| format!("cbflow synth {}", out_dir.display()))?;
    outln!(
        "{}: {} subjects, {} files, truth in {} space ({:.1} s)",
        s.root.display(),
        s.subjects.len(),
        s.files,
        s.space,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn workflow_level(level: crate::Level) -> cbflow_workflow::Level {
    match level {
        crate::Level::Participant => cbflow_workflow::Level::Participant,
        crate::Level::Group => cbflow_workflow::Level::Group,
    }
}

fn load_workflow(path: Option<&Path>) -> Result<cbflow_workflow::Workflow> {
    Ok(match path {
        Some(p) => cbflow_workflow::Workflow::from_path(p)?,
        None => cbflow_workflow::Workflow::builtin(),
    })
}

fn template_override(name: Option<&str>) -> Result<Option<cbflow_workflow::TemplateName>> {
    name.map(|t| {
        t.parse::<cbflow_workflow::TemplateName>().map_err(|e| {
            anyhow::anyhow!("--template {t:?}: {e} (expected MNI152NLin6Asym, phantom or none)")
        })
    })
    .transpose()
}

/// `cbflow plan`: the resolved plan, printed.
pub(crate) fn plan(
    bids_dir: &Path,
    workflow: Option<&Path>,
    level: crate::Level,
    participant_labels: Vec<String>,
    template: Option<String>,
    resources: Option<PathBuf>,
) -> Result<()> {
    let wf = load_workflow(workflow)?;
    let plan = cbflow_workflow::plan(
        &wf,
        &cbflow_workflow::PlanRequest {
            bids_dir: bids_dir.to_path_buf(),
            output_dir: bids_dir.join("derivatives").join("cbflow"),
            level: workflow_level(level),
            participant_labels,
            overrides: cbflow_workflow::Overrides {
                template: template_override(template.as_deref())?,
                resources_dir: resources,
                ..Default::default()
            },
        },
    )?;
    use std::io::Write as _;
    match write!(std::io::stdout().lock(), "{plan}") {
        // `cbflow plan ... | head` closes the pipe early: not an error
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The default work directory: inside OUTPUT_DIR, hidden, so that a later run (another
/// container, another node) finds the cache.
pub(crate) fn default_work_dir(output_dir: &Path) -> PathBuf {
    output_dir.join(".cbflow-work")
}

/// True when `out` holds only logs and the work directory: no job published an output.
fn nothing_published(out: &Path) -> bool {
    std::fs::read_dir(out).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).all(|e| {
            let name = e.file_name();
            name == "logs" || name == ".cbflow-work"
        })
    })
}

/// The workflow parameters the command line sets.
fn overrides(a: &crate::AppArgs) -> Result<cbflow_workflow::Overrides> {
    Ok(cbflow_workflow::Overrides {
        template: template_override(a.template.as_deref())?,
        resources_dir: a.resources.clone(),
        permutations: a.permutations,
        seed: a.seed,
        smoothing_fwhm_mm: a.smoothing,
        cluster_threshold: None,
    })
}

/// A BIDS-Apps level run here: check the request (nothing is written on bad input), resolve
/// the workflow into a plan, execute it with the cache.
pub(crate) fn run_level(
    a: &crate::AppArgs,
    bids_dir: &Path,
    output_dir: &Path,
    level: crate::Level,
) -> Result<()> {
    let overrides = overrides(a)?;
    let exec = LevelRun {
        workflow: a.workflow.clone(),
        participant_labels: a.participant_label.clone(),
        overrides,
        work_dir: a.work_dir.clone(),
        nprocs: a.nprocs,
        mem_gb: a.mem_gb,
    };
    execute_level(&exec, bids_dir, output_dir, level)
}

/// What a level run needs besides the dataset.
pub(crate) struct LevelRun {
    workflow: Option<PathBuf>,
    participant_labels: Vec<String>,
    overrides: cbflow_workflow::Overrides,
    work_dir: Option<PathBuf>,
    nprocs: Option<usize>,
    mem_gb: Option<f64>,
}

/// The dataset's validation warnings, counted (each at debug level).
fn warn_validation(warnings: &[String], bids_dir: &Path) {
    if warnings.is_empty() {
        return;
    }
    for w in warnings {
        tracing::debug!("{w}");
    }
    tracing::warn!(
        "{} validation warnings (missing RECOMMENDED fields and the like); `cbflow validate {}` lists them",
        warnings.len(),
        bids_dir.display()
    );
}

fn execute_level(
    a: &LevelRun,
    bids_dir: &Path,
    output_dir: &Path,
    level: crate::Level,
) -> Result<()> {
    let wf = load_workflow(a.workflow.as_deref())?;
    // the request checked and planned, before anything is written
    let resolved = cbflow_workflow::resolve(
        &wf,
        &cbflow_workflow::PlanRequest {
            bids_dir: bids_dir.to_path_buf(),
            output_dir: output_dir.to_path_buf(),
            level: workflow_level(level),
            participant_labels: a.participant_labels.clone(),
            overrides: a.overrides.clone(),
        },
    )?;
    warn_validation(&resolved.warnings, bids_dir);
    let work_dir = a
        .work_dir
        .clone()
        .unwrap_or_else(|| default_work_dir(output_dir));
    execute_plan(&resolved.plan, work_dir, a.nprocs, a.mem_gb)
}

/// `cbflow run-plan`: the plan a SLURM submission resolved and wrote (a participant task runs
/// its participant's part), executed as a local run executes its own.
pub(crate) fn run_plan(
    path: &Path,
    participant: Option<&str>,
    work_dir: PathBuf,
    nprocs: Option<usize>,
    mem_gb: Option<f64>,
) -> Result<()> {
    let plan = cbflow_workflow::read_plan(path)?;
    let plan = match (plan.level, participant) {
        (cbflow_workflow::Level::Participant, Some(label)) => plan.for_participant(label)?,
        (cbflow_workflow::Level::Participant, None) => bail!(
            "{}: a participant-level plan runs one participant at a time: give --participant-label",
            path.display()
        ),
        (cbflow_workflow::Level::Group, Some(_)) => bail!(
            "{}: a group-level plan runs as a whole: no --participant-label",
            path.display()
        ),
        (cbflow_workflow::Level::Group, None) => plan,
    };
    execute_plan(&plan, work_dir, nprocs, mem_gb)
}

/// Executes a resolved plan with the cache in `work_dir` and prints what each job did.
fn execute_plan(
    plan: &cbflow_workflow::Plan,
    work_dir: PathBuf,
    nprocs: Option<usize>,
    mem_gb: Option<f64>,
) -> Result<()> {
    let output_dir = plan.output_dir.as_path();
    let mut exec = cbflow_workflow::ExecOptions::new(work_dir);
    if let Some(n) = nprocs {
        exec.nprocs = n;
    }
    if let Some(m) = mem_gb {
        exec.mem_gb = m;
    }
    let created_out = !output_dir.exists();
    let s = match cbflow_workflow::execute(plan, &exec) {
        Ok(s) => s,
        Err(e) => {
            // a run that failed before publishing anything leaves no OUTPUT_DIR behind
            if created_out && nothing_published(output_dir) {
                let _ = std::fs::remove_dir_all(output_dir);
            }
            return Err(e.into());
        }
    };
    for j in &s.jobs {
        // a step with nothing to do (e.g. receptor maps without PET maps) has warned why
        let files = match j.files {
            0 => "no outputs".to_string(),
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        outln!(
            "{:<28} {:<10} {:>7.1} s  {files}",
            j.id,
            j.status.as_str(),
            j.seconds,
        );
    }
    // a job that ran but had nothing to do (it warned why) is not counted as computed
    let idle = s
        .jobs
        .iter()
        .filter(|j| j.status == cbflow_workflow::JobStatus::Ran && j.files == 0)
        .count();
    outln!(
        "{} jobs ({} computed{}, {} from the cache{}) in {:.1} s; outputs in {}; provenance in {}",
        s.jobs.len(),
        s.count(cbflow_workflow::JobStatus::Ran) - idle,
        if idle > 0 {
            format!(", {idle} with nothing to do")
        } else {
            String::new()
        },
        s.count(cbflow_workflow::JobStatus::Cached),
        match s.count(cbflow_workflow::JobStatus::ReadFromOutputs) {
            0 => String::new(),
            n => format!(", {n} read from {}", output_dir.display()),
        },
        s.seconds,
        output_dir.display(),
        s.provenance.display()
    );
    Ok(())
}

pub(crate) fn demo(out_dir: &Path, subjects: usize, seed: u64) -> Result<()> {
    let bids = out_dir.join("bids");
    let deriv = out_dir.join("derivatives").join("cbflow");
    synth(&bids, subjects, seed, false, None, None, 1.0)?;
    validate(&bids, None)?;
    let run = LevelRun {
        workflow: None,
        participant_labels: Vec::new(),
        overrides: cbflow_workflow::Overrides {
            template: Some(cbflow_workflow::TemplateName::Phantom),
            permutations: Some(2000),
            seed: Some(seed),
            ..Default::default()
        },
        work_dir: None,
        nprocs: None,
        mem_gb: None,
    };
    execute_level(&run, &bids, &deriv, crate::Level::Participant)?;
    execute_level(&run, &bids, &deriv, crate::Level::Group)?;
    outln!(
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
    use cbflow_workflow::slurm::{Launcher, Request, SubmitOptions};
    let bids_dir = absolute(bids_dir)?;
    let output_dir = absolute(output_dir)?;
    // the resolve step of a local run: bad input fails before anything is submitted
    let wf = load_workflow(a.workflow.as_deref())?;
    let overrides = overrides(a)?;
    let request = |level, participant_labels| cbflow_workflow::PlanRequest {
        bids_dir: bids_dir.clone(),
        output_dir: output_dir.clone(),
        level,
        participant_labels,
        overrides: overrides.clone(),
    };
    let resolved = cbflow_workflow::resolve(
        &wf,
        &request(workflow_level(level), a.participant_label.clone()),
    )?;
    warn_validation(&resolved.warnings, &bids_dir);
    let (participant_plan, group_plan) = match level {
        crate::Level::Group => (None, Some(resolved.plan)),
        // the array, and the group job after it unless asked not to
        crate::Level::Participant => {
            let group = (!a.slurm.slurm_no_group)
                .then(|| {
                    cbflow_workflow::plan(
                        &wf,
                        &request(cbflow_workflow::Level::Group, resolved.participants),
                    )
                })
                .transpose()?;
            (Some(resolved.plan), group)
        }
    };
    // the work directory is shared, so the group job finds the participant jobs in the cache
    let req = Request::from_plans(
        participant_plan.as_ref(),
        group_plan.as_ref(),
        &SubmitOptions {
            bids_dir: bids_dir.clone(),
            work_dir: a
                .work_dir
                .clone()
                .unwrap_or_else(|| default_work_dir(&output_dir)),
            cpus: a.nprocs,
            participant_mem_gb: a.mem_gb,
            time_min: a.slurm.slurm_time,
            partition: a.slurm.slurm_partition.clone(),
            account: a.slurm.slurm_account.clone(),
            launcher: Launcher::parse(a.slurm.container.as_deref())?,
        },
    )?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = output_dir.join("logs").join(format!("slurm-{stamp}"));
    let created_out = !output_dir.exists();
    let s = match cbflow_workflow::slurm::submit(&req, &dir) {
        Ok(s) => s,
        Err(e) => {
            // nothing was queued (or only the array, which the message names): leave no trace
            if created_out {
                let _ = std::fs::remove_dir_all(&output_dir);
            } else {
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_dir(output_dir.join("logs"));
            }
            return Err(e.into());
        }
    };
    if let Some(id) = &s.participant_job {
        outln!(
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
                outln!("submitted group job {id} (starts after every task of {p} succeeded)")
            }
            None => outln!("submitted group job {id}"),
        }
    }
    outln!("scripts and logs: {}", s.dir.display());
    if a.slurm.wait {
        cbflow_workflow::slurm::wait(
            &s,
            std::time::Duration::from_secs(2),
            a.slurm
                .wait_timeout
                .map(|m| std::time::Duration::from_secs(m * 60)),
        )?;
        outln!("all SLURM jobs completed");
    }
    Ok(())
}
