//! The report jobs the plan adds after a workflow's steps: at the participant level one
//! `participant-report` job per participant, after that participant's jobs; at the group level
//! one `group-report` job after the group steps. The design they word their pages by is the one
//! the plan resolved (the workflow's group step), and their inputs are those of the jobs they
//! read, so a report is redrawn exactly when what it shows can have changed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::job::Job;
use crate::spec::{
    GroupReportKind, GroupReportParams, Level, Op, ParticipantReportParams, REPORT_STEP,
    TemplateName,
};

/// The sorted union of the inputs of `deps`.
fn inputs_of(jobs: &[Job], deps: &[usize]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = deps
        .iter()
        .flat_map(|&d| jobs[d].inputs.iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The report job of `participant` (or of the group) drawing `op` of the maps in `template`
/// after `deps`, whose inputs are its inputs.
fn report_job(
    jobs: &[Job],
    participant: Option<String>,
    op: Op,
    deps: Vec<usize>,
    template: Option<TemplateName>,
) -> Job {
    Job {
        id: match &participant {
            Some(sub) => format!("{REPORT_STEP}/sub-{sub}"),
            None => REPORT_STEP.into(),
        },
        step: REPORT_STEP.into(),
        level: op.spec().level(),
        participant,
        template,
        inputs: inputs_of(jobs, &deps),
        matched: BTreeMap::new(),
        resources: op.spec().default_resources(),
        op,
        deps,
        prerequisite: false,
    }
}

/// Appends the report jobs of `level` to `jobs` (built in dependency order): for each
/// participant with jobs of this level, one job after them; at the group level, one job after
/// the group steps when one of them is a design the report draws (crossover or paired).
pub(crate) fn add_report_jobs(
    jobs: &mut Vec<Job>,
    level: Level,
    design: &cbflow_pipeline::StudyDesign,
) {
    let own = |j: &Job| j.level == level && !j.prerequisite;
    match level {
        Level::Participant => {
            let mut by_sub: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (i, j) in jobs.iter().enumerate() {
                if let (true, Some(sub)) = (own(j), &j.participant) {
                    by_sub.entry(sub.clone()).or_default().push(i);
                }
            }
            for (sub, deps) in by_sub {
                let op = Op::ParticipantReport(ParticipantReportParams {
                    design: design.clone(),
                });
                let template = deps.iter().find_map(|&d| jobs[d].template);
                let job = report_job(jobs, Some(sub), op, deps, template);
                jobs.push(job);
            }
        }
        Level::Group => {
            let deps: Vec<usize> = (0..jobs.len()).filter(|&i| own(&jobs[i])).collect();
            let crossover = deps
                .iter()
                .find(|&&d| matches!(jobs[d].op, Op::CrossoverGroup(_)));
            let paired = deps.iter().find_map(|&d| match &jobs[d].op {
                Op::PairedGroup(p) => Some((d, p.contrast.clone())),
                _ => None,
            });
            let (main, report) = match (crossover, paired) {
                (Some(&d), _) => (d, GroupReportKind::Crossover),
                (None, Some((d, contrast))) => (d, GroupReportKind::Paired { contrast }),
                (None, None) => {
                    tracing::warn!("no group step of a design the report knows; no group report");
                    return;
                }
            };
            let op = Op::GroupReport(GroupReportParams {
                design: design.clone(),
                report,
            });
            let job = report_job(jobs, None, op, deps, jobs[main].template);
            jobs.push(job);
        }
    }
}
