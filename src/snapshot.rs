//! The immutable result of a scan, its atomic swap, and its file on disk.
//!
//! A `Snapshot` is built aside by `Builder` (from scan results) and never changed after
//! `finish`; readers hold an `Arc<Snapshot>` for as long as they need it, so a new scan
//! never blocks or half-updates a reader. Layer digests are interned once in `blobs`
//! and tags refer to them by index, which keeps 100k tags small in memory and lets later
//! views (per-namespace rollups, bytes held by one repository only) be computed without a
//! re-scan.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// One distinct layer blob of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Shared with the scan that found it (one allocation per distinct digest).
    pub digest: Arc<str>,
    pub size: u64,
}

/// A tag: its manifest digest, its distinct layers, and the sizes `usage` computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: Box<str>,
    /// The manifest digest (`Docker-Content-Digest`), when the registry gave one.
    pub digest: Option<Box<str>>,
    /// Indices into `Snapshot::blobs`, sorted and distinct.
    pub layers: Box<[u32]>,
    pub size: u64,
    pub disk_size: u64,
}

/// A repository. `tags` is `None` when its tags are unknown (its scan failed and there
/// was no earlier data); then `size` and `disk_size` are `None` too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: Box<str>,
    /// Sorted by name.
    pub tags: Option<Vec<Tag>>,
    pub size: Option<u64>,
    pub disk_size: Option<u64>,
    /// Why the last scan of this repository failed (its data may be from an earlier scan).
    pub error: Option<Box<str>>,
}

impl Repository {
    /// The tag called `name`, if the tags are known.
    pub fn tag(&self, name: &str) -> Option<&Tag> {
        let tags = self.tags.as_ref()?;
        tags.binary_search_by(|t| t.name.as_ref().cmp(name))
            .ok()
            .map(|i| &tags[i])
    }
}

/// Registry-wide sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub size: u64,
    pub disk_size: u64,
    pub repository_count: usize,
    pub tag_count: usize,
}

/// Everything the service knows about the registry at one point in time.
#[derive(Debug)]
pub struct Snapshot {
    /// End of the scan that produced it (unix seconds).
    pub timestamp: f64,
    /// Distinct per process and snapshot; part of every ETag.
    pub generation: u64,
    pub blobs: Vec<Blob>,
    /// Sorted by name (byte order).
    pub repositories: Vec<Repository>,
    pub totals: Totals,
}

impl Snapshot {
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories
            .binary_search_by(|r| r.name.as_ref().cmp(name))
            .ok()
            .map(|i| &self.repositories[i])
    }

    /// Layers (digest, size) of a tag, for callers that need the digests.
    pub fn layers<'a>(&'a self, tag: &'a Tag) -> impl Iterator<Item = &'a Blob> + 'a {
        tag.layers.iter().map(move |&l| &self.blobs[l as usize])
    }
}

/// A layer as the scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub digest: Arc<str>,
    pub size: u64,
}

/// A tag as the scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedTag {
    pub name: String,
    pub digest: Option<String>,
    /// Shared by every tag whose manifest has the same digest.
    pub layers: Arc<[LayerRef]>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Builds a `Snapshot`: interns digests, sorts names, then runs the accounting.
#[derive(Default)]
pub struct Builder {
    blobs: Vec<Blob>,
    index: HashMap<Arc<str>, u32>,
    repositories: Vec<Repository>,
}

impl Builder {
    fn intern(&mut self, digest: &Arc<str>, size: u64) -> u32 {
        if let Some(&i) = self.index.get(digest) {
            return i;
        }
        let i = self.blobs.len() as u32;
        let digest = digest.clone();
        self.blobs.push(Blob {
            digest: digest.clone(),
            size,
        });
        self.index.insert(digest, i);
        i
    }

    /// Add a repository found by a scan; `tags: None` means its tags are unknown.
    pub fn add_repository(
        &mut self,
        name: &str,
        tags: Option<Vec<ScannedTag>>,
        error: Option<String>,
    ) {
        let tags = tags.map(|tags| {
            tags.into_iter()
                .map(|t| {
                    self.tag(
                        &t.name,
                        t.digest.as_deref(),
                        t.layers.iter().map(|l| (&l.digest, l.size)),
                    )
                })
                .collect()
        });
        self.push(name, tags, error);
    }

