//! The manifest of fetchable resources (`registry/resources.tsv`): every file a resource
//! directory can hold, the resource it belongs to, its published home at a pinned commit and the
//! SHA-256 of its content. Parsing is pure: text in, entries out.

use crate::{Error, Result};

/// The built-in manifest, embedded in the binary.
pub const BUILTIN_MANIFEST: &str = include_str!("../../registry/resources.tsv");

/// How a download becomes the file at its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The downloaded bytes, as they are; the pin is their SHA-256.
    Copy,
    /// The download (e.g. an uncompressed `.nii`) gzipped here; the pin is the SHA-256 of the
    /// uncompressed content, so a copy gzipped by anyone else verifies too.
    Gzip,
    /// One member of a downloaded zip archive; the pin is the member's SHA-256.
    Unzip(String),
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The resource the file belongs to (`MNI152NLin6Asym`, a receptor map's registry name, a
    /// parcellation's, `licence-<source>`); several files share a name.
    pub name: String,
    /// The destination, relative to the resource directory (`/`-separated).
    pub path: String,
    /// The pinned SHA-256 (lower-case hex) of the content, as [`How`] says.
    pub sha256: String,
    /// How the download becomes the destination.
    pub how: How,
    /// Where the file is published (a URL at a pinned commit).
    pub url: String,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// The built-in manifest ([`BUILTIN_MANIFEST`]; its validity is checked by a test).
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN_MANIFEST, "registry/resources.tsv (built in)")
    }

    /// Parses manifest text: `#` comment lines, then `name path sha256 how url` separated by
    /// tabs. `origin` names the text in errors (`origin:line: ...`).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut entries: Vec<ManifestEntry> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| Error::Manifest(format!("{origin}:{}: {message}", i + 1));
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [name, path, sha256, how, url] = fields[..] else {
                return Err(err(format!(
                    "{} tab-separated fields; expected 5: name, path, sha256, how, url",
                    fields.len()
                )));
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(err(format!(
                    "resource name {name:?} is empty or has spaces"
                )));
            }
            if path.is_empty()
                || path.starts_with('/')
                || path.contains('\\')
                || path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(err(format!(
                    "destination {path:?} is not a plain relative path (no leading /, no . or .. components)"
                )));
            }
            if path.split('/').any(|c| c.starts_with('.')) {
                return Err(err(format!("destination {path:?} has a hidden component")));
            }
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(format!("sha256 {sha256:?} is not 64 hex digits")));
            }
            let how = match how {
                "copy" => How::Copy,
                "gzip" => How::Gzip,
                _ => match how.strip_prefix("unzip:") {
                    Some(member) if !member.is_empty() => How::Unzip(member.to_string()),
                    _ => {
                        return Err(err(format!(
                            "how {how:?}: expected copy, gzip or unzip:MEMBER"
                        )));
                    }
                },
            };
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(err(format!("url {url:?} is not http(s)")));
            }
            if entries.iter().any(|e| e.path == path) {
                return Err(err(format!("destination {path} is listed twice")));
            }
            entries.push(ManifestEntry {
                name: name.to_string(),
                path: path.to_string(),
                sha256: sha256.to_ascii_lowercase(),
                how,
                url: url.to_string(),
            });
        }
        if entries.is_empty() {
            return Err(Error::Manifest(format!("{origin}: lists no files")));
        }
        Ok(Self { entries })
    }

    /// Every file, in manifest order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// The resource names, each once, in manifest order.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !v.contains(&e.name.as_str()) {
                v.push(&e.name);
            }
        }
        v
    }

    /// The files of the resources `names` (every file when empty). Names match exactly or,
    /// failing that, ignoring case; an unknown name is an error listing the known ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<&ManifestEntry>> {
        if names.is_empty() {
            return Ok(self.entries.iter().collect());
        }
        let known = self.names();
        let mut wanted: Vec<&str> = Vec::new();
        for n in names {
            let found = known
                .iter()
                .find(|k| *k == n)
                .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(n)))
                .ok_or_else(|| Error::UnknownResource {
                    name: n.clone(),
                    known: known.join(", "),
                })?;
            if !wanted.contains(found) {
                wanted.push(found);
            }
        }
        Ok(self
            .entries
            .iter()
            .filter(|e| wanted.contains(&e.name.as_str()))
            .collect())
    }

    /// The entry whose destination is `path` (relative to the resource directory).
    pub fn for_path(&self, path: &str) -> Option<&ManifestEntry> {
        self.entries.iter().find(|e| e.path == path)
    }
}

