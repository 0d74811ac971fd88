//! Talking to a registry (Docker Registry HTTP API v2 / OCI distribution) and to GitLab's
//! token endpoint: auth discovery, a per-scope token cache, timeouts and bounded retries,
//! `Link` pagination, and manifest/blob requests. Blocking `ureq` calls; a `Client` is
//! shared by the scan's worker threads.

pub mod challenge;
pub mod manifest;

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config;

/// Largest body read from a registry (a catalog page of 1000 long names, a manifest).
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Attempts per request (first try + retries) for connection errors, 5xx and 429.
const MAX_ATTEMPTS: u32 = 4;
/// First retry delay; doubled for each further retry.
const RETRY_BASE: Duration = Duration::from_millis(250);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest pagination chain followed (a registry that never stops is an error).
const MAX_PAGES: usize = 100_000;

/// Why a registry call failed, in words for the admin reading the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No answer: connection refused, DNS, TLS, timeout.
    Transport { url: String, detail: String },
    /// An HTTP status that is not success.
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    /// The registry or GitLab refused an access scope.
    Denied { scope: String, detail: String },
    /// GitLab's token endpoint did not give a token.
    Token { realm: String, detail: String },
    /// An answer that does not make sense (bad JSON, bad Link, bad digest).
    Invalid { url: String, detail: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport { url, detail } => write!(f, "{url}: no answer: {detail}"),
            Error::Status {
                url,
                status,
                detail,
            } => write!(f, "{url}: HTTP {status}{detail}"),
            Error::Denied { scope, detail } => {
                write!(f, "access {scope} was not granted: {detail}")
            }
            Error::Token { realm, detail } => write!(f, "token endpoint {realm}: {detail}"),
            Error::Invalid { url, detail } => write!(f, "{url}: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

/// Request counters by kind, for the per-scan log line and the benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub token: AtomicU64,
    pub catalog: AtomicU64,
    pub tags: AtomicU64,
    pub manifest_head: AtomicU64,
    pub manifest_get: AtomicU64,
    pub blob_head: AtomicU64,
    pub retries: AtomicU64,
}

/// A copy of `Stats` at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub token: u64,
    pub catalog: u64,
    pub tags: u64,
    pub manifest_head: u64,
    pub manifest_get: u64,
    pub blob_head: u64,
    pub retries: u64,
}

impl Stats {
    pub fn counts(&self) -> Counts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            token: g(&self.token),
            catalog: g(&self.catalog),
            tags: g(&self.tags),
            manifest_head: g(&self.manifest_head),
            manifest_get: g(&self.manifest_get),
            blob_head: g(&self.blob_head),
            retries: g(&self.retries),
        }
    }
}

