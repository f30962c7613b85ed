//! The built-in registry against the files in shared/data.

use std::collections::BTreeSet;
use std::path::Path;

use cbflow_resources::Registry;

use crate::data_dir;

fn nifti_files(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            nifti_files(&p, root, out);
        } else if p.to_string_lossy().ends_with(".nii.gz") || p.to_string_lossy().ends_with(".nii")
        {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn every_registered_file_exists() {
    let root = data_dir();
    let reg = Registry::builtin().unwrap();
    for r in &reg.receptors {
        assert!(
            root.join(&r.file).is_file(),
            "{}: {} missing",
            r.name,
            r.file
        );
    }
    for p in &reg.parcellations {
        assert!(
            root.join(&p.file).is_file(),
            "{}: {} missing",
            p.name,
            p.file
        );
        assert!(
            root.join(&p.labels).is_file(),
            "{}: {} missing",
            p.name,
            p.labels
        );
    }
    for e in &reg.excluded {
        assert!(
            root.join(&e.file).exists(),
            "excluded {} does not exist",
            e.file
        );
    }
}

#[test]
fn every_pet_nifti_is_registered_or_excluded() {
    let root = data_dir();
    let reg = Registry::builtin().unwrap();
    let mut files = Vec::new();
    nifti_files(&root.join("pet"), &root, &mut files);
    assert!(files.len() >= 30, "only {} NIfTIs under pet/", files.len());
    let registered: BTreeSet<&str> = reg.receptors.iter().map(|r| r.file.as_str()).collect();
    let mut unaccounted = Vec::new();
    for f in &files {
        let excluded = reg
            .excluded
            .iter()
            .any(|e| f == &e.file || f.starts_with(&format!("{}/", e.file)));
        if !registered.contains(f.as_str()) && !excluded {
            unaccounted.push(f.clone());
        }
    }
    assert!(
        unaccounted.is_empty(),
        "NIfTIs under pet/ neither registered nor excluded: {unaccounted:?}"
    );
}
