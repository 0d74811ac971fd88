//! Noticing that another process replaced a file: `path → last seen (stat, content hash)`.
//!
//! Readers follow files a collector writes on a shared volume (NFS, a ReadWriteMany
//! volume), where inotify does not work: so they poll `stat()`. A poll is cheap when
//! nothing changed (one `stat`, compared with the last one: device, inode, size, mtime,
//! ctime); only when that differs is the file opened and its content hashed, and only
//! when the hash differs too is it handed to the reload callback. The callback reads the
//! same open file that was hashed, so what it loads is exactly the version recorded.
//!
//! Writers replace such files by rename (`snapshot::save`), so an open file is one whole
//! version; the callback still validates the content, and whatever it says about a
//! version, that version is recorded as seen: a broken file is reported once, not once
//! per poll, and the next version gets its own chance.

use std::fs::File;
use std::hash::Hasher as _;
use std::io::{Read as _, Seek as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// What `stat` says about one version of the file. Rename gives a new inode, an
/// in-place write a new size or mtime; ctime catches a write that restores the mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// What one [`FileWatcher::poll`] found.
#[derive(Debug)]
pub enum Poll<T> {
    /// Nothing new since the last poll (same stat, or new stat but the same bytes).
    Unchanged,
    /// A new version, and what the reload callback made of it.
    Reloaded(T),
    /// The file went away, or cannot be stat'ed, opened or read. Reported once per
    /// distinct problem, then `Unchanged` until something changes.
    Failed(std::io::Error),
}

/// One followed file. Not shared: the thread that polls owns it.
#[derive(Debug)]
pub struct FileWatcher {
    path: PathBuf,
    /// The version last handed to the callback (or found identical to it).
    seen: Option<(Stamp, u64)>,
    /// The problem last reported, so it is not reported again every poll.
    failed: Option<String>,
}

impl FileWatcher {
    /// Watches `path`; the first [`poll`](Self::poll) reloads whatever is there.
    pub fn new(path: impl Into<PathBuf>) -> FileWatcher {
        FileWatcher {
            path: path.into(),
            seen: None,
            failed: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One look at the file: `reload` gets the open file (at its start) when it holds a
    /// version not seen before, whatever `reload` returns the version counts as seen.
    pub fn poll<T>(&mut self, reload: impl FnOnce(&mut File) -> T) -> Poll<T> {
        match self.look(reload) {
            Ok(outcome) => {
                self.failed = None;
                outcome
            }
            Err(e) => {
                let text = e.to_string();
                if self.failed.as_deref() == Some(text.as_str()) {
                    return Poll::Unchanged;
                }
                self.failed = Some(text);
                Poll::Failed(e)
            }
        }
    }

    fn look<T>(&mut self, reload: impl FnOnce(&mut File) -> T) -> std::io::Result<Poll<T>> {
        let stamp = Stamp::of(&std::fs::metadata(&self.path)?);
        if self.seen.map(|(s, _)| s) == Some(stamp) {
            return Ok(Poll::Unchanged);
        }
        let mut file = File::open(&self.path)?;
        // The version opened, which may be newer than the one just stat'ed.
        let stamp = Stamp::of(&file.metadata()?);
        let hash = content_hash(&mut file)?;
        let same = self.seen.map(|(_, h)| h) == Some(hash);
        self.seen = Some((stamp, hash));
        if same {
            return Ok(Poll::Unchanged);
        }
        file.rewind()?;
        Ok(Poll::Reloaded(reload(&mut file)))
    }
}

/// SipHash of the whole content, streamed. Not a defence against anyone: whoever can
/// write the file can write any content; it only tells versions apart.
fn content_hash(file: &mut File) -> std::io::Result<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.write(&buf[..n]);
        len += n as u64;
    }
    hasher.write_u64(len);
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("grur-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read(file: &mut File) -> String {
        let mut s = String::new();
        file.read_to_string(&mut s).unwrap();
        s
    }

    /// Replace `path` as a collector does: a temporary file renamed over it.
    fn replace(path: &Path, content: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn reloads_each_new_version_once_and_the_same_bytes_never() {
        let d = dir("versions");
        let path = d.join("f");
        let mut w = FileWatcher::new(&path);
        // Missing: reported once, then quiet until it appears.
        assert!(
            matches!(w.poll(read), Poll::Failed(e) if e.kind() == std::io::ErrorKind::NotFound)
        );
        assert!(matches!(w.poll(read), Poll::Unchanged));
        replace(&path, "one");
        assert!(matches!(w.poll(read), Poll::Reloaded(s) if s == "one"));
        assert!(matches!(w.poll(read), Poll::Unchanged));
        // Same bytes in a new file (new inode, new mtime): hashed, not reloaded.
        replace(&path, "one");
        assert!(matches!(w.poll(read), Poll::Unchanged));
        // A broken version is handed over once, whatever the callback thinks of it.
        replace(&path, "garbage");
        let mut calls = 0;
        for _ in 0..3 {
            let _ = w.poll(|_| calls += 1);
        }
        assert_eq!(calls, 1);
        // Same size, written in place (a writer that does not rename): still noticed.
        std::fs::write(&path, "GARBAGE").unwrap();
        assert!(matches!(w.poll(read), Poll::Reloaded(s) if s == "GARBAGE"));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(w.poll(read), Poll::Failed(_)));
        assert!(matches!(w.poll(read), Poll::Unchanged));
        // Back with the content last seen: nothing to reload.
        replace(&path, "GARBAGE");
        assert!(matches!(w.poll(read), Poll::Unchanged));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_hash_tells_contents_apart_whatever_the_read_sizes() {
        let d = dir("hash");
        let path = d.join("f");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &big).unwrap();
        let a = content_hash(&mut File::open(&path).unwrap()).unwrap();
        let mut other = big.clone();
        other[150_000] ^= 1;
        std::fs::write(&path, &other).unwrap();
        let b = content_hash(&mut File::open(&path).unwrap()).unwrap();
        std::fs::write(&path, &big).unwrap();
        let c = content_hash(&mut File::open(&path).unwrap()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, c);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
