//! Faults a real registry cannot produce on demand, from the scripted fake: 5xx then
//! success, 429 with Retry-After, a hanging server, garbage, a 404 tag list, a registry
//! down for a whole scan, pagination quirks, schema 1 and nested indexes; and hostile
//! or broken neighbours: endless bodies, huge headers, a registry dying mid-scan, an
//! untrusted certificate, a name that does not resolve.

#[path = "support/slapd.rs"]
mod slapd;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::history::{History, Kind};
use gitlab_registry_usage_rest::metrics::{Limits, Metrics};
use gitlab_registry_usage_rest::refresh::{scan_once, Refresh};
use gitlab_registry_usage_rest::registry::{Client, Error, Policy};
use gitlab_registry_usage_rest::scan::scan;
use gitlab_registry_usage_rest::snapshot::{Shared, Snapshot};
use support::fake_registry::{FakeRegistry, Front, Reply};
use support::push::BlobRef;

fn client_with(url: &str, extra: &str) -> Client {
    client_with_policy(url, extra, FAST)
}

fn client_with_policy(url: &str, extra: &str, policy: Policy) -> Client {
    let text = format!(
        "[registry]\nregistry_base_url = {url}\ngitlab_base_url = {url}/gitlab/\nusername = root\n\
         access_token = pat\nconcurrency = 3\nrequest_timeout = 2s\n{extra}"
    );
    let (config, _) = Config::parse(&text).unwrap();
    Client::with_policy(&config.registry, policy).unwrap()
}

/// The standard policy with millisecond backoffs, so retries cost the tests no time.
const FAST: Policy = Policy {
    first_delay: Duration::from_millis(1),
    ..Policy::STANDARD
};

fn client(url: &str) -> Client {
    client_with(url, "")
}

fn blob(byte: u8, size: usize) -> BlobRef {
    BlobRef::of(&vec![byte; size])
}

/// Script a repository with one tag holding `layers` (OCI image).
fn image(fake: &FakeRegistry, repo: &str, tag: &str, layers: &[BlobRef]) {
    let config = BlobRef::of(format!("config of {repo}:{tag}").as_bytes());
    fake.on(
        "GET",
        &format!("/v2/{repo}/tags/list"),
        vec![Reply::tags(repo, Some(&[tag]))],
    );
    let manifest = Reply::oci_manifest(&config, layers);
    let digest = manifest
        .header_value("Docker-Content-Digest")
        .unwrap()
        .to_string();
    fake.on(
        "GET",
        &format!("/v2/{repo}/manifests/{digest}"),
        vec![manifest.clone()],
    );
    fake.on(
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        vec![manifest],
    );
}

fn sizes(s: &Snapshot, name: &str) -> (Option<u64>, Option<u64>, Option<String>) {
    let r = s.repository(name).unwrap();
    (r.size, r.disk_size, r.error.as_deref().map(str::to_string))
}

#[test]
fn server_errors_then_success_are_retried() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![
            Reply::error(500, "UNKNOWN", "boom"),
            Reply::unavailable(),
            Reply::catalog(&["r"]),
        ],
    );
    image(&fake, "r", "t", &[blob(1, 10)]);
    let report = scan(&client(&fake.url), None, 2).expect("scan succeeds after retries");
    assert_eq!(fake.count("GET", "/v2/_catalog"), 3);
    assert_eq!(report.requests.retries, 2);
    assert_eq!(sizes(&report.snapshot, "r"), (Some(10), Some(10), None));
}

