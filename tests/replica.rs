//! Read replicas with the real binary: one collector (`role = collector`, scanning the
//! synthetic registry every second) and two readers (`role = reader`) as separate
//! processes sharing a temporary directory. The readers serve each new scan the collector
//! writes, ignore a broken file (logged once per version), turn `/health` to 503 once the
//! collector is gone and the data is older than `max_snapshot_age`, and never open a
//! connection to the registry they are configured with.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::synthetic::{Synthetic, Totals};
use support::{basic_auth, file_tail, free_port, try_http_request, ChildGuard, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const SECRET: &str = "k8Jf2Lq9Vx3Nw7Rt5Yb1Hc6Zm4Pd0Gs2";
/// The readers' limit: small, so the test does not wait long for staleness.
const MAX_AGE_SECONDS: f64 = 6.0;
const BROKEN_LINE: &str = "ignoring a new version of a followed file that cannot be loaded";

/// One service process, its port and its log.
struct Service {
    guard: ChildGuard,
    /// Killed on purpose: its exit is no failure.
    stopped: bool,
    port: u16,
    log: PathBuf,
}

impl Service {
    /// Start the binary with `[general]` lines `general` and `[registry]` lines
    /// `registry` (htpasswd login: `admin` / `pw`).
    fn start(dir: &Path, name: &str, general: &str, registry: &str) -> Service {
        let htpasswd = dir.join("htpasswd");
        if !htpasswd.exists() {
            let line = format!("admin:{}\n", bcrypt::hash("pw", 4).unwrap());
            std::fs::write(&htpasswd, line).unwrap();
        }
        let port = free_port();
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "[general]\nsocket_port = {port}\nauth_backend = htpasswd\n{general}\n\
                 [jwt]\nsecret_key = {SECRET}\n[htpasswd]\nfile = {}\n[registry]\n{registry}\n",
                htpasswd.display()
            ),
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(BIN)
            .args(["-c", conf.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Service {
            guard: ChildGuard::new(name, child),
            stopped: false,
            port,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `/health`'s status and body, or `None` while it does not answer.
    fn health(&self) -> Option<(u16, serde_json::Value)> {
        let reply = try_http_request("GET", &self.url("/health"), &[], None).ok()?;
        Some((reply.status, reply.json()))
    }

    fn token(&self) -> String {
        let auth = basic_auth("admin", "pw");
        let reply = try_http_request(
            "GET",
            &self.url("/auth_token"),
            &[("Authorization", &auth)],
            None,
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["auth_token"].as_str().unwrap().to_string()
    }

    /// The totals it serves, or `None` while it has no snapshot.
    fn served(&self, token: &str) -> Option<Totals> {
        let bearer = format!("Bearer {token}");
        let reply = try_http_request(
            "GET",
            &self.url("/repositories"),
            &[("Authorization", &bearer)],
            None,
        )
        .ok()?;
        match reply.status {
            200 => Some(Totals::from_json(&reply.json())),
            503 => None,
            status => panic!("/repositories answered {status}: {}", reply.text()),
        }
    }

    /// `/history`'s points (the registry's usage history), or `None` while it has none.
    fn history(&self, token: &str) -> Option<serde_json::Value> {
        let bearer = format!("Bearer {token}");
        let reply = try_http_request(
            "GET",
            &self.url("/history"),
            &[("Authorization", &bearer)],
            None,
        )
        .ok()?;
        let points = reply.json()["points"].clone();
        (reply.status == 200 && points.as_array().is_some_and(|p| !p.is_empty())).then_some(points)
    }

    fn log_lines_with(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn tail(&self) -> String {
        format!(
            "--- {} log:\n{}",
            self.guard.name,
            file_tail(&self.log, 3000)
        )
    }
}

/// Poll `f` over the services until it holds; panics after a generous deadline (not a
/// measure) or when a service that should run died, with the logs.
fn wait_for(what: &str, services: &mut [Service], mut f: impl FnMut(&[Service]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if f(services) {
            return;
        }
        for s in services.iter_mut().filter(|s| !s.stopped) {
            if let Some(status) = s.guard.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) while waiting for {what}:\n{}",
                    s.guard.name,
                    s.tail()
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            services
                .iter()
                .map(Service::tail)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A listening socket that counts the connections made to it: where a reader's registry
/// is said to be.
fn connection_counter() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

#[test]
fn a_collector_and_two_readers_share_one_snapshot_file() {
    let registry = Synthetic::start(&["--repositories", "40", "--tags", "3", "--auth", "none"]);
    let dir = TempDir::new("replica");
    let snapshot_file = dir.path().join("shared").join("snapshot.json");
    std::fs::create_dir_all(snapshot_file.parent().unwrap()).unwrap();
    let file_line = format!("snapshot_file = {}", snapshot_file.display());

    // Readers first: they start with nothing and say so. Their registry is a socket that
    // records connections, with credentials and a CA file that do not exist.
    let (bogus, connections) = connection_counter();
    let reader_general = format!("role = reader\n{file_line}\nmax_snapshot_age = 6s");
    let reader_registry = format!(
        "registry_base_url = {bogus}\ngitlab_base_url = {bogus}\nusername =\naccess_token =\n\
         ca_file = {}",
        dir.path().join("no-such-ca.pem").display()
    );
    let mut all = vec![
        Service::start(dir.path(), "reader-1", &reader_general, &reader_registry),
        Service::start(dir.path(), "reader-2", &reader_general, &reader_registry),
    ];
    wait_for("the readers to answer /health", &mut all, |all| {
        all[..2].iter().all(|r| r.health().is_some())
    });
    for r in &all[..2] {
        let (status, body) = r.health().unwrap();
        assert_eq!(status, 503);
        assert_eq!(body["status"], "starting", "{body}");
    }
    let tokens: Vec<String> = all[..2].iter().map(|r| r.token()).collect();
    let serve = |all: &[Service], totals: Totals| {
        all[..2]
            .iter()
            .zip(&tokens)
            .all(|(r, t)| r.served(t) == Some(totals))
    };

    all.push(Service::start(
        dir.path(),
        "collector",
        &format!("role = collector\n{file_line}\nrefresh_interval = 1 second"),
        &format!(
            "registry_base_url = {}\nusername = x\naccess_token = y\nrequest_timeout = 10s",
            registry.url
        ),
    ));
    let expected = registry.expected();
    wait_for("both readers to serve the first scan", &mut all, |all| {
        serve(all, expected)
    });
    let collector_token = all[2].token();
    assert_eq!(all[2].served(&collector_token), Some(expected));

    // New images: the collector rescans, both readers serve the new numbers.
    let moved = registry.move_tags(50);
    assert_ne!(moved, expected);
    wait_for("both readers to serve the new scan", &mut all, |all| {
        serve(all, moved)
    });
    // The usage history follows too: the readers answer /history with the collector's
    // points (today's is the moved scan's), read from the file the collector appends to.
    wait_for(
        "both readers to serve the collector's history",
        &mut all,
        |all| {
            let theirs = all[2].history(&collector_token);
            theirs
                .as_ref()
                .and_then(|p| p.as_array()?.last()?["size"].as_u64())
                == Some(moved.size)
                && all[..2]
                    .iter()
                    .zip(&tokens)
                    .all(|(r, t)| r.history(t) == theirs)
        },
    );
    wait_for("the readers' /health to say ok", &mut all, |all| {
        all[..2]
            .iter()
            .all(|r| matches!(r.health(), Some((200, b)) if b["status"] == "ok"))
    });

    // The collector dies; a bad one writes garbage into place by rename.
    all[2].guard.kill();
    all[2].stopped = true;
    let garbage = snapshot_file.with_file_name(".garbage");
    std::fs::write(
        &garbage,
        b"{\"format\":\"gitlab-registry-usage-rest/snapshot/1\",\"timest",
    )
    .unwrap();
    std::fs::rename(&garbage, &snapshot_file).unwrap();
    wait_for("both readers to log the broken file", &mut all, |all| {
        all[..2].iter().all(|r| r.log_lines_with(BROKEN_LINE) >= 1)
    });
    for (r, token) in all[..2].iter().zip(&tokens) {
        assert_eq!(r.served(token), Some(moved), "{}", r.tail());
    }

    // No new scan arrives: once the data is older than max_snapshot_age, /health is 503.
    wait_for("the readers' /health to turn 503", &mut all, |all| {
        all[..2]
            .iter()
            .all(|r| matches!(r.health(), Some((503, _))))
    });
    for (r, token) in all[..2].iter().zip(&tokens) {
        let (_, body) = r.health().unwrap();
        assert_eq!(body["status"], "stale", "{body}");
        assert_eq!(
            body["max_snapshot_age_seconds"].as_f64(),
            Some(MAX_AGE_SECONDS)
        );
        let age = body["snapshot_age_seconds"].as_f64().unwrap();
        assert!(age > MAX_AGE_SECONDS, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("collector"),
            "{body}"
        );
        // Still serving the last good data, and the broken version was logged once,
        // not once per poll (several polls passed while the data aged).
        assert_eq!(r.served(token), Some(moved));
        assert_eq!(r.log_lines_with(BROKEN_LINE), 1, "{}", r.tail());
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a reader connected to its configured registry"
    );
}

/// A reader refuses `--collect-once` and `--check-config` does not judge its registry.
#[test]
fn a_reader_never_scans_even_when_asked_to() {
    let dir = TempDir::new("replica-cli");
    let (bogus, connections) = connection_counter();
    let conf = dir.path().join("reader.conf");
    std::fs::write(
        &conf,
        format!(
            "[general]\nrole = reader\nsnapshot_file = {}\n[jwt]\nsecret_key = {SECRET}\n\
             [registry]\nregistry_base_url = {bogus}\nca_file = /nonexistent/ca.pem\n",
            dir.path().join("snapshot.json").display()
        ),
    )
    .unwrap();
    let run = |arg: &str| {
        Command::new(BIN)
            .args(["-c", conf.to_str().unwrap(), arg])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let once = run("--collect-once");
    assert_eq!(once.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&once.stderr).contains("a reader never scans"));
    let check = run("--check-config");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}
