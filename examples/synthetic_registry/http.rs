//! Requests to replies: the registry API v2 routes, the token endpoint and the control
//! endpoints, with Distribution's status codes, headers and JSON errors.

use gitlab_registry_usage_rest::percent::{decode_path, decode_query_component};
use std::io::{Cursor, Empty};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::auth::{Auth, Mode, Need};
use crate::expected::expected;
use crate::model::{digest_string, Blob, Registry, OCI_INDEX, OCI_MANIFEST};

/// Distribution's limit on `n`.
const MAX_PAGE: usize = 1000;
/// Distribution's catalog page size when `n` is absent.
const DEFAULT_CATALOG_PAGE: usize = 100;

pub struct Context {
    pub registry: Registry,
    pub auth: Auth,
    pub stats: Stats,
    pub latency: Duration,
}

/// Requests counted by kind (control endpoints are not counted).
#[derive(Default)]
pub struct Stats {
    token: AtomicU64,
    catalog: AtomicU64,
    tags: AtomicU64,
    manifest_get: AtomicU64,
    manifest_head: AtomicU64,
    blob_head: AtomicU64,
    blob_get: AtomicU64,
    other: AtomicU64,
    /// Requests refused with 401, whatever their kind.
    unauthorized: AtomicU64,
}

impl Stats {
    fn counters(&self) -> [(&'static str, &AtomicU64); 9] {
        [
            ("token", &self.token),
            ("catalog", &self.catalog),
            ("tags", &self.tags),
            ("manifest_get", &self.manifest_get),
            ("manifest_head", &self.manifest_head),
            ("blob_head", &self.blob_head),
            ("blob_get", &self.blob_get),
            ("other", &self.other),
            ("unauthorized", &self.unauthorized),
        ]
    }

    /// The counters as JSON; `reset` zeroes them at the same time.
    fn to_json(&self, reset: bool) -> serde_json::Value {
        let map = self
            .counters()
            .into_iter()
            .map(|(name, counter)| {
                let value = if reset {
                    counter.swap(0, Ordering::Relaxed)
                } else {
                    counter.load(Ordering::Relaxed)
                };
                (name.to_string(), json!(value))
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

enum Body {
    Bytes(Vec<u8>),
    /// Only a length: for HEAD, where no body is sent.
    Length(u64),
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Reply {
    fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![(
                "Content-Type",
                "application/json; charset=utf-8".to_string(),
            )],
            body: Body::Bytes(serde_json::to_vec(value).expect("serialisable")),
        }
    }

    /// Distribution's error body: `{"errors": [{"code", "message", "detail"}]}`.
    fn error(status: u16, code: &str, message: &str, detail: serde_json::Value) -> Reply {
        let body = json!({"errors": [{"code": code, "message": message, "detail": detail}]});
        Reply::json(status, &body)
    }

    /// What Go's router answers for an unknown path.
    fn page_not_found() -> Reply {
        Reply {
            status: 404,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
            body: Body::Bytes(b"404 page not found\n".to_vec()),
        }
    }

    fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

enum Route<'a> {
    Api(Api<'a>),
    Token,
    Control(&'a str),
    Unknown,
}

/// The registry API v2 routes.
enum Api<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
}

fn route(path: &str) -> Route<'_> {
    if path == "/jwt/auth" {
        return Route::Token;
    }
    if let Some(action) = path.strip_prefix("/control/") {
        return Route::Control(action);
    }
    let Some(rest) = path.strip_prefix("/v2") else {
        return Route::Unknown;
    };
    if rest.is_empty() || rest == "/" {
        return Route::Api(Api::Base);
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Route::Unknown;
    };
    let api = if rest == "_catalog" {
        Api::Catalog
    } else if let Some(name) = rest.strip_suffix("/tags/list") {
        Api::Tags(name)
    } else if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        Api::Manifest(name, reference)
    } else if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        Api::Blob(name, digest)
    } else {
        return Route::Unknown;
    };
    Route::Api(api)
}

/// Answers one request (sleeping `--latency-ms` first, except for control endpoints).
pub fn serve(context: &Context, request: Request) {
    let (path, query) = match request.url().split_once('?') {
        Some((path, query)) => (decode_path_lenient(path), query.to_string()),
        None => (decode_path_lenient(request.url()), String::new()),
    };
    let query = parse_query(&query);
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .filter(|h| h.field.equiv(name))
            .map(|h| h.value.as_str())
            .collect::<Vec<&str>>()
    };
    let authorization = header("Authorization").first().copied();
    let accept = header("Accept").join(",");
    let method = request.method().clone();
    let route = route(&path);

    if let Route::Control(action) = route {
        return send(request, control(context, &method, action, &query));
    }
    count(&context.stats, &route, &method);
    if !context.latency.is_zero() {
        std::thread::sleep(context.latency);
    }
    let reply = match route {
        Route::Api(api) => registry(context, &method, api, &query, authorization, &accept),
        Route::Token if context.auth.mode == Mode::Token => {
            token(context, &method, &query, authorization)
        }
        Route::Token | Route::Control(_) | Route::Unknown => Reply::page_not_found(),
    };
    if reply.status == 401 {
        context.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
    }
    send(request, reply);
}

fn count(stats: &Stats, route: &Route, method: &Method) {
    let counter = match (route, method) {
        (Route::Token, _) => &stats.token,
        (Route::Api(Api::Catalog), _) => &stats.catalog,
        (Route::Api(Api::Tags(_)), _) => &stats.tags,
        (Route::Api(Api::Manifest(..)), Method::Get) => &stats.manifest_get,
        (Route::Api(Api::Manifest(..)), Method::Head) => &stats.manifest_head,
        (Route::Api(Api::Blob(..)), Method::Head) => &stats.blob_head,
        (Route::Api(Api::Blob(..)), Method::Get) => &stats.blob_get,
        _ => &stats.other,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

fn registry(
    context: &Context,
    method: &Method,
    api: Api,
    query: &[(String, String)],
    authorization: Option<&str>,
    accept: &str,
) -> Reply {
    let need = match api {
        Api::Base => Need::Login,
        Api::Catalog => Need::Catalog,
        Api::Tags(name) | Api::Manifest(name, _) | Api::Blob(name, _) => Need::Pull(name),
    };
    if !matches!(method, Method::Get | Method::Head) {
        return Reply::error(
            405,
            "UNSUPPORTED",
            "The operation is unsupported.",
            json!(null),
        );
    }
    if let Err(denied) = context.auth.check(authorization, need) {
        return Reply::error(
            401,
            "UNAUTHORIZED",
            "authentication required",
            need.detail(),
        )
        .header("WWW-Authenticate", context.auth.challenge(&denied, need));
    }
    let registry = &context.registry;
    let find = |name: &str| {
        registry.find(name).ok_or_else(|| {
            let message = "repository name not known to registry";
            Reply::error(404, "NAME_UNKNOWN", message, json!({ "name": name }))
        })
    };
    let result = match api {
        Api::Base => Ok(Reply::json(200, &json!({}))),
        Api::Catalog => catalog(registry, query),
        Api::Tags(name) => find(name).and_then(|repo| tags(registry, repo, name, query)),
        Api::Manifest(name, reference) => {
            find(name).and_then(|repo| manifest(registry, repo, reference, method, accept))
        }
        Api::Blob(name, digest) => find(name).and_then(|repo| blob(registry, repo, digest, method)),
    };
    result.unwrap_or_else(|reply| reply)
}

fn token(
    context: &Context,
    method: &Method,
    query: &[(String, String)],
    authorization: Option<&str>,
) -> Reply {
    if *method != Method::Get {
        return Reply::json(405, &json!({"error": "use GET"}));
    }
    let scopes: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' '))
        .filter(|scope| !scope.is_empty())
        .collect();
    let exists = |name: &str| context.registry.find(name).is_some();
    match context.auth.issue(authorization, &scopes, exists) {
        Ok(body) => Reply::json(200, &body),
        Err(()) => {
            let message = "HTTP Basic: Access denied. Check your username and password.";
            Reply::error(401, "UNAUTHORIZED", message, json!(null))
                .header("WWW-Authenticate", "Basic realm=\"GitLab\"".to_string())
        }
    }
}

/// `n` and `last` as Distribution reads them: `n` above 1000, negative or not a number is
/// PAGINATION_NUMBER_INVALID; `default` applies when `n` is absent.
fn page(query: &[(String, String)], default: usize) -> Result<(usize, Option<&str>), Reply> {
    let n = match query_value(query, "n") {
        None | Some("") => default,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (0..=MAX_PAGE as i64).contains(&n) => n as usize,
            _ => {
                let message = "invalid number of results requested";
                return Err(Reply::error(
                    400,
                    "PAGINATION_NUMBER_INVALID",
                    message,
                    json!({"n": text}),
                ));
            }
        },
    };
    Ok((
        n,
        query_value(query, "last").filter(|last| !last.is_empty()),
    ))
}

