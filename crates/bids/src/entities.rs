//! BIDS entities, file-name parsing and label rules.

use std::fmt;

use crate::{Error, Result};

/// The BIDS entities in the order the specification puts them in file names (the BIDS schema's
/// `rules/entities.yaml`, the order of the entity table in the specification's appendix). Entities not in this list sort after these,
/// in the order they were found.
pub const ENTITY_ORDER: &[&str] = &[
    "sub",
    "tpl",
    "ses",
    "cohort",
    "sample",
    "task",
    "tracksys",
    "acq",
    "nuc",
    "voi",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "proc",
    "hemi",
    "space",
    "split",
    "recording",
    "chunk",
    "atlas",
    "seg",
    "scale",
    "res",
    "den",
    "label",
    "prov",
    // not yet in the BIDS schema: transforms (BEP014, as fMRIPrep names them) and statistical
    // maps (BEP041, `..._contrast-<label>_stat-<label>[_desc-<label>]_statmap`), before `desc`,
    // which the specification keeps last
    "from",
    "to",
    "mode",
    "contrast",
    "stat",
    "desc",
];

fn rank(key: &str) -> usize {
    ENTITY_ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(ENTITY_ORDER.len())
}

/// The key-value pairs of a BIDS file name (`sub-01_ses-1_run-2_asl.nii.gz` → sub=01, ses=1,
/// run=2), kept in BIDS entity order; unknown keys follow the known ones in insertion order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Entities(Vec<(String, String)>);

impl Entities {
    /// No entities.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The value of entity `key` (e.g. `"sub"`), if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets entity `key` to `value`, replacing an existing value and keeping BIDS order.
    /// The label is not checked here; [`validate_label`] does that.
    pub fn set(&mut self, key: &str, value: &str) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value.to_string();
            return;
        }
        let r = rank(key);
        // insert before the first entity that sorts strictly after `key`
        let pos = if r == ENTITY_ORDER.len() {
            self.0.len()
        } else {
            self.0
                .iter()
                .position(|(k, _)| rank(k) > r)
                .unwrap_or(self.0.len())
        };
        self.0.insert(pos, (key.to_string(), value.to_string()));
    }

    /// Removes entity `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    /// Iterates over `(key, value)` pairs in BIDS order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no entities.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every entity of `self` is present in `other` with the same value (the
    /// applicability rule of the inheritance principle).
    pub fn is_subset_of(&self, other: &Entities) -> bool {
        self.iter().all(|(k, v)| other.get(k) == Some(v))
    }

    /// The entities joined as they appear in a file name: `sub-01_ses-1_run-2`.
    pub fn to_name_prefix(&self) -> String {
        self.iter()
            .map(|(k, v)| format!("{k}-{v}"))
            .collect::<Vec<_>>()
            .join("_")
    }
}

impl fmt::Display for Entities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_name_prefix())
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Entities {
    fn from_iter<T: IntoIterator<Item = (&'a str, &'a str)>>(iter: T) -> Self {
        let mut e = Entities::new();
        for (k, v) in iter {
            e.set(k, v);
        }
        e
    }
}

/// Splits a BIDS file name into entities, suffix and extension.
///
/// `sub-01_ses-1_acq-pcasl_run-1_asl.nii.gz` → (sub=01, ses=1, acq=pcasl, run=1), `"asl"`,
/// `".nii.gz"`. The extension is everything from the first `.` (BIDS extensions are compound:
/// `.nii.gz`, `.tsv.gz`). Every part before the suffix must be `key-label` with an alphanumeric
/// key and label; a key may appear once. Top-level inheritance files such as `asl.json` (no
/// entities) parse too.
pub fn parse_filename(name: &str) -> Result<(Entities, String, String)> {
    let bad = |message: &str| Error::Filename {
        name: name.to_string(),
        message: message.into(),
    };
    if name.is_empty() || name.contains('/') || name.contains('\\') {
        return Err(bad("expected a bare file name"));
    }
    let (stem, extension) = match name.find('.') {
        Some(0) => return Err(bad("hidden files are not BIDS files")),
        Some(i) => (&name[..i], name[i..].to_string()),
        None => (name, String::new()),
    };
    let parts: Vec<&str> = stem.split('_').collect();
    let (suffix, kvs) = parts.split_last().expect("split yields at least one part");
    if suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(&format!(
            "suffix {suffix:?} must be a non-empty alphanumeric word"
        )));
    }
    if suffix.contains('-') {
        return Err(bad("missing suffix after the last entity"));
    }
    let mut entities = Entities::new();
    for kv in kvs {
        let Some((k, v)) = kv.split_once('-') else {
            return Err(bad(&format!("{kv:?} is not a key-label pair")));
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(&format!("entity key {k:?} must be alphanumeric")));
        }
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(&format!(
                "label {v:?} of entity {k:?} must be alphanumeric"
            )));
        }
        if entities.get(k).is_some() {
            return Err(bad(&format!("entity {k:?} appears twice")));
        }
        entities.set(k, v);
    }
    // Order in the name must follow the specification's entity order for known entities.
    let known: Vec<usize> = kvs
        .iter()
        .filter_map(|kv| kv.split_once('-'))
        .map(|(k, _)| rank(k))
        .collect();
    if known
        .windows(2)
        .any(|w| w[0] > w[1] && w[0] < ENTITY_ORDER.len())
    {
        return Err(bad(&format!(
            "entities out of BIDS order (expected order: {})",
            entities
        )));
    }
    Ok((entities, suffix.to_string(), extension))
}

