//! The parse stage: the workflow file as written, typed. Unknown keys, wrong types and missing
//! fields are rejected by the YAML parser with their line and column; [`Workflow::parse`] then
//! checks what the types cannot (step ids, operation inputs and outputs, cycles), again with the
//! line and column of the offending step or input.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::{MessageFormatter, Spanned};

use crate::error::{Error, Result, io_err, snippet};

/// The workflow format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// Text of the built-in workflow (`workflows/ketamine-naltrexone-crossover.yaml`).
pub const BUILTIN_WORKFLOW: &str =
    include_str!("../../../workflows/ketamine-naltrexone-crossover.yaml");

/// A place in the workflow file (1-based line and column, in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// A value with the place in the workflow file it was written.
///
/// Deserialises like `T` (and has `T`'s JSON Schema); the position is taken from the YAML
/// parser.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub pos: Pos,
}

impl<T> Located<T> {
    /// A value that was not read from a file (position 0:0).
    pub fn new(value: T) -> Self {
        Self {
            value,
            pos: Pos::default(),
        }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        Ok(Self {
            pos: Pos {
                line: s.referenced.line(),
                column: s.referenced.column(),
            },
            value: s.value,
        })
    }
}

impl<T: Serialize> Serialize for Located<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        T::json_schema(g)
    }
}

/// A cbflow workflow: the steps of a study, each a built-in operation with its inputs (BIDS
/// queries or other steps' outputs), parameters and resources.
///
/// Two stages: this is what was written (checked, not yet applied to a dataset); `plan`
/// resolves it against a BIDS dataset into the jobs that run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "cbflow workflow")]
pub struct Workflow {
    /// Version of the workflow format. This build reads version 1.
    pub version: Located<u32>,
    /// Short name of the workflow (letters, digits, `-`, `_`); recorded in the provenance.
    pub name: String,
    /// What the workflow does, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// The steps. Their order in the file does not matter: the plan orders them by their
    /// inputs.
    pub steps: Vec<Located<Step>>,
    /// Where the workflow was read from (a path, or `<builtin ...>`).
    #[serde(skip)]
    pub origin: String,
    /// The text of the workflow file (for error snippets and provenance).
    #[serde(skip)]
    pub text: String,
}

/// Analysis level of a step, decided by its operation (BIDS-Apps levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// One job per participant.
    Participant,
    /// One job over all participants.
    Group,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Participant => "participant",
            Level::Group => "group",
        })
    }
}

/// One step: an operation, the inputs it reads, its parameters and resources.
///
/// YAML keys: `id`, `op`, `inputs`, `params`, `resources`; `op` must come before `params`
/// (the parameters are typed by the operation).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique name of the step; other steps refer to its outputs by it.
    pub id: Located<String>,
    /// The operation.
    pub op: Located<OpKind>,
    /// Inputs by slot name.
    pub inputs: BTreeMap<String, Located<Input>>,
    /// The operation's parameters.
    pub params: Located<Op>,
    /// Resources per job (defaults per operation).
    pub resources: Option<Located<ResourceSpec>>,
}

// Schema shadow of `Step` (its deserialiser is hand-written for exact error positions).
/// One step: a built-in operation (`op`, written before `params`), its parameters, inputs and
/// resources.
#[derive(JsonSchema)]
#[schemars(rename = "Step")]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(dead_code)]
struct StepSchema {
    /// Unique name of the step (letters, digits, `-`, `_`); other steps refer to its outputs
    /// by it, and job ids start with it.
    id: String,
    /// Inputs by slot name. Each operation has its own slots: a BIDS query (`bids: {...}`) or
    /// another step's output (`step: <id>`, `output: <name>`).
    #[serde(default)]
    inputs: BTreeMap<String, Input>,
    /// Resources of each job of this step; unset fields take the operation's defaults.
    #[serde(default)]
    resources: Option<ResourceSpec>,
    #[serde(flatten)]
    op: OpSchema,
}

impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        StepSchema::json_schema(g)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        const FIELDS: &[&str] = &["id", "op", "inputs", "params", "resources"];
        impl<'de> Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step: a mapping with id, op, inputs, params and resources")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> std::result::Result<Step, M::Error> {
                let mut id: Option<Located<String>> = None;
                let mut op: Option<Located<OpKind>> = None;
                let mut inputs = None;
                let mut params: Option<Located<Op>> = None;
                let mut resources = None;
                while let Some(k) = m.next_key::<String>()? {
                    let dup = || de::Error::custom(format_args!("duplicate field `{k}`"));
                    match k.as_str() {
                        "id" if id.is_none() => id = Some(m.next_value()?),
                        "op" if op.is_none() => op = Some(m.next_value()?),
                        "inputs" if inputs.is_none() => inputs = Some(m.next_value()?),
                        "resources" if resources.is_none() => resources = Some(m.next_value()?),
                        "params" if params.is_none() => {
                            let Some(kind) = &op else {
                                return Err(de::Error::custom(
                                    "`op` must come before `params` (the parameters are typed by the operation)",
                                ));
                            };
                            params = Some(m.next_value_seed(ParamsSeed(kind.value))?);
                        }
                        "id" | "op" | "inputs" | "params" | "resources" => return Err(dup()),
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    }
                }
                let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                let op = op.ok_or_else(|| de::Error::missing_field("op"))?;
                let params = params.ok_or_else(|| de::Error::missing_field("params"))?;
                Ok(Step {
                    id,
                    op,
                    inputs: inputs.unwrap_or_default(),
                    params,
                    resources,
                })
            }
        }
        d.deserialize_map(V)
    }
}

struct ParamsSeed(OpKind);

impl<'de> de::DeserializeSeed<'de> for ParamsSeed {
    type Value = Located<Op>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Located<Op>, D::Error> {
        // `Spanned` needs a `Deserialize` type: a thread-local carries the operation into it,
        // so the parameters are read straight from the YAML deserialiser (exact positions).
        CURRENT_KIND.with(|c| c.set(Some(self.0)));
        let s = Spanned::<SeededOp>::deserialize(d);
        CURRENT_KIND.with(|c| c.set(None));
        let s = s?;
        Ok(Located {
            pos: Pos {
                line: s.referenced.line(),
                column: s.referenced.column(),
            },
            value: s.value.0,
        })
    }
}

