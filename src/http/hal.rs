//! The resources as HAL documents: which fields, `_links` and `_embedded` each one has.
//!
//! The structure is written once, in [`collection`], [`repository`], [`tags`] and [`tag`],
//! against the [`Sink`] trait; [`Json`] turns it into `application/hal+json` and
//! `html::Html` into a page. One description for both formats keeps the HTML view from
//! drifting away from the JSON, and streaming into a byte buffer (no `serde_json::Value`
//! tree) keeps a 100k-tag collection cheap to render.
//!
//! Compatibility with the original service: field names and order, `_links` keys (`self`,
//! `items`, `collection`, `related`, `up`) and `_embedded` keys (`items`, `related`) are
//! the original's. Its bugs are not kept: a tag's `self` is the tag's own URL, a tag
//! link's title is the tag name, links carry `server_prefix`, and an `_embedded` or a
//! link list that would be empty is left out.

use crate::snapshot::{Repository, Snapshot, Tag};
use crate::usage::namespaces::NONE;
use crate::usage::{Child, Usage};

use crate::percent::Encoded;

/// Where a resource lives, written exactly as in links:
/// `<base>[/<quote(repo)>[/tags[/<quote(tag)>]]]`, where `base` is `<server_prefix>/repositories`
/// (or `/images`, the 0.1.x name, when the client used that). Formatting it writes
/// straight into the output: no `String` per link.
#[derive(Debug, Clone, Copy)]
pub struct Href<'a> {
    pub base: &'a str,
    pub repo: Option<&'a str>,
    pub tags: bool,
    pub tag: Option<&'a str>,
    /// A query string (already encoded), for paging links.
    pub query: Option<&'a str>,
}

impl<'a> Href<'a> {
    pub fn collection(base: &'a str) -> Href<'a> {
        Href {
            base,
            repo: None,
            tags: false,
            tag: None,
            query: None,
        }
    }

    pub fn repository(base: &'a str, repo: &'a str) -> Href<'a> {
        Href {
            repo: Some(repo),
            ..Href::collection(base)
        }
    }

    pub fn tags(base: &'a str, repo: &'a str) -> Href<'a> {
        Href {
            tags: true,
            ..Href::repository(base, repo)
        }
    }

    pub fn tag(base: &'a str, repo: &'a str, tag: &'a str) -> Href<'a> {
        Href {
            tag: Some(tag),
            ..Href::tags(base, repo)
        }
    }
}

impl std::fmt::Display for Href<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.base)?;
        if let Some(repo) = self.repo {
            write!(f, "/{}", Encoded(repo))?;
            if self.tags {
                f.write_str("/tags")?;
                if let Some(tag) = self.tag {
                    write!(f, "/{}", Encoded(tag))?;
                }
            }
        }
        if let Some(query) = self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// Receives a resource's parts in document order. Calls nest: inside `begin`/`end` come