/// The reply for one page, with `Link: <path?last=..&n=..>; rel="next"` when more remain.
fn paged(body: serde_json::Value, path: &str, next: Option<(&str, usize)>) -> Reply {
    let reply = Reply::json(200, &body);
    match next {
        Some((last, n)) => reply.header(
            "Link",
            format!("<{path}?last={}&n={n}>; rel=\"next\"", query_escape(last)),
        ),
        None => reply,
    }
}

fn catalog(registry: &Registry, query: &[(String, String)]) -> Result<Reply, Reply> {
    let (n, last) = page(query, DEFAULT_CATALOG_PAGE)?;
    let repositories = registry.repositories();
    let start = last.map_or(0, |last| {
        repositories.partition_point(|r| r.name.as_str() <= last)
    });
    let end = (start + n).min(repositories.len());
    let names: Vec<&str> = repositories[start..end]
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let next = (end < repositories.len() && n > 0).then(|| (names[names.len() - 1], n));
    Ok(paged(
        json!({ "repositories": names }),
        "/v2/_catalog",
        next,
    ))
}

/// Tags in storage order; without `n` all of them (as Distribution does); `last` resumes
/// after that tag's position in this order.
fn tags(
    registry: &Registry,
    repo: usize,
    name: &str,
    query: &[(String, String)],
) -> Result<Reply, Reply> {
    if registry.tag_count(repo) == 0 {
        return Ok(Reply::json(200, &json!({ "name": name, "tags": null })));
    }
    let (n, last) = page(query, usize::MAX)?;
    let names: Vec<String> = registry
        .listing_order(repo)
        .into_iter()
        .map(|tag| registry.tag_name(repo, tag))
        .collect();
    let start = match last {
        None => 0,
        Some(last) => names
            .iter()
            .position(|tag| tag == last)
            .map_or(names.len(), |i| i + 1),
    };
    let end = start.saturating_add(n).min(names.len());
    let page = &names[start..end];
    let next = (end < names.len() && n > 0).then(|| (page[page.len() - 1].as_str(), n));
    let path = format!("/v2/{name}/tags/list");
    Ok(paged(json!({ "name": name, "tags": page }), &path, next))
}