thread_local! {
    static CURRENT_KIND: std::cell::Cell<Option<OpKind>> = const { std::cell::Cell::new(None) };
}

struct SeededOp(Op);

impl<'de> Deserialize<'de> for SeededOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let kind = CURRENT_KIND
            .with(|c| c.get())
            .ok_or_else(|| de::Error::custom("operation parameters outside a step"))?;
        kind.params_from(d).map(SeededOp)
    }
}

/// One input of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Files of the BIDS dataset.
    Bids(BidsQuery),
    /// An output of another step.
    Step(StepRef),
}

// Schema shadow of `Input`.
/// One input of a step: a BIDS query or another step's output.
#[derive(JsonSchema)]
#[schemars(rename = "Input")]
#[serde(untagged)]
#[allow(dead_code)]
enum InputSchema {
    /// Files of the BIDS dataset.
    Bids {
        /// The BIDS query.
        bids: BidsQuery,
    },
    /// An output of another step.
    Step(StepRefSchema),
}

// Schema shadow of `StepRef`.
/// An output of another step.
#[derive(JsonSchema)]
#[schemars(rename = "StepRef")]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[allow(dead_code)]
struct StepRefSchema {
    /// The id of the step that makes the output.
    step: String,
    /// The name of the output (each operation lists the outputs it makes).
    output: String,
}

impl JsonSchema for Input {
    fn schema_name() -> Cow<'static, str> {
        "Input".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        InputSchema::json_schema(g)
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        const FIELDS: &[&str] = &["bids", "step", "output"];
        impl<'de> Visitor<'de> for V {
            type Value = Input;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an input: `bids: {...}`, or `step: <id>` with `output: <name>`")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut m: M,
            ) -> std::result::Result<Input, M::Error> {
                let mut bids: Option<BidsQuery> = None;
                let mut step: Option<Located<String>> = None;
                let mut output: Option<Located<String>> = None;
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "bids" if step.is_none() && output.is_none() && bids.is_none() => {
                            bids = Some(m.next_value()?)
                        }
                        "step" if bids.is_none() && step.is_none() => step = Some(m.next_value()?),
                        "output" if bids.is_none() && output.is_none() => {
                            output = Some(m.next_value()?)
                        }
                        "bids" | "step" | "output" => {
                            return Err(de::Error::custom(format_args!(
                                "unexpected `{k}`: an input is either `bids: {{...}}` or `step:` with `output:`"
                            )));
                        }
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    }
                }
                match (bids, step, output) {
                    (Some(b), None, None) => Ok(Input::Bids(b)),
                    (None, Some(step), Some(output)) => Ok(Input::Step(StepRef { step, output })),
                    (None, Some(_), None) => Err(de::Error::missing_field("output")),
                    (None, None, Some(_)) => Err(de::Error::missing_field("step")),
                    _ => Err(de::Error::custom(
                        "empty input: write `bids: {...}`, or `step: <id>` with `output: <name>`",
                    )),
                }
            }
        }
        d.deserialize_map(V)
    }
}

/// A query on the BIDS dataset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BidsQuery {
    /// Datatype directory (`perf`, `anat`, ...); unset = any.
    #[serde(default)]
    pub datatype: Option<String>,
    /// File suffix (`asl`, `T1w`, `m0scan`, ...).
    pub suffix: String,
    /// File extension with the dot; unset = NIfTI (`.nii`, `.nii.gz`).
    #[serde(default)]
    pub extension: Option<String>,
    /// Entities that must have these values, e.g. `{ses: "1", run: "2"}` (labels without the
    /// `key-` prefix, as strings).
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
}

impl BidsQuery {
    /// The query for `cbflow_bids::Layout::query`, restricted to subject `sub`.
    pub fn to_query(&self, sub: &str) -> cbflow_bids::Query {
        let mut q = cbflow_bids::Query::new().sub(sub).suffix(&self.suffix);
        if let Some(d) = &self.datatype {
            q = q.datatype(d);
        }
        q = match &self.extension {
            Some(e) => q.extension(e),
            None => q.nifti(),
        };
        for (k, v) in &self.entities {
            q = q.entity(k, v);
        }
        q
    }
}

/// A reference to another step's output.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRef {
    /// The id of the step that makes it.
    pub step: Located<String>,
    /// The output's name.
    pub output: Located<String>,
}

/// Resources of each job of a step, as written (unset = the operation's default).
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResourceSpec {
    /// CPU cores per job: the threads of its voxel kernels (at least 1).
    #[serde(default)]
    pub cpus: Option<usize>,
    /// Memory per job (GB, more than 0).
    #[serde(default)]
    pub mem_gb: Option<f64>,
    /// Wall-time limit per job (minutes; for batch schedulers such as SLURM).
    #[serde(default)]
    pub time_min: Option<u64>,
}

/// Resources of one job, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Resources {
    /// CPU cores (threads of the job's own thread pool).
    pub cpus: usize,
    /// Memory (GB).
    pub mem_gb: f64,
    /// Wall-time limit (minutes).
    pub time_min: u64,
}

impl ResourceSpec {
    /// These settings over `defaults`.
    pub fn over(&self, defaults: Resources) -> Resources {
        Resources {
            cpus: self.cpus.unwrap_or(defaults.cpus),
            mem_gb: self.mem_gb.unwrap_or(defaults.mem_gb),
            time_min: self.time_min.unwrap_or(defaults.time_min),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations. Adding one: a params struct implementing `OpSpec`, one line in `ops!`, and one
// match arm in `runner::PipelineRunner::run`.

/// An input slot of an operation.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Slot name (the key under `inputs:`).
    pub name: &'static str,
    /// Whether the step must fill it.
    pub required: bool,
    /// What may fill it.
    pub kind: SlotKind,
    /// For people.
    pub doc: &'static str,
}

/// What may fill an input slot.
#[derive(Debug, Clone, Copy)]
pub enum SlotKind {
    /// A BIDS query.
    Bids,
    /// An output of another step, with one of these names.
    Output(&'static [&'static str]),
}

/// What every operation declares: its level, input slots, outputs, default resources, and a
/// check of its parameters.
pub trait OpSpec {
    /// The level its jobs run at.
    fn level(&self) -> Level;
    /// Its input slots.
    fn slots(&self) -> &'static [Slot];
    /// The outputs a step of this operation makes with these parameters.
    fn outputs(&self) -> Vec<&'static str>;
    /// Resources of one job unless the step says otherwise.
    fn default_resources(&self) -> Resources;
    /// The seed of its random draws, if it has any.
    fn seed(&self) -> Option<u64> {
        None
    }
    /// Checks parameter values the types cannot (ranges); the message names the field.
    fn check(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

macro_rules! ops {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal ($params:ty) ),+ $(,)?) => {
        /// A built-in operation with its parameters.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "op", content = "params")]
        #[non_exhaustive]
        pub enum Op {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($params), )+
        }

