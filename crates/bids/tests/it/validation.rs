//! Validation: ASL sidecar rules, aslcontext against the NIfTI, M0 rules, labels, output dirs.

use std::path::Path;

use cbflow_bids::{
    AslContext, AslMetadata, Layout, Severity, ValidationReport, check_output_dir,
    normalize_participant_label, validate,
};
use cbflow_image::{DataType, Volume};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, Value, json};

use crate::{put, put_description};

/// A complete 3D PCASL sidecar (no warnings from the RECOMMENDED rules either).
fn pcasl_sidecar() -> Map<String, Value> {
    let v = json!({
        "ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": 1.8, "LabelingDuration": 1.8,
        "BackgroundSuppression": true, "BackgroundSuppressionNumberPulses": 2,
        "BackgroundSuppressionPulseTime": [1.5, 2.9], "M0Type": "Separate",
        "TotalAcquiredPairs": 2, "MagneticFieldStrength": 3, "MRAcquisitionType": "3D",
        "EchoTime": 0.0113, "RepetitionTimePreparation": 4.5, "FlipAngle": 90,
        "VascularCrushing": false, "AcquisitionVoxelSize": [3, 3, 3],
        "LabelingOrientation": [1, 0, 0, 0, 1, 0], "LabelingDistance": 90,
        "LabelingLocationDescription": "below the circle of Willis", "PCASLType": "balanced",
        "LabelingPulseAverageGradient": 0.8, "LabelingPulseMaximumGradient": 6,
        "LabelingPulseAverageB1": 1.5, "LabelingPulseDuration": 0.5, "LabelingPulseFlipAngle": 20,
        "LabelingPulseInterval": 1.0
    });
    v.as_object().unwrap().clone()
}

/// Writes a small real NIfTI with `n` volumes (4x3x2xn, float32).
fn write_nifti(path: &Path, n: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let shape: Vec<usize> = if n == 1 {
        vec![4, 3, 2]
    } else {
        vec![4, 3, 2, n]
    };
    let data = ArrayD::from_shape_fn(IxDyn(&shape), |ix| (ix[0] + ix[1] + ix[2]) as f32);
    let vol = Volume::new(data, Matrix4::identity()).unwrap();
    cbflow_image::write(path, &vol, DataType::Float32).unwrap();
}

/// A one-subject ASL dataset: sidecar, aslcontext rows, an ASL image with `n_vols` volumes,
/// optionally a separate M0.
fn asl_dataset(r: &Path, sidecar: &Map<String, Value>, rows: &[&str], n_vols: usize, m0: bool) {
    put_description(r);
    put(r, "participants.tsv", "participant_id\nsub-01\n");
    put(
        r,
        "sub-01/perf/sub-01_asl.json",
        &serde_json::to_string(sidecar).unwrap(),
    );
    put(
        r,
        "sub-01/perf/sub-01_aslcontext.tsv",
        &format!("volume_type\n{}\n", rows.join("\n")),
    );
    write_nifti(&r.join("sub-01/perf/sub-01_asl.nii.gz"), n_vols);
    if m0 {
        write_nifti(&r.join("sub-01/perf/sub-01_m0scan.nii.gz"), 1);
        put(
            r,
            "sub-01/perf/sub-01_m0scan.json",
            r#"{"IntendedFor": "perf/sub-01_asl.nii.gz", "EchoTime": 0.0113, "RepetitionTimePreparation": 6}"#,
        );
    }
}

const PAIRS: &[&str] = &["control", "label", "control", "label"];

fn errors(report: &ValidationReport) -> Vec<String> {
    report.errors().map(|i| i.to_string()).collect()
}

/// [`validate`] of a fresh [`asl_dataset`] of these parts, with its temporary directory.
fn validated_dataset(
    sidecar: &Map<String, Value>,
    rows: &[&str],
    n_vols: usize,
    m0: bool,
) -> (tempfile::TempDir, ValidationReport) {
    let tmp = tempfile::tempdir().unwrap();
    asl_dataset(tmp.path(), sidecar, rows, n_vols, m0);
    let report = validate(tmp.path()).unwrap();
    (tmp, report)
}

/// The report's one error, shown (asserts that it has exactly one).
fn the_one_error(report: &ValidationReport) -> String {
    let errs = errors(report);
    assert_eq!(errs.len(), 1, "{report}");
    errs[0].clone()
}

