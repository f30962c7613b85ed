//! What a pin is about and how a verified file is put in place: the SHA-256 of a file's content
//! as [`How`] defines it, the state of a resource directory's copy, and the atomic install of a
//! file whose content has been checked.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::{How, ManifestEntry};

/// SHA-256 (lower-case hex) of everything `reader` yields (read in 1 MiB blocks): the one
/// digest of cbflow, for pinned resources and for the job cache's content addresses alike.
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest the pin of `how` is about for the installed file at `path`: the file's own bytes,
/// or, for [`How::Gzip`], its uncompressed content.
pub(crate) fn installed_digest(path: &Path, how: &How) -> io::Result<String> {
    let file = io::BufReader::new(File::open(path)?);
    match how {
        How::Gzip => sha256_hex(flate2::read::MultiGzDecoder::new(file)),
        How::Copy | How::Unzip(_) => sha256_hex(file),
    }
}

/// The state of one manifest file in a resource directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present with the pinned content.
    Verified,
    /// Not there.
    Missing,
    /// There, with other content (the digest found; `None` when it could not be read, e.g. a
    /// truncated gzip).
    Modified(Option<String>),
}

/// Checks `entry` in the resource directory `dir` (hashes the file).
pub fn file_state(dir: &Path, entry: &ManifestEntry) -> FileState {
    let path = dir.join(&entry.path);
    if !path.is_file() {
        return FileState::Missing;
    }
    match installed_digest(&path, &entry.how) {
        Ok(d) if d == entry.sha256 => FileState::Verified,
        Ok(d) => FileState::Modified(Some(d)),
        Err(_) => FileState::Modified(None),
    }
}

