//! A workflow file as written: its steps and their inputs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::base::{BidsQuery, Located, Pos, ResourceSpec, StepRef};
use super::op::{Op, OpKind, OpSchema};

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
pub(super) struct StepSchema {
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

pub(super) struct ParamsSeed(OpKind);

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

pub(super) struct SeededOp(Op);

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
pub(super) enum InputSchema {
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
pub(super) struct StepRefSchema {
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
