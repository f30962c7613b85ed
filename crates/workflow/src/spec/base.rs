//! What every part of the format shares: positions in the file, levels, BIDS queries, step
//! references and resources.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::Spanned;

/// The workflow format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// Text of the built-in workflow (`workflows/ketamine-naltrexone-crossover.yaml`).
pub const BUILTIN_WORKFLOW: &str =
    include_str!("../../../../workflows/ketamine-naltrexone-crossover.yaml");

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

/// Analysis level of a step, decided by its operation (BIDS-Apps levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
