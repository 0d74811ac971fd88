//! Measuring helpers for `contrib/bench.sh` (`make bench`), built on the library itself.
//! Each subcommand prints one JSON object per line on stdout, for the script to turn into
//! the tables of BENCHMARKS.md.
//!
//! ```text
//! bench scan --registry http://127.0.0.1:5001/ --concurrency 8 --move-percent 1 --save snap.json
//! bench startup --bin target/release/gitlab-registry-usage-rest --config bench.conf --port 5000
//! bench load --snapshot snap.json
//! bench usage --snapshot snap.json                   # the usage index: time, kept and peak RSS
//! bench htpasswd --user bench --password secret      # a bcrypt htpasswd line (cost 5)
//! bench port                                          # a free TCP port on 127.0.0.1
//! bench warm --port 5000 --connections 80             # see "burst" below
//! bench burst --port 5000 --connections 16            # N connections at once: all answered?
//! ```
//!
//! `burst` checks the fix in patches/tiny_http (see patches/README.md): upstream tiny_http
//! 0.12 starts a thread for a new connection only when no pool thread is idle at that
//! instant, so of connections that arrive together some were queued behind keep-alive
//! connections, unanswered until one of those closed. `warm` (and `scan --warm N`) work
//! around that bug for a measurement against a build without the fix: connections opened
//! one after the other (each keeps a thread busy, so the pool grows by one per connection)
//! and closed together leave that many idle threads for the next five seconds.
//!
//! `scan` runs `scan::scan` the way the refresh thread does: a full scan, then (unless
//! `--once`) a re-scan of the unchanged registry with the first snapshot as the previous
//! one, then, with `--move-percent`, a re-scan after the synthetic registry moved that
//! share of its tags (`POST /control/move`). Each line carries the client's request counts
//! and the registry's own (`/control/stats`, reset before each scan), so the two can be
//! checked against each other.

#[path = "common/proc_status.rs"]
mod proc_status;
use proc_status::status_kib;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use argh::FromArgs;
use serde_json::{json, Value};

use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::registry::{Client, Counts};
use gitlab_registry_usage_rest::scan::{self, Report};
use gitlab_registry_usage_rest::snapshot::{self, Snapshot};
use gitlab_registry_usage_rest::usage::Usage;

/// Benchmark helpers for contrib/bench.sh.
#[derive(FromArgs)]
struct Cli {
    #[argh(subcommand)]
    command: Sub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Sub {
    Scan(ScanArgs),
    Startup(StartupArgs),
    Load(LoadArgs),
    Usage(UsageArgs),
    Htpasswd(HtpasswdArgs),
    Port(PortArgs),
    Warm(WarmArgs),
    Burst(BurstArgs),
    Cleanup(CleanupArgs),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "cleanup")]
/// time the cleanup preview over a snapshot file
struct CleanupArgs {
    /// the snapshot file
    #[argh(option)]
    snapshot: PathBuf,
    /// the policy, as the API's query
    #[argh(
        option,
        default = "String::from(\"name_regex=.*&keep_n=5&older_than=90d\")"
    )]
    query: String,
    /// how many runs
    #[argh(option, default = "5")]
    runs: usize,
}

/// scan a registry (full, unchanged, after moving tags) and print one JSON line per scan
#[derive(FromArgs)]
#[argh(subcommand, name = "scan")]
struct ScanArgs {
    /// registry base URL (the synthetic registry, for /control/*)
    #[argh(option)]
    registry: String,
    /// registry user
    #[argh(option, default = "String::from(\"demo\")")]
    user: String,
    /// that user's password or access token
    #[argh(option, default = "String::from(\"demo-token\")")]
    password: String,
    /// parallel requests
    #[argh(option, default = "8")]
    concurrency: usize,
    /// after the unchanged re-scan, move this percentage of the tags and scan again
    #[argh(option)]
    move_percent: Option<f64>,
    /// only the full scan
    #[argh(switch)]
    once: bool,
    /// write the last snapshot to this file (the service's snapshot_file format)
    #[argh(option)]
    save: Option<PathBuf>,
    /// before each scan, grow the registry's tiny_http pool by this many threads (0: off)
    #[argh(option, default = "0")]
    warm: usize,
    /// scan with `[registry] tag_dates = false` (no config blobs)
    #[argh(switch)]
    no_dates: bool,
}

