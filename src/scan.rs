//! One scan of the registry: catalog → tag lists → manifests, on a bounded pool of
//! worker threads fed through crossbeam channels, with a digest cache so that a tag
//! whose manifest digest is unchanged since the last scan costs one `HEAD` and no `GET`.
//!
//! The result is a new `Snapshot` built aside; the caller swaps it in. A repository whose
//! tags or manifests fail keeps its previous data (or gets null sizes) and an `error`;
//! only a failure to reach the registry or read its catalog fails the scan as a whole.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::digest::Digest;
use crate::registry::manifest::{self, Manifest};
use crate::registry::{Client, Counts, Error};
use crate::snapshot::{Builder, InternedTag, LayerRef, Snapshot, Tag};

/// Deepest nesting of indexes followed (an index of indexes of images is depth 2).
const MAX_INDEX_DEPTH: usize = 3;

/// A finished scan and what it cost.
pub struct Report {
    pub snapshot: Snapshot,
    pub requests: Counts,
    pub duration: Duration,
    /// Repositories whose scan failed (they carry an `error`).
    pub failed_repositories: usize,
    /// Names the registry listed that are not valid repository or tag names (skipped).
    pub skipped_names: usize,
}

impl Report {
    /// The one log line per scan: duration, size of the registry, requests by kind, errors.
    pub fn log(&self) {
        let c = self.requests;
        crate::log!(
            info,
            "scan finished",
            seconds = format!("{:.3}", self.duration.as_secs_f64()),
            repositories = self.snapshot.totals.repository_count,
            tags = self.snapshot.totals.tag_count,
            failed_repositories = self.failed_repositories,
            skipped_names = self.skipped_names,
            requests = c.total(),
            token = c.token,
            catalog = c.catalog,
            tags_list = c.tags,
            manifest_head = c.manifest_head,
            manifest_get = c.manifest_get,
            blob_head = c.blob_head,
            blob_get = c.blob_get,
            retries = c.retries,
        );
    }
}

/// Distribution's repository name grammar, loosely: `/`-separated non-empty components
/// of `[A-Za-z0-9._-]`, none of them `.` or `..`. Anything else would be put into URLs.
pub fn valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

/// Distribution's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag_name(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

enum Job {
    Tags {
        repo: usize,
        name: Arc<str>,
    },
    Manifest {
        repo: usize,
        index: usize,
        name: Arc<str>,
        tag: Arc<str>,
    },
}

enum Done {
    Tags {
        repo: usize,
        result: Result<Vec<String>, Error>,
    },
    Manifest {
        repo: usize,
        index: usize,
        /// The tag's manifest digest and layers, or why it failed (naming the tag).
        result: Result<(Option<Digest>, Image), String>,
    },
}

/// A repository while its manifests are read. Once the last one is in, the repository
/// goes into the builder in its final form and this is emptied: only the repositories
/// being read hold a tag list here, not the whole registry's.
struct RepoState {
    name: Arc<str>,
    /// The listed tags (sorted, valid), and what each one's manifest gave.
    tags: Vec<Arc<str>>,
    found: Vec<Option<(Option<Digest>, Image)>>,
    remaining: usize,
    /// Its tag list has been read (or failed).
    listed: bool,
    error: Option<String>,
}

/// Layers of one manifest as indices into the scan's blob table, shared by every tag
/// (and index) that refers to it.
type Layers = Arc<[u32]>;

/// What the scan learns from one manifest: its layers and its image's creation date
/// (the newest child's for an index). Both follow from the manifest's digest, so both
/// are cached by it.
#[derive(Clone)]
struct Image {
    layers: Layers,
    created: Option<i64>,
}

/// How many entries each of this scan's caches (`Context::manifests`, `blob_sizes`,
/// `configs`) remembers at most: when full it starts again empty ([`remember_in`]).
/// Unbounded, a first scan of a million distinct manifests held a hash table of them
/// (about 150 MB) beside the snapshot being built, and one of their 913,620 image
/// configs' dates about 60 MB more. Tags sharing a manifest or a config (aliases, a
/// multi-arch index's children) are read close together, and a re-scan finds every
/// manifest of the previous snapshot there instead.
const REMEMBERED_MANIFESTS: usize = 1 << 16;

