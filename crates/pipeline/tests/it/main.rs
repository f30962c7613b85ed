//! The pipeline's public API on a tiny synthetic study (`cbflow-synth`: three subjects, two
//! sessions of two pCASL runs each, three label/control pairs, the phantom template): the
//! participant level, then the crossover group level with few permutations. Every file each
//! level writes is one the catalogue names, the kinds written match `snapshots/`, and the CBF
//! recovers the study's truth.
//!
//! Three subjects: the group level needs at least three complete subjects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cbflow_pipeline::{GroupOptions, ParticipantOptions, StudyDesign, Template, TemplateChoice};

mod catalogue;
mod truth;

/// Subjects of the study.
pub(crate) const SUBJECTS: usize = 3;

/// The study and what each level wrote, made once per test binary.
pub(crate) struct Levels {
    _tmp: tempfile::TempDir,
    /// The BIDS input (with the truth under `derivatives/truth`).
    pub(crate) bids: PathBuf,
    /// OUTPUT_DIR of both levels.
    pub(crate) out: PathBuf,
    /// The template of the participant level.
    pub(crate) template: Template,
    /// The group level's design.
    pub(crate) design: StudyDesign,
    /// Paths (relative to `out`) written by the participant level, sorted.
    pub(crate) participant: Vec<PathBuf>,
    /// Paths (relative to `out`) the group level added, sorted.
    pub(crate) group: Vec<PathBuf>,
}

/// The study, run through both levels.
pub(crate) fn levels() -> &'static Levels {
    static LEVELS: OnceLock<Levels> = OnceLock::new();
    LEVELS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let bids = tmp.path().join("bids");
        let out = tmp.path().join("out");
        let mut spec = cbflow_synth::SynthSpec {
            subjects: SUBJECTS,
            seed: 7,
            ..Default::default()
        };
        spec.protocol.pairs = 3;
        cbflow_synth::generate(&spec, &bids).unwrap();
        cbflow_pipeline::participant(&ParticipantOptions::new(
            bids.clone(),
            out.clone(),
            Some(TemplateChoice::Phantom),
        ))
        .expect("participant level");
        let participant = files_under(&out);
        let template = Template::phantom();
        let design = StudyDesign::default();
        cbflow_pipeline::group(&GroupOptions {
            n_permutations: 16,
            seed: 1,
            ..GroupOptions::new(bids.clone(), out.clone(), template.clone())
        })
        .expect("group level");
        let before: BTreeSet<&PathBuf> = participant.iter().collect();
        let group = files_under(&out)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        Levels {
            _tmp: tmp,
            bids,
            out,
            template,
            design,
            participant,
            group,
        }
    })
}

/// Every file below `dir`, relative to it, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}
