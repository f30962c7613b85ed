//! Integration tests of cbflow-image against the shared public data and synthetic volumes.

mod corrupt;
mod describe;
mod inventory;
mod masks;
mod resample;
mod roundtrip;
mod smooth;

use std::path::PathBuf;

/// The test-data folder (`cbflow_testdata::data_dir`: `$CBFLOW_TEST_DATA`, else `shared/data`).
pub fn data_dir() -> PathBuf {
    cbflow_testdata::data_dir()
}
