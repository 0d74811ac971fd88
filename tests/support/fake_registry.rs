//! A scripted fake registry for faults a real Distribution cannot make on demand (500s,
//! 429 + Retry-After, hangs, odd manifests, pagination quirks).
//!
//! Routing: `on(method, pattern, replies)` scripts a queue of replies. Replies are taken in
//! order; the last one left repeats forever. A pattern containing `?` is matched against
//! path + query, otherwise against the path only (query ignored). `*` matches any run of
//! characters (including `/`). The most specific route wins: patterns with a query before
//! path-only ones, exact before `*`, then the first scripted. Method `*` matches any
//! method; an unscripted HEAD uses the GET script (no body is sent). Unscripted `GET /v2/`
//! answers 200 `{}`; anything else unscripted answers 404 `NAME_UNKNOWN` like Distribution.
//!
//! Each request is handled on its own thread, so a hang (a reply with a long `delay`) does
//! not block other requests. Hangs end early when the fake stops.
//!
//! "Down": `set_down(true)` answers every request 503 `UNAVAILABLE` (recorded);
//! `stop()` closes the listener so connections are refused. tiny_http cannot drop a
//! connection without answering: for resets, put a [`Front`] before the fake (it also
//! counts connections, TLS handshakes that fail included).
//!
//! Hostile answers: [`Reply::endless`] streams a body that never ends, and
//! [`Reply::huge_headers`] sends a header section of any size; [`FakeRegistry::start_tls`]
//! serves HTTPS with a given certificate.
#![allow(dead_code)]

