//! The command line: a drop-in for the original's (`-c`, `--print-default-config`, `-V`)
//! plus `--check-config`, `--collect-once` and `--report`. Serving: load the config, serve the
//! snapshot file at once if there is one, start the refresh thread and the HTTP workers,
//! tell systemd we are ready, and stop cleanly on SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use argh::FromArgs;

use gitlab_registry_usage_rest::auth::jwt::Tokens;
use gitlab_registry_usage_rest::auth::Authenticator;
use gitlab_registry_usage_rest::config::{self, Config, Role};
use gitlab_registry_usage_rest::registry::Client;
use gitlab_registry_usage_rest::snapshot::{self, Shared, Snapshot};
use gitlab_registry_usage_rest::usage::{report, Usage};
use gitlab_registry_usage_rest::{history, http, log, refresh, replica, scan};

#[derive(FromArgs)]
/// Scan a GitLab container registry for the disk space its repositories and tags use, and
/// serve the result as a HAL+JSON REST API behind LDAP (or htpasswd) login and JSON Web
/// Tokens. Exit codes: 0 success, 1 runtime failure, 2 bad command line or config.
struct Args {
    /// web service config file (default: /etc/gitlab_registry_usage_rest.conf)
    #[argh(
        option,
        short = 'c',
        default = "PathBuf::from(config::DEFAULT_CONFIG_PATH)"
    )]
    config_file: PathBuf,

    /// print the default config (every key with its default) to stdout and exit
    #[argh(switch)]
    print_default_config: bool,

    /// print the version number and exit
    #[argh(switch, short = 'V')]
    version: bool,

    /// parse and validate the config file, say what is wrong, and exit (2 on error)
    #[argh(switch)]
    check_config: bool,

    /// scan the registry once, print the JSON document that GET /repositories?embed=true
    /// returns, and exit (non-zero if the scan failed as a whole)
    #[argh(switch)]
    collect_once: bool,

    /// scan the registry once, print the top namespaces and repositories by exclusive
    /// size (what deleting them would free) as a table, and exit; N rows each (default 20)
    #[argh(switch)]
    report: bool,

    /// with --report: how many rows each table has
    #[argh(positional)]
    rows: Option<usize>,

    /// print what a GitLab cleanup policy would delete and free, and exit: the API's
    /// query, e.g. 'name_regex=.*&keep_n=5&older_than=90d&namespace=group/x' (or
    /// repository=<name>); reads snapshot_file when there is one, else scans once
    #[argh(option)]
    preview_cleanup: Option<String>,
}

fn main() -> ExitCode {
    // Printing commands (`--help | head`, `--collect-once | head`) end quietly when the
    // reader goes away, as command-line tools do; `serve` ignores SIGPIPE again.
    // SAFETY: setting a signal disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    gitlab_registry_usage_rest::memory::tune();
    let args = match parse_args(std::env::args_os()) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    if args.version {
        println!("gitlab-registry-usage-rest {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.print_default_config {
        print!("{}", config::default_config());
        return ExitCode::SUCCESS;
    }
    let (config, unknown) = match load_config(&args.config_file) {
        Ok(c) => c,
        Err(e) => {
            gitlab_registry_usage_rest::log!(
                error,
                "bad configuration",
                file = args.config_file.display(),
                error = e
            );
            return ExitCode::from(2);
        }
    };
    log::set_debug(config.general.debug);
    if args.check_config {
        if !unknown.is_empty() {
            for u in &unknown {
                eprintln!("{}: {u}", args.config_file.display());
            }
            eprintln!(
                "{}: fix or remove the entries above (the service would ignore them)",
                args.config_file.display()
            );
            return ExitCode::from(2);
        }
        let serving = config
            .check_serving()
            .and_then(|_| Authenticator::from_config(&config).map(|_| ()));
        // A reader never talks to the registry: its [registry] section is not its business.
        let client = match config.general.role {
            Role::Reader => Ok(()),
            Role::Both | Role::Collector => Client::new(&config.registry).map(|_| ()),
        };
        return match serving.and(client) {
            Ok(()) => {
                println!("{}: the configuration is valid", args.config_file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", args.config_file.display());
                ExitCode::from(2)
            }
        };
    }
    if args.rows.is_some() && !args.report {
        eprintln!("a number is only accepted after --report (try --help)");
        return ExitCode::from(2);
    }
    if args.collect_once || args.report {
        let rows = args
            .report
            .then(|| args.rows.unwrap_or(report::DEFAULT_ROWS));
        return collect_once(&config, rows);
    }
    if let Some(query) = &args.preview_cleanup {
        return preview_cleanup(&config, query);
    }
    serve(config)
}

/// Read and validate the file. Unknown sections and keys are logged as warnings (the
/// original ignored them too) and returned, for `--check-config` to refuse.
fn load_config(path: &Path) -> Result<(Config, Vec<config::Unknown>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read it: {e} (write one with --print-default-config and edit it)")
    })?;
    let (config, unknown) = Config::parse(&text).map_err(|e| e.to_string())?;
    for u in &unknown {
        gitlab_registry_usage_rest::log!(
            warn,
            "ignoring an unknown config entry",
            file = path.display(),
            problem = u
        );
    }
    Ok((config, unknown))
}

