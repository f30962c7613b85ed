//! The phenotype scores a crossover group level correlates with CBF, as the workflow declares
//! them ([`BehaviourScores`]). Depends on no other module of the group level.

use serde::{Deserialize, Serialize};

/// Which phenotype scores the brain–behaviour correlations use: session scores against each
/// region's ΔCBF, and the change of symptom scales against the baseline CBF of one region. The
/// default is the ketamine + naltrexone study's: `phenotype/infusion.tsv`'s `psi_*` and `cadss`
/// columns, and `phenotype/mood.tsv`'s `madrs` and `qids` from `_baseline` to `_day1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourScores {
    /// Scores of each session correlated with the session's ΔCBF; `None`: none.
    pub session_scores: Option<SessionScores>,
    /// Symptom-scale changes correlated with baseline CBF; `None`: none.
    pub response: Option<ResponseScores>,
}

/// Scores rated once per session (e.g. right after the infusion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionScores {
    /// The phenotype table: `phenotype/<table>.tsv`, one row per `participant_id` and
    /// `session_id`.
    pub table: String,
    /// Its columns correlated: a name, or a prefix followed by `*` (`psi_*`); in the table's
    /// order.
    pub columns: Vec<String>,
}

/// Symptom scales rated before and after, per session: the change `<scale>_<follow_up>` −
/// `<scale>_<baseline>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseScores {
    /// The phenotype table: `phenotype/<table>.tsv`, one row per `participant_id` and
    /// `session_id`.
    pub table: String,
    /// The scales (`madrs`, `qids`).
    pub scales: Vec<String>,
    /// The column suffix of the baseline rating (`baseline`).
    pub baseline: String,
    /// The column suffix of the follow-up rating (`day1`).
    pub follow_up: String,
}

impl Default for BehaviourScores {
    fn default() -> Self {
        Self {
            session_scores: Some(SessionScores {
                table: "infusion".into(),
                columns: vec!["psi_*".into(), "cadss".into()],
            }),
            response: Some(ResponseScores {
                table: "mood".into(),
                scales: vec!["madrs".into(), "qids".into()],
                baseline: "baseline".into(),
                follow_up: "day1".into(),
            }),
        }
    }
}

/// A table name or column word: letters, digits, `_` and `-`, not empty.
fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl BehaviourScores {
    /// Why these scores cannot be read, if they cannot: a table, column, scale or suffix that
    /// is empty or not letters, digits, `_` and `-` (a column may end in `*`), no column or
    /// scale, the same suffix for baseline and follow-up.
    pub fn problem(&self) -> Option<String> {
        if let Some(s) = &self.session_scores {
            if !is_word(&s.table) {
                return Some(format!(
                    "session-scores: table {:?} is not a phenotype table name",
                    s.table
                ));
            }
            if s.columns.is_empty() {
                return Some("session-scores: columns: name at least one column".into());
            }
            if let Some(c) = s
                .columns
                .iter()
                .find(|c| !is_word(c.strip_suffix('*').unwrap_or(c)))
            {
                return Some(format!(
                    "session-scores: column {c:?} is not a column name or prefix*"
                ));
            }
        }
        if let Some(r) = &self.response {
            if !is_word(&r.table) {
                return Some(format!(
                    "response: table {:?} is not a phenotype table name",
                    r.table
                ));
            }
            if r.scales.is_empty() {
                return Some("response: scales: name at least one scale".into());
            }
            if let Some(x) = r
                .scales
                .iter()
                .chain([&r.baseline, &r.follow_up])
                .find(|x| !is_word(x))
            {
                return Some(format!("response: {x:?} is not a column word"));
            }
            if r.baseline == r.follow_up {
                return Some(format!(
                    "response: baseline and follow-up are both {:?}",
                    r.baseline
                ));
            }
        }
        None
    }
}

impl SessionScores {
    /// True when `column` is one of the declared columns or has one of the declared prefixes
    /// (the identifier columns never are).
    pub fn selects(&self, column: &str) -> bool {
        column != "participant_id"
            && column != "session_id"
            && self.columns.iter().any(|c| match c.strip_suffix('*') {
                Some(prefix) => column.starts_with(prefix),
                None => column == c,
            })
    }
}

impl ResponseScores {
    /// The column of `scale` at `when` (the baseline or follow-up suffix): `<scale>_<when>`.
    pub fn column(&self, scale: &str, when: &str) -> String {
        format!("{scale}_{when}")
    }
}