#[test]
fn too_many_requests_honours_retry_after() {
    let fake = FakeRegistry::start();
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["r"])]);
    fake.on(
        "GET",
        "/v2/r/tags/list",
        vec![Reply::too_many_requests(1), Reply::tags("r", Some(&["t"]))],
    );
    fake.on(
        "GET",
        "/v2/r/manifests/t",
        vec![Reply::oci_manifest(&blob(0, 3), &[blob(2, 20)])],
    );
    let started = Instant::now();
    let report = scan(&client(&fake.url), None, 2).expect("scan");
    let tag_requests: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/v2/r/tags/list")
        .collect();
    assert_eq!(tag_requests.len(), 2);
    let gap = tag_requests[1].at - tag_requests[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?}, Retry-After said 1 s"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(sizes(&report.snapshot, "r").0, Some(20));
}

#[test]
fn a_hanging_manifest_times_out_and_only_its_repository_fails() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![Reply::catalog(&["fine", "slow"])],
    );
    image(&fake, "fine", "t", &[blob(1, 10)]);
    fake.on(
        "GET",
        "/v2/slow/tags/list",
        vec![Reply::tags("slow", Some(&["t"]))],
    );
    fake.on("GET", "/v2/slow/manifests/t", vec![Reply::hang()]);
    let two_attempts = Policy {
        attempts: 2,
        ..FAST
    };
    let c = client_with_policy(&fake.url, "request_timeout = 200ms\n", two_attempts);
    let report = scan(&c, None, 2).expect("scan as a whole succeeds");
    assert_eq!(
        fake.count("GET", "/v2/slow/manifests/t"),
        2,
        "a timeout is retried"
    );
    assert_eq!(sizes(&report.snapshot, "fine"), (Some(10), Some(10), None));
    let (size, disk, error) = sizes(&report.snapshot, "slow");
    assert_eq!((size, disk), (None, None));
    let error = error.expect("slow carries an error");
    assert!(
        error.contains("/v2/slow/manifests/t")
            && error.contains("no answer within request_timeout"),
        "{error}"
    );
    assert!(report.snapshot.repository("slow").unwrap().tags.is_none());
    assert_eq!(report.failed_repositories, 1);
}

#[test]
fn garbage_and_404_fail_one_repository_each_with_words() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![Reply::catalog(&["gone", "junk", "ok", "badman"])],
    );
    image(&fake, "ok", "1", &[blob(1, 5)]);
    // gone: unscripted, so its tag list is a 404 NAME_UNKNOWN
    fake.on(
        "GET",
        "/v2/junk/tags/list",
        vec![Reply::new(200).body("<html>oops</html>")],
    );
    fake.on(
        "GET",
        "/v2/badman/tags/list",
        vec![Reply::tags("badman", Some(&["x"]))],
    );
    fake.on(
        "GET",
        "/v2/badman/manifests/x",
        vec![Reply::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body("{\"layers\": 3}")],
    );
    let report = scan(&client(&fake.url), None, 2).expect("scan");
    let s = &report.snapshot;
    assert_eq!(sizes(s, "ok"), (Some(5), Some(5), None));
    let gone = sizes(s, "gone").2.unwrap();
    assert!(
        gone.contains("HTTP 404") && gone.contains("NAME_UNKNOWN"),
        "{gone}"
    );
    let junk = sizes(s, "junk").2.unwrap();
    assert!(junk.contains("tag list is not valid JSON"), "{junk}");
    let bad = sizes(s, "badman").2.unwrap();
    assert!(
        bad.starts_with("tag x:") && bad.contains("not valid JSON"),
        "{bad}"
    );
    assert_eq!(report.failed_repositories, 3);
    assert_eq!(s.totals.tag_count, 1);
}

#[test]
fn a_failed_repository_keeps_its_previous_numbers() {
    let fake = FakeRegistry::start();
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["a", "b"])]);
    image(&fake, "a", "1", &[blob(1, 10)]);
    image(&fake, "b", "1", &[blob(2, 20)]);
    let first = scan(&client(&fake.url), None, 2).unwrap().snapshot;
    fake.on(
        "GET",
        "/v2/b/tags/list",
        vec![Reply::error(500, "UNKNOWN", "disk on fire")],
    );
    let second = scan(&client(&fake.url), Some(&first), 2).unwrap().snapshot;
    let (size, disk, error) = sizes(&second, "b");
    assert_eq!((size, disk), (Some(20), Some(20)));
    assert!(error.unwrap().contains("disk on fire"));
    assert_eq!(second.totals.disk_size, 30);
}

