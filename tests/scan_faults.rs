//! Faults a real registry cannot produce on demand, from the scripted fake: 5xx then
//! success, 429 with Retry-After, a hanging server, garbage, a 404 tag list, a registry
//! down for a whole scan, pagination quirks, schema 1 and nested indexes.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::history::{History, Kind};
use gitlab_registry_usage_rest::metrics::{Limits, Metrics};
use gitlab_registry_usage_rest::refresh::{scan_once, Refresh};
use gitlab_registry_usage_rest::registry::Client;
use gitlab_registry_usage_rest::scan::scan;
use gitlab_registry_usage_rest::snapshot::{Shared, Snapshot};
use support::fake_registry::{FakeRegistry, Reply};
use support::push::BlobRef;

fn client_with(url: &str, extra: &str) -> Client {
    let text = format!(
        "[registry]\nregistry_base_url = {url}\ngitlab_base_url = {url}/gitlab/\nusername = root\n\
         access_token = pat\nconcurrency = 3\nrequest_timeout = 2s\n{extra}"
    );
    let (config, _) = Config::parse(&text).unwrap();
    Client::new(&config.registry).unwrap()
}

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
    let c = client_with(&fake.url, "request_timeout = 200ms\n");
    let report = scan(&c, None, 2).expect("scan as a whole succeeds");
    assert_eq!(sizes(&report.snapshot, "fine"), (Some(10), Some(10), None));
    let (size, disk, error) = sizes(&report.snapshot, "slow");
    assert_eq!((size, disk), (None, None));
    let error = error.expect("slow carries an error");
    assert!(
        error.contains("/v2/slow/manifests/t") && error.contains("no answer"),
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
