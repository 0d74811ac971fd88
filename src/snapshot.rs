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
use std::sync::Arc;

use serde::Serialize;

/// Kept here for the path library users know; it lives with the usage index it swaps in.
pub use crate::current::Shared;
pub use crate::digest::Digest;

mod read;
mod sizes;
pub(crate) use sizes::saturating_sum;

/// One distinct layer blob of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

/// A tag: its manifest digest, where its distinct layers are, and the sizes `usage`
/// computed. 80 bytes and no allocation of its own (a million tags are two snapshots of
/// a million during a re-scan): the name is shared with every tag of the same name
/// ([`Names`]), the layer list lives in its repository's `layers` ([`Repository::layers_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: Arc<str>,
    /// The manifest digest (`Docker-Content-Digest`), when the registry gave one.
    pub digest: Option<Digest>,
    /// Where its layers are in its repository's `layers`.
    pub layers: Span,
    pub size: u64,
    pub disk_size: u64,
    /// When the image was built (unix seconds): its config blob's `created`, for an
    /// index the newest of its children's; `None` when unknown or not a valid date.
    /// What GitLab's cleanup policies order tags by (`cleanup`).
    pub created: Option<i64>,
}

/// A range of a repository's `layers`: `start..start + len`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// A repository. `tags` is `None` when its tags are unknown (its scan failed and there
/// was no earlier data); then `size` and `disk_size` are `None` too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: Box<str>,
    /// Sorted by name.
    pub tags: Option<Vec<Tag>>,
    /// The layer lists of its tags, one after the other in tag order: indices into
    /// `Snapshot::blobs`, each tag's sorted and distinct. One allocation per repository
    /// instead of one per tag.
    pub layers: Box<[u32]>,
    pub size: Option<u64>,
    pub disk_size: Option<u64>,
    /// Why the last scan of this repository failed (its data may be from an earlier scan).
    pub error: Option<Box<str>>,
}

/// Position of `item` in `slice` when it is one of its elements (by address), so that a
/// reference handed around can be turned back into an index without a search.
fn position_in<T>(slice: &[T], item: &T) -> Option<usize> {
    let size = std::mem::size_of::<T>().max(1);
    let start = slice.as_ptr() as usize;
    let at = item as *const T as usize;
    (at >= start && at < start + slice.len() * size && (at - start) % size == 0)
        .then(|| (at - start) / size)
}

impl Repository {
    /// The layers of `tag`, one of this repository's tags: indices into
    /// `Snapshot::blobs`, sorted and distinct.
    pub fn layers_of(&self, tag: &Tag) -> &[u32] {
        &self.layers[tag.layers.range()]
    }

    /// Index of `tag` among this repository's tags, if it is one of them.
    pub fn index_of(&self, tag: &Tag) -> Option<usize> {
        position_in(self.tags.as_deref()?, tag)
    }

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
    /// The scan read tags' creation dates (`[registry] tag_dates`): a tag without
    /// `created` then has no valid date, rather than an unread one.
    pub dates: bool,
}

impl Snapshot {
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories
            .binary_search_by(|r| r.name.as_ref().cmp(name))
            .ok()
            .map(|i| &self.repositories[i])
    }

    /// Index of `repo` in `repositories`, if it is one of this snapshot's.
    pub fn index_of(&self, repo: &Repository) -> Option<usize> {
        position_in(&self.repositories, repo)
    }

    /// Layers (digest, size) of a tag of `repo`, for callers that need the digests.
    pub fn layers<'a>(
        &'a self,
        repo: &'a Repository,
        tag: &'a Tag,
    ) -> impl Iterator<Item = &'a Blob> + 'a {
        repo.layers_of(tag)
            .iter()
            .map(move |&l| &self.blobs[l as usize])
    }
}

/// A layer as the scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    pub digest: Digest,
    pub size: u64,
}

/// A tag as the scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedTag {
    pub name: String,
    pub digest: Option<Digest>,
    /// Shared by every tag whose manifest has the same digest.
    pub layers: Arc<[LayerRef]>,
}

/// A tag whose layers are interned in the builder it is added to
/// ([`Builder::add_interned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternedTag {
    pub name: Arc<str>,
    pub digest: Option<Digest>,
    /// Indices from [`Builder::intern_layers`] or [`Builder::intern_previous`], sorted and
    /// distinct; shared by the tags of one manifest while a scan runs.
    pub layers: Arc<[u32]>,
    /// Becomes `Tag::created`.
    pub created: Option<i64>,
}

/// Tag names shared between tags: `latest`, `main`, `v1` recur in nearly every
/// repository, and as one `Arc<str>` each they cost a pointer a tag instead of an
/// allocation (32 bytes with glibc's overhead, 32 MB at a million tags). A direct-mapped
/// cache of recent names, not a set of all of them: a registry of distinct names (commit
/// hashes) costs no table of a million entries, and a name that recurs keeps its slot.
pub struct Names {
    slots: Vec<Option<Arc<str>>>,
}

impl Default for Names {
    fn default() -> Names {
        Names {
            slots: vec![None; 4096],
        }
    }
}

impl Names {
    /// `name` as an `Arc<str>`, the same one as the last time it was asked for if it is
    /// still in its slot.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        // FNV-1a: short names, no need for a keyed hash (the slot only decides sharing).
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let slot = &mut self.slots[(hash % 4096) as usize];
        match slot {
            Some(shared) if **shared == *name => shared.clone(),
            _ => slot.insert(Arc::from(name)).clone(),
        }
    }
}

