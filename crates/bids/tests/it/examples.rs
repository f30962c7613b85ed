//! The six BIDS ASL example datasets (bids-standard/bids-examples; images are empty
//! placeholders, so only metadata is checked): index, parse and check vendor-specific fields.

use std::path::Path;

use approx::assert_relative_eq;
use cbflow_bids::{AslRun, AslType, Layout, M0Type, Query, Severity, VolumeType, validate};

use crate::example;

/// Indexes the example, returns its single ASL run, and checks that validation finds no error
/// (warnings only, including the "empty placeholder image" ones).
fn single_run(name: &str) -> (Layout, AslRun) {
    let root = example(name);
    let layout = Layout::index(&root).unwrap();
    let runs = layout.asl_runs().unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(runs.len(), 1, "{name}: one ASL run");
    let report = validate(&root).unwrap();
    assert!(!report.has_errors(), "{name}:\n{report}");
    assert!(
        report.issues.iter().any(|i| i.severity == Severity::Warning
            && i.message.contains("empty placeholder image")
            && i.path.to_string_lossy().ends_with("_asl.nii.gz")),
        "{name}: placeholder warning expected:\n{report}"
    );
    let run = runs.into_iter().next().unwrap();
    (layout, run)
}

#[test]
fn asl001_ge_3d_spiral_deltam_with_included_m0() {
    let (layout, run) = single_run("asl001");
    assert_eq!(layout.subjects(), ["Sub103"]);
    assert!(layout.sessions("Sub103").is_empty());
    assert_eq!(
        layout.description().unwrap()["Name"],
        "ASL_GE_PCASL_3Dspiral"
    );
    let m = &run.metadata;
    assert_eq!(m.manufacturer.as_deref(), Some("GE"));
    assert_eq!(m.asl_type, AslType::Pcasl);
    assert_eq!(m.mr_acquisition_type.as_deref(), Some("3D"));
    assert_eq!(m.post_labeling_delay, [2.025]);
    assert_eq!(m.labeling_duration.as_deref(), Some(&[1.45][..]));
    assert_eq!(m.m0_type, M0Type::Included);
    assert_eq!(m.total_acquired_pairs, Some(3));
    assert!(m.background_suppression);
    assert_eq!(m.background_suppression_number_pulses, Some(4));
    assert_eq!(
        m.background_suppression_pulse_time.as_deref(),
        Some(&[1.965, 2.6, 3.1, 3.38][..])
    );
    assert_eq!(m.repetition_time_preparation.as_deref(), Some(&[4.886][..]));
    assert_eq!(m.acquisition_voxel_size, Some([4.0, 4.0, 8.0]));
    assert_eq!(m.vascular_crushing, Some(false));
    assert_eq!(m.extra["PulseSequenceType"], "spiral");
    assert_eq!(m.extra["LabelingDistance"], 40);
    // GE product sequence: one delta-M (the scanner's average of 3 pairs) and its M0 image
    // stored in the series; no M0 scaling field is given, nor a separate M0 file.
    assert!(!m.extra.contains_key("M0Scale") && !m.extra.contains_key("M0Estimate"));
    assert!(run.m0scan.is_none());
    assert_eq!(
        run.volumes.volume_types,
        [VolumeType::M0Scan, VolumeType::DeltaM]
    );
    assert_eq!(run.volumes.indices(VolumeType::M0Scan), [0]);
    assert!(run.context.ends_with("sub-Sub103_aslcontext.tsv"));
    assert_eq!(run.entities.to_string(), "sub-Sub103");
    assert_eq!(
        run.asl.bids_uri("raw"),
        "bids:raw:sub-Sub103/perf/sub-Sub103_asl.nii.gz"
    );
    assert!(!m.is_multi_pld());
}