#[test]
fn a_complete_dataset_has_no_issue() {
    let (tmp, report) = validated_dataset(&pcasl_sidecar(), PAIRS, 4, true);
    assert!(report.issues.is_empty(), "{report}");
    let runs = Layout::index(tmp.path()).unwrap().asl_runs().unwrap();
    assert_eq!(
        runs[0].m0scan.as_ref().unwrap().file_name(),
        "sub-01_m0scan.nii.gz"
    );
    assert!(runs[0].metadata.warnings.is_empty());
}

#[test]
fn missing_post_labeling_delay_names_file_and_field() {
    let mut sc = pcasl_sidecar();
    sc.remove("PostLabelingDelay");
    let issues =
        AslMetadata::from_sidecar(&sc, Path::new("sub-01/perf/sub-01_asl.json")).unwrap_err();
    let e: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
    assert_eq!(e.len(), 1, "{issues:?}");
    assert_eq!(e[0].field.as_deref(), Some("PostLabelingDelay"));
    assert_eq!(e[0].path, Path::new("sub-01/perf/sub-01_asl.json"));

    let (tmp, report) = validated_dataset(&sc, PAIRS, 4, true);
    let e = the_one_error(&report);
    assert!(
        e.starts_with("sub-01/perf/sub-01_asl.json: error [PostLabelingDelay]"),
        "{e}"
    );
    assert!(report.to_string().contains(
        "sub-01/perf/sub-01_asl.json\n  error [PostLabelingDelay]: missing REQUIRED field"
    ));
    let e = Layout::index(tmp.path())
        .unwrap()
        .asl_runs()
        .unwrap_err()
        .to_string();
    assert!(e.contains("PostLabelingDelay"), "{e}");
}

