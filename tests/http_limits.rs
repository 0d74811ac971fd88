//! One client must never take the service down (issue 9): each test runs the real binary
//! as a child process with short timeouts, attacks it the way the issue describes, and
//! asserts what the service answers, that it closes the attacker's connections, that a
//! second client (from 127.0.0.2) is still answered, and that the threads and descriptors
//! of the service process (`/proc/<pid>/task`, `/proc/<pid>/fd`) come back to where they
//! were before. Nothing here measures time: every wait polls a condition up to a deadline.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitlab_registry_usage_rest::auth::jwt::Tokens;
use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::snapshot::{self, Builder, LayerRef, ScannedTag, Snapshot};
use support::net::{connect_from, read_until_closed};
use support::{basic_auth, free_port, ChildGuard, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const SECRET: &str = "Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA-http-limits";
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How long a test waits for anything (generous: CI machines are shared).
const PATIENCE: Duration = Duration::from_secs(60);

/// Timeouts short enough for tests.
const SHORT: &str = "request_header_timeout = 1 second\nkeepalive_timeout = 1 second\n\
                     send_timeout = 1 second\n";

struct Service {
    child: ChildGuard,
    port: u16,
    token: String,
    log: PathBuf,
    _dir: TempDir,
}

/// Resource limits for the child, applied between fork and exec.
#[derive(Default, Clone, Copy)]
struct ChildLimits {
    open_files: Option<u64>,
    /// Threads of the (unprivileged) user the child runs as.
    threads_as_nobody: Option<u64>,
}

fn start(general: &str, snapshot: Option<&Snapshot>, limits: ChildLimits) -> Service {
    let dir = TempDir::new("http-limits");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("admin:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    // A snapshot, so that /health answers 200.
    let path = dir.path().join("snapshot.json");
    match snapshot {
        Some(s) => snapshot::save(s, &path).unwrap(),
        None => snapshot::save(&Builder::default().finish(1_700_000_000.0), &path).unwrap(),
    }
    let snapshot_line = format!("snapshot_file = {}\n", path.display());
    let port = free_port();
    // The registry is unreachable: the first scan fails at once and is retried much later.
    let text = format!(
        "[general]\nsocket_host = 127.0.0.1\nsocket_port = {port}\nauth_backend = htpasswd\n\
         refresh_interval = 1 hour\nworker_threads = 2\n{snapshot_line}{general}\n\
         [jwt]\nsecret_key = {SECRET}\nauth_token_expires = 1 hour\n\
         [htpasswd]\nfile = {}\n\
         [registry]\nregistry_base_url = http://127.0.0.1:1/\nrequest_timeout = 1s\n",
        htpasswd.display()
    );
    let conf = dir.path().join("service.conf");
    std::fs::write(&conf, &text).unwrap();
    let (config, _) = Config::parse(&text).unwrap();
    let token = Tokens::new(&config.jwt).unwrap().mint("admin");
    let log = dir.path().join("service.log");

    let mut command = Command::new(BIN);
    command
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if limits.threads_as_nobody.is_some() {
        // the files the service reads must be readable by that user
        for path in [
            dir.path().to_path_buf(),
            conf.clone(),
            htpasswd.clone(),
            dir.path().join("snapshot.json"),
        ] {
            let mode = if path.is_dir() { 0o755 } else { 0o644 };
            std::os::unix::fs::PermissionsExt::set_mode(
                &mut std::fs::metadata(&path).unwrap().permissions(),
                mode,
            );
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
    }
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if let Some(n) = limits.open_files {
                    let rl = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(n) = limits.threads_as_nobody {
                    let rl = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NPROC, &rl) != 0
                        || libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(65534) != 0
                        || libc::setuid(65534) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let child = ChildGuard::new("service", command.spawn().unwrap());
    let service = Service {
        child,
        port,
        token,
        log,
        _dir: dir,
    };
    // Up once it answers; settled once the first scan has failed (no scan threads or
    // registry sockets are left then).
    service.wait_for("the service to answer /health", || {
        connect_from(OTHER, port, None).is_ok_and(|mut s| {
            let (reply, _) = exchange(&mut s, HEALTH);
            reply.starts_with("HTTP/1.1 ")
        })
    });
    service.wait_for("the first scan to fail", || {
        service.log_text().contains("scan failed")
    });
    service
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

impl Service {
    fn pid(&self) -> u32 {
        self.child.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn baseline(&self) -> (usize, usize) {
        (self.threads(), self.fds())
    }

    /// Polls `f` until it holds (panics after [`PATIENCE`], or if the service died).
    fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if f() {
                return;
            }
            let alive = std::fs::metadata(format!("/proc/{}/task", self.pid())).is_ok();
            assert!(
                alive && start.elapsed() < PATIENCE,
                "waited in vain for {what} (service alive: {alive}); its log:\n{}",
                support::file_tail(&self.log, 4000)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the service has no more threads and descriptors than at `baseline`:
    /// everything the attack took is released. (Idle connection threads end 5 s after
    /// their last connection.)
    fn wait_back_to(&self, baseline: (usize, usize)) {
        let mut now = (0, 0);
        self.wait_for("threads and descriptors back to the baseline", || {
            now = self.baseline();
            now.0 <= baseline.0 && now.1 <= baseline.1
        });
    }

    /// `/health` from another address than the attacker's is answered 200.
    fn other_client_is_answered(&self) {
        let mut s = connect_from(OTHER, self.port, None).expect("connect from 127.0.0.2");
        let (reply, closed) = exchange(&mut s, HEALTH);
        assert!(reply.starts_with("HTTP/1.1 200 "), "{reply:?}");
        assert!(closed);
    }

    fn connect(&self) -> TcpStream {
        connect_from(ATTACKER, self.port, None).expect("connect")
    }
}

/// Sends `request` and reads until the service closes the connection: (what came back,
/// whether it closed). Not closed means [`PATIENCE`] passed without a close.
fn exchange(stream: &mut TcpStream, request: &[u8]) -> (String, bool) {
    if !request.is_empty() {
        // a service that already closed may reset the connection
        let _ = stream.write_all(request);
    }
    read_to_close(stream)
}

fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    read_until_closed(stream)
}

/// Status codes of every response in `reply`.
fn statuses(reply: &str) -> Vec<&str> {
    reply
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &reply[i + 9..(i + 12).min(reply.len())])
        .collect()
}

// ---- 1. pipelining --------------------------------------------------------------------

#[test]
fn a_pipelining_client_that_never_reads_holds_one_connection_and_bounded_memory() {
    let service = start(SHORT, None, ChildLimits::default());
    let baseline = service.baseline();
    let rss_before = service.rss_kib();
    let mut flooder = connect_from(ATTACKER, service.port, Some(4096)).unwrap();
    let mut writer = flooder.try_clone().unwrap();
    writer.set_write_timeout(Some(PATIENCE)).unwrap();
    // 1M requests (33 MB): more than the socket buffers hold
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1_000_000);
    // Blocks once the buffers are full (the service reads one request at a time and
    // cannot write its answers), and fails once the service drops the connection.
    let sender = std::thread::spawn(move || writer.write_all(&request).is_ok());
    for _ in 0..5 {
        service.other_client_is_answered();
    }
    // The service gives up on the connection (its answers make no progress) and frees
    // everything while the flooder still holds its socket open.
    service.wait_back_to(baseline);
    let rss_after = service.rss_kib();
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(!sender.join().unwrap(), "all 1M requests were taken in");
    let (reply, closed) = read_to_close(&mut flooder);
    assert!(closed);
    let answered = statuses(&reply).len();
    assert!(
        (1..1_000_000).contains(&answered),
        "{answered} of 1M answered"
    );
    service.other_client_is_answered();
}

// ---- 2. requests that used to leak a thread and two descriptors ------------------------

#[test]
fn bodies_that_never_arrive_and_other_http_versions_are_answered_and_released() {
    let service = start(SHORT, None, ChildLimits::default());
    let baseline = service.baseline();
    let cases: [(&[u8], &str); 6] = [
        // a body within the limit that never comes: 408 once the head timeout passes
        (
            b"POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n",
            "408",
        ),
        // larger than the service reads: 413 at once
        (
            b"POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
            "413",
        ),
        (
            b"POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
            "413",
        ),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505"),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", "505"),
        (b"GET /health HTTP/0.9\r\n\r\n", "505"),
    ];
    let mut open = Vec::new();
    for _ in 0..8 {
        for (request, status) in cases {
            let mut s = service.connect();
            s.write_all(request).unwrap();
            open.push((s, status));
        }
    }
    service.other_client_is_answered();
    for (mut s, status) in open {
        let (reply, closed) = read_to_close(&mut s);
        assert_eq!(statuses(&reply), [status], "{reply:?}");
        assert!(closed, "{status}: not closed");
    }
    service.wait_back_to(baseline);
    service.other_client_is_answered();
}

// ---- 3. resource exhaustion ------------------------------------------------------------

#[test]
fn out_of_descriptors_costs_connections_and_the_listener_lives_on() {
    let general = "request_header_timeout = 1 hour\nmax_connections_per_client = 1000\n";
    let limits = ChildLimits {
        open_files: Some(64),
        ..ChildLimits::default()
    };
    let service = start(general, None, limits);
    let started = Instant::now();
    // Idle connections until the service has no descriptor left (each takes two).
    let mut idle: Vec<TcpStream> = (0..60).map(|_| service.connect()).collect();
    service.wait_for("accept to fail with EMFILE", || {
        service.log_text().contains("cannot accept a connection")
    });
    // Past that, a new connection is accepted and closed at once, not left waiting.
    let mut late = service.connect();
    let (reply, closed) = exchange(&mut late, HEALTH);
    assert!(closed && reply.is_empty(), "{reply:?}");
    idle.truncate(0);
    // Descriptors are back: the listener still accepts.
    service.wait_for("an answer once descriptors are free", || {
        connect_from(OTHER, service.port, None)
            .is_ok_and(|mut s| exchange(&mut s, HEALTH).0.starts_with("HTTP/1.1 200 "))
    });
    let log = service.log_text();
    let lines = log.matches("cannot accept a connection").count() as u64;
    assert!(
        lines <= started.elapsed().as_secs() + 1,
        "{lines} log lines about accept errors: not at most one a second\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_thread_that_cannot_start_costs_one_connection_and_the_listener_lives_on() {
    // RLIMIT_NPROC binds only an unprivileged user: the service runs as nobody.
    assert_eq!(
        // SAFETY: a plain getter.
        unsafe { libc::geteuid() },
        0,
        "this test runs the service as user nobody with a thread limit, which needs root"
    );
    let general = "request_header_timeout = 1 hour\nmax_connections_per_client = 1000\n";
    let limits = ChildLimits {
        threads_as_nobody: Some(40),
        ..ChildLimits::default()
    };
    let service = start(general, None, limits);
    let mut idle = Vec::new();
    service.wait_for("a thread to fail to start", || {
        idle.push(service.connect());
        service
            .log_text()
            .contains("cannot start a thread for a connection")
    });
    // Such a connection was closed at once.
    let closed = idle
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            matches!((&mut &**s).read(&mut [0u8; 1]), Ok(0))
        })
        .count();
    assert!(closed >= 1, "no connection was closed");
    idle.truncate(0);
    service.wait_for("an answer once threads are free", || {
        connect_from(OTHER, service.port, None)
            .is_ok_and(|mut s| exchange(&mut s, HEALTH).0.starts_with("HTTP/1.1 200 "))
    });
    let log = service.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("PoisonError"), "{log}");
}

// ---- 4. slow readers of the largest document --------------------------------------------

/// A snapshot whose `/repositories?embed=true&links=true` is several MB.
fn large_snapshot() -> Snapshot {
    let mut b = Builder::default();
    for r in 0..4000 {
        let tags = (0..5)
            .map(|t| ScannedTag {
                name: format!("release-{t}"),
                digest: None,
                layers: vec![LayerRef {
                    digest: format!("sha256:{r}-{t}").into(),
                    size: 1000 + t,
                }]
                .into(),
            })
            .collect();
        b.add_repository(&format!("group{}/project-{r}", r % 13), Some(tags), None);
    }
    b.finish(1_700_000_000.0)
}

#[test]
fn slow_readers_of_the_largest_document_hold_only_their_own_connections() {
    // send_timeout long enough that the slow readers are still held when the ninth
    // connection comes
    let general = "request_header_timeout = 1 second\nsend_timeout = 5 seconds\n\
                   max_connections_per_client = 8\n";
    let service = start(general, Some(&large_snapshot()), ChildLimits::default());
    let request = format!(
        "GET /repositories?embed=true&links=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        service.token
    );
    // The document's size, read by a client that reads.
    let mut reader = connect_from(OTHER, service.port, None).unwrap();
    let (whole, _) = exchange(
        &mut reader,
        request
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(
        whole.starts_with("HTTP/1.1 200 "),
        "{}",
        &whole[..200.min(whole.len())]
    );
    assert!(
        whole.len() > 6_000_000,
        "the document has {} bytes",
        whole.len()
    );
    let baseline = service.baseline();

    let mut slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = connect_from(ATTACKER, service.port, Some(4096)).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            s
        })
        .collect();
    // The attacker's next connection is over its share: closed at once.
    let mut ninth = service.connect();
    let (reply, closed) = exchange(&mut ninth, HEALTH);
    assert!(closed && reply.is_empty(), "{reply:?}");
    // Everyone else is served meanwhile, the large document included.
    for _ in 0..3 {
        service.other_client_is_answered();
    }
    // The slow readers are dropped (no progress for send_timeout) while they still hold
    // their sockets: the service's threads and descriptors are back.
    service.wait_back_to(baseline);
    for s in &mut slow {
        let (rest, closed) = read_to_close(s);
        assert!(closed);
        assert!(rest.len() + 12 < whole.len(), "a slow reader got it all");
    }
}

