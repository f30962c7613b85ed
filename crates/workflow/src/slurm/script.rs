//! The sbatch scripts of a request: `#SBATCH` directives from its resources, then the command
//! line of each task.

use std::fmt::Write as _;
use std::path::Path;

use super::request::{GROUP_PLAN_FILE, PARTICIPANT_PLAN_FILE, Request};
use crate::spec::Resources;

/// Quotes a word for bash.
fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn header(name: &str, r: &Resources, req: &Request, log: &str) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name={name}");
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", r.cpus);
    let _ = writeln!(
        s,
        "#SBATCH --mem={}M",
        (r.mem_gb * 1024.0).ceil().max(1.0) as u64
    );
    let _ = writeln!(
        s,
        "#SBATCH --time={}:{:02}:00",
        r.time_min / 60,
        r.time_min % 60
    );
    let _ = writeln!(s, "#SBATCH --output={log}");
    if let Some(p) = &req.partition {
        let _ = writeln!(s, "#SBATCH --partition={}", sh(p));
    }
    if let Some(a) = &req.account {
        let _ = writeln!(s, "#SBATCH --account={}", sh(a));
    }
    s
}

/// The task's own budget for its local executor: the cores SLURM allocated (the requested ones
/// when it does not say) and the memory requested, so that the jobs it runs in parallel stay
/// within the allocation.
fn budget(r: &Resources) -> String {
    format!(
        "--nprocs \"${{SLURM_CPUS_PER_TASK:-{}}}\" --mem-gb {}",
        r.cpus, r.mem_gb
    )
}

/// The participant array script and the group script (`None` when not requested). Each task
/// runs `cbflow run-plan` on its level's plan in `dir` (the participant tasks on their
/// participant's part of it), with the shared work directory and its own CPU and memory
/// budget.
pub fn scripts(req: &Request, dir: &Path) -> (Option<String>, Option<String>) {
    let mut mounts: Vec<(&Path, bool)> = vec![(&req.bids_dir, true), (&req.output_dir, false)];
    mounts.extend(req.extra_mounts.iter().map(|(p, ro)| (p.as_path(), *ro)));
    let prefix: Vec<String> = req.launcher.prefix(&mounts).iter().map(|w| sh(w)).collect();
    let command = |plan_file: &str| {
        let mut v = prefix.clone();
        v.push("run-plan".into());
        v.push(sh(&dir.join(plan_file).display().to_string()));
        v.push("--work-dir".into());
        v.push(sh(&req.work_dir.display().to_string()));
        v.join(" ")
    };
    let participant = (!req.participants.is_empty()).then(|| {
        let r = &req.participant_resources;
        let mut s = header(
            "cbflow-participant",
            r,
            req,
            &dir.join("participant-%a.log").display().to_string(),
        );
        let _ = writeln!(s, "#SBATCH --array=0-{}", req.participants.len() - 1);
        s.push_str("set -euo pipefail\n");
        let labels: Vec<String> = req.participants.iter().map(|l| sh(l)).collect();
        let _ = writeln!(s, "labels=({})", labels.join(" "));
        s.push_str("label=${labels[$SLURM_ARRAY_TASK_ID]}\n");
        let _ = writeln!(
            s,
            "exec {} --participant-label \"$label\" {}",
            command(PARTICIPANT_PLAN_FILE),
            budget(r)
        );
        s
    });
    let group = req.group_plan.is_some().then(|| {
        let r = &req.group_resources;
        let mut s = header(
            "cbflow-group",
            r,
            req,
            &dir.join("group.log").display().to_string(),
        );
        s.push_str("set -euo pipefail\n");
        let _ = writeln!(s, "exec {} {}", command(GROUP_PLAN_FILE), budget(r));
        s
    });
    (participant, group)
}

#[cfg(test)]
mod tests {
    use super::super::request::Launcher;
    use super::*;

    fn request() -> Request {
        Request {
            bids_dir: "/data/my study".into(),
            output_dir: "/out".into(),
            participants: vec!["01".into(), "02".into()],
            participant_plan: None,
            group_plan: Some(crate::plan::Plan {
                workflow: "w".into(),
                origin: "w.yaml".into(),
                workflow_text: String::new(),
                bids_dir: "/data/my study".into(),
                output_dir: "/out".into(),
                level: crate::spec::Level::Group,
                resources_dir: None,
                resources_dir_missing: None,
                cbflow_version: "test".into(),
                jobs: Vec::new(),
            }),
            work_dir: "/scratch/w".into(),
            extra_mounts: vec![("/res".into(), true)],
            participant_resources: Resources {
                cpus: 2,
                mem_gb: 3.5,
                time_min: 90,
            },
            group_resources: Resources {
                cpus: 2,
                mem_gb: 8.0,
                time_min: 30,
            },
            partition: Some("debug".into()),
            account: None,
            launcher: Launcher::Podman("localhost/cbflow".into()),
        }
    }

    #[test]
    fn scripts_carry_resources_labels_and_quoted_paths() {
        let (p, g) = scripts(&request(), Path::new("/out/logs/slurm"));
        let p = p.unwrap();
        assert!(
            p.contains("#SBATCH --array=0-1\nset -euo pipefail\n"),
            "{p}"
        );
        // sbatch reads directives only before the first command
        let first_command = p.lines().position(|l| !l.starts_with('#')).unwrap();
        assert!(
            p.lines()
                .skip(first_command)
                .all(|l| !l.starts_with("#SBATCH"))
        );
        assert!(p.contains("#SBATCH --cpus-per-task=2\n"));
        assert!(p.contains("#SBATCH --mem=3584M\n"));
        assert!(p.contains("#SBATCH --time=1:30:00\n"));
        assert!(p.contains("#SBATCH --partition=debug\n"));
        assert!(p.contains("labels=(01 02)\n"));
        assert!(p.contains(
            "podman run --rm --pull=never -v '/data/my study:/data/my study:ro' -v /out:/out -v /res:/res:ro localhost/cbflow run-plan /out/logs/slurm/plan-participant.json --work-dir /scratch/w --participant-label \"$label\""
        ), "{p}");
        let g = g.unwrap();
        assert!(g.contains("#SBATCH --mem=8192M\n"));
        // each task's executor keeps within the task's allocation
        assert!(
            p.contains(" --participant-label \"$label\" --nprocs \"${SLURM_CPUS_PER_TASK:-2}\" --mem-gb 3.5\n"),
            "{p}"
        );
        assert!(
            g.contains(" run-plan /out/logs/slurm/plan-group.json --work-dir /scratch/w --nprocs"),
            "{g}"
        );
        assert!(g.contains(" --mem-gb 8\n"), "{g}");
        assert!(!g.contains("--array"));
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh("a'b"), r"'a'\''b'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh("/x/y-1.nii.gz"), "/x/y-1.nii.gz");
    }
}
