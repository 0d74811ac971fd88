//! A stand-in for GitLab's `/jwt/auth`: issues RS256 registry tokens the way GitLab does
//! (catalog access only for admins and only for exactly `registry:catalog:*`; denied scopes
//! are silently dropped from the token, never refused). Runs on its own port in a background
//! thread; stopped on drop.
#![allow(dead_code)]

use super::{base64_decode, require_binary, TempDir};
use jwt_simple::prelude::{Claims, Duration as JwtDuration, RS256KeyPair, RSAKeyPairLike};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-personal-access-token";
pub const USER: &str = "developer";
pub const USER_PASSWORD: &str = "developer-personal-access-token";
pub const DEFAULT_SERVICE: &str = "container_registry";
pub const DEFAULT_ISSUER: &str = "gitlab-issuer";

/// A user the issuer knows.
#[derive(Debug, Clone)]
pub struct IssuerUser {
    pub name: String,
    pub password: String,
    /// Admins get `registry:catalog:*` and every requested repository action in
    /// {pull, push, delete, *}.
    pub admin: bool,
    /// Non-admins: the repository actions they may get on any repository (requested ∩ these).
    pub repo_actions: Vec<String>,
}

impl IssuerUser {
    pub fn admin(name: &str, password: &str) -> IssuerUser {
        IssuerUser {
            name: name.into(),
            password: password.into(),
            admin: true,
            repo_actions: ["pull", "push", "delete", "*"].map(String::from).to_vec(),
        }
    }

    /// A non-admin who may pull any repository (like a reporter on every project).
    pub fn reader(name: &str, password: &str) -> IssuerUser {
        IssuerUser {
            name: name.into(),
            password: password.into(),
            admin: false,
            repo_actions: vec!["pull".into()],
        }
    }
}

/// Which JSON field carries the token in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenField {
    /// `{"token": ...}` (GitLab)
    Token,
    /// `{"access_token": ...}` (OAuth2 style)
    AccessToken,
    Both,
}

#[derive(Debug, Clone)]
pub struct TokenIssuerConfig {
    pub service: String,
    pub issuer: String,
    pub users: Vec<IssuerUser>,
    /// Token lifetime in seconds (`exp` and `expires_in`); GitLab: 300.
    pub expires_in: u64,
    pub token_field: TokenField,
}

impl Default for TokenIssuerConfig {
    /// service `container_registry`, issuer `gitlab-issuer`, users
    /// [`ADMIN_USER`]/[`ADMIN_PASSWORD`] (admin) and [`USER`]/[`USER_PASSWORD`] (reader),
    /// 300 s tokens in `{"token"}`.
    fn default() -> Self {
        TokenIssuerConfig {
            service: DEFAULT_SERVICE.into(),
            issuer: DEFAULT_ISSUER.into(),
            users: vec![
                IssuerUser::admin(ADMIN_USER, ADMIN_PASSWORD),
                IssuerUser::reader(USER, USER_PASSWORD),
            ],
            expires_in: 300,
            token_field: TokenField::Token,
        }
    }
}

/// One `access` entry of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// What the issuer saw and did for one request.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Path and query as received.
    pub url: String,
    /// User name from HTTP Basic (None: no or unparsable credentials).
    pub user: Option<String>,
    /// Credentials matched a configured user.
    pub authorized: bool,
    pub service: Option<String>,
    /// Every `scope` value, in order (space-separated values split).
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Access put into the token (empty when refused).
    pub granted: Vec<Access>,
}

#[derive(Debug, Clone)]
struct Settings {
    expires_in: u64,
    token_field: TokenField,
    failure: Option<(u16, String)>,
    delay: Duration,
}

struct Shared {
    service: String,
    issuer: String,
    users: Vec<IssuerUser>,
    key: RS256KeyPair,
    settings: Mutex<Settings>,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    jti: AtomicU64,
}