use super::push::{self, media, BlobRef, Format};
use super::sha256_digest;
use crossbeam_channel::{Receiver, Sender};
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (the request's own thread sleeps).
    pub delay: Duration,
    /// Instead of `body`: this prefix, then the filler repeated forever (chunked).
    pub endless: Option<(Vec<u8>, Vec<u8>)>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            endless: None,
        }
    }

    /// 200 with `Content-Type: content_type` and a body that never ends: `prefix`, then
    /// `filler` again and again, chunked, until the client hangs up.
    pub fn endless(content_type: &str, prefix: &str, filler: &str) -> Reply {
        let mut reply = Reply::new(200).header("Content-Type", content_type);
        reply.endless = Some((prefix.as_bytes().to_vec(), filler.as_bytes().to_vec()));
        reply
    }

    /// An OCI image manifest whose list of layers never ends.
    pub fn endless_manifest() -> Reply {
        let layer = format!(
            "{{\"mediaType\":\"{}\",\"digest\":\"sha256:{}\",\"size\":1}},",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "ab".repeat(32)
        );
        Reply::endless(
            media::OCI_MANIFEST,
            &format!(
                "{{\"schemaVersion\":2,\"mediaType\":\"{}\",\"layers\":[",
                media::OCI_MANIFEST
            ),
            &layer,
        )
    }

    /// A tag list of `name` that never ends.
    pub fn endless_tags(name: &str) -> Reply {
        Reply::endless(
            "application/json",
            &format!("{{\"name\":\"{name}\",\"tags\":["),
            "\"t\",",
        )
    }

    /// 200 `{}` after a header section of about `bytes` bytes (headers of 8 KiB).
    pub fn huge_headers(bytes: usize) -> Reply {
        let mut reply = Reply::json(200, &serde_json::json!({}));
        for i in 0..bytes.div_ceil(8 << 10) {
            reply = reply.header(&format!("X-Filler-{i}"), &"f".repeat(8 << 10));
        }
        reply
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// JSON body with `Content-Type: application/json; charset=utf-8`.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::new(status)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(serde_json::to_vec(value).unwrap())
    }

    /// Distribution error body `{"errors":[{"code","message","detail"}]}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]}),
        )
    }

    /// 200 after an hour: longer than any client timeout (cut short when the fake stops).
    pub fn hang() -> Reply {
        Reply::json(200, &serde_json::json!({})).delay(Duration::from_secs(3600))
    }

    /// 429 `TOOMANYREQUESTS` with `Retry-After: seconds`.
    pub fn too_many_requests(retry_after_secs: u64) -> Reply {
        Reply::error(429, "TOOMANYREQUESTS", "too many requests")
            .header("Retry-After", &retry_after_secs.to_string())
    }

    /// 503 `UNAVAILABLE`.
    pub fn unavailable() -> Reply {
        Reply::error(503, "UNAVAILABLE", "service unavailable")
    }

    /// 401 with `WWW-Authenticate: Bearer realm=..,service=..[,scope=..][,error=..]`.
    pub fn bearer_challenge(
        realm: &str,
        service: &str,
        scope: Option<&str>,
        error: Option<&str>,
    ) -> Reply {
        let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
        if let Some(s) = scope {
            challenge.push_str(&format!(",scope=\"{s}\""));
        }
        if let Some(e) = error {
            challenge.push_str(&format!(",error=\"{e}\""));
        }
        let code = if error == Some("insufficient_scope") {
            "DENIED"
        } else {
            "UNAUTHORIZED"
        };
        Reply::error(401, code, "authentication required").header("WWW-Authenticate", &challenge)
    }

    /// `{"repositories": [...]}`.
    pub fn catalog(repositories: &[&str]) -> Reply {
        Reply::json(200, &serde_json::json!({ "repositories": repositories }))
    }

    /// `{"name": .., "tags": [...]}`; `None` gives `"tags": null` (as Distribution does
    /// for a repository whose tags were all deleted).
    pub fn tags(name: &str, tags: Option<&[&str]>) -> Reply {
        Reply::json(200, &serde_json::json!({ "name": name, "tags": tags }))
    }

    /// Add `Link: <url>; rel="next"` (url may be relative, e.g.
    /// `/v2/_catalog?last=b&n=2`).
    pub fn next_link(self, url: &str) -> Reply {
        self.header("Link", &format!("<{url}>; rel=\"next\""))
    }

    /// A manifest body with `Content-Type: media_type` and `Docker-Content-Digest`.
    pub fn manifest(media_type: &str, bytes: &[u8]) -> Reply {
        Reply::new(200)
            .header("Content-Type", media_type)
            .header("Docker-Content-Digest", &sha256_digest(bytes))
            .body(bytes.to_vec())
    }

    /// OCI image manifest for `config` + `layers`.
    pub fn oci_manifest(config: &BlobRef, layers: &[BlobRef]) -> Reply {
        Reply::manifest(
            media::OCI_MANIFEST,
            &push::image_manifest_json(Format::Oci, config, layers),
        )
    }

    /// Docker schema 2 manifest for `config` + `layers`.
    pub fn docker_manifest(config: &BlobRef, layers: &[BlobRef]) -> Reply {
        Reply::manifest(
            media::DOCKER_MANIFEST,
            &push::image_manifest_json(Format::Docker, config, layers),
        )
    }

    /// OCI index; children `(platform "os/arch", digest, size)` (see `push::index_json`).
    pub fn oci_index(children: &[(&str, &str, u64)]) -> Reply {
        Reply::manifest(media::OCI_INDEX, &push::index_json(Format::Oci, children))
    }

    /// Docker manifest list; children as for [`Reply::oci_index`].
    pub fn docker_list(children: &[(&str, &str, u64)]) -> Reply {
        Reply::manifest(
            media::DOCKER_LIST,
            &push::index_json(Format::Docker, children),
        )
    }

    /// Docker schema 1 (`fsLayers[].blobSum`, no sizes), served as signed (`+prettyjws`).
    pub fn schema1(name: &str, tag: &str, blob_sums: &[&str]) -> Reply {
        Reply::manifest(
            media::DOCKER_SCHEMA1_SIGNED,
            &push::schema1_manifest_json(name, tag, blob_sums),
        )
    }

    /// The value of a header this reply will send (e.g. its `Docker-Content-Digest`).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query as received.
    pub url: String,
    /// Header names as received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Arrival time (before any scripted delay).
    pub at: Instant,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }
}

struct Route {
    method: String,
    pattern: String,
    replies: Vec<Reply>,
}

struct State {
    routes: Mutex<Vec<Route>>,
    requests: Mutex<Vec<RecordedRequest>>,
    down: AtomicBool,
}

