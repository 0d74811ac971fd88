//! ETags, and the cache of large rendered documents.
//!
//! `GET /repositories?embed=true` over 100k tags is tens of megabytes of JSON. It only
//! changes when a new generation arrives (a new snapshot, or a reader's new usage
//! history: see `Usage::generation`), so it is rendered once per generation and query
//! form, by one request while any others asking for it wait, and then served from an `Arc` (no copy per request, and the lock is held only to clone the `Arc`,
//! never while the bytes go out). Documents without a list (one tag, a repository
//! without `embed` or `links`) are not cached: rendering them is as cheap as the lookup.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::router::Collection;
use crate::usage::order::ListOptions;

/// A strong entity tag: a 64-bit hash of the exact body bytes, as `"<16 hex digits>"`.
///
/// Hashing the bytes (rather than, say, the snapshot generation) means an unchanged
/// document keeps its tag across scans and restarts, so clients' cached copies stay good.
/// The hash is SipHash with fixed keys: deterministic for one build of the service, which
/// is all a cache validator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ETag([u8; 18]);

impl ETag {
    pub fn of(body: &[u8]) -> ETag {
        #[allow(deprecated)]
        // SipHasher is deprecated only in favour of DefaultHasher, whose keys may change.
        let mut hasher =
            std::hash::SipHasher::new_with_keys(0x6772_7572_2d65_7461, 0x6720_7631_0000_0000);
        hasher.write(body);
        let h = hasher.finish();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut tag = [b'"'; 18];
        for (i, slot) in tag[1..17].iter_mut().enumerate() {
            *slot = HEX[((h >> (60 - 4 * i)) & 15) as usize];
        }
        ETag(tag)
    }

    pub fn as_str(&self) -> &str {
        // Only quotes and hex digits were written.
        std::str::from_utf8(&self.0).unwrap_or("\"\"")
    }
}

/// A response body: static text, rendered for this request, or shared from the cache.
#[derive(Debug, Clone)]
pub enum Body {
    Static(&'static [u8]),
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Static(b) => b,
            Body::Owned(b) => b,
            Body::Shared(b) => b,
        }
    }
}

/// Which resource a cached document shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceKey {
    Collection,
    Repository(Box<str>),
    Tags(Box<str>),
    Namespaces,
    /// By index: keys live for one generation, in which indices are fixed.
    Namespace(u32),
    /// A cleanup preview: its scope and policy (`cleanup::cache_text`); `wide` when the
    /// scope is a namespace or the registry (kept in the budget of the collections).
    Cleanup {
        wide: bool,
        text: Box<str>,
    },
}

/// Everything that changes a document within one snapshot generation. The server
/// prefix is fixed per process, so the collection name (`/repositories` or `/images`)
/// stands for the whole base URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub resource: ResourceKey,
    pub collection: Collection,
    pub depth: u8,
    pub links: bool,
    pub html: bool,
    /// `sort`, `limit`, `page`, `per_page`, `q`: each form is a document of its own.
    pub list: ListOptions,
}

/// A cached document.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The rendered buffer itself (an `Arc<[u8]>` would need a copy of it).
    pub body: Arc<Vec<u8>>,
    pub etag: ETag,
}

/// Upper bound of the bytes kept, so that a client walking through every query form
/// cannot make the process grow without limit; past it, documents are rendered per
/// request. Enough for several forms of the whole collection at 100k tags (6 MB each as
/// `?embed=true`).
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Of that, the most kept for single repositories (and their tags collections): a few
/// thousand of the documents clients fetch repeatedly, without letting a client walking
/// through all repositories crowd out the collection documents.
const MAX_REPOSITORY_BYTES: usize = 8 * 1024 * 1024;

/// How long a request waits for another one rendering the same document before it
/// renders the document itself.
const WAIT_FOR_RENDER: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    generation: u64,
    bytes: usize,
    /// The part of `bytes` held by repository and tags-collection documents.
    repository_bytes: usize,
    entries: HashMap<Key, Rendered>,
    /// The length of each document the previous generation kept: the next render of it
    /// starts with a buffer that size, so a large document is not copied while its
    /// buffer doubles (which briefly held two copies of it: the peak RSS, not the rate).
    previous_sizes: HashMap<Key, usize>,
    /// Documents being rendered right now, by generation.
    rendering: HashMap<(u64, Key), InFlight>,
}

