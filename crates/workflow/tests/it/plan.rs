//! Resolving workflows on a small synthetic study.

use cbflow_workflow::{Error, Level, Op, Overrides, PlanRequest, TemplateName, Workflow, plan};

use crate::{base_study, contains_all, workflows_dir};

fn request(level: Level) -> PlanRequest {
    PlanRequest {
        bids_dir: base_study().to_path_buf(),
        output_dir: base_study().join("../out"),
        level,
        participant_labels: vec![],
        overrides: Overrides {
            template: Some(TemplateName::Phantom),
            ..Overrides::default()
        },
    }
}

/// The ids of the plan's jobs, in order.
fn job_ids(p: &cbflow_workflow::Plan) -> Vec<&str> {
    p.jobs.iter().map(|j| j.id.as_str()).collect()
}

#[test]
fn participant_plan_has_one_job_per_participant() {
    let w = Workflow::builtin();
    let p = plan(&w, &request(Level::Participant)).unwrap();
    assert_eq!(
        job_ids(&p),
        [
            "cbf/sub-01",
            "cbf/sub-02",
            "cbf/sub-03",
            "report/sub-01",
            "report/sub-02",
            "report/sub-03"
        ]
    );
    // each participant's report after its own job, with its inputs and the workflow's design
    let r = p.job("report/sub-02").unwrap();
    assert_eq!(r.deps, vec![1]);
    assert_eq!(r.participant.as_deref(), Some("02"));
    assert_eq!(r.inputs, p.jobs[1].inputs);
    let Op::ParticipantReport(rp) = &r.op else {
        panic!("{:?}", r.op)
    };
    assert_eq!(rp.design.drug, "ketamine");
    let j = &p.jobs[1];
    assert_eq!(j.participant.as_deref(), Some("02"));
    assert_eq!(
        j.template,
        Some(TemplateName::Phantom),
        "the override applies"
    );
    // 2 sessions × 2 runs of ASL, one T1w per session
    assert_eq!(j.matched["asl"].len(), 4);
    assert_eq!(j.matched["t1w"].len(), 2);
    // its inputs: its own files and the top-level files, nobody else's
    assert!(
        j.inputs
            .iter()
            .any(|f| f.ends_with("dataset_description.json"))
    );
    assert!(
        j.inputs
            .iter()
            .any(|f| f.ends_with("sub-02_ses-1_run-1_asl.json"))
    );
    assert!(
        !j.inputs
            .iter()
            .any(|f| f.to_string_lossy().contains("sub-01"))
    );
    assert!(
        !j.inputs
            .iter()
            .any(|f| f.to_string_lossy().contains("derivatives"))
    );
    assert_eq!((j.resources.cpus, j.resources.mem_gb), (2, 4.0));
    contains_all(
        &p.to_string(),
        &[
            "cbf/sub-03",
            "template=phantom",
            "sub-01/ses-2/perf/sub-01_ses-2_run-2_asl.nii.gz",
        ],
    );
}

