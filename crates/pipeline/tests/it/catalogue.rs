//! Every file the levels wrote is one the catalogue names, every kind that should be there is,
//! and the kinds each level writes are those of `snapshots/` (`CBFLOW_UPDATE_SNAPSHOTS=1`
//! rewrites them; review the diff).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cbflow_bids::{Layout, Query};
use cbflow_pipeline::catalogue::{AnatFile, GroupFile, Inference, RunFile, StatMap, TemplateSpace};

use crate::levels;

/// Written by every level (`cbflow_bids::DerivativesWriter::create`), not a kind of the catalogue.
const DATASET_DESCRIPTION: &str = "dataset_description.json";

/// A kind, with `sidecar` when the file is the kind's JSON sidecar.
fn kind(descriptor: String, sidecar: bool) -> String {
    if sidecar {
        format!("{descriptor} sidecar")
    } else {
        descriptor
    }
}

/// What the participant level's files are, found from the names alone (`identify`): each data
/// file's kind, then each JSON file's as the sidecar of one of them; `None` for a file that is
/// no kind of the catalogue.
fn participant_kinds(written: &[PathBuf]) -> BTreeMap<PathBuf, Option<String>> {
    let mut kinds = BTreeMap::new();
    let mut sidecars = BTreeMap::new();
    for rel in written {
        let named = if let Some((f, e)) = RunFile::identify(rel) {
            let side = f.sidecar_path(Path::new(""), &e).unwrap();
            Some((format!("RunFile::{f:?}"), side))
        } else if let Some((f, e)) = AnatFile::identify(rel) {
            let side = f.sidecar_path(Path::new(""), &e).unwrap();
            Some((format!("AnatFile::{f:?}"), side))
        } else {
            None
        };
        if let Some((k, side)) = named {
            if let Some(s) = side {
                sidecars.insert(s, kind(k.clone(), true));
            }
            kinds.insert(rel.clone(), Some(k));
        }
    }
    for rel in written {
        if !kinds.contains_key(rel) {
            let k = if rel == Path::new(DATASET_DESCRIPTION) {
                Some(DATASET_DESCRIPTION.to_string())
            } else {
                sidecars.get(rel).cloned()
            };
            kinds.insert(rel.clone(), k);
        }
    }
    kinds
}

/// The files the participant level should have written for the study: every run kind for each
/// ASL run (but ATT, of multi-delay runs: these are single-delay) and every anatomical kind for
/// each T1w, with their sidecars.
fn participant_expected(bids: &Path, space: &TemplateSpace) -> BTreeSet<PathBuf> {
    let layout = Layout::index(bids).unwrap();
    let mut want = BTreeSet::from([PathBuf::from(DATASET_DESCRIPTION)]);
    let runs = layout.asl_runs().unwrap();
    assert_eq!(runs.len(), 4 * crate::SUBJECTS, "two sessions of two runs");
    for run in runs {
        for f in RunFile::all(space) {
            if f != RunFile::Att {
                want.insert(f.rel_path(&run.entities).unwrap());
                want.extend(f.sidecar_path(Path::new(""), &run.entities).unwrap());
            }
        }
    }
    let t1ws = layout.query(&Query::new().suffix("T1w").nifti());
    assert_eq!(t1ws.len(), 2 * crate::SUBJECTS, "a T1w per session");
    for t1w in t1ws {
        for f in AnatFile::all(&space.space) {
            want.insert(f.rel_path(&t1w.entities).unwrap());
            want.extend(f.sidecar_path(Path::new(""), &t1w.entities).unwrap());
        }
    }
    want
}

