//! The crossover design: which sessions had which of the two pre-treatments (`sessions.tsv`;
//! the workflow names them, placebo and naltrexone by default), which runs are before and during
//! the drug, the contrasts of the four cells, and the subjects' runs found among the
//! participant-level outputs.

use std::path::{Path, PathBuf};

use cbflow_bids::{DerivativesWriter, Entities, Layout, Table};
use cbflow_stats::{CrossoverContrast, Tail, Treatment};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Result;
use crate::catalogue::{GroupFile, RunFile, TemplateSpace};
use crate::error::meta_err;
use crate::outputs::{
    RunSelector, find_template_run, template_output, wanted_template_cbf, write_group_table,
};
use crate::template::Template;

/// How the study maps onto BIDS (the workflow's declarations; these are the defaults of the
/// ketamine + naltrexone workflow). The two pre-treatment levels and the drug are named by the
/// workflow: the level values of `sessions.tsv` name the four cells (`<control>-before`, …), the
/// weight columns, the table rows and the reports' wording, and the drug names the default
/// contrasts (`<drug>Under<Control>`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyDesign {
    /// `sessions.tsv` column naming the pre-treatment of each session.
    pub pretreatment_column: String,
    /// Its value for the reference (control) pre-treatment: `placebo` in the study.
    pub control: String,
    /// Its value for the active pre-treatment: `naltrexone` in the study.
    pub active: String,
    /// The drug given between the scan before and the scan during: `ketamine` in the study.
    pub drug: String,
    /// `sessions.tsv` column with the period (1 or 2).
    pub period_column: String,
    /// The run of each session before the drug (by default `run-1`).
    pub before: RunSelector,
    /// The run of each session during the drug (by default `run-2`).
    pub during: RunSelector,
}

impl Default for StudyDesign {
    fn default() -> Self {
        Self {
            pretreatment_column: "pretreatment".into(),
            control: "placebo".into(),
            active: "naltrexone".into(),
            drug: "ketamine".into(),
            period_column: "period".into(),
            before: RunSelector::run("1"),
            during: RunSelector::run("2"),
        }
    }
}

impl StudyDesign {
    /// The two pre-treatment levels, control first (arm 0, arm 1).
    pub fn arms(&self) -> [&str; 2] {
        [&self.control, &self.active]
    }

    /// The four cells of the crossover in the order of [`CrossoverContrast::weights`]:
    /// `<control>-before`, `<control>-during`, `<active>-before`, `<active>-during`; the keys
    /// of a contrast's weights in the workflow and in the `ContrastWeights` sidecar field.
    pub fn cells(&self) -> [String; 4] {
        self.cell_names('-')
    }

    /// The columns of `desc-contrasts_table.tsv` holding the cells' weights (`<control>_before`,
    /// …: the cells with `_`, as table columns are named).
    pub fn weight_columns(&self) -> [String; 4] {
        self.cell_names('_')
    }

    fn cell_names(&self, sep: char) -> [String; 4] {
        let [c, a] = self.arms();
        [
            format!("{c}{sep}before"),
            format!("{c}{sep}during"),
            format!("{a}{sep}before"),
            format!("{a}{sep}during"),
        ]
    }

    /// Why the level and drug names cannot name cells, columns and contrasts, if they cannot:
    /// empty, the same twice, or with white space, quotes, commas, `/` or `=`.
    pub fn names_problem(&self) -> Option<String> {
        for (field, v) in [
            ("control", &self.control),
            ("active", &self.active),
            ("drug", &self.drug),
        ] {
            if v.trim().is_empty() {
                return Some(format!("design: {field} is empty"));
            }
            if let Some(c) = v
                .chars()
                .find(|c| c.is_whitespace() || "\"',/=\\".contains(*c))
            {
                return Some(format!(
                    "design: {field} {v:?} has {c:?}: the pre-treatment levels and the drug name cells, table columns and contrasts, so they are single words (no white space, quotes, commas, `/`, `=` or `\\`)"
                ));
            }
        }
        if self.control == self.active {
            return Some(format!(
                "design: control and active are both {:?}: the crossover needs two different pre-treatments",
                self.control
            ));
        }
        None
    }
}

/// A name in camel case from its letters and digits (`gaba-a` → `gabaA`), capitalised or not.
fn camel(name: &str, capital: bool) -> String {
    let mut out = String::new();
    let mut up = capital;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if up {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            up = false;
        } else {
            up = !out.is_empty() || capital;
        }
    }
    out
}

