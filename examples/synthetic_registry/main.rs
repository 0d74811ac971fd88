//! A synthetic container registry for `make demo` and the benchmarks: a real HTTP server
//! speaking the Docker Registry HTTP API v2 with GitLab-style token auth, whose content is
//! generated deterministically from the command line instead of stored: 10,000 repositories
//! of 10 tags start in about 20 ms and stay under 20 MB. `--latency-ms` makes every registry
//! request slow, like a registry across a network.
//!
//! ```text
//! cargo run --release --example synthetic_registry -- --listen 127.0.0.1:5001 --multiarch
//! cargo run --release --example synthetic_registry -- --print-expected    # what a scan must find
//! ```
//!
//! A client's walk, with the default `--auth token --user demo --password demo-token`:
//! ```text
//! curl -i http://127.0.0.1:5001/v2/                # 401, WWW-Authenticate: Bearer realm=...
//! T=$(curl -s -u demo:demo-token 'http://127.0.0.1:5001/jwt/auth?service=container_registry&scope=registry:catalog:*&scope=repository:group-000/project-0000:pull' | jq -r .token)
//! curl -H "Authorization: Bearer $T" 'http://127.0.0.1:5001/v2/_catalog?n=10'     # Link: <...>; rel="next"
//! curl -H "Authorization: Bearer $T" http://127.0.0.1:5001/v2/group-000/project-0000/tags/list
//! curl -H "Authorization: Bearer $T" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
//!      http://127.0.0.1:5001/v2/group-000/project-0000/manifests/latest
//! ```
//!
//! Endpoints:
//! - `GET /v2/`; `GET /v2/_catalog?n=&last=` (sorted; n defaults to 100, above 1000 is
//!   400 PAGINATION_NUMBER_INVALID); `GET /v2/<name>/tags/list?n=&last=` (storage order, not
//!   sorted; all tags without n); `GET|HEAD /v2/<name>/manifests/<tag|digest>` (OCI manifests
//!   and indexes are 404 MANIFEST_UNKNOWN unless Accept names their type, like Distribution;
//!   Docker schema2 is always served); `HEAD /v2/<name>/blobs/<digest>` (the claimed size;
//!   layer content is never served, config blobs are).
//! - `GET /jwt/auth?service=container_registry&scope=...` (auth=token): HTTP Basic with the
//!   configured user; answers `{"token", "expires_in", "issued_at"}`. The token is an HS256
//!   JWT listing the granted scopes, checked on every registry request: the catalog needs
//!   `registry:catalog:*`, a repository `repository:<name>:pull` (or `*`); otherwise 401
//!   with `error="insufficient_scope"` (or `invalid_token` once expired).
//! - Control, for benchmarks and tests, NOT authenticated (bind to 127.0.0.1, the default):
//!   `POST /control/move?percent=P` moves P % of the tags (chosen by seed and round) to a new
//!   manifest and returns `{"moved", "round", "expected"}`; `GET /control/expected[?detail=1]`;
//!   `GET /control/stats` (requests by kind); `POST /control/reset-stats`.
//!
//! Content and the size definitions `--print-expected` follows: see `model.rs` and
//! `expected.rs`. SIGINT or SIGTERM stop it cleanly (exit 0).

mod auth;
mod expected;
mod http;
mod model;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use argh::FromArgs;

use crate::auth::{Auth, Mode};
use crate::http::{Context, Stats};
use crate::model::{Registry, Shape};

