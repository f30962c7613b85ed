//! The `brain-behaviour` parameters of `crossover-group`: which phenotype scores are
//! correlated with CBF. The study's by default; another study declares its own tables,
//! columns and scales, or `null` for none. Depends on no other module of the format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The phenotype scores of the brain–behaviour correlations
/// ([`cbflow_pipeline::BehaviourScores`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BrainBehaviourSpec {
    /// Scores rated once per session, correlated with each region's ΔCBF (adjusted for the
    /// global ΔCBF); `null`: none. Default: `phenotype/infusion.tsv`, columns `psi_*` and
    /// `cadss`.
    pub session_scores: Option<SessionScoresSpec>,
    /// Symptom scales rated at baseline and at follow-up, whose change is correlated with the
    /// baseline CBF of `baseline-roi` (adjusted for global CBF); `null`: none. Default:
    /// `phenotype/mood.tsv`, scales `madrs` and `qids`, `<scale>_baseline` to `<scale>_day1`.
    pub response: Option<ResponseSpec>,
}

/// Session scores: a phenotype table and its columns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SessionScoresSpec {
    /// `phenotype/<table>.tsv` (one row per participant_id and session_id).
    pub table: String,
    /// Columns correlated: names, or prefixes ending in `*` (`psi_*`).
    pub columns: Vec<String>,
}

/// Symptom-scale changes: a phenotype table with `<scale>_<baseline>` and
/// `<scale>_<follow-up>` columns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResponseSpec {
    /// `phenotype/<table>.tsv` (one row per participant_id and session_id).
    pub table: String,
    /// The scales (column prefixes).
    pub scales: Vec<String>,
    /// Column suffix of the baseline rating.
    pub baseline: String,
    /// Column suffix of the follow-up rating.
    pub follow_up: String,
}

impl Default for BrainBehaviourSpec {
    fn default() -> Self {
        let d = cbflow_pipeline::BehaviourScores::default();
        Self {
            session_scores: d.session_scores.map(|s| SessionScoresSpec {
                table: s.table,
                columns: s.columns,
            }),
            response: d.response.map(|r| ResponseSpec {
                table: r.table,
                scales: r.scales,
                baseline: r.baseline,
                follow_up: r.follow_up,
            }),
        }
    }
}

impl BrainBehaviourSpec {
    /// The pipeline's scores.
    pub fn scores(&self) -> cbflow_pipeline::BehaviourScores {
        cbflow_pipeline::BehaviourScores {
            session_scores: self
                .session_scores
                .as_ref()
                .map(|s| cbflow_pipeline::SessionScores {
                    table: s.table.clone(),
                    columns: s.columns.clone(),
                }),
            response: self
                .response
                .as_ref()
                .map(|r| cbflow_pipeline::ResponseScores {
                    table: r.table.clone(),
                    scales: r.scales.clone(),
                    baseline: r.baseline.clone(),
                    follow_up: r.follow_up.clone(),
                }),
        }
    }

    /// Why the scores cannot be read, if they cannot (`brain-behaviour: ...`).
    pub(super) fn problem(&self) -> Option<String> {
        self.scores()
            .problem()
            .map(|why| format!("brain-behaviour: {why}"))
    }
}