/// A document one request is rendering, and the requests waiting for it. The result is
/// handed to them even when the cache does not keep it (over budget, or an older
/// generation), so they never render it again one after the other.
struct InFlight {
    waiting: usize,
    done: Option<Rendered>,
}

impl State {
    /// Moves to a newer generation; returns the documents of the older one, to be
    /// dropped after the lock is released.
    fn advance(&mut self, generation: u64) -> HashMap<Key, Rendered> {
        if generation <= self.generation {
            return HashMap::new();
        }
        self.generation = generation;
        self.bytes = 0;
        self.repository_bytes = 0;
        let older = std::mem::take(&mut self.entries);
        self.previous_sizes = older
            .iter()
            .map(|(k, r)| (k.clone(), r.body.len()))
            .collect();
        older
    }
}

/// Rendered documents of the newest snapshot generation seen. A document is rendered
/// by one request at a time: the others asking for it meanwhile wait for that result
/// instead of rendering (and holding) a copy each.
#[derive(Default)]
pub struct RenderCache {
    state: Mutex<State>,
    rendered: Condvar,
}

/// Ends a rendering that did not finish (a panic): its waiters are woken and one of them
/// renders instead.
struct Rendering<'a> {
    cache: &'a RenderCache,
    mark: Option<(u64, Key)>,
}

impl Drop for Rendering<'_> {
    fn drop(&mut self) {
        if let Some(mark) = self.mark.take() {
            self.cache.lock().rendering.remove(&mark);
            self.cache.rendered.notify_all();
        }
    }
}

impl RenderCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Entries are inserted whole; a panic elsewhere cannot leave one half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The document for `key` of `generation` if it is kept, without waiting or rendering.
    pub fn get(&self, generation: u64, key: &Key) -> Option<Rendered> {
        let state = self.lock();
        (state.generation == generation)
            .then(|| state.entries.get(key).cloned())
            .flatten()
    }

    /// The document for `key` from snapshot `generation`: from the cache, from another
    /// request rendering it right now, or from `render` (and then kept if it fits).
    /// `render` gets the document's length in the previous generation, if it was kept.
    pub fn get_or_render(
        &self,
        generation: u64,
        key: Key,
        render: impl FnOnce(Option<usize>) -> Rendered,
    ) -> Rendered {
        let mark = (generation, key);
        let deadline = Instant::now() + WAIT_FOR_RENDER;
        let mut state = self.lock();
        let older = state.advance(generation);
        let mut waiting = false;
        let render_alone = loop {
            if state.generation == generation {
                if let Some(hit) = state.entries.get(&mark.1) {
                    let hit = hit.clone();
                    if waiting {
                        leave(&mut state, &mark);
                    }
                    return hit;
                }
            }
            let now = Instant::now();
            let Some(in_flight) = state.rendering.get_mut(&mark) else {
                break false;
            };
            if let Some(done) = &in_flight.done {
                let done = done.clone();
                leave(&mut state, &mark);
                return done;
            }
            if now >= deadline {
                // Waited long enough: render a copy without taking over the mark.
                if waiting {
                    leave(&mut state, &mark);
                }
                break true;
            }
            if !waiting {
                in_flight.waiting += 1;
                waiting = true;
            }
            state = self
                .rendered
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        let mut guard = Rendering {
            cache: self,
            mark: None,
        };
        if !render_alone {
            state.rendering.insert(
                mark.clone(),
                InFlight {
                    waiting: 0,
                    done: None,
                },
            );
            guard.mark = Some(mark.clone());
        }
        let previous_size = state.previous_sizes.get(&mark.1).copied();
        drop(state);
        drop(older);
        let rendered = render(previous_size);
        let older = {
            let mut state = self.lock();
            let older = self.keep(&mut state, generation, mark.1.clone(), rendered.clone());
            if guard.mark.take().is_some() {
                match state.rendering.get_mut(&mark) {
                    Some(in_flight) if in_flight.waiting > 0 => {
                        in_flight.done = Some(rendered.clone());
                    }
                    _ => {
                        state.rendering.remove(&mark);
                    }
                }
                self.rendered.notify_all();
            }
            older
        };
        drop(older);
        rendered
    }

    /// Keeps a document. A newer generation drops everything older; a document of an
    /// older generation (a request that began before the swap) is not kept.
    fn keep(
        &self,
        state: &mut State,
        generation: u64,
        key: Key,
        rendered: Rendered,
    ) -> HashMap<Key, Rendered> {
        let older = state.advance(generation);
        if generation < state.generation {
            return older;
        }
        let size = rendered.body.len();
        let replaced = state.entries.get(&key).map_or(0, |old| old.body.len());
        let per_repository = !matches!(
            key.resource,
            ResourceKey::Collection
                | ResourceKey::Namespaces
                | ResourceKey::Cleanup { wide: true, .. }
        );
        if state.bytes - replaced + size > MAX_BYTES
            || (per_repository && state.repository_bytes - replaced + size > MAX_REPOSITORY_BYTES)
        {
            return older;
        }
        state.entries.insert(key, rendered);
        state.bytes = state.bytes - replaced + size;
        if per_repository {
            state.repository_bytes = state.repository_bytes - replaced + size;
        }
        older
    }

    #[cfg(test)]
    fn insert(&self, generation: u64, key: Key, rendered: Rendered) {
        let mut state = self.lock();
        let older = self.keep(&mut state, generation, key, rendered);
        drop(state);
        drop(older);
    }
}

