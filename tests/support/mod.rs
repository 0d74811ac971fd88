//! Test harness: real servers (slapd, docker-registry) and scripted fakes, started on
//! 127.0.0.1 with free ports and stopped when their guard drops, even when a test fails.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something accepts TCP connections on `port`, or panic after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within {timeout:?}");
}

/// Find `name` on PATH (or in /usr/sbin, /usr/bin), or fail the test with how to install it.
/// A missing server never lets a test pass silently.
pub fn require_binary(name: &str, debian_package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` was not found. These tests run a real {name}; install it with:\n    \
         apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {debian_package}\n\
         (.ci/run does this on a fresh machine)"
    );
}

/// A temporary directory removed on drop (kept when KEEP_TEST_DIRS is set, for debugging).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "grur-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard {
    pub child: Child,
    pub name: String,
}

impl ChildGuard {
    pub fn new(name: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child,
            name: name.to_string(),
        }
    }

    /// Stop the process now (e.g. to test "server down"); dropping later is harmless.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- registry side of the harness (registry.rs, token_issuer.rs, push.rs, fake_registry.rs) ----

pub mod fake_registry;
pub mod net;
pub mod push;
pub mod registry;
pub mod service;
pub mod synthetic;
pub mod token_issuer;

/// Content digest as the registry computes it: `sha256:` + lowercase hex.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = hmac_sha256::Hash::hash(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Standard base64 (RFC 4648 §4): the service's own implementation.
pub use gitlab_registry_usage_rest::base64::{decode as base64_decode, encode as base64_encode};

/// `Authorization` header value for HTTP Basic.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// A ureq agent for test clients: HTTP errors are values (not `Err`), no proxy from the
/// environment, no redirects followed, `timeout` for the whole call.
pub fn test_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A whole HTTP answer, read into memory.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body (status {}), got {e}: {}",
                self.status,
                self.text()
            )
        })
    }
}

/// One HTTP request with a 30 s timeout; transport errors (refused, timeout) are `Err`,
/// every HTTP status is `Ok`.
pub fn try_http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpReply, String> {
    try_http_request_with(
        &test_agent(Duration::from_secs(30)),
        method,
        url,
        headers,
        body,
    )
}

/// Like [`try_http_request`] with a given agent.
pub fn try_http_request_with(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<HttpReply, String> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let result = match body {
        Some(bytes) => {
            let request = builder
                .body(bytes.to_vec())
                .map_err(|e| format!("{method} {url}: bad request: {e}"))?;
            agent.run(request)
        }
        None => {
            let request = builder
                .body(())
                .map_err(|e| format!("{method} {url}: bad request: {e}"))?;
            agent.run(request)
        }
    };
    let mut response = result.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = if method.eq_ignore_ascii_case("HEAD") {
        Vec::new()
    } else {
        response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?
    };
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// [`try_http_request`] that panics on transport errors (any HTTP status is returned).
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpReply {
    try_http_request(method, url, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

/// The last `max_bytes` of a (log) file, for panic messages.
pub fn file_tail(path: &Path, max_bytes: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max_bytes);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
