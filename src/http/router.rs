//! From a request line and a few headers to what was asked for: the route, the resource
//! within the snapshot, the `embed`/`links` options, the preferred format and whether the
//! client's cached copy is still good. Pure functions over strings and a `Snapshot`, so
//! every rule is unit-tested without a socket.

use std::borrow::Cow;

use crate::snapshot::{Repository, Snapshot, Tag};
use crate::usage::order::{self, ListOptions, ParamError, SortKey};
use crate::usage::Usage;

use super::hal::{Href, MAX_DEPTH};
use crate::percent::{decode_path, decode_query_component, DecodeError};

/// The two names of the repository collection: `/repositories`, and `/images` as 0.1.x
/// called it. Links in a response stay under the name the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Repositories,
    Images,
}

/// Which handler a path belongs to (before any lookup in the snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    AuthToken,
    /// `/openapi.json`: the API's contract (no login: it holds no data).
    OpenApi,
    /// `/metrics`: Prometheus (its own access rule, `[metrics] allow`).
    Metrics,
    /// `/history`: the registry's usage history.
    History,
    /// `/cleanup`: the whole registry's cleanup preview. (`/repositories/<name>/cleanup`
    /// and `/namespaces/<path>/cleanup` are `Api` and `Namespaces` paths: only the
    /// snapshot can tell them from a repository or namespace whose name ends in
    /// `/cleanup`.)
    Cleanup,
    /// `/repositories` (rest `None`) or `/repositories/<rest>`, `rest` still encoded.
    Api {
        collection: Collection,
        rest: Option<&'a str>,
    },
    /// `/namespaces` (rest `None`) or `/namespaces/<rest>`, `rest` still encoded.
    Namespaces {
        rest: Option<&'a str>,
    },
    /// `/` (or the prefix itself): the dashboard for a browser, the API root otherwise.
    Root,
    /// `/dashboard/<file>`: one of the dashboard's embedded assets.
    Asset(&'a str),
    /// Anything else, including paths outside `server_prefix`.
    Unknown,
}

/// `(path, query)` of a request target; an absolute-form target
/// (`http://host/path`, sent by some proxies) is reduced to its path.
pub fn split_target(target: &str) -> (&str, &str) {
    let target = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let after = target
                .get(..scheme.len())?
                .eq_ignore_ascii_case(scheme)
                .then(|| &target[scheme.len()..])?;
            Some(after.find('/').map_or("/", |i| &after[i..]))
        })
        .unwrap_or(target);
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    target.split_once('?').unwrap_or((target, ""))
}

/// The route of `path` under `prefix` (`""` or `/a/b`, as `config::General` keeps it).
pub fn route<'a>(prefix: &str, path: &'a str) -> Route<'a> {
    let Some(path) = path.strip_prefix(prefix) else {
        return Route::Unknown;
    };
    match path {
        "/health" => return Route::Health,
        "/auth_token" => return Route::AuthToken,
        "/openapi.json" => return Route::OpenApi,
        "/" | "" => return Route::Root,
        "/metrics" => return Route::Metrics,
        "/history" => return Route::History,
        "/cleanup" => return Route::Cleanup,
        _ => {}
    }
    if let Some(file) = path.strip_prefix("/dashboard/") {
        return Route::Asset(file);
    }
    // `Some(None)`: the collection itself; `Some(Some(rest))`: something inside it.
    let under = |name: &str| -> Option<Option<&'a str>> {
        let after = path.strip_prefix(name)?;
        if after.is_empty() {
            return Some(None);
        }
        after
            .strip_prefix('/')
            .filter(|rest| !rest.is_empty())
            .map(Some)
    };
    for (name, collection) in [
        ("/repositories", Collection::Repositories),
        ("/images", Collection::Images),
    ] {
        if let Some(rest) = under(name) {
            return Route::Api { collection, rest };
        }
    }
    match under("/namespaces") {
        Some(rest) => Route::Namespaces { rest },
        None => Route::Unknown,
    }
}

