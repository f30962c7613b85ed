//! The receptor registry: which PET/SPECT maps and parcellations the receptor step knows, with
//! target, tracer, file, citation and licence. Parsed from YAML text (pure: text in, entries
//! out); the built-in registry (`registry/receptors.yaml`) is embedded in the binary.
//!
//! File paths are relative to a resource directory laid out like `shared/data` (the pipeline
//! resolves them); they are checked here to be relative and free of `..`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The built-in registry text (`crates/resources/registry/receptors.yaml`).
pub const BUILTIN_REGISTRY: &str = include_str!("../registry/receptors.yaml");

/// Why a map is in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A target of the study's hypotheses.
    Receptor,
    /// A map without a hypothesis, reported for comparison.
    Control,
}

/// One receptor (or control) map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceptorEntry {
    /// Registry name, unique (written in the `map` column of the outputs), e.g. `MOR`.
    pub name: String,
    /// Molecular target, e.g. `MOR`, `GABA-A a5`.
    pub target: String,
    /// Radiotracer, e.g. `[11C]carfentanil`.
    pub tracer: String,
    /// NIfTI path relative to the resource directory.
    pub file: String,
    /// The paper(s) to cite.
    pub citation: String,
    /// Licence as stated by the source.
    pub licence: String,
    /// Receptor of interest or control.
    pub role: Role,
    /// How this map differs from others of the same target, format caveats.
    #[serde(default)]
    pub notes: Option<String>,
}

/// One parcellation (label image + label table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParcellationEntry {
    /// Registry name, unique, e.g. `schaefer200tian` (written in the `parcellation` column).
    pub name: String,
    /// Label image (positive integers = parcels) relative to the resource directory.
    pub file: String,
    /// Label table relative to the resource directory.
    pub labels: String,
    /// The paper(s) to cite.
    pub citation: String,
    /// Licence as stated by the source.
    pub licence: String,
    /// Remarks (label numbering, masking).
    #[serde(default)]
    pub notes: Option<String>,
}

/// A file under the resource directory's `pet/` that is deliberately not registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcludedEntry {
    /// Path (file or directory) relative to the resource directory.
    pub file: String,
    /// Why it is not used.
    pub reason: String,
}

/// The parsed registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Receptor and control maps, in registry order (the order of the output rows).
    pub receptors: Vec<ReceptorEntry>,
    /// Parcellations.
    pub parcellations: Vec<ParcellationEntry>,
    /// Files deliberately left out.
    #[serde(default)]
    pub excluded: Vec<ExcludedEntry>,
}

fn reg_err(message: impl Into<String>) -> Error {
    Error::Registry(message.into())
}

fn check_rel(what: &str, name: &str, path: &str) -> Result<()> {
    let p = std::path::Path::new(path);
    if path.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(reg_err(format!(
            "{what} {name:?}: path {path:?} must be relative to the resource directory, without '..'"
        )));
    }
    Ok(())
}