/// A repository's tags (any order, names possibly repeated) with their layer lists, put
/// in the snapshot's form: sorted by name, one tag per name (the first), the layer lists
/// concatenated in tag order.
fn pack<T>(
    mut tags: Vec<T>,
    name: impl Fn(&T) -> &str,
    mut into: impl FnMut(T, &mut Vec<u32>) -> Tag,
) -> (Vec<Tag>, Box<[u32]>) {
    tags.sort_by(|a, b| name(a).cmp(name(b)));
    tags.dedup_by(|a, b| name(a) == name(b));
    let mut layers = Vec::new();
    // Kept for the snapshot's lifetime: no growth slack.
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        out.push(into(t, &mut layers));
    }
    (out, layers.into_boxed_slice())
}

/// A tag before `Builder::finish` has computed its sizes.
fn unsized_tag(name: Arc<str>, digest: Option<Digest>, layers: Span, created: Option<i64>) -> Tag {
    Tag {
        name,
        digest,
        layers,
        size: 0,
        disk_size: 0,
        created,
    }
}

/// A tag's span after appending its (sorted, distinct) layer indices to `layers`.
fn append(layers: &mut Vec<u32>, ids: &[u32]) -> Span {
    let span = Span {
        start: layers.len() as u32,
        len: ids.len() as u32,
    };
    layers.extend_from_slice(ids);
    span
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A number never handed out before in this process: snapshots take one each, and so
/// does every usage index (a reader rebuilds the index of the same snapshot when the
/// usage history changes, and what was rendered from the old index must not be served).
pub fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Builds a `Snapshot`: interns digests, sorts names, then runs the accounting.
#[derive(Default)]
pub struct Builder<'p> {
    blobs: Vec<Blob>,
    /// Blobs that are not in `previous`, by digest.
    index: HashMap<Digest, u32>,
    /// A re-scan's previous snapshot (its blob table is sorted by digest), and for each
    /// of its blobs the index it got in `blobs` (`u32::MAX`: not interned yet). A blob
    /// the previous snapshot had, which during a re-scan is nearly every blob, is found
    /// by its index there instead of through `index`: 4 bytes a blob instead of a hash
    /// table entry of 48 (6 MiB at 100k blobs, alive beside the served snapshot).
    previous: Option<(&'p [Blob], Vec<u32>)>,
    repositories: Vec<Repository>,
    names: Names,
    /// Becomes `Snapshot::dates`.
    dates: bool,
}

/// "Not interned yet" in `Builder::previous`.
const NOT_YET: u32 = u32::MAX;

impl<'p> Builder<'p> {
    /// A builder for a re-scan of the registry `previous` was taken of.
    pub fn after(previous: &'p Snapshot) -> Builder<'p> {
        let blobs = &previous.blobs[..];
        // Always true of a finished snapshot; without it a digest could get two entries.
        let sorted = blobs.windows(2).all(|w| w[0].digest < w[1].digest);
        Builder {
            previous: sorted.then(|| (blobs, vec![NOT_YET; blobs.len()])),
            ..Builder::default()
        }
    }

    /// Whether the scan read tags' creation dates (`Snapshot::dates`).
    pub fn with_dates(self, dates: bool) -> Builder<'p> {
        Builder { dates, ..self }
    }

    /// Index of `digest` in `blobs`, interned now if it was not yet.
    fn intern(&mut self, digest: &Digest, size: u64) -> u32 {
        if let Some((blobs, _)) = &self.previous {
            if let Ok(p) = blobs.binary_search_by(|b| b.digest.cmp(digest)) {
                return self.intern_previous_at(p, size);
            }
        }
        if let Some(&i) = self.index.get(digest) {
            return self.grow(i, size);
        }
        let i = self.blobs.len() as u32;
        self.blobs.push(Blob {
            digest: digest.clone(),
            size,
        });
        self.index.insert(digest.clone(), i);
        i
    }

    /// A registry that gives one blob two sizes: the larger wins, whichever the scan saw
    /// first (workers finish in any order).
    fn grow(&mut self, i: u32, size: u64) -> u32 {
        let blob = &mut self.blobs[i as usize];
        blob.size = blob.size.max(size);
        i
    }

    /// Intern blob `p` of the previous snapshot (seen now with `size`).
    fn intern_previous_at(&mut self, p: usize, size: u64) -> u32 {
        let Some((blobs, ids)) = &mut self.previous else {
            unreachable!("only called with a previous snapshot")
        };
        if ids[p] != NOT_YET {
            let i = ids[p];
            return self.grow(i, size);
        }
        let i = self.blobs.len() as u32;
        ids[p] = i;
        self.blobs.push(Blob {
            digest: blobs[p].digest.clone(),
            size,
        });
        i
    }

    /// Intern the layers of a tag of the snapshot given to [`Builder::after`] (by their
    /// indices there): their indices here, sorted and distinct.
    pub fn intern_previous(&mut self, previous: &Snapshot, layers: &[u32]) -> Vec<u32> {
        let same =
            matches!(&self.previous, Some((blobs, _)) if std::ptr::eq(*blobs, &previous.blobs[..]));
        let mut ids: Vec<u32> = if same {
            layers
                .iter()
                .map(|&l| self.intern_previous_at(l as usize, previous.blobs[l as usize].size))
                .collect()
        } else {
            layers
                .iter()
                .map(|&l| {
                    let b = &previous.blobs[l as usize];
                    self.intern(&b.digest, b.size)
                })
                .collect()
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Intern a manifest's layers: their indices, sorted and distinct.
    pub fn intern_layers<'a>(
        &mut self,
        layers: impl IntoIterator<Item = (&'a Digest, u64)>,
    ) -> Vec<u32> {
        let mut ids: Vec<u32> = layers.into_iter().map(|(d, s)| self.intern(d, s)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Add a repository whose tags' layers come from [`Builder::intern_layers`] or
    /// [`Builder::intern_previous`] of this builder (sizes are computed by `finish`);
    /// `tags: None` means its tags are unknown.
    pub fn add_interned(
        &mut self,
        name: &str,
        tags: Option<Vec<InternedTag>>,
        error: Option<String>,
    ) {
        debug_assert!(tags.iter().flatten().all(|t| {
            t.layers.windows(2).all(|w| w[0] < w[1])
                && t.layers.iter().all(|&l| (l as usize) < self.blobs.len())
        }));
        let names = &mut self.names;
        let packed = tags.map(|tags| {
            pack(
                tags,
                |t| &t.name,
                |t, layers| {
                    unsized_tag(
                        names.get(&t.name),
                        t.digest,
                        append(layers, &t.layers),
                        t.created,
                    )
                },
            )
        });
        self.push(name, packed, error);
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
                .map(|t| InternedTag {
                    layers: self
                        .intern_layers(t.layers.iter().map(|l| (&l.digest, l.size)))
                        .into(),
                    name: t.name.into(),
                    digest: t.digest,
                    created: None,
                })
                .collect()
        });
        self.add_interned(name, tags, error);
    }

    /// Add a repository copied from an earlier snapshot (its scan failed this time).
    pub fn add_previous(&mut self, previous: &Snapshot, repo: &Repository, error: Option<String>) {
        let tags = repo.tags.as_ref().map(|tags| {
            tags.iter()
                .map(|t| InternedTag {
                    name: t.name.clone(),
                    digest: t.digest.clone(),
                    layers: self.intern_previous(previous, repo.layers_of(t)).into(),
                    created: t.created,
                })
                .collect()
        });
        self.add_interned(&repo.name, tags, error);
    }

    fn push(&mut self, name: &str, tags: Option<(Vec<Tag>, Box<[u32]>)>, error: Option<String>) {
        let (tags, layers) = match tags {
            Some((tags, layers)) => (Some(tags), layers),
            None => (None, Box::default()),
        };
        self.repositories.push(Repository {
            name: name.into(),
            tags,
            layers,
            size: None,
            disk_size: None,
            error: error.map(Into::into),
        });
    }

    /// Puts the blob table in its canonical form: sorted by digest, and without the
    /// blobs no tag refers to (interned for a manifest of a repository whose scan then
    /// failed). The scan interns in the order its workers happen to finish; this makes
    /// the snapshot, and its file, the same whatever that order was.
    fn canonical_blobs(&mut self) {
        let mut used = vec![false; self.blobs.len()];
        for &l in self.repositories.iter().flat_map(|r| r.layers.iter()) {
            used[l as usize] = true;
        }
        let sorted = self.blobs.windows(2).all(|w| w[0].digest < w[1].digest);
        if sorted && used.iter().all(|&u| u) {
            self.blobs.shrink_to_fit();
            return;
        }
        // The used blobs by digest, then the unused ones (cut off below).
        let mut order: Vec<u32> = (0..self.blobs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            used[b]
                .cmp(&used[a])
                .then_with(|| self.blobs[a].digest.cmp(&self.blobs[b].digest))
        });
        let kept = used.iter().filter(|&&u| u).count();
        let mut renumber = vec![0u32; self.blobs.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old as usize] = new as u32;
        }
        drop(order);
        // Move every blob to its new place in the same table (no second table of 100k
        // digests): each swap puts one blob where it belongs.
        let mut place = renumber.clone();
        for i in 0..place.len() {
            while place[i] as usize != i {
                let j = place[i] as usize;
                self.blobs.swap(i, j);
                place.swap(i, j);
            }
        }
        drop(place);
        self.blobs.truncate(kept);
        self.blobs.shrink_to_fit();
        for repo in &mut self.repositories {
            for l in repo.layers.iter_mut() {
                *l = renumber[*l as usize];
            }
            for tag in repo.tags.iter().flatten() {
                repo.layers[tag.layers.range()].sort_unstable();
            }
        }
    }

    /// Sort, account and freeze.
    pub fn finish(mut self, timestamp: f64) -> Snapshot {
        self.repositories.sort_by(|a, b| a.name.cmp(&b.name));
        self.repositories.dedup_by(|a, b| a.name == b.name);
        drop(std::mem::take(&mut self.index));
        drop(self.previous.take());
        self.canonical_blobs();
        self.repositories.shrink_to_fit();
        let totals = sizes::account(&self.blobs, &mut self.repositories);
        self.blobs.shrink_to_fit();
        Snapshot {
            timestamp,
            generation: next_generation(),
            blobs: self.blobs,
            repositories: self.repositories,
            totals,
            dates: self.dates,
        }
    }
}

// ---- the snapshot file -------------------------------------------------------------
//
// JSON: {"format": FORMAT, "timestamp": f64, "blobs": [[digest, size], ...],
//        "repositories": [{"name", "tags"?: [{"name", "digest"?, "layers": [blob index]}],
//                          "error"?}]}
// Both directions stream: saving writes straight from the snapshot, and loading reads
// the file through a buffer, a repository or a batch of them at a time (`read`), so
// neither holds a second copy of the data (the file of 100k tags is about 20 MB).

/// Identifies our files; anything else is "a foreign file" and ignored.
const FORMAT: &str = "gitlab-registry-usage-rest/snapshot/1";

/// Serializes a slice as a JSON array without collecting it first.
struct SeqOut<I>(std::cell::Cell<Option<I>>);

impl<I: Iterator<Item = T>, T: Serialize> Serialize for SeqOut<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.take() {
            Some(items) => serializer.collect_seq(items),
            None => Err(serde::ser::Error::custom("serialized twice")),
        }
    }
}

