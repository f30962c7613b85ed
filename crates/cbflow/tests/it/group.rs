//! The group level on a small synthetic study whose ASL files carry an `acq-` entity: every
//! subject enters, every output is written, and the ACC ROI change has the simulated sign. The
//! kinds of file each level writes are compared with the lists in `snapshots/` (as ASLPrep's
//! expected-output lists do), so that a renamed or lost output is caught.

use std::path::Path;

use crate::run_level;

/// Adds `acq-<label>` to the name of every ASL file of a BIDS dataset (series, sidecar,
/// aslcontext, M0) and to the M0s' `IntendedFor`, as a dataset with several ASL acquisitions
/// names them.
pub(crate) fn add_acq(root: &Path, label: &str) {
    for e in walkdir(root) {
        let name = e.file_name().unwrap().to_string_lossy().to_string();
        if !e.to_string_lossy().contains("/perf/") || !name.contains("_run-") {
            continue;
        }
        let to = e.with_file_name(name.replace("_run-", &format!("_acq-{label}_run-")));
        if name.ends_with("_m0scan.json") {
            let text = std::fs::read_to_string(&e).unwrap();
            std::fs::write(&e, text.replace("_run-", &format!("_acq-{label}_run-"))).unwrap();
        }
        std::fs::rename(&e, &to).unwrap();
    }
}

/// The kinds of file under `out` (the work directory left out): every path with its labels
/// replaced (`sub-<label>`, `ses-<label>`, `run-<index>`; a run log's start time and process id
/// by `#`), sorted, each once.
fn output_kinds(out: &Path) -> Vec<String> {
    let mut kinds: Vec<String> = walkdir(out)
        .into_iter()
        .map(|p| p.strip_prefix(out).unwrap().to_string_lossy().into_owned())
        .filter(|p| !p.starts_with(".cbflow-work"))
        .map(|p| output_kind(&p))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// `sub-01` → `sub-<label>`, `ses-2` → `ses-<label>`, `run-1` → `run-<index>`; in a run log's
/// name (`logs/cbflow-<level>-<time>-<pid>.jsonl`) every run of digits → `#`.
fn output_kind(p: &str) -> String {
    if p.starts_with("logs/cbflow-") {
        let mut out = String::with_capacity(p.len());
        for c in p.chars() {
            if !c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('#') {
                out.push('#');
            }
        }
        return out;
    }
    let mut out = String::with_capacity(p.len());
    let mut rest = p;
    while let Some((i, key)) = ["sub-", "ses-", "run-"]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, *k)))
        .min()
    {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        out.push_str(if key == "run-" { "<index>" } else { "<label>" });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Compares the output kinds with `snapshots/<name>.txt`; `CBFLOW_UPDATE_SNAPSHOTS=1` rewrites
/// the snapshot instead (then review the diff).
fn check_snapshot(name: &str, kinds: &[String]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/it/snapshots/{name}.txt"));
    let got = kinds.join("\n") + "\n";
    if std::env::var_os("CBFLOW_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (CBFLOW_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    let want: Vec<&str> = want.lines().collect();
    let got: Vec<&str> = got.lines().collect();
    let lost: Vec<&&str> = want.iter().filter(|w| !got.contains(w)).collect();
    let new: Vec<&&str> = got.iter().filter(|g| !want.contains(g)).collect();
    assert!(
        lost.is_empty() && new.is_empty(),
        "{name}: outputs differ from {}\nno longer written: {lost:#?}\nnewly written: {new:#?}\n(CBFLOW_UPDATE_SNAPSHOTS=1 rewrites the snapshot)",
        path.display()
    );
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn group_level_writes_maps_and_tables() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 5,
        seed: 11,
        ..Default::default()
    };
    spec.protocol.pairs = 3;
    cbflow_synth::generate(&spec, &root).unwrap();
    // the runs are found by their full entities: acq-pcasl stays in every name
    add_acq(&root, "pcasl");
    assert!(
        root.join("sub-01/ses-1/perf/sub-01_ses-1_acq-pcasl_run-1_asl.nii.gz")
            .exists()
    );
    let out = t.path().join("out");
    run_level(&root, &out, "participant")
        .args(["--template", "phantom"])
        .assert()
        .success();
    let participant_kinds = output_kinds(&out);
    check_snapshot("participant-outputs", &participant_kinds);
    // the group level refuses a template the participant level did not use
    run_level(&root, &out, "group")
        .args(["--template", "none"])
        .assert()
        .failure()
        .code(1);
    // the work directory wiped (a cluster's scratch): the group level reads the participant
    // derivatives from OUTPUT_DIR, checked against their provenance, and runs none of them
    std::fs::remove_dir_all(out.join(".cbflow-work")).unwrap();
    let run = run_level(&root, &out, "group")
        .args(["--template", "phantom", "--permutations", "100"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&run.get_output().stdout).into_owned();
    assert!(
        // the crossover step and the report computed, the receptor step idle (no PET maps)
        stdout.contains("8 jobs (2 computed, 1 with nothing to do, 0 from the cache, 5 read from"),
        "{stdout}"
    );
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("logs/provenance-group.json")).unwrap())
            .unwrap();
    let statuses: Vec<(&str, &str)> = prov["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap(), j["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses.len(), 8, "{statuses:?}");
    for (id, status) in &statuses {
        let want = if id.contains("/sub-") {
            "read-from-outputs"
        } else {
            "ran"
        };
        assert_eq!(*status, want, "{id}");
    }
    let group_kinds: Vec<String> = output_kinds(&out)
        .into_iter()
        .filter(|k| !participant_kinds.contains(k))
        .collect();
    check_snapshot("group-outputs", &group_kinds);
    for contrast in [
        "ketamineUnderPlacebo",
        "ketamineUnderNaltrexone",
        "ketaminePooled",
        "interaction",
    ] {
        for stat in ["stat-t", "stat-effect", "stat-tfce"] {
            let p = out.join(format!(
                "space-phantom_res-3_contrast-{contrast}_{stat}_statmap.nii.gz"
            ));
            let v = cbflow_image::read(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                v.frame(0).iter().any(|&x| x != 0.0),
                "{} is empty",
                p.display()
            );
        }
        for desc in [
            "uncorrected",
            "voxelFWE",
            "tfceUncorrected",
            "tfceFWE",
            "clusterFWE",
        ] {
            let p = out.join(format!(
                "space-phantom_res-3_contrast-{contrast}_stat-logp_desc-{desc}_statmap.nii.gz"
            ));
            let v = cbflow_image::read(&p).unwrap_or_else(|e| panic!("{e}"));
            // -log10 p of permutation p-values with 2^5 = 32 exhaustive flips: in [0, log10 32]
            assert!(
                v.frame(0).iter().all(|&x| (0.0..=1.51).contains(&x)),
                "{}",
                p.display()
            );
            let side: serde_json::Value = serde_json::from_slice(
                &std::fs::read(p.with_extension("").with_extension("json")).unwrap(),
            )
            .unwrap();
            assert!(side["Description"].as_str().unwrap().contains("-log10(p)"));
            assert_eq!(side["Exhaustive"], true);
        }
        assert!(
            out.join(format!(
                "space-phantom_res-3_contrast-{contrast}_desc-clusters_table.tsv"
            ))
            .exists()
        );
    }
    let roi = cbflow_bids::Table::read_tsv(&out.join("desc-roiTtests_table.tsv")).unwrap();
    let regions = roi.column("region").unwrap();
    let contrasts = roi.column("contrast").unwrap();
    let means = roi.f64_column("mean_difference").unwrap();
    let pooled_acc: Vec<f64> = (0..regions.len())
        .filter(|&i| regions[i].starts_with("ACC") && contrasts[i] == "ketaminePooled")
        .map(|i| means[i].unwrap())
        .collect();
    assert_eq!(pooled_acc.len(), 3);
    assert!(
        pooled_acc.iter().all(|&m| m > 0.0),
        "ACC ketamine change should be positive: {pooled_acc:?}"
    );
    assert!(
        out.join("sub-03/ses-2/perf/sub-03_ses-2_acq-pcasl_run-2_space-phantom_res-3_cbf.nii.gz")
            .exists()
    );
    // every subject entered the group level
    let values = cbflow_bids::Table::read_tsv(&out.join("desc-roiValues_table.tsv")).unwrap();
    let ids: std::collections::BTreeSet<&str> = values
        .column("participant_id")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    for table in [
        "desc-roiValues_table.tsv",
        "desc-brainBehaviour_table.tsv",
        "desc-lmm_table.tsv",
    ] {
        let t = cbflow_bids::Table::read_tsv(&out.join(table)).unwrap();
        assert!(t.n_rows() > 0, "{table} is empty");
    }
}

