//! The HTTP server: tiny_http, `worker_threads` threads sharing one `Server` and each
//! calling `recv()`, plus a few login threads fed through a bounded queue. Each
//! connection's own thread first offers its request to [`front`], which answers what
//! costs no more than a cache lookup and hands the rest to the workers.
//!
//! No client holds more than its share: tiny_http (patched, see patches/README.md) serves
//! each connection within the `[general]` limits (`request_header_timeout`,
//! `keepalive_timeout`, `send_timeout` with [`MIN_SEND_RATE`], `max_connections`,
//! `max_connections_per_client` counted per [`client_key`]), reads a request and its body
//! (at most [`MAX_BODY`]) before a worker sees it, and reads a connection's next request
//! only after the previous response. Workers never wait for a client: a body is already
//! read, a small response is written at once (or the connection dropped), and a large one
//! is written by a thread of tiny_http's connection pool (`respond_in_background`), so a
//! slow reader holds only its connection and that thread.
//!
//! The listener never dies: tiny_http's accept thread survives accept errors and threads
//! that cannot start (each costs one connection, logged at most once a second). If it ends
//! anyway (the listening socket is unusable), [`Running::failed`] says so and `main` exits
//! non-zero, so that the supervisor restarts the service.
//!
//! It also checks TLS keys first: tiny_http panics on one it cannot parse.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tiny_http::{Header, Request, Response, Server, StatusCode};

use crate::auth::limiter::client_key;
use crate::config::General;

use super::handler::{self, Incoming, LoginRequest, Method, Outcome, Place, PreviewRequest, Reply};
use super::App;

/// Threads that run logins (LDAP round trips, bcrypt) and cleanup previews of a namespace
/// or the registry (tens of milliseconds each, once per generation and policy), so the
/// workers keep answering small requests meanwhile. Enough for a burst of people logging
/// in at once; more would only let a password guesser use more CPU.
const LOGIN_THREADS: usize = 4;
/// Logins and previews waiting for a login thread; beyond this the answer is 503 at once.
const LOGIN_QUEUE: usize = 32;
/// tiny_http reads a request body up to this size before a worker sees the request;
/// a larger one is answered 413 and its connection closed, without reading it.
pub const MAX_BODY: usize = 64 * 1024;
/// The API takes no body: a larger one (already read by tiny_http) is answered 413.
const IGNORED_BODY: usize = 1024;
/// Bytes per second a response must average once `send_timeout` has passed: a client on
/// a 256 kbit/s line still gets the largest document, one that reads a byte now and then
/// is dropped.
pub const MIN_SEND_RATE: u64 = 32 * 1024;

/// Headers that are the same on many responses, built once.
pub struct FixedHeaders {
    cors: Option<Header>,
    nosniff: Header,
    hal_json: Header,
    json: Header,
    html: Header,
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

impl FixedHeaders {
    pub fn new(cors_origin: &str) -> FixedHeaders {
        let cors = if cors_origin.is_empty() {
            None
        } else {
            let h = header("Access-Control-Allow-Origin", cors_origin);
            if h.is_none() {
                crate::log!(
                    warn,
                    "[general] cors_origin is not plain ASCII and is not sent",
                    cors_origin = cors_origin
                );
            }
            h
        };
        let fixed = |name: &str, value: &str| {
            header(name, value).unwrap_or_else(|| unreachable!("ASCII header"))
        };
        FixedHeaders {
            cors,
            nosniff: fixed("X-Content-Type-Options", "nosniff"),
            hal_json: fixed("Content-Type", handler::HAL_JSON),
            json: fixed("Content-Type", handler::JSON),
            html: fixed("Content-Type", handler::HTML),
        }
    }