#[test]
fn registry_down_keeps_the_old_snapshot_and_the_next_scan_recovers() {
    let fake = FakeRegistry::start();
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["a"])]);
    image(&fake, "a", "1", &[blob(1, 10)]);
    let shared = Arc::new(Shared::default());
    let limits = Limits {
        namespace_depth: 1,
        top_repositories: 0,
    };
    let refresh = Refresh {
        client: client(&fake.url),
        shared: shared.clone(),
        interval: Duration::from_secs(3600),
        concurrency: 2,
        snapshot_file: None,
        metrics: Arc::new(Metrics::new(&["unmatched"], limits)),
        history: Arc::new(History::in_memory(400)),
    };
    assert!(scan_once(&refresh));
    let before = shared.snapshot().unwrap();

    fake.set_down(true);
    assert!(
        !scan_once(&refresh),
        "a registry answering 503 to everything fails the scan"
    );
    assert_eq!(
        fake.count("GET", "/v2/"),
        1 + 4,
        "discovery is retried (4 attempts)"
    );
    let kept = shared.snapshot().unwrap();
    assert_eq!(
        kept.generation, before.generation,
        "the old snapshot is still served"
    );

    fake.set_down(false);
    image(&fake, "a", "1", &[blob(1, 10), blob(2, 5)]);
    assert!(scan_once(&refresh));
    let after = shared.snapshot().unwrap();
    assert_ne!(after.generation, before.generation);
    assert_eq!(after.repository("a").unwrap().size, Some(15));

    // /metrics counts the failed scan; the history has the day's last scan only.
    let text = refresh.metrics.render(shared.get().as_deref());
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("gitlab_registry_usage_{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_string()
    };
    assert_eq!(
        line("scan_failures_total"),
        "gitlab_registry_usage_scan_failures_total 1"
    );
    assert_eq!(
        line("logical_bytes"),
        "gitlab_registry_usage_logical_bytes 15"
    );
    assert!(text.contains("gitlab_registry_usage_scan_requests_total{kind=\"retries\"} "));
    let points = refresh.history.points(Kind::Repository, "a", None).unwrap();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].numbers.size, 15);
}

#[test]
fn pagination_relative_and_absolute_links_and_null_tags() {
    let fake = FakeRegistry::start();
    let abs = format!("{}/v2/_catalog?last=b&n=2", fake.url);
    fake.on(
        "GET",
        "/v2/_catalog?n=2",
        vec![Reply::catalog(&["a", "b"]).next_link(&abs)],
    );
    fake.on(
        "GET",
        "/v2/_catalog?last=b&n=2",
        vec![Reply::catalog(&["c", "empty"]).next_link("/v2/_catalog?last=empty&n=2")],
    );
    fake.on(
        "GET",
        "/v2/_catalog?last=empty&n=2",
        vec![Reply::catalog(&[])],
    );
    for r in ["a", "b", "c"] {
        image(&fake, r, "1", &[blob(7, 1)]);
    }
    fake.on(
        "GET",
        "/v2/c/tags/list?n=2",
        vec![Reply::tags("c", Some(&["1", "2"])).next_link("/v2/c/tags/list?last=2&n=2")],
    );
    fake.on(
        "GET",
        "/v2/c/tags/list?last=2&n=2",
        vec![Reply::tags("c", Some(&["3"]))],
    );
    for tag in ["2", "3"] {
        fake.on(
            "GET",
            &format!("/v2/c/manifests/{tag}"),
            vec![Reply::oci_manifest(&blob(0, 1), &[blob(8, 2)])],
        );
    }
    fake.on(
        "GET",
        "/v2/empty/tags/list",
        vec![Reply::tags("empty", None)],
    );
    let report = scan(&client_with(&fake.url, "page_size = 2\n"), None, 2).expect("scan");
    let s = &report.snapshot;
    let names: Vec<&str> = s.repositories.iter().map(|r| r.name.as_ref()).collect();
    assert_eq!(names, ["a", "b", "c", "empty"]);
    assert_eq!(s.repository("c").unwrap().tags.as_ref().unwrap().len(), 3);
    assert_eq!(sizes(s, "empty"), (Some(0), Some(0), None));
    assert_eq!(report.requests.catalog, 3);
}

