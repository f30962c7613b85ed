//! Parsing a workflow file and checking what the types cannot: step ids, inputs, cycles.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::MessageFormatter;

use super::base::{BUILTIN_WORKFLOW, FORMAT_VERSION, Level, Pos, StepRef};
use super::format::{Input, Step, Workflow};
use super::op::Op;
use super::opspec::SlotKind;
use super::params_asl::{AslCbfParams, OUT_CBF_TEMPLATE, TemplateName};
use super::params_crossover::RunPair;
use crate::error::{Error, Result, io_err, snippet};

// ---------------------------------------------------------------------------------------------
// Parsing and checking.

impl Workflow {
    /// The parameters of the workflow's participant-level `asl-cbf` step (the first, if there
    /// are several); `None` for a workflow without one.
    pub fn asl_step(&self) -> Option<&AslCbfParams> {
        self.steps.iter().find_map(|s| match &s.value.params.value {
            Op::AslCbf(p) => Some(p),
            _ => None,
        })
    }

    /// The study design the workflow declares, for what reads the outputs (the reports): the
    /// first `crossover-group` step's, else the first `paired-group` step's before and during
    /// runs (the rest default), else the ketamine + naltrexone defaults.
    pub fn study_design(&self) -> cbflow_pipeline::StudyDesign {
        let ops = || self.steps.iter().map(|s| &s.value.params.value);
        if let Some(d) = ops().find_map(|op| match op {
            Op::CrossoverGroup(p) => Some(p.design.study_design()),
            _ => None,
        }) {
            return d;
        }
        match ops().find_map(|op| match op {
            Op::PairedGroup(p) => Some(p.design.selectors()),
            _ => None,
        }) {
            Some((before, during)) => cbflow_pipeline::StudyDesign {
                before,
                during,
                ..Default::default()
            },
            None => cbflow_pipeline::StudyDesign::default(),
        }
    }

    /// Reads and checks a workflow file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The built-in workflow (the ketamine + naltrexone crossover study).
    pub fn builtin() -> Self {
        Self::parse(
            BUILTIN_WORKFLOW,
            "<builtin workflows/ketamine-naltrexone-crossover.yaml>",
        )
        .expect("the built-in workflow is checked by the tests")
    }