/// The command that fetches the resource holding `path` (a file or a directory, relative to
/// the resource directory), for error messages: "run `cbflow resources fetch NAME`", or a
/// pointer to `cbflow resources list` when the built-in manifest does not know it.
pub fn fetch_hint(path: &str) -> String {
    let dir = format!("{}/", path.trim_end_matches('/'));
    match Manifest::builtin().ok().and_then(|m| {
        m.for_path(path)
            .or_else(|| m.entries().iter().find(|e| e.path.starts_with(&dir)))
            .map(|e| e.name.clone())
    }) {
        Some(name) => format!(
            "run `cbflow resources fetch {name}` (into $CBFLOW_RESOURCES, else the user cache directory)"
        ),
        None => "`cbflow resources list` shows what can be fetched".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0585cd056bf5ccfb8bf97a5f6a66082d4e7caad525718fc11e40d80a827fcb92";

    fn line(name: &str, path: &str, how: &str) -> String {
        format!("{name}\t{path}\t{SHA}\t{how}\thttps://example.org/{path}\n")
    }

    #[test]
    fn a_manifest_is_parsed_and_selected_by_name() {
        let text = format!(
            "# comment\n{}{}{}",
            line("A", "templates/a.nii.gz", "copy"),
            line("B", "atlases/b.nii.gz", "gzip"),
            line("A", "atlases/c.txt", "unzip:X/c.txt"),
        );
        let m = Manifest::parse(&text, "m.tsv").unwrap();
        assert_eq!(m.names(), ["A", "B"]);
        let a = m.select(&["a".into()]).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].how, How::Unzip("X/c.txt".into()));
        assert_eq!(m.for_path("atlases/b.nii.gz").unwrap().how, How::Gzip);
        let e = m.select(&["C".into()]).unwrap_err().to_string();
        assert!(fetch_hint("atlases/aal3").contains("cbflow resources fetch MNI152NLin6Asym"));
        assert!(
            fetch_hint("pet/juspace_v1.5/mGluR5_abp_hc73_smart.nii.gz").contains("fetch mGluR5")
        );
        assert!(fetch_hint("pet/none.nii.gz").contains("cbflow resources list"));
        assert!(e.contains("C") && e.contains("A, B"), "{e}");
    }

    #[test]
    fn bad_lines_are_refused_with_their_line() {
        let with = |path: &str, how: &str, url: &str| format!("A\t{path}\t{SHA}\t{how}\t{url}");
        for (bad, says) in [
            ("A\tx.nii\tabc\tcopy\thttps://e/x".to_string(), "64 hex"),
            (with("../x.nii", "copy", "https://e/x"), "relative"),
            (with("/x.nii", "copy", "https://e/x"), "relative"),
            (with("x.nii", "move", "https://e/x"), "copy, gzip"),
            (with("x.nii", "copy", "ftp://e/x"), "http"),
            ("A\tx.nii\tcopy".to_string(), "3 tab-separated"),
        ] {
            let e = Manifest::parse(&format!("# c\n{bad}\n"), "m.tsv")
                .unwrap_err()
                .to_string();
            assert!(e.contains("m.tsv:2:") && e.contains(says), "{bad}: {e}");
        }
        let twice = line("A", "x.nii", "copy").repeat(2);
        let e = Manifest::parse(&twice, "m.tsv").unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
    }
}
