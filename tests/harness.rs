//! Smoke tests of the registry side of the test harness: a real Distribution registry
//! (no auth, htpasswd, GitLab-style tokens), the pusher, the token issuer, the fake registry.

mod support;

use std::time::{Duration, Instant};
use support::fake_registry::{FakeRegistry, Reply};
use support::push::{media, schema1_manifest_json, Format, PushAuth, Pusher};
use support::registry::{Registry, RegistryAuth};
use support::token_issuer::{self, decode_jwt, TokenField, TokenIssuer};
use support::{basic_auth, http_request, sha256_digest, test_agent, try_http_request_with};

fn get(url: &str, headers: &[(&str, &str)]) -> support::HttpReply {
    http_request("GET", url, headers, None)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(json: &serde_json::Value) -> Vec<String> {
    json.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {json}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn no_auth_registry_push_and_read_back() {
    let t0 = Instant::now();
    let registry = Registry::start(RegistryAuth::None);
    eprintln!("registry up in {:?}", t0.elapsed());
    let pusher = Pusher::new(&registry.url, PushAuth::None);

    let shared: &[u8] = b"shared base layer bytes";
    let oci = pusher.image("group/app", "v1", &[shared, b"oci top layer"], Format::Oci);
    let docker = pusher.image(
        "group/app",
        "v2",
        &[shared, b"docker top layer!"],
        Format::Docker,
    );
    assert_eq!(oci.layers[0], docker.layers[0], "shared layer, same digest");
    assert_eq!(oci.layers[0].size, shared.len() as u64);
    assert_eq!(oci.layers[1].size, 13);
    assert_eq!(docker.layers[1].size, 17);
    assert_eq!(oci.manifest_digest, sha256_digest(&oci.manifest));
    assert_ne!(
        oci.config, docker.config,
        "config blobs are unique per image"
    );

    let amd64 = pusher.image_by_digest("group/multi", &[b"amd64 layer"], Format::Oci);
    let arm64 = pusher.image_by_digest("group/multi", &[b"arm64 layer"], Format::Oci);
    let index_digest = pusher.index(
        "group/multi",
        "latest",
        &[
            ("linux/amd64", &amd64.manifest_digest, amd64.manifest_size),
            (
                "linux/arm64/v8",
                &arm64.manifest_digest,
                arm64.manifest_size,
            ),
        ],
        Format::Oci,
    );

    // Catalog (sorted by Distribution).
    let catalog = get(&registry.v2("_catalog"), &[]);
    assert_eq!(catalog.status, 200, "{}", catalog.text());
    assert_eq!(
        strings(&catalog.json()["repositories"]),
        ["group/app", "group/multi"]
    );

    // Tags (storage order in 2.8.2: compare sorted).
    let tags = get(&registry.v2("group/app/tags/list"), &[]);
    assert_eq!(tags.status, 200);
    assert_eq!(tags.json()["name"], "group/app");
    assert_eq!(sorted(strings(&tags.json()["tags"])), ["v1", "v2"]);
    let multi_tags = get(&registry.v2("group/multi/tags/list"), &[]).json();
    assert_eq!(
        strings(&multi_tags["tags"]),
        ["latest"],
        "children are untagged"
    );

    // Manifests with the right Accept.
    let accept = [("Accept", media::ACCEPT_ALL)];
    let m = get(&registry.v2("group/app/manifests/v1"), &accept);
    assert_eq!(m.status, 200);
    assert_eq!(m.header("content-type"), Some(media::OCI_MANIFEST));
    assert_eq!(
        m.header("docker-content-digest"),
        Some(oci.manifest_digest.as_str())
    );
    assert_eq!(m.body, oci.manifest);
    let json = m.json();
    assert_eq!(json["layers"][0]["size"], shared.len());
    assert_eq!(json["config"]["digest"], oci.config.digest.as_str());

    let m = get(&registry.v2("group/app/manifests/v2"), &accept);
    assert_eq!(m.header("content-type"), Some(media::DOCKER_MANIFEST));
    assert_eq!(m.body, docker.manifest);

    let idx = get(&registry.v2("group/multi/manifests/latest"), &accept);
    assert_eq!(idx.header("content-type"), Some(media::OCI_INDEX));
    assert_eq!(
        idx.header("docker-content-digest"),
        Some(index_digest.as_str())
    );
    let children = idx.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(children.len(), 2);
    assert_eq!(children[1]["platform"]["architecture"], "arm64");
    assert_eq!(children[1]["size"], arm64.manifest_size);
    // A child by digest.
    let child = get(
        &registry.v2(&format!("group/multi/manifests/{}", amd64.manifest_digest)),
        &accept,
    );
    assert_eq!(child.status, 200);
    assert_eq!(child.body, amd64.manifest);

    // HEAD gives the digest without a body.
    assert_eq!(
        pusher.manifest_digest("group/app", "v2").as_deref(),
        Some(docker.manifest_digest.as_str())
    );

    // Blob sizes as pushed.
    let blob = http_request(
        "HEAD",
        &registry.v2(&format!("group/app/blobs/{}", docker.layers[1].digest)),
        &[],
        None,
    );
    assert_eq!(blob.status, 200);
    assert_eq!(blob.header("content-length"), Some("17"));

    // Observations about Distribution 2.8.2 (printed; see the report).
    let no_oci_accept = get(
        &registry.v2("group/app/manifests/v1"),
        &[("Accept", media::DOCKER_MANIFEST)],
    );
    eprintln!(
        "OCI manifest fetched with only the Docker Accept: {} {}",
        no_oci_accept.status,
        no_oci_accept.text()
    );
    assert_eq!(no_oci_accept.status, 404);
    let page = get(&registry.v2("_catalog?n=1"), &[]);
    eprintln!(
        "catalog n=1: {} link={:?}",
        page.text().trim(),
        page.header("link")
    );
    assert_eq!(
        page.header("link"),
        Some("</v2/_catalog?last=group%2Fapp&n=1>; rel=\"next\"")
    );
    let page = get(&registry.v2("group/app/tags/list?n=1"), &[]);
    eprintln!(
        "tags n=1: {} link={:?}",
        page.text().trim(),
        page.header("link")
    );
    let too_big = get(&registry.v2("_catalog?n=1001"), &[]);
    eprintln!(
        "catalog n=1001: {} {}",
        too_big.status,
        too_big.text().trim()
    );
    let schema1 = pusher.try_raw_manifest(
        "group/app",
        "old",
        media::DOCKER_SCHEMA1,
        &schema1_manifest_json("group/app", "old", &[&oci.layers[0].digest]),
    );
    match &schema1 {
        Ok(d) => eprintln!("schema1 push accepted: {d}"),
        Err(r) => eprintln!("schema1 push refused: {} {}", r.status, r.text().trim()),
    }
    let by_tag = http_request("DELETE", &registry.v2("group/app/manifests/v2"), &[], None);
    eprintln!("DELETE by tag: {} {}", by_tag.status, by_tag.text().trim());

    // "Moved" tag: push another manifest under v1; delete v2 by digest.
    let moved = pusher.image("group/app", "v1", &[shared], Format::Oci);
    assert_ne!(moved.manifest_digest, oci.manifest_digest);
    assert_eq!(
        pusher.manifest_digest("group/app", "v1").as_deref(),
        Some(moved.manifest_digest.as_str())
    );
    assert_eq!(pusher.delete_tag("group/app", "v2"), docker.manifest_digest);
    let tags = get(&registry.v2("group/app/tags/list"), &[]).json();
    assert_eq!(strings(&tags["tags"]), ["v1"]);
    // The old v1 manifest is still there by digest (untagged).
    let old = get(
        &registry.v2(&format!("group/app/manifests/{}", oci.manifest_digest)),
        &accept,
    );
    assert_eq!(old.status, 200);
    pusher.delete_manifest("group/app", &moved.manifest_digest);
    let tags = get(&registry.v2("group/app/tags/list"), &[]);
    eprintln!(
        "tags after deleting all: {} {}",
        tags.status,
        tags.text().trim()
    );
    eprintln!("no-auth test took {:?}", t0.elapsed());
}

#[test]
fn token_auth_registry_gitlab_style() {
    let t0 = Instant::now();
    let issuer = TokenIssuer::start();
    eprintln!("issuer up in {:?} kid={}", t0.elapsed(), issuer.kid());
    let registry = Registry::start(issuer.registry_auth());
    eprintln!("token registry up in {:?}", t0.elapsed());

    // The challenge names our realm and service.
    let challenge = get(&registry.v2(""), &[]);
    assert_eq!(challenge.status, 401);
    let www = challenge.header("www-authenticate").unwrap().to_string();
    assert!(www.contains(&issuer.realm()), "{www}");
    assert!(www.contains("service=\"container_registry\""), "{www}");

    let pusher = Pusher::new(&registry.url, PushAuth::token_admin(&issuer));
    let img = pusher.image("team/tool", "1.0", &[b"tool layer"], Format::Docker);
    let pushes = issuer.request_count();
    assert!(pushes >= 1);

    // Admin: catalog.
    let t = Instant::now();
    let admin = issuer.fetch_token(
        token_issuer::ADMIN_USER,
        token_issuer::ADMIN_PASSWORD,
        &["registry:catalog:*"],
    );
    eprintln!("token over HTTP in {:?}", t.elapsed());
    let (header, claims) = decode_jwt(&admin);
    assert_eq!(header["kid"], issuer.kid());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["aud"], "container_registry");
    assert_eq!(claims["iss"], "gitlab-issuer");
    assert_eq!(claims["sub"], "admin");
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "registry", "name": "catalog", "actions": ["*"]}])
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    let catalog = get(
        &registry.v2("_catalog"),
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(catalog.status, 200, "{}", catalog.text());
    assert_eq!(strings(&catalog.json()["repositories"]), ["team/tool"]);

    // Non-admin: catalog scope silently dropped → registry 401 insufficient_scope.
    let dev = issuer.fetch_token(
        token_issuer::USER,
        token_issuer::USER_PASSWORD,
        &["registry:catalog:*", "repository:team/tool:pull,push"],
    );
    let (_, claims) = decode_jwt(&dev);
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "team/tool", "actions": ["pull"]}])
    );
    let denied = get(
        &registry.v2("_catalog"),
        &[("Authorization", &format!("Bearer {dev}"))],
    );
    assert_eq!(denied.status, 401);
    let www = denied.header("www-authenticate").unwrap_or("");
    eprintln!(
        "non-admin catalog: {} {www} {}",
        denied.status,
        denied.text().trim()
    );
    assert!(www.contains("insufficient_scope"), "{www}");
    // …but pulling the repository works.
    let m = get(
        &registry.v2("team/tool/manifests/1.0"),
        &[
            ("Authorization", &format!("Bearer {dev}")),
            ("Accept", media::ACCEPT_ALL),
        ],
    );
    assert_eq!(m.status, 200);
    assert_eq!(m.body, img.manifest);

    // Wrong password → GitLab's 401 body; recorded.
    let bad = get(
        &format!(
            "{}?service=container_registry&scope=registry:catalog:*",
            issuer.realm()
        ),
        &[("Authorization", &basic_auth("admin", "nope"))],
    );
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.json(),
        serde_json::json!({"errors":[{"code":"UNAUTHORIZED","message":"HTTP Basic: Access denied"}]})
    );
    let log = issuer.requests();
    let last = log.last().unwrap();
    assert_eq!(last.user.as_deref(), Some("admin"));
    assert!(!last.authorized);
    assert_eq!(last.scopes, ["registry:catalog:*"]);
    let dev_req = &log[log.len() - 2];
    assert_eq!(
        dev_req.scopes,
        ["registry:catalog:*", "repository:team/tool:pull,push"]
    );
    assert_eq!(dev_req.granted.len(), 1);

    // access_token variant and a short lifetime.
    issuer.set_token_field(TokenField::AccessToken);
    issuer.set_expires_in(60);
    let reply = get(
        &format!(
            "{}?service=container_registry&scope=repository%3Ateam%2Ftool%3Apull",
            issuer.realm()
        ),
        &[(
            "Authorization",
            &basic_auth(token_issuer::ADMIN_USER, token_issuer::ADMIN_PASSWORD),
        )],
    );
    let json = reply.json();
    assert!(json.get("token").is_none());
    assert_eq!(json["expires_in"], 60);
    assert!(json["issued_at"].as_str().unwrap().ends_with('Z'));
    let (_, claims) = decode_jwt(json["access_token"].as_str().unwrap());
    assert_eq!(claims["access"][0]["name"], "team/tool");

    // GitLab down: connections refused.
    let mut issuer = issuer;
    issuer.stop();
    assert!(support::try_http_request("GET", &issuer.realm(), &[], None).is_err());
    eprintln!("token test took {:?}", t0.elapsed());
}