/// time from exec to the first 200 on GET /health, several times
#[derive(FromArgs)]
#[argh(subcommand, name = "startup")]
struct StartupArgs {
    /// the service binary
    #[argh(option)]
    bin: PathBuf,
    /// its config file
    #[argh(option)]
    config: PathBuf,
    /// the port the config listens on (127.0.0.1)
    #[argh(option)]
    port: u16,
    /// how many runs
    #[argh(option, default = "5")]
    runs: usize,
    /// give up on one run after this many milliseconds
    #[argh(option, default = "20000")]
    timeout_ms: u64,
}

/// time snapshot::load of a snapshot file, several times
#[derive(FromArgs)]
#[argh(subcommand, name = "load")]
struct LoadArgs {
    /// the snapshot file
    #[argh(option)]
    snapshot: PathBuf,
    /// how many runs
    #[argh(option, default = "5")]
    runs: usize,
}

/// time the usage index (`Usage::of`) of a snapshot file's snapshot, and the memory it
/// keeps and peaks at
#[derive(FromArgs)]
#[argh(subcommand, name = "usage")]
struct UsageArgs {
    /// the snapshot file
    #[argh(option)]
    snapshot: PathBuf,
    /// how many runs
    #[argh(option, default = "5")]
    runs: usize,
}

/// print a bcrypt htpasswd line
#[derive(FromArgs)]
#[argh(subcommand, name = "htpasswd")]
struct HtpasswdArgs {
    /// user name
    #[argh(option)]
    user: String,
    /// password
    #[argh(option)]
    password: String,
    /// bcrypt cost (`htpasswd -B` uses 5)
    #[argh(option, default = "5")]
    cost: u32,
}

/// print a TCP port that is free on 127.0.0.1 right now
#[derive(FromArgs)]
#[argh(subcommand, name = "port")]
struct PortArgs {}

/// grow a tiny_http server's connection thread pool (one connection after the other)
#[derive(FromArgs)]
#[argh(subcommand, name = "warm")]
struct WarmArgs {
    /// port on 127.0.0.1
    #[argh(option)]
    port: u16,
    /// connections (= idle threads left behind)
    #[argh(option, default = "80")]
    connections: usize,
    /// path to GET on each
    #[argh(option, default = "String::from(\"/health\")")]
    path: String,
}