/// The route templates `http_requests_total` counts by (never raw paths, so the label's
/// values are bounded); the last is everything else.
pub const TEMPLATES: &[&str] = &[
    "/health",
    "/auth_token",
    "/openapi.json",
    "/metrics",
    "/history",
    "/repositories",
    "/repositories/{name}",
    "/repositories/{name}/tags",
    "/repositories/{name}/tags/{tag}",
    "/repositories/{name}/history",
    "/images",
    "/images/{name}",
    "/images/{name}/tags",
    "/images/{name}/tags/{tag}",
    "/namespaces",
    "/namespaces/{path}",
    "/namespaces/{path}/history",
    "/",
    "/dashboard/{asset}",
    "/cleanup",
    "/repositories/{name}/cleanup",
    "/namespaces/{path}/cleanup",
    "unmatched",
];

/// Index into [`TEMPLATES`] of a route, told by the shape of the path alone (no
/// snapshot lookup: a repository whose name ends in `/tags` counts as a tags collection).
pub fn template(route: &Route<'_>) -> usize {
    // Without allocating: `/` may be sent raw or as `%2F` / `%2f`.
    let ends_with_segment = |rest: &str, segment: &str| {
        rest.strip_suffix(segment).is_some_and(|before| {
            before.ends_with('/')
                || before
                    .get(before.len().saturating_sub(3)..)
                    .is_some_and(|t| t.eq_ignore_ascii_case("%2f"))
        })
    };
    let shape = |rest: &str| {
        if ends_with_segment(rest, "history") {
            3
        } else if ends_with_segment(rest, "cleanup") {
            4
        } else if ends_with_segment(rest, "tags") {
            1
        } else if ["/tags/", "%2Ftags%2F", "%2ftags%2f"]
            .iter()
            .any(|t| rest.contains(t))
        {
            2
        } else {
            0
        }
    };
    match route {
        Route::Health => 0,
        Route::AuthToken => 1,
        Route::OpenApi => 2,
        Route::Metrics => 3,
        Route::History => 4,
        Route::Api {
            collection: Collection::Repositories,
            rest,
        } => rest.map_or(5, |r| match shape(r) {
            4 => 20,
            s => 6 + s,
        }),
        Route::Api {
            collection: Collection::Images,
            rest,
        } => rest.map_or(10, |r| match shape(r) {
            3 | 4 => 11,
            s => 11 + s,
        }),
        Route::Namespaces { rest } => rest.map_or(14, |r| match shape(r) {
            3 => 16,
            4 => 21,
            _ => 15,
        }),
        Route::Root => 17,
        Route::Asset(_) => 18,
        Route::Cleanup => 19,
        Route::Unknown => TEMPLATES.len() - 1,
    }
}

/// The name before `/history` when `name` (decoded) ends with it.
pub fn history_of(name: &str) -> Option<&str> {
    name.strip_suffix("/history").filter(|n| !n.is_empty())
}

/// The name before `/cleanup` when `name` (decoded) ends with it.
pub fn cleanup_of(name: &str) -> Option<&str> {
    name.strip_suffix("/cleanup").filter(|n| !n.is_empty())
}

/// `?days=N` of a history request: `Ok(None)` without it.
pub fn parse_days(query: &str) -> Result<Option<u32>, String> {
    let Some(value) = query.split('&').find_map(|pair| pair.strip_prefix("days=")) else {
        return Ok(None);
    };
    let value = decode_query_component(value);
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(format!(
            "days = {value:?}: expected a whole number of days, at least 1"
        )),
    }
}

/// A request as the API sees it, parsed once: the route, the options, the format and
/// the client's cached copy. Handlers work from this, never from the raw request.
#[derive(Debug, Clone)]
pub struct Request<'r> {
    pub route: Route<'r>,
    /// The path as received (for the 404 of an unknown route).
    pub path: &'r str,
    /// The query's options, or why one of them is refused (a 400 once the resource,
    /// and so the accepted sort keys, is known).
    pub options: Result<Options, ParamError>,
    pub html: bool,
    pub if_none_match: Option<&'r str>,
}

/// Parses the parts of a request the API looks at.
pub fn parse_request<'r>(
    prefix: &str,
    target: &'r str,
    accept: Option<&str>,
    if_none_match: Option<&'r str>,
) -> Request<'r> {
    let (path, query) = split_target(target);
    Request {
        route: route(prefix, path),
        path,
        options: parse_options(query),
        html: prefers_html(accept),
        if_none_match,
    }
}

/// The options of a query string: the original's `embed` and `links`, and the list
/// parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Embedding depth, clamped to [`MAX_DEPTH`] (deeper renders the same document).
    pub depth: u8,
    pub links: bool,
    pub list: ListOptions,
}