#[test]
fn asl002_philips_2d_epi_slice_timing_separate_m0() {
    let (layout, run) = single_run("asl002");
    let m = &run.metadata;
    assert_eq!(m.manufacturer.as_deref(), Some("Philips"));
    assert_eq!(m.mr_acquisition_type.as_deref(), Some("2D"));
    let st = m.slice_timing.as_ref().expect("2D needs SliceTiming");
    assert_eq!(st.len(), 20);
    assert_eq!(st[0], 0.0);
    assert_relative_eq!(st[19], 0.7315);
    assert_relative_eq!(st[1] - st[0], 0.0385, epsilon = 1e-12);
    assert_eq!(m.post_labeling_delay, [2.0]);
    assert_eq!(m.labeling_duration.as_deref(), Some(&[1.8][..]));
    assert_eq!(m.m0_type, M0Type::Separate);
    assert_eq!(m.total_acquired_pairs, Some(35));
    assert_eq!(m.background_suppression_number_pulses, Some(2));
    assert_eq!(
        m.background_suppression_pulse_time.as_deref(),
        Some(&[2.05, 3.276][..])
    );
    assert_eq!(m.look_locker, Some(false));
    assert_eq!(run.volumes.count(VolumeType::Control), 35);
    assert_eq!(run.volumes.count(VolumeType::Label), 35);
    assert_eq!(run.volumes.volume_types[0], VolumeType::Control);
    // the separate M0 is found by its IntendedFor ("perf/sub-Sub103_asl.nii.gz")
    let m0 = run.m0scan.as_ref().expect("separate m0scan");
    assert_eq!(
        m0.rel_path,
        Path::new("sub-Sub103/perf/sub-Sub103_m0scan.nii.gz")
    );
    let m0md = run.m0scan_metadata.as_ref().unwrap();
    assert_eq!(m0md["RepetitionTimePreparation"], 9);
    assert_eq!(m0md["IntendedFor"], "perf/sub-Sub103_asl.nii.gz");
    // the layout also holds the JPEG of the labelling plane and the T1w
    let jpg = layout.query(&Query::new().suffix("asllabeling").extension(".jpg"));
    assert_eq!(jpg.len(), 1);
    assert_eq!(
        layout
            .query(
                &Query::new()
                    .sub("Sub103")
                    .datatype("anat")
                    .suffix("T1w")
                    .nifti()
            )
            .len(),
        1
    );
}

#[test]
fn asl003_siemens_pasl_multi_ti_bolus_cut_off() {
    let (_layout, run) = single_run("asl003");
    let m = &run.metadata;
    assert_eq!(m.manufacturer.as_deref(), Some("Siemens"));
    assert_eq!(m.asl_type, AslType::Pasl);
    assert!(!m.asl_type.is_continuous());
    assert_eq!(m.labeling_duration, None);
    assert_eq!(m.bolus_cut_off_flag, Some(true));
    assert_eq!(m.bolus_cut_off_delay_time.as_deref(), Some(&[0.7, 1.6][..]));
    assert_eq!(m.bolus_cut_off_technique.as_deref(), Some("Q2TIPS"));
    assert_eq!(m.extra["PASLType"], "FAIR");
    assert_eq!(m.extra["LabelingSlabThickness"], 115.5);
    // multi-TI: one inversion time per volume, pairs at 0.3, 0.6, ..., 3.0 s
    assert_eq!(m.post_labeling_delay.len(), 20);
    assert!(m.is_multi_pld());
    for i in 0..20 {
        assert_relative_eq!(
            m.post_labeling_delay_at(i).unwrap(),
            0.3 * (i / 2 + 1) as f64,
            epsilon = 1e-12
        );
    }
    assert_eq!(m.m0_type, M0Type::Separate);
    assert_eq!(m.mr_acquisition_type.as_deref(), Some("3D"));
    assert_eq!(run.volumes.len(), 20);
    assert_eq!(run.volumes.volume_types[0], VolumeType::Label);
    assert_eq!(
        run.volumes.indices(VolumeType::Control),
        (0..10).map(|k| 2 * k + 1).collect::<Vec<_>>()
    );
    let m0 = run.m0scan.as_ref().unwrap();
    assert_eq!(m0.file_name(), "sub-Sub1_m0scan.nii.gz");
    assert_eq!(
        run.m0scan_metadata.as_ref().unwrap()["RepetitionTimePreparation"],
        6
    );
}

#[test]
fn asl004_siemens_pcasl_multi_pld_pepolar_m0() {
    let (layout, run) = single_run("asl004");
    let m = &run.metadata;
    assert_eq!(m.asl_type, AslType::Pcasl);
    assert_eq!(m.mr_acquisition_type.as_deref(), Some("2D"));
    assert_eq!(m.slice_timing.as_ref().unwrap().len(), 24);
    assert_eq!(m.post_labeling_delay.len(), 96);
    let mut plds: Vec<f64> = m.post_labeling_delay.clone();
    plds.dedup();
    assert_eq!(plds, [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]);
    assert_eq!(
        m.post_labeling_delay.iter().filter(|&&x| x == 1.0).count(),
        16
    );
    assert_eq!(m.labeling_duration.as_deref(), Some(&[1.4][..]));
    assert_eq!(m.labeling_duration_at(95), Some(1.4));
    assert_eq!(m.labeling_efficiency, Some(0.88));
    assert_eq!(m.extra["PCASLType"], "balanced");
    assert_eq!(m.total_acquired_pairs, Some(48));
    assert_eq!(run.volumes.len(), 96); // the trailing blank line of the TSV is not a volume
    assert_eq!(run.volumes.count(VolumeType::Label), 48);
    // the calibration M0 is perf/…_m0scan (IntendedFor the ASL series), not the reversed
    // phase-encoding fmap/…_dir-pa_m0scan, which is IntendedFor the M0 itself
    let m0 = run.m0scan.as_ref().unwrap();
    assert_eq!(
        m0.rel_path,
        Path::new("sub-Sub1/perf/sub-Sub1_m0scan.nii.gz")
    );
    let fmap = layout.query(&Query::new().datatype("fmap").suffix("m0scan").nifti());
    assert_eq!(fmap.len(), 1);
    assert_eq!(fmap[0].entities.get("dir"), Some("pa"));
    assert_eq!(
        layout.metadata(fmap[0]).unwrap()["PhaseEncodingDirection"],
        "j"
    );
}