#[test]
fn htpasswd_registry_basic_auth() {
    let registry = Registry::start(RegistryAuth::Htpasswd {
        user: "alice".into(),
        password: "secret".into(),
    });
    let anonymous = get(&registry.v2(""), &[]);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    let wrong = get(
        &registry.v2(""),
        &[("Authorization", &basic_auth("alice", "x"))],
    );
    assert_eq!(wrong.status, 401);

    let pusher = Pusher::new(&registry.url, PushAuth::basic("alice", "secret"));
    pusher.image("solo", "latest", &[b"one", b"two"], Format::Oci);
    let catalog = get(
        &registry.v2("_catalog"),
        &[("Authorization", &basic_auth("alice", "secret"))],
    );
    assert_eq!(catalog.status, 200);
    assert_eq!(strings(&catalog.json()["repositories"]), ["solo"]);
}

#[test]
fn fake_registry_scripts_faults() {
    let mut fake = FakeRegistry::start();
    fake.on(
        "GET",
        "/v2/_catalog",
        vec![
            Reply::error(500, "UNKNOWN", "boom"),
            Reply::catalog(&["a", "b"]).next_link("/v2/_catalog?last=b&n=2"),
        ],
    );
    fake.on("GET", "/v2/_catalog?last=b*", vec![Reply::catalog(&["c"])]);
    let url = format!("{}/v2/_catalog", fake.url);
    let statuses: Vec<u16> = (0..3).map(|_| get(&url, &[]).status).collect();
    assert_eq!(statuses, [500, 200, 200], "the last reply repeats");
    let page = get(&url, &[]);
    assert_eq!(
        page.header("link"),
        Some("</v2/_catalog?last=b&n=2>; rel=\"next\"")
    );
    assert_eq!(
        page.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let next = get(&format!("{}/v2/_catalog?last=b&n=2", fake.url), &[]);
    assert_eq!(strings(&next.json()["repositories"]), ["c"]);
    assert_eq!(fake.count("GET", "/v2/_catalog"), 5);
    assert_eq!(fake.count("GET", "/v2/_catalog?last=*"), 1);

    // Unknown route → Distribution-like 404.
    let unknown = get(&format!("{}/v2/nope/tags/list", fake.url), &[]);
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["errors"][0]["code"], "NAME_UNKNOWN");

    // Manifests: HEAD falls back to the GET script, with digest and length.
    let config = support::push::BlobRef::of(b"{}");
    let layer = support::push::BlobRef::of(b"layer");
    let reply = Reply::docker_manifest(&config, std::slice::from_ref(&layer));
    let digest = sha256_digest(&reply.body);
    fake.on("GET", "/v2/x/manifests/*", vec![reply.clone()]);
    let head = http_request("HEAD", &format!("{}/v2/x/manifests/t", fake.url), &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(head.header("content-type"), Some(media::DOCKER_MANIFEST));
    assert_eq!(
        head.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );

    // 429 with Retry-After; a hang does not block other requests; headers are recorded.
    fake.on(
        "GET",
        "/v2/busy/tags/list",
        vec![Reply::too_many_requests(7)],
    );
    let busy = get(&format!("{}/v2/busy/tags/list", fake.url), &[]);
    assert_eq!((busy.status, busy.header("retry-after")), (429, Some("7")));
    fake.on("GET", "/v2/slow/tags/list", vec![Reply::hang()]);
    let short = test_agent(Duration::from_millis(300));
    let slow_url = format!("{}/v2/slow/tags/list", fake.url);
    let hung = std::thread::spawn(move || {
        try_http_request_with(&short, "GET", &slow_url, &[], None).is_err()
    });
    // Once the fake has the request, its handler hangs until the fake stops (whether or not
    // the client gave up): a request answered now was not held up by it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.count("GET", "/v2/slow/tags/list") == 0 {
        assert!(
            Instant::now() < deadline,
            "the hanging request never arrived"
        );
        std::thread::yield_now();
    }
    let quick = get(
        &format!("{}/v2/busy/tags/list", fake.url),
        &[("X-Probe", "yes")],
    );
    assert_eq!(quick.status, 429, "answered beside a hanging request");
    assert!(
        hung.join().unwrap(),
        "the hang should outlast the client timeout"
    );
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.header("x-probe") == Some("yes")));

    // Down: 503 for everything; stop: connection refused.
    fake.set_down(true);
    assert_eq!(get(&url, &[]).status, 503);
    fake.set_down(false);
    assert_eq!(get(&url, &[]).status, 200);
    fake.stop();
    assert!(support::try_http_request("GET", &url, &[], None).is_err());
}