/// fields, then at most one `begin_links`..`end_links`, then at most one
/// `begin_embedded`..`end_embedded` whose entries are whole resources.
pub trait Sink {
    /// A resource starts; `href` is its own URL (the JSON sink ignores it unless it is
    /// given as a `self` link; the HTML sink uses it as the heading).
    fn begin(&mut self, href: &Href<'_>);
    fn str_field(&mut self, key: &str, value: &str);
    /// `None` is written as `null` (a size that is unknown because the scan failed).
    fn u64_field(&mut self, key: &str, value: Option<u64>);
    /// A field whose value is unknown (`null`; "unknown" in HTML).
    fn null_field(&mut self, key: &str) {
        self.u64_field(key, None);
    }
    fn f64_field(&mut self, key: &str, value: f64);
    /// A signed byte count (a growth); `None` is `null`.
    fn i64_field(&mut self, key: &str, value: Option<i64>);
    fn begin_links(&mut self);
    fn link(&mut self, rel: &str, href: &Href<'_>, title: Option<&str>);
    fn begin_link_list(&mut self, rel: &str);
    fn list_link(&mut self, href: &Href<'_>, title: &str);
    fn end_link_list(&mut self);
    fn end_links(&mut self);
    fn begin_embedded(&mut self);
    /// One embedded resource under `rel` (not a list), e.g. a repository's `related`.
    fn begin_embedded_one(&mut self, rel: &str);
    fn end_embedded_one(&mut self);
    fn begin_embedded_list(&mut self, rel: &str);
    fn end_embedded_list(&mut self);
    fn end_embedded(&mut self);
    fn end(&mut self);
}

/// How a client asked to see the resources: under which base URL, with links or not,
/// and with the usage fields or without (the original's documents, byte for byte).
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// `<server_prefix>/repositories` or `<server_prefix>/images`.
    pub base: &'a str,
    pub links: bool,
    /// Present when the document carries the usage fields: under `/namespaces`, or when
    /// a list parameter (`sort`, `limit`, `page`, `per_page`, `q`) was given.
    pub usage: Option<Numbers<'a>>,
}

/// What the usage fields are read from.
#[derive(Clone, Copy)]
pub struct Numbers<'a> {
    pub snapshot: &'a Snapshot,
    pub usage: &'a Usage,
    /// `<server_prefix>/namespaces`.
    pub namespaces: &'a str,
}

/// The list a request asked for (sorted, filtered, cut), for the one list of the
/// document it applies to; lists nested deeper stay complete and in name order.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Indices as the list's `Usage::select_*` gives them.
    pub items: Vec<u32>,
    /// The total to write as `count` (items matching `q`, at most `limit`), if any.
    pub count: Option<usize>,
    /// `(rel, query string)` of the `first`/`prev`/`next`/`last` links.
    pub pages: Vec<(&'static str, String)>,
}

/// How deep `embed` may usefully go: collection → repository → tags → tag. Any larger
/// depth renders the same document, so depths are clamped to this (which also makes
/// `embed=3`, `embed=99` and `embed=true` share one cache entry).
pub const MAX_DEPTH: u8 = 3;

/// The positions to list: the listing's, or all `len` in name order.
fn positions(listing: Option<&Listing>, len: usize) -> Box<dyn Iterator<Item = usize> + '_> {
    match listing {
        Some(l) => Box::new(l.items.iter().map(|&i| i as usize)),
        None => Box::new(0..len),
    }
}

/// `_links` is written when asked for, and always when the list is paged.
fn wants_links(view: View<'_>, listing: Option<&Listing>) -> bool {
    view.links || listing.is_some_and(|l| !l.pages.is_empty())
}

fn page_links<S: Sink>(s: &mut S, href: Href<'_>, listing: Option<&Listing>) {
    for (rel, query) in listing.map_or(&[][..], |l| &l.pages[..]) {
        s.link(
            rel,
            &Href {
                query: Some(query),
                ..href
            },
            None,
        );
    }
}

fn count_field<S: Sink>(s: &mut S, listing: Option<&Listing>) {
    if let Some(count) = listing.and_then(|l| l.count) {
        s.u64_field("count", Some(count as u64));
    }
}

/// `/repositories`: registry totals; links to every repository; embedded repositories.
pub fn collection<S: Sink>(
    s: &mut S,
    snapshot: &Snapshot,
    view: View<'_>,
    depth: u8,
    listing: Option<&Listing>,
) {
    let href = Href::collection(view.base);
    s.begin(&href);
    let totals = &snapshot.totals;
    s.f64_field("timestamp", snapshot.timestamp);
    s.u64_field("size", Some(totals.size));
    s.u64_field("disk_size", Some(totals.disk_size));
    s.u64_field("repository_count", Some(totals.repository_count as u64));
    s.u64_field("tag_count", Some(totals.tag_count as u64));
    if let Some(n) = view.usage {
        s.u64_field("deduplicated_size", Some(n.usage.deduplicated_size()));
    }
    count_field(s, listing);
    let repos = &snapshot.repositories;
    let any = positions(listing, repos.len()).next().is_some();
    if wants_links(view, listing) {
        s.begin_links();
        s.link("self", &href, None);
        if view.links && any {
            s.begin_link_list("items");
            for r in positions(listing, repos.len()).map(|i| &repos[i]) {
                s.list_link(&Href::repository(view.base, &r.name), &r.name);
            }
            s.end_link_list();
        }
        page_links(s, href, listing);
        s.end_links();
    }
    if depth > 0 && any {
        s.begin_embedded();
        s.begin_embedded_list("items");
        for r in positions(listing, repos.len()).map(|i| &repos[i]) {
            repository(s, r, view, depth - 1, None);
        }
        s.end_embedded_list();
        s.end_embedded();
    }
    s.end();
}

