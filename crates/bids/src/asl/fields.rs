//! Reading a sidecar's fields, recording an issue for each missing or mistyped one.

use std::collections::BTreeSet;

use std::path::Path;

use serde_json::{Map, Value};

use super::timing::time_problem;
use crate::{Issue, Severity};

/// Collects typed values and issues from one sidecar.
pub(super) struct Fields<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) path: &'a Path,
    pub(super) issues: Vec<Issue>,
    pub(super) type_errors: BTreeSet<String>,
}

impl<'a> Fields<'a> {
    pub(super) fn error(&mut self, key: &str, msg: String) {
        self.issues.push(Issue::error(self.path, Some(key), msg));
    }
    pub(super) fn warn(&mut self, key: &str, msg: String) {
        self.issues.push(Issue::warning(self.path, Some(key), msg));
    }
    pub(super) fn type_error(&mut self, key: &str, expected: &str) {
        let got = self.map.get(key).map(|v| v.to_string()).unwrap_or_default();
        self.type_errors.insert(key.to_string());
        self.error(key, format!("expected {expected}, got {got}"));
    }
    pub(super) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
    /// Presence rule: missing REQUIRED → error, missing RECOMMENDED → warning.
    pub(super) fn need(&mut self, key: &str, severity: Severity, when: &str) {
        if self.has(key) {
            return;
        }
        let (level, sev) = match severity {
            Severity::Error => ("REQUIRED", Severity::Error),
            Severity::Warning => ("RECOMMENDED", Severity::Warning),
        };
        let msg = if when.is_empty() {
            format!("missing {level} field {key}")
        } else {
            format!("missing {level} field {key} ({level} when {when})")
        };
        self.issues.push(Issue {
            severity: sev,
            path: self.path.to_path_buf(),
            field: Some(key.into()),
            message: msg,
        });
    }
    pub(super) fn number(&mut self, key: &str) -> Option<f64> {
        match self.map.get(key)? {
            Value::Number(n) => n.as_f64(),
            _ => {
                self.type_error(key, "a number");
                None
            }
        }
    }
    /// A number or a non-empty array of numbers.
    pub(super) fn numbers(&mut self, key: &str) -> Option<Vec<f64>> {
        match self.map.get(key)? {
            Value::Number(n) => n.as_f64().map(|x| vec![x]),
            Value::Array(a) if !a.is_empty() => {
                let v: Option<Vec<f64>> = a.iter().map(Value::as_f64).collect();
                if v.is_none() {
                    self.type_error(key, "a number or an array of numbers");
                }
                v
            }
            _ => {
                self.type_error(key, "a number or a non-empty array of numbers");
                None
            }
        }
    }
    /// Plausibility of a time field: every value finite and within its [`TimeRule`] range,
    /// in seconds. A value that is plausible only after dividing by 1000 is named as
    /// milliseconds (dcm2niix writes some Siemens fields in ms).
    pub(super) fn seconds(&mut self, key: &str, v: &Option<Vec<f64>>) {
        let Some(v) = v else { return };
        if let Some(msg) = time_problem(key, v) {
            self.error(key, msg);
        }
    }
    pub(super) fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.type_error(key, "true or false");
                None
            }
        }
    }
    pub(super) fn string(&mut self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.type_error(key, "a string");
                None
            }
        }
    }
    pub(super) fn count(&mut self, key: &str) -> Option<u32> {
        match self.map.get(key)? {
            Value::Number(n) if n.as_u64().is_some_and(|x| x <= u32::MAX as u64) => {
                n.as_u64().map(|x| x as u32)
            }
            _ => {
                self.type_error(key, "a non-negative integer");
                None
            }
        }
    }
}