pub struct FakeRegistry {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub port: u16,
    state: Arc<State>,
    server: Option<Arc<tiny_http::Server>>,
    stopping: Arc<AtomicBool>,
    /// Dropped on stop: wakes every sleeping (hanging) handler.
    shutdown: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        FakeRegistry::start_with(None)
    }

    /// The fake over HTTPS with this PEM certificate chain and PKCS#8 key; `url` is
    /// `https://127.0.0.1:PORT`.
    pub fn start_tls(certificate_pem: &[u8], key_pem: &[u8]) -> FakeRegistry {
        FakeRegistry::start_with(Some(tiny_http::SslConfig {
            certificate: certificate_pem.to_vec(),
            private_key: key_pem.to_vec(),
        }))
    }

    fn start_with(ssl: Option<tiny_http::SslConfig>) -> FakeRegistry {
        let scheme = if ssl.is_some() { "https" } else { "http" };
        let server = Arc::new(
            tiny_http::Server::from_listener(
                gitlab_registry_usage_rest::http::listen_nodelay("127.0.0.1:0").expect("listen"),
                ssl,
            )
            .unwrap_or_else(|e| panic!("fake registry cannot listen: {e}")),
        );
        let port = server
            .server_addr()
            .to_ip()
            .expect("fake registry listens on IP")
            .port();
        let state = Arc::new(State {
            routes: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let (shutdown, shutdown_rx) = crossbeam_channel::bounded::<()>(0);
        let thread = {
            let (server, state, stopping, rx) = (
                server.clone(),
                state.clone(),
                stopping.clone(),
                shutdown_rx.clone(),
            );
            std::thread::Builder::new()
                .name(format!("fake-registry-{port}"))
                .spawn(move || accept_loop(&server, &state, &stopping, &rx))
                .expect("spawn fake registry thread")
        };
        FakeRegistry {
            url: format!("{scheme}://127.0.0.1:{port}"),
            port,
            state,
            server: Some(server),
            stopping,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Script `method pattern` (replacing an earlier script of the same pair). `replies` are
    /// answered in order; the last one repeats forever. Panics on an empty list.
    pub fn on(&self, method: &str, pattern: &str, replies: Vec<Reply>) {
        assert!(!replies.is_empty(), "on({method} {pattern}): no replies");
        let mut routes = self.state.routes.lock().unwrap();
        if let Some(route) = routes
            .iter_mut()
            .find(|r| r.method == method && r.pattern == pattern)
        {
            route.replies = replies;
        } else {
            routes.push(Route {
                method: method.to_string(),
                pattern: pattern.to_string(),
                replies,
            });
        }
    }

    /// Append one reply to the queue of `method pattern` (creating it if needed).
    pub fn then(&self, method: &str, pattern: &str, reply: Reply) {
        let mut routes = self.state.routes.lock().unwrap();
        if let Some(route) = routes
            .iter_mut()
            .find(|r| r.method == method && r.pattern == pattern)
        {
            route.replies.push(reply);
        } else {
            routes.push(Route {
                method: method.to_string(),
                pattern: pattern.to_string(),
                replies: vec![reply],
            });
        }
    }

    /// Forget all scripts.
    pub fn clear_routes(&self) {
        self.state.routes.lock().unwrap().clear();
    }

    /// `true`: answer everything 503 `UNAVAILABLE` (requests are still recorded).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// All requests so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests had this method and a path (without query) matching `pattern`
    /// (same glob rules as routes; a `?` in the pattern matches against path + query).
    pub fn count(&self, method: &str, pattern: &str) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (method == "*" || r.method == method) && route_matches(pattern, &r.url))
            .count()
    }

    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Stop: hanging handlers wake up, the listener closes (connections are refused
    /// afterwards). Dropping later is harmless.
    pub fn stop(&mut self) {
        self.shutdown.take();
        if let Some(thread) = self.thread.take() {
            self.stopping.store(true, Ordering::SeqCst);
            if let Some(server) = &self.server {
                server.unblock();
            }
            if thread.join().is_err() {
                eprintln!("fake registry accept thread panicked (see message above)");
            }
        }
        // Last reference: tiny_http closes the listening socket.
        self.server.take();
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    server: &tiny_http::Server,
    state: &Arc<State>,
    stopping: &AtomicBool,
    shutdown: &Receiver<()>,
) {
    loop {
        match server.recv() {
            Ok(request) => {
                let (state, shutdown) = (state.clone(), shutdown.clone());
                let spawned = std::thread::Builder::new()
                    .name("fake-registry-request".into())
                    .spawn(move || handle(request, &state, &shutdown));
                if let Err(e) = spawned {
                    eprintln!("fake registry: cannot spawn a request thread: {e}");
                }
            }
            Err(e) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                eprintln!("fake registry: accept error (continuing): {e}");
            }
        }
    }
}

fn handle(mut request: tiny_http::Request, state: &State, shutdown: &Receiver<()>) {
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    state.requests.lock().unwrap().push(RecordedRequest {
        method: method.clone(),
        url: url.clone(),
        headers,
        body,
        at: Instant::now(),
    });

    let reply = if state.down.load(Ordering::SeqCst) {
        Reply::unavailable()
    } else {
        next_reply(state, &method, &url).unwrap_or_else(|| default_reply(&method, &url))
    };
    if !reply.delay.is_zero() {
        // Returns early when the fake stops (sender dropped → Disconnected).
        let _ = shutdown.recv_timeout(reply.delay);
    }
    let body: Box<dyn Read + Send> = match &reply.endless {
        Some((prefix, filler)) => Box::new(std::io::Cursor::new(prefix.clone()).chain(Endless {
            filler: filler.clone(),
            at: 0,
        })),
        None => Box::new(std::io::Cursor::new(reply.body.clone())),
    };
    let length = reply.endless.is_none().then_some(reply.body.len());
    let mut response =
        tiny_http::Response::new(reply.status.into(), Vec::new(), body, length, None);
    if !reply.has_header("Docker-Distribution-Api-Version") {
        response.add_header(
            tiny_http::Header::from_bytes(
                &b"Docker-Distribution-Api-Version"[..],
                &b"registry/2.0"[..],
            )
            .unwrap(),
        );
    }
    for (k, v) in &reply.headers {
        match tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            Ok(h) => response.add_header(h),
            Err(()) => eprintln!("fake registry: invalid scripted header {k:?}: {v:?} (skipped)"),
        }
    }
    // The client may have given up (timeout); that is fine.
    let _ = request.respond(response);
}

/// `filler` repeated forever.
struct Endless {
    filler: Vec<u8>,
    at: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let take = (self.filler.len() - self.at).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&self.filler[self.at..self.at + take]);
            n += take;
            self.at = (self.at + take) % self.filler.len();
        }
        Ok(n)
    }
}