#[test]
fn group_plan_includes_participant_prerequisites_and_overrides() {
    let w = Workflow::builtin();
    let mut req = request(Level::Group);
    req.overrides.permutations = Some(50);
    req.overrides.seed = Some(9);
    let p = plan(&w, &req).unwrap();
    // three participants, the crossover step, the receptor step that reads both, the report
    assert_eq!(p.jobs.len(), 6);
    let r = p.job("receptors").unwrap();
    assert_eq!(r.deps, vec![0, 1, 2, 3]);
    let Op::ReceptorCorrelation(rp) = &r.op else {
        panic!()
    };
    assert_eq!(
        rp.seed, 9,
        "the seed override reaches every step with draws"
    );
    let g = p.job("crossover").unwrap();
    assert_eq!(g.deps, vec![0, 1, 2]);
    assert!(!g.prerequisite);
    assert!(p.jobs[..3].iter().all(|j| j.prerequisite));
    let Op::CrossoverGroup(params) = &g.op else {
        panic!()
    };
    assert_eq!((params.permutations, params.seed), (50, 9));
    assert_eq!(params.smoothing_fwhm_mm, 6.0, "not overridden");
    assert_eq!(g.template, Some(TemplateName::Phantom));
    assert!(g.inputs.iter().any(|f| f.ends_with("sub-03_sessions.tsv")));
    contains_all(
        &p.to_string(),
        &[
            "after: cbf/sub-01, cbf/sub-02, cbf/sub-03",
            "permutations=50",
        ],
    );
    // the plan serialises (provenance)
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["jobs"][3]["op"], "crossover-group");
    assert_eq!(json["jobs"][3]["params"]["seed"], 9);
    // the group report after both group steps, drawing the crossover's report
    let rep = p.job("report").unwrap();
    assert_eq!(rep.deps, vec![3, 4]);
    assert!(!rep.prerequisite);
    assert_eq!(json["jobs"][5]["op"], "group-report");
    assert_eq!(json["jobs"][5]["params"]["report"]["kind"], "crossover");
    assert_eq!(
        json["jobs"][5]["params"]["design"]["pretreatment_column"],
        "pretreatment"
    );
}

#[test]
fn participant_labels_select_jobs() {
    let w = Workflow::builtin();
    let mut req = request(Level::Group);
    req.participant_labels = vec!["sub-03".into(), "01".into()];
    let p = plan(&w, &req).unwrap();
    assert_eq!(
        job_ids(&p),
        [
            "cbf/sub-01",
            "cbf/sub-03",
            "crossover",
            "receptors",
            "report"
        ]
    );
    req.participant_labels = vec!["07".into()];
    let e = plan(&w, &req).unwrap_err().to_string();
    contains_all(&e, &["'07'", "01, 02, 03"]);
}

#[test]
fn template_none_cannot_feed_the_group_level() {
    let w = Workflow::builtin();
    let mut req = request(Level::Group);
    req.overrides.template = Some(TemplateName::None);
    let e = plan(&w, &req).unwrap_err().to_string();
    assert!(e.contains("template other than `none`"), "{e}");
    // the participant level alone is fine
    req.level = Level::Participant;
    plan(&w, &req).unwrap();
}

#[test]
fn mni_without_resources_is_explained() {
    let w = Workflow::builtin();
    let mut req = request(Level::Participant);
    req.overrides.template = None;
    req.overrides.resources_dir = Some(base_study().join("no-such-dir"));
    let e = plan(&w, &req).unwrap_err();
    assert!(matches!(e, Error::Resolve { .. }), "{e}");
    assert!(
        e.to_string().contains("templates/fsl_mni152nlin6asym_2mm"),
        "{e}"
    );
}

#[test]
fn the_plan_resolves_the_resource_directory_once() {
    let w = Workflow::builtin();
    let mut req = request(Level::Participant);
    req.overrides.template = Some(TemplateName::Phantom);
    // a path that is no directory: none is used, and the plan keeps the path for the steps
    // that would read it to name
    let typo = base_study().join("no-such-dir");
    req.overrides.resources_dir = Some(typo.clone());
    let p = plan(&w, &req).unwrap();
    assert_eq!(p.resources_dir, None);
    assert_eq!(p.resources_dir_missing, Some(typo));
    // a directory: canonical
    let t = tempfile::tempdir().unwrap();
    req.overrides.resources_dir = Some(t.path().join("."));
    let p = plan(&w, &req).unwrap();
    assert_eq!(
        p.resources_dir,
        Some(std::fs::canonicalize(t.path()).unwrap())
    );
    assert_eq!(p.resources_dir_missing, None);
}

/// A workflow of one `asl-cbf` step on the phantom with one region of `labels`.
fn one_roi_workflow(labels: &str) -> Workflow {
    let text = cbflow_testdata::one_roi_workflow("region", labels);
    Workflow::parse(&text, "one-roi.yaml").unwrap()
}