impl Counts {
    /// Requests made since `earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            token: self.token - earlier.token,
            catalog: self.catalog - earlier.catalog,
            tags: self.tags - earlier.tags,
            manifest_head: self.manifest_head - earlier.manifest_head,
            manifest_get: self.manifest_get - earlier.manifest_get,
            blob_head: self.blob_head - earlier.blob_head,
            retries: self.retries - earlier.retries,
        }
    }

    pub fn total(&self) -> u64 {
        self.token
            + self.catalog
            + self.tags
            + self.manifest_head
            + self.manifest_get
            + self.blob_head
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthMode {
    Anonymous,
    Basic,
    Bearer { realm: String, service: String },
}

struct CachedToken {
    token: String,
    renew_at: Instant,
}

/// What a manifest request returned.
pub struct ManifestResponse {
    pub digest: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A blocking client for one registry; `Sync`, shared by the scan workers.
pub struct Client {
    agent: ureq::Agent,
    registry: String,
    origin: String,
    gitlab: String,
    username: String,
    access_token: String,
    page_size: u32,
    auth: RwLock<Option<AuthMode>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    pub stats: Stats,
}

#[derive(Clone, Copy)]
enum Kind {
    Catalog,
    Tags,
    ManifestHead,
    ManifestGet,
    BlobHead,
}

/// The scope a request needs: the catalog, or pull on one repository.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Catalog,
    Pull(&'a str),
}

impl Scope<'_> {
    fn as_string(&self) -> String {
        match self {
            Scope::Catalog => "registry:catalog:*".to_string(),
            Scope::Pull(repo) => format!("repository:{repo}:pull"),
        }
    }
}

impl Client {
    /// Build the HTTP agent (timeouts, TLS roots) from `[registry]`.
    pub fn new(cfg: &config::Registry) -> Result<Client, config::ConfigError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &cfg.ca_file {
            tls = tls.root_certs(load_roots(path)?);
        }
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.request_timeout))
            .max_redirects(5)
            .max_idle_connections(cfg.concurrency * 2 + 4)
            .max_idle_connections_per_host(cfg.concurrency * 2 + 4)
            .user_agent(concat!(
                "gitlab-registry-usage-rest/",
                env!("CARGO_PKG_VERSION")
            ))
            .tls_config(tls.build())
            .build();
        let registry = cfg.registry_base_url.clone();
        let origin = origin_of(&registry);
        Ok(Client {
            agent: ureq::Agent::new_with_config(agent_config),
            registry,
            origin,
            gitlab: cfg.gitlab_base_url.clone(),
            username: cfg.username.clone(),
            access_token: cfg.access_token.clone(),
            page_size: cfg.page_size,
            auth: RwLock::new(None),
            tokens: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    /// Ask `GET /v2/` how the registry wants to be authenticated. Called at the start of
    /// every scan (a registry may be reconfigured while the service runs).
    pub fn discover(&self) -> Result<(), Error> {
        let url = format!("{}v2/", self.registry);
        let response = self.with_retries(|| self.call_once("GET", &url, None, None))?;
        let status = response.status().as_u16();
        let mode = match status {
            200..=299 => AuthMode::Anonymous,
            401 => {
                let challenges: Vec<challenge::Challenge> = response
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(challenge::parse)
                    .collect();
                let bearer = challenges.iter().find(|c| c.scheme == "bearer");
                let basic = challenges.iter().any(|c| c.scheme == "basic");
                match bearer {
                    Some(c) => AuthMode::Bearer {
                        realm: c
                            .param("realm")
                            .filter(|r| r.starts_with("http://") || r.starts_with("https://"))
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{}jwt/auth", self.gitlab)),
                        service: c
                            .param("service")
                            .unwrap_or("container_registry")
                            .to_string(),
                    },
                    None if basic => AuthMode::Basic,
                    None => AuthMode::Bearer {
                        realm: format!("{}jwt/auth", self.gitlab),
                        service: "container_registry".to_string(),
                    },
                }
            }
            _ => {
                return Err(Error::Status {
                    url,
                    status,
                    detail: " (expected 200 or 401: is registry_base_url a Docker registry?)"
                        .into(),
                })
            }
        };
        let mut current = self.auth.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref() != Some(&mode) {
            self.tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        *current = Some(mode);
        Ok(())
    }

    fn mode(&self) -> AuthMode {
        self.auth
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(AuthMode::Anonymous)
    }

    /// One HTTP exchange with no retry and no auth logic.
    fn call_once(
        &self,
        method: &str,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let transport = |e: ureq::Error| Error::Transport {
            url: url.to_string(),
            detail: e.to_string(),
        };
        macro_rules! send {
            ($builder:expr) => {{
                let mut b = $builder;
                if let Some(a) = accept {
                    b = b.header("Accept", a);
                }
                if let Some(a) = authorization {
                    b = b.header("Authorization", a);
                }
                b.call().map_err(transport)
            }};
        }
        match method {
            "HEAD" => send!(self.agent.head(url)),
            _ => send!(self.agent.get(url)),
        }
    }

    fn basic_credentials(&self) -> String {
        format!(
            "Basic {}",
            crate::base64::encode(format!("{}:{}", self.username, self.access_token).as_bytes())
        )
    }

    /// A token for `scope` from the cache or from GitLab's `/jwt/auth`.
    fn token(&self, realm: &str, service: &str, scope: &str) -> Result<String, Error> {
        if let Some(t) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(scope)
        {
            if Instant::now() < t.renew_at {
                return Ok(t.token.clone());
            }
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!(
            "{realm}{sep}client_id=docker&service={}&scope={}",
            crate::percent::Encoded(service),
            crate::percent::Encoded(scope)
        );
        let basic = self.basic_credentials();
        let started = Instant::now();
        let mut response = self.with_retries(|| {
            self.stats.token.fetch_add(1, Ordering::Relaxed);
            self.call_once("GET", &url, Some("application/json"), Some(&basic))
        })?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Error::Token {
                realm: realm.to_string(),
                detail: format!(
                    "HTTP {status}: GitLab refused [registry] username {:?} with its access_token",
                    self.username
                ),
            });
        }
        if !(200..300).contains(&status) {
            return Err(Error::Token {
                realm: realm.to_string(),
                detail: format!("HTTP {status}"),
            });
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<i64>,
        }
        let body = read_body(&mut response, realm)?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::Token {
            realm: realm.to_string(),
            detail: format!("answer is not a token document: {e}"),
        })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Token {
                realm: realm.to_string(),
                detail: "answer has neither `token` nor `access_token`".into(),
            })?;
        if token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(Error::Token {
                realm: realm.to_string(),
                detail: "the token contains characters not allowed in a header".into(),
            });
        }
        let lifetime =
            Duration::from_secs(parsed.expires_in.filter(|&s| s > 0).unwrap_or(60) as u64);
        // renew early: after 80% of the lifetime, and at least 5 s before the end
        let renew_after = (lifetime * 4 / 5).min(lifetime.saturating_sub(Duration::from_secs(5)));
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                scope.to_string(),
                CachedToken {
                    token: token.clone(),
                    renew_at: started + renew_after,
                },
            );
        Ok(token)
    }

    /// Drop the cached tokens due for renewal before `when`. A scan of 10k repositories
    /// leaves 10k tokens (about 1 KB each from GitLab, valid 5 minutes by default); the
    /// refresh loop drops those that will not outlive its wait for the next scan.
    pub fn forget_tokens_renewing_before(&self, when: Instant) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, t| when < t.renew_at);
        if tokens.is_empty() {
            *tokens = HashMap::new();
        }
    }

    fn forget_token(&self, scope: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(scope);
    }

    /// Retry `attempt` on connection errors, 5xx and 429 (honouring `Retry-After`).
    fn with_retries(
        &self,
        mut attempt: impl FnMut() -> Result<ureq::http::Response<ureq::Body>, Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let mut delay = RETRY_BASE;
        for n in 1..=MAX_ATTEMPTS {
            let result = attempt();
            let wait = match &result {
                Err(Error::Transport { .. }) => delay,
                Ok(r) if r.status().as_u16() == 429 => retry_after(r).unwrap_or(delay),
                Ok(r) if r.status().is_server_error() => delay,
                _ => return result,
            };
            if n == MAX_ATTEMPTS {
                return result;
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
            delay *= 2;
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// A registry request with auth (token per scope, renewed once on 401) and retries.
    fn request(
        &self,
        kind: Kind,
        method: &str,
        url: &str,
        scope: Scope<'_>,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let counter = match kind {
            Kind::Catalog => &self.stats.catalog,
            Kind::Tags => &self.stats.tags,
            Kind::ManifestHead => &self.stats.manifest_head,
            Kind::ManifestGet => &self.stats.manifest_get,
            Kind::BlobHead => &self.stats.blob_head,
        };
        let scope_text = scope.as_string();
        for renewed in [false, true] {
            let authorization = match self.mode() {
                AuthMode::Anonymous => None,
                AuthMode::Basic => Some(self.basic_credentials()),
                AuthMode::Bearer { realm, service } => Some(format!(
                    "Bearer {}",
                    self.token(&realm, &service, &scope_text)?
                )),
            };
            let response = self.with_retries(|| {
                counter.fetch_add(1, Ordering::Relaxed);
                self.call_once(method, url, accept, authorization.as_deref())
            })?;
            if response.status().as_u16() != 401 {
                return Ok(response);
            }
            let error = response
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(challenge::parse)
                .find_map(|c| c.param("error").map(str::to_string));
            match self.mode() {
                AuthMode::Bearer { .. } if error.as_deref() == Some("insufficient_scope") => {
                    self.forget_token(&scope_text);
                    return Err(Error::Denied {
                        detail: match scope {
                            Scope::Catalog => format!(
                                "the user {:?} is not a GitLab admin: registry:catalog:* was not granted",
                                self.username
                            ),
                            Scope::Pull(_) => format!("GitLab did not grant the user {:?} pull access", self.username),
                        },
                        scope: scope_text,
                    });
                }
                AuthMode::Bearer { .. } if !renewed => self.forget_token(&scope_text),
                AuthMode::Basic => {
                    return Err(Error::Status {
                        url: url.to_string(),
                        status: 401,
                        detail: format!(
                        " (the registry refused [registry] username {:?} with its access_token)",
                        self.username
                    ),
                    })
                }
                _ => {
                    return Err(Error::Status {
                        url: url.to_string(),
                        status: 401,
                        detail: " (the registry refused the credentials)".into(),
                    })
                }
            }
        }
        unreachable!("the second pass returns")
    }

    /// All repository names, following `Link` pagination to the end.
    pub fn catalog(&self) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let first = format!("{}v2/_catalog?n={}", self.registry, self.page_size);
        self.paginate(first, Kind::Catalog, Scope::Catalog, |body| {
            let c: Catalog = serde_json::from_slice(body)
                .map_err(|e| format!("catalog page is not valid JSON: {e}"))?;
            Ok(c.repositories.unwrap_or_default())
        })
    }

    /// All tag names of `repo` (`tags: null` is an empty list).
    pub fn tags(&self, repo: &str) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let first = format!(
            "{}v2/{}/tags/list?n={}",
            self.registry, repo, self.page_size
        );
        self.paginate(first, Kind::Tags, Scope::Pull(repo), |body| {
            let t: Tags = serde_json::from_slice(body)
                .map_err(|e| format!("tag list is not valid JSON: {e}"))?;
            Ok(t.tags.unwrap_or_default())
        })
    }

    fn paginate(
        &self,
        first: String,
        kind: Kind,
        scope: Scope<'_>,
        parse: impl Fn(&[u8]) -> Result<Vec<String>, String>,
    ) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut response = self.request(kind, "GET", &url, scope, Some("application/json"))?;
            check_status(&mut response, &url)?;
            let next = response
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            let body = read_body(&mut response, &url)?;
            out.extend(parse(&body).map_err(|detail| Error::Invalid {
                url: url.clone(),
                detail,
            })?);
            match next {
                None => return Ok(out),
                Some(link) => {
                    let next_url = self.resolve(&link).ok_or_else(|| Error::Invalid {
                        url: url.clone(),
                        detail: format!("Link header points outside the registry: {link:?}"),
                    })?;
                    if !seen.insert(next_url.clone()) {
                        return Err(Error::Invalid {
                            url,
                            detail: "Link header loops back to a page already read".into(),
                        });
                    }
                    url = next_url;
                }
            }
        }
        Err(Error::Invalid {
            url,
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// A `Link` target as an absolute URL on the registry's own origin (credentials are
    /// never sent elsewhere).
    pub(crate) fn resolve(&self, link: &str) -> Option<String> {
        if link.starts_with("http://") || link.starts_with("https://") {
            (origin_of(link) == self.origin).then(|| link.to_string())
        } else if link.starts_with('/') && !link.starts_with("//") {
            Some(format!("{}{link}", self.origin))
        } else {
            None
        }
    }

    /// `HEAD` a manifest: its digest, without the body.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<String>, Error> {
        let url = format!("{}v2/{repo}/manifests/{reference}", self.registry);
        let mut response = self.request(
            Kind::ManifestHead,
            "HEAD",
            &url,
            Scope::Pull(repo),
            Some(manifest::ACCEPT),
        )?;
        check_status(&mut response, &url)?;
        Ok(header(&response, "docker-content-digest").filter(|d| manifest::valid_digest(d)))
    }

    /// `GET` a manifest by tag or digest.
    pub fn manifest(&self, repo: &str, reference: &str) -> Result<ManifestResponse, Error> {
        let url = format!("{}v2/{repo}/manifests/{reference}", self.registry);
        let mut response = self.request(
            Kind::ManifestGet,
            "GET",
            &url,
            Scope::Pull(repo),
            Some(manifest::ACCEPT),
        )?;
        check_status(&mut response, &url)?;
        let digest =
            header(&response, "docker-content-digest").filter(|d| manifest::valid_digest(d));
        let content_type = header(&response, "content-type");
        let body = read_body(&mut response, &url)?;
        Ok(ManifestResponse {
            digest,
            content_type,
            body,
        })
    }

    /// Size of a blob by `HEAD` (`Content-Length`), following redirects to storage.
    pub fn blob_size(&self, repo: &str, digest: &str) -> Result<u64, Error> {
        let url = format!("{}v2/{repo}/blobs/{digest}", self.registry);
        let mut response = self.request(Kind::BlobHead, "HEAD", &url, Scope::Pull(repo), None)?;
        check_status(&mut response, &url)?;
        header(&response, "content-length")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Invalid {
                url,
                detail: "blob HEAD without a Content-Length".into(),
            })
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Turn a non-success status into an `Error` carrying the registry's own error code.
fn check_status(response: &mut ureq::http::Response<ureq::Body>, url: &str) -> Result<(), Error> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let mut text = String::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(4096)
        .read_to_string(&mut text);
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let detail = match serde_json::from_str::<Errors>(&text) {
        Ok(e) if !e.errors.is_empty() => format!(" {}: {}", e.errors[0].code, e.errors[0].message),
        _ => String::new(),
    };
    Err(Error::Status {
        url: url.to_string(),
        status,
        detail,
    })
}