impl Options {
    /// The query string of a paging link to page `page`: these options in a fixed order.
    pub fn query_for_page(&self, page: u64) -> String {
        let mut out = String::new();
        if self.depth > 0 {
            out.push_str(&format!("embed={}&", self.depth));
        }
        if self.links {
            out.push_str("links=true&");
        }
        out.push_str(&self.list.query_for_page(page));
        out
    }
}

/// Python's true-strings, as the original compared them (after `lower()`).
fn is_true_string(value: &str) -> bool {
    ["true", "yes", "1", "t", "y"]
        .iter()
        .any(|t| value.eq_ignore_ascii_case(t))
}

/// `embed` as the original read it: an integer is a depth (`1` means one level, not
/// "true"), a true-string means unlimited, anything else 0.
pub fn parse_embed(value: &str) -> u8 {
    match parse_python_int(value) {
        Some(PyInt::Negative) => 0,
        Some(PyInt::NonNegative(n)) => n.min(u64::from(MAX_DEPTH)) as u8,
        None if is_true_string(value) => MAX_DEPTH,
        None => 0,
    }
}

enum PyInt {
    Negative,
    /// Saturated at `u64::MAX` (Python ints are unbounded; any huge depth is "all").
    NonNegative(u64),
}

/// What Python's `int(value)` accepts: surrounding whitespace, an optional sign, ASCII
/// digits with single underscores between them.
fn parse_python_int(value: &str) -> Option<PyInt> {
    let v = value.trim();
    let (negative, digits) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let mut n: u64 = 0;
    for b in bytes.iter().filter(|b| b.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(if negative && n > 0 {
        PyInt::Negative
    } else {
        PyInt::NonNegative(n)
    })
}

/// The options of a query string; the first occurrence of each parameter counts (Flask's
/// `request.args.get`), unknown parameters are ignored. `embed` and `links` are read as
/// the original read them (never an error); a list parameter that is not well-formed is
/// an `Err`.
pub fn parse_options(query: &str) -> Result<Options, ParamError> {
    const NAMES: [&str; 7] = ["embed", "links", "sort", "limit", "page", "per_page", "q"];
    let mut values: [Option<Cow<'_, str>>; 7] = Default::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query_component(key);
        let Some(slot) = NAMES.iter().position(|n| *n == key) else {
            continue;
        };
        if values[slot].is_none() {
            values[slot] = Some(decode_query_component(value));
        }
    }
    let [embed, links, sort, limit, page, per_page, q] = values;
    let number = |param: &'static str, value: Option<Cow<'_, str>>, minimum: u64| {
        value
            .map(|v| order::parse_number(param, &v, minimum))
            .transpose()
    };
    Ok(Options {
        depth: embed.as_deref().map_or(0, parse_embed),
        links: links.as_deref().is_some_and(is_true_string),
        list: ListOptions {
            sort: sort.map(|v| order::parse_sort(&v)).transpose()?,
            limit: number("limit", limit, 0)?,
            page: number("page", page, 1)?,
            per_page: number("per_page", per_page, 1)?,
            q: q.map(|v| v.to_ascii_lowercase().into_boxed_str()),
        },
    })
}

/// True when the client prefers HTML over (HAL+)JSON. Both get their best `q` from the
/// most specific matching media range; a tie goes to JSON, so `*/*` (curl, scripts) and
/// a missing header get JSON, a browser's `text/html,...,*/*;q=0.8` gets HTML.
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    // (specificity, q) of the best match so far: 3 exact, 2 type/*, 1 */*.
    let mut html: (u8, f32) = (0, 0.0);
    let mut json: (u8, f32) = (0, 0.0);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .unwrap_or(0.0)
                        .clamp(0.0, 1.0);
                }
            }
        }
        let html_spec = match media.as_str() {
            "text/html" | "application/xhtml+xml" => 3,
            "text/*" => 2,
            "*/*" => 1,
            _ => 0,
        };
        let json_spec = match media.as_str() {
            "application/hal+json" | "application/json" => 3,
            "application/*" => 2,
            "*/*" => 1,
            _ => 0,
        };
        if html_spec > html.0 {
            html = (html_spec, q);
        }
        if json_spec > json.0 {
            json = (json_spec, q);
        }
    }
    html.1 > json.1
}

