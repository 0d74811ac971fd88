//! The HTTP server: tiny_http, `worker_threads` threads sharing one `Server` and each
//! calling `recv()`, plus a few login threads fed through a bounded queue.
//!
//! Also the places where tiny_http 0.12 needs a guard rail:
//! - Its accept thread ends for good on the first `accept()` error (e.g. out of file
//!   descriptors during a connection flood) and the server would then silently never
//!   accept again. A worker that sees this reopens the listener on the same address.
//! - A request body it has not buffered (more than 1 KiB) is drained when the `Request`
//!   is dropped, blocking that thread until the client sends it (upstream's drain also
//!   allocated the whole declared `Content-Length` at once; patched, see
//!   patches/README.md). The API takes no bodies: such requests get 413 from a separate thread, or,
//!   above [`MAX_DRAINED_BODY`], are never dropped at all.
//! - It panics on a TLS private key it cannot parse, so the key is checked first.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tiny_http::{Header, Request, Response, Server, StatusCode};

use super::handler::{self, Incoming, LoginRequest, Method, Outcome, Reply};
use super::App;

/// Threads that run logins (LDAP round trips, bcrypt). Enough for a burst of people
/// logging in at once; more would only let a password guesser use more CPU.
const LOGIN_THREADS: usize = 4;
/// Logins waiting for a login thread; beyond this the answer is 503 at once.
const LOGIN_QUEUE: usize = 32;
/// Bodies up to this size are drained (on a side thread) so the connection stays
/// usable; larger declared bodies are abandoned with their connection.
const MAX_DRAINED_BODY: usize = 1024 * 1024;
/// tiny_http reads bodies up to this size itself, before `recv()` returns.
const BUFFERED_BODY: usize = 1024;

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

/// The listening socket, replaceable when tiny_http's accept thread has died.
struct Listener {
    current: RwLock<Arc<Server>>,
    addr: SocketAddr,
    ssl: Option<tiny_http::SslConfig>,
    workers: usize,
}