/// Checks a BIDS label (the part after `key-` in a file name): non-empty, ASCII letters and
/// digits only. Refuses anything that could leave a directory (`../x`, `/`), separators
/// (`_`, `-`) and whitespace.
pub fn validate_label(label: &str) -> Result<()> {
    let err = |message: String| Error::Label {
        label: label.to_string(),
        message,
    };
    if label.is_empty() {
        return Err(err("a label must not be empty".into()));
    }
    if let Some(c) = label.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(err(format!(
            "labels may contain only ASCII letters and digits, found {c:?}"
        )));
    }
    Ok(())
}

/// Normalises a participant label as BIDS Apps do: a leading `sub-` is stripped (`sub-01` →
/// `01`), surrounding whitespace is trimmed, and the rest must be a valid label
/// ([`validate_label`]); `../x` or an empty label is an error.
pub fn normalize_participant_label(s: &str) -> Result<String> {
    let t = s.trim();
    let t = t.strip_prefix("sub-").unwrap_or(t);
    validate_label(t).map_err(|e| match e {
        Error::Label { message, .. } => Error::Label {
            label: s.to_string(),
            message: format!("unsafe or invalid participant label: {message}"),
        },
        other => other,
    })?;
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_asl_name() {
        let (e, s, x) = parse_filename("sub-01_ses-pre_acq-pcasl_run-1_asl.nii.gz").unwrap();
        assert_eq!(e.to_string(), "sub-01_ses-pre_acq-pcasl_run-1");
        assert_eq!(s, "asl");
        assert_eq!(x, ".nii.gz");
        let (e, s, x) = parse_filename("asl.json").unwrap();
        assert!(e.is_empty());
        assert_eq!((s.as_str(), x.as_str()), ("asl", ".json"));
    }

    #[test]
    fn parse_rejects_bad_names() {
        for n in [
            "sub-01_ses-1",
            "sub-01__asl.nii",
            "sub-0_1_asl.nii",
            "sub-01_sub-02_asl.nii",
            "dataset_description.json",
            "sub-01_run-1_ses-1_asl.nii.gz",
            ".hidden",
            "sub-../x_asl.nii",
        ] {
            assert!(parse_filename(n).is_err(), "{n} should fail");
        }
    }

    #[test]
    fn entity_order_and_unknown() {
        let mut e = Entities::new();
        e.set("desc", "mean");
        e.set("foo", "bar");
        e.set("sub", "1");
        e.set("space", "MNI");
        e.set("run", "2");
        assert_eq!(e.to_string(), "sub-1_run-2_space-MNI_desc-mean_foo-bar");
        let mut f = Entities::new();
        f.set("sub", "1");
        assert!(f.is_subset_of(&e));
        f.set("run", "3");
        assert!(!f.is_subset_of(&e));
    }

    #[test]
    fn labels() {
        assert!(validate_label("01").is_ok());
        assert!(validate_label("").is_err());
        assert!(validate_label("a_b").is_err());
        assert_eq!(normalize_participant_label("sub-01").unwrap(), "01");
        assert_eq!(normalize_participant_label("Sub103").unwrap(), "Sub103");
        let e = normalize_participant_label("../x").unwrap_err().to_string();
        assert!(e.contains("../x") && e.contains("unsafe"), "{e}");
        assert!(normalize_participant_label("sub-").is_err());
    }
}