/// `If-None-Match` against our (strong) ETag: `*` or any listed tag, compared weakly as
/// RFC 9110 §13.1.2 asks (a `W/` prefix is ignored).
pub fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// A resource of the snapshot, found by its path.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'s> {
    Collection,
    Repository(&'s Repository),
    /// Also for a repository whose tags are unknown (its scan failed).
    Tags(&'s Repository),
    Tag(&'s Repository, &'s Tag),
    Namespaces,
    /// An index into `Usage::namespaces`.
    Namespace(u32),
}

impl Resource<'_> {
    /// The sort keys of the list this resource's document shows (or would show when
    /// embedding): a tag's are those of its siblings.
    pub fn sort_keys(&self) -> &'static [SortKey] {
        match self {
            Resource::Collection | Resource::Namespace(_) => order::REPOSITORY_KEYS,
            Resource::Repository(_) | Resource::Tags(..) | Resource::Tag(..) => order::TAG_KEYS,
            Resource::Namespaces => order::NAMESPACE_KEYS,
        }
    }
}

/// Finds the namespace at `rest` (the encoded path after `/namespaces/`; `/` raw or as
/// `%2F`), or the collection of namespaces.
pub fn resolve_namespace<'s>(
    usage: &Usage,
    base: &str,
    rest: Option<&str>,
) -> Result<Resource<'s>, NotFound> {
    let Some(rest) = rest else {
        return Ok(Resource::Namespaces);
    };
    let name = decode_path(rest).map_err(NotFound::BadPath)?;
    usage
        .namespace(&name)
        .map(Resource::Namespace)
        .ok_or_else(|| NotFound::Missing(Href::repository(base, &name).to_string()))
}

/// Why a path names nothing: a decoding problem (400), or no such resource (404 with
/// the path written as in links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotFound {
    BadPath(DecodeError),
    Missing(String),
}