#[test]
fn all_sidecar_problems_are_reported_at_once() {
    let mut sc = pcasl_sidecar();
    sc.insert("ArterialSpinLabelingType".into(), json!("PASL")); // needs BolusCutOffFlag
    sc.insert("M0Type".into(), json!("Estimate")); // needs M0Estimate
    sc.insert("MRAcquisitionType".into(), json!("2D")); // needs SliceTiming
    sc.insert("TotalAcquiredPairs".into(), json!("two")); // wrong type
    sc.insert("BackgroundSuppressionPulseTime".into(), json!([1.5])); // 1 time for 2 pulses
    let issues = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap_err();
    let fields = |sev: Severity| {
        let mut v: Vec<String> = issues
            .iter()
            .filter(|i| i.severity == sev)
            .filter_map(|i| i.field.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        fields(Severity::Error),
        [
            "BolusCutOffFlag",
            "M0Estimate",
            "SliceTiming",
            "TotalAcquiredPairs"
        ]
    );
    let w = fields(Severity::Warning);
    assert!(
        w.contains(&"BackgroundSuppressionPulseTime".to_string())
            && w.contains(&"PASLType".to_string()),
        "{w:?}"
    );

    // PASL with a bolus cut-off needs its delay time and technique
    sc.insert("BolusCutOffFlag".into(), json!(true));
    sc.insert("M0Estimate".into(), json!(1.0e6));
    sc.insert("SliceTiming".into(), json!([0.0, 0.05]));
    sc.insert("TotalAcquiredPairs".into(), json!(2));
    let issues = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap_err();
    let mut e: Vec<_> = issues
        .iter()
        .filter(|i| i.is_error())
        .filter_map(|i| i.field.clone())
        .collect();
    e.sort();
    assert_eq!(e, ["BolusCutOffDelayTime", "BolusCutOffTechnique"]);
    sc.insert("BolusCutOffDelayTime".into(), json!([0.7, 1.6]));
    sc.insert("BolusCutOffTechnique".into(), json!("Q2TIPS"));
    let m = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap();
    assert_eq!(m.m0_type, cbflow_bids::M0Type::Estimate(1.0e6));

    // background suppression on without pulse details: warnings only
    let mut sc = pcasl_sidecar();
    sc.remove("BackgroundSuppressionNumberPulses");
    sc.remove("BackgroundSuppressionPulseTime");
    let m = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap();
    assert_eq!(m.warnings.len(), 2);
    assert!(m.warnings.iter().all(|w| w.severity == Severity::Warning));
}

#[test]
fn aslcontext_rows_must_match_the_fourth_dimension() {
    let (_tmp, report) = validated_dataset(&pcasl_sidecar(), PAIRS, 6, true);
    let e = the_one_error(&report);
    assert!(
        e.starts_with("sub-01/perf/sub-01_aslcontext.tsv: error [volume_type]: 4 rows, but sub-01/perf/sub-01_asl.nii.gz has 6 volumes"),
        "{e}"
    );
}

#[test]
fn pld_array_length_must_match_aslcontext() {
    let mut sc = pcasl_sidecar();
    sc.insert("PostLabelingDelay".into(), json!([1.0, 1.0, 2.0]));
    let (_tmp, report) = validated_dataset(&sc, PAIRS, 4, true);
    let e = the_one_error(&report);
    assert!(
        e.contains("[PostLabelingDelay]: 3 values, but sub-01_aslcontext.tsv has 4 volumes"),
        "{e}"
    );
}

#[test]
fn m0_type_rules() {
    // Separate without an m0scan
    let (_tmp, report) = validated_dataset(&pcasl_sidecar(), PAIRS, 4, false);
    let e = the_one_error(&report);
    assert!(
        e.contains("[M0Type]") && e.contains("\"Separate\" but no perf/*_m0scan"),
        "{e}"
    );

    // Included without m0scan rows
    let mut sc = pcasl_sidecar();
    sc.insert("M0Type".into(), json!("Included"));
    let (_tmp, report) = validated_dataset(&sc, PAIRS, 4, false);
    let e = the_one_error(&report);
    assert!(
        e.contains("\"Included\" but aslcontext.tsv has no m0scan"),
        "{e}"
    );

    // Included with an m0scan row: fine
    let (_tmp, report) = validated_dataset(&sc, &["m0scan", "control", "label"], 3, false);
    assert!(errors(&report).is_empty(), "{report}");

    // Absent with a separate m0scan
    sc.insert("M0Type".into(), json!("Absent"));
    let (_tmp, report) = validated_dataset(&sc, PAIRS, 4, true);
    let errs = errors(&report);
    assert!(
        errs.iter()
            .any(|e| e.contains("\"Absent\" but sub-01/perf/sub-01_m0scan.nii.gz")),
        "{errs:?}"
    );
}

#[test]
fn unknown_volume_type_names_file_row_value() {
    let tmp = tempfile::tempdir().unwrap();
    put(
        tmp.path(),
        "x_aslcontext.tsv",
        "volume_type\ncontrol\nlabel\nM0\n",
    );
    let e = AslContext::read(&tmp.path().join("x_aslcontext.tsv"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x_aslcontext.tsv") && e.contains("row 3") && e.contains("\"M0\""),
        "{e}"
    );
    put(tmp.path(), "y_aslcontext.tsv", "type\ncontrol\n");
    let e = AslContext::read(&tmp.path().join("y_aslcontext.tsv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("volume_type"), "{e}");
}

#[test]
fn placeholder_corrupt_images_and_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    asl_dataset(r, &pcasl_sidecar(), PAIRS, 4, true);
    put(r, "sub-01/anat/sub-01_T1w.nii.gz", ""); // zero-byte placeholder
    put(r, "sub-01/anat/sub-01_acq-bad_T1w.nii", &"x".repeat(400)); // not a NIfTI
    put(r, "participants.tsv", "participant_id\nsub-01\nsub-02\n");
    put(r, "sub-01/sub-01_sessions.tsv", "session_id\nses-1\n");
    put(r, "sub-01/perf/sub-02_foo.json", "{}");
    let report = validate(r).unwrap();
    let by_file = report.by_file();
    let t1w = &by_file[Path::new("sub-01/anat/sub-01_T1w.nii.gz")];
    assert_eq!(t1w.len(), 1);
    assert_eq!(t1w[0].severity, Severity::Warning);
    assert!(
        t1w[0]
            .message
            .contains("empty placeholder image, not checked")
    );
    let bad = &by_file[Path::new("sub-01/anat/sub-01_acq-bad_T1w.nii")];
    assert_eq!(bad[0].severity, Severity::Error);
    assert!(
        bad[0].message.contains("unreadable NIfTI"),
        "{}",
        bad[0].message
    );
    let p = &by_file[Path::new("participants.tsv")];
    assert!(p.iter().all(|i| i.severity == Severity::Warning));
    assert!(
        p[0].message.contains("\"sub-02\" has no sub-02 directory"),
        "{}",
        p[0].message
    );
    let s = &by_file[Path::new("sub-01/sub-01_sessions.tsv")];
    assert!(
        s[0].message.contains("\"ses-1\" has no ses-1 directory"),
        "{}",
        s[0].message
    );
    let wrong_sub = &by_file[Path::new("sub-01/perf/sub-02_foo.json")];
    assert!(
        wrong_sub[0]
            .message
            .contains("does not match its directory sub-01")
    );
    assert_eq!(report.errors().count(), 2, "{report}");
}

#[test]
fn dataset_description_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "dataset_description.json", r#"{"Name": "x"}"#);
    let report = validate(tmp.path()).unwrap();
    let errs = errors(&report);
    assert_eq!(
        errs,
        ["dataset_description.json: error [BIDSVersion]: missing REQUIRED field BIDSVersion"]
    );
    std::fs::remove_file(tmp.path().join("dataset_description.json")).unwrap();
    assert!(validate(tmp.path()).unwrap().has_errors());
    assert!(validate(&tmp.path().join("nope")).is_err());
}

#[test]
fn unsafe_participant_label_is_refused() {
    let e = normalize_participant_label("../x").unwrap_err().to_string();
    assert!(e.contains("\"../x\"") && e.contains("unsafe"), "{e}");
    assert!(normalize_participant_label("").is_err());
    assert!(normalize_participant_label("01/../../etc").is_err());
    assert_eq!(normalize_participant_label("sub-01").unwrap(), "01");
    assert_eq!(normalize_participant_label(" 01 ").unwrap(), "01");
}

#[test]
fn output_dir_may_not_be_inside_the_input_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let bids = tmp.path().join("bids");
    put_description(&bids);
    std::fs::create_dir_all(bids.join("sub-01")).unwrap();
    let e = check_output_dir(&bids, &bids).unwrap_err().to_string();
    let canon = std::fs::canonicalize(&bids).unwrap();
    assert!(
        e.contains(&canon.display().to_string()) && e.contains("is the input BIDS dataset"),
        "{e}"
    );
    // same directory through another spelling
    assert!(check_output_dir(&bids, &bids.join("sub-01/..")).is_err());
    assert!(check_output_dir(&bids, &bids.join("sub-01/out")).is_err());
    assert!(check_output_dir(&bids, &bids.join("derivatives")).is_err());
    check_output_dir(&bids, &bids.join("derivatives/cbflow")).unwrap();
    check_output_dir(&bids, &tmp.path().join("out")).unwrap();
}