fn seq_out<I: IntoIterator>(items: I) -> SeqOut<I::IntoIter> {
    SeqOut(std::cell::Cell::new(Some(items.into_iter())))
}

#[derive(Serialize)]
struct TagOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a Digest>,
    layers: &'a [u32],
    /// Added after the first format: absent when unknown, so files without dates are
    /// byte for byte what older versions wrote, and older files load.
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<i64>,
}

/// One repository as written; its tags are collected (a few at a time), the
/// repositories themselves are streamed.
#[derive(Serialize)]
struct RepositoryOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<TagOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl<'a> From<&'a Repository> for RepositoryOut<'a> {
    fn from(r: &'a Repository) -> RepositoryOut<'a> {
        RepositoryOut {
            name: &r.name,
            tags: r.tags.as_ref().map(|tags| {
                tags.iter()
                    .map(|t| TagOut {
                        name: &t.name,
                        digest: t.digest.as_ref(),
                        layers: r.layers_of(t),
                        created: t.created,
                    })
                    .collect()
            }),
            error: r.error.as_deref(),
        }
    }
}

struct FileOut<'a>(&'a Snapshot);

impl Serialize for FileOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let s = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("format", FORMAT)?;
        map.serialize_entry("timestamp", &s.timestamp)?;
        // Added after the first format, only when true: older files have no dates.
        if s.dates {
            map.serialize_entry("dates", &true)?;
        }
        map.serialize_entry(
            "blobs",
            &seq_out(s.blobs.iter().map(|b| (&b.digest, b.size))),
        )?;
        map.serialize_entry(
            "repositories",
            &seq_out(s.repositories.iter().map(RepositoryOut::from)),
        )?;
        map.end()
    }
}