#[derive(Debug, Clone)]
pub(crate) struct SubjectData {
    pub(crate) label: String,
    /// (placebo session, naltrexone session) labels.
    pub(crate) sessions: [String; 2],
    /// Period of the placebo and naltrexone sessions.
    pub(crate) periods: [u8; 2],
    /// Entities of the participant-level runs `[arm][before, during]` (arm 0 placebo, 1
    /// naltrexone), found in OUTPUT_DIR by [`find_runs`]; empty until then.
    pub(crate) runs: Vec<[Entities; 2]>,
}

impl SubjectData {
    /// Path of one cell's template-space file of kind `kind`.
    pub(crate) fn output(
        &self,
        out: &Path,
        tpl: &Template,
        arm: usize,
        time: usize,
        kind: fn(TemplateSpace) -> RunFile,
    ) -> Result<PathBuf> {
        template_output(out, &self.runs[arm][time], tpl, kind)
    }
}

/// Finds each subject's four runs among the participant-level outputs in `out` by the design's
/// run selectors (all of a run's entities are kept); subjects with a run missing are returned
/// with the reason.
pub(crate) fn find_runs(
    out: &Path,
    tpl: &Template,
    d: &StudyDesign,
    subjects: Vec<SubjectData>,
) -> Result<(Vec<SubjectData>, Vec<(String, String)>)> {
    let mut complete = Vec::with_capacity(subjects.len());
    let mut excluded = Vec::new();
    for mut s in subjects {
        let mut missing = Vec::new();
        let mut runs = Vec::new();
        for ses in &s.sessions {
            let mut pair = [Entities::new(), Entities::new()];
            for (t, sel) in [&d.before, &d.during].into_iter().enumerate() {
                match find_template_run(out, tpl, &s.label, Some(ses), sel)? {
                    Some(e) => pair[t] = e,
                    None => missing.push(wanted_template_cbf(tpl, &s.label, Some(ses), sel)),
                }
            }
            runs.push(pair);
        }
        if missing.is_empty() {
            s.runs = runs;
            complete.push(s);
        } else {
            excluded.push((
                s.label.clone(),
                format!(
                    "missing participant-level outputs in {}: {}",
                    out.display(),
                    missing.join(", ")
                ),
            ));
        }
    }
    Ok((complete, excluded))
}

/// One contrast of the crossover group level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupContrast {
    /// Name: the `contrast-<name>` entity of its outputs (letters and digits only).
    pub name: String,
    /// What it measures, for sidecars and reports.
    pub description: String,
    /// The weights of the four cells.
    pub contrast: CrossoverContrast,
    /// The tail tested.
    pub tail: Tail,
}

impl GroupContrast {
    /// The four contrasts of a crossover design, named from its levels and drug: the drug's
    /// effect (during − before) under the control and under the active pre-treatment and pooled
    /// (one-sided, positive), and the interaction (two-sided). For the ketamine + naltrexone
    /// study: `ketamineUnderPlacebo`, `ketamineUnderNaltrexone`, `ketaminePooled`,
    /// `interaction`.
    pub fn defaults(d: &StudyDesign) -> Vec<Self> {
        let c = |name: String, description: String, named: CrossoverContrast, tail| Self {
            name,
            description,
            contrast: CrossoverContrast::Weights(named.weights()),
            tail,
        };
        let drug = camel(&d.drug, false);
        let [control, active] = d.arms();
        vec![
            c(
                format!("{drug}Under{}", camel(control, true)),
                format!("{} (during − before) under {control}", d.drug),
                CrossoverContrast::KetamineUnderPlacebo,
                Tail::Positive,
            ),
            c(
                format!("{drug}Under{}", camel(active, true)),
                format!("{} (during − before) under {active}", d.drug),
                CrossoverContrast::KetamineUnderNaltrexone,
                Tail::Positive,
            ),
            c(
                format!("{drug}Pooled"),
                format!("{} (during − before), mean of both pre-treatments", d.drug),
                CrossoverContrast::KetaminePooled,
                Tail::Positive,
            ),
            c(
                "interaction".into(),
                format!(
                    "pre-treatment × time: {} effect under {control} − under {active}",
                    d.drug
                ),
                CrossoverContrast::Interaction,
                Tail::TwoSided,
            ),
        ]
    }