/// A synthetic Docker Registry HTTP API v2 with GitLab-style token auth, for demos and
/// benchmarks. Content is deterministic: the same options give the same digests and sizes.
#[derive(FromArgs)]
struct Cli {
    /// address to listen on (port 0: any free port; the start line tells which)
    #[argh(option, default = "String::from(\"127.0.0.1:5001\")")]
    listen: String,
    /// number of repositories (group-NNN/project-NNNN, 10 per group)
    #[argh(option, default = "40")]
    repositories: u32,
    /// tags per repository: v1 .. v<N-1> and latest, an alias of v<N-1>
    #[argh(option, default = "5")]
    tags: u32,
    /// layers per image (at least 1)
    #[argh(option, default = "3")]
    layers: u32,
    /// size of the pool of base layers shared across repositories
    #[argh(option, default = "4")]
    shared_layers: u32,
    /// milliseconds every registry and token request waits before it is answered
    #[argh(option, default = "0")]
    latency_ms: u64,
    /// worker threads answering requests; each waits out the latency of its own request, so
    /// throughput is at most threads / latency (with --latency-ms 0, 2 to 4 are fastest)
    #[argh(option, default = "32")]
    threads: usize,
    /// none, token (GitLab-style /jwt/auth) or basic
    #[argh(option, default = "Mode::Token")]
    auth: Mode,
    /// the user the token endpoint and Basic auth accept
    #[argh(option, default = "String::from(\"demo\")")]
    user: String,
    /// that user's password
    #[argh(option, default = "String::from(\"demo-token\")")]
    password: String,
    /// seed of the generated content
    #[argh(option, default = "1")]
    seed: u64,
    /// add demo/multiarch:latest, an OCI index (amd64, arm64, attestation)
    #[argh(switch)]
    multiarch: bool,
    /// print the expected totals as JSON and exit
    #[argh(switch)]
    print_expected: bool,
    /// with --print-expected: also every repository and tag
    #[argh(switch)]
    detail: bool,
    /// lifetime of issued tokens, in seconds
    #[argh(option, default = "300")]
    token_expires_in: u64,
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    if cli.layers == 0 || cli.threads == 0 {
        eprintln!("synthetic registry: --layers and --threads must be at least 1");
        return ExitCode::from(2);
    }
    let registry = Registry::new(Shape {
        repositories: cli.repositories,
        tags: cli.tags,
        layers: cli.layers,
        shared_layers: cli.shared_layers,
        seed: cli.seed,
        multiarch: cli.multiarch,
    });
    if cli.print_expected {
        let totals = expected::expected(&registry, cli.detail);
        println!("{}", serde_json::to_string(&totals).expect("serialisable"));
        return ExitCode::SUCCESS;
    }

    // Before any thread exists (tiny_http starts some), so that all inherit the mask and
    // only the signal thread receives SIGINT/SIGTERM.
    let signals = block_termination_signals();
    let server = match listen(&cli.listen) {
        Ok(server) => Arc::new(server),
        Err(error) => {
            eprintln!(
                "synthetic registry: cannot listen on {}: {error}",
                cli.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let address = match server.server_addr().to_ip() {
        Some(SocketAddr::V4(a)) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        Some(address) => address.to_string(),
        None => cli.listen.clone(),
    };
    let repository_count = registry.repositories().len();
    let tag_count: u64 = (0..repository_count)
        .map(|repo| u64::from(registry.tag_count(repo)))
        .sum();
    let realm = format!("http://{address}/jwt/auth");
    let context = Arc::new(Context {
        registry,
        auth: Auth::new(
            cli.auth,
            realm,
            &cli.user,
            &cli.password,
            cli.seed,
            cli.token_expires_in,
        ),
        stats: Stats::default(),
        latency: Duration::from_millis(cli.latency_ms),
    });

    let stopping = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..cli.threads)
        .map(|_| {
            let (server, context, stopping) = (server.clone(), context.clone(), stopping.clone());
            thread::spawn(move || loop {
                match server.recv() {
                    Ok(request) => http::serve(&context, request),
                    Err(_) if stopping.load(Ordering::SeqCst) => break,
                    Err(error) => eprintln!("synthetic registry: accepting a request: {error}"),
                }
            })
        })
        .collect();
    {
        let (server, stopping, threads) = (server.clone(), stopping.clone(), cli.threads);
        thread::spawn(move || {
            wait_for_signal(&signals);
            stopping.store(true, Ordering::SeqCst);
            // Each unblock() releases one worker from recv().
            for _ in 0..threads {
                server.unblock();
            }
        });
    }
    println!(
        "synthetic registry listening on http://{address} ({repository_count} repositories, \
         {tag_count} tags, auth={})",
        cli.auth
    );
    for worker in workers {
        if worker.join().is_err() {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// A server whose connections have TCP_NODELAY (see `listen_nodelay` in the service).
fn listen(address: &str) -> Result<tiny_http::Server, Box<dyn std::error::Error + Send + Sync>> {
    let listener = gitlab_registry_usage_rest::http::listen_nodelay(address)?;
    tiny_http::Server::from_listener(listener, None)
}

fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls only read and
    // write that set and this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: `set` is an initialised sigset_t and `signal` a valid out-pointer.
    while unsafe { libc::sigwait(set, &mut signal) } != 0 {}
}
