//! Downloads over HTTP(S) into a partial file that a later call resumes (`Range` requests):
//! ureq with rustls and the Mozilla roots built in (no system OpenSSL or certificate store
//! needed in a container); `HTTPS_PROXY`/`NO_PROXY` are honoured.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// Why a download stopped.
#[derive(Debug)]
pub(crate) enum DownloadError {
    /// No response, or an error status (the message says which).
    Failed(String),
    /// The body ended early: `got` of `total` bytes are in the partial file.
    Cut {
        got: u64,
        total: Option<u64>,
        message: String,
    },
    /// The partial file could not be written.
    Io(std::io::Error),
}

/// An HTTP client for the downloads of one fetch.
pub(crate) struct Client {
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    pub(crate) fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .user_agent(concat!("cbflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent }
    }

    /// Downloads `url` into `part`, continuing after the bytes `part` already holds when the
    /// server honours the range (else from the start). `progress(done, total)` is called as
    /// bytes arrive. On `Ok` the partial file holds the whole body.
    pub(crate) fn download(
        &self,
        url: &str,
        part: &Path,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<(), DownloadError> {
        let have = std::fs::metadata(part).map_or(0, |m| m.len());
        let mut request = self.agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request
            .call()
            .map_err(|e| DownloadError::Failed(e.to_string()))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // 206 from where we stopped: append; 200: the whole file again; 416 with a partial
        // file: the range starts at its end, so it is complete (the checksum will tell)
        let resume_from = match status {
            206 if header("content-range")
                .is_some_and(|r| r.starts_with(&format!("bytes {have}-"))) =>
            {
                have
            }
            200 => 0,
            416 if have > 0 => return Ok(()),
            _ => {
                return Err(DownloadError::Failed(format!("HTTP {status}")));
            }
        };
        let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
        let total = length.map(|n| n + resume_from);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(part)
            .map_err(DownloadError::Io)?;
        file.set_len(resume_from).map_err(DownloadError::Io)?;
        file.seek(SeekFrom::End(0)).map_err(DownloadError::Io)?;
        let mut body = response.into_body().into_reader();
        let mut done = resume_from;
        progress(done, total);
        let mut buf = vec![0u8; 1 << 16];
        let cut = |done: u64, message: String, file: &mut File| {
            let _ = file.sync_all();
            DownloadError::Cut {
                got: done,
                total,
                message,
            }
        };
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(cut(done, e.to_string(), &mut file)),
            };
            file.write_all(&buf[..n]).map_err(DownloadError::Io)?;
            done += n as u64;
            progress(done, total);
        }
        if let Some(t) = total
            && done < t
        {
            return Err(cut(done, "the connection closed early".into(), &mut file));
        }
        file.sync_all().map_err(DownloadError::Io)?;
        Ok(())
    }
}
