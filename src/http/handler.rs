//! What each request gets: the decisions of the API (auth before anything about the
//! data, status codes, bodies, conditional requests), independent of the HTTP library.
//!
//! `App::handle` answers everything that needs no outside system directly. A login is
//! handed back as [`Outcome::Login`] so that the server runs it on the login threads: an
//! LDAP round trip or a bcrypt run takes far longer than any other request, and must not
//! hold up the workers that serve the data.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::jwt::TokenError;
use crate::auth::{basic::parse_basic, LoginError};
use crate::snapshot::Snapshot;

use super::cache::{Body, ETag, Key, Rendered, ResourceKey};
use super::hal::{self, write_json_f64, write_json_string, Json, Sink, View};
use super::html::Html;
use super::router::{self, Collection, NotFound, Options, Resource, Route};
use super::App;

/// Longest request target served; longer ones get 414. Names are at most 255 bytes
/// (Distribution's limit), so even fully percent-encoded paths stay far below this.
pub const MAX_TARGET: usize = 8 * 1024;

/// Logins from one client address that may run at the same time. The limiter counts
/// failures only after they happened; without this cap a client could start a hundred
/// guesses in parallel before the first failure is recorded.
const LOGINS_PER_CLIENT: u32 = 2;

/// The request methods the API distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    Other,
}

/// The parts of a request the API looks at.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'r> {
    pub method: Method,
    /// The request target as received (path and query, still encoded).
    pub target: &'r str,
    pub authorization: Option<&'r str>,
    pub accept: Option<&'r str>,
    pub if_none_match: Option<&'r str>,
    pub forwarded_for: Option<&'r str>,
    /// The address the connection comes from.
    pub peer: IpAddr,
}

/// A complete answer, ready to be written by the server (which adds the CORS and
/// `nosniff` headers every response carries).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Body,
    pub etag: Option<ETag>,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
}

pub const HAL_JSON: &str = "application/hal+json";
pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";
/// The HTML view needs no script, image, font or frame; only its inline style.
const HTML_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
/// The realm of the original service, which clients may match on.
const BASIC_CHALLENGE: &str = "Basic realm=\"Authentication Required\"";
const READ_METHODS: &str = "GET, HEAD, OPTIONS";
const LOGIN_METHODS: &str = "GET, HEAD, POST, OPTIONS";

impl Reply {
    fn new(status: u16, content_type: &'static str, body: Body) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            body,
            etag: None,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// `{"message": "..."}`, the shape of every error of the original but the token ones.
    pub fn message(status: u16, message: &str) -> Reply {
        let mut out = Vec::with_capacity(message.len() + 16);
        out.extend_from_slice(b"{\"message\":");
        write_json_string(&mut out, message);
        out.push(b'}');
        Reply::new(status, JSON, Body::Owned(out))
    }

    fn method_not_allowed(allow: &'static str) -> Reply {
        Reply::message(405, "The method is not allowed for the requested URL.")
            .header("Allow", allow)
    }

    fn not_found(path: &str) -> Reply {
        Reply::message(404, &format!("The resource \"{path}\" does not exist"))
    }

    /// The answer to a CORS preflight (and to any other OPTIONS request).
    fn preflight(allow: &'static str, cors: bool) -> Reply {
        let reply = Reply {
            status: 204,
            content_type: None,
            body: Body::Static(b""),
            etag: None,
            headers: Vec::new(),
        }
        .header("Allow", allow);
        if !cors {
            return reply;
        }
        reply
            .header("Access-Control-Allow-Methods", allow)
            .header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, If-None-Match",
            )
            .header("Access-Control-Max-Age", "86400")
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// Check these credentials (slow) and answer with [`App::login`].
    Login(LoginRequest),
}

/// A login to run on a login thread.
#[derive(Debug)]
pub struct LoginRequest {
    user: String,
    password: String,
    client: IpAddr,
    _slot: InFlightSlot,
}

/// The client's address for the login limiter. Behind a reverse proxy on the same host
/// every connection comes from loopback, which would make all users share one failure
/// count; so for loopback peers the last `X-Forwarded-For` entry (the one the proxy
/// appended) is used. A remote peer cannot choose its address this way.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
    if !peer.is_loopback() {
        return peer;
    }
    forwarded_for
        .and_then(|v| v.rsplit(',').next())
        .map(|last| last.trim().trim_start_matches('[').trim_end_matches(']'))
        .and_then(|last| last.parse().ok())
        .unwrap_or(peer)
}

