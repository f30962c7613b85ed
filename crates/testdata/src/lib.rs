//! Where cbflow's test suite finds its data, resolved the way cbflow resolves its resources.
//!
//! The suite reads two kinds of files, by their paths in `shared/data`:
//!
//! * **resources** (templates, atlases, PET maps: the files `cbflow resources fetch` installs):
//!   [`resource`] and [`resource_root`] look in `$CBFLOW_TEST_DATA`, then in the resource
//!   directory cbflow itself reads (`$CBFLOW_RESOURCES`, else the user cache that `cbflow
//!   resources fetch` fills), then in `shared/data` beside the workspace;
//! * **scanner data and whole-folder checks** (`real-asl/`, `real-anat/`, `bids-examples/`,
//!   `INVENTORY.tsv`): [`data_dir`] is `$CBFLOW_TEST_DATA`, else `shared/data` beside the
//!   workspace.
//!
//! When nothing has a file the test panics with what it looked for, where, and the command that
//! fetches it (or, for data that is not a fetchable resource, where to put a copy).
//!
//! It also holds the small fixtures that tests and examples of more than one crate share
//! ([`one_roi_workflow`], [`schaefer_centres`], [`in_ellipsoid`]).

use std::path::{Path, PathBuf};

/// The environment variable naming a test-data folder laid out like `shared/data`.
pub const TEST_DATA_ENV: &str = "CBFLOW_TEST_DATA";

/// `shared/data` beside the workspace (`<workspace>/../shared/data`).
fn beside_workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The places searched for a resource, in order, each with how the message names it.
fn resource_roots() -> Vec<(String, Option<PathBuf>)> {
    vec![
        (
            format!("${TEST_DATA_ENV}"),
            std::env::var_os(TEST_DATA_ENV).map(PathBuf::from),
        ),
        (
            format!(
                "the resource directory (${}, else the user cache {})",
                cbflow_resources::RESOURCES_ENV,
                cbflow_resources::user_cache_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "(no home directory)".into())
            ),
            cbflow_resources::resource_dir(None),
        ),
        (
            "shared/data beside the workspace".into(),
            Some(beside_workspace()),
        ),
    ]
}