/// A repository: name, sizes (null when unknown), the scan error if its last scan
/// failed; a `related` link and embedded tags collection only when its tags are known.
/// `listing` applies to the embedded tags.
pub fn repository<S: Sink>(
    s: &mut S,
    repo: &Repository,
    view: View<'_>,
    depth: u8,
    listing: Option<&Listing>,
) {
    let href = Href::repository(view.base, &repo.name);
    s.begin(&href);
    s.str_field("name", &repo.name);
    s.u64_field("size", repo.size);
    s.u64_field("disk_size", repo.disk_size);
    if let Some(n) = view.usage {
        let numbers = repo
            .tags
            .as_ref()
            .and_then(|tags| Some((n.snapshot.index_of(repo)?, tags.len())))
            .map(|(r, tags)| (n.usage.repository(r), tags as u64));
        s.u64_field(
            "deduplicated_size",
            numbers.map(|(u, _)| u.deduplicated_size),
        );
        s.u64_field("exclusive_size", numbers.map(|(u, _)| u.exclusive_size));
        s.u64_field("tag_count", numbers.map(|(_, t)| t));
        let growth = n
            .snapshot
            .index_of(repo)
            .and_then(|r| n.usage.repository_growth(r));
        s.i64_field("growth_30d", growth);
    }
    if let Some(error) = &repo.error {
        s.str_field("error", error);
    }
    if view.links {
        s.begin_links();
        s.link("self", &href, None);
        s.link("collection", &Href::collection(view.base), None);
        if repo.tags.is_some() {
            s.link("related", &Href::tags(view.base, &repo.name), Some("tags"));
        }
        s.end_links();
    }
    if depth > 0 && repo.tags.is_some() {
        s.begin_embedded();
        s.begin_embedded_one("related");
        tags(s, repo, view, depth - 1, listing);
        s.end_embedded_one();
        s.end_embedded();
    }
    s.end();
}

/// A repository's tags collection: the count; links to each tag; embedded tags. When
/// the repository's scan failed it has the repository's `error` too, and with no tags
/// known (the first scan of it failed) the count is null: the original answered such a
/// collection with 200 and clients rely on that, so it is not a 404.
pub fn tags<S: Sink>(
    s: &mut S,
    repo: &Repository,
    view: View<'_>,
    depth: u8,
    listing: Option<&Listing>,
) {
    let href = Href::tags(view.base, &repo.name);
    let tag_list = repo.tags.as_deref().unwrap_or_default();
    s.begin(&href);
    let count = match listing.and_then(|l| l.count) {
        Some(count) => Some(count as u64),
        None => repo.tags.as_ref().map(|t| t.len() as u64),
    };
    s.u64_field("count", count);
    if let Some(error) = &repo.error {
        s.str_field("error", error);
    }
    let any = positions(listing, tag_list.len()).next().is_some();
    if wants_links(view, listing) {
        s.begin_links();
        s.link("self", &href, None);
        if view.links {
            s.link("up", &Href::repository(view.base, &repo.name), None);
        }
        if view.links && any {
            s.begin_link_list("items");
            for t in positions(listing, tag_list.len()).map(|i| &tag_list[i]) {
                s.list_link(&Href::tag(view.base, &repo.name, &t.name), &t.name);
            }
            s.end_link_list();
        }
        page_links(s, href, listing);
        s.end_links();
    }
    if depth > 0 && any {
        s.begin_embedded();
        s.begin_embedded_list("items");
        for t in positions(listing, tag_list.len()).map(|i| &tag_list[i]) {
            tag(s, repo, t, view);
        }
        s.end_embedded_list();
        s.end_embedded();
    }
    s.end();
}

