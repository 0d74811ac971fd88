//! From a request line and a few headers to what was asked for: the route, the resource
//! within the snapshot, the `embed`/`links` options, the preferred format and whether the
//! client's cached copy is still good. Pure functions over strings and a `Snapshot`, so
//! every rule is unit-tested without a socket.

use std::borrow::Cow;

use crate::snapshot::{Repository, Snapshot, Tag};

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
    /// `/repositories` (rest `None`) or `/repositories/<rest>`, `rest` still encoded.
    Api {
        collection: Collection,
        rest: Option<&'a str>,
    },
    /// `/cleanup` (`namespace: None`) or `/namespaces/<path>/cleanup`, `path` still
    /// encoded. (`/repositories/<name>/cleanup` is an `Api` path: only the snapshot can
    /// tell it from a repository whose name ends in `/cleanup`.)
    Cleanup {
        namespace: Option<&'a str>,
    },
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
        "/cleanup" => return Route::Cleanup { namespace: None },
        _ => {}
    }
    if let Some(namespace) = path
        .strip_prefix("/namespaces/")
        .and_then(|p| p.strip_suffix("/cleanup"))
        .filter(|n| !n.is_empty())
    {
        return Route::Cleanup {
            namespace: Some(namespace),
        };
    }
    for (name, collection) in [
        ("/repositories", Collection::Repositories),
        ("/images", Collection::Images),
    ] {
        if let Some(after) = path.strip_prefix(name) {
            if after.is_empty() {
                return Route::Api {
                    collection,
                    rest: None,
                };
            }
            if let Some(rest) = after.strip_prefix('/') {
                if !rest.is_empty() {
                    return Route::Api {
                        collection,
                        rest: Some(rest),
                    };
                }
            }
        }
    }
    Route::Unknown
}

/// The options of the original's query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Embedding depth, clamped to [`MAX_DEPTH`] (deeper renders the same document).
    pub depth: u8,
    pub links: bool,
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

/// `embed` and `links` from a query string; the first occurrence of each counts (Flask's
/// `request.args.get`), unknown parameters are ignored.
pub fn parse_options(query: &str) -> Options {
    let mut embed: Option<Cow<'_, str>> = None;
    let mut links: Option<Cow<'_, str>> = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query_component(key);
        let slot = match key.as_ref() {
            "embed" => &mut embed,
            "links" => &mut links,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(decode_query_component(value));
        }
    }
    Options {
        depth: embed.as_deref().map_or(0, parse_embed),
        links: links.as_deref().is_some_and(is_true_string),
    }
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
        let o = parse_options("links=TRUE&embed=2&embed=0");
        assert_eq!(
            o,
            Options {
                depth: 2,
                links: true
            }
        );
        assert_eq!(
            parse_options("links=on"),
            Options {
                depth: 0,
                links: false
            }
        );
        assert_eq!(
            parse_options("embed=%74rue&links=1"),
            Options {
                depth: 3,
                links: true
            }
        );
        assert_eq!(
            parse_options(""),
            Options {
                depth: 0,
                links: false
            }
        );
        assert_eq!(
            parse_options("links"),
            Options {
                depth: 0,
                links: false
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

    fn found(s: &Snapshot, rest: &str) -> String {
        match resolve(s, "/r", Some(rest)) {
            Ok(Resource::Collection) => "collection".into(),
            Ok(Resource::Repository(r)) => format!("repo {}", r.name),
            Ok(Resource::Tags(r)) => format!("tags {}", r.name),
            Ok(Resource::Tag(r, t)) => format!("tag {} {}", r.name, t.name),
            Err(NotFound::Missing(p)) => format!("404 {p}"),
            Err(NotFound::BadPath(e)) => format!("400 {e:?}"),
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
}