/// Puts `key` into one of the scan's caches, which stays within [`REMEMBERED_MANIFESTS`].
fn remember_in<V>(cache: &Mutex<HashMap<Digest, V>>, key: Digest, value: V) {
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= REMEMBERED_MANIFESTS {
        *cache = HashMap::new();
    }
    cache.insert(key, value);
}

/// Registries of up to this many repositories keep each repository's registry token
/// after the scan read it, for the next scan if it starts before the token expires.
/// Larger ones drop it once the repository is read: a token per repository (about 1 KB
/// from GitLab) held to the end of the scan cost about 100 MB at 100k repositories.
const KEEP_TOKENS_UP_TO: usize = 1024;

/// What the workers share: the client, the previous snapshot's digests, and what this
/// scan has learnt so far (manifest digest → layers and date, blob digest → size, config
/// digest → date). Layers are interned in `builder` as soon as a manifest is read, so a
/// manifest costs 4 bytes a layer here, not a copy of each digest.
struct Context<'a> {
    client: &'a Client,
    previous: Option<Previous<'a>>,
    builder: Mutex<Builder<'a>>,
    manifests: Mutex<HashMap<Digest, Image>>,
    blob_sizes: Mutex<HashMap<Digest, u64>>,
    configs: Mutex<HashMap<Digest, Option<i64>>>,
}

/// The previous snapshot's tags by manifest digest: (repository, tag) indices sorted by
/// the tag's digest, 8 bytes a tag (a hash map of references took 22).
struct Previous<'a> {
    snapshot: &'a Snapshot,
    by_digest: Vec<(u32, u32)>,
}

impl<'a> Previous<'a> {
    fn new(snapshot: &'a Snapshot) -> Previous<'a> {
        let mut by_digest: Vec<(u32, u32)> = Vec::with_capacity(snapshot.totals.tag_count);
        for (r, repo) in snapshot.repositories.iter().enumerate() {
            for (t, tag) in repo.tags.iter().flatten().enumerate() {
                if tag.digest.is_some() {
                    by_digest.push((r as u32, t as u32));
                }
            }
        }
        let previous = Previous {
            snapshot,
            by_digest: Vec::new(),
        };
        by_digest.sort_unstable_by(|&a, &b| previous.digest(a).cmp(&previous.digest(b)));
        Previous {
            by_digest,
            ..previous
        }
    }

    fn tag(&self, (r, t): (u32, u32)) -> &'a Tag {
        &self.snapshot.repositories[r as usize]
            .tags
            .as_deref()
            .expect("indexed tags exist")[t as usize]
    }

    fn digest(&self, at: (u32, u32)) -> Option<&'a Digest> {
        self.tag(at).digest.as_ref()
    }

    /// The layers (indices into the previous snapshot's blobs) of a tag of the previous
    /// snapshot whose manifest had `digest`.
    /// The layers and the date of the previous snapshot's tag with manifest `digest`.
    fn find(&self, digest: &Digest) -> Option<(&'a [u32], Option<i64>)> {
        let i = self
            .by_digest
            .binary_search_by(|&at| self.digest(at).cmp(&Some(digest)))
            .ok()?;
        let (r, t) = self.by_digest[i];
        let repo = &self.snapshot.repositories[r as usize];
        let tag = self.tag((r, t));
        Some((repo.layers_of(tag), tag.created))
    }
}

