//! The built-in resource manifest against `../shared/data`: every file it pins is there with
//! that content, and every file the receptor registry names can be fetched (or is said not to
//! be, with the reason).

use cbflow_resources::Registry;
use cbflow_resources::fetch::{BUILTIN_MANIFEST, FileState, Manifest, file_state};

use crate::data_dir;

#[test]
fn every_pin_of_the_manifest_matches_the_shared_data() {
    let data = data_dir();
    let m = Manifest::builtin().unwrap();
    let bad: Vec<String> = m
        .entries()
        .iter()
        .filter_map(|e| match file_state(&data, e) {
            FileState::Verified => None,
            other => Some(format!("{}: {other:?}", e.path)),
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(m.names().contains(&"MNI152NLin6Asym"));
}

#[test]
fn every_registered_file_can_be_fetched_or_says_why_not() {
    let m = Manifest::builtin().unwrap();
    let registry = Registry::builtin().unwrap();
    let not_fetchable: Vec<&str> = BUILTIN_MANIFEST
        .lines()
        .filter_map(|l| l.strip_prefix("# not fetchable: "))
        .filter_map(|l| l.split(':').next())
        .collect();
    let mut files: Vec<(&str, &str)> = registry
        .receptors
        .iter()
        .map(|r| (r.name.as_str(), r.file.as_str()))
        .collect();
    for p in &registry.parcellations {
        files.push((&p.name, &p.file));
        files.push((&p.name, &p.labels));
    }
    for (name, file) in files {
        match m.for_path(file) {
            Some(e) => assert_eq!(e.name, name, "{file}: listed under another name"),
            None => assert!(
                not_fetchable.contains(&file),
                "{file} ({name}) is neither in the manifest nor listed as not fetchable"
            ),
        }
    }
}
