//! The REST API: the current snapshot as HAL+JSON (or HTML for browsers) behind JWT
//! auth, plus `/auth_token` to get a token and `/health` for orchestrators.
//!
//! Layout, following a request: `server` (tiny_http threads, writing responses) →
//! `router` (the request parsed once: route, options, format, conditional) → `handler`
//! (what each request gets, auth first; a resource of the snapshot or of the usage index)
//! → `hal` / `html` (the documents) with `cache` (ETags and the rendered documents that
//! list something) and `crate::percent` (URL encoding).
//!
//! Handlers only read: they clone the current `Arc<Current>` (a snapshot and its usage
//! index) and never hold a lock while a response is written. `/auth_token` is the only
//! route that talks to the outside (LDAP or the htpasswd check), and it runs on its own
//! threads.

mod cache;
mod cleanup;
/// The JSON of a cleanup preview (what the `/cleanup` routes answer), for the bench.
pub use cleanup::render as cleanup_document;
mod dashboard;
pub(crate) mod hal;
mod handler;
mod html;
pub(crate) mod router;
mod server;
mod token_cache;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::auth::jwt::Tokens;
use crate::auth::limiter::Limiter;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::snapshot::{Shared, Snapshot};

pub use server::{listen_nodelay, start, Running};

/// Everything the request handlers share. Built once; `Send + Sync`, used through an
/// `Arc` by every worker and login thread.
pub struct App {
    config: Arc<Config>,
    snapshots: Arc<Shared>,
    auth: Authenticator,
    tokens: Tokens,
    /// Tokens verified recently (see `token_cache`).
    verified: token_cache::TokenCache,
    limiter: Limiter,
    in_flight: Arc<handler::InFlight>,
    cache: cache::RenderCache,
    /// `<server_prefix>/repositories`, `<server_prefix>/images` and
    /// `<server_prefix>/namespaces`, the bases of links.
    bases: [String; 3],
    headers: server::FixedHeaders,
    metrics: Arc<crate::metrics::Metrics>,
    history: Arc<crate::history::History>,
    /// `[metrics] bearer_token_file`, read at start.
    scrape_token: Option<crate::metrics::ScrapeToken>,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        snapshots: Arc<Shared>,
        auth: Authenticator,
        tokens: Tokens,
    ) -> App {
        let prefix = &config.general.server_prefix;
        let bases = [
            format!("{prefix}/repositories"),
            format!("{prefix}/images"),
            format!("{prefix}/namespaces"),
        ];
        let headers = server::FixedHeaders::new(&config.general.cors_origin);
        let limits = crate::metrics::Limits {
            namespace_depth: config.metrics.namespace_depth,
            top_repositories: config.metrics.top_repositories,
        };
        let metrics = Arc::new(crate::metrics::Metrics::new(router::TEMPLATES, limits));
        let history = Arc::new(crate::history::History::in_memory(
            config.general.history_days,
        ));
        App {
            config,
            snapshots,
            auth,
            tokens,
            verified: token_cache::TokenCache::default(),
            limiter: Limiter::new(),
            in_flight: Arc::default(),
            cache: cache::RenderCache::default(),
            bases,
            headers,
            metrics,
            history,
            scrape_token: None,
        }
    }

    /// Serve `history` (the one the refresh thread records into) instead of an empty
    /// in-memory one, and accept `token` at `/metrics`.
    pub fn with_history_and_token(
        mut self,
        history: Arc<crate::history::History>,
        token: Option<crate::metrics::ScrapeToken>,
    ) -> App {
        self.history = history;
        self.scrape_token = token;
        self
    }

    /// The counters `/metrics` shows, for the refresh thread to report scans into.
    pub fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The route template (index into `router::TEMPLATES`) a request target counts under.
    fn template_of(&self, target: &str) -> usize {
        let (path, _) = router::split_target(target);
        router::template(&router::route(&self.config.general.server_prefix, path))
    }

    fn base(&self, collection: router::Collection) -> &str {
        match collection {
            router::Collection::Repositories => &self.bases[0],
            router::Collection::Images => &self.bases[1],
        }
    }
}

/// The JSON of `GET /repositories?embed=true` (links off), for `--collect-once`: the
/// whole registry with every repository and tag, byte for byte what the API serves.
pub fn collection_document(snapshot: &Snapshot) -> String {
    let mut sink = hal::Json::with_capacity(256 + snapshot.totals.tag_count * 64);
    let view = hal::View {
        base: "/repositories",
        links: false,
        usage: None,
    };
    hal::collection(&mut sink, snapshot, view, hal::MAX_DEPTH, None);
    // The sink writes only whole `&str`s and ASCII, so the bytes are UTF-8.
    String::from_utf8(sink.into_bytes())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
