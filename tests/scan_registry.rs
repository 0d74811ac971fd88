//! Scans against a real Distribution registry (Debian `docker-registry`): GitLab-style
//! token auth through a test token issuer, Basic auth, and no auth. Every number is
//! checked against a hand computation from the exact byte lengths pushed.

mod support;

use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::registry::{Client, Error};
use gitlab_registry_usage_rest::scan::{scan, Report};
use gitlab_registry_usage_rest::snapshot::Snapshot;
use support::push::{Format, PushAuth, Pusher};
use support::registry::{Registry, RegistryAuth};
use support::synthetic::{Synthetic, Totals};
use support::token_issuer::{TokenIssuer, ADMIN_PASSWORD, ADMIN_USER, USER, USER_PASSWORD};

fn client(registry: &str, user: &str, password: &str, page_size: u32) -> Client {
    let text = format!(
        "[registry]\nregistry_base_url = {registry}\ngitlab_base_url = http://127.0.0.1:9/\n\
         username = {user}\naccess_token = {password}\npage_size = {page_size}\n\
         request_timeout = 10s\nconcurrency = 4\n"
    );
    let (config, _) = Config::parse(&text).unwrap();
    Client::new(&config.registry).unwrap()
}

/// (size, disk_size) of a repository, and (name, size, disk_size) of each of its tags.
type Sizes = (Option<u64>, Option<u64>, Vec<(String, u64, u64)>);

fn repo(s: &Snapshot, name: &str) -> Sizes {
    let r = s
        .repository(name)
        .unwrap_or_else(|| panic!("{name} not in snapshot"));
    let tags = r
        .tags
        .as_ref()
        .map(|t| {
            t.iter()
                .map(|t| (t.name.to_string(), t.size, t.disk_size))
                .collect()
        })
        .unwrap_or_default();
    (r.size, r.disk_size, tags)
}

fn t(name: &str, size: u64, disk: u64) -> (String, u64, u64) {
    (name.to_string(), size, disk)
}

fn bytes(byte: u8, len: usize) -> Vec<u8> {
    vec![byte; len]
}

#[test]
fn token_auth_registry_numbers_digest_cache_and_changes() {
    let issuer = TokenIssuer::start();
    let registry = Registry::start(issuer.registry_auth());
    let pusher = Pusher::new(&registry.url, PushAuth::token_admin(&issuer));

    let base = bytes(b'B', 1000);
    let (a1, a2, b1, m1, m2) = (
        bytes(1, 100),
        bytes(2, 200),
        bytes(3, 50),
        bytes(4, 30),
        bytes(5, 40),
    );
    pusher.image("a/app", "v1", &[&base, &a1], Format::Oci);
    pusher.image("a/app", "v2", &[&base, &a2], Format::Oci);
    let tool = pusher.image("b/tool", "latest", &[&base, &b1], Format::Docker);
    let amd64 = pusher.image_by_digest("multi/arch", &[&base, &m1], Format::Oci);
    let arm64 = pusher.image_by_digest("multi/arch", &[&m2], Format::Oci);
    pusher.index(
        "multi/arch",
        "latest",
        &[
            ("linux/amd64", &amd64.manifest_digest, amd64.manifest_size),
            ("linux/arm64", &arm64.manifest_digest, arm64.manifest_size),
        ],
        Format::Oci,
    );

    // page_size 2: the catalog of 3 repositories comes in two pages.
    let c = client(&registry.url, ADMIN_USER, ADMIN_PASSWORD, 2);
    issuer.clear_requests();
    let first: Report = scan(&c, None, 4).expect("first scan");
    let s = &first.snapshot;
    // a/app: v1 walks first and owns base; v2 has as many layers, so it does not take over.
    assert_eq!(
        repo(s, "a/app"),
        (
            Some(2300),
            Some(1300),
            vec![t("v1", 1100, 1100), t("v2", 1200, 200)]
        )
    );
    assert_eq!(
        repo(s, "b/tool"),
        (Some(1050), Some(50), vec![t("latest", 1050, 50)])
    );
    // the index counts the union of its children's layers: base + m1 + m2
    assert_eq!(
        repo(s, "multi/arch"),
        (Some(1070), Some(70), vec![t("latest", 1070, 70)])
    );
    assert_eq!(s.totals.repository_count, 3);
    assert_eq!(s.totals.tag_count, 4);
    assert_eq!(s.totals.size, 2300 + 1050 + 1070);
    assert_eq!(s.totals.disk_size, 1000 + 100 + 200 + 50 + 30 + 40);
    assert_eq!(first.failed_repositories, 0);
    assert_eq!(first.requests.catalog, 2, "two catalog pages");
    // one token for the catalog and one per repository, each asked for pull only
    let mut scopes: Vec<String> = issuer
        .requests()
        .iter()
        .flat_map(|r| r.scopes.clone())
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            "registry:catalog:*",
            "repository:a/app:pull",
            "repository:b/tool:pull",
            "repository:multi/arch:pull"
        ],
        "one token per scope, pull only"
    );

    // Unchanged registry: HEAD per tag, no manifest GET, no new token.
    issuer.clear_requests();
    let second = scan(&c, Some(s), 4).expect("second scan");
    assert_eq!(second.requests.manifest_get, 0, "{:?}", second.requests);
    assert_eq!(second.requests.manifest_head, 4);
    assert_eq!(issuer.request_count(), 0, "cached tokens are reused");
    assert_eq!(second.snapshot.repositories, s.repositories);

    // Move a/app:v2 to a new image and delete b/tool:latest.
    let a3 = bytes(6, 300);
    pusher.image("a/app", "v2", &[&base, &a3], Format::Oci);
    pusher.delete_manifest("b/tool", &tool.manifest_digest);
    let third = scan(&c, Some(&second.snapshot), 4).expect("third scan");
    let s3 = &third.snapshot;
    assert_eq!(
        third.requests.manifest_get, 1,
        "only the moved tag is fetched: {:?}",
        third.requests
    );
    assert_eq!(
        repo(s3, "a/app"),
        (
            Some(2400),
            Some(1400),
            vec![t("v1", 1100, 1100), t("v2", 1300, 300)]
        )
    );
    assert_eq!(repo(s3, "b/tool"), (Some(0), Some(0), vec![]));
    assert_eq!(s3.totals.tag_count, 3);
    assert_eq!(s3.totals.disk_size, 1000 + 100 + 300 + 30 + 40);
}

