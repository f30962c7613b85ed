//! `cbflow resources list | fetch | verify`: the terminal side of `cbflow_resources::fetch`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cbflow_resources::fetch::{self, Event, FileState, Manifest, Outcome, Source};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What `cbflow resources` was asked.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ResourcesCommand {
    /// List the resources that can be fetched, each file with its state in the resource
    /// directory (present, missing; `verify` checks content).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Fetch resources (default: all) into the resource directory from their published homes
    /// at pinned commits, each file checked against its SHA-256 before it is kept; a cut
    /// download resumes where it stopped on the next fetch.
    Fetch {
        /// Resource names (`cbflow resources list`), e.g. `MNI152NLin6Asym MOR KOR`.
        names: Vec<String>,
        /// Copy from a local directory laid out the same way (an offline copy, shared/data)
        /// instead of downloading.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Check every file present in the resource directory against its pinned SHA-256 (with
    /// NAMEs: those resources, which must be complete).
    Verify {
        /// Resource names (default: every file present).
        names: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// The resource directory [default: $CBFLOW_RESOURCES, else the user cache directory,
    /// e.g. ~/.cache/cbflow].
    #[arg(long, value_name = "DIR")]
    resources: Option<PathBuf>,
    /// A manifest other than the built-in one (same format as registry/resources.tsv, e.g.
    /// pointing at a mirror).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

impl Common {
    fn dir(&self) -> Result<PathBuf> {
        cbflow_resources::fetch_dir(self.resources.as_deref()).context(
            "no resource directory: pass --resources DIR or set CBFLOW_RESOURCES (there is no home directory for the user cache)",
        )
    }

    fn manifest(&self) -> Result<Manifest> {
        Ok(match &self.manifest {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the manifest {}", p.display()))?;
                Manifest::parse(&text, &p.display().to_string())?
            }
            None => Manifest::builtin()?,
        })
    }
}

pub(crate) fn run(command: ResourcesCommand) -> Result<()> {
    match command {
        ResourcesCommand::List { common } => list(&common),
        ResourcesCommand::Fetch {
            names,
            from,
            common,
        } => fetch_into(&names, from.as_deref(), &common),
        ResourcesCommand::Verify { names, common } => verify(&names, &common),
    }
}

fn list(common: &Common) -> Result<()> {
    let manifest = common.manifest()?;
    let dir = common.dir()?;
    outln!("# resource directory: {}", dir.display());
    outln!("name\tpath\tstate\turl");
    for e in manifest.entries() {
        let state = if dir.join(&e.path).is_file() {
            "present"
        } else {
            "missing"
        };
        outln!("{}\t{}\t{state}\t{}", e.name, e.path, e.url);
    }
    Ok(())
}

fn fetch_into(names: &[String], from: Option<&Path>, common: &Common) -> Result<()> {
    let manifest = common.manifest()?;
    let entries = manifest.select(names)?;
    let dir = common.dir()?;
    if let Some(from) = from
        && !from.is_dir()
    {
        bail!("--from {}: not a directory", from.display());
    }
    let source = from.map_or(Source::Published, Source::Dir);
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(0)
    } else {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left  {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let n = entries.len();
    let mut i = 0;
    tracing::info!(
        "fetching {n} file(s) of {} into {}",
        describe(names),
        dir.display()
    );
    let results = fetch::fetch(&entries, &dir, source, &mut |event| match event {
        Event::Start { entry, .. } => {
            i += 1;
            bar.set_prefix(format!("{i}/{n}"));
            bar.set_message(entry.path.clone());
            bar.set_length(0);
            bar.set_position(0);
        }
        Event::Bytes { done, total } => {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        }
        Event::Done { entry, outcome } => match outcome {
            Ok(Outcome::AlreadyThere) => {}
            Ok(Outcome::Downloaded {
                bytes,
                resumed_from,
            }) => bar.suspend(|| {
                let resumed = if *resumed_from > 0 {
                    format!(", resumed after {resumed_from} bytes")
                } else {
                    String::new()
                };
                tracing::info!("{}: {bytes} bytes, SHA-256 verified{resumed}", entry.path);
            }),
            Ok(Outcome::Copied) => {
                bar.suspend(|| tracing::info!("{}: copied, SHA-256 verified", entry.path))
            }
            Err(e) => bar.suspend(|| tracing::error!("{e}")),
        },
    })?;
    bar.finish_and_clear();
    let there = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(Outcome::AlreadyThere)))
        .count();
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(e, _)| e.path.as_str())
        .collect();
    let got = n - there - failed.len();
    tracing::info!(
        "{got} fetched, {there} already there, {} failed ({})",
        failed.len(),
        dir.display()
    );
    if !failed.is_empty() {
        bail!(
            "{} of {n} file(s) not fetched: {} (the errors above say why; nothing unverified was kept)",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn describe(names: &[String]) -> String {
    if names.is_empty() {
        "every resource".into()
    } else {
        names.join(", ")
    }
}

fn verify(names: &[String], common: &Common) -> Result<()> {
    let manifest = common.manifest()?;
    let entries = manifest.select(names)?;
    let dir = common.dir()?;
    let (mut ok, mut missing, mut bad) = (0usize, Vec::new(), Vec::new());
    for e in &entries {
        match fetch::file_state(&dir, e) {
            FileState::Verified => ok += 1,
            FileState::Missing => missing.push(e.path.as_str()),
            FileState::Modified(found) => {
                outln!(
                    "modified: {} (SHA-256 {}, pinned {})",
                    dir.join(&e.path).display(),
                    found.as_deref().unwrap_or("unreadable"),
                    e.sha256
                );
                bad.push(e.path.as_str());
            }
        }
    }
    outln!(
        "{ok} file(s) as pinned, {} modified, {} not fetched ({})",
        bad.len(),
        missing.len(),
        dir.display()
    );
    if !bad.is_empty() {
        bail!(
            "{} file(s) differ from their pins: {}; `cbflow resources fetch` replaces them",
            bad.len(),
            bad.join(", ")
        );
    }
    if !names.is_empty() && !missing.is_empty() {
        bail!(
            "{} incomplete: missing {}; `cbflow resources fetch {}` fetches them",
            names.join(", "),
            missing.join(", "),
            names.join(" ")
        );
    }
    Ok(())
}