        /// The name of a built-in operation (`op:` of a step).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
        #[non_exhaustive]
        pub enum OpKind {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )+
        }

        // Schema shadow of the `op` + `params` pair of a step.
        #[derive(JsonSchema)]
        #[serde(tag = "op", content = "params")]
        #[allow(dead_code)]
        enum OpSchema {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($params), )+
        }

        impl OpKind {
            /// Every operation.
            pub const ALL: &'static [OpKind] = &[$( OpKind::$variant, )+];

            /// The name written in workflow files.
            pub fn name(self) -> &'static str {
                match self { $( Self::$variant => $name, )+ }
            }

            /// The operation with default parameters.
            pub fn default_params(self) -> Op {
                match self { $( Self::$variant => Op::$variant(<$params>::default()), )+ }
            }

            fn params_from<'de, D: Deserializer<'de>>(self, d: D) -> std::result::Result<Op, D::Error> {
                match self { $( Self::$variant => Ok(Op::$variant(<$params>::deserialize(d)?)), )+ }
            }
        }

        impl Op {
            /// Which operation this is.
            pub fn kind(&self) -> OpKind {
                match self { $( Self::$variant(_) => OpKind::$variant, )+ }
            }

            /// Its declarations.
            pub fn spec(&self) -> &dyn OpSpec {
                match self { $( Self::$variant(p) => p, )+ }
            }

            /// The parameters as JSON (for cache keys and provenance).
            pub fn params_json(&self) -> serde_json::Value {
                match self { $( Self::$variant(p) => serde_json::to_value(p).expect("plain data"), )+ }
            }
        }
    };
}

ops! {
    /// The participant level of cbflow for one participant: realign, M0 calibration, CBF and
    /// QC per ASL run; T1w → template and ASL → T1w registration; template-space CBF and the
    /// ROI table.
    AslCbf = "asl-cbf" (AslCbfParams),
    /// Group level of a placebo/naltrexone × before/during-ketamine crossover: voxelwise
    /// sign-flip permutation tests of four contrasts (max-T, TFCE and cluster FWE), ROI
    /// tests, brain–behaviour correlations and the crossover mixed model.
    CrossoverGroup = "crossover-group" (CrossoverGroupParams),
    /// Group level of a one-session before/during design: a one-sample sign-flip test of the
    /// during − before CBF maps.
    PairedGroup = "paired-group" (PairedGroupParams),
    /// Correlation of each crossover contrast's group map with PET receptor-density maps of
    /// the registry, with spatial-autocorrelation nulls (variogram surrogates, JuSpace
    /// permutation) and subject-level sign-flipping, FDR across maps. Needs the PET maps in
    /// the resource directory; without one the step is skipped with a warning.
    ReceptorCorrelation = "receptor-correlation" (ReceptorCorrelationParams),
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Template space of the participant level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum TemplateName {
    /// MNI152NLin6Asym at 2 mm (FSL's MNI152 T1 and brain mask, SPM12 tissue priors, AAL3),
    /// read from the resource directory (`--resources` or `CBFLOW_RESOURCES`).
    #[serde(rename = "MNI152NLin6Asym")]
    Mni152NLin6Asym,
    /// The synthetic phantom of `cbflow synth`, built in (demos and tests).
    #[serde(rename = "phantom")]
    Phantom,
    /// No template: native-space CBF and QC only (no group level possible).
    #[serde(rename = "none")]
    None,
}

impl TemplateName {
    /// The name written in workflow files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateName::Mni152NLin6Asym => "MNI152NLin6Asym",
            TemplateName::Phantom => "phantom",
            TemplateName::None => "none",
        }
    }
}

impl std::str::FromStr for TemplateName {
    type Err = String;
    /// `MNI152NLin6Asym`, `phantom` or `none` (for the command line).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "MNI152NLin6Asym" => Ok(TemplateName::Mni152NLin6Asym),
            "phantom" => Ok(TemplateName::Phantom),
            "none" => Ok(TemplateName::None),
            other => Err(format!(
                "unknown template {other:?}: expected MNI152NLin6Asym, phantom or none"
            )),
        }
    }
}