#[test]
fn asl005_siemens_3d_grase_single_pld() {
    let (_layout, run) = single_run("asl005");
    let m = &run.metadata;
    assert_eq!(m.manufacturer.as_deref(), Some("Siemens"));
    assert_eq!(m.extra["ManufacturersModelName"], "Prisma_fit");
    assert_eq!(m.extra["PulseSequenceType"], "3Dgrase");
    assert_eq!(m.number_shots, Some(4));
    assert_eq!(m.mr_acquisition_type.as_deref(), Some("3D"));
    assert_eq!(m.slice_timing, None);
    assert_eq!(m.post_labeling_delay, [2.0]);
    assert_eq!(m.post_labeling_delay_at(7), Some(2.0));
    assert_eq!(m.labeling_duration.as_deref(), Some(&[1.8][..]));
    assert_eq!(
        m.background_suppression_pulse_time.as_deref(),
        Some(&[2.29, 2.925, 3.425, 3.705][..])
    );
    assert_eq!(m.m0_type, M0Type::Separate);
    assert_eq!(m.total_acquired_pairs, Some(8));
    assert_eq!(m.acquisition_voxel_size, Some([3.4, 3.4, 4.0]));
    assert_eq!(run.volumes.len(), 16); // CRLF line endings
    assert_eq!(run.volumes.volume_types[0], VolumeType::Control);
    assert!(run.m0scan.is_some());
}

#[test]
fn mb2d_siemens_multiband_multi_delay_with_m0_and_norf() {
    let (layout, run) = single_run("2d_mb_pcasl");
    assert_eq!(layout.subjects(), ["1"]);
    let m = &run.metadata;
    assert_eq!(m.extra["MultibandAccelerationFactor"], 6);
    assert_eq!(m.mr_acquisition_type.as_deref(), Some("2D"));
    assert_eq!(m.slice_timing.as_ref().unwrap().len(), 60);
    assert_eq!(m.m0_type, M0Type::Included);
    assert!(!m.background_suppression);
    assert_eq!(m.background_suppression_number_pulses, None);
    assert_eq!(m.total_acquired_pairs, Some(43));
    assert_eq!(m.post_labeling_delay.len(), 90);
    assert_eq!(m.labeling_duration.as_ref().unwrap().len(), 90);
    assert_eq!(m.repetition_time_preparation.as_ref().unwrap().len(), 90);
    let v = &run.volumes;
    assert_eq!(v.len(), 90);
    assert_eq!(
        (
            v.count(VolumeType::Control),
            v.count(VolumeType::Label),
            v.count(VolumeType::M0Scan),
            v.count(VolumeType::NoRf)
        ),
        (43, 43, 2, 2)
    );
    assert_eq!(v.indices(VolumeType::NoRf), [86, 87]);
    assert_eq!(v.indices(VolumeType::M0Scan), [88, 89]);
    for i in 86..90 {
        assert_eq!(m.post_labeling_delay_at(i), Some(0.0));
        assert_eq!(m.labeling_duration_at(i), Some(0.0));
    }
    assert_eq!(m.repetition_time_preparation.as_ref().unwrap()[88], 8.0);
    assert_eq!(
        m.post_labeling_delay.iter().filter(|&&x| x == 2.2).count(),
        30
    );
    assert!(run.m0scan.is_none());
    let epi = layout.query(&Query::new().datatype("fmap").suffix("epi").nifti());
    assert_eq!(
        epi.iter()
            .map(|f| f.entities.get("dir").unwrap())
            .collect::<Vec<_>>(),
        ["AP", "PA"]
    );
}