/// What a command-line mistake prints: the problem, then where to look.
fn usage_error(problem: &str) -> ExitCode {
    eprintln!("gitlab-registry-usage-rest: {problem}");
    eprintln!("Run `gitlab-registry-usage-rest --help` for the options.");
    ExitCode::from(2)
}

/// The command line, with `-h` as `--help` and exit code 2 for every mistake (argh's own
/// `from_env` exits 1), as `--help` promises.
fn parse_args(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, ExitCode> {
    let mut strings = Vec::new();
    for (i, arg) in argv.into_iter().enumerate() {
        match arg.into_string() {
            Ok(s) => strings.push(s),
            Err(bad) => {
                return Err(usage_error(&format!(
                    "argument {i} ({}) is not valid UTF-8",
                    bad.to_string_lossy()
                )))
            }
        }
    }
    let command = strings
        .first()
        .map_or("gitlab-registry-usage-rest", |c| {
            Path::new(c)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(c)
        })
        .to_string();
    let rest: Vec<&str> = strings
        .iter()
        .skip(1)
        .map(|a| if a == "-h" { "--help" } else { a.as_str() })
        .collect();
    let args = match Args::from_args(&[&command], &rest) {
        Ok(args) => args,
        Err(argh::EarlyExit { output, status }) => {
            return Err(match status {
                Ok(()) => {
                    print!("{output}");
                    ExitCode::SUCCESS
                }
                Err(()) => usage_error(output.trim_end()),
            })
        }
    };
    let modes: Vec<&str> = [
        (args.version, "--version"),
        (args.print_default_config, "--print-default-config"),
        (args.check_config, "--check-config"),
        (args.collect_once, "--collect-once"),
        (args.preview_cleanup.is_some(), "--preview-cleanup"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    if modes.len() > 1 {
        return Err(usage_error(&format!(
            "{} cannot be combined: give one of them",
            modes.join(" and ")
        )));
    }
    Ok(args)
}

/// One scan for a command-line mode (`flag` names it in a reader's error).
fn scan_once(config: &Config, flag: &str) -> Result<Snapshot, ExitCode> {
    if config.general.role == Role::Reader {
        gitlab_registry_usage_rest::log!(
            error,
            format!("a reader never scans: run {flag} with role = collector or both (or without -c, with the collector's config)"),
            role = "reader"
        );
        return Err(ExitCode::from(2));
    }
    let client = match Client::new(&config.registry) {
        Ok(c) => c,
        Err(e) => {
            gitlab_registry_usage_rest::log!(error, "bad configuration", error = e);
            return Err(ExitCode::from(2));
        }
    };
    match scan::scan(&client, None, config.registry.concurrency) {
        Ok(report) => {
            report.log();
            Ok(report.snapshot)
        }
        Err(e) => {
            gitlab_registry_usage_rest::log!(error, "scan failed", error = e);
            Err(ExitCode::from(1))
        }
    }
}

/// `--collect-once` (`rows: None`) or `--report` (`Some(rows)`): one scan, one document.
fn collect_once(config: &Config, rows: Option<usize>) -> ExitCode {
    let flag = if rows.is_some() {
        "--report"
    } else {
        "--collect-once"
    };
    let snapshot = match scan_once(config, flag) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    match rows {
        None => println!("{}", http::collection_document(&snapshot)),
        Some(rows) => {
            let usage = Usage::of(&snapshot);
            print!("{}", report::report(&snapshot, &usage, rows));
        }
    }
    ExitCode::SUCCESS
}

/// `--preview-cleanup`: over the data the service serves (its `snapshot_file`, so no
/// registry traffic and the same answer as the API) when there is one, else one scan.
fn preview_cleanup(config: &Config, query: &str) -> ExitCode {
    use gitlab_registry_usage_rest::cleanup;
    let policy = match cleanup::policy_of(query) {
        Ok(p) => p,
        Err(e) => return usage_error(&format!("--preview-cleanup: {e}")),
    };
    let scope = cleanup::scope_of(query);
    let loaded = match &config.general.snapshot_file {
        Some(path) => match snapshot::load(path) {
            Ok(s) => Some(s),
            Err(snapshot::LoadError::NotFound(_)) => None,
            Err(e) => {
                gitlab_registry_usage_rest::log!(error, "cannot read the snapshot file", error = e);
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let snapshot = match loaded {
        Some(s) => s,
        None => match scan_once(config, "--preview-cleanup") {
            Ok(s) => s,
            Err(exit) => return exit,
        },
    };
    let Some(in_scope) = scope.repositories(&snapshot) else {
        eprintln!(
            "gitlab-registry-usage-rest: no repository is named {:?} or lies under it",
            scope.name().unwrap_or_default()
        );
        return ExitCode::from(1);
    };
    if policy.delete.is_none() {
        eprintln!("note: name_regex is missing: no tag matches, so nothing would be deleted");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let usage = Usage::of(&snapshot);
    let preview = cleanup::preview(&snapshot, &usage, &policy, &in_scope, now);
    print!("{}", cleanup::table(&snapshot, &preview, 20));
    ExitCode::SUCCESS
}

fn serve(config: Config) -> ExitCode {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        gitlab_registry_usage_rest::log!(error, what, error = e);
        ExitCode::from(2)
    };
    if let Err(e) = config.check_serving() {
        return fail("refusing to start", &e);
    }
    let authenticator = match Authenticator::from_config(&config) {
        Ok(a) => a,
        Err(e) => return fail("refusing to start", &e),
    };
    let tokens = match Tokens::new(&config.jwt) {
        Ok(t) => t,
        Err(e) => return fail("refusing to start", &e),
    };

    // A client that closes its socket must give a write error, never a dead process.
    // SAFETY: setting a signal disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // Block SIGTERM/SIGINT before any thread starts, so only `wait_for_signal` sees them.
    let signals = block_signals();

    let scrape_token = match &config.metrics.bearer_token_file {
        Some(path) => match gitlab_registry_usage_rest::metrics::ScrapeToken::load(path) {
            Ok(t) => Some(t),
            Err(e) => return fail("refusing to start", &e),
        },
        None => None,
    };
    // A collector's snapshot file is read while the history file is (a million tags take
    // about a second); what was read is served once both are in (below).
    let reading = match (config.general.role, &config.general.snapshot_file) {
        (Role::Both | Role::Collector, Some(path)) => {
            let path = path.clone();
            let thread = std::thread::Builder::new()
                .name("snapshot-file".into())
                .spawn(move || refresh::read_snapshot_file(&path));
            match thread {
                Ok(t) => Some(t),
                Err(e) => return fail("cannot start a thread", &e),
            }
        }
        _ => None,
    };
    // Like the snapshot file, a history file that cannot be used costs the file, not the
    // service: the points are kept in memory and the problem is logged. A reader never
    // opens the collector's history file for writing: it follows it (below).
    let opened = match config.general.role {
        Role::Reader => Ok(history::History::in_memory(config.general.history_days)),
        Role::Both | Role::Collector => history::open(&config.general),
    };
    let history = match opened {
        Ok(h) => Arc::new(h),
        Err(e) => {
            gitlab_registry_usage_rest::log!(
                error,
                "cannot use the history file; the usage history is kept in memory only",
                error = e
            );
            Arc::new(history::History::in_memory(config.general.history_days))
        }
    };

    let shared = Arc::new(Shared::default());
    // What the background thread does: scan (collector, both) or follow the collector's
    // files (reader, which builds no registry client at all).
    let background = match (config.general.role, &config.general.snapshot_file) {
        (Role::Reader, Some(path)) => {
            let mut follower = replica::Follower::default();
            replica::follow_snapshot(&mut follower, path.clone(), shared.clone(), history.clone());
            if let Some(file) = &config.general.history_file {
                replica::follow_history(
                    &mut follower,
                    file.clone(),
                    shared.clone(),
                    history.clone(),
                );
            }
            follower.poll();
            Background::Follow(follower)
        }
        (Role::Reader, None) => {
            return fail("refusing to start", &"role = reader needs snapshot_file")
        }
        (Role::Both | Role::Collector, _) => {
            let client = match Client::new(&config.registry) {
                Ok(c) => c,
                Err(e) => return fail("refusing to start", &e),
            };
            let read = reading.map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            if let Some(snapshot) = read.flatten() {
                refresh::adopt_snapshot(snapshot, &shared, &history);
            }
            Background::Refresh(Box::new(client))
        }
    };
    let config = Arc::new(config);
    let app = http::App::new(config.clone(), shared.clone(), authenticator, tokens)
        .with_history_and_token(Arc::clone(&history), scrape_token);
    let metrics = app.metrics();
    let app = Arc::new(app);
    let running = match http::start(app) {
        Ok(r) => r,
        Err(e) => {
            gitlab_registry_usage_rest::log!(error, "cannot serve", error = e);
            return ExitCode::from(1);
        }
    };
    gitlab_registry_usage_rest::log!(
        info,
        "listening",
        address = running.addr,
        tls = config.general.tls_certificate_file.is_some(),
        prefix = if config.general.server_prefix.is_empty() {
            "/"
        } else {
            &config.general.server_prefix
        },
        workers = config.general.worker_threads,
        role = format!("{:?}", config.general.role).to_ascii_lowercase(),
    );
    notify_systemd("READY=1");

    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let refresher = match background {
        Background::Refresh(client) => {
            let refresh = refresh::Refresh {
                client: *client,
                shared,
                interval: config.general.refresh_interval,
                concurrency: config.registry.concurrency,
                snapshot_file: config.general.snapshot_file.clone(),
                metrics,
                history,
            };
            std::thread::Builder::new()
                .name("refresh".into())
                .spawn(move || {
                    // The snapshot file's point, if one was loaded: before any scan's.
                    refresh::record_served(&refresh);
                    refresh::run(refresh, stop_rx)
                })
        }
        Background::Follow(follower) => std::thread::Builder::new()
            .name("follow".into())
            .spawn(move || follower.run(stop_rx)),
    }
    .expect("spawn the background thread");

    // The signal is awaited on a thread of its own, so that a server that can no longer
    // serve ends the process too (non-zero, for the supervisor to restart it).
    let (signal_tx, signal_rx) = crossbeam_channel::bounded::<&'static str>(1);
    let waiter = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let _ = signal_tx.send(wait_for_signal(&signals));
        });
    if let Err(e) = waiter {
        gitlab_registry_usage_rest::log!(error, "cannot start the signal thread", error = e);
        return ExitCode::from(1);
    }
    crossbeam_channel::select! {
        recv(signal_rx) -> signal => {
            let signal = signal.unwrap_or("signal");
            gitlab_registry_usage_rest::log!(info, "stopping", signal = signal);
        }
        recv(running.failed()) -> why => {
            gitlab_registry_usage_rest::log!(
                error,
                "cannot serve any more; exiting so that the service is restarted",
                error = why.unwrap_or_default()
            );
            notify_systemd("STOPPING=1");
            return ExitCode::from(1);
        }
    }
    notify_systemd("STOPPING=1");
    running.shutdown();
    drop(stop_tx);
    // A scan in flight is abandoned, not awaited: its requests have their own timeouts,
    // but an exit must not wait for a whole registry walk.
    if refresher.is_finished() {
        let _ = refresher.join();
    }
    gitlab_registry_usage_rest::log!(info, "stopped");
    ExitCode::SUCCESS
}

/// The one background thread's job: scanning, or following a collector's files.
enum Background {
    Refresh(Box<Client>),
    Follow(replica::Follower),
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, zero-initialised sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> &'static str {
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` is a valid sigset_t with the signals blocked in every thread.
    loop {
        let rc = unsafe { libc::sigwait(set, &mut signal) };
        if rc == 0 {
            break;
        }
    }
    match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

/// `sd_notify` without libsystemd: one datagram to `$NOTIFY_SOCKET` (path or `@abstract`).
fn notify_systemd(state: &str) {
    use std::os::unix::net::UnixDatagram;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| socket.send_to_addr(state.as_bytes(), &a))
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        gitlab_registry_usage_rest::log!(
            warn,
            "cannot notify systemd",
            socket = Path::new(&path).display(),
            error = e
        );
    }
}