fn read_body(response: &mut ureq::http::Response<ureq::Body>, url: &str) -> Result<Vec<u8>, Error> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| Error::Transport {
            url: url.to_string(),
            detail: format!("reading the answer: {e}"),
        })
}

fn retry_after(response: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    let secs: u64 = header(response, "retry-after")?.parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The `rel="next"` target of a `Link` header value, if any.
pub(crate) fn next_link(value: &str) -> Option<String> {
    for part in value.split(',') {
        let part = part.trim();
        let (target, params) = part.strip_prefix('<')?.split_once('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_string());
        }
    }
    None
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    url[..end].to_ascii_lowercase()
}

/// The extra CAs of `ca_file`, plus the system bundle when there is one (so public
/// hosts keep working).
fn load_roots(path: &std::path::Path) -> Result<ureq::tls::RootCerts, config::ConfigError> {
    let mut certs = Vec::new();
    let mut read = |p: &std::path::Path, required: bool| -> Result<(), config::ConfigError> {
        let pem = match std::fs::read(p) {
            Ok(pem) => pem,
            Err(e) if required => {
                return Err(config::ConfigError(format!(
                    "[registry] ca_file = {:?}: cannot read it: {e}",
                    p.display()
                )))
            }
            Err(_) => return Ok(()),
        };
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                certs.push(c.to_owned());
            }
        }
        if required && certs.len() == before {
            return Err(config::ConfigError(format!(
                "[registry] ca_file = {:?}: no PEM certificate in it",
                p.display()
            )));
        }
        Ok(())
    };
    read(path, true)?;
    read(
        std::path::Path::new("/etc/ssl/certs/ca-certificates.crt"),
        false,
    )?;
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_due_for_renewal_are_forgotten() {
        let (config, _) = crate::config::Config::parse("").unwrap();
        let client = Client::new(&config.registry).unwrap();
        let now = Instant::now();
        for (scope, renew_at) in [
            ("repository:old:pull", now - Duration::from_secs(1)),
            ("repository:new:pull", now + Duration::from_secs(60)),
        ] {
            client.tokens.lock().unwrap().insert(
                scope.into(),
                CachedToken {
                    token: "t".into(),
                    renew_at,
                },
            );
        }
        client.forget_tokens_renewing_before(now);
        let left: Vec<String> = client.tokens.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, ["repository:new:pull"]);
        client.forget_tokens_renewing_before(now + Duration::from_secs(120));
        assert!(client.tokens.lock().unwrap().is_empty());
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link("<https://r/v2/x/tags/list?last=t>;rel=next").as_deref(),
            Some("https://r/v2/x/tags/list?last=t")
        );
        assert_eq!(
            next_link(r#"<a>; rel="prev", <b>; rel="next""#).as_deref(),
            Some("b")
        );
        assert_eq!(next_link(r#"<a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn origins_and_encoding() {
        assert_eq!(
            origin_of("https://Reg.example.com:5000/v2/x"),
            "https://reg.example.com:5000"
        );
        assert_eq!(origin_of("http://h"), "http://h");
        assert_eq!(
            crate::percent::Encoded("repository:g/p:pull").to_string(),
            "repository%3Ag%2Fp%3Apull"
        );
    }
}
