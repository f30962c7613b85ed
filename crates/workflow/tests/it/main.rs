//! The workflow format, the plan and the executor.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod e2e;
mod exec;
mod parse;
mod plan;
mod plan_file;

/// The repository's `workflows/` directory.
pub(crate) fn workflows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows")
}

/// Asserts that `text` (a message, a shown plan) contains every one of `needles`.
pub(crate) fn contains_all(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{n:?} not in: {text}");
    }
}

/// A small synthetic crossover study (3 subjects × 2 sessions × 2 runs, 3 label/control pairs
/// per run); never modified by tests. Nextest runs every test in its own process, so the study
/// is generated once into the target directory's test scratch space and reused (written to a
/// temporary directory and renamed into place complete; delete it to regenerate).
pub(crate) fn base_study() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cbflow-workflow-study-s3-seed5-p3");
        if root.join(".complete").is_file() {
            return root;
        }
        // one process generates, the others wait on the lock
        let lock = std::fs::File::create(root.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        if root.join(".complete").is_file() {
            return root;
        }
        let tmp = root.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut spec = cbflow_synth::SynthSpec {
            subjects: 3,
            seed: 5,
            ..Default::default()
        };
        spec.protocol.pairs = 3;
        cbflow_synth::generate(&spec, &tmp).unwrap();
        std::fs::write(tmp.join(".complete"), "").unwrap();
        if std::fs::rename(&tmp, &root).is_err() {
            // another test process got there first
            let _ = std::fs::remove_dir_all(&tmp);
        }
        assert!(root.join(".complete").is_file());
        root
    })
}

/// Every file under `dir` except `logs/`, with its bytes, sorted by relative path.
pub(crate) fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if rel.starts_with("logs") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