fn manifest(
    registry: &Registry,
    repo: usize,
    reference: &str,
    method: &Method,
    accept: &str,
) -> Result<Reply, Reply> {
    let unknown = |detail: serde_json::Value| {
        Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown", detail)
    };
    let (id, head) = registry.lookup(repo, reference).ok_or_else(|| {
        let name = &registry.repositories()[repo].name;
        match reference.starts_with("sha256:") {
            true => unknown(json!({ "Name": name, "Revision": reference })),
            false => unknown(json!({ "Name": name, "Tag": reference })),
        }
    })?;
    // Like Distribution: OCI content only for clients that say they accept it.
    let accepted = |media_type: &str| {
        accept
            .split(',')
            .any(|item| item.split(';').next().unwrap_or("").trim() == media_type)
    };
    for oci in [OCI_MANIFEST, OCI_INDEX] {
        if head.media_type == oci && !accepted(oci) {
            let message = format!("{oci} found, but the Accept header does not include it");
            return Err(unknown(json!(message)));
        }
    }
    let body = if *method == Method::Head {
        Body::Length(head.len as u64)
    } else {
        Body::Bytes(registry.render(id).body)
    };
    let digest = digest_string(&head.digest);
    Ok(Reply {
        status: 200,
        headers: vec![
            ("Content-Type", head.media_type.to_string()),
            ("Docker-Content-Digest", digest.clone()),
            ("Etag", format!("\"{digest}\"")),
        ],
        body,
    })
}

