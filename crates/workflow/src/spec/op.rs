//! The built-in operations: one line of `ops!` each.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::opspec::OpSpec;
use super::params_asl::AslCbfParams;
use super::params_crossover::CrossoverGroupParams;
use super::params_paired::PairedGroupParams;
use super::params_receptor::ReceptorCorrelationParams;
use super::params_report::{GroupReportParams, ParticipantReportParams};

macro_rules! ops {
    (
        declared { $( $(#[$doc:meta])* $variant:ident = $name:literal ($params:ty) ),+ $(,)? }
        planned { $( $(#[$pdoc:meta])* $pvariant:ident = $pname:literal ($pparams:ty) ),+ $(,)? }
    ) => {
        /// A built-in operation with its parameters: one a workflow declares as a step, or one
        /// the plan adds (the reports).
        // a plan holds one op per job: their size does not matter, boxing would obscure them
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op", content = "params")]
        #[non_exhaustive]
        pub enum Op {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($params), )+
            $( $(#[$pdoc])* #[serde(rename = $pname)] $pvariant($pparams), )+
        }

        /// The name of a built-in operation (`op:` of a step; the planned ones cannot be
        /// written there).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
        #[non_exhaustive]
        pub enum OpKind {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )+
            $( $(#[$pdoc])* #[serde(rename = $pname, skip_deserializing)] #[schemars(skip)] $pvariant, )+
        }

        // Schema shadow of the `op` + `params` pair of a step.
        #[derive(JsonSchema)]
        #[serde(tag = "op", content = "params")]
        #[allow(dead_code, clippy::large_enum_variant)]
        pub(super) enum OpSchema {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($params), )+
        }

        impl OpKind {
            /// Every operation a workflow can declare.
            pub const ALL: &'static [OpKind] = &[$( OpKind::$variant, )+];

            /// The operations the plan adds itself.
            pub const PLANNED: &'static [OpKind] = &[$( OpKind::$pvariant, )+];

            /// The name written in workflow files (and in job records).
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )+
                    $( Self::$pvariant => $pname, )+
                }
            }

            /// The operation with default parameters.
            pub fn default_params(self) -> Op {
                match self {
                    $( Self::$variant => Op::$variant(<$params>::default()), )+
                    $( Self::$pvariant => Op::$pvariant(<$pparams>::default()), )+
                }
            }

            pub(super) fn params_from<'de, D: Deserializer<'de>>(self, d: D) -> std::result::Result<Op, D::Error> {
                match self {
                    $( Self::$variant => Ok(Op::$variant(<$params>::deserialize(d)?)), )+
                    $( Self::$pvariant => Err(serde::de::Error::custom(format_args!(
                        "op `{}` is added by the plan, not declared in a workflow", $pname
                    ))), )+
                }
            }
        }

        impl Op {
            /// Which operation this is.
            pub fn kind(&self) -> OpKind {
                match self {
                    $( Self::$variant(_) => OpKind::$variant, )+
                    $( Self::$pvariant(_) => OpKind::$pvariant, )+
                }
            }

            /// Its declarations.
            pub fn spec(&self) -> &dyn OpSpec {
                match self {
                    $( Self::$variant(p) => p, )+
                    $( Self::$pvariant(p) => p, )+
                }
            }

            /// The parameters as JSON (for cache keys and provenance).
            pub fn params_json(&self) -> serde_json::Value {
                match self {
                    $( Self::$variant(p) => serde_json::to_value(p).expect("plain data"), )+
                    $( Self::$pvariant(p) => serde_json::to_value(p).expect("plain data"), )+
                }
            }
        }
    };
}

ops! {
    declared {
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
    planned {
    /// A participant's HTML report (`sub-<label>.html`), after its participant-level jobs.
    ParticipantReport = "participant-report" (ParticipantReportParams),
    /// The group's HTML report (`group.html`), after the group steps.
    GroupReport = "group-report" (GroupReportParams),
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