#[test]
fn a_link_to_another_host_is_refused() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![Reply::catalog(&["a"]).next_link("http://evil.example/v2/_catalog?last=a")],
    );
    let err = scan(&client(&fake.url), None, 1).err().expect("refused");
    assert!(
        err.to_string().contains("points outside the registry"),
        "{err}"
    );
}

#[test]
fn schema1_sizes_come_from_blob_heads_and_nested_indexes_are_followed() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![Reply::catalog(&["old", "multi"])],
    );
    let (l1, l2) = (blob(1, 111), blob(2, 222));
    fake.on(
        "GET",
        "/v2/old/tags/list",
        vec![Reply::tags("old", Some(&["v1"]))],
    );
    // l1 listed twice: counted once, asked once
    fake.on(
        "GET",
        "/v2/old/manifests/v1",
        vec![Reply::schema1(
            "old",
            "v1",
            &[&l1.digest, &l2.digest, &l1.digest],
        )],
    );
    fake.on(
        "HEAD",
        &format!("/v2/old/blobs/{}", l1.digest),
        vec![Reply::new(200).header("Content-Length", "111")],
    );
    fake.on(
        "HEAD",
        &format!("/v2/old/blobs/{}", l2.digest),
        vec![Reply::new(200).header("Content-Length", "222")],
    );

    let child = Reply::oci_manifest(&blob(0, 2), &[blob(3, 30)]);
    let child_digest = child
        .header_value("Docker-Content-Digest")
        .unwrap()
        .to_string();
    fake.on(
        "GET",
        &format!("/v2/multi/manifests/{child_digest}"),
        vec![child],
    );
    let inner = Reply::docker_list(&[("linux/amd64", &child_digest, 100)]);
    let inner_digest = inner
        .header_value("Docker-Content-Digest")
        .unwrap()
        .to_string();
    fake.on(
        "GET",
        &format!("/v2/multi/manifests/{inner_digest}"),
        vec![inner],
    );
    fake.on(
        "GET",
        "/v2/multi/tags/list",
        vec![Reply::tags("multi", Some(&["latest"]))],
    );
    fake.on(
        "GET",
        "/v2/multi/manifests/latest",
        vec![Reply::oci_index(&[("linux/amd64", &inner_digest, 100)])],
    );

    let report = scan(&client(&fake.url), None, 2).expect("scan");
    assert_eq!(sizes(&report.snapshot, "old"), (Some(333), Some(333), None));
    assert_eq!(sizes(&report.snapshot, "multi"), (Some(30), Some(30), None));
    assert_eq!(report.requests.blob_head, 2);
}

#[test]
fn an_index_that_contains_itself_is_an_error_not_a_loop() {
    let fake = FakeRegistry::start();
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["loop"])]);
    fake.on(
        "GET",
        "/v2/loop/tags/list",
        vec![Reply::tags("loop", Some(&["t"]))],
    );
    // an index whose child is an index pointing to a further index... beyond the depth limit
    let d = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
    for n in 0..6u8 {
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"digest": d(n + 1), "size": 1, "mediaType": "application/vnd.oci.image.index.v1+json"}]});
        let reply = Reply::new(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(serde_json::to_vec(&body).unwrap());
        let reference = if n == 0 { "t".to_string() } else { d(n) };
        fake.on(
            "GET",
            &format!("/v2/loop/manifests/{reference}"),
            vec![reply],
        );
    }
    let report = scan(&client(&fake.url), None, 1).expect("scan");
    let error = sizes(&report.snapshot, "loop").2.unwrap();
    assert!(error.contains("nested deeper"), "{error}");
}

