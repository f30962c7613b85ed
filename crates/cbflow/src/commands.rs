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