// ---- writing it: temporary file, fsync, rename, fsync of the directory --------------
//
// The file on disk is always a whole snapshot, the previous one or the new one: the new
// one is written to a temporary file beside it (same file system, so the rename is
// atomic), synced, renamed over it, and the directory synced so the new name survives a
// power loss. A failed write removes its temporary file; a killed writer cannot, so
// start-up removes the temporary files that no living process is writing
// (`remove_stale_temporaries`).
//
// Which temporaries are stale is decided by a lock, not by their pid: the writer holds an
// exclusive `flock` on its temporary file from creation to rename, the kernel drops it
// when the writer dies (SIGKILL included), and a clean-up only removes a file it could
// lock. A pid would not do: processes sharing a snapshot directory from different
// containers have their own pid numbers (each may be pid 1), and a dead writer's pid is
// reused by unrelated processes.

/// Why the snapshot file could not be written. The file on disk is whole either way:
/// the previous snapshot, or (when only syncing the directory failed) the new one.
#[derive(Debug)]
pub struct SaveError {
    /// What was being done, with the paths involved.
    step: String,
    source: std::io::Error,
    /// The new snapshot is in place (only the directory's sync failed).
    replaced: bool,
}

impl SaveError {
    fn at(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> SaveError {
        let step = step.into();
        move |source| SaveError {
            step,
            source,
            replaced: false,
        }
    }

    /// Whether the file holds the new snapshot after all (else it keeps the previous one).
    pub fn replaced(&self) -> bool {
        self.replaced
    }

    /// The error of the operating system (`ENOSPC` for a full disk).
    pub fn io_error(&self) -> &std::io::Error {
        &self.source
    }
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.source)?;
        let hint = match self.source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => "; free space on that file system",
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
                "; let the service's user write to that directory"
            }
            _ => "",
        };
        f.write_str(hint)
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The directory the snapshot file is in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `.<file name>.tmp.`: how the names of its temporary files begin.
fn temporary_prefix(path: &Path) -> std::ffi::OsString {
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or("snapshot".as_ref()));
    prefix.push(".tmp.");
    prefix
}

/// `.<file name>.tmp.<pid>` beside the snapshot file.
fn temporary_path(path: &Path, pid: u32) -> std::path::PathBuf {
    let mut name = temporary_prefix(path);
    name.push(pid.to_string());
    directory_of(path).join(name)
}

/// Takes the exclusive `flock` of `file` if nobody holds it; `Ok(false)` if someone does.
fn try_lock(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock on a descriptor this `File` owns; the lock ends when it is closed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// Whether `flock` failed because the file system has no locks.
fn locks_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
    )
}