#[test]
fn without_a_realm_the_token_comes_from_gitlab_jwt_auth() {
    let fake = FakeRegistry::start();
    // The registry challenges but names no realm: ask {gitlab_base_url}jwt/auth.
    fake.on(
        "GET",
        "/v2/",
        vec![Reply::error(401, "UNAUTHORIZED", "auth")
            .header("WWW-Authenticate", "Bearer service=\"container_registry\"")],
    );
    fake.on(
        "GET",
        "/gitlab/jwt/auth",
        vec![Reply::json(
            200,
            &serde_json::json!({"access_token": "tok-123", "expires_in": 300}),
        )],
    );
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["r"])]);
    image(&fake, "r", "t", &[blob(1, 10)]);
    let report = scan(&client(&fake.url), None, 1).expect("scan");
    assert_eq!(sizes(&report.snapshot, "r").0, Some(10));
    let token_requests: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/gitlab/jwt/auth")
        .collect();
    assert_eq!(token_requests.len(), 2, "one for the catalog, one for r");
    let first = &token_requests[0];
    assert!(
        first.url.contains("service=container_registry"),
        "{}",
        first.url
    );
    assert!(
        first.url.contains("scope=registry%3Acatalog%3A%2A"),
        "{}",
        first.url
    );
    assert_eq!(
        first.header("authorization"),
        Some("Basic cm9vdDpwYXQ="),
        "Basic root:pat"
    );
    let catalog = fake
        .requests()
        .into_iter()
        .find(|r| r.path() == "/v2/_catalog")
        .unwrap();
    assert_eq!(catalog.header("authorization"), Some("Bearer tok-123"));
}

/// The error of repository `name`, which must have one.
fn error_of(s: &Snapshot, name: &str) -> String {
    sizes(s, name)
        .2
        .unwrap_or_else(|| panic!("{name} has no error"))
}

#[test]
fn oversized_answers_fail_their_repository_once_with_words() {
    let fake = FakeRegistry::start();
    let names = [
        "declared",
        "endless-manifest",
        "endless-tags",
        "fine",
        "headers",
    ];
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&names)]);
    image(&fake, "fine", "t", &[blob(1, 10)]);
    for repo in ["declared", "endless-manifest"] {
        fake.on(
            "GET",
            &format!("/v2/{repo}/tags/list"),
            vec![Reply::tags(repo, Some(&["t"]))],
        );
    }
    fake.on(
        "GET",
        "/v2/endless-manifest/manifests/t",
        vec![Reply::endless_manifest()],
    );
    // A manifest that says in advance (Content-Length) that it is over 4 MiB.
    fake.on(
        "GET",
        "/v2/declared/manifests/t",
        vec![Reply::new(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(vec![b' '; (4 << 20) + 1])],
    );
    fake.on(
        "GET",
        "/v2/endless-tags/tags/list",
        vec![Reply::endless_tags("endless-tags")],
    );
    fake.on(
        "GET",
        "/v2/headers/tags/list",
        vec![Reply::huge_headers(1 << 20)],
    );
    // Time enough to read up to the limits on a busy machine: a timeout is not the point.
    let c = client_with(&fake.url, "request_timeout = 60s\n");
    let report = scan(&c, None, 2).expect("the scan as a whole succeeds");
    let s = &report.snapshot;
    assert_eq!(sizes(s, "fine"), (Some(10), Some(10), None));
    for (repo, path, words) in [
        (
            "endless-manifest",
            "/v2/endless-manifest/manifests/t",
            "the manifest is larger than 4 MiB",
        ),
        (
            "declared",
            "/v2/declared/manifests/t",
            "the manifest is larger than 4 MiB",
        ),
        (
            "endless-tags",
            "/v2/endless-tags/tags/list",
            "the tag list page is larger than 8 MiB",
        ),
        (
            "headers",
            "/v2/headers/tags/list",
            "the header section is larger than 64 KiB",
        ),
    ] {
        let error = error_of(s, repo);
        assert!(
            error.contains(path) && error.contains(words) && error.contains("refused"),
            "{repo}: {error}"
        );
        assert_eq!(
            fake.count("GET", path),
            1,
            "{repo}: asked once, not retried"
        );
    }
    assert_eq!(report.requests.retries, 0);
    assert_eq!(report.failed_repositories, 4);
}