    fn content_type(&self, content_type: &str) -> Option<Header> {
        match content_type {
            handler::HAL_JSON => Some(self.hal_json.clone()),
            handler::JSON => Some(self.json.clone()),
            handler::HTML => Some(self.html.clone()),
            other => header("Content-Type", other),
        }
    }
}

/// What tiny_http is told about connections it had to give up (accept errors, threads
/// that could not start, connections refused at a limit): at most once a second each.
fn report(what: &str, detail: &dyn std::fmt::Display, suppressed: u64) {
    crate::log!(
        warn,
        what,
        detail = detail,
        same_events_not_logged = suppressed
    );
}

/// The limits of `[general]` for tiny_http.
fn limits(general: &General) -> tiny_http::Limits {
    tiny_http::Limits {
        request_header_timeout: Some(general.request_header_timeout),
        keepalive_timeout: Some(general.keepalive_timeout),
        send_timeout: Some(general.send_timeout),
        min_send_rate: MIN_SEND_RATE,
        max_connections: general.max_connections,
        max_connections_per_client: general.max_connections_per_client,
        max_body: MAX_BODY,
        client_key,
        report,
    }
}

fn bind(
    addr: SocketAddr,
    ssl: Option<tiny_http::SslConfig>,
    limits: tiny_http::Limits,
    front: tiny_http::Front,
) -> Result<Server, String> {
    let listener = listen_nodelay(addr).map_err(|e| e.to_string())?;
    // tiny_http's rustls set-up panics on some malformed keys instead of returning an
    // error; with `panic = "unwind"` this turns it into one.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        Server::from_listener_with_front(listener, ssl, limits, Some(front))
    }))
    .map_err(|_| "the TLS certificate or key could not be loaded".to_string())?
    .map_err(|e| e.to_string())
}

/// What a connection's thread does with each request it read (tiny_http's `front`):
/// answers it when that costs microseconds, and gives it back for the workers otherwise
/// (see [`Place::Connection`]). A small request answered here costs no hand-over to a
/// worker and back, two thread wake-ups.
fn front(app: &App, request: Request) -> Option<Request> {
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(app, request, Place::Connection)
    }));
    match served {
        Ok(Served::Answered) => None,
        Ok(Served::Pool(request)) => Some(request),
        // Slow work never comes back from a connection's thread; if it did, the workers
        // redo the (cheap) part that found it.
        Ok(Served::Slow(job)) => Some(job.request),
        Err(_) => {
            crate::log!(error, "a request handler panicked");
            None
        }
    }
}

/// What became of a request a thread served.
enum Served {
    Answered,
    /// For a worker (see [`Outcome::Pool`]).
    Pool(Request),
    /// For a login thread.
    Slow(LoginJob),
}

/// Answers `request` at `place`, or says who should.
fn serve(app: &App, request: Request, place: Place) -> Served {
    let started = Instant::now();
    if request.body_length().is_some_and(|n| n > IGNORED_BODY) {
        // already read by tiny_http (at most MAX_BODY): nothing to wait for
        respond(
            app,
            request,
            Reply::message(413, "This API takes no request body"),
            started,
        );
        return Served::Answered;
    }
    let outcome = {
        let incoming = incoming(&request);
        let outcome = app.handle_at(&incoming, place);
        if let (true, Outcome::Reply(reply)) = (crate::log::debug_enabled(), &outcome) {
            crate::log!(
                debug,
                "request",
                method = request.method(),
                path = incoming.target.split('?').next().unwrap_or(""),
                status = reply.status,
                micros = started.elapsed().as_micros()
            );
        }
        outcome
    };
    let work = match outcome {
        Outcome::Reply(reply) => {
            respond(app, request, reply, started);
            return Served::Answered;
        }
        Outcome::Pool => return Served::Pool(request),
        Outcome::Login(login) => Slow::Login(login),
        Outcome::Preview(preview) => Slow::Preview(preview),
    };
    Served::Slow(LoginJob {
        request,
        work,
        started,
    })
}

/// A listening socket whose accepted connections have TCP_NODELAY (Linux copies the
/// option from the listening socket). tiny_http writes a response through a 1 KiB buffer,
/// so anything longer leaves in two writes; with Nagle's algorithm the second one waits
/// for the client's delayed ACK and every such response on a keep-alive connection took
/// 40 ms. Public so the synthetic registry and the test fakes share it.
pub fn listen_nodelay(
    addr: impl std::net::ToSocketAddrs,
) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind(addr)?;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and a pointer to a c_int with its size.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(listener)
}

/// Slow work waiting for a login thread, with the request to answer.
enum Slow {
    Login(LoginRequest),
    Preview(Box<PreviewRequest>),
}

