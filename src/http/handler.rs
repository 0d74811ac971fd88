//! What each request gets: the decisions of the API (auth before anything about the
//! data, status codes, bodies, conditional requests), independent of the HTTP library.
//!
//! `App::handle` answers everything that needs no outside system directly. A login is
//! handed back as [`Outcome::Login`] so that the server runs it on the login threads: an
//! LDAP round trip or a bcrypt run takes far longer than any other request, and must not
//! hold up the workers that serve the data.
//!
//! On a connection's own thread ([`Place::Connection`]) it answers only what takes
//! microseconds (a document already in the render cache, `/health`, refusals, the
//! dashboard's assets) and gives everything else back as [`Outcome::Pool`], for a worker.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::jwt::TokenError;
use crate::auth::{basic::parse_basic, LoginError};
use crate::cidr::CidrList;
use crate::config::Role;
use crate::current::Current;
use crate::history::Kind as HistoryKind;
use crate::snapshot::Repository;

use super::cache::{Body, ETag, Key, Rendered, ResourceKey};
use super::cleanup;
use super::dashboard;
use super::hal::{self, write_json_f64, write_json_string, Json, Listing, Numbers, Sink, View};
use super::html::Html;
use super::router::{self, Collection, NotFound, Options, Request, Resource, Route};
use super::App;
use crate::cleanup::Scope;

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
    pub(super) fn new(status: u16, content_type: &'static str, body: Body) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            body,
            etag: None,
            headers: Vec::new(),
        }
    }

    pub(super) fn header(
        mut self,
        name: &'static str,
        value: impl Into<Cow<'static, str>>,
    ) -> Reply {
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

    pub(super) fn not_found(path: &str) -> Reply {
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

/// Which thread is answering a request (see [`App::handle_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The thread that read it from its connection: only answers that cost microseconds.
    Connection,
    /// A worker of the pool: anything.
    Worker,
}

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    Reply(Reply),
    /// Hand it to a worker: on the connection's thread it would take too long (a
    /// document to render, a login, a cleanup preview, `/metrics`, a history series).
    Pool,
    /// Check these credentials (slow) and answer with [`App::login`].
    Login(LoginRequest),
    /// Compute this cleanup preview (tens of milliseconds for a whole registry) and
    /// answer with [`App::preview`], off the threads that answer small requests.
    Preview(Box<PreviewRequest>),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome::Reply(reply)
    }
}

/// A cleanup preview that is not in the render cache yet: everything [`App::preview`]
/// needs, owned, so another thread can compute it.
pub struct PreviewRequest {
    current: Arc<Current>,
    scope: Scope,
    in_scope: Vec<usize>,
    policy: crate::cleanup::Policy,
    key: Key,
    if_none_match: Option<String>,
}

impl std::fmt::Debug for PreviewRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewRequest")
            .field("scope", &self.scope.kind())
            .field("repositories", &self.in_scope.len())
            .finish()
    }
}

/// A login to run on a login thread.
#[derive(Debug)]
pub struct LoginRequest {
    user: String,
    password: String,
    client: IpAddr,
    _slot: InFlightSlot,
}

