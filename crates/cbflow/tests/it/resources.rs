//! `cbflow resources`: a fetch from a web server on 127.0.0.1 (no outside network) that serves
//! the files of `../shared/data` — one whole, one through a connection cut half-way, one
//! against a wrong checksum — and then the participant level on the default template from that
//! cache alone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use predicates::prelude::*;

use crate::{cbflow, shared_data};

/// A tiny HTTP/1.1 server: `GET /data/<path>` serves `root/<path>` (honouring `Range:
/// bytes=N-`), `/nii/<path>.nii` the uncompressed content of `root/<path>.nii.gz`, and
/// `/cut/<path>` like `/data` except that its first response announces the whole length and
/// closes after half. Every request line and its Range header are logged.
struct Server {
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let served_log = log.clone();
        std::thread::spawn(move || {
            let mut cut_once: BTreeMap<String, ()> = BTreeMap::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &root, &served_log, &mut cut_once);
            }
        });
        Self { base, log }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(
    mut stream: TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
    cut_once: &mut BTreeMap<String, ()>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range_from = 0u64;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range_from = v.trim().trim_end_matches('-').parse().unwrap_or(0);
        }
    }
    let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock()
        .unwrap()
        .push(format!("{target} range={range_from}"));
    let body: Option<Vec<u8>> = if let Some(p) = target.strip_prefix("/data/") {
        std::fs::read(root.join(p)).ok()
    } else if let Some(p) = target.strip_prefix("/cut/") {
        std::fs::read(root.join(p)).ok()
    } else if let Some(p) = target.strip_prefix("/nii/") {
        std::fs::File::open(root.join(format!("{p}.gz")))
            .ok()
            .map(|f| {
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(f).read_to_end(&mut v).unwrap();
                v
            })
    } else {
        None
    };
    let Some(body) = body else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let total = body.len() as u64;
    if target.starts_with("/cut/") && cut_once.insert(target.clone(), ()).is_none() {
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
        )?;
        stream.write_all(&body[..body.len() / 2])?;
        stream.flush()?;
        return stream.shutdown(std::net::Shutdown::Both);
    }
    if range_from > 0 && range_from < total {
        write!(
            stream,
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {range_from}-{}/{total}\r\nConnection: close\r\n\r\n",
            total - range_from,
            total - 1
        )?;
        stream.write_all(&body[range_from as usize..])?;
    } else {
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
        )?;
        stream.write_all(&body)?;
    }
    stream.flush()
}

/// The SHA-256 the built-in manifest pins for `path`.
fn pinned(path: &str) -> String {
    cbflow_resources::fetch::Manifest::builtin()
        .unwrap()
        .for_path(path)
        .unwrap_or_else(|| panic!("{path} not in the built-in manifest"))
        .sha256
        .clone()
}

const T1: &str = "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm.nii.gz";
const MASK: &str = "templates/fsl_mni152nlin6asym_2mm/MNI152_T1_2mm_brain_mask.nii.gz";
const AAL: &str = "atlases/aal3/AAL3v1.nii.gz";
const AAL_TXT: &str = "atlases/aal3/AAL3v1.nii.txt";
const PRIORS: [&str; 3] = [
    "templates/spm12_2mm/grey.nii.gz",
    "templates/spm12_2mm/white.nii.gz",
    "templates/spm12_2mm/csf.nii.gz",
];

/// A manifest of the default template's files on the loopback server: the brain mask through
/// the cut route, the priors as uncompressed downloads gzipped by cbflow (their pins are the
/// built-in ones), the AAL3 label table pinned to `txt_sha`.
fn manifest(server: &Server, txt_sha: &str) -> String {
    let b = &server.base;
    let mut m = String::from("# the default template on a loopback server\n");
    let mut line = |path: &str, sha: &str, how: &str, url: String| {
        m.push_str(&format!("MNI152NLin6Asym\t{path}\t{sha}\t{how}\t{url}\n"));
    };
    line(T1, &pinned(T1), "copy", format!("{b}/data/{T1}"));
    line(MASK, &pinned(MASK), "copy", format!("{b}/cut/{MASK}"));
    for p in PRIORS {
        let nii = p.trim_end_matches(".gz");
        line(p, &pinned(p), "gzip", format!("{b}/nii/{nii}"));
    }
    line(AAL, &pinned(AAL), "copy", format!("{b}/data/{AAL}"));
    line(AAL_TXT, txt_sha, "copy", format!("{b}/data/{AAL_TXT}"));
    m
}