/// Counts the logins running per client (IPv6 per /64, as the limiter counts).
#[derive(Debug, Default)]
pub struct InFlight {
    running: Mutex<HashMap<IpAddr, u32>>,
}

impl InFlight {
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<InFlightSlot> {
        let key = crate::auth::limiter::client_key(ip);
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(key).or_insert(0);
        if *n >= LOGINS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(InFlightSlot {
            owner: Arc::clone(self),
            key,
        })
    }
}

/// One running login; dropping it (answered, refused for a full queue, or abandoned at
/// shutdown) frees the client's slot.
#[derive(Debug)]
struct InFlightSlot {
    owner: Arc<InFlight>,
    key: IpAddr,
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        let mut running = self.owner.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// User names are chosen by the client: cap what goes into one log line.
fn for_log(user: &str) -> &str {
    match user.char_indices().nth(64) {
        Some((i, _)) => &user[..i],
        None => user,
    }
}

fn retry_after(wait: Duration) -> String {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        .max(1)
        .to_string()
}

impl App {
    /// Answers a request, or hands a login back to be run elsewhere.
    pub fn handle(&self, rq: &Incoming<'_>) -> Outcome {
        if rq.target.len() > MAX_TARGET {
            return Outcome::Reply(Reply::message(414, "The request URL is too long"));
        }
        let (path, query) = router::split_target(rq.target);
        let cors = !self.config.general.cors_origin.is_empty();
        let reply = match router::route(&self.config.general.server_prefix, path) {
            Route::Health => match rq.method {
                Method::Get | Method::Head => self.health(),
                Method::Options => Reply::preflight(READ_METHODS, cors),
                _ => Reply::method_not_allowed(READ_METHODS),
            },
            Route::AuthToken => match rq.method {
                Method::Get | Method::Head | Method::Post => return self.auth_token(rq),
                Method::Options => Reply::preflight(LOGIN_METHODS, cors),
                _ => Reply::method_not_allowed(LOGIN_METHODS),
            },
            route @ (Route::Api { .. } | Route::Unknown) => match rq.method {
                Method::Get | Method::Head => self.api(rq, route, path, query),
                Method::Options => Reply::preflight(READ_METHODS, cors),
                _ => Reply::method_not_allowed(READ_METHODS),
            },
        };
        Outcome::Reply(reply)
    }

    /// `/health`: for load balancers and orchestrators, so no auth, and nothing about the
    /// registry or LDAP beyond "there is data, this old".
    fn health(&self) -> Reply {
        let snapshot = self.snapshots.get();
        let mut out = Vec::with_capacity(96);
        let status = match &snapshot {
            Some(s) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                let age = ((now - s.timestamp).max(0.0) * 1000.0).round() / 1000.0;
                out.extend_from_slice(b"{\"status\":\"ok\",\"snapshot_age_seconds\":");
                write_json_f64(&mut out, age);
                out.extend_from_slice(b",\"timestamp\":");
                write_json_f64(&mut out, s.timestamp);
                out.push(b'}');
                200
            }
            None => {
                out.extend_from_slice(
                    b"{\"status\":\"starting\",\"snapshot_age_seconds\":null,\"timestamp\":null}",
                );
                503
            }
        };
        let reply = Reply::new(status, JSON, Body::Owned(out)).header("Cache-Control", "no-store");
        if status == 503 {
            reply.header("Retry-After", "5")
        } else {
            reply
        }
    }

    /// `/auth_token`, the cheap part: the Basic header, the limiter, the per-client cap.
    fn auth_token(&self, rq: &Incoming<'_>) -> Outcome {
        let Some((user, password)) = rq.authorization.and_then(parse_basic) else {
            return Outcome::Reply(
                Reply::message(
                    401,
                    "Log in with HTTP Basic authentication (user name and password)",
                )
                .header("WWW-Authenticate", BASIC_CHALLENGE),
            );
        };
        let client = client_address(rq.peer, rq.forwarded_for);
        if let Err(wait) = self.limiter.check(client) {
            crate::log!(
                info,
                "login",
                user = for_log(&user),
                client = client,
                outcome = "rate limited"
            );
            let seconds = retry_after(wait);
            return Outcome::Reply(
                Reply::message(
                    429,
                    &format!("Too many failed logins; try again in {seconds} seconds"),
                )
                .header("Retry-After", seconds),
            );
        }
        let Some(slot) = self.in_flight.acquire(client) else {
            crate::log!(
                info,
                "login",
                user = for_log(&user),
                client = client,
                outcome = "too many at once"
            );
            return Outcome::Reply(
                Reply::message(
                    429,
                    "Another login from your address is still running; try again in a moment",
                )
                .header("Retry-After", "1"),
            );
        };
        Outcome::Login(LoginRequest {
            user,
            password,
            client,
            _slot: slot,
        })
    }