    /// Why this contrast cannot be tested, if it cannot: a name that is not a BIDS label, or
    /// weights that are not a within-subject difference.
    pub fn problem(&self) -> Option<String> {
        if cbflow_bids::validate_label(&self.name).is_err() {
            return Some(format!(
                "contrast name '{}' must be letters and digits only (it becomes the BIDS entity contrast-<name>)",
                self.name
            ));
        }
        self.contrast
            .validate()
            .err()
            .map(|e| format!("contrast {}: {e}", self.name))
    }

    /// Why this list cannot be tested, if it cannot: empty, a contrast with a
    /// [`problem`](Self::problem), or a name declared twice. The workflow's checks and the group
    /// level share it.
    pub fn list_problem(contrasts: &[Self]) -> Option<String> {
        if contrasts.is_empty() {
            return Some("no contrast to test".into());
        }
        for (k, c) in contrasts.iter().enumerate() {
            if let Some(why) = c.problem() {
                return Some(why);
            }
            if contrasts[..k].iter().any(|o| o.name == c.name) {
                return Some(format!("contrast {} is declared twice", c.name));
            }
        }
        None
    }

    /// Sidecar fields that let later steps (receptor maps, reports) rebuild the contrast.
    pub(crate) fn sidecar(&self, d: &StudyDesign) -> serde_json::Value {
        let w = self.contrast.weights();
        let weights: serde_json::Map<String, serde_json::Value> = d
            .cells()
            .into_iter()
            .zip(w)
            .map(|(k, v)| (k, json!(v)))
            .collect();
        json!({
            "ContrastDescription": self.description,
            "ContrastWeights": weights,
        })
    }
}

/// Refuses an empty list, duplicate names and contrasts that cannot be tested.
pub(crate) fn check_contrasts(contrasts: &[GroupContrast], out: &Path) -> Result<()> {
    match GroupContrast::list_problem(contrasts) {
        Some(message) => Err(meta_err(out, "contrasts", message)),
        None => Ok(()),
    }
}

fn tail_name(t: Tail) -> &'static str {
    match t {
        Tail::Positive => "positive",
        Tail::Negative => "negative",
        Tail::TwoSided => "two-sided",
    }
}

/// Writes `desc-contrasts_table.tsv`: the contrasts of this group run, in declared order.
pub(crate) fn write_contrast_table(
    w: &DerivativesWriter,
    contrasts: &[GroupContrast],
    d: &StudyDesign,
) -> Result<Vec<PathBuf>> {
    let rows = contrasts
        .iter()
        .map(|c| {
            let mut row = vec![
                c.name.clone(),
                c.description.clone(),
                tail_name(c.tail).to_string(),
            ];
            row.extend(c.contrast.weights().iter().map(|v| format!("{v}")));
            row
        })
        .collect();
    let weight_columns = d.weight_columns();
    let mut cols = vec!["contrast", "description", "tail"];
    cols.extend(weight_columns.iter().map(String::as_str));
    write_group_table(
        w,
        &GroupFile::Contrasts,
        &cols,
        rows,
        json!({
            "Description": format!("the contrasts of the last group run, in declared order: each weighs the four cells (session by pre-treatment, {} or {}, scan before or during {}); the weights sum to 0", d.control, d.active, d.drug),
            "Cells": d.cells(),
            "tail": {"Description": "alternative hypothesis of the permutation test", "Levels": {"positive": "contrast > 0", "negative": "contrast < 0", "two-sided": "contrast ≠ 0"}},
        }),
    )
}

