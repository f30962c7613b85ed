//! Integration tests of cbflow-image against the shared public data and synthetic volumes.

mod corrupt;
mod describe;
mod inventory;
mod masks;
mod resample;
mod roundtrip;
mod smooth;

use std::path::PathBuf;

/// The shared data directory; panics with a clear message when it is absent.
pub fn data_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(
        d.join("INVENTORY.tsv").is_file(),
        "shared test data not found at {} (expected /work/shared/data with INVENTORY.tsv)",
        d.display()
    );
    d
}