    /// Checks the credentials (blocks: LDAP or bcrypt) and answers with a token or why not.
    pub fn login(&self, request: LoginRequest) -> Reply {
        let LoginRequest {
            user,
            password,
            client,
            _slot,
        } = request;
        let user_log = for_log(&user);
        match self.auth.login(&user, &password) {
            Ok(()) => {
                self.limiter.record_success(client);
                crate::log!(
                    info,
                    "login",
                    user = user_log,
                    client = client,
                    outcome = "ok"
                );
                let token = self.tokens.mint(&user);
                let mut out = Vec::with_capacity(token.len() + 20);
                out.extend_from_slice(b"{\"auth_token\":");
                write_json_string(&mut out, &token);
                out.push(b'}');
                Reply::new(200, JSON, Body::Owned(out)).header("Cache-Control", "no-store")
            }
            Err(LoginError::BadCredentials(reason)) => {
                self.limiter.record_failure(client);
                crate::log!(
                    info,
                    "login",
                    user = user_log,
                    client = client,
                    outcome = "rejected",
                    reason = reason
                );
                Reply::message(401, "Wrong user name or password")
                    .header("WWW-Authenticate", BASIC_CHALLENGE)
            }
            Err(LoginError::Unavailable(detail)) => {
                crate::log!(
                    warn,
                    "login",
                    user = user_log,
                    client = client,
                    outcome = "backend unavailable",
                    detail = detail
                );
                Reply::message(
                    503,
                    "The login service is unavailable at the moment; try again later",
                )
                .header("Retry-After", "10")
            }
        }
    }

    /// The answer when the login threads are all busy and their queue is full.
    pub fn logins_busy() -> Reply {
        Reply::message(
            503,
            "Too many logins at the moment; try again in a few seconds",
        )
        .header("Retry-After", "2")
    }

    /// Everything under `/repositories` (and unknown paths): token first, so that an
    /// unauthenticated client learns nothing, not even whether a name exists.
    fn api(&self, rq: &Incoming<'_>, route: Route<'_>, path: &str, query: &str) -> Reply {
        if let Err(e) = self.check_token(rq.authorization) {
            let missing = !rq.authorization.is_some_and(|a| !a.trim().is_empty());
            let challenge = if missing {
                "Bearer"
            } else {
                "Bearer error=\"invalid_token\""
            };
            let mut out = Vec::with_capacity(e.msg.len() + 12);
            out.extend_from_slice(b"{\"msg\":");
            write_json_string(&mut out, e.msg);
            out.push(b'}');
            return Reply::new(e.status, JSON, Body::Owned(out))
                .header("WWW-Authenticate", challenge);
        }
        let Route::Api { collection, rest } = route else {
            return Reply::not_found(path);
        };
        let Some(snapshot) = self.snapshots.get() else {
            return Reply::message(
                503,
                "No data yet: the first scan of the registry has not finished",
            )
            .header("Retry-After", "10");
        };
        let base = self.base(collection);
        let resource = match router::resolve(&snapshot, base, rest) {
            Ok(resource) => resource,
            Err(NotFound::BadPath(e)) => return Reply::message(400, e.message()),
            Err(NotFound::Missing(href)) => return Reply::not_found(&href),
        };
        let options = router::parse_options(query);
        let html = router::prefers_html(rq.accept);
        let (body, etag) = self.render(&snapshot, resource, collection, options, html);
        let content_type = if html { HTML } else { HAL_JSON };
        let fresh = rq
            .if_none_match
            .is_some_and(|inm| router::none_match(inm, etag.as_str()));
        let mut reply = if fresh {
            Reply {
                status: 304,
                content_type: None,
                body: Body::Static(b""),
                etag: Some(etag),
                headers: Vec::new(),
            }
        } else {
            Reply {
                etag: Some(etag),
                ..Reply::new(200, content_type, body)
            }
        };
        reply.headers.push(("Vary", Cow::Borrowed("Accept")));
        if html && !fresh {
            reply
                .headers
                .push(("Content-Security-Policy", Cow::Borrowed(HTML_CSP)));
        }
        reply
    }

