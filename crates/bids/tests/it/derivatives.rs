//! Derivative naming round trip and the derivatives writer.

use std::path::Path;

use cbflow_bids::{
    DerivativeName, DerivativesWriter, GeneratedBy, SourceDataset, Table, atomic_write,
    parse_filename,
};
use cbflow_image::{DataType, Volume};
use nalgebra::Matrix4;
use ndarray::{ArrayD, IxDyn};
use serde_json::json;

#[test]
fn name_from_source_entities_parses_back() {
    let (src, _, _) = parse_filename("sub-01_ses-pre_acq-pcasl_run-1_asl.nii.gz").unwrap();
    let name = DerivativeName::from_entities(&src)
        .datatype("perf")
        .set("desc", "mean")
        .set("space", "MNI152NLin6Asym")
        .set("res", "2")
        .suffix("cbf")
        .extension(".nii.gz");
    let rel = name.rel_path().unwrap();
    assert_eq!(
        rel,
        Path::new(
            "sub-01/ses-pre/perf/sub-01_ses-pre_acq-pcasl_run-1_space-MNI152NLin6Asym_res-2_desc-mean_cbf.nii.gz"
        )
    );
    let (e, suffix, ext) = parse_filename(rel.file_name().unwrap().to_str().unwrap()).unwrap();
    let mut want = src.clone();
    want.set("space", "MNI152NLin6Asym");
    want.set("res", "2");
    want.set("desc", "mean");
    assert_eq!(e, want);
    assert_eq!(e.get("run"), Some("1"));
    assert_eq!((suffix.as_str(), ext.as_str()), ("cbf", ".nii.gz"));

    // group level: no subject, at the root
    let g = DerivativeName::group()
        .set("desc", "ketamine")
        .suffix("tstat")
        .extension(".nii.gz");
    assert_eq!(
        g.rel_path().unwrap(),
        Path::new("desc-ketamine_tstat.nii.gz")
    );
    // unsafe labels and a missing suffix are errors
    assert!(
        DerivativeName::from_entities(&src)
            .set("desc", "../x")
            .suffix("cbf")
            .rel_path()
            .is_err()
    );
    assert!(DerivativeName::from_entities(&src).rel_path().is_err());
    assert!(
        DerivativeName::from_entities(&src)
            .remove("run")
            .suffix("cbf")
            .rel_path()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("sub-01_ses-pre_acq-pcasl_cbf")
    );
}

fn no_temp_files(dir: &Path) {
    for e in walkdir_all(dir) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp-"), "temporary file left: {}", e.display());
    }
}

fn walkdir_all(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir_all(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn writer_writes_description_and_files_atomically() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bids/derivatives/cbflow");
    let w = DerivativesWriter::create(
        &out,
        GeneratedBy {
            name: "cbflow".into(),
            version: "0.1.0".into(),
            code_url: Some("https://github.com/cbflow/cbflow".into()),
        },
        &[SourceDataset {
            url: Some("file:///data/bids".into()),
            ..Default::default()
        }],
    )
    .unwrap();
    assert_eq!(w.out_dir(), out);
    let dd: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dataset_description.json")).unwrap())
            .unwrap();
    assert_eq!(dd["DatasetType"], "derivative");
    assert_eq!(dd["BIDSVersion"], "1.10.0");
    assert_eq!(dd["GeneratedBy"][0]["Name"], "cbflow");
    assert_eq!(dd["GeneratedBy"][0]["Version"], "0.1.0");
    assert_eq!(
        dd["GeneratedBy"][0]["CodeURL"],
        "https://github.com/cbflow/cbflow"
    );
    assert_eq!(dd["SourceDatasets"][0]["URL"], "file:///data/bids");
    assert!(dd["Name"].is_string());

    let (src, _, _) = parse_filename("sub-01_ses-1_asl.nii.gz").unwrap();
    let rel = DerivativeName::from_entities(&src)
        .datatype("perf")
        .set("desc", "mean")
        .suffix("cbf")
        .extension(".nii.gz")
        .rel_path()
        .unwrap();
    let data = ArrayD::from_shape_fn(IxDyn(&[3, 4, 2]), |ix| {
        (ix[0] * 10 + ix[1] + ix[2] * 100) as f32 * 0.5
    });
    let vol = Volume::new(data.clone(), Matrix4::identity()).unwrap();
    let p = w.write_nifti(&rel, &vol, DataType::Float32, &json!({"Units": "mL/100g/min", "Sources": ["bids:raw:sub-01/ses-1/perf/sub-01_ses-1_asl.nii.gz"]})).unwrap();
    let back = cbflow_image::read(&p).unwrap();
    assert_eq!(back.data, data);
    let sc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("sub-01/ses-1/perf/sub-01_ses-1_desc-mean_cbf.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sc["Units"], "mL/100g/min");

    let t = Table::new(
        vec!["roi".into(), "cbf".into()],
        vec![vec!["sgACC".into(), "52.5".into()]],
    )
    .unwrap();
    let tp = w
        .write_tsv(
            Path::new("sub-01/ses-1/perf/sub-01_ses-1_desc-roi_cbf.tsv"),
            &t,
        )
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(tp).unwrap(),
        "roi\tcbf\nsgACC\t52.5\n"
    );
    w.write_bytes(Path::new("sub-01.html"), b"<html></html>")
        .unwrap();
    // overwriting replaces the content
    w.write_bytes(Path::new("sub-01.html"), b"<html>2</html>")
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("sub-01.html")).unwrap(),
        b"<html>2</html>"
    );
    // paths must stay inside the output directory
    assert!(w.write_bytes(Path::new("../escape.txt"), b"x").is_err());
    assert!(w.write_bytes(Path::new("/tmp/abs.txt"), b"x").is_err());
    assert!(!tmp.path().join("bids/derivatives/escape.txt").exists());
    no_temp_files(&out);
}

#[test]
fn failed_atomic_write_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("sub-01.json");
    std::fs::create_dir(&target).unwrap(); // a directory where the file should go: rename fails
    let e = atomic_write(&target, b"{}").unwrap_err().to_string();
    assert!(e.contains("sub-01.json"), "{e}");
    no_temp_files(tmp.path());
    let ok = tmp.path().join("a/b/c.txt");
    atomic_write(&ok, b"hello").unwrap();
    assert_eq!(std::fs::read(&ok).unwrap(), b"hello");
    no_temp_files(tmp.path());
}