/// The client's address for the login limiter. Behind a reverse proxy every connection
/// comes from the proxy, which would make all users share one failure count; so for a
/// peer in `[general] trusted_proxies` the `X-Forwarded-For` chain is read from the right
/// (each proxy appends the address it got the request from), and the first address that
/// is not itself a trusted proxy is the client. Entries left of it were written by the
/// client and are never believed, and an untrusted peer is its own address whatever it
/// sends: otherwise a client rotating the header would never be slowed down.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &CidrList) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for.unwrap_or("").rsplit(',') {
        // Garbage ends the chain: what stands left of it cannot be checked either.
        let Some(ip) = forwarded_address(entry.trim()) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, `[v6]`, or either with a port (some proxies
/// append one).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
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

/// What serves a route, and the methods it allows: one table, one `match` on the method.
#[derive(Clone, Copy)]
enum Handler {
    Health,
    Login,
    OpenApi,
    /// The dashboard's page (or the API root) and its assets.
    Dashboard,
    Metrics,
    Data,
}

fn handler_of(route: &Route<'_>) -> (Handler, &'static str) {
    match route {
        Route::Health => (Handler::Health, READ_METHODS),
        Route::OpenApi => (Handler::OpenApi, READ_METHODS),
        Route::Metrics => (Handler::Metrics, READ_METHODS),
        Route::AuthToken => (Handler::Login, LOGIN_METHODS),
        Route::Root | Route::Asset(_) => (Handler::Dashboard, READ_METHODS),
        Route::Api { .. }
        | Route::Namespaces { .. }
        | Route::History
        | Route::Cleanup
        | Route::Unknown => (Handler::Data, READ_METHODS),
    }
}

impl App {
    /// Answers a request on a worker, or hands a login back to be run elsewhere.
    pub fn handle(&self, rq: &Incoming<'_>) -> Outcome {
        self.handle_at(rq, Place::Worker)
    }

    /// Answers a request at `place`: on a connection's thread, whatever costs more than
    /// a cache lookup is [`Outcome::Pool`].
    pub fn handle_at(&self, rq: &Incoming<'_>, place: Place) -> Outcome {
        if rq.target.len() > MAX_TARGET {
            return Outcome::Reply(Reply::message(414, "The request URL is too long"));
        }
        let request = router::parse_request(
            &self.config.general.server_prefix,
            rq.target,
            rq.accept,
            rq.if_none_match,
        );
        let cors = !self.config.general.cors_origin.is_empty();
        let (handler, allow) = handler_of(&request.route);
        let slow = matches!(
            (handler, rq.method),
            (Handler::Login, Method::Get | Method::Head | Method::Post)
                | (Handler::Metrics, Method::Get | Method::Head)
        );
        if slow && place == Place::Connection {
            return Outcome::Pool;
        }
        let reply = match (handler, rq.method) {
            (_, Method::Options) => Reply::preflight(allow, cors),
            (Handler::Login, Method::Get | Method::Head | Method::Post) => {
                return self.auth_token(rq)
            }
            (Handler::Health, Method::Get | Method::Head) => self.health(),
            (Handler::OpenApi, Method::Get | Method::Head) => openapi(rq.if_none_match),
            (Handler::Dashboard, Method::Get | Method::Head) => {
                dashboard::serve(&self.config.general.server_prefix, &request)
            }
            (Handler::Metrics, Method::Get | Method::Head) => self.metrics_reply(rq, &request),
            (Handler::Data, Method::Get | Method::Head) => return self.api(rq, &request, place),
            _ => Reply::method_not_allowed(allow),
        };
        Outcome::Reply(reply)
    }

    /// `/health`: for load balancers and orchestrators, so no auth, and nothing about the
    /// registry or LDAP beyond "there is data, this old". Data older than
    /// `max_snapshot_age` answers 503 with why, so a balancer drops a reader whose
    /// collector stopped writing; the 200 body is the same as before that key existed.
    fn health(&self) -> Reply {
        let current = self.snapshots.get();
        let mut out = Vec::with_capacity(96);
        let status = match current.as_ref().map(|c| &c.snapshot) {
            Some(s) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                let age = ((now - s.timestamp).max(0.0) * 1000.0).round() / 1000.0;
                let limit = self.config.general.max_snapshot_age;
                let stale = limit.filter(|l| age > l.as_secs_f64());
                out.extend_from_slice(if stale.is_some() {
                    b"{\"status\":\"stale\",\"snapshot_age_seconds\":"
                } else {
                    b"{\"status\":\"ok\",\"snapshot_age_seconds\":"
                });
                write_json_f64(&mut out, age);
                out.extend_from_slice(b",\"timestamp\":");
                write_json_f64(&mut out, s.timestamp);
                match stale {
                    None => {
                        out.push(b'}');
                        200
                    }
                    Some(limit) => {
                        out.extend_from_slice(b",\"max_snapshot_age_seconds\":");
                        write_json_f64(&mut out, limit.as_secs_f64());
                        out.extend_from_slice(b",\"message\":");
                        write_json_string(&mut out, self.stale_reason());
                        out.push(b'}');
                        503
                    }
                }
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

    /// Why the data is old, by role.
    fn stale_reason(&self) -> &'static str {
        match self.config.general.role {
            Role::Reader => {
                "The snapshot file is older than max_snapshot_age: its collector has not written a new one (is it running, can it reach the registry?)"
            }
            Role::Both | Role::Collector => {
                "The last successful scan is older than max_snapshot_age: scans are failing (see the service log)"
            }
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
        let client = client_address(
            rq.peer,
            rq.forwarded_for,
            &self.config.general.trusted_proxies,
        );
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
            Ok(name) => {
                self.limiter.record_success(client);
                crate::log!(
                    info,
                    "login",
                    user = user_log,
                    identity = for_log(&name),
                    client = client,
                    outcome = "ok"
                );
                // The directory's spelling: `ALICE` and `alice ` are alice.
                let token = self.tokens.mint(&name);
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

    /// Everything under `/repositories` and `/namespaces` (and unknown paths): token
    /// first, so that an unauthenticated client learns nothing, not even whether a name
    /// exists.
    /// `/metrics`: to addresses in `[metrics] allow` (the client's, as the limiter sees
    /// it behind trusted proxies) and to scrapers presenting the token of
    /// `[metrics] bearer_token_file`; 403 for anyone else, 404 when disabled.
    fn metrics_reply(&self, rq: &Incoming<'_>, request: &Request<'_>) -> Reply {
        let m = &self.config.metrics;
        if !m.enabled {
            return Reply::not_found(request.path);
        }
        let client = client_address(
            rq.peer,
            rq.forwarded_for,
            &self.config.general.trusted_proxies,
        );
        let allowed = m.allow.contains(client)
            || self
                .scrape_token
                .as_ref()
                .is_some_and(|t| t.accepts(rq.authorization));
        if !allowed {
            return Reply::message(
                403,
                "Scraping /metrics is allowed only from the addresses of [metrics] allow or with the token of [metrics] bearer_token_file",
            );
        }
        let current = self.snapshots.get();
        let text = self.metrics.render(current.as_deref());
        Reply::new(
            200,
            crate::metrics::CONTENT_TYPE,
            Body::Owned(text.into_bytes()),
        )
        .header("Cache-Control", "no-store")
    }

    /// The 401 for a missing or bad token, if it is one.
    /// A browser (`html`) gets a page that says where to log in.
    fn refuse_token(&self, rq: &Incoming<'_>, html: bool) -> Option<Reply> {
        if let Err(e) = self.check_token(rq.authorization) {
            let missing = !rq.authorization.is_some_and(|a| !a.trim().is_empty());
            let challenge = if missing {
                "Bearer"
            } else {
                "Bearer error=\"invalid_token\""
            };
            if html {
                let prefix = &self.config.general.server_prefix;
                return Some(
                    dashboard::login_required(prefix, e.status, e.msg)
                        .header("WWW-Authenticate", challenge),
                );
            }
            let mut out = Vec::with_capacity(e.msg.len() + 12);
            out.extend_from_slice(b"{\"msg\":");
            write_json_string(&mut out, e.msg);
            out.push(b'}');
            return Some(
                Reply::new(e.status, JSON, Body::Owned(out)).header("WWW-Authenticate", challenge),
            );
        }
        None
    }

    /// `{"name", "points": [...]}` of one series, or 404.
    fn history_reply(&self, rq: &Incoming<'_>, kind: HistoryKind, name: &str, href: &str) -> Reply {
        let days = match router::parse_days(router::split_target(rq.target).1) {
            Ok(days) => days,
            Err(message) => return Reply::message(400, &message),
        };
        let Some(points) = self.history.points(kind, name, days) else {
            return Reply::not_found(href);
        };
        let mut out = Vec::with_capacity(64 + points.len() * 120);
        out.extend_from_slice(b"{\"name\":");
        write_json_string(&mut out, name);
        out.extend_from_slice(b",\"points\":[");
        for (i, p) in points.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let n = p.numbers;
            out.extend_from_slice(
                format!(
                    "{{\"date\":\"{}\",\"size\":{},\"deduplicated_size\":{},\"exclusive_size\":{},\"tag_count\":{}}}",
                    crate::history::date(p.day),
                    n.size,
                    n.deduplicated_size,
                    n.exclusive_size,
                    n.tag_count
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(b"]}");
        Reply::new(200, JSON, Body::Owned(out))
    }

    fn api(&self, rq: &Incoming<'_>, request: &Request<'_>, place: Place) -> Outcome {
        if let Some(refused) = self.refuse_token(rq, request.html) {
            return refused.into();
        }
        let worker = place == Place::Worker;
        if let Route::History = request.route {
            if !worker {
                return Outcome::Pool;
            }
            return self
                .history_reply(rq, HistoryKind::Registry, "", request.path)
                .into();
        }
        let Some(current) = self.snapshots.get() else {
            return Reply::message(
                503,
                "No data yet: the first scan of the registry has not finished",
            )
            .header("Retry-After", "10")
            .into();
        };
        let (resolved, collection) = match request.route {
            Route::Api { collection, rest } => (
                router::resolve(&current.snapshot, self.base(collection), rest),
                collection,
            ),
            Route::Namespaces { rest } => (
                router::resolve_namespace(&current.usage, &self.bases[2], rest),
                Collection::Repositories,
            ),
            Route::Cleanup if !worker => return Outcome::Pool,
            Route::Cleanup => return self.cleanup(rq, request, &current, Scope::Registry),
            _ => return Reply::not_found(request.path).into(),
        };
        let resource = match resolved {
            Ok(resource) => resource,
            Err(NotFound::BadPath(e)) => return Reply::message(400, e.message()).into(),
            Err(NotFound::Missing(href)) => {
                // Not a resource of the snapshot: maybe `<name>/history` (a deleted
                // repository keeps its history until it ages out).
                let (kind, rest) = match request.route {
                    Route::Api {
                        collection: Collection::Repositories,
                        rest,
                    } => (HistoryKind::Repository, rest),
                    Route::Namespaces { rest } => (HistoryKind::Namespace, rest),
                    _ => (HistoryKind::Registry, None),
                };
                let name = rest.and_then(|r| crate::percent::decode_path(r).ok());
                if !worker && name.is_some() {
                    // maybe a history series or a cleanup preview
                    return Outcome::Pool;
                }
                let cleanup_scope = name.as_deref().and_then(router::cleanup_of);
                match (kind, cleanup_scope) {
                    (HistoryKind::Repository, Some(of)) => {
                        let scope = Scope::Repository(of.into());
                        return self.cleanup(rq, request, &current, scope);
                    }
                    (HistoryKind::Namespace, Some(of)) => {
                        let scope = Scope::Namespace(of.into());
                        return self.cleanup(rq, request, &current, scope);
                    }
                    _ => {}
                }
                if let Some(of) = name.as_deref().and_then(router::history_of) {
                    return self.history_reply(rq, kind, of, &href).into();
                }
                return Reply::not_found(&href).into();
            }
        };
        let accepted = resource.sort_keys();
        let options = match &request.options {
            Ok(options) => options,
            Err(e) => return Reply::message(400, &e.message(accepted)).into(),
        };
        if let Err(message) = options.list.check(accepted) {
            return Reply::message(400, &message).into();
        }
        let html = request.html;
        let Some((body, etag)) = self.render(&current, resource, collection, options, html, place)
        else {
            return Outcome::Pool;
        };
        let content_type = if html { HTML } else { HAL_JSON };
        let (mut reply, fresh) = conditional(request.if_none_match, content_type, body, etag);
        reply.headers.push(("Vary", Cow::Borrowed("Accept")));
        if html && !fresh {
            reply
                .headers
                .push(("Content-Security-Policy", Cow::Borrowed(HTML_CSP)));
        }
        reply.into()
    }

    /// A cleanup preview of `scope`: 404 for a scope that covers no repository, 400
    /// naming a parameter it cannot use, else the document, rendered once per generation,
    /// scope and policy (requests asking for the same one meanwhile wait for it instead
    /// of computing it again). One repository's is computed here (well under a
    /// millisecond); a namespace's or the registry's that is not cached yet is handed
    /// back to run on the server's slow-request threads.
    fn cleanup(
        &self,
        rq: &Incoming<'_>,
        request: &Request<'_>,
        current: &Arc<Current>,
        scope: Scope,
    ) -> Outcome {
        let Some(in_scope) = scope.repositories(&current.snapshot) else {
            return Reply::not_found(request.path).into();
        };
        let policy = match crate::cleanup::policy_of(router::split_target(rq.target).1) {
            Ok(policy) => policy,
            Err(e) => return Reply::message(400, &e.0).into(),
        };
        let wide = !matches!(scope, Scope::Repository(_));
        let key = Key {
            resource: ResourceKey::Cleanup {
                wide,
                text: cleanup::cache_text(&scope, &policy).into(),
            },
            collection: Collection::Repositories,
            depth: 0,
            links: false,
            html: false,
            list: Default::default(),
        };
        let cached = wide && self.cache.get(current.usage.generation(), &key).is_some();
        let preview = PreviewRequest {
            current: Arc::clone(current),
            scope,
            in_scope,
            policy,
            key,
            if_none_match: request.if_none_match.map(str::to_string),
        };
        if wide && !cached {
            return Outcome::Preview(Box::new(preview));
        }
        self.preview(Box::new(preview)).into()
    }

    /// The answer to a cleanup preview (see [`App::cleanup`]).
    pub fn preview(&self, p: Box<PreviewRequest>) -> Reply {
        let current = &p.current;
        let hit = self
            .cache
            .get_or_render(current.usage.generation(), p.key, |_| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let mut bytes = cleanup::render(
                    &current.snapshot,
                    &current.usage,
                    &p.scope,
                    &p.in_scope,
                    &p.policy,
                    now,
                );
                bytes.shrink_to_fit();
                let etag = ETag::of(&bytes);
                Rendered {
                    body: Arc::new(bytes),
                    etag,
                }
            });
        conditional(
            p.if_none_match.as_deref(),
            JSON,
            Body::Shared(hit.body),
            hit.etag,
        )
        .0
    }

    /// The answer when every slow-request thread is busy with a preview.
    pub fn previews_busy() -> Reply {
        Reply::message(
            503,
            "Too many cleanup previews are being computed at the moment; try again in a few seconds",
        )
        .header("Retry-After", "2")
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

    /// The document of `resource`, from the cache when it lists something.
    fn render(
        &self,
        current: &Current,
        resource: Resource<'_>,
        collection: Collection,
        options: &Options,
        html: bool,
        place: Place,
    ) -> Option<(Body, ETag)> {
        let numbers = Numbers {
            snapshot: &current.snapshot,
            usage: &current.usage,
            namespaces: &self.bases[2],
        };
        let render = |capacity: usize| {
            let view = self.view(numbers, resource, collection, options);
            let listing = listing(current, resource, options);
            let listing = listing.as_ref();
            let bytes = if html {
                let mut sink = Html::with_capacity(capacity + 1024);
                write_resource(&mut sink, numbers, resource, view, options.depth, listing);
                sink.into_bytes()
            } else {
                let mut sink = Json::with_capacity(capacity);
                write_resource(&mut sink, numbers, resource, view, options.depth, listing);
                sink.into_bytes()
            };
            let etag = ETag::of(&bytes);
            (bytes, etag)
        };
        let key = cache_key(resource, collection, options, html);
        if place == Place::Connection {
            // What is cached, and one repository's or tag's own fields (a few hundred
            // bytes, never cached): any other rendering is a worker's job.
            match (&key, resource) {
                (Some(key), _) => {
                    let hit = self.cache.get(current.usage.generation(), key)?;
                    return Some((Body::Shared(hit.body), hit.etag));
                }
                (None, Resource::Repository(_) | Resource::Tag(..)) => {}
                (None, _) => return None,
            }
        }
        Some(match key {
            Some(key) => {
                let hit = self
                    .cache
                    .get_or_render(current.usage.generation(), key, |previous| {
                        // As long as last time, and a little more: most re-scans change
                        // a document by a few bytes, and a buffer that has to double
                        // holds the document twice for a moment.
                        let capacity = previous.map_or(64 * 1024, |n| n + n / 32 + 4096);
                        let (mut bytes, etag) = render(capacity);
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
        })
    }

    /// How `resource` is shown: the usage fields only under `/namespaces` or when a list
    /// parameter was given, so that every other answer stays the original's.
    fn view<'a>(
        &'a self,
        numbers: Numbers<'a>,
        resource: Resource<'_>,
        collection: Collection,
        options: &Options,
    ) -> View<'a> {
        let namespaced = matches!(resource, Resource::Namespaces | Resource::Namespace(_));
        View {
            base: self.base(collection),
            links: options.links,
            usage: (namespaced || options.list.is_set()).then_some(numbers),
        }
    }
}

/// The 200 reply with `body` and `etag`, or 304 when the client's `If-None-Match` has
/// it; and whether it was the 304.
fn conditional(
    if_none_match: Option<&str>,
    content_type: &'static str,
    body: Body,
    etag: ETag,
) -> (Reply, bool) {
    let fresh = if_none_match.is_some_and(|inm| router::none_match(inm, etag.as_str()));
    let reply = if fresh {
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
    (reply, fresh)
}

/// docs/openapi.json, made from docs/openapi.yaml by `make openapi` (tests/contract.rs
/// checks that it is current and that the live API conforms to it).
static OPENAPI: &[u8] = include_bytes!("../../docs/openapi.json");

/// `/openapi.json`: the same bytes for the life of the binary, so one ETag.
fn openapi(if_none_match: Option<&str>) -> Reply {
    static ETAG: std::sync::OnceLock<ETag> = std::sync::OnceLock::new();
    let etag = *ETAG.get_or_init(|| ETag::of(OPENAPI));
    match conditional(if_none_match, JSON, Body::Static(OPENAPI), etag) {
        (reply, true) => reply,
        (reply, false) => reply.header("Cache-Control", "no-cache"),
    }
}

/// The list of `resource` that the options ask for, from the index's precomputed
/// orders; `None` where the document lists everything in name order (as the original).
fn listing(current: &Current, resource: Resource<'_>, options: &Options) -> Option<Listing> {
    let (snapshot, usage) = (&*current.snapshot, &current.usage);
    let list = &options.list;
    let set = list.is_set();
    let tags_of = |repo: &Repository| {
        snapshot
            .index_of(repo)
            .map(|r| usage.select_tags(snapshot, r, list))
    };
    let selection = match resource {
        Resource::Collection if set => Some(usage.select_repositories(snapshot, list)),
        Resource::Repository(repo) if set && options.depth > 0 => tags_of(repo),
        Resource::Tags(repo) if set => tags_of(repo),
        Resource::Namespaces => Some(usage.select_top(snapshot, list)),
        Resource::Namespace(n) if set => Some(usage.select_children(snapshot, n, list)),
        _ => None,
    }?;
    let mut pages = Vec::new();
    if let Some(page) = selection.page {
        pages.push(("first", options.query_for_page(1)));
        if page.number > 1 {
            let prev = (page.number - 1).min(page.last);
            pages.push(("prev", options.query_for_page(prev)));
        }
        if page.number < page.last {
            pages.push(("next", options.query_for_page(page.number + 1)));
        }
        pages.push(("last", options.query_for_page(page.last)));
    }
    Some(Listing {
        items: selection.items,
        count: (set || matches!(resource, Resource::Namespaces)).then_some(selection.count),
        pages,
    })
}

/// Documents that list something are cached: the collections, a repository or tags
/// collection with `embed`, `links` or a list parameter (a 10-tag repository with links
/// is 3 KB, and rendering it costs more than the lookup), and namespaces. A tag, or a
/// repository without a list, is rendered per request.
fn cache_key(
    resource: Resource<'_>,
    collection: Collection,
    options: &Options,
    html: bool,
) -> Option<Key> {
    let listing = options.depth > 0 || options.links || options.list.is_set();
    let resource = match resource {
        Resource::Collection if listing => ResourceKey::Collection,
        Resource::Repository(r) if listing => ResourceKey::Repository(r.name.clone()),
        Resource::Tags(r) if listing => ResourceKey::Tags(r.name.clone()),
        Resource::Namespaces => ResourceKey::Namespaces,
        Resource::Namespace(n) => ResourceKey::Namespace(n),
        _ => return None,
    };
    Some(Key {
        resource,
        collection,
        depth: options.depth,
        links: options.links,
        html,
        list: options.list.clone(),
    })
}

/// Renders one resource (with what it embeds) into `sink`.
pub fn write_resource<S: Sink>(
    sink: &mut S,
    numbers: Numbers<'_>,
    resource: Resource<'_>,
    view: View<'_>,
    depth: u8,
    listing: Option<&Listing>,
) {
    match resource {
        Resource::Collection => hal::collection(sink, numbers.snapshot, view, depth, listing),
        Resource::Repository(repo) => hal::repository(sink, repo, view, depth, listing),
        Resource::Tags(repo) => hal::tags(sink, repo, view, depth, listing),
        Resource::Tag(repo, tag) => hal::tag(sink, repo, tag, view),
        Resource::Namespaces => {
            let all = Listing::default();
            hal::namespaces(sink, numbers, view, depth, listing.unwrap_or(&all))
        }
        Resource::Namespace(n) => hal::namespace(sink, numbers, n, view, depth, listing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let nobody = CidrList::default();
        // Not even loopback is trusted by default.
        assert_eq!(client_address(local, Some("10.0.0.1"), &nobody), local);
        let proxies: CidrList = "127.0.0.1, 10.0.0.0/8, 2001:db8::/64".parse().unwrap();
        let remote = ip("192.0.2.7");
        assert_eq!(client_address(remote, Some("10.0.0.1"), &proxies), remote);
        assert_eq!(client_address(local, None, &proxies), local);
        assert_eq!(client_address(local, Some(""), &proxies), local);
        assert_eq!(
            client_address(local, Some("1.2.3.4, 198.51.100.9"), &proxies),
            ip("198.51.100.9")
        );
        // Proxies in the chain are skipped; what the client wrote left of them is not read.
        assert_eq!(
            client_address(
                local,
                Some("1.2.3.4, 198.51.100.9, 10.1.1.1, 10.2.2.2"),
                &proxies
            ),
            ip("198.51.100.9")
        );
        // Only proxies: the left-most of them is as far as anything can be checked.
        assert_eq!(
            client_address(local, Some("10.1.1.1, 10.2.2.2"), &proxies),
            ip("10.1.1.1")
        );
        assert_eq!(
            client_address(local, Some("garbage, 10.2.2.2"), &proxies),
            ip("10.2.2.2")
        );
        assert_eq!(client_address(local, Some("garbage"), &proxies), local);
        for (header, client) in [
            ("[2001:db9::1]", "2001:db9::1"),
            ("[2001:db9::1]:443", "2001:db9::1"),
            ("198.51.100.9:5678", "198.51.100.9"),
            ("2001:db9::1", "2001:db9::1"),
        ] {
            assert_eq!(
                client_address(local, Some(header), &proxies),
                ip(client),
                "{header}"
            );
        }
        // A trusted IPv6 proxy, and a dual-stack listener's form of a trusted IPv4 one.
        assert_eq!(
            client_address(ip("2001:db8::5"), Some("198.51.100.9"), &proxies),
            ip("198.51.100.9")
        );
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), Some("198.51.100.9"), &proxies),
            ip("198.51.100.9")
        );
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