/// The files the crossover group level should have written: per contrast, every map and the
/// cluster table; the group tables; each with its sidecar. Each with its kind.
fn group_expected(space: &TemplateSpace, contrasts: &[String]) -> BTreeMap<PathBuf, String> {
    let mut files = vec![
        GroupFile::Contrasts,
        GroupFile::RoiValues,
        GroupFile::RoiTtests,
        GroupFile::BrainBehaviour,
        GroupFile::BrainBehaviourPoints,
        GroupFile::Lmm,
    ];
    let maps = [
        StatMap::T,
        StatMap::Effect,
        StatMap::Tfce,
        StatMap::Logp(Inference::Uncorrected),
        StatMap::Logp(Inference::VoxelFwe),
        StatMap::Logp(Inference::TfceUncorrected),
        StatMap::Logp(Inference::TfceFwe),
        StatMap::Logp(Inference::ClusterFwe),
    ];
    for c in contrasts {
        for m in maps {
            files.push(GroupFile::stat_map(&space.space, &space.res, c, m));
        }
        files.push(GroupFile::clusters(&space.space, &space.res, c));
    }
    let mut want = BTreeMap::new();
    for f in files {
        let k = format!("GroupFile::{f:?}");
        want.insert(f.rel_path().unwrap(), kind(k.clone(), false));
        want.insert(f.sidecar_path(Path::new("")).unwrap(), kind(k, true));
    }
    want
}

/// Files written but not wanted, and wanted but not written.
fn differences(
    written: &BTreeSet<PathBuf>,
    want: &BTreeSet<PathBuf>,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    (
        written.difference(want).cloned().collect(),
        want.difference(written).cloned().collect(),
    )
}

#[test]
fn every_participant_file_is_a_kind_of_the_catalogue() {
    let l = levels();
    let kinds = participant_kinds(&l.participant);
    let unnamed: Vec<&PathBuf> = kinds
        .iter()
        .filter(|(_, k)| k.is_none())
        .map(|(p, _)| p)
        .collect();
    assert!(unnamed.is_empty(), "no kind of the catalogue: {unnamed:#?}");
    let space = TemplateSpace::new(&l.template.name, &l.template.res);
    let written: BTreeSet<PathBuf> = l.participant.iter().cloned().collect();
    let (extra, missing) = differences(&written, &participant_expected(&l.bids, &space));
    assert!(
        extra.is_empty() && missing.is_empty(),
        "written but not expected: {extra:#?}\nexpected but not written: {missing:#?}"
    );
    let list: BTreeSet<String> = kinds.into_values().flatten().collect();
    check_snapshot("participant-kinds", &list);
}

#[test]
fn every_group_file_is_a_kind_of_the_catalogue() {
    let l = levels();
    let space = TemplateSpace::new(&l.template.name, &l.template.res);
    let contrasts: Vec<String> = cbflow_pipeline::written_contrasts(&l.out)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    let declared: Vec<String> = cbflow_pipeline::GroupContrast::defaults(&l.design)
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(contrasts, declared, "the contrasts table");
    let want = group_expected(&space, &contrasts);
    let written: BTreeSet<PathBuf> = l.group.iter().cloned().collect();
    let (extra, missing) = differences(&written, &want.keys().cloned().collect());
    assert!(
        extra.is_empty() && missing.is_empty(),
        "written but no kind of the catalogue: {extra:#?}\nexpected but not written: {missing:#?}"
    );
    // the group level reads the participant level and writes nothing below a subject
    assert!(
        l.group.iter().all(|p| p.components().count() == 1),
        "{:#?}",
        l.group
    );
    let list: BTreeSet<String> = written.iter().map(|p| want[p].clone()).collect();
    check_snapshot("group-kinds", &list);
}

/// Compares `kinds` with `snapshots/<name>.txt` (a missing snapshot lists none);
/// `CBFLOW_UPDATE_SNAPSHOTS=1` rewrites it.
fn check_snapshot(name: &str, kinds: &BTreeSet<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/it/snapshots/{name}.txt"));
    if std::env::var_os("CBFLOW_UPDATE_SNAPSHOTS").is_some() {
        let text: String = kinds.iter().map(|k| format!("{k}\n")).collect();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let snapshot = std::fs::read_to_string(&path).unwrap_or_default();
    let listed: BTreeSet<String> = snapshot.lines().map(str::to_string).collect();
    let lost: Vec<&String> = listed.difference(kinds).collect();
    let new: Vec<&String> = kinds.difference(&listed).collect();
    assert!(
        lost.is_empty() && new.is_empty(),
        "{}: the kinds written differ (CBFLOW_UPDATE_SNAPSHOTS=1 rewrites it; review the diff)\nno longer written: {lost:#?}\nnewly written: {new:#?}",
        path.display()
    );
}