/// A login or a preview waiting for a login thread, with the request to answer.
struct LoginJob {
    request: Request,
    work: Slow,
    /// When the request was read, for `http_request_duration_seconds`.
    started: Instant,
}

/// How long `shutdown` waits for requests in flight (a client that reads its response
/// very slowly must not keep the process from stopping).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The running server. Dropping it shuts it down like [`Running::shutdown`].
pub struct Running {
    /// The address actually listened on (the real port when the config said 0).
    pub addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    server: Arc<Server>,
    /// Receives why the server cannot serve any more (see [`Running::failed`]).
    failed: Receiver<String>,
    workers: Vec<JoinHandle<()>>,
    login_queue: Option<Sender<LoginJob>>,
    login_threads: Vec<JoinHandle<()>>,
    /// Disconnected once every worker and login thread has ended (each holds a sender).
    ended: Receiver<()>,
}

/// Listens on `[general] socket_host:socket_port` (HTTPS when a certificate and key are
/// configured) and starts the worker and login threads.
pub fn start(app: Arc<App>) -> Result<Running, String> {
    let general = &app.config.general;
    let host = general
        .socket_host
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = general.socket_port;
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("[general] socket_host = {host:?}: cannot resolve: {e}"))?
        .collect();
    let ssl = match (&general.tls_certificate_file, &general.tls_key_file) {
        (Some(cert), Some(key)) => {
            let certificate = std::fs::read(cert)
                .map_err(|e| format!("[general] tls_certificate_file = {}: {e}", cert.display()))?;
            let private_key = std::fs::read(key)
                .map_err(|e| format!("[general] tls_key_file = {}: {e}", key.display()))?;
            check_pem(&certificate, &private_key)
                .map_err(|e| format!("[general] tls_certificate_file / tls_key_file: {e}"))?;
            Some(tiny_http::SslConfig {
                certificate,
                private_key,
            })
        }
        _ => None,
    };
    let mut last_error = format!("[general] socket_host = {host:?} resolves to no address");
    let mut bound = None;
    let front_app = Arc::clone(&app);
    let front: tiny_http::Front = Arc::new(move |request| front(&front_app, request));
    for addr in addrs {
        match bind(addr, ssl.clone(), limits(general), Arc::clone(&front)) {
            Ok(server) => {
                bound = Some(server);
                break;
            }
            Err(e) => last_error = format!("cannot listen on {addr}: {e}"),
        }
    }
    let server = bound.ok_or(last_error)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| "the server is not listening on an IP address".to_string())?;
    let workers = general.worker_threads.max(1);
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    let (fail, failed) = crossbeam_channel::bounded::<String>(1);
    let (login_queue, login_jobs) = crossbeam_channel::bounded::<LoginJob>(LOGIN_QUEUE);
    let (alive, ended) = crossbeam_channel::bounded::<()>(1);

    // Built first, so that an error below shuts down what was started.
    let mut running = Running {
        addr,
        stopping: Arc::clone(&stopping),
        server: Arc::clone(&server),
        failed,
        workers: Vec::with_capacity(workers),
        login_queue: Some(login_queue.clone()),
        login_threads: Vec::with_capacity(LOGIN_THREADS),
        ended,
    };
    let threads = Threads {
        app,
        server,
        fail,
        stopping,
        alive,
        login_queue,
        login_jobs,
    };
    // On an error `threads` (with the senders the threads wait on) is gone before
    // `running` shuts down what did start.
    threads.spawn(&mut running, workers)?;
    Ok(running)
}

/// What the threads of a server share; consumed by [`Threads::spawn`].
struct Threads {
    app: Arc<App>,
    server: Arc<Server>,
    fail: Sender<String>,
    stopping: Arc<AtomicBool>,
    alive: Sender<()>,
    login_queue: Sender<LoginJob>,
    login_jobs: Receiver<LoginJob>,
}

