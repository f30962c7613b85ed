//! A plan written to a file and read back (what a SLURM task runs) is the plan resolved here.

use cbflow_workflow::{
    Level, Overrides, Plan, PlanRequest, TemplateName, Workflow, plan, read_plan, write_plan,
};

use crate::{base_study, contains_all};

fn request(level: Level, labels: &[&str]) -> PlanRequest {
    PlanRequest {
        bids_dir: base_study().to_path_buf(),
        output_dir: base_study().join("../out"),
        level,
        participant_labels: labels.iter().map(|l| l.to_string()).collect(),
        overrides: Overrides {
            template: Some(TemplateName::Phantom),
            permutations: Some(77),
            seed: Some(5),
            smoothing_fwhm_mm: Some(4.5),
            cluster_threshold: Some(3.1),
            ..Overrides::default()
        },
    }
}

/// The plan as JSON, with the workflow text (which `Plan`'s own serialisation leaves out).
fn as_json(p: &Plan) -> (serde_json::Value, &str) {
    (serde_json::to_value(p).unwrap(), &p.workflow_text)
}

#[test]
fn a_plan_file_reads_back_as_the_plan_written() {
    let dir = tempfile::tempdir().unwrap();
    let w = Workflow::builtin();
    for level in [Level::Participant, Level::Group] {
        let p = plan(&w, &request(level, &[])).unwrap();
        let path = dir.path().join(format!("plan-{level}.json"));
        write_plan(&p, &path).unwrap();
        let back = read_plan(&path).unwrap();
        assert_eq!(as_json(&back), as_json(&p), "{level}");
        assert!(!back.workflow_text.is_empty());
        // every override is in the plan the task reads (none is forwarded by hand)
        let text = std::fs::read_to_string(&path).unwrap();
        if level == Level::Group {
            contains_all(
                &text,
                &["\"permutations\": 77", "\"seed\": 5", "4.5", "3.1"],
            );
        }
    }
}

#[test]
fn a_participant_part_of_the_plan_is_the_plan_of_that_participant() {
    let w = Workflow::builtin();
    let whole = plan(&w, &request(Level::Participant, &[])).unwrap();
    for label in ["01", "sub-02", "03"] {
        let alone = plan(&w, &request(Level::Participant, &[label])).unwrap();
        let part = whole.for_participant(label).unwrap();
        assert_eq!(as_json(&part), as_json(&alone), "{label}");
        assert!(
            part.jobs.len() >= 2,
            "the CBF job and the report: {}",
            part.jobs.len()
        );
    }
    let e = whole.for_participant("07").unwrap_err().to_string();
    contains_all(&e, &["no job of participant sub-07"]);
}

#[test]
fn a_plan_file_of_another_version_or_format_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let p = plan(&Workflow::builtin(), &request(Level::Group, &[])).unwrap();
    write_plan(&p, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let version = format!("\"cbflow_version\": \"{}\"", p.cbflow_version);
    assert!(text.contains(&version), "{text}");
    std::fs::write(
        &path,
        text.replace(&version, "\"cbflow_version\": \"0.0.1\""),
    )
    .unwrap();
    let e = read_plan(&path).unwrap_err().to_string();
    contains_all(&e, &["plan.json", "cbflow-version", "cbflow 0.0.1"]);
    std::fs::write(&path, text.replace("\"format\": 1", "\"format\": 9")).unwrap();
    let e = read_plan(&path).unwrap_err().to_string();
    contains_all(&e, &["plan.json", "format 9"]);
    std::fs::write(&path, "{\"jobs\": []}").unwrap();
    let e = read_plan(&path).unwrap_err().to_string();
    contains_all(&e, &["plan.json", "not a cbflow plan file"]);
}