/// open N connections at once, send one GET on each, report which were answered in time
#[derive(FromArgs)]
#[argh(subcommand, name = "burst")]
struct BurstArgs {
    /// port on 127.0.0.1
    #[argh(option)]
    port: u16,
    /// connections opened together
    #[argh(option, default = "16")]
    connections: usize,
    /// path to GET on each
    #[argh(option, default = "String::from(\"/health\")")]
    path: String,
    /// how long to wait for each answer
    #[argh(option, default = "3000")]
    timeout_ms: u64,
    /// pause between two connects, in microseconds (clients do not connect in lockstep)
    #[argh(option, default = "200")]
    pace_us: u64,
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    let result = match cli.command {
        Sub::Scan(a) => run_scan(&a),
        Sub::Startup(a) => run_startup(&a),
        Sub::Load(a) => run_load(&a),
        Sub::Usage(a) => run_usage(&a),
        Sub::Cleanup(a) => run_cleanup(&a),
        Sub::Htpasswd(a) => bcrypt::hash(&a.password, a.cost)
            .map(|h| println!("{}:{h}", a.user))
            .map_err(|e| e.to_string()),
        Sub::Port(_) => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| println!("{}", a.port()))
            .map_err(|e| e.to_string()),
        Sub::Warm(a) => warm(a.port, a.connections, &a.path).map(|n| {
            println!(
                "{}",
                json!({"phase": "warm", "connections": a.connections, "answered": n})
            )
        }),
        Sub::Burst(a) => run_burst(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn registry_url(base: &str) -> String {
    if base.ends_with('/') {
        base.to_string()
    } else {
        format!("{base}/")
    }
}

fn control(base: &str, method: &str, path_and_query: &str) -> Result<Value, String> {
    let url = format!("{}control/{path_and_query}", registry_url(base));
    let response = match method {
        "POST" => ureq::post(&url).send_empty(),
        _ => ureq::get(&url).call(),
    };
    let text = response
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| format!("{method} {url}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {e}"))
}

fn counts_json(c: &Counts) -> Value {
    json!({
        "token": c.token,
        "catalog": c.catalog,
        "tags": c.tags,
        "manifest_head": c.manifest_head,
        "manifest_get": c.manifest_get,
        "blob_head": c.blob_head,
        "blob_get": c.blob_get,
        "retries": c.retries,
        "total": c.total(),
    })
}

fn run_scan(a: &ScanArgs) -> Result<(), String> {
    let base = registry_url(&a.registry);
    let text = format!(
        "[registry]\nregistry_base_url = {base}\ngitlab_base_url = {base}\nusername = {}\n\
         access_token = {}\nconcurrency = {}\ntag_dates = {}\n",
        a.user, a.password, a.concurrency, !a.no_dates
    );
    let (config, _warnings) = Config::parse(&text).map_err(|e| e.to_string())?;
    let client = Client::new(&config.registry).map_err(|e| e.to_string())?;
    let expected = control(&base, "GET", "expected")?;

    let registry_port = port_of(&base).ok_or_else(|| format!("no port in {base}"))?;
    let warm_up = || -> Result<(), String> {
        if a.warm > 0 {
            warm(registry_port, a.warm, "/v2/")?;
        }
        Ok(())
    };
    let one = |phase: &str, previous: Option<&Snapshot>, extra: Value| -> Result<Report, String> {
        warm_up()?;
        control(&base, "POST", "reset-stats")?;
        let report =
            scan::scan(&client, previous, a.concurrency).map_err(|e| format!("{phase}: {e}"))?;
        let server = control(&base, "GET", "stats")?;
        let totals = report.snapshot.totals;
        let line = json!({
            "phase": phase,
            "dates": !a.no_dates,
            "concurrency": a.concurrency,
            "seconds": report.duration.as_secs_f64(),
            "repositories": totals.repository_count,
            "tags": totals.tag_count,
            "size": totals.size,
            "disk_size": totals.disk_size,
            "failed_repositories": report.failed_repositories,
            "skipped_names": report.skipped_names,
            "requests": counts_json(&report.requests),
            "registry_stats": server,
            "extra": extra,
        });
        println!("{line}");
        Ok(report)
    };

    let full = one(
        "full",
        None,
        json!({
            "expected_size": expected["size"],
            "expected_disk_size": expected["disk_size"],
            "expected_tags": expected["tag_count"],
        }),
    )?;
    let mut last = full;
    if !a.once {
        let unchanged = one("unchanged", Some(&last.snapshot), json!({}))?;
        last = unchanged;
        if let Some(percent) = a.move_percent {
            warm_up()?;
            let moved = control(&base, "POST", &format!("move?percent={percent}"))?;
            let after = one(
                "moved",
                Some(&last.snapshot),
                json!({
                    "move_percent": percent,
                    "moved_tags": moved["moved"],
                    "expected_size": moved["expected"]["size"],
                    "expected_disk_size": moved["expected"]["disk_size"],
                }),
            )?;
            last = after;
        }
    }
    if let Some(path) = &a.save {
        snapshot::save(&last.snapshot, path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// One GET /health on a fresh connection: `Some(status)`, or `None` when nothing listens.
fn health(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn stop(child: &mut Child) {
    // SIGTERM first (the service stops cleanly), then SIGKILL if it lingers.
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: sending a signal to our own child, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn run_startup(a: &StartupArgs) -> Result<(), String> {
    let mut runs = Vec::with_capacity(a.runs);
    for run in 0..a.runs {
        if health(a.port).is_some() {
            return Err(format!("something already answers on port {}", a.port));
        }
        let started = Instant::now();
        let mut child = Command::new(&a.bin)
            .arg("-c")
            .arg(&a.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", a.bin.display()))?;
        let deadline = started + Duration::from_millis(a.timeout_ms);
        let mut attempts = 0u64;
        let outcome = loop {
            attempts += 1;
            if health(a.port) == Some(200) {
                break Ok(started.elapsed());
            }
            if let Ok(Some(status)) = child.try_wait() {
                break Err(format!("the service exited ({status}) before answering"));
            }
            if Instant::now() > deadline {
                break Err(format!("no 200 within {} ms", a.timeout_ms));
            }
            // A short pause: the poller must not take a core from the starting service.
            std::thread::sleep(Duration::from_micros(200));
        };
        stop(&mut child);
        let elapsed = outcome?;
        let ms = elapsed.as_secs_f64() * 1000.0;
        println!(
            "{}",
            json!({"phase": "startup-run", "run": run + 1, "ms": ms, "polls": attempts})
        );
        runs.push(ms);
    }
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{}",
        json!({"phase": "startup", "runs_ms": runs, "min_ms": min, "median_ms": median(&runs)})
    );
    Ok(())
}

fn run_load(a: &LoadArgs) -> Result<(), String> {
    let mut runs = Vec::with_capacity(a.runs);
    let mut tags = 0;
    for _ in 0..a.runs {
        let started = Instant::now();
        let s = snapshot::load(&a.snapshot).map_err(|e| e.to_string())?;
        runs.push(started.elapsed().as_secs_f64() * 1000.0);
        tags = s.totals.tag_count;
    }
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let bytes = std::fs::metadata(&a.snapshot).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}",
        json!({"phase": "load", "tags": tags, "file_bytes": bytes, "runs_ms": runs,
               "min_ms": min, "median_ms": median(&runs)})
    );
    Ok(())
}

fn run_usage(a: &UsageArgs) -> Result<(), String> {
    // The service's allocator settings, so the memory numbers are the service's.
    gitlab_registry_usage_rest::memory::tune();
    let s = snapshot::load(&a.snapshot).map_err(|e| e.to_string())?;
    gitlab_registry_usage_rest::memory::release();
    let mut runs = Vec::with_capacity(a.runs);
    for _ in 0..a.runs {
        let started = Instant::now();
        let usage = Usage::of(&s);
        runs.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(usage);
        gitlab_registry_usage_rest::memory::release();
    }
    // Memory of one build: what stays while the index is alive, and the peak during it
    // (writing 5 to clear_refs resets VmHWM to the current RSS).
    let before = status_kib("VmRSS:");
    std::fs::write("/proc/self/clear_refs", "5").map_err(|e| format!("clear_refs: {e}"))?;
    let usage = Usage::of(&s);
    let peak = status_kib("VmHWM:").saturating_sub(before);
    gitlab_registry_usage_rest::memory::release();
    let kept = status_kib("VmRSS:").saturating_sub(before);
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{}",
        json!({"phase": "usage", "tags": s.totals.tag_count,
               "repositories": s.totals.repository_count,
               "namespaces": usage.namespaces().len(), "runs_ms": runs, "min_ms": min,
               "median_ms": median(&runs), "kept_kib": kept, "peak_kib": peak})
    );
    Ok(())
}

/// The cleanup preview's cost at this snapshot's size, as the service pays it (the
/// usage index is built once per generation, before any request): the verdicts and bytes
/// over the whole registry, its `/cleanup` JSON document, and the same for the
/// repository with the most tags (what `/repositories/<name>/cleanup` renders).
fn run_cleanup(a: &CleanupArgs) -> Result<(), String> {
    use gitlab_registry_usage_rest::cleanup::{self, Scope};
    use gitlab_registry_usage_rest::http::cleanup_document;
    let s = snapshot::load(&a.snapshot).map_err(|e| e.to_string())?;
    let usage = Usage::of(&s);
    let policy = cleanup::policy_of(&a.query).map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let biggest = s
        .repositories
        .iter()
        .max_by_key(|r| r.tags.as_ref().map_or(0, Vec::len))
        .ok_or("an empty snapshot")?;
    let one = Scope::Repository(biggest.name.clone());
    let (all_repos, one_repo) = (
        Scope::Registry.repositories(&s).unwrap_or_default(),
        one.repositories(&s).unwrap_or_default(),
    );
    let (mut all_ms, mut json_ms, mut one_ms, mut one_json_ms) = (vec![], vec![], vec![], vec![]);
    let (mut deleted, mut freed, mut bytes) = (0, 0, 0);
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    for _ in 0..a.runs {
        let t = Instant::now();
        let all = cleanup::preview(&s, &usage, &policy, &all_repos, now);
        all_ms.push(ms(t));
        (deleted, freed) = (all.tags_deleted, all.freed_bytes);
        drop(all);
        let t = Instant::now();
        let doc = cleanup_document(&s, &usage, &Scope::Registry, &all_repos, &policy, now);
        json_ms.push(ms(t));
        bytes = doc.len();
        drop(doc);
        let t = Instant::now();
        std::hint::black_box(cleanup::preview(&s, &usage, &policy, &one_repo, now));
        one_ms.push(ms(t));
        let t = Instant::now();
        std::hint::black_box(cleanup_document(&s, &usage, &one, &one_repo, &policy, now));
        one_json_ms.push(ms(t));
    }
    println!(
        "{}",
        json!({"phase": "cleanup", "query": a.query, "tags": s.totals.tag_count,
               "tags_deleted": deleted, "freed_bytes": freed, "document_bytes": bytes,
               "registry_ms": median(&all_ms), "registry_document_ms": median(&json_ms),
               "repository_ms": median(&one_ms), "repository_document_ms": median(&one_json_ms),
               "repository_tags": biggest.tags.as_ref().map_or(0, Vec::len)})
    );
    Ok(())
}

/// The port of `http://host:port/...` (80 when none is written).
fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None => Some(80),
    }
}

/// Send `GET path` on `stream` and read one whole response (Content-Length bodies);
/// returns the status.
fn exchange(stream: &mut TcpStream, path: &str) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut data = Vec::with_capacity(1024);
    let mut buffer = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(bad("connection closed before the headers"));
        }
        data.extend_from_slice(&buffer[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_ascii_lowercase();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = data.len() - header_end;
    while have < length {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Err(bad("connection closed in the body"));
        }
        have += n;
    }
    Ok(status)
}