/// Parameters of `asl-cbf` (cbflow-pipeline's `AslOptions` and the template).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct AslCbfParams {
    /// Template space to normalise to: `MNI152NLin6Asym`, `phantom` or `none`.
    pub template: TemplateName,
    /// Labelling efficiency kept per background-suppression pulse (0–1; ASLPrep's 0.95).
    pub bs_efficiency_per_pulse: f64,
    /// Number of background-suppression pulses, for series with `BackgroundSuppression: true`
    /// whose sidecar lacks `BackgroundSuppressionNumberPulses` (Siemens DICOMs do not record
    /// it); a sidecar that gives another number is an error. Unset: such series stop.
    pub bs_pulses: Option<u32>,
    /// Total factor (0–1) by which background suppression lowers the labelling efficiency,
    /// in place of `bs-efficiency-per-pulse` ^ pulses (e.g. ExploreASL's 0.83 for 2 pulses).
    pub bs_total_efficiency: Option<f64>,
    /// Extra factor on M0 (e.g. GE 3D spiral: 32 × NEX; 1 for data already scaled).
    pub m0_scale: f64,
    /// Dummy volumes at the start of each ASL series to drop.
    pub dummy_scans: usize,
    /// Volumes to leave out of every ASL series, by 0-based index (the `aslcontext.tsv` row
    /// below the header, counted from 0), whatever their type. An unpaired control or label at
    /// the start or end of a series is left out without it (with a warning).
    pub exclude_volumes: Vec<usize>,
    /// Shots (segments) per volume of a segmented 3D readout (3D GRASE, 3D spiral), for series
    /// whose sidecar has no `NumberShots`: each volume lasts this many
    /// `RepetitionTimePreparation`s, which sets the clock of the CBF time course.
    pub number_shots: Option<u32>,
    /// Rigidly realign each ASL series.
    pub realign: bool,
    /// Smooth M0 with this FWHM (mm) inside the brain before calibration; unset = off.
    pub m0_smoothing_fwhm_mm: Option<f64>,
    /// Regions of interest: unions of labels of the template's atlas (AAL3v1 for
    /// MNI152NLin6Asym), for the ROI tables and time courses. Unset: the anterior cingulate
    /// subdivisions ACC_sub, ACC_pre, ACC_sup (AAL3 151–156), each left, right and bilateral.
    /// `grey_matter` and `global` are always added.
    pub rois: Vec<RoiSpec>,
}

/// A region of interest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RoiSpec {
    /// Name: letters, digits and `_` (a row of the ROI tables, a column of the time courses).
    pub name: String,
    /// Atlas label values whose union is the region.
    pub labels: Vec<i32>,
}

impl Default for AslCbfParams {
    fn default() -> Self {
        let a = cbflow_pipeline::AslOptions::default();
        Self {
            template: TemplateName::Mni152NLin6Asym,
            bs_efficiency_per_pulse: a.bs_efficiency_per_pulse,
            bs_pulses: a.bs_pulses,
            bs_total_efficiency: a.bs_total_efficiency,
            m0_scale: a.m0_scale,
            dummy_scans: a.dummy_scans,
            exclude_volumes: a.exclude_volumes,
            number_shots: a.number_shots,
            realign: a.realign,
            m0_smoothing_fwhm_mm: a.m0_smoothing_fwhm_mm,
            rois: cbflow_pipeline::default_rois()
                .into_iter()
                .map(|r| RoiSpec {
                    name: r.name,
                    labels: r.labels,
                })
                .collect(),
        }
    }
}

impl AslCbfParams {
    /// The pipeline's regions of interest.
    pub fn regions(&self) -> Vec<cbflow_pipeline::Region> {
        self.rois
            .iter()
            .map(|r| cbflow_pipeline::Region::new(r.name.clone(), r.labels.clone()))
            .collect()
    }

    /// The pipeline's ASL options.
    pub fn asl_options(&self) -> cbflow_pipeline::AslOptions {
        cbflow_pipeline::AslOptions {
            bs_efficiency_per_pulse: self.bs_efficiency_per_pulse,
            bs_pulses: self.bs_pulses,
            bs_total_efficiency: self.bs_total_efficiency,
            m0_scale: self.m0_scale,
            dummy_scans: self.dummy_scans,
            exclude_volumes: self.exclude_volumes.clone(),
            number_shots: self.number_shots,
            realign: self.realign,
            m0_smoothing_fwhm_mm: self.m0_smoothing_fwhm_mm,
        }
    }
}

/// Outputs of `asl-cbf`: native-space CBF, QC and confounds.
pub const OUT_CBF: &str = "cbf";
/// Outputs of `asl-cbf` with a template: template-space CBF maps and the ROI tables.
pub const OUT_CBF_TEMPLATE: &str = "cbf-template";
/// Outputs of `asl-cbf` with a template: the T1w normalisation (transforms, brain mask).
pub const OUT_ANAT: &str = "anat";
/// Outputs of the group operations: statistical maps and cluster tables.
pub const OUT_STATMAPS: &str = "statmaps";
/// Outputs of the group operations: ROI, correlation and mixed-model tables.
pub const OUT_TABLES: &str = "tables";

const ASL_CBF_SLOTS: &[Slot] = &[
    Slot {
        name: "asl",
        required: true,
        kind: SlotKind::Bids,
        doc: "the ASL series; every participant with a match gets a job, and each job processes all of the participant's ASL runs",
    },
    Slot {
        name: "t1w",
        required: false,
        kind: SlotKind::Bids,
        doc: "the T1w image of each session (sessions without one get native-space outputs only)",
    },
];

fn in_range(name: &str, v: f64, lo: f64, hi: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(format!(
            "{name}: {v} is out of range (expected {lo} to {hi})"
        ))
    }
}

impl OpSpec for AslCbfParams {
    fn level(&self) -> Level {
        Level::Participant
    }
    fn slots(&self) -> &'static [Slot] {
        ASL_CBF_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        if self.template == TemplateName::None {
            vec![OUT_CBF]
        } else {
            vec![OUT_CBF, OUT_CBF_TEMPLATE, OUT_ANAT]
        }
    }
    fn default_resources(&self) -> Resources {
        Resources {
            cpus: 2,
            mem_gb: 4.0,
            time_min: 120,
        }
    }
    fn check(&self) -> std::result::Result<(), String> {
        in_range(
            "bs-efficiency-per-pulse",
            self.bs_efficiency_per_pulse,
            0.01,
            1.0,
        )?;
        in_range("m0-scale", self.m0_scale, 1e-6, 1e6)?;
        if let Some(n) = self.bs_pulses {
            in_range("bs-pulses", n as f64, 1.0, 16.0)?;
        }
        if let Some(f) = self.bs_total_efficiency {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Err(format!(
                    "bs-total-efficiency: {f} is out of range (expected above 0 and at most 1)"
                ));
            }
            if self.bs_pulses.is_some() {
                return Err(
                    "bs-pulses and bs-total-efficiency both set: give one (the total efficiency replaces the per-pulse model)".into(),
                );
            }
        }
        if let Some(n) = self.number_shots {
            in_range("number-shots", n as f64, 1.0, 1024.0)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(i) = self.exclude_volumes.iter().find(|i| !seen.insert(**i)) {
            return Err(format!("exclude-volumes: volume {i} is listed twice"));
        }
        if let Some(f) = self.m0_smoothing_fwhm_mm {
            in_range("m0-smoothing-fwhm-mm", f, 0.0, 50.0)?;
        }
        if let Some(why) = cbflow_pipeline::rois_problem(&self.regions()) {
            return Err(format!("rois: {why}"));
        }
        Ok(())
    }
}

