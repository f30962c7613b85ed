//! Integration tests of cbflow-resources: the built-in registry against the files in
//! shared/data.

mod manifest;
mod registry;

use std::path::PathBuf;

/// `../shared/data` beside the repository.
pub fn data_dir() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        p.join("pet").is_dir(),
        "test data not found at {} (expected the shared data folder with pet/ and atlases/)",
        p.display()
    );
    p
}
