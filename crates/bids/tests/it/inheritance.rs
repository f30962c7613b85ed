//! The inheritance principle: sidecars at several levels, applicability by entities and suffix,
//! deeper files overriding shallower ones.

use std::path::Path;

use cbflow_bids::{Layout, Query};

use crate::{put, put_description};

#[test]
fn sidecars_at_several_levels_override_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put_description(r);
    put(
        r,
        "asl.json",
        r#"{"MagneticFieldStrength": 3, "M0Type": "Absent", "Manufacturer": "Root", "LabelingDuration": 1.8}"#,
    );
    put(r, "acq-pcasl_asl.json", r#"{"Manufacturer": "RootAcq"}"#);
    put(
        r,
        "sub-01/sub-01_asl.json",
        r#"{"PostLabelingDelay": 1.5, "M0Type": "Separate"}"#,
    );
    put(
        r,
        "sub-01/ses-1/perf/sub-01_ses-1_acq-pcasl_asl.json",
        r#"{"PostLabelingDelay": 2.0}"#,
    );
    put(r, "sub-01/ses-1/perf/sub-01_ses-1_acq-pcasl_asl.nii.gz", "");
    put(r, "sub-01/ses-1/perf/sub-01_ses-1_acq-other_asl.nii.gz", "");
    // not applicable: other suffix, other run, other subject
    put(
        r,
        "sub-01/ses-1/perf/sub-01_ses-1_acq-pcasl_m0scan.json",
        r#"{"Foo": 1}"#,
    );
    put(
        r,
        "sub-01/ses-1/perf/sub-01_ses-1_acq-pcasl_run-2_asl.json",
        r#"{"PostLabelingDelay": 9.0}"#,
    );
    put(r, "sub-02/sub-02_asl.json", r#"{"PostLabelingDelay": 7.0}"#);
    put(r, "sub-02/perf/sub-02_asl.nii.gz", "");
    // ignored trees
    put(
        r,
        "derivatives/x/sub-01/perf/sub-01_asl.json",
        r#"{"PostLabelingDelay": 8.0}"#,
    );
    put(r, "sourcedata/sub-01_asl.json", "not json");
    put(r, ".git/config", "");

    let layout = Layout::index(r).unwrap();
    assert_eq!(layout.subjects(), ["01", "02"]);
    assert_eq!(layout.sessions("01"), ["1"]);
    assert!(layout.sessions("02").is_empty());
    assert!(layout.unparsed().is_empty(), "{:?}", layout.unparsed());
    assert!(
        layout
            .files()
            .iter()
            .all(|f| !f.rel_path.starts_with("derivatives"))
    );

    let pcasl = layout.query(
        &Query::new()
            .sub("01")
            .ses("1")
            .suffix("asl")
            .nifti()
            .entity("acq", "pcasl"),
    );
    assert_eq!(pcasl.len(), 1);
    let f = pcasl[0];
    assert_eq!(f.datatype.as_deref(), Some("perf"));
    let chain: Vec<&Path> = layout
        .sidecars(f)
        .iter()
        .map(|s| s.rel_path.as_path())
        .collect();
    assert_eq!(
        chain,
        [
            Path::new("asl.json"),
            Path::new("acq-pcasl_asl.json"),
            Path::new("sub-01/sub-01_asl.json"),
            Path::new("sub-01/ses-1/perf/sub-01_ses-1_acq-pcasl_asl.json"),
        ]
    );
    let md = layout.metadata(f).unwrap();
    assert_eq!(md["PostLabelingDelay"], 2.0); // deepest wins
    assert_eq!(md["M0Type"], "Separate"); // subject level overrides root
    assert_eq!(md["Manufacturer"], "RootAcq"); // root file with the acq entity overrides plain root
    assert_eq!(md["MagneticFieldStrength"], 3); // only at the root
    assert_eq!(md["LabelingDuration"], 1.8);
    assert!(!md.contains_key("Foo"));

    let other = layout.query(
        &Query::new()
            .sub("01")
            .suffix("asl")
            .nifti()
            .entity("acq", "other"),
    );
    let md = layout.metadata(other[0]).unwrap();
    assert_eq!(md["PostLabelingDelay"], 1.5);
    assert_eq!(md["Manufacturer"], "Root");

    let s2 = layout.query(&Query::new().sub("02").suffix("asl").nifti());
    let md = layout.metadata(s2[0]).unwrap();
    assert_eq!(md["PostLabelingDelay"], 7.0);
    assert_eq!(md["M0Type"], "Absent");
}

#[test]
fn broken_sidecar_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put_description(r);
    put(r, "sub-01/perf/sub-01_asl.json", "{ not json");
    put(r, "sub-01/perf/sub-01_asl.nii.gz", "");
    let layout = Layout::index(r).unwrap();
    let f = layout.query(&Query::new().suffix("asl").nifti())[0];
    let e = layout.metadata(f).unwrap_err().to_string();
    assert!(
        e.contains("sub-01_asl.json") && e.contains("invalid JSON"),
        "{e}"
    );
}

#[test]
fn index_needs_dataset_description_and_reports_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put(r, "sub-01/anat/sub-01_T1w.nii.gz", "");
    let e = Layout::index(r).unwrap_err().to_string();
    assert!(e.contains("dataset_description.json"), "{e}");
    put_description(r);
    put(r, "sub-01/anat/sub-01_run-1_acq-x_T1w.nii.gz", "");
    put(r, "sub-01/anat/not_bids.txt", "");
    let layout = Layout::index(r).unwrap();
    let bad: Vec<String> = layout
        .unparsed()
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        bad,
        [
            "sub-01/anat/not_bids.txt",
            "sub-01/anat/sub-01_run-1_acq-x_T1w.nii.gz"
        ]
    );
    assert_eq!(layout.files().len(), 1);
}

#[test]
fn ambiguous_sidecars_at_one_level_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put_description(r);
    put(
        r,
        "sub-01/perf/sub-01_acq-a_asl.json",
        r#"{"PostLabelingDelay": 1.0}"#,
    );
    put(
        r,
        "sub-01/perf/sub-01_run-1_asl.json",
        r#"{"PostLabelingDelay": 2.0}"#,
    );
    put(r, "sub-01/perf/sub-01_acq-a_run-1_asl.nii.gz", "");
    let layout = Layout::index(r).unwrap();
    let f = layout.query(&Query::new().suffix("asl").nifti())[0];
    assert_eq!(layout.ambiguous_sidecars(f).len(), 1);
    let report = cbflow_bids::validate(r).unwrap();
    assert!(
        report.errors().any(
            |i| i.path == Path::new("sub-01/perf/sub-01_acq-a_run-1_asl.nii.gz")
                && i.message.contains("ambiguous inheritance")
        ),
        "{report}"
    );
}