fn blob(registry: &Registry, repo: usize, digest: &str, method: &Method) -> Result<Reply, Reply> {
    let found = registry.find_blob(repo, digest).ok_or_else(|| {
        Reply::error(
            404,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            json!(digest),
        )
    })?;
    let body = match (found, method) {
        (Blob::Layer(size), Method::Head) => Body::Length(size),
        (Blob::Config(config), Method::Head) => Body::Length(config.len() as u64),
        (Blob::Config(config), _) => Body::Bytes(config),
        (Blob::Layer(_), _) => {
            let message = "the synthetic registry serves no layer content, only HEAD";
            return Err(Reply::error(501, "UNSUPPORTED", message, json!(digest)));
        }
    };
    Ok(Reply {
        status: 200,
        headers: vec![
            ("Content-Type", "application/octet-stream".to_string()),
            ("Docker-Content-Digest", digest.to_string()),
        ],
        body,
    })
}

/// The unauthenticated bench/demo endpoints.
fn control(context: &Context, method: &Method, action: &str, query: &[(String, String)]) -> Reply {
    let detail = query_value(query, "detail").is_some_and(|v| matches!(v, "1" | "true" | "yes"));
    match (method, action) {
        (Method::Get, "stats") => Reply::json(200, &context.stats.to_json(false)),
        (Method::Post, "reset-stats") => Reply::json(200, &context.stats.to_json(true)),
        (Method::Get, "expected") => {
            let totals = expected(&context.registry, detail);
            Reply::json(200, &serde_json::to_value(totals).expect("serialisable"))
        }
        (Method::Post, "move") => {
            let percent = query_value(query, "percent").and_then(|p| p.parse::<f64>().ok());
            let Some(percent) = percent.filter(|p| (0.0..=100.0).contains(p)) else {
                return Reply::json(
                    400,
                    &json!({"error": "percent must be a number from 0 to 100"}),
                );
            };
            let (moved, round) = context.registry.move_tags(percent);
            let totals = expected(&context.registry, detail);
            Reply::json(
                200,
                &json!({"moved": moved, "round": round, "expected": totals}),
            )
        }
        (_, "stats" | "reset-stats" | "expected" | "move") => {
            Reply::json(405, &json!({"error": "method not allowed"}))
        }
        _ => Reply::page_not_found(),
    }
}

fn send(request: Request, reply: Reply) {
    let mut headers: Vec<Header> = reply
        .headers
        .iter()
        .filter_map(|(name, value)| Header::from_bytes(name.as_bytes(), value.as_bytes()).ok())
        .collect();
    headers.extend(Header::from_bytes(
        "Docker-Distribution-Api-Version",
        "registry/2.0",
    ));
    let status = StatusCode(reply.status);
    // Content-Length always, never chunked: clients read sizes from HEAD replies.
    let result = match reply.body {
        Body::Bytes(bytes) => {
            let len = bytes.len();
            let response = Response::new(status, headers, Cursor::new(bytes), Some(len), None);
            request.respond(response.with_chunked_threshold(usize::MAX))
        }
        Body::Length(len) => {
            let response: Response<Empty> =
                Response::new(status, headers, std::io::empty(), Some(len as usize), None);
            request.respond(response.with_chunked_threshold(usize::MAX))
        }
    };
    // A client that hung up is its own business.
    drop(result);
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                decode_query_component(key).into_owned(),
                decode_query_component(value).into_owned(),
            )
        })
        .collect()
}

/// The service's strict path decoding; a malformed escape is kept as it is (the route
/// then simply does not match).
fn decode_path_lenient(path: &str) -> String {
    decode_path(path)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| path.to_string())
}

/// Go's `url.QueryEscape`, which Distribution uses for `last` in Link headers.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