impl Threads {
    fn spawn(self, running: &mut Running, workers: usize) -> Result<(), String> {
        for i in 0..LOGIN_THREADS {
            let (app, jobs, alive) = (
                Arc::clone(&self.app),
                self.login_jobs.clone(),
                self.alive.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("http-login-{i}"))
                .spawn(move || {
                    let _alive = alive;
                    login_worker(&app, &jobs);
                })
                .map_err(|e| format!("cannot start a login thread: {e}"))?;
            running.login_threads.push(thread);
        }
        for i in 0..workers {
            let worker = Worker {
                app: Arc::clone(&self.app),
                server: Arc::clone(&self.server),
                fail: self.fail.clone(),
                logins: self.login_queue.clone(),
                stopping: Arc::clone(&self.stopping),
            };
            let alive = self.alive.clone();
            let thread = std::thread::Builder::new()
                .name(format!("http-worker-{i}"))
                .spawn(move || {
                    let _alive = alive;
                    worker.run();
                })
                .map_err(|e| format!("cannot start an HTTP worker thread: {e}"))?;
            running.workers.push(thread);
        }
        Ok(())
    }
}

/// Refuses what tiny_http's rustls set-up would panic on or reject without saying why:
/// no certificate, or a key that is neither PKCS#8 nor PKCS#1 RSA (OpenSSL's EC keys in
/// SEC1 form, encrypted keys).
fn check_pem(certificate: &[u8], key: &[u8]) -> Result<(), String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if !text(certificate).contains("-----BEGIN CERTIFICATE-----") {
        return Err("the certificate file holds no PEM certificate".into());
    }
    let key = text(key);
    if key.contains("-----BEGIN PRIVATE KEY-----")
        || key.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        return Ok(());
    }
    if key.contains("ENCRYPTED") {
        return Err("the private key is encrypted; store it without a passphrase".into());
    }
    Err(
        "the key file holds no unencrypted PKCS#8 or RSA private key; convert it with \
         `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key-pkcs8.pem`"
            .into(),
    )
}

impl Running {
    /// Ready with a sentence once the server cannot serve any more (its listening socket
    /// is unusable); the process should then exit non-zero so that it is restarted.
    pub fn failed(&self) -> &Receiver<String> {
        &self.failed
    }

    /// Stops taking requests, lets the workers finish what they have and the login
    /// threads answer the queued logins, and joins them; after 10 seconds it
    /// stops waiting (a client reading a response very slowly) and leaves them behind.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        // The workers hold the other senders; once they and this one are gone, the
        // login threads answer what is queued and end.
        self.login_queue = None;
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let finished = loop {
            match self.ended.recv_deadline(deadline) {
                Ok(()) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => break false,
            }
        };
        if !finished {
            crate::log!(
                warn,
                "stopping without waiting for requests still being answered",
                waited_seconds = SHUTDOWN_GRACE.as_secs()
            );
            return;
        }
        for thread in self.workers.drain(..).chain(self.login_threads.drain(..)) {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    app: Arc<App>,
    server: Arc<Server>,
    fail: Sender<String>,
    logins: Sender<LoginJob>,
    stopping: Arc<AtomicBool>,
}

impl Worker {
    fn run(self) {
        loop {
            match self.server.recv() {
                Ok(request) => {
                    // A bug must not take a worker away (with `panic = "unwind"`); the
                    // dropped request is answered 500 by tiny_http.
                    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.serve(request)
                    }));
                    if served.is_err() {
                        crate::log!(error, "a request handler panicked");
                    }
                }
                Err(_) if self.stopping.load(Ordering::SeqCst) => return,
                Err(e) => {
                    let why = format!("the HTTP listener stopped accepting connections: {e}");
                    crate::log!(error, why);
                    let _ = self.fail.try_send(why);
                    return;
                }
            }
        }
    }

    fn serve(&self, request: Request) {
        match serve(&self.app, request, Place::Worker) {
            Served::Answered => {}
            Served::Slow(job) => self.slow(job),
            Served::Pool(request) => {
                // A worker answers everything; if not, say so rather than hang.
                crate::log!(error, "a worker was told to hand a request to the workers");
                respond(
                    &self.app,
                    request,
                    Reply::message(500, "Internal error"),
                    Instant::now(),
                );
            }
        }
    }

    /// Queues slow work for a login thread, or answers 503 when the queue is full.
    fn slow(&self, job: LoginJob) {
        match self.logins.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                let busy = match job.work {
                    Slow::Login(_) => App::logins_busy(),
                    Slow::Preview(_) => App::previews_busy(),
                };
                respond(&self.app, job.request, busy, job.started);
            }
        }
    }
}