fn next_reply(state: &State, method: &str, url: &str) -> Option<Reply> {
    let mut routes = state.routes.lock().unwrap();
    // Most specific first: patterns with a query before path-only ones, exact before `*`;
    // ties go to the first scripted.
    let rank = |p: &str| u8::from(!p.contains('?')) * 2 + u8::from(p.contains('*'));
    let pick = |routes: &[Route], method: &str| -> Option<usize> {
        routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                (r.method == method || r.method == "*") && route_matches(&r.pattern, url)
            })
            .min_by_key(|(i, r)| (rank(&r.pattern), *i))
            .map(|(i, _)| i)
    };
    let index = pick(&routes, method).or_else(|| {
        if method == "HEAD" {
            pick(&routes, "GET")
        } else {
            None
        }
    })?;
    let replies = &mut routes[index].replies;
    Some(if replies.len() > 1 {
        replies.remove(0)
    } else {
        replies[0].clone()
    })
}

fn default_reply(method: &str, url: &str) -> Reply {
    let path = url.split('?').next().unwrap_or("");
    if (method == "GET" || method == "HEAD") && path == "/v2/" {
        return Reply::json(200, &serde_json::json!({}));
    }
    Reply::error(
        404,
        "NAME_UNKNOWN",
        &format!("repository name not known to registry (fake: no script for {method} {url})"),
    )
}

/// Glob match (`*` = any run of characters); a pattern with `?` is matched against path +
/// query, otherwise against the path only.
pub fn route_matches(pattern: &str, url: &str) -> bool {
    let target = if pattern.contains('?') {
        url
    } else {
        url.split('?').next().unwrap_or("")
    };
    glob(pattern.as_bytes(), target.as_bytes())
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard match with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// A TCP front for a server on 127.0.0.1 that counts connections and can play a registry
/// that died: [`Front::kill`] breaks every open connection and from then on closes each
/// new one at once, unanswered (what a client sees behind a load balancer whose backend
/// is gone: every attempt connects and is reset). Counting at accept sees attempts that
/// never become requests (failed TLS handshakes).
pub struct Front {
    pub port: u16,
    state: Arc<FrontState>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct FrontState {
    accepted: AtomicUsize,
    accepted_dead: AtomicUsize,
    stopping: AtomicBool,
    /// Under this lock: whether the front is dead, and every open socket (both sides).
    open: Mutex<(bool, Vec<TcpStream>)>,
}

impl Front {
    /// A front forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").expect("front: listen");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(FrontState::default());
        let thread = {
            let state = state.clone();
            std::thread::Builder::new()
                .name(format!("front-{port}"))
                .spawn(move || front_loop(&listener, upstream_port, &state))
                .expect("spawn front thread")
        };
        Front {
            port,
            state,
            thread: Some(thread),
        }
    }

    /// `scheme://127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Connections accepted (and closed at once) since [`Front::kill`].
    pub fn accepted_after_kill(&self) -> usize {
        self.state.accepted_dead.load(Ordering::SeqCst)
    }

    /// Die: break every open connection; close every later one unanswered.
    pub fn kill(&self) {
        let mut open = self.state.open.lock().unwrap();
        open.0 = true;
        for socket in open.1.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.kill();
    }
}

fn front_loop(listener: &TcpListener, upstream_port: u16, state: &FrontState) {
    for client in listener.incoming() {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        state.accepted.fetch_add(1, Ordering::SeqCst);
        let mut open = state.open.lock().unwrap();
        if open.0 {
            state.accepted_dead.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
            continue;
        };
        let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
        for socket in [&client, &upstream] {
            if let Ok(clone) = socket.try_clone() {
                open.1.push(clone);
            }
        }
        drop(open);
        for (from, to) in [(&client, &upstream), (&upstream, &client)] {
            let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                continue;
            };
            let _ = std::thread::Builder::new()
                .name("front-pump".into())
                .spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
        }
    }
}