/// How a crossover study maps onto BIDS (cbflow-pipeline's `StudyDesign`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CrossoverDesign {
    /// `sessions.tsv` column naming each session's pre-treatment.
    pub pretreatment_column: String,
    /// Its value for placebo sessions.
    pub placebo: String,
    /// Its value for naltrexone (active pre-treatment) sessions.
    pub naltrexone: String,
    /// `sessions.tsv` column with the period (1 or 2) of each session.
    pub period_column: String,
    /// `run` entity of the scan before the drug (ketamine); unset: `1` (or `before`).
    pub run_before: Option<String>,
    /// `run` entity of the scan during the drug; unset: `2` (or `during`).
    pub run_during: Option<String>,
    /// The scan before the drug by any entities of its file name, e.g. `{acq: pre}` or
    /// `{acq: pcasl, run: "1"}`, in place of `run-before`.
    pub before: Option<BTreeMap<String, String>>,
    /// The scan during the drug by any entities, in place of `run-during`.
    pub during: Option<BTreeMap<String, String>>,
}

impl Default for CrossoverDesign {
    fn default() -> Self {
        let d = cbflow_pipeline::StudyDesign::default();
        Self {
            pretreatment_column: d.pretreatment_column,
            placebo: d.placebo,
            naltrexone: d.naltrexone,
            period_column: d.period_column,
            run_before: None,
            run_during: None,
            before: None,
            during: None,
        }
    }
}

/// The before and during run selectors of a design: `before`/`during` entity maps, else
/// `run-before`/`run-during` (default runs 1 and 2).
fn run_selectors(
    run_before: &Option<String>,
    run_during: &Option<String>,
    before: &Option<BTreeMap<String, String>>,
    during: &Option<BTreeMap<String, String>>,
) -> (cbflow_pipeline::RunSelector, cbflow_pipeline::RunSelector) {
    let pick =
        |run: &Option<String>, map: &Option<BTreeMap<String, String>>, default: &str| match map {
            Some(m) => cbflow_pipeline::RunSelector(
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ),
            None => cbflow_pipeline::RunSelector::run(run.as_deref().unwrap_or(default)),
        };
    (pick(run_before, before, "1"), pick(run_during, during, "2"))
}

/// Why a design's run selection is unusable, if it is.
fn run_selection_problem(
    run_before: &Option<String>,
    run_during: &Option<String>,
    before: &Option<BTreeMap<String, String>>,
    during: &Option<BTreeMap<String, String>>,
) -> Option<String> {
    if run_before.is_some() && before.is_some() {
        return Some("design: give run-before or before, not both".into());
    }
    if run_during.is_some() && during.is_some() {
        return Some("design: give run-during or during, not both".into());
    }
    let (b, d) = run_selectors(run_before, run_during, before, during);
    for (name, sel) in [("before", &b), ("during", &d)] {
        if let Some(why) = sel.problem() {
            return Some(format!("design: {name}: {why}"));
        }
    }
    if b == d {
        return Some(format!(
            "design: before and during select the same run ({b})"
        ));
    }
    None
}

impl CrossoverDesign {
    /// The pipeline's design.
    pub fn study_design(&self) -> cbflow_pipeline::StudyDesign {
        let (before, during) = run_selectors(
            &self.run_before,
            &self.run_during,
            &self.before,
            &self.during,
        );
        cbflow_pipeline::StudyDesign {
            pretreatment_column: self.pretreatment_column.clone(),
            placebo: self.placebo.clone(),
            naltrexone: self.naltrexone.clone(),
            period_column: self.period_column.clone(),
            before,
            during,
        }
    }

    /// Why the design cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        run_selection_problem(
            &self.run_before,
            &self.run_during,
            &self.before,
            &self.during,
        )
    }
}

/// Parameters of `crossover-group`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CrossoverGroupParams {
    /// How sessions map to pre-treatments and runs to before/during the drug.
    pub design: CrossoverDesign,
    /// Sign-flip permutations per contrast (exhaustive when fewer sign patterns exist).
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Gaussian smoothing of each template-space CBF map before the voxelwise test (FWHM, mm;
    /// 0 = none).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t) of the cluster-extent FWE test.
    pub cluster_threshold: f64,
    /// TFCE settings.
    pub tfce: TfceSpec,
    /// 95 % CIs of the brain–behaviour correlations: `fisher-z` or `bootstrap` (percentile,
    /// over subjects, seeded from `seed`).
    pub correlation_ci: CorrelationCiSpec,
    /// Resamples of the bootstrap CIs.
    pub bootstrap_samples: usize,
    /// The contrasts tested, each a weighted sum of the four cells whose weights sum to 0 (a
    /// within-subject difference). Unset: the study's four, ketamineUnderPlacebo,
    /// ketamineUnderNaltrexone, ketaminePooled (one-sided) and interaction (two-sided).
    pub contrasts: Vec<ContrastSpec>,
    /// Regions (declared by the participant step's `rois`) for the ROI tests, the mixed model
    /// and the ΔCBF–subjective-effect correlations; grey_matter and global are always added.
    pub rois: Vec<String>,
    /// Region whose baseline CBF (adjusted for global CBF) is related to the day-1 change of
    /// the depression scores.
    pub baseline_roi: String,
    /// Covariates of the voxelwise GLM and the ROI tests, nuisance regressors of the
    /// within-subject differences (none by default): `global-cbf` (global CBF under each
    /// contrast's weights, e.g. its change during the drug, uncentred: the contrast is tested at
    /// no change of global CBF) or a column of participants.tsv (numbers, or two levels such as
    /// sex coded 0/1; centred: the contrast at the average value).
    pub covariates: Vec<String>,
}