fn login_worker(app: &App, jobs: &Receiver<LoginJob>) {
    for job in jobs.iter() {
        // A bug in the work must not take the thread away; the dropped request is
        // answered 500 by tiny_http.
        let work = job.work;
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
            Slow::Login(login) => app.login(login),
            Slow::Preview(preview) => app.preview(preview),
        }));
        let Ok(reply) = reply else {
            crate::log!(error, "a login or cleanup preview panicked");
            continue;
        };
        respond(app, job.request, reply, job.started);
    }
}

/// The parts of a tiny_http request the handler reads (one pass over the headers).
fn incoming(request: &Request) -> Incoming<'_> {
    let method = match request.method() {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Head => Method::Head,
        tiny_http::Method::Post => Method::Post,
        tiny_http::Method::Options => Method::Options,
        _ => Method::Other,
    };
    let mut rq = Incoming {
        method,
        target: request.url(),
        authorization: None,
        accept: None,
        if_none_match: None,
        forwarded_for: None,
        peer: request
            .remote_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip()),
    };
    for h in request.headers() {
        let slot = if h.field.equiv("Authorization") {
            &mut rq.authorization
        } else if h.field.equiv("Accept") {
            &mut rq.accept
        } else if h.field.equiv("If-None-Match") {
            &mut rq.if_none_match
        } else if h.field.equiv("X-Forwarded-For") {
            // The last one: a proxy that adds its own header line instead of appending
            // to the client's puts it after the client's.
            rq.forwarded_for = Some(h.value.as_str());
            continue;
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(h.value.as_str());
        }
    }
    rq
}

/// Responses larger than this are handed to a writer thread of tiny_http's pool (the
/// connection stays open for the next request), which waits for a slow reader (within `send_timeout` and [`MIN_SEND_RATE`]); smaller ones fit in
/// the socket's buffer and are written at once by the worker (tiny_http fails such a
/// write after milliseconds without progress, and closes the connection: a client that
/// pipelines requests and reads nothing cannot hold a worker).
const SMALL_RESPONSE: usize = 8 * 1024;

/// Writes `reply`, with the headers every response carries, or hands it to a writer
/// thread (see [`SMALL_RESPONSE`]): a worker or login thread never waits for
/// a client to read. Errors (the client went away) are not worth more than a debug line.
/// Counted for `/metrics` (a large answer's duration ends where it is handed over).
fn respond(app: &App, request: Request, reply: Reply, started: Instant) {
    let small =
        reply.body.as_ref().len() <= SMALL_RESPONSE || *request.method() == tiny_http::Method::Head;
    let route = app.template_of(request.url());
    let status = reply.status;
    let (request, response) = response(app, request, reply);
    if !small {
        request.respond_in_background(response);
    } else if let Err(e) = request.respond(response) {
        crate::log!(debug, "could not send a response", error = e);
    }
    app.metrics.http.observe(route, status, started.elapsed());
}

/// `reply` as a tiny_http response, with the headers every response carries. Its body is
/// written from where it is (a cached document's shared bytes included), in one write.
fn response(app: &App, request: Request, reply: Reply) -> (Request, Response<std::io::Empty>) {
    let fixed = &app.headers;
    let mut headers = Vec::with_capacity(5 + reply.headers.len());
    if let Some(ct) = reply.content_type.and_then(|ct| fixed.content_type(ct)) {
        headers.push(ct);
    }
    if let Some(cors) = &fixed.cors {
        headers.push(cors.clone());
    }
    headers.push(fixed.nosniff.clone());
    if let Some(etag) = &reply.etag {
        headers.extend(header("ETag", etag.as_str()));
    }
    for (name, value) in &reply.headers {
        headers.extend(header(name, value));
    }
    let response = Response::from_bytes(StatusCode(reply.status), headers, reply.body)
        // Send even large bodies with Content-Length, never chunked: clients can show
        // progress, and HEAD gets the same length as GET.
        .with_chunked_threshold(usize::MAX);
    (request, response)
}