#[test]
fn m0scan_matching_across_sessions_by_intended_for() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    put_description(r);
    put(r, "participants.tsv", "participant_id\nsub-01\n");
    put(
        r,
        "sub-01/sub-01_sessions.tsv",
        "session_id\nses-1\nses-2\n",
    );
    // shared parameters inherited from the subject level
    put(
        r,
        "sub-01/sub-01_asl.json",
        &serde_json::to_string(&pcasl_sidecar()).unwrap(),
    );
    for ses in ["1", "2"] {
        let d = format!("sub-01/ses-{ses}/perf");
        put(
            r,
            &format!("{d}/sub-01_ses-{ses}_aslcontext.tsv"),
            "volume_type\ncontrol\nlabel\n",
        );
        write_nifti(&r.join(format!("{d}/sub-01_ses-{ses}_asl.nii.gz")), 2);
        // the M0 files carry an extra entity, so only IntendedFor can match them
        write_nifti(
            &r.join(format!("{d}/sub-01_ses-{ses}_acq-m0_m0scan.nii.gz")),
            1,
        );
    }
    put(
        r,
        "sub-01/ses-1/perf/sub-01_ses-1_acq-m0_m0scan.json",
        r#"{"IntendedFor": "ses-1/perf/sub-01_ses-1_asl.nii.gz", "EchoTime": 0.01, "RepetitionTimePreparation": 6}"#,
    );
    put(
        r,
        "sub-01/ses-2/perf/sub-01_ses-2_acq-m0_m0scan.json",
        r#"{"IntendedFor": ["bids::sub-01/ses-2/perf/sub-01_ses-2_asl.nii.gz"], "EchoTime": 0.01, "RepetitionTimePreparation": 6}"#,
    );
    let report = validate(r).unwrap();
    assert!(report.issues.is_empty(), "{report}");
    let layout = Layout::index(r).unwrap();
    let runs = layout.asl_runs().unwrap();
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let ses = run.entities.get("ses").unwrap();
        let m0 = run.m0scan.as_ref().unwrap();
        assert_eq!(m0.session(), Some(ses));
        assert_eq!(run.metadata.post_labeling_delay, [1.8]); // inherited
    }
    let (one, issues) = layout.asl_runs_with_issues(&cbflow_bids::Query::new().ses("2"));
    assert_eq!(one.len(), 1);
    assert!(issues.is_empty());
    assert_eq!(layout.sessions("01"), ["1", "2"]);
}