#[test]
fn a_catalog_page_that_never_ends_fails_the_scan_with_words() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![Reply::endless(
            "application/json",
            "{\"repositories\":[",
            "\"r\",",
        )],
    );
    let c = client_with(&fake.url, "request_timeout = 60s\n");
    let err = scan(&c, None, 1).err().expect("no catalog");
    assert!(
        matches!(&err, Error::TooLarge { what: "catalog page", limit, .. } if *limit == 8 << 20),
        "{err:?}"
    );
    assert_eq!(fake.count("GET", "/v2/_catalog"), 1);
}

/// A well-formed page of 100001 names: more than any registry sends for `n` (and, of
/// one-letter names, a way to make a parser hold 2 million strings from 8 MiB).
#[test]
fn a_page_with_more_names_than_asked_for_is_refused() {
    let fake = FakeRegistry::start();
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["many", "ok"])]);
    image(&fake, "ok", "t", &[blob(1, 10)]);
    let names: Vec<String> = (0..100_001).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    fake.on(
        "GET",
        "/v2/many/tags/list",
        vec![Reply::tags("many", Some(&names))],
    );
    let report = scan(&client(&fake.url), None, 2).expect("scan");
    let error = error_of(&report.snapshot, "many");
    assert!(
        error.contains("more than 100000 names in one page"),
        "{error}"
    );
    assert_eq!(sizes(&report.snapshot, "ok").0, Some(10));
}

/// Run the service's `--collect-once` with `config` and reap it with `wait4`: exit
/// code, stdout, stderr, and its peak resident memory (`ru_maxrss`, KiB).
fn collect_once_peak(dir: &std::path::Path, config: &str) -> (i32, String, String, u64) {
    let conf = dir.join("collect.conf");
    std::fs::write(&conf, config).unwrap();
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-registry-usage-rest"))
        .args(["--collect-once", "-c", conf.to_str().unwrap()])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start the service");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child it reaps.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: plain syscall on our own child, with pointers to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
    // Reaped by wait4: `child` must not be waited for or killed again.
    drop(child);
    assert!(libc::WIFEXITED(status), "the service died: status {status}");
    (
        libc::WEXITSTATUS(status),
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
        usage.ru_maxrss as u64,
    )
}

