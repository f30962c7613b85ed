//! Integration tests of cbflow-resources: the built-in registry against the files in
//! shared/data.

mod manifest;
mod registry;

use std::path::PathBuf;

/// The test-data folder (`cbflow_testdata::data_dir`): the manifest and registry are checked against the whole shared copy.
pub fn data_dir() -> PathBuf {
    cbflow_testdata::data_dir()
}