pub struct TokenIssuer {
    pub port: u16,
    pub service: String,
    pub issuer: String,
    kid: String,
    dir: TempDir,
    shared: Arc<Shared>,
    server: Option<Arc<tiny_http::Server>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenIssuer {
    /// Start with [`TokenIssuerConfig::default`].
    pub fn start() -> TokenIssuer {
        TokenIssuer::start_with(TokenIssuerConfig::default())
    }

    pub fn start_with(config: TokenIssuerConfig) -> TokenIssuer {
        let dir = TempDir::new("token-issuer");
        let (key_pem, kid) = make_signing_cert(dir.path());
        let key = RS256KeyPair::from_pem(&key_pem)
            .unwrap_or_else(|e| panic!("jwt-simple cannot load the openssl key: {e}"))
            .with_key_id(&kid);
        let server = Arc::new(
            tiny_http::Server::from_listener(
                gitlab_registry_usage_rest::http::listen_nodelay("127.0.0.1:0").expect("listen"),
                None,
            )
            .unwrap_or_else(|e| panic!("token issuer cannot listen: {e}")),
        );
        let port = server
            .server_addr()
            .to_ip()
            .expect("token issuer listens on IP")
            .port();
        let shared = Arc::new(Shared {
            service: config.service.clone(),
            issuer: config.issuer.clone(),
            users: config.users,
            key,
            settings: Mutex::new(Settings {
                expires_in: config.expires_in,
                token_field: config.token_field,
                failure: None,
                delay: Duration::ZERO,
            }),
            requests: Arc::new(Mutex::new(Vec::new())),
            jti: AtomicU64::new(0),
        });
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, shared, stopping) = (server.clone(), shared.clone(), stopping.clone());
            std::thread::Builder::new()
                .name(format!("token-issuer-{port}"))
                .spawn(move || serve(&server, &shared, &stopping))
                .expect("spawn token issuer thread")
        };
        TokenIssuer {
            port,
            service: config.service,
            issuer: config.issuer,
            kid,
            dir,
            shared,
            server: Some(server),
            stopping,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/jwt/auth`
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/jwt/auth", self.port)
    }

    /// Self-signed PEM cert of the signing key (the registry's `rootcertbundle`).
    pub fn cert_pem_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// libtrust key id of the signing key (the JWT header `kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Registry config that trusts this issuer.
    pub fn registry_auth(&self) -> super::registry::RegistryAuth {
        super::registry::RegistryAuth::Token {
            realm: self.realm(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            cert_pem_path: self.cert_pem_path(),
        }
    }

    /// Snapshot of all requests so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The live request log (shared with the server thread).
    pub fn request_log(&self) -> Arc<Mutex<Vec<TokenRequest>>> {
        self.shared.requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Lifetime of tokens issued from now on (seconds).
    pub fn set_expires_in(&self, seconds: u64) {
        self.shared.settings.lock().unwrap().expires_in = seconds;
    }

    pub fn set_token_field(&self, field: TokenField) {
        self.shared.settings.lock().unwrap().token_field = field;
    }

    /// Answer every request with `status` and `body` (still recorded); None = normal.
    pub fn set_failure(&self, failure: Option<(u16, &str)>) {
        self.shared.settings.lock().unwrap().failure = failure.map(|(s, b)| (s, b.to_string()));
    }

    /// Sleep this long before answering (simulates a slow GitLab).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.settings.lock().unwrap().delay = delay;
    }

    /// Get a token directly (no HTTP): what `/jwt/auth` would issue to `user` for `scopes`.
    /// Panics on unknown credentials.
    pub fn token_for(&self, user: &str, password: &str, scopes: &[&str]) -> String {
        let u = self
            .shared
            .users
            .iter()
            .find(|u| u.name == user && u.password == password)
            .unwrap_or_else(|| panic!("token_for: unknown user {user}"))
            .clone();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let granted = grant(Some(&u), &scopes);
        let expires_in = self.shared.settings.lock().unwrap().expires_in;
        sign(&self.shared, user, &granted, expires_in)
    }

    /// Fetch a token over HTTP like a client would; panics unless 200.
    pub fn fetch_token(&self, user: &str, password: &str, scopes: &[&str]) -> String {
        let mut url = format!("{}?service={}", self.realm(), url_encode(&self.service));
        for s in scopes {
            url.push_str("&scope=");
            url.push_str(&url_encode(s));
        }
        let auth = super::basic_auth(user, password);
        let reply = super::http_request("GET", &url, &[("Authorization", &auth)], None);
        assert_eq!(reply.status, 200, "token request failed: {}", reply.text());
        let json = reply.json();
        json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .unwrap_or_else(|| panic!("no token in {json}"))
            .to_string()
    }

    /// Stop serving (connections are refused afterwards); dropping later is harmless.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stopping.store(true, Ordering::SeqCst);
            if let Some(server) = &self.server {
                server.unblock();
            }
            if thread.join().is_err() {
                eprintln!("token issuer thread panicked (see message above)");
            }
        }
        // Last reference: tiny_http closes the listening socket (connections refused).
        self.server.take();
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decode a JWT's header and claims (no verification) for assertions.
pub fn decode_jwt(token: &str) -> (serde_json::Value, serde_json::Value) {
    let part = |i: usize| -> serde_json::Value {
        let seg = token
            .split('.')
            .nth(i)
            .unwrap_or_else(|| panic!("not a JWT: {token}"));
        let std_b64: String = seg
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let bytes = base64_decode(&std_b64).unwrap_or_else(|| panic!("bad base64url in {token}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("bad JWT JSON: {e}"))
    };
    (part(0), part(1))
}

/// `openssl req -x509 -newkey rsa:2048` into `dir` (key.pem, cert.pem); returns the key PEM
/// and the libtrust key id of its public key.
fn make_signing_cert(dir: &Path) -> (String, String) {
    let openssl = require_binary("openssl", "openssl");
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let run = |args: &[&std::ffi::OsStr]| -> Vec<u8> {
        let out = Command::new(&openssl)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
        assert!(
            out.status.success(),
            "openssl {:?} failed: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "req".as_ref(),
        "-x509".as_ref(),
        "-newkey".as_ref(),
        "rsa:2048".as_ref(),
        "-nodes".as_ref(),
        "-keyout".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        cert.as_os_str(),
        "-days".as_ref(),
        "3650".as_ref(),
        "-subj".as_ref(),
        "/CN=gitlab-registry-token-issuer".as_ref(),
    ]);
    let spki_der = run(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-pubout".as_ref(),
        "-outform".as_ref(),
        "DER".as_ref(),
    ]);
    let key_pem = std::fs::read_to_string(&key).expect("read key.pem");
    (key_pem, libtrust_key_id(&spki_der))
}

/// libtrust key id: SHA-256 of the SPKI DER, first 30 bytes, base32 (no padding), groups of
/// 4 characters joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = hmac_sha256::Hash::hash(spki_der);
    let mut b32 = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in &hash[..30] {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            b32.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    // 240 bits = 48 characters exactly, nothing left over.
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn serve(server: &tiny_http::Server, shared: &Shared, stopping: &AtomicBool) {
    loop {
        match server.recv() {
            Ok(request) => {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handle(shared, &request)
                }));
                let (status, body) = match result {
                    Ok(answer) => answer,
                    Err(_) => {
                        eprintln!(
                            "token issuer: handler panicked on {} (message above)",
                            request.url()
                        );
                        (500, r#"{"message":"token issuer panicked"}"#.to_string())
                    }
                };
                let header =
                    tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                        .unwrap();
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(header);
                let _ = request.respond(response);
            }
            Err(e) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                eprintln!("token issuer: accept error (continuing): {e}");
            }
        }
    }
}

fn handle(shared: &Shared, request: &tiny_http::Request) -> (u16, String) {
    let settings = shared.settings.lock().unwrap().clone();
    if !settings.delay.is_zero() {
        std::thread::sleep(settings.delay);
    }
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut record = TokenRequest {
        url: url.clone(),
        user: None,
        authorized: false,
        service: None,
        scopes: Vec::new(),
        client_id: None,
        status: 0,
        granted: Vec::new(),
    };
    for (k, v) in parse_query(query) {
        match k.as_str() {
            "service" => record.service = Some(v),
            "scope" => record
                .scopes
                .extend(v.split(' ').filter(|s| !s.is_empty()).map(String::from)),
            "client_id" => record.client_id = Some(v),
            _ => {}
        }
    }
    let credentials = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| parse_basic(h.value.as_str()));
    record.user = credentials.as_ref().map(|(u, _)| u.clone());
    let user = credentials.as_ref().and_then(|(name, password)| {
        shared
            .users
            .iter()
            .find(|u| &u.name == name && &u.password == password)
    });
    record.authorized = user.is_some();

