//! The resolve stage: a checked [`Workflow`] applied to a BIDS dataset and a request (level,
//! participants, command-line overrides) gives a [`Plan`]: the jobs, in dependency order, with
//! their parameters, the files they read and their resources.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::job::Job;

use crate::error::{Result, io_err};
use crate::plan_inputs::{
    mni_resource_dirs, receptor_files, resolve_atlas, resolve_err, root_files, walk_files,
};
use crate::spec::{Input, Level, Op, OpKind, Pos, TemplateName, Workflow};

/// Command-line settings that override the workflow's parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Template of every `asl-cbf` step.
    pub template: Option<TemplateName>,
    /// Resource directory with templates/ and atlases/ (default: `$CBFLOW_RESOURCES`).
    pub resources_dir: Option<PathBuf>,
    /// Permutations of every group step.
    pub permutations: Option<usize>,
    /// Seed of every group step.
    pub seed: Option<u64>,
    /// Smoothing (FWHM, mm) of every group step.
    pub smoothing_fwhm_mm: Option<f64>,
    /// Cluster-forming threshold of every group step.
    pub cluster_threshold: Option<f64>,
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The input BIDS dataset (read only).
    pub bids_dir: PathBuf,
    /// The derivatives dataset the outputs are published to.
    pub output_dir: PathBuf,
    /// `participant`: the participant-level jobs of the selected participants; `group`: the
    /// group-level jobs and, as prerequisites, the participant-level jobs they read (never run
    /// by the group level: read from the cache or from OUTPUT_DIR).
    pub level: Level,
    /// Participants (with or without `sub-`); empty = every participant with data.
    pub participant_labels: Vec<String>,
    /// Overrides of the workflow's parameters.
    pub overrides: Overrides,
}

/// The resolved workflow: jobs in dependency order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The workflow's name.
    pub workflow: String,
    /// Where the workflow came from.
    pub origin: String,
    /// The workflow file's text.
    #[serde(skip)]
    pub workflow_text: String,
    /// The input dataset (absolute).
    pub bids_dir: PathBuf,
    /// The derivatives dataset (as given).
    pub output_dir: PathBuf,
    /// The level planned.
    pub level: Level,
    /// The resource directory (canonical), resolved once here: `--resources`, else
    /// `$CBFLOW_RESOURCES`, else the user cache when it exists. Required (and its template
    /// files checked) when a job uses MNI152NLin6Asym; otherwise kept when it exists, for the
    /// steps that read PET maps. The jobs and the reports use this one and read no environment.
    pub resources_dir: Option<PathBuf>,
    /// A resource directory the request named (`--resources`, else `$CBFLOW_RESOURCES`) that is
    /// not a directory: none is used (`resources_dir` is `None`), and a step that would read one
    /// says which path it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources_dir_missing: Option<PathBuf>,
    /// cbflow's version.
    pub cbflow_version: String,
    /// The jobs; each job's dependencies come before it.
    pub jobs: Vec<Job>,
}