/// A waiter takes its leave of an in-flight rendering; the last one to leave a finished
/// rendering removes it.
fn leave(state: &mut State, mark: &(u64, Key)) {
    if let Some(in_flight) = state.rendering.get_mut(mark) {
        in_flight.waiting = in_flight.waiting.saturating_sub(1);
        if in_flight.waiting == 0 && in_flight.done.is_some() {
            state.rendering.remove(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(depth: u8) -> Key {
        Key {
            resource: ResourceKey::Collection,
            collection: Collection::Repositories,
            depth,
            links: false,
            html: false,
            list: ListOptions::default(),
        }
    }

    fn doc(text: &str) -> Rendered {
        Rendered {
            body: Arc::new(text.as_bytes().to_vec()),
            etag: ETag::of(text.as_bytes()),
        }
    }

    #[test]
    fn etags_are_quoted_hex_and_follow_the_bytes() {
        let a = ETag::of(b"{}");
        assert_eq!(a.as_str().len(), 18);
        assert!(a.as_str().starts_with('"') && a.as_str().ends_with('"'));
        assert_eq!(a, ETag::of(b"{}"));
        assert_ne!(a, ETag::of(b"{ }"));
    }

    #[test]
    fn a_new_generation_drops_the_old_documents() {
        let cache = RenderCache::default();
        cache.insert(5, key(1), doc("five"));
        assert_eq!(&*cache.get(5, &key(1)).unwrap().body, b"five");
        assert!(cache.get(5, &key(2)).is_none());
        assert!(cache.get(6, &key(1)).is_none());
        cache.insert(6, key(2), doc("six"));
        assert!(cache.get(5, &key(1)).is_none());
        cache.insert(5, key(1), doc("late"));
        assert!(cache.get(6, &key(1)).is_none());
        assert_eq!(cache.lock().bytes, 3);
    }

    /// Called inside a render: returns once `n` other requests wait for it, the overlap a
    /// test needs, without guessing how long the others take to arrive.
    fn wait_for_waiters(cache: &RenderCache, generation: u64, key: &Key, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mark = (generation, key.clone());
        loop {
            let waiting = cache.lock().rendering.get(&mark).map_or(0, |f| f.waiting);
            if waiting >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} of {n} requests wait for the render"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn one_request_renders_while_the_others_wait_for_it() {
        let cache = RenderCache::default();
        let renders = std::sync::atomic::AtomicUsize::new(0);
        let bodies: Vec<Rendered> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        cache.get_or_render(7, key(1), |_| {
                            renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            wait_for_waiters(&cache, 7, &key(1), 7);
                            doc("seven")
                        })
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(renders.into_inner(), 1);
        for b in &bodies {
            assert!(Arc::ptr_eq(&b.body, &bodies[0].body));
        }
        // A later generation renders anew.
        let later = cache.get_or_render(8, key(1), |_| doc("eight"));
        assert_eq!(&*later.body, b"eight");
    }

    #[test]
    fn a_render_is_told_how_long_the_previous_generations_document_was() {
        let cache = RenderCache::default();
        let mut told = Vec::new();
        cache.get_or_render(1, key(1), |p| {
            told.push(p);
            doc("first")
        });
        cache.get_or_render(2, key(1), |p| {
            told.push(p);
            doc("second!")
        });
        // Another key was not in the previous generation.
        cache.get_or_render(2, key(2), |p| {
            told.push(p);
            doc("x")
        });
        cache.get_or_render(3, key(1), |p| {
            told.push(p);
            doc("third")
        });
        assert_eq!(told, [None, Some(5), None, Some(7)]);
    }

    #[test]
    fn a_render_that_panics_does_not_hold_up_the_next_request() {
        let cache = RenderCache::default();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.get_or_render(3, key(2), |_| panic!("render bug"))
        }));
        assert!(failed.is_err());
        let started = Instant::now();
        let ok = cache.get_or_render(3, key(2), |_| doc("three"));
        assert_eq!(&*ok.body, b"three");
        assert!(started.elapsed() < WAIT_FOR_RENDER / 2);
        assert!(cache.lock().rendering.is_empty());
    }

    #[test]
    fn repository_documents_have_a_budget_of_their_own() {
        let cache = RenderCache::default();
        let repo = |name: &str| Key {
            resource: ResourceKey::Repository(name.into()),
            ..key(1)
        };
        let big = |n: usize| Rendered {
            body: Arc::new(vec![b'x'; n]),
            etag: ETag::of(b"x"),
        };
        let half = MAX_REPOSITORY_BYTES / 2;
        cache.insert(1, repo("a"), big(half));
        cache.insert(1, repo("b"), big(half));
        cache.insert(1, repo("c"), big(1));
        assert!(cache.get(1, &repo("a")).is_some() && cache.get(1, &repo("b")).is_some());
        assert!(
            cache.get(1, &repo("c")).is_none(),
            "over the repository budget"
        );
        // Replacing a document frees its bytes first.
        cache.insert(1, repo("b"), big(half - 1));
        cache.insert(1, repo("c"), big(1));
        assert!(cache.get(1, &repo("c")).is_some());
        // The collection still fits beside them.
        cache.insert(1, key(1), big(MAX_BYTES - MAX_REPOSITORY_BYTES));
        assert!(cache.get(1, &key(1)).is_some());
        let state = cache.lock();
        assert_eq!(state.repository_bytes, MAX_REPOSITORY_BYTES);
        assert_eq!(state.bytes, MAX_BYTES);
    }

    #[test]
    fn a_document_too_large_to_keep_is_still_rendered_once_for_all_waiting() {
        let cache = RenderCache::default();
        let key = Key {
            resource: ResourceKey::Repository("huge".into()),
            ..key(1)
        };
        let renders = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    let r = cache.get_or_render(4, key.clone(), |_| {
                        renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        wait_for_waiters(&cache, 4, &key, 5);
                        Rendered {
                            body: Arc::new(vec![b'x'; MAX_REPOSITORY_BYTES + 1]),
                            etag: ETag::of(b"huge"),
                        }
                    });
                    assert_eq!(r.body.len(), MAX_REPOSITORY_BYTES + 1);
                });
            }
        });
        assert_eq!(renders.into_inner(), 1);
        let state = cache.lock();
        assert!(state.entries.is_empty(), "over the budget: not kept");
        assert!(state.rendering.is_empty(), "nothing left behind");
    }
}