/// A temporary file beside `dest`, renamed onto it by [`Staged::install`] and removed if
/// dropped before: a destination is either absent or complete and verified.
pub(crate) struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl Staged {
    pub(crate) fn new(dest: &Path) -> io::Result<Self> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp)?;
        Ok(Self {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until installed")
    }

    /// Flushes to disk and renames onto the destination.
    pub(crate) fn install(mut self) -> io::Result<()> {
        let file = self.file.take().expect("open until installed");
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() || self.tmp.exists() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A reader that hashes what passes through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }
    pub(crate) fn digest(self) -> String {
        hex(&self.hasher.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Why a download could not become its destination.
#[derive(Debug)]
pub(crate) enum InstallError {
    /// The content's SHA-256 is not the pinned one (the digest found).
    Mismatch(String),
    /// The zip has no such member.
    NoMember(String),
    /// Reading or writing failed.
    Io(io::Error),
}

impl From<io::Error> for InstallError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Makes `dest` from the complete download at `download` as `how` says, after checking its
/// content against `sha256`; on any failure `dest` is left as it was.
pub(crate) fn install_download(
    download: &Path,
    how: &How,
    sha256: &str,
    dest: &Path,
) -> Result<(), InstallError> {
    let mut staged = Staged::new(dest)?;
    let digest = match how {
        How::Copy => {
            let mut src = Hashing::new(io::BufReader::new(File::open(download)?));
            io::copy(&mut src, staged.file())?;
            src.digest()
        }
        How::Gzip => {
            let mut src = Hashing::new(io::BufReader::new(File::open(download)?));
            // mtime 0 and no name: the same download always gives the same bytes
            let mut gz = flate2::GzBuilder::new()
                .mtime(0)
                .write(staged.file(), flate2::Compression::best());
            io::copy(&mut src, &mut gz)?;
            gz.finish()?.flush()?;
            src.digest()
        }
        How::Unzip(member) => {
            let mut archive = zip::ZipArchive::new(io::BufReader::new(File::open(download)?))
                .map_err(|e| {
                    InstallError::Io(io::Error::other(format!("not a zip archive: {e}")))
                })?;
            let entry = archive
                .by_name(member)
                .map_err(|_| InstallError::NoMember(member.clone()))?;
            let mut src = Hashing::new(entry);
            io::copy(&mut src, staged.file())?;
            src.digest()
        }
    };
    if digest != sha256 {
        return Err(InstallError::Mismatch(digest));
    }
    staged.install()?;
    Ok(())
}

/// Copies `src` (a file of another resource directory, installed as `how`) to `dest` when its
/// content is `sha256`: the copy itself is checked before it is renamed into place, so what is
/// installed is what was verified, and the source is read once.
pub(crate) fn install_copy(
    src: &Path,
    how: &How,
    sha256: &str,
    dest: &Path,
) -> Result<(), InstallError> {
    let mut staged = Staged::new(dest)?;
    io::copy(&mut File::open(src)?, staged.file())?;
    staged.file().sync_all()?;
    let found = installed_digest(&staged.tmp, how)?;
    if found != sha256 {
        return Err(InstallError::Mismatch(found));
    }
    staged.install()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn sha(bytes: &[u8]) -> String {
        sha256_hex(bytes).unwrap()
    }

    #[test]
    fn downloads_are_installed_only_with_their_pinned_content() {
        let t = tempfile::tempdir().unwrap();
        let content = b"label image bytes".repeat(100);
        let download = t.path().join("download");
        std::fs::write(&download, &content).unwrap();

        // copy: the bytes as they are
        let dest = t.path().join("res/a.bin");
        install_download(&download, &How::Copy, &sha(&content), &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), content);

        // gzip: stored compressed, pinned and verified by the uncompressed content
        let gz = t.path().join("res/b.nii.gz");
        install_download(&download, &How::Gzip, &sha(&content), &gz).unwrap();
        assert_eq!(installed_digest(&gz, &How::Gzip).unwrap(), sha(&content));
        let first = std::fs::read(&gz).unwrap();
        std::fs::remove_file(&gz).unwrap();
        install_download(&download, &How::Gzip, &sha(&content), &gz).unwrap();
        assert_eq!(
            std::fs::read(&gz).unwrap(),
            first,
            "gzip output not reproducible"
        );

        // unzip: one member of an archive
        let zip_path = t.path().join("archive.zip");
        let mut w = zip::ZipWriter::new(File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("AAL3/other.txt", opts).unwrap();
        w.write_all(b"other").unwrap();
        w.start_file("AAL3/AAL3v1.nii.txt", opts).unwrap();
        w.write_all(&content).unwrap();
        w.finish().unwrap();
        let member = t.path().join("res/c.txt");
        let how = How::Unzip("AAL3/AAL3v1.nii.txt".into());
        install_download(&zip_path, &how, &sha(&content), &member).unwrap();
        assert_eq!(std::fs::read(&member).unwrap(), content);
        let missing = How::Unzip("AAL3/none.txt".into());
        assert!(matches!(
            install_download(&zip_path, &missing, &sha(&content), &t.path().join("res/d")),
            Err(InstallError::NoMember(_))
        ));

        // a wrong pin: an error with the digest found, and nothing at the destination or
        // beside it
        let wrong = "0".repeat(64);
        let bad = t.path().join("res/e.bin");
        match install_download(&download, &How::Copy, &wrong, &bad) {
            Err(InstallError::Mismatch(found)) => assert_eq!(found, sha(&content)),
            other => panic!("{other:?}"),
        }
        assert!(!bad.exists());
        let leftovers: Vec<_> = std::fs::read_dir(t.path().join("res"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // a copy from another resource directory: kept when as pinned (a gzip entry checked on
        // its content), refused and absent otherwise
        let copied = t.path().join("res2/b.nii.gz");
        install_copy(&gz, &How::Gzip, &sha(&content), &copied).unwrap();
        assert_eq!(std::fs::read(&copied).unwrap(), first);
        let refused = t.path().join("res2/f.bin");
        match install_copy(&download, &How::Copy, &wrong, &refused) {
            Err(InstallError::Mismatch(found)) => assert_eq!(found, sha(&content)),
            other => panic!("{other:?}"),
        }
        assert!(!refused.exists());
        assert_eq!(std::fs::read_dir(t.path().join("res2")).unwrap().count(), 1);
    }
}