impl Default for CrossoverGroupParams {
    fn default() -> Self {
        Self {
            design: CrossoverDesign::default(),
            permutations: 10_000,
            seed: 1,
            smoothing_fwhm_mm: 6.0,
            cluster_threshold: 3.1,
            tfce: TfceSpec::default(),
            correlation_ci: CorrelationCiSpec::FisherZ,
            bootstrap_samples: 10_000,
            contrasts: cbflow_pipeline::GroupContrast::defaults()
                .iter()
                .map(ContrastSpec::from_group)
                .collect(),
            rois: cbflow_pipeline::GroupOptions::default_rois(),
            baseline_roi: "ACC_sub".into(),
            covariates: Vec::new(),
        }
    }
}

impl CrossoverGroupParams {
    /// The pipeline's contrasts.
    pub fn group_contrasts(&self) -> Vec<cbflow_pipeline::GroupContrast> {
        self.contrasts.iter().map(ContrastSpec::to_group).collect()
    }

    /// How the group level computes the correlations' CIs.
    pub fn correlation_ci(&self) -> cbflow_pipeline::CorrelationCi {
        match self.correlation_ci {
            CorrelationCiSpec::FisherZ => cbflow_pipeline::CorrelationCi::FisherZ,
            CorrelationCiSpec::Bootstrap => cbflow_pipeline::CorrelationCi::Bootstrap {
                samples: self.bootstrap_samples,
            },
        }
    }

    /// The pipeline's covariates.
    pub fn group_covariates(&self) -> Vec<cbflow_pipeline::GroupCovariate> {
        covariates(&self.covariates)
    }
}

/// How the 95 % CI of a correlation is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CorrelationCiSpec {
    /// Fisher z transform (Bonett & Wright 2000 for Spearman).
    #[default]
    FisherZ,
    /// Percentile bootstrap over subjects.
    Bootstrap,
}

/// One contrast of a crossover group step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContrastSpec {
    /// Name: letters and digits only; the `contrast-<name>` entity of its outputs.
    pub name: String,
    /// What it measures, for sidecars and reports.
    #[serde(default)]
    pub description: String,
    /// Weight of each cell (cells left out weigh 0); the weights must sum to 0.
    pub weights: CellWeights,
    /// Tail tested: `positive` (the default), `negative` or `two-sided`.
    #[serde(default)]
    pub tail: TailSpec,
}

/// Weights of the four cells of the crossover.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CellWeights {
    /// Placebo session, scan before the drug.
    pub placebo_before: f64,
    /// Placebo session, scan during the drug.
    pub placebo_during: f64,
    /// Naltrexone (active pre-treatment) session, scan before the drug.
    pub naltrexone_before: f64,
    /// Naltrexone session, scan during the drug.
    pub naltrexone_during: f64,
}

/// Which tail of the t statistic is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TailSpec {
    /// The contrast is greater than 0.
    #[default]
    Positive,
    /// The contrast is less than 0.
    Negative,
    /// Either direction.
    TwoSided,
}

impl ContrastSpec {
    fn from_group(c: &cbflow_pipeline::GroupContrast) -> Self {
        let w = c.contrast.weights();
        Self {
            name: c.name.clone(),
            description: c.description.clone(),
            weights: CellWeights {
                placebo_before: w[0],
                placebo_during: w[1],
                naltrexone_before: w[2],
                naltrexone_during: w[3],
            },
            tail: match c.tail {
                cbflow_pipeline::Tail::Positive => TailSpec::Positive,
                cbflow_pipeline::Tail::Negative => TailSpec::Negative,
                cbflow_pipeline::Tail::TwoSided => TailSpec::TwoSided,
            },
        }
    }

    fn to_group(&self) -> cbflow_pipeline::GroupContrast {
        let w = self.weights;
        cbflow_pipeline::GroupContrast {
            name: self.name.clone(),
            description: self.description.clone(),
            contrast: cbflow_pipeline::CrossoverContrast::Weights([
                w.placebo_before,
                w.placebo_during,
                w.naltrexone_before,
                w.naltrexone_during,
            ]),
            tail: match self.tail {
                TailSpec::Positive => cbflow_pipeline::Tail::Positive,
                TailSpec::Negative => cbflow_pipeline::Tail::Negative,
                TailSpec::TwoSided => cbflow_pipeline::Tail::TwoSided,
            },
        }
    }
}

const GROUP_SLOTS: &[Slot] = &[Slot {
    name: "cbf",
    required: true,
    kind: SlotKind::Output(&[OUT_CBF_TEMPLATE]),
    doc: "template-space CBF maps and ROI tables of the participant level",
}];

fn group_resources() -> Resources {
    Resources {
        cpus: 4,
        mem_gb: 8.0,
        time_min: 480,
    }
}

fn check_group(
    permutations: usize,
    smoothing: f64,
    threshold: f64,
    tfce: &TfceSpec,
) -> std::result::Result<(), String> {
    if permutations == 0 {
        return Err("permutations: must be at least 1".into());
    }
    in_range("smoothing-fwhm-mm", smoothing, 0.0, 50.0)?;
    in_range("cluster-threshold", threshold, 0.0, 100.0)?;
    tfce.check()
}

/// Threshold-free cluster enhancement (Smith & Nichols 2009) of the voxelwise tests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TfceSpec {
    /// Extent exponent E (0.5 for 3-D images).
    pub e: f64,
    /// Height exponent H (2).
    pub h: f64,
    /// Voxel adjacency: 6 (faces), 18 (faces and edges) or 26 (and corners, as FSL).
    pub connectivity: u8,
    /// Fixed step dh of the statistic; unset: the observed maximum of |t| divided by `steps`,
    /// then held fixed for every permutation.
    pub dh: Option<f64>,
    /// Number of steps up to the observed maximum when `dh` is unset.
    pub steps: usize,
}

impl Default for TfceSpec {
    fn default() -> Self {
        Self {
            e: 0.5,
            h: 2.0,
            connectivity: 26,
            dh: None,
            steps: 100,
        }
    }
}