impl Registry {
    /// Parses registry YAML (strict: unknown keys, duplicate keys and non-`true`/`false`
    /// booleans are errors, with the line) and checks it: names non-empty, alphanumeric or
    /// `_`/`-`, unique; every text field non-empty; paths relative.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let opts = serde_saphyr::options! { strict_booleans: true };
        let reg: Registry =
            serde_saphyr::from_str_with_options(text, opts).map_err(|e| reg_err(e.to_string()))?;
        reg.validate()?;
        Ok(reg)
    }

    /// The built-in registry ([`BUILTIN_REGISTRY`]).
    pub fn builtin() -> Result<Self> {
        Self::from_yaml(BUILTIN_REGISTRY)
    }

    fn validate(&self) -> Result<()> {
        let ok_name = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let mut names = BTreeSet::new();
        let mut files = BTreeSet::new();
        for r in &self.receptors {
            if !ok_name(&r.name) {
                return Err(reg_err(format!(
                    "receptor name {:?}: use letters, digits, '_' or '-'",
                    r.name
                )));
            }
            if !names.insert(r.name.as_str()) {
                return Err(reg_err(format!("receptor name {:?} appears twice", r.name)));
            }
            for (field, v) in [
                ("target", &r.target),
                ("tracer", &r.tracer),
                ("citation", &r.citation),
                ("licence", &r.licence),
            ] {
                if v.trim().is_empty() {
                    return Err(reg_err(format!("receptor {:?}: empty {field}", r.name)));
                }
            }
            check_rel("receptor", &r.name, &r.file)?;
            if !files.insert(r.file.as_str()) {
                return Err(reg_err(format!(
                    "receptor {:?}: file {:?} is registered twice",
                    r.name, r.file
                )));
            }
        }
        let mut pnames = BTreeSet::new();
        for p in &self.parcellations {
            if !ok_name(&p.name) {
                return Err(reg_err(format!(
                    "parcellation name {:?}: use letters, digits, '_' or '-'",
                    p.name
                )));
            }
            if !pnames.insert(p.name.as_str()) {
                return Err(reg_err(format!(
                    "parcellation name {:?} appears twice",
                    p.name
                )));
            }
            check_rel("parcellation", &p.name, &p.file)?;
            check_rel("parcellation", &p.name, &p.labels)?;
        }
        for e in &self.excluded {
            check_rel("excluded", &e.file, &e.file)?;
            if e.reason.trim().is_empty() {
                return Err(reg_err(format!("excluded {:?}: empty reason", e.file)));
            }
            if files.contains(e.file.as_str()) {
                return Err(reg_err(format!(
                    "{:?} is both registered and excluded",
                    e.file
                )));
            }
        }
        Ok(())
    }

    /// The receptor entry called `name`.
    pub fn receptor(&self, name: &str) -> Option<&ReceptorEntry> {
        self.receptors.iter().find(|r| r.name == name)
    }

    /// The parcellation called `name`.
    pub fn parcellation(&self, name: &str) -> Option<&ParcellationEntry> {
        self.parcellations.iter().find(|p| p.name == name)
    }

    /// The entries called `names`, in the order given; every registered map when `names` is
    /// empty. Errors on an unknown name, listing the known ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<&ReceptorEntry>> {
        if names.is_empty() {
            return Ok(self.receptors.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.receptor(n).ok_or_else(|| {
                    reg_err(format!(
                        "unknown receptor map {n:?}; known: {}",
                        self.receptors
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "receptors:
  - name: MOR
    target: MOR
    tracer: carfentanil
    file: pet/a.nii.gz
    citation: x
    licence: y
    role: receptor
parcellations: []
";

    #[test]
    fn builtin_parses_and_has_the_must_have_targets() {
        let r = Registry::builtin().unwrap();
        for t in ["MOR", "KOR", "NMDA", "mGluR5", "GABA-A", "GABA-A a5"] {
            assert!(
                r.receptors
                    .iter()
                    .any(|e| e.target == t && e.role == Role::Receptor),
                "target {t} missing"
            );
        }
        // both alpha5 maps, with notes saying how they differ
        let a5: Vec<_> = r
            .receptors
            .iter()
            .filter(|e| e.target == "GABA-A a5")
            .collect();
        assert_eq!(a5.len(), 2);
        assert!(
            a5.iter()
                .all(|e| e.notes.as_deref().unwrap_or("").contains("alpha1"))
        );
        assert!(r.receptors.iter().any(|e| e.role == Role::Control));
        for p in [
            "schaefer100tian",
            "schaefer200tian",
            "schaefer400tian",
            "neuromorphometrics",
        ] {
            assert!(r.parcellation(p).is_some(), "{p}");
        }
        assert_eq!(r.select(&[]).unwrap().len(), r.receptors.len());
        assert_eq!(r.select(&["KOR".into()]).unwrap()[0].target, "KOR");
        assert!(r.select(&["XYZ".into()]).is_err());
    }

    #[test]
    fn strict_parsing() {
        assert!(Registry::from_yaml(MINIMAL).is_ok());
        // unknown key
        let e = Registry::from_yaml(
            &MINIMAL.replace("role: receptor", "role: receptor\n    colour: red"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("colour"), "{e}");
        // duplicate key
        assert!(
            Registry::from_yaml(&MINIMAL.replace("licence: y", "licence: y\n    licence: z"))
                .is_err()
        );
        // bad role
        assert!(Registry::from_yaml(&MINIMAL.replace("role: receptor", "role: agonist")).is_err());
        // duplicate name
        let twice = MINIMAL.replace(
            "parcellations: []",
            "  - name: MOR\n    target: MOR\n    tracer: t\n    file: pet/b.nii.gz\n    citation: x\n    licence: y\n    role: control\nparcellations: []",
        );
        assert!(
            Registry::from_yaml(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        // path escaping the resource directory
        assert!(Registry::from_yaml(&MINIMAL.replace("pet/a.nii.gz", "../a.nii.gz")).is_err());
        assert!(Registry::from_yaml(&MINIMAL.replace("pet/a.nii.gz", "/abs/a.nii.gz")).is_err());
        // empty field
        assert!(Registry::from_yaml(&MINIMAL.replace("citation: x", "citation: ''")).is_err());
    }
}