    let (status, body) = if let Some((status, body)) = settings.failure.clone() {
        (status, body)
    } else if request.method() != &tiny_http::Method::Get || path != "/jwt/auth" {
        (404, r#"{"message":"404 Not Found"}"#.to_string())
    } else if credentials.is_some() && user.is_none() {
        (
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"HTTP Basic: Access denied"}]}"#
                .to_string(),
        )
    } else {
        // No credentials: GitLab issues an anonymous token (public projects only; here: none).
        let granted = grant(user, &record.scopes);
        let subject = user.map(|u| u.name.as_str()).unwrap_or("");
        let token = sign(shared, subject, &granted, settings.expires_in);
        record.granted = granted;
        let mut answer = serde_json::Map::new();
        match settings.token_field {
            TokenField::Token => {
                answer.insert("token".into(), token.into());
            }
            TokenField::AccessToken => {
                answer.insert("access_token".into(), token.into());
            }
            TokenField::Both => {
                answer.insert("token".into(), token.clone().into());
                answer.insert("access_token".into(), token.into());
            }
        }
        answer.insert("expires_in".into(), settings.expires_in.into());
        answer.insert("issued_at".into(), rfc3339(unix_now()).into());
        (200, serde_json::Value::Object(answer).to_string())
    };
    record.status = status;
    shared.requests.lock().unwrap().push(record);
    (status, body)
}