/// What was searched, for a panic message.
fn searched(roots: &[(String, Option<PathBuf>)]) -> String {
    roots
        .iter()
        .map(|(what, dir)| match dir {
            Some(d) => format!("{what}: {}", d.display()),
            None => format!("{what}: unset"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first of the resource roots that holds every path of `rels` (files or folders, relative
/// to a directory laid out like `shared/data`): what a test passes as `--resources`. Panics,
/// naming the first missing path and the command that fetches it, when none holds them all.
pub fn resource_root(rels: &[&str]) -> PathBuf {
    let roots = resource_roots();
    if let Some(dir) = roots
        .iter()
        .filter_map(|(_, d)| d.as_ref())
        .find(|d| rels.iter().all(|r| d.join(r).exists()))
    {
        return dir.clone();
    }
    let missing = rels
        .iter()
        .find(|r| {
            !roots
                .iter()
                .filter_map(|(_, d)| d.as_ref())
                .any(|d| d.join(r).exists())
        })
        .copied()
        .unwrap_or(rels.first().copied().unwrap_or(""));
    panic!(
        "test data not found: no directory holds {} (first missing anywhere: {missing}). Looked in {}. \
         To get it, {}, or set {TEST_DATA_ENV} to a folder laid out like shared/data.",
        rels.join(", "),
        searched(&roots),
        cbflow_resources::fetch::fetch_hint(missing),
    )
}

/// The first resource root holding every file that the built-in manifest lists for the
/// resources `names` (e.g. `MNI152NLin6Asym`, `MOR`): the same files `cbflow resources fetch
/// NAME…` installs.
pub fn resources_for(names: &[&str]) -> PathBuf {
    let manifest =
        cbflow_resources::fetch::Manifest::builtin().expect("the built-in manifest parses");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let files = manifest
        .select(&names)
        .unwrap_or_else(|e| panic!("test asks for an unknown resource: {e}"));
    let rels: Vec<&str> = files.iter().map(|e| e.path.as_str()).collect();
    resource_root(&rels)
}

/// A resource file or folder by its path in `shared/data` (e.g.
/// `templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz`), from the first resource root
/// that has it.
pub fn resource(rel: &str) -> PathBuf {
    resource_root(&[rel]).join(rel)
}

/// The whole test-data folder: `$CBFLOW_TEST_DATA`, else `shared/data` beside the workspace.
/// For scanner data (`real-asl/`, `real-anat/`, `bids-examples/`) and for checks of the folder
/// itself; resources are better found with [`resource`]. Panics with where it looked.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os(TEST_DATA_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(beside_workspace);
    assert!(
        dir.is_dir(),
        "test data not found: {} is not a directory. The test suite reads the shared data folder \
         (real scanner series, BIDS examples, templates, atlases, PET maps) from \
         ${TEST_DATA_ENV}, else from shared/data beside the workspace; see shared/data/README.md.",
        dir.display()
    );
    dir
}

/// A path inside [`data_dir`], which must exist (panics naming it otherwise).
pub fn data(rel: &str) -> PathBuf {
    let p = data_dir().join(rel);
    assert!(
        p.exists(),
        "test data not found: {} (from {rel} in the test-data folder; see shared/data/README.md)",
        p.display()
    );
    p
}

/// The text of a one-step workflow (`one-roi.yaml`): `asl-cbf` on the phantom template with one
/// region, `name`, of the atlas labels `labels` (e.g. `"151"` or `"151, 152"`). Tests of the
/// plan and of the command line use it to declare a region the atlas has or lacks.
pub fn one_roi_workflow(name: &str, labels: &str) -> String {
    format!(
        "version: 1
name: one-roi
steps:
  - id: cbf
    op: asl-cbf
    inputs:
      asl: {{bids: {{datatype: perf, suffix: asl}}}}
      t1w: {{bids: {{datatype: anat, suffix: T1w}}}}
    params:
      template: phantom
      rois: [{{name: {name}, labels: [{labels}]}}]
"
    )
}

/// The Schaefer parcel centroids in mm (`n` parcels, 7 networks) from Hansen et al.'s
/// repository (`pet/hansen_receptors/PET_parcellated_schaefer/Schaefer_{n}_centres.txt` in the
/// test-data folder: a name column, then x y z). Panics naming the file when it cannot be read.
pub fn schaefer_centres(n: usize) -> Vec<[f64; 3]> {
    let path = data_dir().join(format!(
        "pet/hansen_receptors/PET_parcellated_schaefer/Schaefer_{n}_centres.txt"
    ));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<f64> = l
                .split_whitespace()
                .skip(1)
                .map(|v| v.parse().unwrap())
                .collect();
            [f[0], f[1], f[2]]
        })
        .collect()
}

/// Where voxel `idx` of a grid of `shape` lies in the ellipsoid centred on the grid with
/// semi-axes `n / 2 - margin` voxels, as synthetic head phantoms are drawn: the coordinates `u`
/// scaled to the unit sphere and their norm `rho`; `None` outside (`rho > 1`).
pub fn in_ellipsoid(idx: [usize; 3], shape: [usize; 3], margin: f64) -> Option<([f64; 3], f64)> {
    let u: [f64; 3] = std::array::from_fn(|a| {
        let (c, r) = (
            (shape[a] as f64 - 1.0) / 2.0,
            shape[a] as f64 / 2.0 - margin,
        );
        (idx[a] as f64 - c) / r
    });
    let rho = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt();
    (rho <= 1.0).then_some((u, rho))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_missing_everywhere_names_what_fetches_it() {
        let err =
            std::panic::catch_unwind(|| resource_root(&["templates/MNI152NLin6Asym/none.nii.gz"]))
                .expect_err("no directory has that file");
        let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            text.contains("templates/MNI152NLin6Asym/none.nii.gz"),
            "{text}"
        );
        assert!(text.contains("Looked in"), "{text}");
        assert!(text.contains(TEST_DATA_ENV), "{text}");
    }

    #[test]
    fn the_ellipsoid_is_centred_and_bounded_by_its_margin() {
        let shape = [9, 7, 5];
        // the centre voxel is at the origin
        assert_eq!(in_ellipsoid([4, 3, 2], shape, 0.6), Some(([0.0; 3], 0.0)));
        // a corner is outside; along x the semi-axis is 9 / 2 - 0.6 = 3.9 voxels
        assert_eq!(in_ellipsoid([0, 0, 0], shape, 0.6), None);
        assert_eq!(in_ellipsoid([8, 3, 2], shape, 0.6), None);
        let (u, rho) = in_ellipsoid([7, 3, 2], shape, 0.6).unwrap();
        assert!(
            (u[0] - 3.0 / 3.9).abs() < 1e-12 && u[1] == 0.0 && u[2] == 0.0,
            "{u:?}"
        );
        assert_eq!(rho, u[0]);
        // a larger margin shrinks it
        assert_eq!(in_ellipsoid([7, 3, 2], shape, 2.0), None);
    }
}