    /// Parses and checks workflow text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut opts = serde_saphyr::Options::default();
        opts.strict_booleans = true;
        let mut w: Workflow = serde_saphyr::from_str_with_options(text, opts).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = serde_saphyr::DefaultMessageFormatter
                .format_message(e.without_snippet())
                .into_owned();
            Error::Parse {
                origin: origin.to_string(),
                line,
                column,
                snippet: snippet(text, line, column),
                message,
            }
        })?;
        w.origin = origin.to_string();
        w.text = text.to_string();
        w.check()?;
        Ok(w)
    }

    /// An error located at `pos` of this workflow.
    pub(crate) fn invalid(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::Invalid {
            origin: self.origin.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            snippet: snippet(&self.text, pos.line, pos.column),
        }
    }

    /// The step with id `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().map(|s| &s.value).find(|s| *s.id == id)
    }

    /// The JSON Schema of the workflow format (2020-12), pretty-printed with a final newline.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Workflow);
        let mut s = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
        s.push('\n');
        s
    }

    /// Checks what the types cannot: version, ids, parameters, input slots, references to
    /// outputs and cycles.
    fn check(&self) -> Result<()> {
        if *self.version != FORMAT_VERSION {
            return Err(self.invalid(
                self.version.pos,
                format!(
                    "workflow format version {} is not supported (this build reads version {FORMAT_VERSION})",
                    *self.version
                ),
            ));
        }
        if self.steps.is_empty() {
            return Err(self.invalid(Pos { line: 1, column: 1 }, "the workflow has no steps"));
        }
        let valid_id = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let mut seen: BTreeMap<&str, Pos> = BTreeMap::new();
        for s in &self.steps {
            let id = &s.value.id;
            if !valid_id(id) {
                return Err(self.invalid(
                    id.pos,
                    format!(
                        "step id {:?}: use letters, digits, `-` and `_` only",
                        id.value
                    ),
                ));
            }
            if id.value == super::REPORT_STEP {
                return Err(self.invalid(
                    id.pos,
                    format!(
                        "step id `{}` is the one the plan gives the report jobs it adds: name the step otherwise",
                        id.value
                    ),
                ));
            }
            if let Some(first) = seen.insert(&id.value, id.pos) {
                return Err(self.invalid(
                    id.pos,
                    format!(
                        "duplicate step id `{}` (first defined at line {})",
                        id.value, first.line
                    ),
                ));
            }
        }
        for s in &self.steps {
            let step = &s.value;
            let spec = step.params.spec();
            if let Some((pos, m)) = spec.located_problem() {
                return Err(self.invalid(pos, format!("step `{}`: {m}", *step.id)));
            }
            if let Err(m) = spec.check() {
                return Err(self.invalid(step.params.pos, format!("step `{}`: {m}", *step.id)));
            }
            if let Some(r) = &step.resources {
                if r.cpus == Some(0) {
                    return Err(self.invalid(r.pos, "cpus: must be at least 1"));
                }
                if let Some(m) = r.mem_gb
                    && !(m.is_finite() && m > 0.0)
                {
                    return Err(self.invalid(r.pos, format!("mem-gb: {m} must be more than 0")));
                }
            }
            let slots = spec.slots();
            for (name, input) in &step.inputs {
                let Some(slot) = slots.iter().find(|sl| sl.name == name) else {
                    return Err(self.invalid(
                        input.pos,
                        format!(
                            "step `{}`: operation {} has no input `{name}` (its inputs: {})",
                            *step.id,
                            *step.op,
                            slots.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                };
                match (&input.value, slot.kind) {
                    (Input::Bids(_), SlotKind::Bids) => {}
                    (Input::Step(r), SlotKind::Output(_)) => {
                        self.upstream(step, r)?;
                    }
                    (Input::Step(_), SlotKind::Bids) => {
                        return Err(self.invalid(
                            input.pos,
                            format!(
                                "step `{}`: input `{name}` of {} reads the BIDS dataset: write `bids: {{...}}`",
                                *step.id, *step.op
                            ),
                        ));
                    }
                    (Input::Bids(_), SlotKind::Output(accepts)) => {
                        return Err(self.invalid(
                            input.pos,
                            format!(
                                "step `{}`: input `{name}` of {} takes another step's output ({}): write `step: <id>` and `output: <name>`",
                                *step.id,
                                *step.op,
                                accepts.join(" or ")
                            ),
                        ));
                    }
                }
            }
            for slot in slots.iter().filter(|s| s.required) {
                if !step.inputs.contains_key(slot.name) {
                    return Err(self.invalid(
                        s.pos,
                        format!(
                            "step `{}`: operation {} needs input `{}` ({})",
                            *step.id, *step.op, slot.name, slot.doc
                        ),
                    ));
                }
            }
        }
        // cycles before output names: a cycle is the more basic error
        self.step_order()?;
        for s in &self.steps {
            let step = &s.value;
            let slots = step.params.spec().slots();
            for (name, input) in &step.inputs {
                if let (Input::Step(r), Some(SlotKind::Output(accepts))) = (
                    &input.value,
                    slots.iter().find(|sl| sl.name == name).map(|sl| sl.kind),
                ) {
                    self.check_ref(step, r, accepts)?;
                }
            }
        }
        Ok(())
    }

    /// The step `r` reads from; an error at `r` naming the steps there are if it does not exist.
    fn upstream(&self, step: &Step, r: &StepRef) -> Result<&Step> {
        self.step(&r.step).ok_or_else(|| {
            self.invalid(
                r.step.pos,
                format!(
                    "step `{}` reads from step `{}`, which does not exist (steps: {})",
                    *step.id,
                    *r.step,
                    self.steps
                        .iter()
                        .map(|s| s.value.id.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    fn check_ref(&self, step: &Step, r: &StepRef, accepts: &[&str]) -> Result<()> {
        let up = self.upstream(step, r)?;
        let makes = up.params.spec().outputs();
        if !makes.contains(&r.output.as_str()) {
            let mut m = format!(
                "step `{}` reads output `{}` of step `{}`, which it does not make ({} makes: {})",
                *step.id,
                *r.output,
                *r.step,
                *up.op,
                makes.join(", ")
            );
            if let Op::AslCbf(p) = &up.params.value
                && p.template == TemplateName::None
                && r.output.as_str() == OUT_CBF_TEMPLATE
            {
                m.push_str("; template-space outputs need a template other than `none`");
            }
            return Err(self.invalid(r.output.pos, m));
        }
        if !accepts.contains(&r.output.as_str()) {
            return Err(self.invalid(
                r.output.pos,
                format!(
                    "step `{}` ({}) cannot read output `{}`: this input takes {}",
                    *step.id,
                    *step.op,
                    *r.output,
                    accepts.join(" or ")
                ),
            ));
        }
        // the group step's regions must be extracted by the participant step it reads
        // (every label of an atlas is known once the plan reads its table: checked then)
        if let (Op::CrossoverGroup(g), Op::AslCbf(a)) = (&step.params.value, &up.params.value)
            && let Some(regions) = a.regions()
        {
            let names: Vec<String> = regions.into_iter().map(|r| r.name).collect();
            if let Some(why) =
                cbflow_pipeline::GroupOptions::rois_problem(&g.rois, &g.baseline_roi, Some(&names))
            {
                return Err(self.invalid(
                    step.params.pos,
                    format!("step `{}`: {why} (step `{}`)", *step.id, *r.step),
                ));
            }
        }
        if up.params.spec().level() == Level::Group
            && step.params.spec().level() == Level::Participant
        {
            return Err(self.invalid(
                r.step.pos,
                format!(
                    "participant-level step `{}` cannot read group-level step `{}`",
                    *step.id, *r.step
                ),
            ));
        }
        Ok(())
    }

    /// The steps' indices in dependency order (a step after every step it reads from); a
    /// cycle is an error at the first input (in file order) that closes it.
    pub fn step_order(&self) -> Result<Vec<usize>> {
        use petgraph::graph::DiGraph;
        let n = self.steps.len();
        let mut g = DiGraph::<usize, Pos>::with_capacity(n, n);
        let nodes: Vec<_> = (0..n).map(|i| g.add_node(i)).collect();
        let index: BTreeMap<&str, usize> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.value.id.value.as_str(), i))
            .collect();
        for (i, s) in self.steps.iter().enumerate() {
            for input in s.value.inputs.values() {
                if let Input::Step(r) = &input.value
                    && let Some(&j) = index.get(r.step.as_str())
                {
                    g.add_edge(nodes[j], nodes[i], r.step.pos);
                }
            }
        }
        match petgraph::algo::toposort(&g, None) {
            Ok(order) => Ok(order.into_iter().map(|n| g[n]).collect()),
            Err(_) => {
                let sccs = petgraph::algo::tarjan_scc(&g);
                let mut cyc: Vec<usize> = sccs
                    .into_iter()
                    .filter(|c| c.len() > 1 || g.contains_edge(c[0], c[0]))
                    .min_by_key(|c| c.iter().map(|n| g[*n]).min())
                    .expect("toposort found a cycle")
                    .into_iter()
                    .map(|n| g[n])
                    .collect();
                cyc.sort_unstable();
                // the first step (file order) of the cycle, at its input from another member
                let first = cyc[0];
                let s = &self.steps[first].value;
                let pos = s
                    .inputs
                    .values()
                    .find_map(|inp| match &inp.value {
                        Input::Step(r) => index
                            .get(r.step.as_str())
                            .filter(|j| cyc.contains(j))
                            .map(|_| r.step.pos),
                        Input::Bids(_) => None,
                    })
                    .unwrap_or(self.steps[first].pos);
                // walk the cycle from `first` for the message
                let mut names = vec![s.id.value.clone()];
                let mut cur = first;
                for _ in 0..cyc.len() {
                    let next =
                        self.steps[cur]
                            .value
                            .inputs
                            .values()
                            .find_map(|inp| match &inp.value {
                                Input::Step(r) => index
                                    .get(r.step.as_str())
                                    .copied()
                                    .filter(|j| cyc.contains(j)),
                                Input::Bids(_) => None,
                            });
                    match next {
                        Some(j) => {
                            names.push(self.steps[j].value.id.value.clone());
                            cur = j;
                            if j == first {
                                break;
                            }
                        }
                        None => break,
                    }
                }
                Err(self.invalid(
                    pos,
                    format!(
                        "the steps form a cycle: {} (each reads the output of the next)",
                        names.join(" ← ")
                    ),
                ))
            }
        }
    }
}