/// Whether `path` still names the file `file` has open (a clean-up may have removed it
/// between the open and the lock).
fn still_named(file: &std::fs::File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let open = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens `path` without following a symbolic link (one planted there is an error, not a
/// file elsewhere to truncate).
fn open_no_follow(path: &Path, write: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .create(write)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Creates (or takes over) the temporary file and locks it, so that a clean-up in another
/// process leaves it alone; emptied only once locked.
fn create_locked(tmp: &Path) -> std::io::Result<std::fs::File> {
    // A clean-up holds its lock for the moment it takes to remove a file: a few tries.
    for _ in 0..50 {
        let file = open_no_follow(tmp, true)?;
        let locked = match try_lock(&file) {
            // A file system without locks (an NFS mount with `nolock`): write all the
            // same; clean-ups there cannot tell a stale file and leave them all.
            Err(e) if locks_unsupported(&e) => true,
            other => other?,
        };
        if locked && still_named(&file, tmp)? {
            file.set_len(0)?;
            return Ok(file);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::WouldBlock,
        "another process holds its lock (does a second service write the same snapshot_file?)",
    ))
}

/// `fsync` of a directory, so a rename in it survives a power loss. A file system that
/// cannot sync directories (EINVAL) gives what it can.
fn sync_directory(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// The bytes of the snapshot file, streamed into `out` (what [`save`] writes; the fuzz
/// check of the loader saves to memory).
pub(crate) fn write_to(snapshot: &Snapshot, out: impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(out, &FileOut(snapshot)).map_err(std::io::Error::from)
}

/// Write the snapshot atomically: temp file in the same directory, fsync, rename, fsync
/// dir. On error the temporary file is removed and the file keeps the previous snapshot.
pub fn save(snapshot: &Snapshot, path: &Path) -> Result<(), SaveError> {
    let dir = directory_of(path);
    let tmp = temporary_path(path, std::process::id());
    let file = create_locked(&tmp).map_err(SaveError::at(format!("creating {}", tmp.display())))?;
    let written = (|| {
        let writing = SaveError::at(format!("writing {}", tmp.display()));
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, &file);
        write_to(snapshot, &mut out)
            .and_then(|()| out.flush())
            .map_err(writing)?;
        drop(out);
        file.sync_all()
            .map_err(SaveError::at(format!("syncing {}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(SaveError::at(format!(
            "renaming {} to {}",
            tmp.display(),
            path.display()
        )))
    })();
    if written.is_err() {
        // Still locked: no clean-up elsewhere takes this file meanwhile.
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    drop(file);
    sync_directory(dir).map_err(|source| SaveError {
        step: format!(
            "syncing the directory {} after the rename (the new file may not survive a power loss)",
            dir.display()
        ),
        source,
        replaced: true,
    })
}

/// Removes the temporary files a killed writer left beside `path` (`.<name>.tmp.<pid>`,
/// nothing else and nowhere else) that no living process holds locked. Returns each file
/// it tried to remove with the outcome; files being written are not listed. A missing
/// directory has nothing to remove.
pub fn remove_stale_temporaries(path: &Path) -> Vec<(std::path::PathBuf, std::io::Result<()>)> {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = directory_of(path);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => return vec![(dir.to_path_buf(), Err(e))],
    };
    let prefix = temporary_prefix(path);
    let mut outcomes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.as_bytes().strip_prefix(prefix.as_bytes()) else {
            continue;
        };
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let candidate = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_file() => {}
            _ => continue,
        }
        let outcome = (|| {
            let file = open_no_follow(&candidate, false)?;
            // Locked by its writer, or gone or replaced since the directory was read.
            if !try_lock(&file)? || !still_named(&file, &candidate)? {
                return Ok(false);
            }
            std::fs::remove_file(&candidate).map(|()| true)
        })();
        match outcome {
            Ok(false) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(true) => outcomes.push((candidate, Ok(()))),
            Err(e) => outcomes.push((candidate, Err(e))),
        }
    }
    outcomes
}

/// Why a snapshot file was not loaded; the service then starts without it and serves
/// after its first scan.
#[derive(Debug)]
pub enum LoadError {
    /// There is no file yet: the first start, not a problem.
    NotFound(std::path::PathBuf),
    /// It is there but cannot be read (permissions, a directory, an I/O error).
    Unreadable(std::path::PathBuf, std::io::Error),
    /// Truncated, not JSON, another format version or another program's file.
    NotOurs(std::path::PathBuf, serde_json::Error),
    /// Well-formed, but a tag refers to a layer the file does not list.
    Inconsistent(std::path::PathBuf, String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotFound(path) => write!(f, "{} does not exist", path.display()),
            LoadError::Unreadable(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            LoadError::NotOurs(path, e) => write!(
                f,
                "{} is not a snapshot file of this service: {e}",
                path.display()
            ),
            LoadError::Inconsistent(path, what) => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for LoadError {}

/// Read a snapshot file. Any problem (missing, unreadable, truncated, foreign,
/// inconsistent) is an `Err` saying which; the caller goes on without it.
pub fn load(path: &Path) -> Result<Snapshot, LoadError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound(path.to_path_buf()),
        _ => LoadError::Unreadable(path.to_path_buf(), e),
    })?;
    load_open(file, path)
}

/// [`load`] of a file already open (`path` names it in errors): a reader loads the very
/// version its `watch::FileWatcher` looked at.
pub fn load_open(file: impl std::io::Read, path: &Path) -> Result<Snapshot, LoadError> {
    load_in_batches(file, path, read::BATCH_BYTES)
}

/// [`load_open`] with the repositories handed to helper threads `batch_bytes` at a time
/// (tests and the fuzzer compare small batches with the service's).
pub(crate) fn load_in_batches(
    file: impl std::io::Read,
    path: &Path,
    batch_bytes: usize,
) -> Result<Snapshot, LoadError> {
    let not_ours = |e: serde_json::Error| match e.classify() {
        // A read that failed half-way (EIO, EISDIR) says nothing about the content.
        serde_json::error::Category::Io => LoadError::Unreadable(path.to_path_buf(), e.into()),
        _ => LoadError::NotOurs(path.to_path_buf(), e),
    };
    // In pieces: neither byte by byte nor the whole file at once (`read`).
    let loaded = read::file(
        std::io::BufReader::with_capacity(256 * 1024, file),
        batch_bytes,
    )
    .map_err(not_ours)?;
    // The file's blob table is already distinct: it becomes the snapshot's own, and tags
    // keep referring to it by index.
    let blob_count = loaded.blobs.len();
    for repo in &loaded.repositories {
        for t in repo.tags.iter().flatten() {
            if let Some(bad) = repo
                .layers_of(t)
                .iter()
                .find(|&&l| l as usize >= blob_count)
            {
                return Err(LoadError::Inconsistent(
                    path.to_path_buf(),
                    format!(
                        "tag {:?} of {:?} refers to layer {bad} of {blob_count}",
                        t.name, repo.name
                    ),
                ));
            }
        }
    }
    let builder = Builder {
        blobs: loaded.blobs,
        repositories: loaded.repositories,
        dates: loaded.dates,
        ..Builder::default()
    };
    Ok(builder.finish(loaded.timestamp))
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

    /// Found by fuzzing the snapshot file (fuzz/corpus/snapshot/crash-1fe24eae...): a
    /// timestamp read back from the file could be one ULP off the one written (serde_json's
    /// default float parser is not always exact), so a reader's copy of a snapshot and a
    /// second save of it differed from the collector's.
    #[test]
    fn timestamps_read_back_exactly() {
        for timestamp in [
            f64::from_bits(9110274339300043258),
            1_764_633_600.123_456_7,
            0.1,
        ] {
            let s = Builder::default().finish(timestamp);
            let mut bytes = Vec::new();
            write_to(&s, &mut bytes).unwrap();
            let loaded = load_open(&bytes[..], Path::new("mem")).unwrap();
            assert_eq!(
                loaded.timestamp.to_bits(),
                timestamp.to_bits(),
                "{timestamp}"
            );
        }
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
    fn file_format_is_stable() {
        let dir = std::env::temp_dir().join(format!("grur-snap-fmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.json");
        let mut b = Builder::default();
        let digest = format!("sha256:{}", "0f".repeat(32));
        b.add_repository(
            "g/app",
            Some(vec![ScannedTag {
                name: "v1".into(),
                digest: Some(digest.as_str().into()),
                layers: vec![LayerRef {
                    digest: "sha512:other".into(),
                    size: 7,
                }]
                .into(),
            }]),
            None,
        );
        b.add_repository("broken", None, Some("tag list: HTTP 500".into()));
        save(&b.finish(12.5), &path).unwrap();
        let expected = format!(
            r#"{{"format":"{FORMAT}","timestamp":12.5,"blobs":[["sha512:other",7]],"repositories":[{{"name":"broken","error":"tag list: HTTP 500"}},{{"name":"g/app","tags":[{{"name":"v1","digest":"{digest}","layers":[0]}}]}}]}}"#
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        // A scan with dates adds `dates` and each known `created`, nothing else.
        let mut b = Builder::default().with_dates(true);
        let layers: Arc<[u32]> = b.intern_layers([(&Digest::from("sha512:other"), 7)]).into();
        let dated = |name: &str, created| InternedTag {
            name: name.into(),
            digest: None,
            layers: layers.clone(),
            created,
        };
        b.add_interned(
            "r",
            Some(vec![dated("a", Some(-1)), dated("b", None)]),
            None,
        );
        save(&b.finish(1.0), &path).unwrap();
        let expected = format!(
            r#"{{"format":"{FORMAT}","timestamp":1.0,"dates":true,"blobs":[["sha512:other",7]],"repositories":[{{"name":"r","tags":[{{"name":"a","layers":[0],"created":-1}},{{"name":"b","layers":[0]}}]}}]}}"#
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        let l = load(&path).unwrap();
        assert!(l.dates);
        let created = |t: &str| l.repository("r").unwrap().tag(t).unwrap().created;
        assert_eq!((created("a"), created("b")), (Some(-1), None));
        // Keys in another order and unknown keys (a later version's) are fine.
        std::fs::write(
            &path,
            format!(
                r#"{{"repositories":[{{"x":1,"tags":[{{"layers":[0,0],"name":"t","y":[]}}],"name":"r"}}],"new":{{}},"blobs":[["{digest}",3]],"timestamp":1,"format":"{FORMAT}"}}"#
            ),
        )
        .unwrap();
        let l = load(&path).unwrap();
        assert!(!l.dates, "a file without dates is not a scan with dates");
        assert_eq!(l.blobs[0].digest.to_string(), digest);
        let r = l.repository("r").unwrap();
        let t = r.tag("t").unwrap();
        assert_eq!(
            (r.layers_of(t), t.size, t.digest.is_none()),
            (&[0][..], 3, true)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory for one test, removed by the caller.
    fn test_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("grur-snap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn truncated_foreign_and_missing_files_are_errors_that_say_which() {
        let dir = test_dir("bad");
        let path = dir.join("snap.json");
        save(&sample(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, LoadError::NotOurs(..)), "{e:?}");
        assert!(e.to_string().contains("is not a snapshot file"), "{e}");
        std::fs::write(
            &path,
            br#"{"format":"other","timestamp":1,"blobs":[],"repositories":[]}"#,
        )
        .unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, LoadError::NotOurs(..)), "{e:?}");
        assert!(e.to_string().contains("expected"), "{e}");
        std::fs::write(
            &path,
            format!(r#"{{"format":"{FORMAT}","timestamp":1,"blobs":[],"repositories":[{{"name":"r","tags":[{{"name":"t","layers":[3]}}]}}]}}"#),
        )
        .unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, LoadError::Inconsistent(..)), "{e:?}");
        assert!(e.to_string().contains("refers to layer 3"), "{e}");
        let missing = dir.join("missing");
        let e = load(&missing).unwrap_err();
        assert!(
            matches!(&e, LoadError::NotFound(p) if *p == missing),
            "{e:?}"
        );
        // A directory opens, but cannot be read.
        let e = load(&dir).unwrap_err();
        assert!(matches!(e, LoadError::Unreadable(..)), "{e:?}");
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn start_up_removes_only_unlocked_temporaries_of_its_own_file() {
        let dir = test_dir("stale");
        let path = dir.join("snap.json");
        save(&sample(), &path).unwrap();
        let touch = |name: &str| std::fs::write(dir.join(name), b"{\"format\":").unwrap();
        // left by killed writers: removed
        touch(".snap.json.tmp.1");
        touch(".snap.json.tmp.4194304");
        // not of this pattern or not of this file: kept
        for name in [
            ".snap.json.tmp.",
            ".snap.json.tmp.12x",
            ".snap.json.tmp.-1",
            ".other.json.tmp.7",
            "snap.json.tmp.8",
            ".snap.json.old",
        ] {
            touch(name);
        }
        std::fs::create_dir(dir.join(".snap.json.tmp.9")).unwrap();
        std::os::unix::fs::symlink(dir.join("snap.json"), dir.join(".snap.json.tmp.10")).unwrap();
        // being written by a live process (its writer holds the lock): kept
        touch(".snap.json.tmp.11");
        let writer = open_no_follow(&dir.join(".snap.json.tmp.11"), true).unwrap();
        assert!(try_lock(&writer).unwrap());

        let mut removed: Vec<String> = remove_stale_temporaries(&path)
            .into_iter()
            .map(|(file, outcome)| {
                outcome.unwrap();
                file.file_name().unwrap().to_str().unwrap().to_string()
            })
            .collect();
        removed.sort();
        assert_eq!(removed, [".snap.json.tmp.1", ".snap.json.tmp.4194304"]);
        assert_eq!(
            names_in(&dir),
            [
                ".other.json.tmp.7",
                ".snap.json.old",
                ".snap.json.tmp.",
                ".snap.json.tmp.-1",
                ".snap.json.tmp.10",
                ".snap.json.tmp.11",
                ".snap.json.tmp.12x",
                ".snap.json.tmp.9",
                "snap.json",
                "snap.json.tmp.8",
            ]
        );
        // once its writer is gone, its file is stale too
        drop(writer);
        let removed = remove_stale_temporaries(&path);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].0, dir.join(".snap.json.tmp.11"));
        assert!(load(&path).is_ok(), "the snapshot file itself is kept");
        assert!(remove_stale_temporaries(&dir.join("missing").join("s.json")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_takes_over_a_stale_temporary_of_its_own_pid() {
        let dir = test_dir("own-pid");
        let path = dir.join("snap.json");
        let tmp = temporary_path(&path, std::process::id());
        std::fs::write(&tmp, vec![b'x'; 100_000]).unwrap();
        save(&sample(), &path).unwrap();
        assert_eq!(load(&path).unwrap().repositories, sample().repositories);
        assert_eq!(names_in(&dir), ["snap.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_removes_its_temporary_and_says_which_step_failed() {
        let dir = test_dir("failed");
        // renaming onto a non-empty directory fails after the whole file was written
        let path = dir.join("snap.json");
        std::fs::create_dir_all(path.join("inside")).unwrap();
        let e = save(&sample(), &path).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("renaming "), "{text}");
        assert!(text.contains(&*path.to_string_lossy()), "{text}");
        assert!(!e.replaced());
        assert_eq!(names_in(&dir), ["snap.json"]);
        assert!(path.join("inside").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_never_writes_through_a_symbolic_link_at_its_temporary_name() {
        let dir = test_dir("symlink");
        let path = dir.join("snap.json");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, temporary_path(&path, std::process::id())).unwrap();
        let e = save(&sample(), &path).unwrap_err();
        assert!(e.to_string().starts_with("creating "), "{e}");
        assert_eq!(e.io_error().raw_os_error(), Some(libc::ELOOP));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn blobs_are_sorted_by_digest_and_unused_ones_dropped() {
        let mut b = Builder::default();
        let d = |n: u8| Digest::Sha256([n; 32]);
        let used = b.intern_layers([(&d(3), 30), (&d(2), 20)]);
        let unused = b.intern_layers([(&d(1), 10), (&d(2), 20)]);
        assert_eq!((used.clone(), unused), (vec![0, 1], vec![1, 2]));
        b.add_interned(
            "r",
            Some(vec![InternedTag {
                name: "t".into(),
                digest: None,
                layers: used.into(),
                created: None,
            }]),
            None,
        );
        let s = b.finish(1.0);
        let digests: Vec<_> = s.blobs.iter().map(|b| b.digest.clone()).collect();
        assert_eq!(digests, [d(2), d(3)]);
        let r = s.repository("r").unwrap();
        let tag = r.tag("t").unwrap();
        assert_eq!(
            (r.layers_of(tag), tag.size, tag.disk_size),
            (&[0, 1][..], 50, 50)
        );
    }

    #[test]
    fn canonical_order_whatever_the_interning_order() {
        let d = |n: u8| Digest::Sha256([n; 32]);
        let build = |order: &[u8]| {
            let mut b = Builder::default();
            for &n in order {
                let ids = b.intern_layers([(&d(n), u64::from(n))]);
                if n % 3 != 0 {
                    let tag = InternedTag {
                        name: format!("t{n}").into(),
                        digest: None,
                        layers: ids.into(),
                        created: None,
                    };
                    b.add_interned(&format!("r{n}"), Some(vec![tag]), None);
                }
            }
            b.finish(1.0)
        };
        let forward: Vec<u8> = (1..=60).collect();
        let mixed: Vec<u8> = (1..=60u32).map(|i| (i * 37 % 61) as u8).collect();
        let (a, b) = (build(&forward), build(&mixed));
        assert_eq!(a.blobs, b.blobs);
        assert_eq!(a.repositories, b.repositories);
        assert_eq!(a.blobs.len(), 40);
        assert!(a.blobs.windows(2).all(|w| w[0].digest < w[1].digest));
        for r in &a.repositories {
            let t = &r.tags.as_ref().unwrap()[0];
            let first = r.layers_of(t)[0];
            assert_eq!(format!("r{}", a.blobs[first as usize].size), &*r.name);
        }
    }

    #[test]
    fn a_builder_after_a_snapshot_interns_each_blob_once_by_index_or_by_digest() {
        let previous = sample();
        let app = previous.repository("g/app").unwrap();
        let v1 = app.tag("v1").unwrap();
        let new_layer = Digest::Sha256([9; 32]);
        // The same blobs reached both ways (a known manifest, a fetched one), in either
        // order, and one the previous snapshot did not have.
        let mut b = Builder::after(&previous);
        let by_digest = b.intern_layers(previous.layers(app, v1).map(|l| (&l.digest, l.size)));
        let by_index = b.intern_previous(&previous, app.layers_of(v1));
        let fresh = b.intern_layers([(&new_layer, 3), (&previous.blobs[0].digest, 100)]);
        assert_eq!(by_digest, by_index);
        assert_eq!((b.blobs.len(), b.index.len()), (3, 1));
        b.add_previous(&previous, app, None);
        let tag = |layers: Vec<u32>| InternedTag {
            name: "t".into(),
            digest: None,
            layers: layers.into(),
            created: None,
        };
        b.add_interned("new", Some(vec![tag(fresh)]), None);
        let rescanned = b.finish(2.0);
        // The same snapshot as one built without a previous one.
        let mut plain = Builder::default();
        plain.add_previous(&previous, app, None);
        let fresh = plain.intern_layers([(&new_layer, 3), (&previous.blobs[0].digest, 100)]);
        plain.add_interned("new", Some(vec![tag(fresh)]), None);
        let plain = plain.finish(2.0);
        assert_eq!(rescanned.blobs, plain.blobs);
        assert_eq!(rescanned.repositories, plain.repositories);
        let digests = |s: &Snapshot| -> Vec<Vec<Digest>> {
            let app = s.repository("g/app").unwrap();
            let tags = app.tags.as_ref().unwrap();
            tags.iter()
                .map(|t| s.layers(app, t).map(|b| b.digest.clone()).collect())
                .collect()
        };
        assert_eq!(digests(&rescanned), digests(&previous));
        assert_eq!(rescanned.totals.disk_size, 108);
    }

    #[test]
    fn a_blob_given_two_sizes_gets_the_larger_in_any_order() {
        let d = Digest::Sha256([7; 32]);
        for sizes in [[5, 9], [9, 5]] {
            let mut b = Builder::default();
            let ids: Vec<u32> = sizes
                .iter()
                .flat_map(|&size| b.intern_layers([(&d, size)]))
                .collect();
            assert_eq!(ids, [0, 0]);
            assert_eq!(b.blobs[0].size, 9);
        }
    }

    #[test]
    fn tag_names_are_shared_and_layer_lists_kept_once_per_repository() {
        let layer = |d: u8, size| LayerRef {
            digest: Digest::Sha256([d; 32]),
            size,
        };
        let tag = |name: &str, layers: Vec<LayerRef>| ScannedTag {
            name: name.into(),
            digest: None,
            layers: layers.into(),
        };
        let mut b = Builder::default();
        for repo in ["a", "b"] {
            let tags = vec![
                tag("v1", vec![layer(1, 10), layer(2, 20)]),
                tag("latest", vec![layer(3, 30), layer(1, 10), layer(3, 30)]),
            ];
            b.add_repository(repo, Some(tags), None);
        }
        let built = b.finish(1.0);
        let dir = test_dir("shared");
        let path = dir.join("snap.json");
        save(&built, &path).unwrap();
        let loaded = load(&path).unwrap();
        for s in [&built, &loaded] {
            let (a, b) = (s.repository("a").unwrap(), s.repository("b").unwrap());
            let (latest_a, latest_b) = (a.tag("latest").unwrap(), b.tag("latest").unwrap());
            assert!(
                Arc::ptr_eq(&latest_a.name, &latest_b.name),
                "one allocation"
            );
            // Tag order (latest, v1), each list sorted and distinct, in one array.
            assert_eq!(&*a.layers, &[0, 2, 0, 1]);
            assert_eq!(a.layers_of(latest_a), &[0, 2]);
            assert_eq!(latest_a.size, 40);
            assert_eq!(a.layers, b.layers);
        }
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