#[test]
fn a_region_the_atlas_lacks_is_refused_before_any_job() {
    let req = request(Level::Participant);
    // label 151 (AAL3's ACC_sub_L) is in the phantom's atlas
    cbflow_workflow::check_templates(&plan(&one_roi_workflow("151"), &req).unwrap()).unwrap();
    cbflow_workflow::check_templates(&plan(&Workflow::builtin(), &req).unwrap()).unwrap();
    // the plan resolves it (a label above 0 is a label), the template check refuses it
    let p = plan(&one_roi_workflow("9999"), &req).unwrap();
    let e = cbflow_workflow::check_templates(&p).unwrap_err();
    assert!(matches!(e, Error::Resolve { .. }), "{e}");
    let e = e.to_string();
    assert!(e.starts_with("one-roi.yaml: step `cbf`: "), "{e}");
    contains_all(&e, &["ROI region: none of its labels [9999] occurs"]);
    // at the group level the participant jobs are prerequisites: not run, not checked
    let mut req = req;
    req.level = Level::Group;
    let p = plan(&Workflow::builtin(), &req).unwrap();
    cbflow_workflow::check_templates(&p).unwrap();
}

#[test]
fn a_query_selecting_part_of_a_participant_is_refused() {
    let text = std::fs::read_to_string(workflows_dir().join("ketamine-naltrexone-crossover.yaml"))
        .unwrap()
        .replace(
            "asl: {bids: {datatype: perf, suffix: asl}}",
            "asl: {bids: {datatype: perf, suffix: asl, entities: {run: \"1\"}}}",
        );
    let w = Workflow::parse(&text, "w.yaml").unwrap();
    let e = plan(&w, &request(Level::Participant))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("w.yaml:16:9: "), "{e}");
    contains_all(&e, &["selects 2 of the participant's 4 ASL series"]);
}

#[test]
fn before_after_example_plans() {
    let w = Workflow::from_path(&workflows_dir().join("examples/before-after.yaml")).unwrap();
    let p = plan(&w, &request(Level::Group)).unwrap();
    assert_eq!(
        job_ids(&p),
        [
            "cbf/sub-01",
            "cbf/sub-02",
            "cbf/sub-03",
            "drug-effect",
            "report"
        ]
    );
    let Op::PairedGroup(params) = &p.jobs[3].op else {
        panic!()
    };
    assert_eq!((params.permutations, params.seed), (5000, 7));
    let Op::GroupReport(rp) = &p.jobs[4].op else {
        panic!()
    };
    assert_eq!(
        rp.report,
        cbflow_workflow::GroupReportKind::Paired {
            contrast: params.contrast.clone()
        }
    );
}

#[test]
fn group_covariates_are_checked_before_anything_runs() {
    let with = |covs: &str| {
        let text = cbflow_workflow::BUILTIN_WORKFLOW.replace(
            "      baseline-roi: ACC_sub\n",
            &format!("      baseline-roi: ACC_sub\n      covariates: {covs}\n"),
        );
        assert!(
            text.contains("covariates:"),
            "the built-in workflow changed"
        );
        Workflow::parse(&text, "covariates.yaml").unwrap()
    };
    plan(&with("[global-cbf, age]"), &request(Level::Group)).unwrap();
    // this study's three subjects are all F
    let e = plan(&with("[sex]"), &request(Level::Group))
        .unwrap_err()
        .to_string();
    assert!(e.contains("every subject has F"), "{e}");
    let w = with("[global-cbf, weight]");
    let e = plan(&w, &request(Level::Group)).unwrap_err().to_string();
    contains_all(&e, &["participants.tsv", "weight", "no such column"]);
    // the participant level does not need it
    plan(&w, &request(Level::Participant)).unwrap();
}