/// The paired design's workflow (`workflows/examples/before-after.yaml`) on a phantom study: the
/// group level's outputs, listed against a snapshot as the crossover level's are, and its
/// report.
#[test]
fn the_paired_workflow_writes_its_group_outputs() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 3,
        seed: 5,
        ..Default::default()
    };
    spec.protocol.pairs = 3;
    cbflow_synth::generate(&spec, &root).unwrap();
    // the example, with the session that holds both runs set (the synthetic study has two)
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/examples/before-after.yaml");
    let yaml = std::fs::read_to_string(&example)
        .unwrap()
        .replace("# session: \"1\"", "session: \"1\"");
    let wf = t.path().join("before-after.yaml");
    std::fs::write(&wf, yaml).unwrap();
    let out = t.path().join("out");
    let run = |level: &str| {
        run_level(&root, &out, level)
            .arg("--workflow")
            .arg(&wf)
            .args(["--template", "phantom", "--permutations", "100"])
            .assert()
            .success();
    };
    run("participant");
    let participant_kinds = output_kinds(&out);
    check_snapshot("paired-participant-outputs", &participant_kinds);
    run("group");
    let group_kinds: Vec<String> = output_kinds(&out)
        .into_iter()
        .filter(|k| !participant_kinds.contains(k))
        .collect();
    check_snapshot("paired-group-outputs", &group_kinds);
    assert!(
        group_kinds.iter().any(|k| k == "group.html"),
        "{group_kinds:#?}"
    );
}