#[test]
fn times_in_milliseconds_are_named_as_such_by_validate_and_the_run() {
    // dcm2niix writes RepetitionTimePreparation in ms for Siemens ASL (3480 for 3.48 s)
    let mut sc = pcasl_sidecar();
    sc.insert("RepetitionTimePreparation".into(), json!(3480));
    let (tmp, report) = validated_dataset(&sc, PAIRS, 4, true);
    let e = the_one_error(&report);
    assert!(
        e.contains("[RepetitionTimePreparation]")
            && e.contains("3480")
            && e.contains("looks like milliseconds")
            && e.contains("3.48 s"),
        "{e}"
    );
    // the run reads the same rules
    let e = Layout::index(tmp.path())
        .unwrap()
        .asl_runs()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("RepetitionTimePreparation") && e.contains("milliseconds"),
        "{e}"
    );

    // every time field, one at a time; the M0's own sidecar too
    for (key, value) in [
        ("PostLabelingDelay", json!(1800)),
        ("LabelingDuration", json!(1800)),
        ("EchoTime", json!(11.3)),
        ("BackgroundSuppressionPulseTime", json!([1500, 2900])),
    ] {
        let mut sc = pcasl_sidecar();
        sc.insert(key.into(), value.clone());
        let issues = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap_err();
        let e: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
        assert_eq!(e.len(), 1, "{key} {value}: {issues:?}");
        assert_eq!(e[0].field.as_deref(), Some(key));
        assert!(e[0].message.contains("milliseconds"), "{}", e[0].message);
    }
    let tmp = tempfile::tempdir().unwrap();
    asl_dataset(tmp.path(), &pcasl_sidecar(), PAIRS, 4, true);
    put(
        tmp.path(),
        "sub-01/perf/sub-01_m0scan.json",
        r#"{"IntendedFor": "perf/sub-01_asl.nii.gz", "EchoTime": 0.0113, "RepetitionTimePreparation": 5000}"#,
    );
    let errs = errors(&validate(tmp.path()).unwrap());
    assert!(
        errs.len() == 1
            && errs[0]
                .starts_with("sub-01/perf/sub-01_m0scan.json: error [RepetitionTimePreparation]")
            && errs[0].contains("5 s"),
        "{errs:?}"
    );
}

#[test]
fn a_zero_labelling_duration_and_slice_times_past_the_repetition_are_errors() {
    let mut sc = pcasl_sidecar();
    sc.insert("LabelingDuration".into(), json!(0));
    let issues = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap_err();
    assert!(
        issues
            .iter()
            .any(|i| i.is_error() && i.field.as_deref() == Some("LabelingDuration")),
        "{issues:?}"
    );
    // per volume: 0 is allowed for an m0scan row only
    let mut sc = pcasl_sidecar();
    sc.insert("LabelingDuration".into(), json!([0, 1.8, 0, 1.8, 1.8]));
    let md = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx_path = tmp.path().join("ctx.tsv");
    std::fs::write(
        &ctx_path,
        "volume_type\nm0scan\ncontrol\nlabel\ncontrol\nlabel\n",
    )
    .unwrap();
    let ctx = AslContext::read(&ctx_path).unwrap();
    let issues = md.check_against_context(&ctx, Path::new("a.json"));
    assert!(
        issues.len() == 1 && issues[0].message.contains("volume 2 (label)"),
        "{issues:?}"
    );
    let mut sc = pcasl_sidecar();
    sc.insert("MRAcquisitionType".into(), json!("2D"));
    sc.insert("SliceTiming".into(), json!([0.0, 2.0, 4.0, 6.0])); // past the 4.5 s repetition
    let issues = AslMetadata::from_sidecar(&sc, Path::new("a.json")).unwrap_err();
    assert!(
        issues.iter().any(|i| i.is_error()
            && i.field.as_deref() == Some("SliceTiming")
            && i.message.contains("same unit")),
        "{issues:?}"
    );
}