/// Opens `connections` connections one after the other, one request each, then closes
/// them all: the server's tiny_http pool is left with that many idle threads (for ~5 s).
/// Returns how many were answered.
fn warm(port: u16, connections: usize, path: &str) -> Result<usize, String> {
    let mut open = Vec::with_capacity(connections);
    let mut answered = 0;
    for _ in 0..connections {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("warm-up: connect to port {port}: {e}"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.set_nodelay(true);
        if exchange(&mut stream, path).is_ok() {
            answered += 1;
        }
        open.push(stream);
    }
    drop(open);
    // Let the server's threads see the ends and go back to waiting for work.
    std::thread::sleep(Duration::from_millis(50));
    Ok(answered)
}

fn run_burst(a: &BurstArgs) -> Result<(), String> {
    let streams = (0..a.connections)
        .map(|_| {
            std::thread::sleep(Duration::from_micros(a.pace_us));
            TcpStream::connect(("127.0.0.1", a.port))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("connect to port {}: {e}", a.port))?;
    let started = Instant::now();
    let timeout = Duration::from_millis(a.timeout_ms);
    let results: Vec<Option<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                let path = a.path.as_str();
                scope.spawn(move || {
                    let _ = stream.set_read_timeout(Some(timeout));
                    let answered = exchange(&mut stream, path)
                        .ok()
                        .map(|_| started.elapsed().as_secs_f64() * 1000.0);
                    // Kept open until every thread is done, as keep-alive clients do: a
                    // closed connection would free its server thread for a starved one.
                    (answered, stream)
                })
            })
            .collect();
        let joined: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().map_or((None, None), |(r, s)| (r, Some(s))))
            .collect();
        joined.into_iter().map(|(r, _stream)| r).collect()
    });
    let answered: Vec<f64> = results.iter().flatten().copied().collect();
    let slowest = answered.iter().copied().fold(0.0, f64::max);
    println!(
        "{}",
        json!({"phase": "burst", "connections": a.connections, "answered": answered.len(),
               "unanswered": a.connections - answered.len(), "timeout_ms": a.timeout_ms,
               "slowest_answered_ms": slowest})
    );
    Ok(())
}