/// The contrasts of the last crossover group run in `output_dir` (its
/// `desc-contrasts_table.tsv`), in declared order; empty when there is none. Maps of contrasts
/// an earlier run tested and the last one did not are left out. The four weight columns are
/// those after `tail`, whatever the design named them.
pub fn written_contrasts(output_dir: &Path) -> Result<Vec<GroupContrast>> {
    let path = GroupFile::Contrasts.path(output_dir)?;
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let t = Table::read_tsv(&path)?;
    let names = t.column("contrast")?;
    let descriptions = t.column("description")?;
    let tails = t.column("tail")?;
    let tail_at = t.columns.iter().position(|c| c == "tail").unwrap_or(0);
    let weight_columns: Vec<&str> = t
        .columns
        .iter()
        .skip(tail_at + 1)
        .map(String::as_str)
        .collect();
    if weight_columns.len() != 4 {
        return Err(meta_err(
            &path,
            "tail",
            format!(
                "{} columns after tail; expected the four cells' weights",
                weight_columns.len()
            ),
        ));
    }
    let weights = weight_columns
        .iter()
        .map(|c| t.f64_column(c))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let row = i + 2;
        let tail = match tails[i] {
            "positive" => Tail::Positive,
            "negative" => Tail::Negative,
            "two-sided" => Tail::TwoSided,
            other => {
                return Err(meta_err(
                    &path,
                    "tail",
                    format!("row {row}: {other:?} is not positive, negative or two-sided"),
                ));
            }
        };
        let mut w = [0.0; 4];
        for (k, col) in weights.iter().enumerate() {
            w[k] = col[i].ok_or_else(|| {
                meta_err(
                    &path,
                    weight_columns[k],
                    format!("row {row}: missing weight"),
                )
            })?;
        }
        out.push(GroupContrast {
            name: name.to_string(),
            description: descriptions[i].to_string(),
            contrast: CrossoverContrast::Weights(w),
            tail,
        });
    }
    Ok(out)
}

/// Reads the crossover design of every subject from its `sessions.tsv`.
pub(crate) fn read_design(
    layout: &Layout,
    d: &StudyDesign,
) -> Result<(Vec<SubjectData>, Vec<(String, String)>)> {
    let mut subjects = Vec::new();
    let mut excluded = Vec::new();
    for sub in layout.subjects() {
        let path = layout
            .root()
            .join(format!("sub-{sub}/sub-{sub}_sessions.tsv"));
        let Some(t) = layout.sessions_table(&sub)? else {
            excluded.push((sub.clone(), "no sessions.tsv".into()));
            continue;
        };
        let ids = t.column("session_id")?;
        let pre = t.column(&d.pretreatment_column)?;
        let per = t.f64_column(&d.period_column)?;
        let mut ses = [None, None];
        let mut periods = [0u8; 2];
        for ((id, p), period) in ids.iter().zip(&pre).zip(&per) {
            let slot = if *p == d.control {
                0
            } else if *p == d.active {
                1
            } else if p.trim().is_empty() || p.trim() == "n/a" {
                return Err(meta_err(
                    &path,
                    &d.pretreatment_column,
                    format!(
                        "{} for {id}: every session of the crossover needs its pre-treatment ({:?} or {:?})",
                        if p.trim().is_empty() { "empty" } else { "n/a" },
                        d.control,
                        d.active
                    ),
                ));
            } else {
                return Err(meta_err(
                    &path,
                    &d.pretreatment_column,
                    format!(
                        "{p:?} is neither {:?} nor {:?}, the design's control and active pre-treatments (a study with other words names them in the workflow: design: {{control: …, active: …}})",
                        d.control, d.active
                    ),
                ));
            };
            let period = period
                .ok_or_else(|| meta_err(&path, &d.period_column, format!("missing for {id}")))?;
            if period != 1.0 && period != 2.0 {
                return Err(meta_err(
                    &path,
                    &d.period_column,
                    format!("{period} for {id}: expected 1 or 2"),
                ));
            }
            ses[slot] = Some(id.trim_start_matches("ses-").to_string());
            periods[slot] = period as u8;
        }
        match ses {
            [Some(p), Some(n)] => subjects.push(SubjectData {
                label: sub,
                sessions: [p, n],
                periods,
                runs: Vec::new(),
            }),
            _ => excluded.push((
                sub,
                format!("needs one {} and one {} session", d.control, d.active),
            )),
        }
    }
    Ok((subjects, excluded))
}

/// Checks the crossover design against the dataset's `sessions.tsv` files before any work is
/// done (the group level reads them the same way): every session's pre-treatment is one of the
/// design's two values and its period is 1 or 2. Returns the subjects with one session of each
/// pre-treatment and the subjects left out with the reason.
pub fn design_preflight(
    layout: &Layout,
    d: &StudyDesign,
) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let (subjects, excluded) = read_design(layout, d)?;
    Ok((subjects.into_iter().map(|s| s.label).collect(), excluded))
}

/// Placebo/naltrexone arms as the LMM codes them.
pub(crate) fn arm(k: usize) -> Treatment {
    if k == 0 {
        Treatment::Placebo
    } else {
        Treatment::Naltrexone
    }
}