impl Listener {
    fn current(&self) -> Arc<Server> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// `failed.recv()` returned an error while not shutting down: its accept thread is
    /// gone. The first worker to notice binds a new server on the same address; the
    /// others, woken from the dead server, move over to it.
    fn reopen(&self, failed: &Arc<Server>, error: &std::io::Error, stopping: &AtomicBool) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        crate::log!(
            error,
            "the HTTP listener stopped accepting connections; opening it again",
            address = self.addr,
            error = error
        );
        let mut delay = Duration::from_millis(50);
        loop {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            match bind(self.addr, self.ssl.clone()) {
                Ok(server) => {
                    *current = Arc::new(server);
                    break;
                }
                Err(e) => {
                    crate::log!(error, "cannot listen again", address = self.addr, error = e);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        crate::log!(info, "listening again", address = self.addr);
        for _ in 1..self.workers {
            failed.unblock();
        }
    }
}

fn bind(addr: SocketAddr, ssl: Option<tiny_http::SslConfig>) -> Result<Server, String> {
    let listener = listen_nodelay(addr).map_err(|e| e.to_string())?;
    // tiny_http's rustls set-up panics on some malformed keys instead of returning an
    // error; with `panic = "unwind"` this turns it into one.
    std::panic::catch_unwind(move || Server::from_listener(listener, ssl))
        .map_err(|_| "the TLS certificate or key could not be loaded".to_string())?
        .map_err(|e| e.to_string())
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

/// A login waiting for a login thread, with the request to answer.
struct LoginJob {
    request: Request,
    login: LoginRequest,
}

/// How long `shutdown` waits for requests in flight (a client that reads its response
/// very slowly must not keep the process from stopping).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The running server. Dropping it shuts it down like [`Running::shutdown`].
pub struct Running {
    /// The address actually listened on (the real port when the config said 0).
    pub addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    listener: Arc<Listener>,
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
    for addr in addrs {
        match bind(addr, ssl.clone()) {
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
    let listener = Arc::new(Listener {
        current: RwLock::new(Arc::new(server)),
        addr,
        ssl,
        workers,
    });
    let stopping = Arc::new(AtomicBool::new(false));
    let (login_queue, login_jobs) = crossbeam_channel::bounded::<LoginJob>(LOGIN_QUEUE);
    let (alive, ended) = crossbeam_channel::bounded::<()>(1);

    // Built first, so that an error below shuts down what was started.
    let mut running = Running {
        addr,
        stopping: Arc::clone(&stopping),
        listener: Arc::clone(&listener),
        workers: Vec::with_capacity(workers),
        login_queue: Some(login_queue.clone()),
        login_threads: Vec::with_capacity(LOGIN_THREADS),
        ended,
    };
    let threads = Threads {
        app,
        listener,
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
    listener: Arc<Listener>,
    stopping: Arc<AtomicBool>,
    alive: Sender<()>,
    login_queue: Sender<LoginJob>,
    login_jobs: Receiver<LoginJob>,
}

impl Threads {
    fn spawn(self, running: &mut Running, workers: usize) -> Result<(), String> {
        let side_threads = Arc::new(AtomicUsize::new(0));
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
                listener: Arc::clone(&self.listener),
                logins: self.login_queue.clone(),
                stopping: Arc::clone(&self.stopping),
                side_threads: Arc::clone(&side_threads),
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
    /// Stops taking requests, lets the workers finish what they have and the login
    /// threads answer the queued logins, and joins them; after 10 seconds it
    /// stops waiting (a client reading a response very slowly) and leaves them behind.
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let server = self.listener.current();
        for _ in 0..self.workers.len() {
            server.unblock();
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

/// Side threads (draining refused bodies, sending large responses) running at most at
/// once; past this the work is done on the worker itself.
const MAX_SIDE_THREADS: usize = 64;
/// Responses larger than this are sent from a side thread: a client that reads them
/// slowly then holds that thread rather than one of the few workers.
const LARGE_RESPONSE: usize = 256 * 1024;

/// One running side thread; dropping it frees the place.
struct SidePermit(Arc<AtomicUsize>);

impl SidePermit {
    fn take(counter: &Arc<AtomicUsize>) -> Option<SidePermit> {
        let mut n = counter.load(Ordering::SeqCst);
        loop {
            if n >= MAX_SIDE_THREADS {
                return None;
            }
            match counter.compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Some(SidePermit(Arc::clone(counter))),
                Err(actual) => n = actual,
            }
        }
    }
}

impl Drop for SidePermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Worker {
    app: Arc<App>,
    listener: Arc<Listener>,
    logins: Sender<LoginJob>,
    stopping: Arc<AtomicBool>,
    side_threads: Arc<AtomicUsize>,
}

impl Worker {
    fn run(self) {
        loop {
            let server = self.listener.current();
            match server.recv() {
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
                Err(e) => self.listener.reopen(&server, &e, &self.stopping),
            }
        }
    }

    fn serve(&self, request: Request) {
        let started = crate::log::debug_enabled().then(Instant::now);
        if request.body_length().is_some_and(|n| n > BUFFERED_BODY) {
            self.refuse_body(request);
            return;
        }
        let outcome = {
            let incoming = incoming(&request);
            let outcome = self.app.handle(&incoming);
            if let (Some(started), Outcome::Reply(reply)) = (started, &outcome) {
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
        match outcome {
            Outcome::Reply(reply) => self.send(request, reply),
            Outcome::Login(login) => match self.logins.try_send(LoginJob { request, login }) {
                Ok(()) => {}
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                    respond(&self.app, job.request, App::logins_busy());
                }
            },
        }
    }

    /// Answers on this thread, or on a side thread when the body is large (see
    /// [`LARGE_RESPONSE`]).
    fn send(&self, request: Request, reply: Reply) {
        let large = reply.body.as_ref().len() > LARGE_RESPONSE
            && *request.method() != tiny_http::Method::Head;
        if let Some(permit) = large
            .then(|| SidePermit::take(&self.side_threads))
            .flatten()
        {
            let app = Arc::clone(&self.app);
            // If the thread cannot start, the closure and the request in it are dropped
            // and tiny_http answers 500.
            let _ = std::thread::Builder::new()
                .name("http-send".into())
                .spawn(move || {
                    let _permit = permit;
                    respond(&app, request, reply);
                });
            return;
        }
        respond(&self.app, request, reply);
    }

    /// 413 for a request whose body tiny_http did not read: answered (and the body
    /// drained) on a side thread so that a client that never sends it cannot hold a
    /// worker; a body too large to drain safely keeps its request forever unanswered.
    fn refuse_body(&self, request: Request) {
        let declared = request.body_length().unwrap_or(usize::MAX);
        let permit = (declared <= MAX_DRAINED_BODY)
            .then(|| SidePermit::take(&self.side_threads))
            .flatten();
        if let Some(permit) = permit {
            let app = Arc::clone(&self.app);
            // If the thread cannot start, the request is dropped here and drains here.
            let _ = std::thread::Builder::new()
                .name("http-drain".into())
                .spawn(move || {
                    let _permit = permit;
                    respond(
                        &app,
                        request,
                        Reply::message(413, "This API takes no request body"),
                    );
                });
            return;
        }
        crate::log!(
            warn,
            "request body refused; its connection is abandoned",
            peer = request
                .remote_addr()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip()),
            content_length = declared
        );
        std::mem::forget(request);
    }
}

fn login_worker(app: &App, jobs: &Receiver<LoginJob>) {
    for job in jobs.iter() {
        let reply = app.login(job.login);
        respond(app, job.request, reply);
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
            &mut rq.forwarded_for
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(h.value.as_str());
        }
    }
    rq
}

/// Writes `reply` with the headers every response carries. Errors (the client went
/// away) are not worth more than a debug line.
fn respond(app: &App, request: Request, reply: Reply) {
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
    let length = reply.body.as_ref().len();
    let response = Response::new(
        StatusCode(reply.status),
        headers,
        Cursor::new(reply.body),
        Some(length),
        None,
    )
    // Send even large bodies with Content-Length, never chunked: clients can show
    // progress, and HEAD gets the same length as GET.
    .with_chunked_threshold(usize::MAX);
    if let Err(e) = request.respond(response) {
        crate::log!(debug, "could not send a response", error = e);
    }
}
