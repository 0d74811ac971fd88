//! Talking to a registry (Docker Registry HTTP API v2 / OCI distribution) and to GitLab's
//! token endpoint: auth discovery, a per-scope token cache, timeouts and bounded retries
//! (`retry.rs`), `Link` pagination, and manifest/blob requests. Blocking `ureq` calls; a
//! `Client` is shared by the scan's worker threads. Every answer is read up to a limit
//! for its kind, so what a registry streams never decides how much memory a scan takes.

pub mod challenge;
mod error;
pub mod manifest;
mod retry;

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config;
pub use error::Error;
pub use retry::Policy;

/// Largest manifest read: Distribution's own limit for a manifest pushed to it.
const MAX_MANIFEST: u64 = 4 << 20;
/// An image config blob (read only for its `created`): real ones are a few KiB, the
/// largest seen (many-layer histories) well under 1 MiB.
const MAX_CONFIG: u64 = 4 << 20;
/// Largest catalog or tag-list page (1000 names of 255 bytes take 260 KiB; the rest is
/// room for registries that ignore `n` and send everything at once).
const MAX_PAGE: u64 = 8 << 20;
/// Largest answer of GitLab's token endpoint (a token is about 1 KiB).
const MAX_TOKEN_ANSWER: u64 = 1 << 20;
/// Largest response header section (status line and headers).
const MAX_HEADER_SECTION: usize = 64 << 10;
/// Most names in one catalog or tag-list page. Distribution sends at most the `n` asked
/// for (`page_size`, at most 100000); the cap keeps a page of 8 MiB of one-letter names
/// from becoming 2 million strings (over 100 MiB) while it is parsed.
const MAX_PAGE_NAMES: usize = 100_000;
/// Longest pagination chain followed (a registry that never stops is an error).
const MAX_PAGES: usize = 100_000;

/// The HTTP method of a registry request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
}