    /// Add a repository copied from an earlier snapshot (its scan failed this time).
    pub fn add_previous(&mut self, previous: &Snapshot, repo: &Repository, error: Option<String>) {
        let tags = repo.tags.as_ref().map(|tags| {
            tags.iter()
                .map(|t| {
                    self.tag(
                        &t.name,
                        t.digest.as_deref(),
                        previous.layers(t).map(|b| (&b.digest, b.size)),
                    )
                })
                .collect()
        });
        self.push(&repo.name, tags, error);
    }

    fn tag<'a>(
        &mut self,
        name: &str,
        digest: Option<&str>,
        layers: impl Iterator<Item = (&'a Arc<str>, u64)>,
    ) -> Tag {
        let mut ids: Vec<u32> = layers.map(|(d, s)| self.intern(d, s)).collect();
        ids.sort_unstable();
        ids.dedup();
        Tag {
            name: name.into(),
            digest: digest.map(Into::into),
            layers: ids.into_boxed_slice(),
            size: 0,
            disk_size: 0,
        }
    }

    fn push(&mut self, name: &str, tags: Option<Vec<Tag>>, error: Option<String>) {
        let tags = tags.map(|mut tags: Vec<Tag>| {
            tags.sort_by(|a, b| a.name.cmp(&b.name));
            tags.dedup_by(|a, b| a.name == b.name);
            tags
        });
        self.repositories.push(Repository {
            name: name.into(),
            tags,
            size: None,
            disk_size: None,
            error: error.map(Into::into),
        });
    }

    /// Sort, account and freeze.
    pub fn finish(mut self, timestamp: f64) -> Snapshot {
        self.repositories.sort_by(|a, b| a.name.cmp(&b.name));
        self.repositories.dedup_by(|a, b| a.name == b.name);
        let totals = crate::usage::account(&self.blobs, &mut self.repositories);
        self.blobs.shrink_to_fit();
        Snapshot {
            timestamp,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            blobs: self.blobs,
            repositories: self.repositories,
            totals,
        }
    }
}

/// The current snapshot, shared between the refresh thread (the only writer) and the
/// HTTP workers. The lock is held only to clone or replace the `Arc`, never during a
/// scan or while a response is written.
#[derive(Default)]
pub struct Shared {
    current: RwLock<Option<Arc<Snapshot>>>,
}

impl Shared {
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, snapshot: Arc<Snapshot>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
    }
}

// ---- the snapshot file -------------------------------------------------------------

/// Identifies our files; anything else is "a foreign file" and ignored.
const FORMAT: &str = "gitlab-registry-usage-rest/snapshot/1";

#[derive(Serialize, Deserialize)]
struct FileTag<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    digest: Option<std::borrow::Cow<'a, str>>,
    layers: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct FileRepository<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<FileTag<'a>>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    error: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
struct File<'a> {
    format: std::borrow::Cow<'a, str>,
    timestamp: f64,
    #[serde(borrow)]
    blobs: Vec<(std::borrow::Cow<'a, str>, u64)>,
    #[serde(borrow)]
    repositories: Vec<FileRepository<'a>>,
}

