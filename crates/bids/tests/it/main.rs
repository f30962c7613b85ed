//! Integration tests of cbflow-bids.

mod derivatives;
mod examples;
mod inheritance;
mod tables;
mod validation;

use std::path::{Path, PathBuf};

/// The test-data folder (`cbflow_testdata::data_dir`), for the BIDS examples.
pub fn data_dir() -> PathBuf {
    cbflow_testdata::data_dir()
}

/// One of the BIDS ASL example datasets.
pub fn example(name: &str) -> PathBuf {
    let p = data_dir().join("bids-examples").join(name);
    assert!(
        p.is_dir(),
        "BIDS example {name} not found at {}",
        p.display()
    );
    p
}

/// Writes `content` at `root/rel`, creating directories.
pub fn put(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A minimal `dataset_description.json`.
pub fn put_description(root: &Path) {
    put(
        root,
        "dataset_description.json",
        r#"{"Name": "test", "BIDSVersion": "1.10.0", "DatasetType": "raw"}"#,
    );
}