#[test]
fn resources_are_fetched_from_a_loopback_server_and_the_participant_level_runs_on_them() {
    let data = shared_data();
    let server = Server::start(data.clone());
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let fetch = |manifest_text: &str| {
        let m = t.path().join("manifest.tsv");
        std::fs::write(&m, manifest_text).unwrap();
        let mut c = cbflow();
        c.env("CBFLOW_LOG", "info")
            .args(["resources", "fetch", "--manifest"])
            .arg(&m)
            .arg("--resources")
            .arg(&cache);
        c
    };

    // a study on the MNI anatomy, and the participant level before anything is fetched: the
    // error names the resource and the command that fetches it
    let root = t.path().join("bids");
    let mut spec = cbflow_synth::SynthSpec {
        subjects: 2,
        seed: 3,
        templates: Some(data.clone()),
        ..Default::default()
    };
    spec.protocol.pairs = 3;
    cbflow_synth::generate(&spec, &root).unwrap();
    let out = t.path().join("out");
    std::fs::create_dir_all(&cache).unwrap();
    cbflow()
        .env("CBFLOW_RESOURCES", &cache)
        .arg(&root)
        .arg(&out)
        .arg("participant")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cbflow resources fetch MNI152NLin6Asym",
        ));
    assert!(!out.exists());

    // 1. a wrong pin and a cut connection: both named, neither file kept
    let wrong = "0".repeat(64);
    let first = fetch(&manifest(&server, &wrong)).assert().failure().code(1);
    let err = String::from_utf8_lossy(&first.get_output().stderr).into_owned();
    assert!(
        err.contains(&format!("{AAL_TXT}: SHA-256 of the content from"))
            && err.contains(&format!("not the pinned {wrong}"))
            && err.contains("nothing of it was kept"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{MASK}: the download from"))
            && err.contains("stopped after")
            && err.contains("resumes"),
        "{err}"
    );
    assert!(err.contains("2 of 7 file(s) not fetched"), "{err}");
    assert!(
        !cache.join(AAL_TXT).exists(),
        "a file with a wrong checksum was kept"
    );
    assert!(
        !cache.join(MASK).exists(),
        "a cut download was put in place"
    );
    // what arrived of the cut one waits, hidden, for the next fetch; nothing of the wrong one
    let partial: Vec<String> = std::fs::read_dir(cache.join(".partial"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock")
        .collect();
    assert_eq!(partial.len(), 1, "{partial:?}");
    assert!(partial[0].ends_with(".part"), "{partial:?}");
    for p in [T1, AAL].iter().chain(&PRIORS) {
        assert!(cache.join(p).is_file(), "{p} not fetched");
    }
    // a gzip entry is stored gzipped and verifies against the uncompressed pin
    let grey = std::fs::read(cache.join(PRIORS[0])).unwrap();
    assert_eq!(&grey[..2], &[0x1f, 0x8b], "not gzipped");

    // 2. the right pin: the cut download resumes where it stopped, and all verify
    let second = fetch(&manifest(&server, &pinned(AAL_TXT)))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&second.get_output().stderr).into_owned();
    assert!(
        err.contains(&format!("{MASK}: ")) && err.contains("resumed after"),
        "{err}"
    );
    assert!(
        err.contains("2 fetched, 5 already there, 0 failed"),
        "{err}"
    );
    let requests = server.requests();
    let mask_requests: Vec<&String> = requests.iter().filter(|r| r.contains(MASK)).collect();
    let half = std::fs::metadata(data.join(MASK)).unwrap().len() / 2;
    assert_eq!(
        mask_requests,
        [
            &format!("/cut/{MASK} range=0"),
            &format!("/cut/{MASK} range={half}")
        ],
        "{requests:?}"
    );
    assert!(!cache.join(".partial").exists(), "bookkeeping left behind");
    let m = t.path().join("manifest.tsv");
    cbflow()
        .args(["resources", "verify", "MNI152NLin6Asym", "--manifest"])
        .arg(&m)
        .arg("--resources")
        .arg(&cache)
        .assert()
        .success()
        .stdout(predicate::str::contains("7 file(s) as pinned, 0 modified"));
    // and against the built-in manifest (its pins for these files)
    cbflow()
        .args(["resources", "verify", "--resources"])
        .arg(&cache)
        .assert()
        .success()
        .stdout(predicate::str::contains("7 file(s) as pinned, 0 modified"));
    // a file changed afterwards is caught
    let txt = cache.join(AAL_TXT);
    let mut f = std::fs::OpenOptions::new().append(true).open(&txt).unwrap();
    f.write_all(b"\n").unwrap();
    cbflow()
        .args(["resources", "verify", "--resources"])
        .arg(&cache)
        .assert()
        .failure()
        .stdout(predicate::str::contains(format!(
            "modified: {}",
            txt.display()
        )));
    std::fs::write(&txt, std::fs::read(data.join(AAL_TXT)).unwrap()).unwrap();

    // 3. the participant level on the default template from that cache alone
    cbflow()
        .env("CBFLOW_RESOURCES", &cache)
        .arg(&root)
        .arg(&out)
        .arg("participant")
        .args(["--participant-label", "01"])
        .assert()
        .success();
    let cbf =
        out.join("sub-01/ses-1/perf/sub-01_ses-1_run-1_space-MNI152NLin6Asym_res-2_cbf.nii.gz");
    assert!(cbf.is_file(), "{} not written", cbf.display());
}