/// Write the snapshot atomically: temp file in the same directory, fsync, rename, fsync dir.
pub fn save(snapshot: &Snapshot, path: &Path) -> std::io::Result<()> {
    let file = File {
        format: FORMAT.into(),
        timestamp: snapshot.timestamp,
        blobs: snapshot
            .blobs
            .iter()
            .map(|b| (b.digest.as_ref().into(), b.size))
            .collect(),
        repositories: snapshot
            .repositories
            .iter()
            .map(|r| FileRepository {
                name: r.name.as_ref().into(),
                tags: r.tags.as_ref().map(|tags| {
                    tags.iter()
                        .map(|t| FileTag {
                            name: t.name.as_ref().into(),
                            digest: t.digest.as_deref().map(Into::into),
                            layers: t.layers.to_vec(),
                        })
                        .collect()
                }),
                error: r.error.as_deref().map(Into::into),
            })
            .collect(),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("snapshot");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        serde_json::to_writer(&mut out, &file)?;
        out.flush()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Read a snapshot file. Any problem (missing, truncated, foreign, inconsistent) is an
/// `Err` with a message for the log; the caller goes on without it.
pub fn load(path: &Path) -> Result<Snapshot, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: File = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a snapshot file of this service: {e}",
            path.display()
        )
    })?;
    if file.format != FORMAT {
        return Err(format!(
            "{} has format {:?}, expected {FORMAT:?}",
            path.display(),
            file.format
        ));
    }
    // The file's blob table is already distinct: take it as the snapshot's own, and let
    // tags refer to it by index, without re-interning (this keeps the peak memory of a
    // 100k-tag load close to the size of the result).
    let blob_count = file.blobs.len();
    let mut builder = Builder {
        blobs: file
            .blobs
            .iter()
            .map(|(d, s)| Blob {
                digest: Arc::from(d.as_ref()),
                size: *s,
            })
            .collect(),
        ..Builder::default()
    };
    for repo in &file.repositories {
        let tags = match &repo.tags {
            None => None,
            Some(tags) => {
                let mut out = Vec::with_capacity(tags.len());
                for t in tags {
                    if let Some(bad) = t.layers.iter().find(|&&l| l as usize >= blob_count) {
                        return Err(format!(
                            "{}: tag {:?} of {:?} refers to layer {bad} of {blob_count}",
                            path.display(),
                            t.name,
                            repo.name
                        ));
                    }
                    let mut layers = t.layers.clone();
                    layers.sort_unstable();
                    layers.dedup();
                    out.push(Tag {
                        name: t.name.as_ref().into(),
                        digest: t.digest.as_deref().map(Into::into),
                        layers: layers.into_boxed_slice(),
                        size: 0,
                        disk_size: 0,
                    });
                }
                Some(out)
            }
        };
        builder.push(&repo.name, tags, repo.error.as_ref().map(|e| e.to_string()));
    }
    let timestamp = file.timestamp;
    drop(file);
    drop(bytes);
    Ok(builder.finish(timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let mut b = Builder::default();
        let layer = |d: &str, s| LayerRef {
            digest: d.into(),
            size: s,
        };
        b.add_repository(
            "g/app",
            Some(vec![
                ScannedTag {
                    name: "v1".into(),
                    digest: Some("sha256:aa".into()),
                    layers: vec![layer("sha256:base", 100), layer("sha256:one", 5)].into(),
                },
                ScannedTag {
                    name: "latest".into(),
                    digest: None,
                    layers: vec![layer("sha256:base", 100)].into(),
                },
            ]),
            None,
        );
        b.add_repository("broken", None, Some("tag list: HTTP 500".into()));
        b.finish(1234.5)
    }

    #[test]
    fn file_round_trip_keeps_everything() {
        let dir = std::env::temp_dir().join(format!("grur-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.json");
        let s = sample();
        save(&s, &path).unwrap();
        let l = load(&path).unwrap();
        assert_eq!(l.timestamp, s.timestamp);
        assert_eq!(l.blobs, s.blobs);
        assert_eq!(l.repositories, s.repositories);
        assert_eq!(l.totals, s.totals);
        assert_ne!(l.generation, s.generation);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_and_foreign_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("grur-snap-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.json");
        save(&sample(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load(&path).unwrap_err().contains("is not a snapshot file"));
        std::fs::write(
            &path,
            br#"{"format":"other","timestamp":1,"blobs":[],"repositories":[]}"#,
        )
        .unwrap();
        assert!(load(&path).unwrap_err().contains("expected"));
        std::fs::write(
            &path,
            format!(r#"{{"format":"{FORMAT}","timestamp":1,"blobs":[],"repositories":[{{"name":"r","tags":[{{"name":"t","layers":[3]}}]}}]}}"#),
        )
        .unwrap();
        assert!(load(&path).unwrap_err().contains("refers to layer 3"));
        assert!(load(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lookups() {
        let s = sample();
        assert!(s.repository("g/app").unwrap().tag("v1").is_some());
        assert!(s.repository("g/app").unwrap().tag("v2").is_none());
        assert!(s.repository("broken").unwrap().tag("v1").is_none());
        assert!(s.repository("nope").is_none());
        let names: Vec<_> = s.repositories.iter().map(|r| r.name.as_ref()).collect();
        assert_eq!(names, ["broken", "g/app"]);
    }
}