/// 64 repositories that each answer without end (a manifest, a tag list) or with a
/// header section of 1 MiB: the service keeps at most one bounded answer per worker, so
/// its peak memory stays within `concurrency` × 8 MiB (the largest limit) of what the
/// same scan of a well-behaved registry takes. (Before the limits, each worker read up
/// to 16 MiB and the service reached 115 MB.)
#[test]
fn a_hostile_registry_costs_each_worker_at_most_one_bounded_answer() {
    const REPOS: usize = 64;
    const CONCURRENCY: u64 = 8;
    let dir = support::TempDir::new("hostile");
    let names: Vec<String> = (0..REPOS).map(|i| format!("r{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let config = |url: &str| {
        format!(
            "[registry]\nregistry_base_url = {url}\ngitlab_base_url = {url}/gitlab/\n\
             concurrency = {CONCURRENCY}\nrequest_timeout = 60s\n"
        )
    };

    let benign = FakeRegistry::start();
    benign.on("GET", "/v2/_catalog", vec![Reply::catalog(&names)]);
    for name in &names {
        image(&benign, name, "t", &[blob(1, 10)]);
    }
    let (code, _, stderr, baseline) = collect_once_peak(dir.path(), &config(&benign.url));
    assert_eq!(code, 0, "{stderr}");

    let hostile = FakeRegistry::start();
    hostile.on("GET", "/v2/_catalog", vec![Reply::catalog(&names)]);
    for (i, name) in names.iter().enumerate() {
        let tags = format!("/v2/{name}/tags/list");
        match i % 3 {
            0 => {
                hostile.on("GET", &tags, vec![Reply::tags(name, Some(&["t"]))]);
                hostile.on(
                    "GET",
                    &format!("/v2/{name}/manifests/t"),
                    vec![Reply::endless_manifest()],
                );
            }
            1 => hostile.on("GET", &tags, vec![Reply::endless_tags(name)]),
            _ => hostile.on("GET", &tags, vec![Reply::huge_headers(1 << 20)]),
        }
    }
    let (code, stdout, stderr, peak) = collect_once_peak(dir.path(), &config(&hostile.url));
    assert_eq!(code, 0, "the scan as a whole succeeds: {stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let items = doc["_embedded"]["items"].as_array().expect("items");
    assert_eq!(items.len(), REPOS);
    for item in items {
        let error = item["error"].as_str().unwrap_or_default();
        assert!(error.contains("is larger than"), "{item}");
    }
    let allowed = CONCURRENCY * 8 * 1024 + 8 * 1024;
    eprintln!("peak RSS: {baseline} KiB well-behaved, {peak} KiB hostile");
    assert!(
        peak <= baseline + allowed,
        "peak {peak} KiB against {baseline} KiB for a well-behaved registry: more than \
         {allowed} KiB above it"
    );
}

/// 200 repositories; the registry dies (every connection reset) while the second scan
/// is under way. The breaker stops the scan after `Policy::breaker` requests in a row
/// got no connection: the previous snapshot stays, and the client made a bounded number
/// of attempts (before the breaker: 4 per request, 180 × 4 here, over minutes).
#[test]
fn a_registry_that_dies_mid_scan_trips_the_breaker_and_the_old_snapshot_stays() {
    const CONCURRENCY: usize = 4;
    let fake = FakeRegistry::start();
    let front = Front::start(fake.port);
    let names: Vec<String> = (0..20)
        .map(|i| format!("ok{i:03}"))
        .chain((0..180).map(|i| format!("stuck{i:03}")))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&names)]);
    for name in &names {
        image(&fake, name, "t", &[blob(1, 10)]);
    }
    let shared = Arc::new(Shared::default());
    let refresh = Refresh {
        client: client(&front.url("http")),
        shared: shared.clone(),
        interval: Duration::from_secs(3600),
        concurrency: CONCURRENCY,
        snapshot_file: None,
        metrics: Arc::new(Metrics::new(
            &["unmatched"],
            Limits {
                namespace_depth: 1,
                top_repositories: 0,
            },
        )),
        history: Arc::new(History::in_memory(400)),
    };
    assert!(scan_once(&refresh), "the first scan succeeds");
    let before = shared.snapshot().unwrap();

    // The second scan: the `stuck` tag lists hang until the registry dies under them.
    for name in names.iter().filter(|n| n.starts_with("stuck")) {
        fake.on("GET", &format!("/v2/{name}/tags/list"), vec![Reply::hang()]);
    }
    fake.clear_requests();
    let succeeded = std::thread::scope(|s| {
        let scan = s.spawn(|| scan_once(&refresh));
        let deadline = Instant::now() + Duration::from_secs(60);
        while fake.count("GET", "/v2/stuck*/tags/list") == 0 {
            assert!(
                Instant::now() < deadline,
                "no worker reached a stuck repository"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        front.kill();
        scan.join().unwrap()
    });
    assert!(!succeeded, "the scan fails as a whole");
    assert_eq!(
        shared.snapshot().unwrap().generation,
        before.generation,
        "the old snapshot is still served"
    );
    match refresh.client.unreachable() {
        Some(Error::Unreachable { failures, last }) => {
            assert!(failures >= Policy::STANDARD.breaker, "{failures}");
            assert!(matches!(*last, Error::Connection { .. }), "{last:?}");
        }
        other => panic!("the breaker did not trip: {other:?}"),
    }
    let attempts = front.accepted_after_kill();
    let bound = (Policy::STANDARD.breaker as usize + CONCURRENCY) * FAST.attempts as usize;
    // Each request that gave up made all its attempts, all but its first (which may have
    // been under way when the registry died) after the death: resets are retried.
    let retried = Policy::STANDARD.breaker as usize * (FAST.attempts as usize - 1);
    assert!(
        attempts >= retried,
        "{attempts} attempts after the registry died: resets were not retried"
    );
    assert!(
        attempts <= bound,
        "{attempts} connection attempts after the registry died (at most {bound})"
    );
}

#[test]
fn an_untrusted_certificate_is_not_retried() {
    support::require_binary("openssl", "openssl");
    let dir = support::TempDir::new("tls-fake");
    slapd::make_certificates(dir.path());
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let fake = FakeRegistry::start_tls(&read("server.pem"), &read("server.key"));
    let front = Front::start(fake.port);
    fake.on("GET", "/v2/_catalog", vec![Reply::catalog(&["r"])]);
    image(&fake, "r", "t", &[blob(1, 10)]);

    let untrusting = client(&front.url("https"));
    let err = scan(&untrusting, None, 1).err().expect("TLS fails");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("[registry] ca_file"), "{err}");
    assert_eq!(front.accepted(), 1, "one connection, no retry");
    assert_eq!(untrusting.stats.counts().retries, 0);

    // The same server with its CA trusted: the failure above was the certificate.
    let ca = dir.path().join("ca.pem");
    let trusting = client_with(
        &front.url("https"),
        &format!("ca_file = {}\n", ca.display()),
    );
    let report = scan(&trusting, None, 1).expect("scan over TLS");
    assert_eq!(sizes(&report.snapshot, "r").0, Some(10));
}