#[test]
fn a_non_admin_is_told_the_catalog_was_not_granted() {
    let issuer = TokenIssuer::start();
    let registry = Registry::start(issuer.registry_auth());
    let c = client(&registry.url, USER, USER_PASSWORD, 100);
    let err = scan(&c, None, 2).err().expect("scan must fail");
    assert!(matches!(err, Error::Denied { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("is not a GitLab admin: registry:catalog:* was not granted"),
        "{err}"
    );

    let wrong = client(&registry.url, ADMIN_USER, "wrong-token", 100);
    let err = scan(&wrong, None, 2).err().expect("scan must fail");
    assert!(
        err.to_string()
            .contains("GitLab refused [registry] username \"admin\""),
        "{err}"
    );
    assert!(
        !err.to_string().contains("wrong-token"),
        "the access token is never shown: {err}"
    );
}

#[test]
fn basic_auth_registry() {
    let registry = Registry::start(RegistryAuth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let pusher = Pusher::new(&registry.url, PushAuth::basic("alice", "s3cret"));
    pusher.image(
        "team/svc",
        "1.0",
        &[&bytes(7, 500), &bytes(8, 25)],
        Format::Docker,
    );
    pusher.image("team/svc", "1.1", &[&bytes(7, 500)], Format::Docker);
    let report = scan(&client(&registry.url, "alice", "s3cret", 1000), None, 2).expect("scan");
    // 1.1 has strictly fewer layers than 1.0, so it takes the shared layer over.
    assert_eq!(
        repo(&report.snapshot, "team/svc"),
        (
            Some(1025),
            Some(525),
            vec![t("1.0", 525, 25), t("1.1", 500, 500)]
        )
    );
    let err = scan(&client(&registry.url, "alice", "wrong", 1000), None, 2)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("HTTP 401"), "{err}");
}

#[test]
fn no_auth_registry_with_docker_manifest_list() {
    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let x = pusher.image_by_digest(
        "lib/multi",
        &[&bytes(9, 10), &bytes(10, 20)],
        Format::Docker,
    );
    let y = pusher.image_by_digest(
        "lib/multi",
        &[&bytes(9, 10), &bytes(11, 40)],
        Format::Docker,
    );
    pusher.index(
        "lib/multi",
        "stable",
        &[
            ("linux/amd64", &x.manifest_digest, x.manifest_size),
            ("linux/arm64", &y.manifest_digest, y.manifest_size),
        ],
        Format::Docker,
    );
    pusher.image("lib/single", "1", &[&bytes(10, 20)], Format::Oci);
    let report = scan(&client(&registry.url, "", "", 1000), None, 2).expect("scan");
    let s = &report.snapshot;
    assert_eq!(
        repo(s, "lib/multi"),
        (Some(70), Some(50), vec![t("stable", 70, 50)])
    );
    // lib/single:1 has 1 layer, fewer than lib/multi:stable's 3, so it takes the shared one.
    assert_eq!(
        repo(s, "lib/single"),
        (Some(20), Some(20), vec![t("1", 20, 20)])
    );
    assert_eq!(s.totals.disk_size, 70);
}

/// What deleting something would free, on a real registry: two groups sharing layers,
/// two tags on one manifest, a multi-arch index whose children share a layer with both
/// groups. Every number is worked out from the byte lengths pushed.
#[test]
fn deduplicated_and_exclusive_bytes_across_two_groups() {
    use gitlab_registry_usage_rest::usage::Usage;

    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let (base, w1, w2, lib, api, wk, m1, m2) = (
        bytes(b'B', 1000),
        bytes(1, 100),
        bytes(2, 200),
        bytes(3, 300),
        bytes(4, 50),
        bytes(5, 70),
        bytes(6, 30),
        bytes(7, 40),
    );
    pusher.image("alpha/web", "1", &[&base, &w1], Format::Oci);
    let two = pusher.image("alpha/web", "2", &[&base, &w2], Format::Oci);
    pusher.raw_manifest("alpha/web", "latest", two.media_type, &two.manifest);
    pusher.image("alpha/sub/api", "1", &[&lib, &api], Format::Docker);
    pusher.image("beta/worker", "1", &[&base, &lib, &wk], Format::Oci);
    let amd64 = pusher.image_by_digest("beta/multi", &[&lib, &m1], Format::Oci);
    let arm64 = pusher.image_by_digest("beta/multi", &[&m2], Format::Oci);
    pusher.index(
        "beta/multi",
        "latest",
        &[
            ("linux/amd64", &amd64.manifest_digest, amd64.manifest_size),
            ("linux/arm64", &arm64.manifest_digest, arm64.manifest_size),
        ],
        Format::Oci,
    );
    let s = scan(&client(&registry.url, "", "", 1000), None, 4)
        .expect("scan")
        .snapshot;
    let u = Usage::of(&s);
    let index = |name: &str| {
        s.repositories
            .iter()
            .position(|r| &*r.name == name)
            .unwrap()
    };
    let tag_exclusive = |repo: &str, tag: &str| {
        let r = index(repo);
        let t = s.repositories[r].tag(tag).unwrap();
        u.tag_exclusive_size(r, s.repositories[r].index_of(t).unwrap())
    };
    // Tags per blob: base 4 (web 1, 2, latest; worker), w2 2 (2 and latest), lib 3.
    assert_eq!(tag_exclusive("alpha/web", "1"), 100);
    assert_eq!(
        tag_exclusive("alpha/web", "2"),
        0,
        "latest is the same manifest"
    );
    assert_eq!(tag_exclusive("alpha/web", "latest"), 0);
    assert_eq!(tag_exclusive("alpha/sub/api", "1"), 50);
    assert_eq!(tag_exclusive("beta/worker", "1"), 70);
    assert_eq!(tag_exclusive("beta/multi", "latest"), 30 + 40);
    let web = s.repository("alpha/web").unwrap();
    assert_eq!(
        web.tag("latest")
            .unwrap()
            .digest
            .as_ref()
            .unwrap()
            .to_string(),
        two.manifest_digest
    );
    let numbers = |name: &str| {
        let r = u.repository(index(name));
        (r.deduplicated_size, r.exclusive_size)
    };
    assert_eq!(numbers("alpha/web"), (1000 + 100 + 200, 100 + 200));
    assert_eq!(numbers("alpha/sub/api"), (350, 50));
    assert_eq!(numbers("beta/worker"), (1000 + 300 + 70, 70));
    assert_eq!(numbers("beta/multi"), (300 + 30 + 40, 70));
    let ns = |name: &str| {
        let n = &u.namespaces()[u.namespace(name).unwrap() as usize];
        [
            n.size,
            n.disk_size,
            n.deduplicated_size,
            n.exclusive_size,
            n.repository_count,
            n.tag_count,
        ]
    };
    // alpha: sizes 1100 + 1200 + 1200 + 350; owners: api owns lib (2 layers, walked
    // first), web:1 owns base; distinct base w1 w2 lib api; only alpha has w1 w2 api.
    assert_eq!(ns("alpha"), [3850, 1650, 1650, 350, 2, 4]);
    assert_eq!(ns("alpha/sub"), [350, 350, 350, 50, 1, 1]);
    // beta: sizes 1370 + 370; distinct base lib wk m1 m2; base and lib are alpha's too.
    assert_eq!(ns("beta"), [1740, 140, 1440, 140, 2, 2]);
    assert_eq!(u.deduplicated_size(), 1790);
    assert_eq!(s.totals.disk_size, 1790);
}

/// Tags' dates come from their config blobs (an index: its newest child's), each config
/// is fetched once, an unchanged re-scan fetches none, and `tag_dates = false` none at all.
#[test]
fn tag_dates_from_config_blobs_fetched_once() {
    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let (l1, l2, l3) = (bytes(1, 10), bytes(2, 20), bytes(3, 30));
    let v1 = pusher.image_created(
        "d/app",
        Some("v1"),
        &[&l1],
        Format::Oci,
        "2020-01-01T00:00:00Z",
    );
    pusher.raw_manifest(
        "d/app",
        "v1-again",
        Format::Oci.manifest_type(),
        &v1.manifest,
    );
    pusher.image_created(
        "d/app",
        Some("v2"),
        &[&l2],
        Format::Docker,
        "2021-06-01T12:00:00.5+02:00",
    );
    pusher.image_created(
        "d/app",
        Some("jib"),
        &[&l3],
        Format::Oci,
        "1970-01-01T00:00:01Z",
    );
    pusher.image_created(
        "d/app",
        Some("bad"),
        &[&l3, &l1],
        Format::Oci,
        "last tuesday",
    );
    pusher.image("d/app", "nodate", &[&l2, &l3], Format::Oci);
    let old = pusher.image_created("d/multi", None, &[&l1], Format::Oci, "2019-01-01T00:00:00Z");
    let new = pusher.image_created("d/multi", None, &[&l2], Format::Oci, "2022-01-01T00:00:00Z");
    pusher.index(
        "d/multi",
        "latest",
        &[
            ("linux/amd64", &old.manifest_digest, old.manifest_size),
            ("linux/arm64", &new.manifest_digest, new.manifest_size),
        ],
        Format::Oci,
    );
    let created =
        |s: &Snapshot, repo: &str, tag: &str| s.repository(repo).unwrap().tag(tag).unwrap().created;
    let c = client(&registry.url, "", "", 100);
    // One worker: two workers meeting one new manifest at the same moment both read
    // it (and its config), as for any manifest; one worker makes the count exact.
    let first = scan(&c, None, 1).expect("first scan");
    let s = &first.snapshot;
    assert!(s.dates);
    assert_eq!(created(s, "d/app", "v1"), Some(1_577_836_800));
    assert_eq!(created(s, "d/app", "v1-again"), Some(1_577_836_800));
    assert_eq!(created(s, "d/app", "v2"), Some(1_622_541_600));
    assert_eq!(created(s, "d/app", "jib"), Some(1));
    assert_eq!(created(s, "d/app", "bad"), None);
    assert_eq!(created(s, "d/app", "nodate"), None);
    assert_eq!(created(s, "d/multi", "latest"), Some(1_640_995_200));
    // v1, v2, jib, bad, nodate and the two children: one GET per distinct config.
    assert_eq!(first.requests.blob_get, 7);

    let again = scan(&c, Some(s), 4).expect("second scan");
    assert_eq!(again.requests.blob_get, 0);
    assert_eq!(
        created(&again.snapshot, "d/multi", "latest"),
        Some(1_640_995_200)
    );
    assert_eq!(created(&again.snapshot, "d/app", "v2"), Some(1_622_541_600));

    let text = format!(
        "[registry]\nregistry_base_url = {}\ngitlab_base_url = http://127.0.0.1:9/\ntag_dates = false\n",
        registry.url
    );
    let (config, _) = Config::parse(&text).unwrap();
    let off = Client::new(&config.registry).unwrap();
    let undated = scan(&off, None, 4).expect("scan without dates");
    assert_eq!(undated.requests.blob_get, 0);
    assert!(!undated.snapshot.dates);
    assert_eq!(created(&undated.snapshot, "d/app", "v1"), None);
    // A snapshot without dates is not reused for them: the manifests are read again.
    let dated = scan(&c, Some(&undated.snapshot), 4).expect("scan with dates again");
    assert_eq!(created(&dated.snapshot, "d/app", "v1"), Some(1_577_836_800));
}

/// A scan of more repositories than `scan` keeps registry tokens for (1,024) drops each
/// repository's token once it has read the repository: a registry of 100k repositories
/// held 100k tokens (about 1 KB each from GitLab) until its scan ended. The re-scan asks
/// for them again, one per repository, and finds the same snapshot.
#[test]
fn a_large_registry_is_scanned_without_keeping_a_token_per_repository() {
    let registry = Synthetic::start(&["--repositories", "1100", "--tags", "3", "--threads", "4"]);
    let c = client(&registry.url, "demo", "demo-token", 1000);
    let first = scan(&c, None, 4).expect("first scan");
    let s = &first.snapshot;
    assert_eq!(Totals::of(s), registry.expected());
    assert_eq!(
        first.requests.token,
        1 + 1100,
        "the catalog's and one per repository"
    );
    assert_eq!(c.cached_tokens(), 1, "only the catalog's is kept");
    let second = scan(&c, Some(s), 4).expect("re-scan");
    assert_eq!(second.requests.token, 1100, "{:?}", second.requests);
    assert_eq!(second.requests.manifest_get, 0, "{:?}", second.requests);
    assert_eq!(second.snapshot.repositories, s.repositories);
    assert_eq!(c.cached_tokens(), 1);
}