/// A large answer is written by a pool thread and its connection stays open for the next
/// request (since http9 the connection's own thread wrote it and closed the connection
/// after it, so every large answer cost its client a new connection).
#[test]
fn a_large_answer_keeps_its_keep_alive_connection_open() {
    let service = start("", Some(&large_snapshot()), ChildLimits::default());
    let request = format!(
        "GET /repositories?embed=true&links=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        service.token
    );
    let mut stream = connect_from(OTHER, service.port, None).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // each request only once the previous answer has been read whole
    for _ in 0..2 {
        stream.write_all(request.as_bytes()).unwrap();
        let (head, body) = read_one_response(&mut stream);
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(body > 6_000_000, "{body} bytes");
    }
}

/// Reads one response with a `Content-Length` body: (its head, the body's length).
fn read_one_response(stream: &mut TcpStream) -> (String, usize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("the head of an answer");
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("the body of an answer");
    (head, length)
}

// ---- 5. body drains ---------------------------------------------------------------------

#[test]
fn declared_bodies_that_never_come_hold_no_worker_and_a_proper_post_is_answered() {
    let service = start(SHORT, None, ChildLimits::default());
    let baseline = service.baseline();
    let mut large: Vec<TcpStream> = Vec::new();
    let mut small: Vec<TcpStream> = Vec::new();
    for i in 0..64 {
        let mut s = service.connect();
        let length = if i % 2 == 0 { 1_000_000 } else { 4000 };
        s.write_all(
            format!("POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        if i % 2 == 0 { &mut large } else { &mut small }.push(s);
    }
    // A login with a proper body, and a body the API refuses, from another client.
    let login = format!(
        "POST /auth_token HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 7\r\n\
         Connection: close\r\n\r\nignored",
        basic_auth("admin", "pw")
    );
    let mut s = connect_from(OTHER, service.port, None).unwrap();
    let (reply, _) = exchange(&mut s, login.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    assert!(reply.contains("\"auth_token\""), "{reply}");
    let mut body = b"POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 5000]);
    let mut s = connect_from(OTHER, service.port, None).unwrap();
    let (reply, _) = exchange(&mut s, &body);
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    assert!(reply.contains("takes no request body"), "{reply}");
    // Over 64 KiB: 413 and close without reading; the others: 408 when time is up.
    for mut s in large {
        let (reply, closed) = read_to_close(&mut s);
        assert_eq!(statuses(&reply), ["413"], "{reply}");
        assert!(closed);
    }
    for mut s in small {
        let (reply, closed) = read_to_close(&mut s);
        assert_eq!(statuses(&reply), ["408"], "{reply}");
        assert!(closed);
    }
    service.wait_back_to(baseline);
}

// ---- 6. request smuggling -----------------------------------------------------------------

#[test]
fn content_length_and_transfer_encoding_that_do_not_delimit_a_body_are_400_and_close() {
    let service = start(SHORT, None, ChildLimits::default());
    let baseline = service.baseline();
    // Each body is itself a request: read as "no body", it would be answered too.
    let smuggled = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(smuggled.len(), 33);
    for framing in [
        "Content-Length: abc",
        "Content-Length: -1",
        "Content-Length: +33",
        "Content-Length: 99999999999999999999",
        "Content-Length: 33, 33",
        "Content-Length: 33\r\nContent-Length: 34",
        "Content-Length: 33\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 33",
        "Transfer-Encoding: identity",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    ] {
        let mut s = service.connect();
        let request =
            format!("POST /auth_token HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n{smuggled}");
        let (reply, closed) = exchange(&mut s, request.as_bytes());
        assert_eq!(statuses(&reply), ["400"], "{framing:?}: {reply}");
        assert!(closed, "{framing:?}");
    }
    // Framing that is right: the body is read as a body, the next request as a request.
    for framing in [
        "Content-Length: 33",
        "Content-Length: 33\r\nContent-Length: 33",
        "Transfer-Encoding: chunked",
    ] {
        let body = if framing.contains("chunked") {
            format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len())
        } else {
            smuggled.to_string()
        };
        let request = format!(
            "POST /auth_token HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n{body}\
             GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut s = service.connect();
        let (reply, closed) = exchange(&mut s, request.as_bytes());
        assert_eq!(statuses(&reply), ["401", "200"], "{framing:?}: {reply}");
        assert!(closed);
    }
    service.wait_back_to(baseline);
    service.other_client_is_answered();
}

// ---- 7. timeouts and malformed heads ---------------------------------------------------------

#[test]
fn idle_slow_and_keep_alive_connections_are_closed_and_malformed_heads_are_400() {
    let service = start(SHORT, None, ChildLimits::default());
    let baseline = service.baseline();
    // Silent: closed without an answer.
    let mut idle = service.connect();
    // Slowloris: a byte of a header now and then, the head never complete: 408.
    let mut slowloris = service.connect();
    slowloris.set_nodelay(true).unwrap();
    slowloris
        .write_all(b"GET /health HTTP/1.1\r\nX-A: ")
        .unwrap();
    let mut dripper = slowloris.try_clone().unwrap();
    let drip = std::thread::spawn(move || {
        for _ in 0..3000 {
            if dripper.write_all(b"a").is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    // Keep-alive: answered, then closed once idle.
    let mut keep_alive = service.connect();
    keep_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    let (reply, closed) = read_to_close(&mut idle);
    assert!(closed && reply.is_empty(), "{reply:?}");
    let (reply, closed) = read_to_close(&mut slowloris);
    assert_eq!(statuses(&reply), ["408"], "{reply}");
    assert!(closed);
    assert!(drip.join().unwrap(), "the slow head was never cut off");
    let (reply, closed) = read_to_close(&mut keep_alive);
    assert_eq!(statuses(&reply), ["200"], "{reply}");
    assert!(closed);

    for (head, status) in [
        (
            &b"GET /h\xc3\xa9alth HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            "400",
        ),
        (b"GET /health HTTP/1.1\nHost: x\n\n", "400"),
        (b"GET /health HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", "400"),
        (b"GET /health HTTP/1.1\r\nX-A: \x01\r\n\r\n", "400"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "400"),
        (b"GET  /health HTTP/1.1\r\n\r\n", "400"),
        (b"GET /health HTTP/1.1 extra\r\n\r\n", "400"),
        (b"GET /health HTTP/1.2\r\n\r\n", "505"),
        (b"GET /health HTTP/0.9\r\n\r\n", "505"),
        (b"GET /health HTTP/x\r\n\r\n", "400"),
    ] {
        let mut s = service.connect();
        let (reply, closed) = exchange(&mut s, head);
        assert_eq!(statuses(&reply), [status], "{head:?}: {reply}");
        assert!(closed, "{head:?}");
    }
    service.wait_back_to(baseline);
    service.other_client_is_answered();
}

// ---- the connection limits -----------------------------------------------------------------

#[test]
fn past_max_connections_or_a_clients_share_a_new_connection_is_closed_at_once() {
    // Timeouts far away: a close can only be a refusal.
    let general = "request_header_timeout = 1 hour\nmax_connections = 12\n\
                   max_connections_per_client = 8\n";
    let service = start(general, None, ChildLimits::default());
    let refused = |source: Ipv4Addr| {
        let mut s = connect_from(source, service.port, None).unwrap();
        let (reply, closed) = exchange(&mut s, HEALTH);
        closed && reply.is_empty()
    };
    let held: Vec<TcpStream> = (0..8).map(|_| service.connect()).collect();
    // Held connections count once they are accepted.
    service.wait_for("the attacker's ninth connection to be refused", || {
        refused(ATTACKER)
    });
    // Another client has its own share...
    let others: Vec<TcpStream> = (0..4)
        .map(|_| connect_from(OTHER, service.port, None).unwrap())
        .collect();
    // ...up to the total.
    let third = Ipv4Addr::new(127, 0, 0, 3);
    service.wait_for("a connection past max_connections to be refused", || {
        refused(third)
    });
    drop(others);
    service.wait_for("room for another client again", || !refused(OTHER));
    drop(held);
    service.other_client_is_answered();
}