/// GitLab's rules: `registry:catalog:*` only for admins and only with actions exactly `*`;
/// repository scopes get the requested actions the user may have; anything else is dropped.
fn grant(user: Option<&IssuerUser>, scopes: &[String]) -> Vec<Access> {
    let Some(user) = user else {
        return Vec::new();
    };
    let mut granted = Vec::new();
    for scope in scopes {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let requested: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
        match kind {
            "registry" if user.admin && name == "catalog" && requested == ["*"] => {
                granted.push(Access {
                    kind: kind.into(),
                    name: name.into(),
                    actions: vec!["*".into()],
                });
            }
            "repository" => {
                let allowed: Vec<String> = requested
                    .iter()
                    .filter(|a| ["pull", "push", "delete", "*"].contains(a))
                    .filter(|a| user.admin || user.repo_actions.iter().any(|r| r == *a))
                    .map(|a| a.to_string())
                    .collect();
                if !allowed.is_empty() && !name.is_empty() {
                    granted.push(Access {
                        kind: kind.into(),
                        name: name.into(),
                        actions: allowed,
                    });
                }
            }
            _ => {}
        }
    }
    granted
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    access: &'a [Access],
}

fn sign(shared: &Shared, subject: &str, access: &[Access], expires_in: u64) -> String {
    let jti = shared.jti.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let jti = super::sha256_digest(format!("{jti}-{nanos}").as_bytes())[7..39].to_string();
    let claims =
        Claims::with_custom_claims(AccessClaims { access }, JwtDuration::from_secs(expires_in))
            .with_issuer(&shared.issuer)
            .with_audience(&shared.service)
            .with_subject(subject)
            .with_jwt_id(jti);
    shared
        .key
        .sign(claims)
        .unwrap_or_else(|e| panic!("signing the token failed: {e}"))
}

fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(b64.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `application/x-www-form-urlencoded` pairs, percent- and `+`-decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (UTC).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as u32;
    let secs = unix % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        gitlab_registry_usage_rest::history::date(days),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