#[test]
fn an_atlas_given_by_files_is_resolved_against_the_workflow_and_declares_its_labels() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("atlas")).unwrap();
    std::fs::write(t.path().join("atlas/parc.nii.gz"), b"not read at plan time").unwrap();
    // a Workbench label list (Schaefer/Tian), names that are not region names as they stand
    std::fs::write(
        t.path().join("atlas/parc_label.txt"),
        "HIP-rh\n1 171 243 85 255\n7Networks_LH_Vis_1\n2 120 18 134 0\nHIP rh\n3 1 2 3 255\n",
    )
    .unwrap();
    let text = |rois: &str| {
        format!(
            "version: 1\nname: atlas\nsteps:\n  - id: cbf\n    op: asl-cbf\n    inputs:\n      asl: {{bids: {{datatype: perf, suffix: asl}}}}\n    params:\n      atlas: {{image: atlas/parc.nii.gz, labels: atlas/parc_label.txt}}\n{rois}"
        )
    };
    let path = t.path().join("wf.yaml");
    std::fs::write(&path, text("")).unwrap();
    let p = participant_plan(&path);
    let a = asl_cbf(&p);
    let atlas = a.atlas.as_ref().unwrap();
    let dir = std::fs::canonicalize(t.path()).unwrap();
    assert_eq!(atlas.image, dir.join("atlas/parc.nii.gz"));
    // both files are inputs of every participant job (a changed atlas reruns them)
    assert!(p.jobs[0].inputs.contains(&dir.join("atlas/parc_label.txt")));
    assert_eq!(
        regions(a),
        [
            ("HIP_rh_1".to_string(), vec![1]),
            ("label_7Networks_LH_Vis_1".to_string(), vec![2]),
            ("HIP_rh_3".to_string(), vec![3]),
        ],
        "one region per label, named after it (a shared name gets its label)"
    );
    // declared regions are kept as they are
    std::fs::write(
        &path,
        text("      rois: [{name: hippocampus, labels: [1, 3]}]\n"),
    )
    .unwrap();
    let p = participant_plan(&path);
    let a = asl_cbf(&p);
    assert_eq!(a.rois.as_ref().unwrap().len(), 1);
    // a missing file is named, with the field
    std::fs::remove_file(t.path().join("atlas/parc_label.txt")).unwrap();
    let e = plan(
        &Workflow::from_path(&path).unwrap(),
        &request(Level::Participant),
    )
    .unwrap_err()
    .to_string();
    contains_all(&e, &["parc_label.txt", "atlas labels"]);
    // without a label table the image is a mask: one region, named after the file
    std::fs::write(
        &path,
        "version: 1\nname: mask\nsteps:\n  - id: cbf\n    op: asl-cbf\n    inputs:\n      asl: {bids: {datatype: perf, suffix: asl}}\n    params:\n      atlas: {image: atlas/parc.nii.gz}\n",
    )
    .unwrap();
    let p = participant_plan(&path);
    let a = asl_cbf(&p);
    assert_eq!(regions(a), [("parc".to_string(), vec![1])]);
    assert!(p.jobs[0].inputs.contains(&dir.join("atlas/parc.nii.gz")));
}

/// The participant-level plan of the workflow file at `path` on the base study.
fn participant_plan(path: &std::path::Path) -> cbflow_workflow::Plan {
    plan(
        &Workflow::from_path(path).unwrap(),
        &request(Level::Participant),
    )
    .unwrap()
}

/// The parameters of the plan's first job, an `asl-cbf` one.
fn asl_cbf(p: &cbflow_workflow::Plan) -> &cbflow_workflow::AslCbfParams {
    let Op::AslCbf(a) = &p.jobs[0].op else {
        panic!("asl-cbf")
    };
    a
}

/// The step's regions as (name, labels).
fn regions(a: &cbflow_workflow::AslCbfParams) -> Vec<(String, Vec<i32>)> {
    a.rois
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| (r.name.clone(), r.labels.clone()))
        .collect()
}
