//! The REST API: the current snapshot as HAL+JSON (or HTML for browsers) behind JWT
//! auth, plus `/auth_token` to get a token and `/health` for orchestrators.
//!
//! Layout, following a request: `server` (tiny_http threads, writing responses) →
//! `handler` (what each request gets, auth first) → `router` (path, query, headers →
//! a resource of the snapshot) → `hal` / `html` (the documents) with `cache` (ETags and
//! the large rendered documents) and `crate::percent` (URL encoding).
//!
//! Handlers only read: they clone the current `Arc<Snapshot>` and never hold a lock while
//! a response is written. `/auth_token` is the only route that talks to the outside (LDAP
//! or the htpasswd check), and it runs on its own threads.

mod cache;
mod cleanup;
/// The JSON of a cleanup preview (what the `/cleanup` routes answer), for the bench.
pub use cleanup::render as cleanup_document;
mod hal;
mod handler;
mod html;
mod router;
mod server;
mod token_cache;

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
    /// Per snapshot generation: how many tags reference each blob (the cleanup
    /// preview's "is anything else still using it"), computed once.
    references: std::sync::Mutex<Option<(u64, Arc<Vec<u32>>)>>,
    /// `<server_prefix>/repositories` and `<server_prefix>/images`, the bases of links.
    bases: [String; 2],
    headers: server::FixedHeaders,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        snapshots: Arc<Shared>,
        auth: Authenticator,
        tokens: Tokens,
    ) -> App {
        let prefix = &config.general.server_prefix;
        let bases = [format!("{prefix}/repositories"), format!("{prefix}/images")];
        let headers = server::FixedHeaders::new(&config.general.cors_origin);
        App {
            config,
            snapshots,
            auth,
            tokens,
            verified: token_cache::TokenCache::default(),
            limiter: Limiter::new(),
            in_flight: Arc::default(),
            cache: cache::RenderCache::default(),
            references: std::sync::Mutex::new(None),
            bases,
            headers,
        }
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
    };
    hal::collection(&mut sink, snapshot, view, hal::MAX_DEPTH);
    // The sink writes only whole `&str`s and ASCII, so the bytes are UTF-8.
    String::from_utf8(sink.into_bytes())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