/// A tag: name and sizes; links to itself and its tags collection. Nothing to embed.
pub fn tag<S: Sink>(s: &mut S, repo: &Repository, t: &Tag, view: View<'_>) {
    let href = Href::tag(view.base, &repo.name, &t.name);
    s.begin(&href);
    s.str_field("name", &t.name);
    s.u64_field("size", Some(t.size));
    s.u64_field("disk_size", Some(t.disk_size));
    if let Some(n) = view.usage {
        let exclusive = n
            .snapshot
            .index_of(repo)
            .zip(repo.index_of(t))
            .map(|(r, t)| n.usage.tag_exclusive_size(r, t));
        s.u64_field("exclusive_size", exclusive);
        match &t.digest {
            Some(d) => s.str_field("digest", &d.to_string()),
            None => s.null_field("digest"),
        }
        // The image's build date (what cleanup policies order by): a usage field, so
        // never in the original's documents.
        match t.created {
            Some(c) => s.str_field("created", &crate::rfc3339::format(c)),
            None => s.null_field("created"),
        }
    }
    if view.links {
        s.begin_links();
        s.link("self", &href, None);
        s.link("collection", &Href::tags(view.base, &repo.name), None);
        s.end_links();
    }
    s.end();
}

/// `/namespaces`: the count of top-level namespaces; links to them; embedded namespaces.
/// `listing` is always given (its items are namespace indices).
pub fn namespaces<S: Sink>(
    s: &mut S,
    n: Numbers<'_>,
    view: View<'_>,
    depth: u8,
    listing: &Listing,
) {
    let href = Href::collection(n.namespaces);
    s.begin(&href);
    count_field(s, Some(listing));
    let list = n.usage.namespaces();
    let listed = || listing.items.iter().map(|&i| (i, &list[i as usize]));
    if wants_links(view, Some(listing)) {
        s.begin_links();
        s.link("self", &href, None);
        if view.links && !listing.items.is_empty() {
            s.begin_link_list("items");
            for (_, ns) in listed() {
                s.list_link(&Href::repository(n.namespaces, &ns.name), &ns.name);
            }
            s.end_link_list();
        }
        page_links(s, href, Some(listing));
        s.end_links();
    }
    if depth > 0 && !listing.items.is_empty() {
        s.begin_embedded();
        s.begin_embedded_list("items");
        for (i, _) in listed() {
            namespace(s, n, i, view, depth - 1, None);
        }
        s.end_embedded_list();
        s.end_embedded();
    }
    s.end();
}

/// A namespace: its numbers; links to its parent, child namespaces and repositories;
/// those children embedded. `listing` (entries of `Usage::select_children`) applies to
/// the children, namespaces and repositories together.
pub fn namespace<S: Sink>(
    s: &mut S,
    n: Numbers<'_>,
    index: u32,
    view: View<'_>,
    depth: u8,
    listing: Option<&Listing>,
) {
    let (snapshot, usage) = (n.snapshot, n.usage);
    let ns = &usage.namespaces()[index as usize];
    let href = Href::repository(n.namespaces, &ns.name);
    s.begin(&href);
    s.str_field("name", &ns.name);
    s.u64_field("size", Some(ns.size));
    s.u64_field("disk_size", Some(ns.disk_size));
    s.u64_field("deduplicated_size", Some(ns.deduplicated_size));
    s.u64_field("exclusive_size", Some(ns.exclusive_size));
    s.u64_field("repository_count", Some(ns.repository_count));
    s.u64_field("tag_count", Some(ns.tag_count));
    s.u64_field("failed_repository_count", Some(ns.failed_repository_count));
    s.i64_field("growth_30d", ns.growth_30d);
    count_field(s, listing);
    let entries = match listing {
        Some(l) => l.items.clone(),
        None => {
            usage
                .select_children(snapshot, index, &Default::default())
                .items
        }
    };
    let children = || entries.iter().map(|&e| usage.child(snapshot, e));
    let child_namespaces = || {
        children().filter_map(|c| match c {
            Child::Namespace(c) => Some(c),
            Child::Repository(_) => None,
        })
    };
    let repositories = || {
        children().filter_map(|c| match c {
            Child::Repository(r) => Some(&snapshot.repositories[r as usize]),
            Child::Namespace(_) => None,
        })
    };
    let list = usage.namespaces();
    if wants_links(view, listing) {
        s.begin_links();
        s.link("self", &href, None);
        if view.links {
            match ns.parent {
                NONE => s.link("up", &Href::collection(n.namespaces), None),
                p => s.link(
                    "up",
                    &Href::repository(n.namespaces, &list[p as usize].name),
                    None,
                ),
            }
            if child_namespaces().next().is_some() {
                s.begin_link_list("namespaces");
                for c in child_namespaces() {
                    let name = &list[c as usize].name;
                    s.list_link(&Href::repository(n.namespaces, name), name);
                }
                s.end_link_list();
            }
            if repositories().next().is_some() {
                s.begin_link_list("repositories");
                for r in repositories() {
                    s.list_link(&Href::repository(view.base, &r.name), &r.name);
                }
                s.end_link_list();
            }
        }
        page_links(s, href, listing);
        s.end_links();
    }
    if depth > 0 && !entries.is_empty() {
        s.begin_embedded();
        if child_namespaces().next().is_some() {
            s.begin_embedded_list("namespaces");
            for c in child_namespaces() {
                namespace(s, n, c, view, depth - 1, None);
            }
            s.end_embedded_list();
        }
        if repositories().next().is_some() {
            s.begin_embedded_list("repositories");
            for r in repositories() {
                repository(s, r, view, depth - 1, None);
            }
            s.end_embedded_list();
        }
        s.end_embedded();
    }
    s.end();
}