    /// `Tokens::verify`, skipped for a header that passed it recently and has not expired.
    fn check_token(&self, authorization: Option<&str>) -> Result<(), TokenError> {
        if authorization.is_some_and(|a| self.verified.is_known_good(a)) {
            return Ok(());
        }
        self.tokens.verify(authorization)?;
        if let Some(a) = authorization {
            self.verified.remember(a);
        }
        Ok(())
    }

    /// The document of `resource`, from the cache when it is a large one.
    fn render(
        &self,
        snapshot: &Snapshot,
        resource: Resource<'_>,
        collection: Collection,
        options: Options,
        html: bool,
    ) -> (Body, ETag) {
        let view = View {
            base: self.base(collection),
            links: options.links,
        };
        let render = |capacity: usize| {
            let bytes = if html {
                let mut sink = Html::with_capacity(capacity + 1024);
                write_resource(&mut sink, snapshot, resource, view, options.depth);
                sink.into_bytes()
            } else {
                let mut sink = Json::with_capacity(capacity);
                write_resource(&mut sink, snapshot, resource, view, options.depth);
                sink.into_bytes()
            };
            let etag = ETag::of(&bytes);
            (bytes, etag)
        };
        match cache_key(resource, collection, options, html) {
            Some(key) => {
                let hit = self.cache.get_or_render(snapshot.generation, key, || {
                    let (mut bytes, etag) = render(64 * 1024);
                    // Kept for the whole generation: give back the growth slack (for a
                    // large buffer this is a remap, not a copy).
                    bytes.shrink_to_fit();
                    Rendered {
                        body: Arc::new(bytes),
                        etag,
                    }
                });
                (Body::Shared(hit.body), hit.etag)
            }
            None => {
                let (bytes, etag) = render(256);
                (Body::Owned(bytes), etag)
            }
        }
    }
}

/// Documents that list something are cached: the collection, and a repository or tags
/// collection with `embed` or `links` (a 10-tag repository with links is 3 KB, and
/// rendering it costs more than the lookup). A tag, or a repository without a list, is
/// rendered per request.
fn cache_key(
    resource: Resource<'_>,
    collection: Collection,
    options: Options,
    html: bool,
) -> Option<Key> {
    let listing = options.depth > 0 || options.links;
    let resource = match resource {
        Resource::Collection if listing => ResourceKey::Collection,
        Resource::Repository(r) if listing => ResourceKey::Repository(r.name.clone()),
        Resource::Tags(r, _) if listing => ResourceKey::Tags(r.name.clone()),
        _ => return None,
    };
    Some(Key {
        resource,
        collection,
        depth: options.depth,
        links: options.links,
        html,
    })
}

/// Renders one resource (with what it embeds) into `sink`.
pub fn write_resource<S: Sink>(
    sink: &mut S,
    snapshot: &Snapshot,
    resource: Resource<'_>,
    view: View<'_>,
    depth: u8,
) {
    match resource {
        Resource::Collection => hal::collection(sink, snapshot, view, depth),
        Resource::Repository(repo) => hal::repository(sink, repo, view, depth),
        Resource::Tags(repo, tags) => hal::tags(sink, repo, tags, view, depth),
        Resource::Tag(repo, tag) => hal::tag(sink, repo, tag, view),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn client_address_trusts_forwarded_for_only_from_loopback() {
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(client_address(remote, Some("10.0.0.1")), remote);
        assert_eq!(client_address(local, None), local);
        assert_eq!(
            client_address(local, Some("1.2.3.4, 10.0.0.9")),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(local, Some("[2001:db8::1]")),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(local, Some("garbage")), local);
    }

    #[test]
    fn in_flight_slots_are_capped_and_freed() {
        let in_flight = Arc::new(InFlight::default());
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let a = in_flight.acquire(ip).unwrap();
        let _b = in_flight.acquire(same_64).unwrap();
        assert!(in_flight.acquire(ip).is_none());
        drop(a);
        assert!(in_flight.acquire(ip).is_some());
    }

    #[test]
    fn log_names_are_capped() {
        assert_eq!(for_log("alice"), "alice");
        assert_eq!(for_log(&"ü".repeat(100)).chars().count(), 64);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after(Duration::from_millis(1500)), "2");
        assert_eq!(retry_after(Duration::ZERO), "1");
        assert_eq!(retry_after(Duration::from_secs(60)), "60");
    }
}