#[test]
fn a_name_that_does_not_resolve_and_a_bad_url_are_not_retried() {
    let unresolvable = client("http://registry.invalid");
    let err = scan(&unresolvable, None, 1).err().expect("no such host");
    assert!(matches!(err, Error::HostNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("does not resolve"), "{err}");
    assert_eq!(unresolvable.stats.counts().retries, 0);

    // A registry naming a token realm that is no URL (a space in the host).
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/",
        vec![Reply::bearer_challenge(
            "http://git lab/jwt/auth",
            "container_registry",
            None,
            None,
        )],
    );
    let c = client(&fake.url);
    let err = scan(&c, None, 1).err().expect("bad realm");
    assert!(matches!(err, Error::BadUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("http://git lab/jwt/auth"), "{err}");
    assert_eq!(c.stats.counts().token, 1, "asked once");
    assert_eq!(c.stats.counts().retries, 0);
}

#[test]
fn a_retry_after_beyond_the_cap_fails_at_once() {
    let fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![Reply::too_many_requests(3600), Reply::catalog(&["r"])],
    );
    let err = scan(&client(&fake.url), None, 1).err().expect("429");
    assert!(
        matches!(err, Error::Status { status: 429, .. }) && err.to_string().contains("3600 s"),
        "{err}"
    );
    assert_eq!(fake.count("GET", "/v2/_catalog"), 1, "not retried");
}