impl Plan {
    /// The job with id `id`.
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

/// Resolves `workflow` against the dataset and request.
pub fn plan(workflow: &Workflow, req: &PlanRequest) -> Result<Plan> {
    let bids_dir = std::fs::canonicalize(&req.bids_dir).map_err(|e| {
        resolve_err(
            &req.bids_dir,
            format!("the BIDS dataset cannot be read: {e}"),
        )
    })?;
    let layout = cbflow_bids::Layout::index(&bids_dir)?;
    let subjects = layout.subjects();
    let mut selected: Vec<String> = Vec::new();
    for l in &req.participant_labels {
        let l = cbflow_bids::normalize_participant_label(l)?;
        if !subjects.contains(&l) {
            return Err(resolve_err(
                &bids_dir,
                format!(
                    "participant '{l}' is not in the dataset (it has: {})",
                    subjects.join(", ")
                ),
            ));
        }
        if !selected.contains(&l) {
            selected.push(l);
        }
    }
    let ov = &req.overrides;
    // a participant level over sessions none of which has a T1w needs no template (DESIGN.md:
    // native-space CBF and QC, template-space steps skipped with a warning)
    let planned: Vec<String> = if selected.is_empty() {
        subjects.clone()
    } else {
        selected.clone()
    };
    let no_t1w = planned.iter().all(|sub| {
        layout
            .query(&cbflow_bids::Query::new().sub(sub).suffix("T1w").nifti())
            .is_empty()
    });
    // resolved parameters of every step
    let order = workflow.step_order()?;
    let mut ops: Vec<Op> = Vec::with_capacity(workflow.steps.len());
    for s in &workflow.steps {
        let mut op = s.value.params.value.clone();
        match &mut op {
            Op::AslCbf(p) => {
                if let Some(t) = ov.template {
                    p.template = t;
                }
                if req.level == Level::Participant && no_t1w && p.template != TemplateName::None {
                    tracing::warn!(
                        "step `{}`: no T1w image in the dataset{}: native-space CBF and QC only, without template {}",
                        *s.value.id,
                        if selected.is_empty() {
                            ""
                        } else {
                            " for these participants"
                        },
                        p.template.as_str()
                    );
                    p.template = TemplateName::None;
                }
                if let Some(a) = &mut p.atlas {
                    resolve_atlas(a, &workflow.origin, &s.value.id)?;
                    if p.rois.is_none() {
                        let all = a.all_regions().map_err(|m| {
                            resolve_err(
                                Path::new(&workflow.origin),
                                format!("step `{}`: atlas: {m}", *s.value.id),
                            )
                        })?;
                        p.rois = Some(all);
                    }
                }
            }
            Op::CrossoverGroup(p) => apply_group(
                ov,
                &mut p.permutations,
                &mut p.seed,
                &mut p.smoothing_fwhm_mm,
                &mut p.cluster_threshold,
            ),
            Op::PairedGroup(p) => apply_group(
                ov,
                &mut p.permutations,
                &mut p.seed,
                &mut p.smoothing_fwhm_mm,
                &mut p.cluster_threshold,
            ),
            // added by the plan below, never a step of a parsed workflow
            Op::ParticipantReport(_) | Op::GroupReport(_) => {}
            Op::ReceptorCorrelation(p) => {
                if let Some(x) = ov.seed {
                    p.seed = x;
                }
                if let Some(x) = ov.smoothing_fwhm_mm {
                    p.smoothing_fwhm_mm = x;
                }
            }
        }
        if let Err(m) = op.spec().check() {
            return Err(resolve_err(
                Path::new(&workflow.origin),
                format!("step `{}` after command-line overrides: {m}", *s.value.id),
            ));
        }
        // participants.tsv covariates exist before any participant job of a group run starts
        let covariates = match &op {
            Op::CrossoverGroup(p) => p.group_covariates(),
            Op::PairedGroup(p) => p.group_covariates(),
            _ => Vec::new(),
        };
        if req.level == Level::Group
            && let Op::CrossoverGroup(p) = &op
            && let Err(e) = cbflow_pipeline::design_preflight(&layout, &p.design.study_design())
        {
            return Err(resolve_err(
                Path::new(&workflow.origin),
                format!("step `{}`: {e}", *s.value.id),
            ));
        }
        if req.level == Level::Group
            && let Err(e) = cbflow_pipeline::covariates_preflight(&layout, &covariates)
        {
            return Err(resolve_err(
                Path::new(&workflow.origin),
                format!("step `{}`: {e}", *s.value.id),
            ));
        }
        ops.push(op);
    }
    // template of every step: its own (asl-cbf) or that of the step it reads from
    let mut templates: Vec<Option<TemplateName>> = vec![None; ops.len()];
    let index: BTreeMap<&str, usize> = workflow
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.value.id.value.as_str(), i))
        .collect();
    for &i in &order {
        templates[i] = match &ops[i] {
            Op::AslCbf(p) => Some(p.template),
            _ => workflow.steps[i]
                .value
                .inputs
                .values()
                .find_map(|inp| match &inp.value {
                    Input::Step(r) => index.get(r.step.as_str()).and_then(|&j| templates[j]),
                    Input::Bids(_) => None,
                }),
        };
        let step = &workflow.steps[i].value;
        if ops[i].spec().level() > req.level {
            // not planned at this level
            continue;
        }
        for inp in step.inputs.values() {
            if let Input::Step(r) = &inp.value {
                let j = index[r.step.as_str()];
                let makes = ops[j].spec().outputs();
                if !makes.contains(&r.output.as_str()) {
                    return Err(resolve_err(
                        Path::new(&workflow.origin),
                        format!(
                            "line {}: step `{}` reads output `{}` of step `{}`, which it does not make after the command-line overrides ({} makes: {}){}",
                            r.output.pos.line,
                            *step.id,
                            *r.output,
                            *r.step,
                            ops[j].kind(),
                            makes.join(", "),
                            if templates[j] == Some(TemplateName::None) {
                                "; the group level needs a template other than `none`"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
            }
        }
    }
    // the resource directory, resolved once (the environment and the user cache included)
    let named = cbflow_resources::resource_dir(ov.resources_dir.as_deref());
    let resources_dir = if templates.contains(&Some(TemplateName::Mni152NLin6Asym)) {
        let dir = named.clone()
            .ok_or_else(|| {
                resolve_err(
                    Path::new(&workflow.origin),
                    format!(
                        "template MNI152NLin6Asym needs its files: run `cbflow resources fetch MNI152NLin6Asym` (into the user cache directory, where cbflow finds them), or pass --resources DIR or set {} (a directory with templates/ and atlases/), or choose the template `phantom` or `none`",
                        cbflow_pipeline::RESOURCES_ENV
                    ),
                )
            })?;
        // every file the template reads, before any job starts
        for f in cbflow_pipeline::Template::MNI_FILES {
            if !dir.join(f).is_file() {
                return Err(resolve_err(
                    &dir.join(f),
                    format!(
                        "missing template file in the resource directory; {}",
                        cbflow_resources::fetch::fetch_hint(f)
                    ),
                ));
            }
        }
        Some(std::fs::canonicalize(&dir).map_err(io_err(&dir))?)
    } else {
        // other templates need no resources; steps that read PET maps use them when given
        named
            .as_ref()
            .filter(|d| d.is_dir())
            .map(|d| std::fs::canonicalize(d).map_err(io_err(d)))
            .transpose()?
    };
    let resources_dir_missing = named.filter(|d| !d.is_dir());
    let template_files = |t: Option<TemplateName>| -> Result<Vec<PathBuf>> {
        let mut v = Vec::new();
        if t == Some(TemplateName::Mni152NLin6Asym)
            && let Some(r) = &resources_dir
        {
            for d in mni_resource_dirs() {
                walk_files(&r.join(d), &mut v)?;
            }
        }
        Ok(v)
    };
    let top = root_files(&bids_dir)?;

    let mut jobs: Vec<Job> = Vec::new();
    // job indices of every step, by participant (None = group)
    let mut step_jobs: Vec<BTreeMap<Option<String>, usize>> = vec![BTreeMap::new(); ops.len()];
    for &i in &order {
        let s = &workflow.steps[i];
        let step = &s.value;
        let op = &ops[i];
        let spec = op.spec();
        let res = step
            .resources
            .as_ref()
            .map(|r| r.value.over(spec.default_resources()))
            .unwrap_or_else(|| spec.default_resources());
        let upstream: Vec<usize> = step
            .inputs
            .values()
            .filter_map(|inp| match &inp.value {
                Input::Step(r) => Some(index[r.step.as_str()]),
                Input::Bids(_) => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match spec.level() {
            Level::Participant => {
                let mut per_sub: BTreeMap<String, BTreeMap<String, Vec<PathBuf>>> = BTreeMap::new();
                let candidates: Vec<String> = if selected.is_empty() {
                    subjects.clone()
                } else {
                    selected.clone()
                };
                for sub in &candidates {
                    let mut m = BTreeMap::new();
                    for (slot, inp) in &step.inputs {
                        if let Input::Bids(q) = &inp.value {
                            let files: Vec<PathBuf> = layout
                                .query(&q.to_query(sub))
                                .into_iter()
                                .map(|f| f.rel_path.clone())
                                .collect();
                            m.insert(slot.clone(), files);
                        }
                    }
                    per_sub.insert(sub.clone(), m);
                }
                // the participants this step runs for: a match in every required BIDS slot
                let required: Vec<&str> = spec
                    .slots()
                    .iter()
                    .filter(|sl| sl.required && step.inputs.contains_key(sl.name))
                    .filter(|sl| matches!(step.inputs[sl.name].value, Input::Bids(_)))
                    .map(|sl| sl.name)
                    .collect();
                let runnable: Vec<&String> = per_sub
                    .iter()
                    .filter(|(_, m)| required.iter().all(|r| !m[*r].is_empty()))
                    .map(|(s, _)| s)
                    .collect();
                for sub in &selected {
                    if !runnable.contains(&sub) {
                        return Err(resolve_err(
                            &bids_dir,
                            format!(
                                "sub-{sub}: step `{}` finds no files for its input{} {} (line {})",
                                *step.id,
                                if required.len() > 1 { "s" } else { "" },
                                required.join(", "),
                                s.pos.line
                            ),
                        ));
                    }
                }
                if runnable.is_empty() {
                    return Err(resolve_err(
                        &bids_dir,
                        format!(
                            "step `{}` (line {}) finds no participant with files for {}",
                            *step.id,
                            s.pos.line,
                            required.join(", ")
                        ),
                    ));
                }
                if op.kind() == OpKind::AslCbf {
                    check_whole_participant(workflow, step.id.pos, &layout, &per_sub, &runnable)?;
                }
                for sub in runnable {
                    let mut inputs = top.clone();
                    walk_files(&bids_dir.join(format!("sub-{sub}")), &mut inputs)?;
                    inputs.extend(template_files(templates[i])?);
                    if let Op::AslCbf(crate::spec::AslCbfParams { atlas: Some(a), .. }) = op {
                        inputs.push(a.image.clone());
                        inputs.extend(a.labels.clone());
                    }
                    inputs.sort();
                    inputs.dedup();
                    let deps: Vec<usize> = upstream
                        .iter()
                        .filter_map(|&u| step_jobs[u].get(&Some(sub.clone())).copied())
                        .collect();
                    step_jobs[i].insert(Some(sub.clone()), jobs.len());
                    jobs.push(Job {
                        id: format!("{}/sub-{sub}", *step.id),
                        step: step.id.value.clone(),
                        level: Level::Participant,
                        participant: Some(sub.clone()),
                        op: op.clone(),
                        template: templates[i],
                        inputs,
                        matched: per_sub[sub].clone(),
                        deps,
                        resources: res,
                        prerequisite: req.level != Level::Participant,
                    });
                }
            }
            Level::Group => {
                let mut inputs = top.clone();
                let pheno = bids_dir.join("phenotype");
                if pheno.is_dir() {
                    walk_files(&pheno, &mut inputs)?;
                }
                for sub in &subjects {
                    let p = bids_dir.join(format!("sub-{sub}/sub-{sub}_sessions.tsv"));
                    if p.is_file() {
                        inputs.push(p);
                    }
                }
                inputs.extend(template_files(templates[i])?);
                if let Op::ReceptorCorrelation(p) = op {
                    inputs.extend(receptor_files(
                        p,
                        resources_dir.as_deref(),
                        &workflow.origin,
                    )?);
                }
                inputs.sort();
                inputs.dedup();
                let deps: Vec<usize> = upstream
                    .iter()
                    .flat_map(|&u| step_jobs[u].values().copied())
                    .collect();
                step_jobs[i].insert(None, jobs.len());
                jobs.push(Job {
                    id: step.id.value.clone(),
                    step: step.id.value.clone(),
                    level: Level::Group,
                    participant: None,
                    op: op.clone(),
                    template: templates[i],
                    inputs,
                    matched: BTreeMap::new(),
                    deps,
                    resources: res,
                    prerequisite: req.level != Level::Group,
                });
            }
        }
    }
    // the reports of the level, after its jobs, worded by the design the plan resolved
    crate::plan_reports::add_report_jobs(&mut jobs, req.level, &workflow.study_design());
    // keep the requested level and what it needs
    let keep: Vec<bool> = {
        let mut keep: Vec<bool> = jobs.iter().map(|j| j.level == req.level).collect();
        for i in (0..jobs.len()).rev() {
            if keep[i] {
                for &d in &jobs[i].deps {
                    keep[d] = true;
                }
            }
        }
        keep
    };
    if !keep.iter().any(|&k| k) {
        return Err(resolve_err(
            Path::new(&workflow.origin),
            format!("the workflow has no {} level step", req.level),
        ));
    }
    let mut new_index = vec![usize::MAX; jobs.len()];
    let mut kept = Vec::new();
    for (i, j) in jobs.into_iter().enumerate() {
        if keep[i] {
            new_index[i] = kept.len();
            kept.push(j);
        }
    }
    for j in &mut kept {
        j.deps = j.deps.iter().map(|&d| new_index[d]).collect();
        j.deps.sort_unstable();
    }
    let plan = Plan {
        workflow: workflow.name.clone(),
        origin: workflow.origin.clone(),
        workflow_text: workflow.text.clone(),
        bids_dir,
        output_dir: req.output_dir.clone(),
        level: req.level,
        resources_dir,
        resources_dir_missing,
        cbflow_version: env!("CARGO_PKG_VERSION").to_string(),
        jobs: kept,
    };
    check_order(&plan)?;
    Ok(plan)
}

fn apply_group(ov: &Overrides, perms: &mut usize, seed: &mut u64, sm: &mut f64, thr: &mut f64) {
    if let Some(v) = ov.permutations {
        *perms = v;
    }
    if let Some(v) = ov.seed {
        *seed = v;
    }
    if let Some(v) = ov.smoothing_fwhm_mm {
        *sm = v;
    }
    if let Some(v) = ov.cluster_threshold {
        *thr = v;
    }
}

/// `asl-cbf` processes every ASL run of a participant: a query that selects only some of them
/// would be a promise the pipeline does not keep.
fn check_whole_participant(
    workflow: &Workflow,
    pos: Pos,
    layout: &cbflow_bids::Layout,
    per_sub: &BTreeMap<String, BTreeMap<String, Vec<PathBuf>>>,
    runnable: &[&String],
) -> Result<()> {
    for sub in runnable {
        let all = layout.query(&cbflow_bids::Query::new().sub(sub).suffix("asl").nifti());
        let chosen = &per_sub[*sub]["asl"];
        if chosen.len() < all.len() {
            return Err(workflow.invalid(
                pos,
                format!(
                    "sub-{sub}: the `asl` query selects {} of the participant's {} ASL series; asl-cbf processes every ASL run of a participant (select participants with --participant-label instead)",
                    chosen.len(),
                    all.len()
                ),
            ));
        }
    }
    Ok(())
}

/// A topological check of the job graph (the plan is built in step order, so this only
/// guards the construction).
fn check_order(plan: &Plan) -> Result<()> {
    use petgraph::graph::DiGraph;
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..plan.jobs.len()).map(|i| g.add_node(i)).collect();
    for (i, j) in plan.jobs.iter().enumerate() {
        for &d in &j.deps {
            if d >= i {
                return Err(resolve_err(
                    Path::new(&plan.origin),
                    format!("internal: job {} depends on a later job", j.id),
                ));
            }
            g.add_edge(nodes[d], nodes[i], ());
        }
    }
    petgraph::algo::toposort(&g, None).map_err(|c| {
        resolve_err(
            Path::new(&plan.origin),
            format!("the jobs form a cycle at {}", plan.jobs[g[c.node_id()]].id),
        )
    })?;
    Ok(())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "workflow {} ({}), {} level, cbflow {}",
            self.workflow, self.origin, self.level, self.cbflow_version
        )?;
        writeln!(f, "  input:  {}", self.bids_dir.display())?;
        writeln!(f, "  output: {}", self.output_dir.display())?;
        if let Some(r) = &self.resources_dir {
            writeln!(f, "  resources: {}", r.display())?;
        }
        let n_pre = self.jobs.iter().filter(|j| j.prerequisite).count();
        writeln!(
            f,
            "{} jobs{}:",
            self.jobs.len(),
            if n_pre > 0 {
                format!(
                    " ({n_pre} of another level, read from the cache or OUTPUT_DIR, never run here)"
                )
            } else {
                String::new()
            }
        )?;
        let w = self.jobs.iter().map(|j| j.id.len()).max().unwrap_or(0);
        for (i, j) in self.jobs.iter().enumerate() {
            writeln!(
                f,
                "  [{:>3}] {:<w$}  {:<16} {:<11} cpus {:>2}  mem {:>5.1} GB  time {:>4} min  {} input files{}",
                i + 1,
                j.id,
                j.op.kind().name(),
                j.level.to_string(),
                j.resources.cpus,
                j.resources.mem_gb,
                j.resources.time_min,
                j.inputs.len(),
                if j.prerequisite {
                    "  (prerequisite)"
                } else {
                    ""
                },
            )?;
            let params = j.op.params_json();
            let mut p = String::new();
            flat_params(&params, "", &mut p);
            writeln!(f, "        params: {p}")?;
            if let Some(t) = j.template {
                writeln!(f, "        template: {}", t.as_str())?;
            }
            for (slot, files) in &j.matched {
                writeln!(f, "        {slot}: {} files", files.len())?;
                for file in files {
                    writeln!(f, "          {}", file.display())?;
                }
            }
            if !j.deps.is_empty() {
                let ids: Vec<&str> = j.deps.iter().map(|&d| self.jobs[d].id.as_str()).collect();
                writeln!(f, "        after: {}", ids.join(", "))?;
            }
        }
        Ok(())
    }
}

/// `a=1 b.c=2 ...` from a JSON object.
fn flat_params(v: &serde_json::Value, prefix: &str, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flat_params(x, &key, out);
            }
        }
        other => {
            if !out.is_empty() {
                out.push(' ');
            }
            match other {
                serde_json::Value::String(s) => out.push_str(&format!("{prefix}={s}")),
                _ => out.push_str(&format!("{prefix}={other}")),
            }
        }
    }
}