/// Finds the resource at `rest` (the encoded path after `/repositories/`). Names may
/// contain `/`, raw or as `%2F`, and a repository may itself end in `/tags`, so the path
/// is decoded first and then matched against the names the snapshot really has: a
/// repository, else a tag (the last segment: tag names have no `/`) of the repository
/// before `/tags/`, else the tags collection of the repository before `/tags`.
pub fn resolve<'s>(
    snapshot: &'s Snapshot,
    base: &str,
    rest: Option<&str>,
) -> Result<Resource<'s>, NotFound> {
    let Some(rest) = rest else {
        return Ok(Resource::Collection);
    };
    let name = decode_path(rest).map_err(NotFound::BadPath)?;
    let name: &str = &name;
    if let Some(repo) = snapshot.repository(name) {
        return Ok(Resource::Repository(repo));
    }
    let as_tag = name
        .rsplit_once('/')
        .and_then(|(before, tag)| Some((before.strip_suffix("/tags")?, tag)));
    let as_tags = name.strip_suffix("/tags");
    if let Some((repo_name, tag_name)) = as_tag {
        if let Some(repo) = snapshot.repository(repo_name) {
            if let Some(tag) = repo.tag(tag_name) {
                return Ok(Resource::Tag(repo, tag));
            }
        }
    }
    if let Some(repo_name) = as_tags {
        if let Some(repo) = snapshot.repository(repo_name) {
            return Ok(Resource::Tags(repo));
        }
    }
    // Not found: name the path the way the original's routes would have split it.
    let href = match (as_tag, as_tags) {
        (Some((repo_name, tag_name)), _) => Href::tag(base, repo_name, tag_name),
        (None, Some(repo_name)) => Href::tags(base, repo_name),
        (None, None) => Href::repository(base, name),
    };
    Err(NotFound::Missing(href.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Builder, ScannedTag};

    #[test]
    fn targets_and_routes() {
        assert_eq!(
            split_target("/repositories?embed=1"),
            ("/repositories", "embed=1")
        );
        assert_eq!(split_target("/a#frag"), ("/a", ""));
        assert_eq!(split_target("HTTP://host:80/health?x"), ("/health", "x"));
        assert_eq!(split_target("http://host"), ("/", ""));
        assert_eq!(route("", "/health"), Route::Health);
        assert_eq!(route("/x/y", "/x/y/auth_token"), Route::AuthToken);
        assert_eq!(route("/x/y", "/auth_token"), Route::Unknown);
        assert_eq!(route("/x", "/xrepositories"), Route::Unknown);
        assert_eq!(route("", "/"), Route::Root);
        assert_eq!(route("/x", "/x"), Route::Root);
        assert_eq!(route("/x", "/x/"), Route::Root);
        assert_eq!(route("/x", "/"), Route::Unknown);
        assert_eq!(route("", "/dashboard/app.1.js"), Route::Asset("app.1.js"));
        assert_eq!(
            route("", "/images/a/b"),
            Route::Api {
                collection: Collection::Images,
                rest: Some("a/b")
            }
        );
        assert_eq!(
            route("", "/repositories"),
            Route::Api {
                collection: Collection::Repositories,
                rest: None
            }
        );
        assert_eq!(route("", "/repositories/"), Route::Unknown);
        assert_eq!(route("", "/repositoriesx"), Route::Unknown);
    }

    #[test]
    fn embed_and_links_as_the_original_reads_them() {
        for (value, depth) in [
            ("0", 0),
            ("1", 1),
            ("2", 2),
            (" 3 ", 3),
            ("+2", 2),
            ("1_0", 3),
            ("99999999999999999999999", 3),
            ("-1", 0),
            ("-0", 0),
            ("true", 3),
            ("Yes", 3),
            ("T", 3),
            ("y", 3),
            ("false", 0),
            ("", 0),
            ("1__0", 0),
            ("_1", 0),
            ("1.5", 0),
        ] {
            assert_eq!(parse_embed(value), depth, "{value:?}");
        }
        let o = parse_options("links=TRUE&embed=2&embed=0").unwrap();
        assert_eq!(
            o,
            Options {
                depth: 2,
                links: true,
                ..Options::default()
            }
        );
        assert_eq!(
            parse_options("links=on").unwrap(),
            Options {
                depth: 0,
                links: false,
                ..Options::default()
            }
        );
        assert_eq!(
            parse_options("embed=%74rue&links=1").unwrap(),
            Options {
                depth: 3,
                links: true,
                ..Options::default()
            }
        );
        assert_eq!(
            parse_options("").unwrap(),
            Options {
                depth: 0,
                links: false,
                ..Options::default()
            }
        );
        assert_eq!(
            parse_options("links").unwrap(),
            Options {
                depth: 0,
                links: false,
                ..Options::default()
            }
        );
    }

    #[test]
    fn accept_negotiation() {
        assert!(!prefers_html(None));
        assert!(!prefers_html(Some("*/*")));
        assert!(!prefers_html(Some("application/json")));
        assert!(prefers_html(Some("text/html")));
        assert!(prefers_html(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!prefers_html(Some("text/html;q=0.5, application/hal+json")));
        assert!(!prefers_html(Some("text/html, application/json")));
        assert!(!prefers_html(Some("text/html;q=garbage")));
        assert!(!prefers_html(Some("\u{1}\u{2};;;,,")));
    }

    #[test]
    fn if_none_match() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("\"x\", W/\"abc\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abcd\"", "\"abc\""));
        assert!(!none_match("", "\"abc\""));
    }

    fn snapshot() -> Snapshot {
        let tag = |n: &str| ScannedTag {
            name: n.into(),
            digest: None,
            layers: Vec::new().into(),
        };
        let mut b = Builder::default();
        b.add_repository("group/app", Some(vec![tag("v1"), tag("tags")]), None);
        b.add_repository("a/tags", Some(vec![tag("x")]), None);
        b.add_repository("a", Some(vec![tag("y")]), None);
        b.add_repository("broken", None, Some("boom".into()));
        b.finish(0.0)
    }

    #[test]
    fn list_parameters_are_parsed_once_and_refused_with_what_is_accepted() {
        let o = parse_options("sort=-exclusive_size&limit=20&q=Ab%2Fc&page=2&per_page=5&sort=name")
            .unwrap();
        assert_eq!(
            o.list.sort,
            Some(order::Sort {
                key: SortKey::ExclusiveSize,
                descending: true
            })
        );
        assert_eq!(
            (o.list.limit, o.list.page, o.list.per_page),
            (Some(20), Some(2), Some(5))
        );
        assert_eq!(o.list.q.as_deref(), Some("ab/c"));
        assert_eq!(
            o.query_for_page(3),
            "sort=-exclusive_size&limit=20&q=ab%2Fc&page=3&per_page=5"
        );
        let e = parse_options("embed=1&links=1&per_page=10")
            .unwrap()
            .query_for_page(1);
        assert_eq!(e, "embed=1&links=true&page=1&per_page=10");
        assert!(!parse_options("embed=1&x=2").unwrap().list.is_set());
        let err = |q: &str| parse_options(q).unwrap_err().message(order::TAG_KEYS);
        assert!(
            err("sort=bogus").contains("accepted: name, -name, size"),
            "{}",
            err("sort=bogus")
        );
        assert!(err("per_page=0").contains("at least 1"));
        assert!(err("page=0").contains("page"));
        assert!(err("limit=-1").contains("limit"));
        assert!(err("limit=").contains("whole number"));
        assert_eq!(
            parse_options("limit=99999999999999999999999")
                .unwrap()
                .list
                .limit,
            Some(u64::MAX)
        );
    }

    #[test]
    fn namespace_routes() {
        assert_eq!(route("", "/namespaces"), Route::Namespaces { rest: None });
        assert_eq!(
            route("/p", "/p/namespaces/a%2Fb"),
            Route::Namespaces {
                rest: Some("a%2Fb")
            }
        );
        assert_eq!(route("", "/namespaces/"), Route::Unknown);
        assert_eq!(route("", "/namespacesx"), Route::Unknown);
        let mut b = Builder::default();
        b.add_repository("g/sub/app", Some(vec![]), None);
        let s = b.finish(0.0);
        let u = Usage::of(&s);
        let name = |rest| match resolve_namespace(&u, "/n", Some(rest)) {
            Ok(Resource::Namespace(n)) => u.namespaces()[n as usize].name.to_string(),
            Ok(_) => "other".into(),
            Err(NotFound::Missing(p)) => format!("404 {p}"),
            Err(NotFound::BadPath(e)) => format!("400 {e:?}"),
        };
        assert_eq!(name("g%2Fsub"), "g/sub");
        assert_eq!(name("g/sub"), "g/sub");
        assert_eq!(name("g/sub/app"), "404 /n/g%2Fsub%2Fapp");
        assert_eq!(name("bad%zz"), "400 BadEscape");
    }

    fn found(s: &Snapshot, rest: &str) -> String {
        match resolve(s, "/r", Some(rest)) {
            Ok(Resource::Collection) => "collection".into(),
            Ok(Resource::Repository(r)) => format!("repo {}", r.name),
            Ok(Resource::Tags(r)) => format!("tags {}", r.name),
            Ok(Resource::Tag(r, t)) => format!("tag {} {}", r.name, t.name),
            Err(NotFound::Missing(p)) => format!("404 {p}"),
            Err(NotFound::BadPath(e)) => format!("400 {e:?}"),
            Ok(Resource::Namespaces | Resource::Namespace(_)) => "namespace".into(),
        }
    }

    #[test]
    fn resolution_against_real_names() {
        let s = snapshot();
        assert_eq!(found(&s, "group/app"), "repo group/app");
        assert_eq!(found(&s, "group%2Fapp"), "repo group/app");
        assert_eq!(found(&s, "group%2fapp/tags"), "tags group/app");
        assert_eq!(found(&s, "group%2Fapp%2Ftags%2Fv1"), "tag group/app v1");
        assert_eq!(found(&s, "group/app/tags/tags"), "tag group/app tags");
        assert_eq!(found(&s, "a/tags"), "repo a/tags");
        assert_eq!(found(&s, "a/tags/tags"), "tags a/tags");
        assert_eq!(found(&s, "a/tags/tags/x"), "tag a/tags x");
        assert_eq!(found(&s, "a/tags/y"), "tag a y");
        assert_eq!(found(&s, "a/tags/nope"), "404 /r/a/tags/nope");
        assert_eq!(
            found(&s, "group/app/tags/nope"),
            "404 /r/group%2Fapp/tags/nope"
        );
        assert_eq!(found(&s, "nope/x"), "404 /r/nope%2Fx");
        assert_eq!(found(&s, "nope/tags"), "404 /r/nope/tags");
        assert_eq!(found(&s, "broken/tags"), "tags broken");
        assert_eq!(found(&s, "broken/tags/v1"), "404 /r/broken/tags/v1");
        assert_eq!(found(&s, "group/app/tags/"), "404 /r/group%2Fapp/tags/");
        assert_eq!(found(&s, "%3Cscript%3E"), "404 /r/%3Cscript%3E");
        assert_eq!(found(&s, "bad%zz"), "400 BadEscape");
        assert_eq!(found(&s, "bad%ff"), "400 NotUtf8");
    }

    #[test]
    fn request_counters_use_route_templates_never_paths() {
        let t = |path: &str| TEMPLATES[template(&route("/p", path))];
        assert_eq!(t("/p/health"), "/health");
        assert_eq!(t("/p/metrics"), "/metrics");
        assert_eq!(t("/p/history"), "/history");
        assert_eq!(t("/p/repositories"), "/repositories");
        assert_eq!(t("/p/repositories/g/app"), "/repositories/{name}");
        assert_eq!(
            t("/p/repositories/g%2Fapp%2Ftags"),
            "/repositories/{name}/tags"
        );
        assert_eq!(
            t("/p/repositories/g/app/tags/v1"),
            "/repositories/{name}/tags/{tag}"
        );
        assert_eq!(
            t("/p/repositories/g%2fapp%2ftags%2fv1"),
            "/repositories/{name}/tags/{tag}"
        );
        assert_eq!(
            t("/p/repositories/g/app/history"),
            "/repositories/{name}/history"
        );
        assert_eq!(t("/p/images/g/app/history"), "/images/{name}");
        assert_eq!(t("/p/images/g/app/tags"), "/images/{name}/tags");
        assert_eq!(t("/p/namespaces"), "/namespaces");
        assert_eq!(t("/p/namespaces/g/sub"), "/namespaces/{path}");
        assert_eq!(
            t("/p/namespaces/g%2Fsub%2Fhistory"),
            "/namespaces/{path}/history"
        );
        assert_eq!(t("/p/cleanup"), "/cleanup");
        assert_eq!(
            t("/p/repositories/g/app/cleanup"),
            "/repositories/{name}/cleanup"
        );
        assert_eq!(t("/p/namespaces/g%2Fcleanup"), "/namespaces/{path}/cleanup");
        assert_eq!(t("/p/images/g/app/cleanup"), "/images/{name}");
        assert_eq!(t("/p/repositories/g/xcleanup"), "/repositories/{name}");
        assert_eq!(t("/p/nope"), "unmatched");
        assert_eq!(t("/health"), "unmatched", "outside the prefix");
        // A name like `xtags` is not a tags collection.
        assert_eq!(t("/p/repositories/g/xtags"), "/repositories/{name}");
    }

    #[test]
    fn days_are_whole_positive_numbers() {
        assert_eq!(parse_days(""), Ok(None));
        assert_eq!(parse_days("embed=1&days=30"), Ok(Some(30)));
        assert_eq!(parse_days("days=%207"), Ok(Some(7)));
        for bad in [
            "days=0",
            "days=-1",
            "days=x",
            "days=",
            "days=1.5",
            "days=99999999999",
        ] {
            assert!(parse_days(bad).unwrap_err().contains("at least 1"), "{bad}");
        }
    }
}

#[cfg(test)]
mod contract {
    use super::TEMPLATES;

    /// Every route the service answers is described by docs/openapi.yaml (as served,
    /// docs/openapi.json), so a client generated from the document, or schemathesis, sees
    /// all of them. The exceptions say why.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let paths = doc["paths"].as_object().expect("paths");
        for template in TEMPLATES {
            let excepted = match *template {
                // not a route: what the metrics count everything else as
                "unmatched" => true,
                // the dashboard's script and style sheet, not part of the API
                "/dashboard/{asset}" => true,
                // the 0.1.x name of /repositories: the same documents under another prefix
                t if t.starts_with("/images") => {
                    let twin = t.replacen("/images", "/repositories", 1);
                    assert!(paths.contains_key(&twin), "{t}'s twin {twin} is described");
                    true
                }
                _ => false,
            };
            assert!(
                excepted || paths.contains_key(*template),
                "the service answers {template}, which docs/openapi.yaml does not describe"
            );
        }
        for path in paths.keys() {
            assert!(
                TEMPLATES.contains(&path.as_str()),
                "docs/openapi.yaml describes {path}, which the router does not know"
            );
        }
    }
}