/// Request counters by kind, for the per-scan log line and the benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub token: AtomicU64,
    pub catalog: AtomicU64,
    pub tags: AtomicU64,
    pub manifest_head: AtomicU64,
    pub manifest_get: AtomicU64,
    pub blob_head: AtomicU64,
    pub blob_get: AtomicU64,
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
    pub blob_get: u64,
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
            blob_get: g(&self.blob_get),
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
            blob_get: self.blob_get - earlier.blob_get,
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
            + self.blob_get
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
    request_timeout: Duration,
    /// `[registry] tag_dates`: the scan reads image config blobs for their dates.
    pub tag_dates: bool,
    policy: Policy,
    breaker: retry::Breaker,
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
    BlobGet,
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
    /// Build the HTTP agent (timeouts, TLS roots) from `[registry]`, retrying as
    /// `Policy::STANDARD` says.
    pub fn new(cfg: &config::Registry) -> Result<Client, config::ConfigError> {
        Client::with_policy(cfg, Policy::STANDARD)
    }

    /// As `new`, with other retry and breaker settings (tests use milliseconds).
    pub fn with_policy(
        cfg: &config::Registry,
        policy: Policy,
    ) -> Result<Client, config::ConfigError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &cfg.ca_file {
            tls = tls.root_certs(load_roots(path)?);
        }
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.request_timeout))
            .timeout_connect(Some(policy.connect_timeout))
            .max_response_header_size(MAX_HEADER_SECTION)
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
            request_timeout: cfg.request_timeout,
            tag_dates: cfg.tag_dates,
            policy,
            breaker: retry::Breaker::new(policy.breaker),
            auth: RwLock::new(None),
            tokens: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        })
    }

    /// Ask `GET /v2/` how the registry wants to be authenticated. Called at the start of
    /// every scan (a registry may be reconfigured while the service runs).
    pub fn discover(&self) -> Result<(), Error> {
        let url = format!("{}v2/", self.registry);
        let response = self.send(Method::Get, &url, None, None, None)?;
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
        method: Method,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let mut builder = match method {
            Method::Get => self.agent.get(url),
            Method::Head => self.agent.head(url),
        };
        if let Some(a) = accept {
            builder = builder.header("Accept", a);
        }
        if let Some(a) = authorization {
            builder = builder.header("Authorization", a);
        }
        builder
            .call()
            .map_err(|e| Error::from_ureq(url, e, self.request_timeout))
    }

    /// Close the circuit breaker: a new scan gives the registry a new chance.
    pub fn reset_breaker(&self) {
        self.breaker.reset();
    }

    /// `Some(Error::Unreachable)` when the breaker has tripped during this scan.
    pub fn unreachable(&self) -> Option<Error> {
        self.breaker.open()
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
        let mut response = self.send(
            Method::Get,
            &url,
            Some("application/json"),
            Some(&basic),
            Some(&self.stats.token),
        )?;
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
        let body = self.read_body(&mut response, realm, "token answer", MAX_TOKEN_ANSWER)?;
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

    /// How many registry tokens are cached (for the tests: a large scan keeps none per
    /// repository).
    pub fn cached_tokens(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Drop the token of `repo`'s pull scope (a scan of a large registry that has read
    /// the repository; the next scan asks for it again).
    pub fn forget_repository_token(&self, repo: &str) {
        self.forget_token(&Scope::Pull(repo).as_string());
    }

    fn forget_token(&self, scope: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(scope);
    }

    /// One request with retries: connection failures, timeouts, 5xx and 429 (honouring
    /// `Retry-After` up to `Policy::max_retry_after`) are tried again with backoff,
    /// anything else is returned at once. `counter` counts every attempt. Fails at once
    /// when the circuit breaker is open.
    fn send(
        &self,
        method: Method,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&str>,
        counter: Option<&AtomicU64>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let mut backoff = self.policy.first_delay;
        let mut attempt = 1;
        loop {
            if let Some(open) = self.breaker.open() {
                return Err(open);
            }
            if let Some(c) = counter {
                c.fetch_add(1, Ordering::Relaxed);
            }
            let result = self.call_once(method, url, accept, authorization);
            let wait = match &result {
                Ok(response) => {
                    self.breaker.answered();
                    let status = response.status().as_u16();
                    match retry::after_answer(
                        &self.policy,
                        status,
                        header(response, "retry-after").as_deref(),
                        backoff,
                    ) {
                        retry::AfterAnswer::Done => return result,
                        retry::AfterAnswer::RetryAfter(wait) => wait,
                        retry::AfterAnswer::WaitTooLong(asked) => {
                            return Err(Error::Status {
                                url: url.to_string(),
                                status,
                                detail: format!(
                                    " (the registry asks to wait {} s before trying again, \
                                     longer than the {} s this service waits; the next scan \
                                     tries again)",
                                    asked.as_secs(),
                                    self.policy.max_retry_after.as_secs()
                                ),
                            });
                        }
                    }
                }
                Err(e) if e.is_retryable() => backoff,
                Err(_) => return result,
            };
            if attempt >= self.policy.attempts {
                if let Err(e @ Error::Connection { .. }) = &result {
                    self.breaker.failed(e);
                }
                return result;
            }
            attempt += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
            backoff = backoff.saturating_mul(2);
        }
    }

    /// A registry request with auth (token per scope, renewed once on 401) and retries.
    fn request(
        &self,
        kind: Kind,
        method: Method,
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
            Kind::BlobGet => &self.stats.blob_get,
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
            let response =
                self.send(method, url, accept, authorization.as_deref(), Some(counter))?;
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
            repositories: Option<Names>,
        }
        let first = format!("{}v2/_catalog?n={}", self.registry, self.page_size);
        self.paginate(
            first,
            Kind::Catalog,
            Scope::Catalog,
            "catalog page",
            |body| {
                let c: Catalog =
                    serde_json::from_slice(body).map_err(|e| unreadable_page("catalog page", e))?;
                Ok(c.repositories.map(|n| n.0).unwrap_or_default())
            },
        )
    }

    /// All tag names of `repo` (`tags: null` is an empty list).
    pub fn tags(&self, repo: &str) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Names>,
        }
        let first = format!(
            "{}v2/{}/tags/list?n={}",
            self.registry, repo, self.page_size
        );
        self.paginate(
            first,
            Kind::Tags,
            Scope::Pull(repo),
            "tag list page",
            |body| {
                let t: Tags =
                    serde_json::from_slice(body).map_err(|e| unreadable_page("tag list", e))?;
                Ok(t.tags.map(|n| n.0).unwrap_or_default())
            },
        )
    }

    fn paginate(
        &self,
        first: String,
        kind: Kind,
        scope: Scope<'_>,
        what: &'static str,
        parse: impl Fn(&[u8]) -> Result<Vec<String>, String>,
    ) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut response =
                self.request(kind, Method::Get, &url, scope, Some("application/json"))?;
            check_status(&mut response, &url)?;
            let next = response
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            let body = self.read_body(&mut response, &url, what, MAX_PAGE)?;
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
            Method::Head,
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
            Method::Get,
            &url,
            Scope::Pull(repo),
            Some(manifest::ACCEPT),
        )?;
        check_status(&mut response, &url)?;
        let digest =
            header(&response, "docker-content-digest").filter(|d| manifest::valid_digest(d));
        let content_type = header(&response, "content-type");
        let body = self.read_body(&mut response, &url, "manifest", MAX_MANIFEST)?;
        Ok(ManifestResponse {
            digest,
            content_type,
            body,
        })
    }

    /// The body of `response`, at most `limit` bytes (`what` names it in the error).
    /// A declared `Content-Length` over the limit fails before reading; otherwise the
    /// buffer grows by doubling but never past the limit, so an endless answer costs
    /// `limit` bytes and is cut there, and the connection is dropped with it.
    fn read_body(
        &self,
        response: &mut ureq::http::Response<ureq::Body>,
        url: &str,
        what: &'static str,
        limit: u64,
    ) -> Result<Vec<u8>, Error> {
        let too_large = || Error::TooLarge {
            url: url.to_string(),
            what,
            limit,
        };
        let declared = header(response, "content-length").and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let limit = limit as usize;
        let mut body = Vec::with_capacity(declared.map_or(8 << 10, |n| n as usize));
        let mut reader = response.body_mut().as_reader();
        let mut chunk = [0u8; 16 << 10];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => return Ok(body),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::from_body_read(url, e, self.request_timeout)),
            };
            if body.len() + n > limit {
                return Err(too_large());
            }
            if body.capacity() - body.len() < n {
                let target = (body.capacity() * 2).clamp(body.len() + n, limit);
                body.reserve_exact(target - body.len());
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }

    /// Size of a blob by `HEAD` (`Content-Length`), following redirects to storage.
    pub fn blob_size(&self, repo: &str, digest: &str) -> Result<u64, Error> {
        let url = format!("{}v2/{repo}/blobs/{digest}", self.registry);
        let mut response =
            self.request(Kind::BlobHead, Method::Head, &url, Scope::Pull(repo), None)?;
        check_status(&mut response, &url)?;
        header(&response, "content-length")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Invalid {
                url,
                detail: "blob HEAD without a Content-Length".into(),
            })
    }
}

impl Client {
    /// `GET` an image config blob (following redirects to storage), at most
    /// `MAX_CONFIG` bytes: only its `created` is read, for the tag's date.
    pub fn config_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>, Error> {
        let url = format!("{}v2/{repo}/blobs/{digest}", self.registry);
        let mut response =
            self.request(Kind::BlobGet, Method::Get, &url, Scope::Pull(repo), None)?;
        check_status(&mut response, &url)?;
        self.read_body(&mut response, &url, "image config", MAX_CONFIG)
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

/// The names of one page, at most `MAX_PAGE_NAMES` of them.
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Names;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Names, A::Error> {
                let mut names = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(name) = seq.next_element::<String>()? {
                    if names.len() == MAX_PAGE_NAMES {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_PAGE_NAMES} names in one page: refused (a \
                             registry sends at most the n=page_size it is asked for)"
                        )));
                    }
                    names.push(name);
                }
                Ok(Names(names))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// Why a catalog or tag-list page could not be read: not JSON, or not the document.
fn unreadable_page(what: &str, e: serde_json::Error) -> String {
    if e.is_data() {
        format!("{what} is not what the registry API describes: {e}")
    } else {
        format!("{what} is not valid JSON: {e}")
    }
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
