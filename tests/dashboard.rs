//! The dashboard, in a real browser (Debian's chromium driven by playwright-core from
//! tests/browser) against the real service binary under a `server_prefix`, in front of a
//! real registry holding images of known sizes that share layers across two groups.
//! Plus the HTTP side of `/`, the assets and the browser's 401, without a browser.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::push::{Format, PushAuth, Pusher};
use support::registry::{Registry, RegistryAuth};
use support::service::{start_service, Service};
use support::{http_request, TempDir};

const USER: &str = "admin";
const PASSWORD: &str = "s3cret pass";
const PREFIX: &str = "/registry-usage";
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Two groups sharing a base layer, a nested namespace, two tags on one manifest, a
/// repository outside every namespace, and one whose last scan failed. By exclusive bytes `group-a` (5000 + 7000 + 1000)
/// is far bigger than `group-b` (2000); the base layer (3000) belongs to neither.
fn registry_with_images() -> Registry {
    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let base = vec![b'b'; 3000];
    // An old build date: the cleanup preview's policy (keep_n=1, older_than=90d) deletes it.
    pusher.image_created(
        "group-a/app",
        Some("v1"),
        &[&base, &[1u8; 5000]],
        Format::Oci,
        "2020-01-01T00:00:00Z",
    );
    let v2 = pusher.image("group-a/app", "v2", &[&base, &[2u8; 7000]], Format::Oci);
    pusher.raw_manifest("group-a/app", "latest", v2.media_type, &v2.manifest);
    pusher.image(
        "group-a/sub/tool",
        "1.0",
        &[&base, &[3u8; 1000]],
        Format::Docker,
    );
    pusher.image("group-b/web", "v1", &[&base, &[4u8; 2000]], Format::Oci);
    pusher.image("solo", "v1", &[&[5u8; 400]], Format::Docker);
    // A repository whose scan fails: its manifest's bytes are gone from the storage, so
    // the registry lists the tag but cannot serve it.
    let broken = pusher.image("group-b/broken", "v1", &[&[6u8; 300]], Format::Oci);
    let hex = broken.manifest_digest.trim_start_matches("sha256:");
    let data = registry
        .data_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    std::fs::remove_file(&data).unwrap_or_else(|e| panic!("remove {}: {e}", data.display()));
    registry
}

fn service(dir: &TempDir, registry: &Registry) -> Service {
    let service = start_service(dir.path(), &registry.url, (USER, PASSWORD), PREFIX);
    service.wait_for_data();
    service
}

#[test]
fn root_serves_the_dashboard_to_browsers_and_the_api_root_to_scripts() {
    let registry = registry_with_images();
    let dir = TempDir::new("dashboard-http");
    let service = service(&dir, &registry);
    let root = format!("{}/", service.url);

    let page = http_request("GET", &root, &[("Accept", BROWSER)], None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    for part in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let html = page.text();
    // Both assets by hashed name under the prefix, each cached for a year.
    let assets: Vec<&str> = html
        .split(&format!("{PREFIX}/dashboard/"))
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(assets.len(), 2, "{html}");
    for file in assets {
        let url = format!("{}/dashboard/{file}", service.url);
        let asset = http_request("GET", &url, &[], None);
        assert_eq!(asset.status, 200, "{url}");
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
        let etag = asset.header("etag").unwrap().to_string();
        assert!(file.contains(etag.trim_matches('"')), "{file} {etag}");
        let again = http_request("GET", &url, &[("If-None-Match", &etag)], None);
        assert_eq!(again.status, 304);
    }
    let stale = http_request(
        "GET",
        &format!("{}/dashboard/app.0123456789abcdef.js", service.url),
        &[],
        None,
    );
    assert_eq!(stale.status, 404);

    // The fixture's broken repository did fail (the browser test shows its error).
    let token = service.token(USER, PASSWORD);
    let bearer = format!("Bearer {token}");
    let group_b = http_request(
        "GET",
        &format!("{}/namespaces/group-b", service.url),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(
        group_b.json()["failed_repository_count"],
        1,
        "{}",
        group_b.text()
    );

    // Scripts get the API root, without a token: it lists links only.
    let api = http_request("GET", &root, &[("Accept", "*/*")], None);
    assert_eq!(api.status, 200);
    assert_eq!(api.header("content-type"), Some("application/hal+json"));
    let doc = api.json();
    for (rel, path) in [
        ("repositories", "/repositories"),
        ("namespaces", "/namespaces"),
        ("history", "/history"),
        ("health", "/health"),
        ("openapi", "/openapi.json"),
    ] {
        assert_eq!(
            doc["_links"][rel]["href"],
            format!("{PREFIX}{path}"),
            "{doc}"
        );
    }
    assert_eq!(api.header("vary"), Some("Accept"));

    // A browser on a data route without a token learns where to log in, in HTML; a
    // script still gets the JSON message.
    let data = format!("{}/repositories", service.url);
    let browser = http_request("GET", &data, &[("Accept", BROWSER)], None);
    assert_eq!(browser.status, 401);
    assert_eq!(
        browser.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(browser.header("www-authenticate").is_some());
    assert!(
        browser.text().contains(&format!("<a href=\"{PREFIX}/\">")),
        "{}",
        browser.text()
    );
    let script = http_request("GET", &data, &[], None);
    assert_eq!(script.status, 401);
    assert_eq!(script.json()["msg"], "Missing Authorization Header");
}

/// Node, the installed `playwright-core` and chromium, or a panic saying how to install them.
fn require_browser_tools() -> PathBuf {
    let browser_dir = manifest_dir().join("tests/browser");
    let how =
        "install them with:\n    apt-get install -y chromium   (and Node.js 20 or later)\n    \
               npm ci --prefix tests/browser\n(.ci/run does both on a fresh machine)";
    if !Path::new("/usr/bin/chromium").is_file() {
        panic!("/usr/bin/chromium was not found. The dashboard test drives it; {how}");
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        panic!("tests/browser/node_modules/playwright-core is missing; {how}");
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!("`node` was not found; {how}"),
    }
    browser_dir.join("dashboard.mjs")
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let script = require_browser_tools();
    let registry = registry_with_images();
    let dir = TempDir::new("dashboard-browser");
    let service = service(&dir, &registry);
    let screenshots = manifest_dir().join("target/dashboard-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .env("DASHBOARD_URL", format!("{}/", service.url))
        .env("DASHBOARD_USER", USER)
        .env("DASHBOARD_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &screenshots)
        .env("BROWSER_PROFILE", dir.path().join("chromium-profile"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\nservice log:\n{}",
        support::file_tail(&dir.path().join("service.log"), 4000)
    );
    assert!(stdout.contains("dashboard: all checks passed"), "{stdout}");
}
