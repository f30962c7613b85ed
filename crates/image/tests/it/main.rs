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

/// The voxels of a 3D volume (panics on a 4D one).
pub fn voxels(v: &cbflow_image::Volume) -> ndarray::ArrayView3<'_, f32> {
    v.data
        .view()
        .into_dimensionality::<ndarray::Ix3>()
        .expect("a 3D volume")
}

/// The voxels of a 3D volume, to write (panics on a 4D one).
pub fn voxels_mut(v: &mut cbflow_image::Volume) -> ndarray::ArrayViewMut3<'_, f32> {
    v.data
        .view_mut()
        .into_dimensionality::<ndarray::Ix3>()
        .expect("a 3D volume")
}