impl TfceSpec {
    /// The statistics crate's parameters (after the step's checks).
    pub fn params(&self) -> cbflow_pipeline::TfceParams {
        cbflow_pipeline::TfceParams {
            e: self.e,
            h: self.h,
            step: match self.dh {
                Some(dh) => cbflow_pipeline::TfceStep::Fixed(dh),
                None => cbflow_pipeline::TfceStep::ObservedMaxOver(self.steps),
            },
            connectivity: match self.connectivity {
                6 => cbflow_pipeline::Connectivity::Faces6,
                18 => cbflow_pipeline::Connectivity::Edges18,
                _ => cbflow_pipeline::Connectivity::Corners26,
            },
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        in_range("tfce: e", self.e, 0.01, 10.0)?;
        in_range("tfce: h", self.h, 0.01, 10.0)?;
        if ![6, 18, 26].contains(&self.connectivity) {
            return Err(format!(
                "tfce: connectivity {} must be 6, 18 or 26",
                self.connectivity
            ));
        }
        if let Some(dh) = self.dh {
            in_range("tfce: dh", dh, 1e-6, 100.0)?;
        }
        if !(1..=100_000).contains(&self.steps) {
            return Err(format!("tfce: steps {} must be 1 to 100000", self.steps));
        }
        Ok(())
    }
}

impl OpSpec for CrossoverGroupParams {
    fn level(&self) -> Level {
        Level::Group
    }
    fn slots(&self) -> &'static [Slot] {
        GROUP_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec![OUT_STATMAPS, OUT_TABLES]
    }
    fn default_resources(&self) -> Resources {
        group_resources()
    }
    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn check(&self) -> std::result::Result<(), String> {
        check_group(
            self.permutations,
            self.smoothing_fwhm_mm,
            self.cluster_threshold,
            &self.tfce,
        )?;
        if let Some(why) = self.design.problem() {
            return Err(why);
        }
        if self.contrasts.is_empty() {
            return Err(
                "contrasts: declare at least one (or leave the key out for the study's four)"
                    .into(),
            );
        }
        if let Some(why) = cbflow_pipeline::GroupContrast::list_problem(&self.group_contrasts()) {
            return Err(format!("contrasts: {why}"));
        }
        if let Some(why) =
            cbflow_pipeline::GroupOptions::rois_problem(&self.rois, &self.baseline_roi, None)
        {
            return Err(why);
        }
        check_covariates(&self.covariates)?;
        if !(100..=1_000_000).contains(&self.bootstrap_samples) {
            return Err(format!(
                "bootstrap-samples: {} must be 100 to 1000000",
                self.bootstrap_samples
            ));
        }
        Ok(())
    }
}

/// Name of the receptor-correlation tables output.
pub const OUT_RECEPTORS: &str = "receptor-tables";

/// Parameters of `receptor-correlation`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ReceptorCorrelationParams {
    /// Registry names of the maps (e.g. MOR, KOR, NMDA, mGluR5, GABAA, GABAA5, NET); empty =
    /// every map of the registry.
    pub maps: Vec<String>,
    /// Parcellation: schaefer100tian, schaefer200tian, schaefer400tian or neuromorphometrics.
    pub parcellation: String,
    /// `parcel` (correlate parcel means) or `voxel` (grey-matter voxels, sampled surrogates).
    pub level: ReceptorLevelSpec,
    /// `spearman` or `pearson`.
    pub method: MethodSpec,
    /// Null models, any of `variogram`, `juspace`, `signflip`.
    pub nulls: Vec<NullSpec>,
    /// Draws of each null model.
    pub n_null: usize,
    /// Seed of the surrogates and sign flips.
    pub seed: u64,
    /// Group map to correlate: `t` (the contrast's t map) or `mean` (mean ΔCBF).
    pub statistic: StatisticSpec,
    /// Also regress the group map on all maps and report dominance (Hansen et al. 2022).
    pub dominance: bool,
    /// The crossover design (for the sign-flip null, which recomputes the group map).
    pub design: CrossoverDesign,
    /// Smoothing of the subjects' maps in the sign-flip null (FWHM, mm); use the group step's.
    pub smoothing_fwhm_mm: f64,
}

impl Default for ReceptorCorrelationParams {
    fn default() -> Self {
        Self {
            maps: Vec::new(),
            parcellation: "schaefer200tian".into(),
            level: ReceptorLevelSpec::Parcel,
            method: MethodSpec::Spearman,
            nulls: vec![NullSpec::Variogram, NullSpec::Juspace, NullSpec::Signflip],
            n_null: 1000,
            seed: 1,
            statistic: StatisticSpec::T,
            dominance: false,
            design: CrossoverDesign::default(),
            smoothing_fwhm_mm: 6.0,
        }
    }
}

/// Where receptor maps and group maps are correlated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReceptorLevelSpec {
    /// Parcel means of the parcellation.
    Parcel,
    /// Grey-matter voxels (sampled variogram surrogates).
    Voxel,
}

/// Correlation coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MethodSpec {
    /// Rank correlation.
    Spearman,
    /// Linear correlation.
    Pearson,
}

/// A null model of the receptor step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NullSpec {
    /// Variogram-matching surrogates of the receptor map (Burt et al. 2020).
    Variogram,
    /// JuSpace's spatial permutation null maps (Dukart et al. 2021); parcel level only.
    Juspace,
    /// Sign flips of the subjects' ΔCBF maps, group map recomputed.
    Signflip,
}

/// Which group map is correlated with the receptor maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StatisticSpec {
    /// The contrast's t map.
    T,
    /// The mean ΔCBF (effect) map.
    Mean,
}

impl ReceptorCorrelationParams {
    /// The pipeline's options for these parameters (the paths and template come from the plan).
    pub fn apply(&self, opts: &mut cbflow_pipeline::ReceptorOptions) {
        use cbflow_pipeline::{CorrelationMethod, GroupStat, ReceptorLevel, ReceptorNull};
        opts.maps = self.maps.clone();
        opts.parcellation = self.parcellation.clone();
        opts.level = match self.level {
            ReceptorLevelSpec::Parcel => ReceptorLevel::Parcel,
            ReceptorLevelSpec::Voxel => ReceptorLevel::Voxel,
        };
        opts.method = match self.method {
            MethodSpec::Spearman => CorrelationMethod::Spearman,
            MethodSpec::Pearson => CorrelationMethod::Pearson,
        };
        opts.nulls = self
            .nulls
            .iter()
            .map(|n| match n {
                NullSpec::Variogram => ReceptorNull::Variogram,
                NullSpec::Juspace => ReceptorNull::Juspace,
                NullSpec::Signflip => ReceptorNull::SignFlip,
            })
            .collect();
        opts.n_null = self.n_null;
        opts.seed = self.seed;
        opts.statistic = match self.statistic {
            StatisticSpec::T => GroupStat::T,
            StatisticSpec::Mean => GroupStat::Mean,
        };
        opts.dominance = self.dominance;
        opts.design = self.design.study_design();
        opts.smoothing_fwhm_mm = self.smoothing_fwhm_mm;
    }
}