impl Context<'_> {
    fn intern<'d>(&self, layers: impl IntoIterator<Item = (&'d Digest, u64)>) -> Layers {
        self.builder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .intern_layers(layers)
            .into()
    }

    fn known(&self, digest: &Digest) -> Option<Image> {
        if let Some(image) = self
            .manifests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
        {
            return Some(image.clone());
        }
        let previous = self.previous.as_ref()?;
        let (layers, created) = previous.find(digest)?;
        let ids = self
            .builder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .intern_previous(previous.snapshot, layers);
        Some(Image {
            layers: ids.into(),
            created,
        })
    }

    /// Remember `image` as what manifest `digest` holds, shared from now on (among the
    /// last `REMEMBERED_MANIFESTS` manifests read).
    fn remember(&self, digest: &Digest, image: Image) -> Image {
        remember_in(&self.manifests, digest.clone(), image.clone());
        image
    }

    /// The creation date in config blob `digest`, fetched once per scan and digest. A
    /// config that cannot be read costs the date of the tags using it (logged), never
    /// their repository.
    fn created(&self, repo: &str, digest: &str) -> Option<i64> {
        let key = Digest::from(digest);
        if let Some(&created) = self
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return created;
        }
        let created = match self.client.config_blob(repo, digest) {
            Ok(body) => manifest::config_created(&body),
            Err(e) => {
                crate::log!(
                    warn,
                    "no date for an image: its config blob could not be read",
                    repository = repo,
                    config = digest,
                    error = e
                );
                None
            }
        };
        remember_in(&self.configs, key, created);
        created
    }

    /// The image of one tag: `HEAD` for the digest when an earlier scan may know it,
    /// else (or when the registry gives no digest) `GET` by tag.
    fn tag(&self, repo: &str, tag: &str) -> Result<(Option<Digest>, Image), Error> {
        if self.previous.is_some() {
            if let Some(text) = self.client.manifest_digest(repo, tag)? {
                let digest = Digest::from(text.as_str());
                let image = match self.known(&digest) {
                    Some(image) => image,
                    None => self.by_digest(repo, &text, 0, &mut HashSet::new())?,
                };
                return Ok((Some(digest), image));
            }
        }
        let response = self.client.manifest(repo, tag)?;
        let digest = response.digest.as_deref().map(Digest::from);
        let image = match digest.as_ref().and_then(|d| self.known(d)) {
            Some(image) => image,
            None => {
                let url = format!("manifest {repo}:{tag}");
                let mut visited = HashSet::new();
                if let Some(d) = &response.digest {
                    visited.insert(d.clone());
                }
                let image = self.image_of(
                    repo,
                    &url,
                    response.content_type.as_deref(),
                    &response.body,
                    0,
                    &mut visited,
                )?;
                match &digest {
                    Some(d) => self.remember(d, image),
                    None => image,
                }
            }
        };
        Ok((digest, image))
    }

    fn by_digest(
        &self,
        repo: &str,
        digest: &str,
        depth: usize,
        visited: &mut HashSet<String>,
    ) -> Result<Image, Error> {
        let key = Digest::from(digest);
        if let Some(image) = self.known(&key) {
            return Ok(image);
        }
        if !visited.insert(digest.to_string()) {
            return Err(Error::Invalid {
                url: format!("manifest {repo}@{digest}"),
                detail: "an index refers to itself (cycle)".into(),
            });
        }
        let response = self.client.manifest(repo, digest)?;
        let url = format!("manifest {repo}@{digest}");
        let image = self.image_of(
            repo,
            &url,
            response.content_type.as_deref(),
            &response.body,
            depth,
            visited,
        )?;
        Ok(self.remember(&key, image))
    }

    fn image_of(
        &self,
        repo: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
        depth: usize,
        visited: &mut HashSet<String>,
    ) -> Result<Image, Error> {
        let invalid = |detail: String| Error::Invalid {
            url: url.to_string(),
            detail,
        };
        let dates = self.client.tag_dates;
        match manifest::parse(content_type, body).map_err(invalid)? {
            Manifest::Image { layers, config } => Ok(Image {
                layers: self.intern(layers.iter().map(|l| (&l.digest, l.size))),
                created: config
                    .filter(|_| dates)
                    .and_then(|c| self.created(repo, &c)),
            }),
            Manifest::Schema1 { sums, created } => {
                let mut out: Vec<LayerRef> = Vec::new();
                for text in sums {
                    let digest = Digest::from(text.as_str());
                    if out.iter().any(|l| l.digest == digest) {
                        continue;
                    }
                    let cached = self
                        .blob_sizes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&digest)
                        .copied();
                    let size = match cached {
                        Some(s) => s,
                        None => {
                            let s = self.client.blob_size(repo, &text)?;
                            remember_in(&self.blob_sizes, digest.clone(), s);
                            s
                        }
                    };
                    out.push(LayerRef { digest, size });
                }
                Ok(Image {
                    layers: self.intern(out.iter().map(|l| (&l.digest, l.size))),
                    created: created.filter(|_| dates),
                })
            }
            Manifest::Index(children) => {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(invalid(format!(
                        "indexes nested deeper than {MAX_INDEX_DEPTH}"
                    )));
                }
                let mut out: Vec<u32> = Vec::new();
                let mut created = None;
                for child in children {
                    let image = self.by_digest(repo, &child, depth + 1, visited)?;
                    out.extend_from_slice(&image.layers);
                    created = created.max(image.created);
                }
                out.sort_unstable();
                out.dedup();
                Ok(Image {
                    layers: out.into(),
                    created,
                })
            }
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Scan the whole registry. `Err` only when the scan failed as a whole (registry
/// unreachable, auth refused, catalog unreadable, or the client's circuit breaker
/// tripped because the registry stopped answering mid-scan); then the caller keeps its
/// snapshot.
pub fn scan(
    client: &Client,
    previous: Option<&Snapshot>,
    concurrency: usize,
) -> Result<Report, Error> {
    let started = Instant::now();
    client.forget_tokens_renewing_before(started);
    client.reset_breaker();
    let counts_before = client.stats.counts();
    client.discover()?;
    let mut skipped = 0;
    let mut names = client.catalog()?;
    names.sort();
    names.dedup();
    names.retain(|n| {
        let ok = valid_repository_name(n);
        if !ok {
            crate::log!(
                warn,
                "skipping a repository name the registry listed: it is not a valid name",
                name = format!("{n:?}")
            );
            skipped += 1;
        }
        ok
    });

    // A snapshot scanned without dates knows no manifest's date: with `tag_dates` on,
    // its manifests are read again (once) for their config blobs.
    let reusable = |p: &Snapshot| p.dates || !client.tag_dates;
    let context = Context {
        client,
        previous: previous.filter(|p| reusable(p)).map(Previous::new),
        builder: Mutex::new(
            previous
                .map(Builder::after)
                .unwrap_or_default()
                .with_dates(client.tag_dates),
        ),
        manifests: Mutex::new(HashMap::new()),
        blob_sizes: Mutex::new(HashMap::new()),
        configs: Mutex::new(HashMap::new()),
    };

    let mut repos: Vec<RepoState> = names
        .into_iter()
        .map(|n| RepoState {
            name: n.into(),
            tags: Vec::new(),
            found: Vec::new(),
            remaining: 0,
            listed: false,
            error: None,
        })
        .collect();

    let mut failed = 0;
    let keep_tokens = repos.len() <= KEEP_TOKENS_UP_TO;
    // Into the builder as soon as its last manifest is in.
    let finish_repo = |state: &mut RepoState, failed: &mut usize| {
        if !keep_tokens {
            client.forget_repository_token(&state.name);
        }
        let mut builder = context.builder.lock().unwrap_or_else(|e| e.into_inner());
        let found = std::mem::take(&mut state.found);
        let tags = std::mem::take(&mut state.tags);
        match state.error.take() {
            Some(error) => {
                *failed += 1;
                match previous.and_then(|p| p.repository(&state.name).map(|r| (p, r))) {
                    Some((p, r)) => builder.add_previous(p, r, Some(error)),
                    None => builder.add_repository(&state.name, None, Some(error)),
                }
            }
            None => {
                let tags = tags
                    .into_iter()
                    .zip(found)
                    .filter_map(|(name, found)| {
                        let (digest, image) = found?;
                        Some(InternedTag {
                            name,
                            digest,
                            layers: image.layers,
                            created: image.created,
                        })
                    })
                    .collect();
                builder.add_interned(&state.name, Some(tags), None);
            }
        }
    };

    let (job_tx, job_rx) = crossbeam_channel::unbounded::<Job>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    std::thread::scope(|s| {
        let context = &context;
        for _ in 0..concurrency.max(1) {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            s.spawn(move || {
                for job in job_rx.iter() {
                    if done_tx.send(run_job(context, job)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Jobs are handed out a few per worker at a time, manifests of listed
        // repositories before the next tag list: a million queued manifest jobs (and
        // their tag names) would cost about 100 MB before the first was answered.
        let limit = concurrency.max(1) * 4;
        let mut manifests: VecDeque<(u32, u32)> = VecDeque::new();
        let mut next_repo = 0usize;
        let mut in_flight = 0usize;
        loop {
            while in_flight < limit {
                let job = if let Some((repo, index)) = manifests.pop_front() {
                    let state = &repos[repo as usize];
                    Job::Manifest {
                        repo: repo as usize,
                        index: index as usize,
                        name: state.name.clone(),
                        tag: state.tags[index as usize].clone(),
                    }
                } else if next_repo < repos.len() {
                    next_repo += 1;
                    Job::Tags {
                        repo: next_repo - 1,
                        name: repos[next_repo - 1].name.clone(),
                    }
                } else {
                    break;
                };
                if job_tx.send(job).is_err() {
                    break;
                }
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            let Ok(done) = done_rx.recv() else { break };
            in_flight -= 1;
            let repo = match done {
                Done::Tags { repo, result } => {
                    let state = &mut repos[repo];
                    state.listed = true;
                    match result {
                        Err(e) => state.error = Some(format!("tag list: {e}")),
                        Ok(mut tags) => {
                            tags.sort();
                            tags.dedup();
                            tags.retain(|t| {
                                let ok = valid_tag_name(t);
                                if !ok {
                                    crate::log!(warn, "skipping a tag name the registry listed: it is not a valid tag", repository = state.name, tag = format!("{t:?}"));
                                    skipped += 1;
                                }
                                ok
                            });
                            state.found = vec![None; tags.len()];
                            state.remaining = tags.len();
                            manifests.extend((0..tags.len() as u32).map(|t| (repo as u32, t)));
                            state.tags = tags.into_iter().map(Arc::from).collect();
                        }
                    }
                    repo
                }
                Done::Manifest {
                    repo,
                    index,
                    result,
                } => {
                    let state = &mut repos[repo];
                    state.remaining -= 1;
                    match result {
                        Ok(found) => state.found[index] = Some(found),
                        Err(e) => {
                            if state.error.is_none() {
                                state.error = Some(e);
                            }
                        }
                    }
                    repo
                }
            };
            let state = &mut repos[repo];
            if state.listed && state.remaining == 0 {
                finish_repo(state, &mut failed);
            }
        }
        drop(job_tx);
    });
    if let Some(unreachable) = client.unreachable() {
        return Err(unreachable);
    }
    drop(repos);

    // What only the workers needed goes first, before the snapshot is finished.
    let Context {
        builder,
        manifests,
        previous: previous_tags,
        ..
    } = context;
    drop((manifests, previous_tags));
    let builder = builder.into_inner().unwrap_or_else(|e| e.into_inner());
    let snapshot = builder.finish(unix_now());
    Ok(Report {
        snapshot,
        requests: client.stats.counts().since(&counts_before),
        duration: started.elapsed(),
        failed_repositories: failed,
        skipped_names: skipped,
    })
}

/// Run one job; a panic in it becomes that repository's error, never a dead worker.
fn run_job(context: &Context<'_>, job: Job) -> Done {
    match job {
        Job::Tags { repo, name } => {
            let result = catch_unwind(AssertUnwindSafe(|| context.client.tags(&name)))
                .unwrap_or_else(|_| {
                    Err(Error::Invalid {
                        url: format!("tag list of {name}"),
                        detail: "internal error (panic) while reading it".into(),
                    })
                });
            Done::Tags { repo, result }
        }
        Job::Manifest {
            repo,
            index,
            name,
            tag,
        } => {
            let result = catch_unwind(AssertUnwindSafe(|| context.tag(&name, &tag)))
                .unwrap_or_else(|_| {
                    Err(Error::Invalid {
                        url: format!("manifest {name}:{tag}"),
                        detail: "internal error (panic) while reading it".into(),
                    })
                })
                .map_err(|e| format!("tag {tag}: {e}"));
            Done::Manifest {
                repo,
                index,
                result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan's caches (manifests, blob sizes, image config dates) stay bounded however
    /// many distinct digests a registry has; what was put in last is there.
    #[test]
    fn the_scan_caches_stay_bounded() {
        let cache = Mutex::new(HashMap::new());
        let digest = |i: usize| Digest::from(format!("sha256:{i:064x}").as_str());
        for i in 0..REMEMBERED_MANIFESTS + 10 {
            remember_in(&cache, digest(i), Some(i as i64));
            assert!(cache.lock().unwrap().len() <= REMEMBERED_MANIFESTS);
        }
        let cache = cache.into_inner().unwrap();
        let last = REMEMBERED_MANIFESTS + 9;
        assert_eq!(cache.get(&digest(last)), Some(&Some(last as i64)));
        assert_eq!(cache.len(), 10);
    }

    #[test]
    fn names() {
        for ok in ["a", "group/app", "g/sub/app-1", "x_y.z"] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../x", "a/./b", "a b", "a?b", "a%2fb",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
        for ok in ["latest", "v1.2.3", "_x", "A-b"] {
            assert!(valid_tag_name(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(129)] {
            assert!(!valid_tag_name(bad), "{bad}");
        }
    }
}