/// Compact `application/hal+json`, written by hand into one buffer.
///
/// Comma placement needs one flag, not a stack: `first` says whether the container being
/// filled has no entry yet, and closing a container makes it an entry of its parent.
pub struct Json {
    out: Vec<u8>,
    first: bool,
    after_key: bool,
}

impl Json {
    /// A number field, `null` for `None`.
    fn number_field<T: serde::Serialize>(&mut self, key: &str, value: Option<T>) {
        self.key(key);
        self.before_value();
        match value {
            Some(n) => {
                let _ = serde_json::to_writer(&mut self.out, &n);
            }
            None => self.out.extend_from_slice(b"null"),
        }
    }

    pub fn with_capacity(capacity: usize) -> Json {
        Json {
            out: Vec::with_capacity(capacity),
            first: true,
            after_key: false,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    fn before_value(&mut self) {
        if self.after_key {
            self.after_key = false;
        } else if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    fn key(&mut self, key: &str) {
        self.before_value();
        self.string(key);
        self.out.push(b':');
        self.after_key = true;
    }

    fn open(&mut self, c: u8) {
        self.before_value();
        self.out.push(c);
        self.first = true;
    }

    fn close(&mut self, c: u8) {
        self.out.push(c);
        self.first = false;
    }

    fn string(&mut self, s: &str) {
        write_json_string(&mut self.out, s);
    }

    fn href_string(&mut self, href: &Href<'_>) {
        // The base (server prefix + collection) may need JSON escaping; the encoded names
        // are plain ASCII without `"` or `\` and go in as they are.
        write_json_string(&mut self.out, href.base);
        self.out.pop(); // reopen the string literal
        if let Some(repo) = href.repo {
            self.out.push(b'/');
            crate::percent::encode_into(&mut self.out, repo);
            if href.tags {
                self.out.extend_from_slice(b"/tags");
                if let Some(tag) = href.tag {
                    self.out.push(b'/');
                    crate::percent::encode_into(&mut self.out, tag);
                }
            }
        }
        if let Some(query) = href.query {
            // Built from fixed names and percent-encoded values: no `"` or `\`.
            self.out.push(b'?');
            self.out.extend_from_slice(query.as_bytes());
        }
        self.out.push(b'"');
    }

    fn link_object(&mut self, href: &Href<'_>, title: Option<&str>) {
        self.open(b'{');
        self.key("href");
        self.before_value();
        self.href_string(href);
        if let Some(title) = title {
            self.key("title");
            self.before_value();
            self.string(title);
        }
        self.close(b'}');
    }
}

/// A JSON string literal (serde_json's escaping: `"`, `\` and control characters).
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A finite float as Python's `json.dumps` writes it (shortest round-trip form, `.0` on
/// whole numbers); NaN and infinities, which JSON cannot carry, as `null`.
pub fn write_json_f64(out: &mut Vec<u8>, value: f64) {
    // serde_json uses the same shortest representation (ryu) and maps non-finite to null.
    let _ = serde_json::to_writer(&mut *out, &value);
}

impl Sink for Json {
    fn begin(&mut self, _href: &Href<'_>) {
        self.open(b'{');
    }

    fn str_field(&mut self, key: &str, value: &str) {
        self.key(key);
        self.before_value();
        self.string(value);
    }

    fn u64_field(&mut self, key: &str, value: Option<u64>) {
        self.number_field(key, value);
    }

    fn i64_field(&mut self, key: &str, value: Option<i64>) {
        self.number_field(key, value);
    }

    fn f64_field(&mut self, key: &str, value: f64) {
        self.key(key);
        self.before_value();
        write_json_f64(&mut self.out, value);
    }

    fn begin_links(&mut self) {
        self.key("_links");
        self.open(b'{');
    }

    fn link(&mut self, rel: &str, href: &Href<'_>, title: Option<&str>) {
        self.key(rel);
        self.link_object(href, title);
    }

    fn begin_link_list(&mut self, rel: &str) {
        self.key(rel);
        self.open(b'[');
    }

    fn list_link(&mut self, href: &Href<'_>, title: &str) {
        self.link_object(href, Some(title));
    }

    fn end_link_list(&mut self) {
        self.close(b']');
    }

    fn end_links(&mut self) {
        self.close(b'}');
    }

    fn begin_embedded(&mut self) {
        self.key("_embedded");
        self.open(b'{');
    }

    fn begin_embedded_one(&mut self, rel: &str) {
        self.key(rel);
    }

    fn end_embedded_one(&mut self) {}

    fn begin_embedded_list(&mut self, rel: &str) {
        self.key(rel);
        self.open(b'[');
    }

    fn end_embedded_list(&mut self) {
        self.close(b']');
    }

    fn end_embedded(&mut self) {
        self.close(b'}');
    }

    fn end(&mut self) {
        self.close(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Builder, LayerRef, ScannedTag};

    fn snapshot() -> Snapshot {
        let mut b = Builder::default();
        let layer = |d: &str, s| LayerRef {
            digest: d.into(),
            size: s,
        };
        b.add_repository(
            "g/app",
            Some(vec![ScannedTag {
                name: "v1".into(),
                digest: None,
                layers: vec![layer("sha256:a", 10)].into(),
            }]),
            None,
        );
        b.add_repository("empty", Some(vec![]), None);
        b.add_repository("broken", None, Some("HTTP \"500\"\n".into()));
        b.finish(1.5)
    }

    fn json(f: impl FnOnce(&mut Json)) -> serde_json::Value {
        let mut j = Json::with_capacity(64);
        f(&mut j);
        serde_json::from_slice(&j.into_bytes()).expect("valid JSON")
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\n\u{1}ü</");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\n\u0001ü</""#);
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        write_json_f64(&mut out, 1234.0);
        write_json_f64(&mut out, f64::NAN);
        assert_eq!(out, b"1234.0null");
    }

    #[test]
    fn full_embedding_with_links() {
        let s = snapshot();
        let view = View {
            base: "/p/repositories",
            links: true,
            usage: None,
        };
        let doc = json(|j| collection(j, &s, view, MAX_DEPTH, None));
        assert_eq!(doc["_links"]["items"][2]["href"], "/p/repositories/g%2Fapp");
        let items = doc["_embedded"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        // broken: no related link, no _embedded, null sizes, the error.
        assert_eq!(items[0]["size"], serde_json::Value::Null);
        assert_eq!(items[0]["error"], "HTTP \"500\"\n");
        assert!(items[0]["_links"].get("related").is_none());
        assert!(items[0].get("_embedded").is_none());
        // empty: a tags collection with no items link and no _embedded.
        let empty_tags = &items[1]["_embedded"]["related"];
        assert_eq!(empty_tags["count"], 0);
        assert!(empty_tags["_links"].get("items").is_none());
        assert!(empty_tags.get("_embedded").is_none());
        let tag = &items[2]["_embedded"]["related"]["_embedded"]["items"][0];
        assert_eq!(
            tag["_links"]["self"]["href"],
            "/p/repositories/g%2Fapp/tags/v1"
        );
        assert_eq!(
            tag["_links"]["collection"]["href"],
            "/p/repositories/g%2Fapp/tags"
        );
    }

    #[test]
    fn no_links_no_embedding_is_just_the_fields() {
        let s = snapshot();
        let view = View {
            base: "/repositories",
            links: false,
            usage: None,
        };
        let mut j = Json::with_capacity(64);
        repository(&mut j, s.repository("g/app").unwrap(), view, 0, None);
        assert_eq!(
            String::from_utf8(j.into_bytes()).unwrap(),
            r#"{"name":"g/app","size":10,"disk_size":10}"#
        );
    }
}