const RECEPTOR_SLOTS: &[Slot] = &[
    Slot {
        name: "statmaps",
        required: true,
        kind: SlotKind::Output(&[OUT_STATMAPS]),
        doc: "group statistic maps of a crossover-group step",
    },
    Slot {
        name: "cbf",
        required: true,
        kind: SlotKind::Output(&[OUT_CBF_TEMPLATE]),
        doc: "template-space CBF maps of the participant level (for the sign-flip null)",
    },
];

impl OpSpec for ReceptorCorrelationParams {
    fn level(&self) -> Level {
        Level::Group
    }
    fn slots(&self) -> &'static [Slot] {
        RECEPTOR_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec![OUT_RECEPTORS]
    }
    fn default_resources(&self) -> Resources {
        group_resources()
    }
    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn check(&self) -> std::result::Result<(), String> {
        if self.n_null == 0 {
            return Err("n-null: must be at least 1".into());
        }
        if let Some(why) = self.design.problem() {
            return Err(why);
        }
        if !(self.smoothing_fwhm_mm.is_finite() && self.smoothing_fwhm_mm >= 0.0) {
            return Err(format!(
                "smoothing-fwhm-mm: {} must be 0 or more",
                self.smoothing_fwhm_mm
            ));
        }
        Ok(())
    }
}

/// A one-session before/during design.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PairedDesign {
    /// `run` entity of the scan before the drug; unset: `1` (or `before`).
    pub run_before: Option<String>,
    /// `run` entity of the scan during the drug; unset: `2` (or `during`).
    pub run_during: Option<String>,
    /// The scan before the drug by any entities of its file name, e.g. `{acq: pre}`, in place
    /// of `run-before`.
    pub before: Option<BTreeMap<String, String>>,
    /// The scan during the drug by any entities, in place of `run-during`.
    pub during: Option<BTreeMap<String, String>>,
    /// `ses` entity of the session to use; unset = the subject's only session (or no
    /// session directory).
    pub session: Option<String>,
}

impl PairedDesign {
    /// The before and during run selectors.
    pub fn selectors(&self) -> (cbflow_pipeline::RunSelector, cbflow_pipeline::RunSelector) {
        run_selectors(
            &self.run_before,
            &self.run_during,
            &self.before,
            &self.during,
        )
    }
}

/// Parameters of `paired-group`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PairedGroupParams {
    /// Which runs are before and during the drug.
    pub design: PairedDesign,
    /// Sign-flip permutations (exhaustive when fewer sign patterns exist).
    pub permutations: usize,
    /// Seed of the permutations.
    pub seed: u64,
    /// Gaussian smoothing of each template-space CBF map (FWHM, mm; 0 = none).
    pub smoothing_fwhm_mm: f64,
    /// Cluster-forming threshold (t).
    pub cluster_threshold: f64,
    /// TFCE settings.
    pub tfce: TfceSpec,
    /// Covariates of the voxelwise GLM and the ROI tests (none by default): `global-cbf` (the
    /// change of global CBF, uncentred: the change is tested at no change of global CBF) or a
    /// column of participants.tsv (centred).
    pub covariates: Vec<String>,
}

impl PairedGroupParams {
    /// The pipeline's covariates.
    pub fn group_covariates(&self) -> Vec<cbflow_pipeline::GroupCovariate> {
        covariates(&self.covariates)
    }
}

fn covariates(names: &[String]) -> Vec<cbflow_pipeline::GroupCovariate> {
    names
        .iter()
        .map(|c| cbflow_pipeline::GroupCovariate::parse(c))
        .collect()
}

fn check_covariates(names: &[String]) -> std::result::Result<(), String> {
    match cbflow_pipeline::GroupCovariate::list_problem(&covariates(names)) {
        Some(why) => Err(format!("covariates: {why}")),
        None => Ok(()),
    }
}

impl Default for PairedGroupParams {
    fn default() -> Self {
        Self {
            design: PairedDesign::default(),
            permutations: 10_000,
            seed: 1,
            smoothing_fwhm_mm: 6.0,
            cluster_threshold: 3.1,
            tfce: TfceSpec::default(),
            covariates: Vec::new(),
        }
    }
}

impl OpSpec for PairedGroupParams {
    fn level(&self) -> Level {
        Level::Group
    }
    fn slots(&self) -> &'static [Slot] {
        GROUP_SLOTS
    }
    fn outputs(&self) -> Vec<&'static str> {
        vec![OUT_STATMAPS, OUT_TABLES]
    }
    fn default_resources(&self) -> Resources {
        group_resources()
    }
    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn check(&self) -> std::result::Result<(), String> {
        check_group(
            self.permutations,
            self.smoothing_fwhm_mm,
            self.cluster_threshold,
            &self.tfce,
        )?;
        let d = &self.design;
        if let Some(why) = run_selection_problem(&d.run_before, &d.run_during, &d.before, &d.during)
        {
            return Err(why);
        }
        check_covariates(&self.covariates)
    }
}

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
                        if self.step(&r.step).is_none() {
                            return Err(self.invalid(
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
                            ));
                        }
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

    fn check_ref(&self, step: &Step, r: &StepRef, accepts: &[&str]) -> Result<()> {
        let Some(up) = self.step(&r.step) else {
            return Err(self.invalid(
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
            ));
        };
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
        if let (Op::CrossoverGroup(g), Op::AslCbf(a)) = (&step.params.value, &up.params.value) {
            let names: Vec<String> = a.regions().into_iter().map(|r| r.name).collect();
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
