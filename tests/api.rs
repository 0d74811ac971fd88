//! The REST API end to end: a real server on a free port (`http::start` with port 0),
//! a hand-built snapshot, htpasswd logins (no LDAP needed), and a real HTTP client.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gitlab_registry_usage_rest::auth::jwt::Tokens;
use gitlab_registry_usage_rest::auth::Authenticator;
use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::http::{self, App, Running};
use gitlab_registry_usage_rest::snapshot::{Builder, LayerRef, ScannedTag, Shared, Snapshot};
use serde_json::{json, Value};
use support::net::read_until_closed;
use support::{base64_encode, basic_auth, http_request, HttpReply, TempDir};

const SECRET: &str = "Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA-api-tests";
const USER: &str = "alice";
const PASSWORD: &str = "s3cret pw:ä";
const TIMESTAMP: f64 = 1_700_000_000.25;
/// A repository name a hostile registry user could choose.
const EVIL: &str = "evil/<script>alert(1)</script>";

/// Names: `group/app` (shared layers), `a/tags` (ends in "tags") next to `a`, a
/// repository whose scan failed, an empty one, and a name full of HTML.
fn snapshot(timestamp: f64) -> Snapshot {
    let layer = |d: &str, s| LayerRef {
        digest: d.into(),
        size: s,
    };
    let tag = |name: &str, layers: Vec<LayerRef>| ScannedTag {
        name: name.into(),
        digest: None,
        layers: layers.into(),
    };
    let mut b = Builder::default();
    b.add_repository(
        "group/app",
        Some(vec![
            tag(
                "v1",
                vec![layer("sha256:base", 1000), layer("sha256:one", 10)],
            ),
            tag(
                "v2",
                vec![layer("sha256:base", 1000), layer("sha256:two", 20)],
            ),
            tag(
                "latest",
                vec![layer("sha256:base", 1000), layer("sha256:two", 20)],
            ),
        ]),
        None,
    );
    b.add_repository(
        "a/tags",
        Some(vec![tag("x", vec![layer("sha256:base", 1000)])]),
        None,
    );
    b.add_repository("a", Some(vec![tag("y", vec![layer("sha256:ay", 5)])]), None);
    b.add_repository("broken", None, Some("tag list: HTTP 500".into()));
    b.add_repository("empty", Some(vec![]), None);
    b.add_repository(
        EVIL,
        Some(vec![tag("v1", vec![layer("sha256:evil", 7)])]),
        None,
    );
    b.finish(timestamp)
}

struct Api {
    running: Option<Running>,
    /// `http://127.0.0.1:<port><prefix>`
    url: String,
    shared: Arc<Shared>,
    token: String,
    _dir: TempDir,
}

struct Options<'a> {
    prefix: &'a str,
    cors: Option<&'a str>,
    snapshot: bool,
    /// Also a user `slow` whose bcrypt cost makes a login take a noticeable time.
    slow_user: bool,
    /// More `[general]` lines.
    general: &'a str,
}

const DEFAULTS: Options<'static> = Options {
    prefix: "/",
    cors: None,
    snapshot: true,
    slow_user: false,
    general: "",
};

fn config_text(htpasswd: &std::path::Path, o: &Options<'_>) -> String {
    let mut text = format!(
        "[general]\nsocket_host = 127.0.0.1\nsocket_port = 0\nserver_prefix = {}\nworker_threads = 2\n\
         auth_backend = htpasswd\n[htpasswd]\nfile = {}\n[jwt]\nsecret_key = {SECRET}\nauth_token_expires = 1 hour\n",
        o.prefix,
        htpasswd.display()
    );
    if let Some(cors) = o.cors {
        text.push_str(&format!("[general]\ncors_origin = {cors}\n"));
    }
    text.push_str(&format!("[general]\n{}\n", o.general));
    text
}

fn start(o: Options<'_>) -> Api {
    let dir = TempDir::new("api");
    let htpasswd = dir.path().join("htpasswd");
    // Cost 4: the smallest bcrypt allows, to keep the tests fast.
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let mut users = format!("{USER}:{hash}\n");
    if o.slow_user {
        users.push_str(&format!("slow:{}\n", bcrypt::hash(PASSWORD, 11).unwrap()));
    }
    std::fs::write(&htpasswd, users).unwrap();
    let (config, warnings) = Config::parse(&config_text(&htpasswd, &o)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let config = Arc::new(config);
    let shared = Arc::new(Shared::default());
    if o.snapshot {
        shared.set(Arc::new(snapshot(TIMESTAMP)));
    }
    let tokens = Tokens::new(&config.jwt).unwrap();
    let token = tokens.mint(USER);
    let auth = Authenticator::from_config(&config).unwrap();
    let app = App::new(Arc::clone(&config), Arc::clone(&shared), auth, tokens);
    let running = http::start(Arc::new(app)).unwrap();
    let prefix = config.general.server_prefix.clone();
    Api {
        url: format!("http://{}{prefix}", running.addr),
        running: Some(running),
        shared,
        token,
        _dir: dir,
    }
}

impl Api {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// GET `path` (relative to the prefix) with a valid token and extra headers.
    fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        self.request("GET", path, headers)
    }

    fn get(&self, path: &str) -> HttpReply {
        self.get_with(path, &[])
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        let bearer = self.bearer();
        let mut all = vec![("Authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        http_request(method, &format!("{}{path}", self.url), &all, None)
    }

    /// GET without any Authorization header.
    fn anonymous(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        http_request(method, &format!("{}{path}", self.url), headers, None)
    }

    fn json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/hal+json"),
            "{path}"
        );
        reply.json()
    }

    fn text(&self, path: &str) -> String {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.text()
    }
}

/// Raw bytes to the server, for requests a well-behaved client cannot send; returns what
/// came back before the server closed the connection or `timeout` passed.
fn raw(addr: std::net::SocketAddr, request: &[u8], timeout: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 100") {
                    // Headers are in; give the body a moment, then stop.
                    stream
                        .set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn sizes(s: &Snapshot, repo: &str) -> (u64, u64) {
    let r = s.repository(repo).unwrap();
    (r.size.unwrap(), r.disk_size.unwrap())
}

fn tag_sizes(s: &Snapshot, repo: &str, tag: &str) -> (u64, u64) {
    let t = s.repository(repo).unwrap().tag(tag).unwrap();
    (t.size, t.disk_size)
}

// ---- documents -------------------------------------------------------------------------

#[test]
fn plain_documents_are_exactly_the_originals_fields() {
    let api = start(DEFAULTS);
    let s = snapshot(TIMESTAMP);
    let t = s.totals;
    assert_eq!(
        api.text("/repositories"),
        format!(
            r#"{{"timestamp":1700000000.25,"size":{},"disk_size":{},"repository_count":6,"tag_count":6}}"#,
            t.size, t.disk_size
        )
    );
    assert_eq!(t.tag_count, 6);
    let (size, disk) = sizes(&s, "group/app");
    assert_eq!(
        api.text("/repositories/group%2Fapp"),
        format!(r#"{{"name":"group/app","size":{size},"disk_size":{disk}}}"#)
    );
    assert_eq!(api.text("/repositories/group%2Fapp/tags"), r#"{"count":3}"#);
    let (size, disk) = tag_sizes(&s, "group/app", "v1");
    assert_eq!(
        api.text("/repositories/group%2Fapp/tags/v1"),
        format!(r#"{{"name":"v1","size":{size},"disk_size":{disk}}}"#)
    );
    assert_eq!(
        api.text("/repositories/broken"),
        r#"{"name":"broken","size":null,"disk_size":null,"error":"tag list: HTTP 500"}"#
    );
    assert_eq!(api.text("/repositories/empty/tags"), r#"{"count":0}"#);
    // The tags of a repository whose scan failed are unknown, not missing: 200 as in the
    // original, with the repository's error.
    assert_eq!(
        api.text("/repositories/broken/tags"),
        r#"{"count":null,"error":"tag list: HTTP 500"}"#
    );
}

#[test]
fn the_tags_of_a_failed_repository_are_a_document_with_its_error() {
    let api = start(DEFAULTS);
    let doc = api.json("/repositories/broken/tags?links=true&embed=true");
    assert_eq!(
        doc,
        json!({
            "count": null,
            "error": "tag list: HTTP 500",
            "_links": {
                "self": {"href": "/repositories/broken/tags"},
                "up": {"href": "/repositories/broken"}
            }
        })
    );
    let html = api.get_with("/repositories/broken/tags", &[("Accept", "text/html")]);
    assert_eq!(html.status, 200);
    assert!(
        html.text().contains("tag list: HTTP 500"),
        "{}",
        html.text()
    );
    // An error next to tags from an earlier scan is shown with them.
    let mut b = Builder::default();
    b.add_repository(
        "stale",
        Some(vec![ScannedTag {
            name: "v1".into(),
            digest: None,
            layers: vec![LayerRef {
                digest: "sha256:x".into(),
                size: 3,
            }]
            .into(),
        }]),
        Some("manifest stale:v2: HTTP 404".into()),
    );
    api.shared.set(Arc::new(b.finish(TIMESTAMP)));
    assert_eq!(
        api.text("/repositories/stale/tags"),
        r#"{"count":1,"error":"manifest stale:v2: HTTP 404"}"#
    );
}

#[test]
fn links_are_complete_and_carry_encoded_names() {
    let api = start(DEFAULTS);
    let s = snapshot(TIMESTAMP);
    let (size, disk) = tag_sizes(&s, "group/app", "v1");
    assert_eq!(
        api.json("/repositories/group%2Fapp/tags/v1?links=true"),
        json!({
            "name": "v1", "size": size, "disk_size": disk,
            "_links": {
                "self": {"href": "/repositories/group%2Fapp/tags/v1"},
                "collection": {"href": "/repositories/group%2Fapp/tags"}
            }
        })
    );
    let (size, disk) = sizes(&s, "group/app");
    assert_eq!(
        api.json("/repositories/group/app?links=1"),
        json!({
            "name": "group/app", "size": size, "disk_size": disk,
            "_links": {
                "self": {"href": "/repositories/group%2Fapp"},
                "collection": {"href": "/repositories"},
                "related": {"href": "/repositories/group%2Fapp/tags", "title": "tags"}
            }
        })
    );
    assert_eq!(
        api.json("/repositories/group%2Fapp/tags?links=y"),
        json!({
            "count": 3,
            "_links": {
                "self": {"href": "/repositories/group%2Fapp/tags"},
                "up": {"href": "/repositories/group%2Fapp"},
                "items": [
                    {"href": "/repositories/group%2Fapp/tags/latest", "title": "latest"},
                    {"href": "/repositories/group%2Fapp/tags/v1", "title": "v1"},
                    {"href": "/repositories/group%2Fapp/tags/v2", "title": "v2"}
                ]
            }
        })
    );
    let doc = api.json("/repositories?links=TRUE");
    assert_eq!(doc["_links"]["self"], json!({"href": "/repositories"}));
    let items = doc["_links"]["items"].as_array().unwrap();
    let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["a", "a/tags", "broken", "empty", EVIL, "group/app"]
    );
    assert_eq!(items[1]["href"], "/repositories/a%2Ftags");
    assert_eq!(
        items[4]["href"],
        "/repositories/evil%2F%3Cscript%3Ealert%281%29%3C%2Fscript%3E"
    );
    // No tags known: no related link. No tags at all: no items link.
    let broken = api.json("/repositories/broken?links=true");
    assert!(broken["_links"].get("related").is_none(), "{broken}");
    let empty = api.json("/repositories/empty/tags?links=true");
    assert!(empty["_links"].get("items").is_none(), "{empty}");
    // links=false and anything not a true-string: no _links.
    for q in ["?links=false", "?links=0", "?links=on", "?links=", ""] {
        assert!(
            api.json(&format!("/repositories/group%2Fapp{q}"))
                .get("_links")
                .is_none(),
            "{q}"
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Collection,
    Repository,
    Tags,
    Tag,
}

/// Checks `_links` / `_embedded` of a document and everything it embeds, against what
/// `depth` and `links` ask for: present exactly when asked, never empty.
fn check_structure(doc: &Value, kind: Kind, depth: u32, links: bool, context: &str) {
    assert_eq!(
        doc.get("_links").is_some(),
        links,
        "{context}: _links in {doc}"
    );
    let embedded = doc.get("_embedded");
    if let Some(e) = embedded {
        assert!(
            e.as_object().is_some_and(|o| !o.is_empty()),
            "{context}: empty _embedded in {doc}"
        );
    }
    let (rel, child) = match kind {
        Kind::Collection => ("items", Kind::Repository),
        Kind::Repository => ("related", Kind::Tags),
        Kind::Tags => ("items", Kind::Tag),
        Kind::Tag => {
            assert!(embedded.is_none(), "{context}: a tag embeds nothing");
            return;
        }
    };
    let has_children = match kind {
        Kind::Collection => true,
        Kind::Repository => doc["name"] != "broken",
        Kind::Tags => doc["count"].as_u64().is_some_and(|n| n > 0),
        Kind::Tag => false,
    };
    if depth == 0 || !has_children {
        assert!(
            embedded.is_none(),
            "{context}: nothing to embed at depth {depth} in {doc}"
        );
        return;
    }
    let e = &embedded
        .unwrap_or_else(|| panic!("{context}: _embedded missing at depth {depth}: {doc}"))[rel];
    match e {
        Value::Array(items) => {
            assert!(!items.is_empty(), "{context}");
            for item in items {
                check_structure(item, child, depth - 1, links, context);
            }
        }
        Value::Object(_) => {
            assert_eq!(
                kind,
                Kind::Repository,
                "{context}: only `related` is a single object"
            );
            check_structure(e, child, depth - 1, links, context);
        }
        other => panic!("{context}: _embedded.{rel} is {other}"),
    }
}

#[test]
fn every_resource_with_every_embed_depth_and_links_setting() {
    let api = start(DEFAULTS);
    let resources = [
        ("/repositories", Kind::Collection),
        ("/repositories/group%2Fapp", Kind::Repository),
        ("/repositories/broken", Kind::Repository),
        ("/repositories/empty", Kind::Repository),
        ("/repositories/group%2Fapp/tags", Kind::Tags),
        ("/repositories/empty/tags", Kind::Tags),
        ("/repositories/broken/tags", Kind::Tags),
        ("/repositories/group%2Fapp/tags/v2", Kind::Tag),
    ];
    for (path, kind) in resources {
        for (embed, depth) in [
            ("0", 0),
            ("1", 1),
            ("2", 2),
            ("true", 99),
            ("3", 3),
            ("nonsense", 0),
        ] {
            for links in [false, true] {
                let url = format!("{path}?embed={embed}&links={links}");
                let doc = api.json(&url);
                check_structure(&doc, kind, depth, links, &url);
            }
        }
    }
    // embed=1 on the collection: repositories without their tags.
    let doc = api.json("/repositories?embed=1");
    let items = doc["_embedded"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i.get("_embedded").is_none()));
    // Full depth: tags of group/app reach the tag level, with their own self links.
    let doc = api.json("/repositories?embed=true&links=true");
    let app = doc["_embedded"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "group/app")
        .unwrap()
        .clone();
    let tags = &app["_embedded"]["related"];
    assert_eq!(tags["count"], 3);
    let v1 = &tags["_embedded"]["items"][1];
    assert_eq!(v1["name"], "v1");
    assert_eq!(
        v1["_links"]["self"]["href"],
        "/repositories/group%2Fapp/tags/v1"
    );
    // The same document, whichever way "unlimited" was asked for.
    let a = api.get("/repositories?embed=true");
    let b = api.get("/repositories?embed=3");
    let c = api.get("/repositories?embed=YES");
    assert_eq!(a.body, b.body);
    assert_eq!(a.header("etag"), b.header("etag"));
    assert_eq!(a.header("etag"), c.header("etag"));
}

#[test]
fn names_with_slashes_raw_or_encoded() {
    let api = start(DEFAULTS);
    for path in [
        "/repositories/group/app",
        "/repositories/group%2Fapp",
        "/repositories/group%2fapp",
    ] {
        assert_eq!(api.json(path)["name"], "group/app", "{path}");
        assert_eq!(api.json(&format!("{path}/tags"))["count"], 3, "{path}");
        assert_eq!(
            api.json(&format!("{path}/tags/latest"))["name"],
            "latest",
            "{path}"
        );
    }
    assert_eq!(
        api.json("/repositories/group%2Fapp%2Ftags%2Fv2")["name"],
        "v2"
    );
    // A repository that ends in "tags", next to the repository before it.
    assert_eq!(api.json("/repositories/a/tags")["name"], "a/tags");
    assert_eq!(api.json("/repositories/a/tags/tags")["count"], 1);
    assert_eq!(api.json("/repositories/a/tags/tags/x")["name"], "x");
    assert_eq!(api.json("/repositories/a/tags/y")["name"], "y");
    assert_eq!(
        api.json("/repositories/a%2Ftags/tags?links=1")["_links"]["up"]["href"],
        "/repositories/a%2Ftags"
    );
    // Percent-encoded characters that are not slashes.
    assert_eq!(
        api.json("/repositories/evil%2F%3Cscript%3Ealert%281%29%3C%2Fscript%3E/tags/v1")["name"],
        "v1"
    );
}

#[test]
fn server_prefix_routes_and_links() {
    let api = start(Options {
        prefix: "/usage/api/",
        ..DEFAULTS
    });
    assert!(api.url.ends_with("/usage/api"), "{}", api.url);
    let doc = api.json("/repositories?links=1&embed=1");
    assert_eq!(doc["_links"]["self"]["href"], "/usage/api/repositories");
    assert_eq!(
        doc["_links"]["items"][5]["href"],
        "/usage/api/repositories/group%2Fapp"
    );
    assert_eq!(
        doc["_embedded"]["items"][5]["_links"]["related"]["href"],
        "/usage/api/repositories/group%2Fapp/tags"
    );
    let tag = api.json("/repositories/group%2Fapp/tags/v1?links=1");
    assert_eq!(
        tag["_links"]["self"]["href"],
        "/usage/api/repositories/group%2Fapp/tags/v1"
    );
    let missing = api.get("/repositories/nope");
    assert_eq!(
        missing.json()["message"],
        "The resource \"/usage/api/repositories/nope\" does not exist"
    );
    assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
    // Outside the prefix there is nothing (and, without a token, not even that).
    let root = api.url.trim_end_matches("/usage/api").to_string();
    let bearer = api.bearer();
    let outside = http_request(
        "GET",
        &format!("{root}/repositories"),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(outside.status, 404);
    assert_eq!(
        http_request("GET", &format!("{root}/repositories"), &[], None).status,
        401
    );
}

#[test]
fn images_is_the_old_name_and_links_stay_under_it() {
    let api = start(DEFAULTS);
    let doc = api.json("/images?links=true&embed=true");
    assert_eq!(doc["_links"]["self"]["href"], "/images");
    assert_eq!(doc["_links"]["items"][0]["href"], "/images/a");
    let app = &doc["_embedded"]["items"][5];
    assert_eq!(app["_links"]["collection"]["href"], "/images");
    assert_eq!(
        app["_embedded"]["related"]["_embedded"]["items"][0]["_links"]["self"]["href"],
        "/images/group%2Fapp/tags/latest"
    );
    assert_eq!(api.json("/images/group/app/tags/v1")["name"], "v1");
    assert_eq!(
        api.get("/images/nope").json()["message"],
        "The resource \"/images/nope\" does not exist"
    );
}

#[test]
fn collection_document_is_the_embedded_collection() {
    let api = start(DEFAULTS);
    let served = api.get("/repositories?embed=true");
    assert_eq!(
        http::collection_document(&snapshot(TIMESTAMP)).as_bytes(),
        served.body.as_slice()
    );
}

// ---- errors ----------------------------------------------------------------------------

#[test]
fn unknown_resources_are_404_with_the_path_as_in_links() {
    let api = start(DEFAULTS);
    for (path, shown) in [
        ("/repositories/nope", "/repositories/nope"),
        (
            "/repositories/group/app/tags/nope",
            "/repositories/group%2Fapp/tags/nope",
        ),
        (
            "/repositories/group%2Fapp/tags/nope",
            "/repositories/group%2Fapp/tags/nope",
        ),
        (
            "/repositories/no/such/thing",
            "/repositories/no%2Fsuch%2Fthing",
        ),
        // A tag of a repository whose scan failed: 404, never a 500.
        (
            "/repositories/broken/tags/v1",
            "/repositories/broken/tags/v1",
        ),
        ("/nothing/here", "/nothing/here"),
    ] {
        let reply = api.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(
            reply.json(),
            json!({"message": format!("The resource \"{shown}\" does not exist")}),
            "{path}"
        );
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
    }
    for path in [
        "/repositories/bad%zz",
        "/repositories/bad%ff",
        "/repositories/bad%",
    ] {
        let reply = api.get(path);
        assert_eq!(reply.status, 400, "{path}");
        assert!(
            reply.json()["message"].as_str().unwrap().contains("path"),
            "{path}"
        );
    }
}

#[test]
fn other_methods_are_405_with_allow() {
    let api = start(DEFAULTS);
    for (method, path) in [
        ("POST", "/repositories"),
        ("PUT", "/repositories/group%2Fapp"),
        ("DELETE", "/repositories/group%2Fapp/tags/v1"),
        ("PATCH", "/health"),
    ] {
        let reply = api.request(method, path, &[]);
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(
            reply.header("allow"),
            Some("GET, HEAD, OPTIONS"),
            "{method} {path}"
        );
        assert!(reply.json()["message"].is_string());
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    }
    let reply = api.anonymous("DELETE", "/auth_token", &[]);
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn overlong_urls_and_request_bodies_are_refused_without_harm() {
    let api = start(DEFAULTS);
    let long = format!("/repositories/{}", "a".repeat(9000));
    assert_eq!(api.get(&long).status, 414);
    let addr = api.running.as_ref().unwrap().addr;
    // A small body is ignored.
    let small = raw(
        addr,
        b"POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(5),
    );
    assert!(small.starts_with("HTTP/1.1 401"), "{small}");
    // A larger one that is really sent: 413.
    let mut request = b"POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n".to_vec();
    request.extend_from_slice(&[b'x'; 5000]);
    let big = raw(addr, &request, Duration::from_secs(5));
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    // A body announced but never sent, small and absurdly large: the server must neither
    // block its workers nor allocate the announced size.
    let mut hanging = Vec::new();
    for length in ["4000", "1000000000000"] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            format!("POST /repositories HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        hanging.push(s);
    }
    for _ in 0..4 {
        assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
    }
    // Garbage that tiny_http itself refuses (non-ASCII headers, a broken request line):
    // 400 or a closed connection, and the server lives on.
    for garbage in [
        &b"GET /health HTTP/1.1\r\nX-Bad: \xff\xfe\r\n\r\n"[..],
        b"\x00\x01 nonsense\r\n\r\n",
    ] {
        let reply = raw(addr, garbage, Duration::from_secs(5));
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
            "{reply}"
        );
    }
    assert_eq!(api.get("/repositories").status, 200);
    drop(hanging);
}

// ---- HTTP features ---------------------------------------------------------------------

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let api = start(DEFAULTS);
    for path in [
        "/repositories?embed=true",
        "/repositories/group%2Fapp",
        "/repositories/nope",
    ] {
        let get = api.get(path);
        let head = api.request("HEAD", path, &[]);
        assert_eq!(head.status, get.status, "{path}");
        for name in [
            "content-type",
            "etag",
            "content-length",
            "access-control-allow-origin",
        ] {
            assert_eq!(head.header(name), get.header(name), "{path}: {name}");
        }
        assert_eq!(
            get.header("content-length").unwrap(),
            get.body.len().to_string()
        );
    }
    // Raw, to see that really no body bytes follow.
    let addr = api.running.as_ref().unwrap().addr;
    let reply = raw(
        addr,
        format!("HEAD /repositories HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n", api.bearer())
            .as_bytes(),
        Duration::from_secs(5),
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("\r\n\r\n"), "{reply}");
}

#[test]
fn browsers_get_html_with_every_name_escaped() {
    let api = start(DEFAULTS);
    let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let reply = api.get_with("/repositories?embed=true&links=true", &[("Accept", accept)]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(reply
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    let page = reply.text();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(!page.contains("<script"), "unescaped name in the page");
    assert!(
        page.contains("evil/&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"/repositories/group%2Fapp/tags/v1\">"),
        "{page}"
    );
    assert!(page.contains("tag list: HTTP 500"));
    let json = api.get("/repositories?embed=true&links=true");
    assert_ne!(reply.header("etag"), json.header("etag"));
    assert_eq!(reply.header("vary"), Some("Accept"));
    // An explicit preference for JSON, or none, gets JSON.
    for accept in [
        "*/*",
        "application/json",
        "text/html;q=0.5, application/hal+json",
    ] {
        let r = api.get_with("/repositories/group%2Fapp", &[("Accept", accept)]);
        assert_eq!(
            r.header("content-type"),
            Some("application/hal+json"),
            "{accept}"
        );
    }
    let tag = api.get_with(
        "/repositories/evil%2F%3Cscript%3Ealert%281%29%3C%2Fscript%3E/tags/v1",
        &[("Accept", "text/html")],
    );
    assert!(!tag.text().contains("<script"));
    assert!(tag
        .text()
        .contains("<title>/repositories/evil%2F%3Cscript%3E"));
}

#[test]
fn etags_and_conditional_requests() {
    let api = start(DEFAULTS);
    for path in [
        "/repositories",
        "/repositories?embed=true&links=1",
        "/repositories/group%2Fapp/tags/v1",
    ] {
        let first = api.get(path);
        let etag = first.header("etag").unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert_eq!(
            api.get(path).header("etag"),
            Some(etag.as_str()),
            "stable: {path}"
        );
        for inm in [
            etag.clone(),
            format!("\"other\", {etag}"),
            format!("W/{etag}"),
            "*".into(),
        ] {
            let cached = api.get_with(path, &[("If-None-Match", &inm)]);
            assert_eq!(cached.status, 304, "{path} {inm}");
            assert!(cached.body.is_empty());
            assert_eq!(cached.header("etag"), Some(etag.as_str()));
            assert_eq!(cached.header("access-control-allow-origin"), Some("*"));
        }
        assert_eq!(
            api.get_with(path, &[("If-None-Match", "\"stale\"")]).status,
            200
        );
    }
    // Different documents, different tags.
    assert_ne!(
        api.get("/repositories").header("etag"),
        api.get("/repositories?links=1").header("etag")
    );
    // A new snapshot with new data: new tag, and the cached large document is replaced.
    let before = api.get("/repositories?embed=true");
    api.shared.set(Arc::new(snapshot(TIMESTAMP + 60.0)));
    let after = api.get("/repositories?embed=true");
    assert_ne!(before.header("etag"), after.header("etag"));
    assert_eq!(after.json()["timestamp"], TIMESTAMP + 60.0);
    // Same data in a new snapshot: the same tag, so clients keep their copies.
    api.shared.set(Arc::new(snapshot(TIMESTAMP + 60.0)));
    assert_eq!(
        api.get("/repositories?embed=true").header("etag"),
        after.header("etag")
    );
}

#[test]
fn cors_on_every_response_and_preflight() {
    let api = start(DEFAULTS);
    let preflight = api.anonymous(
        "OPTIONS",
        "/repositories/group%2Fapp",
        &[
            ("Origin", "https://ui.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("Authorization, Content-Type, If-None-Match")
    );
    assert!(preflight.header("access-control-max-age").is_some());
    let login = api.anonymous("OPTIONS", "/auth_token", &[]);
    assert_eq!(
        login.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, OPTIONS")
    );
    for reply in [
        api.anonymous("GET", "/repositories", &[]),
        api.anonymous("GET", "/health", &[]),
        api.get("/repositories"),
    ] {
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    }

    let api = start(Options {
        cors: Some("https://ui.example"),
        ..DEFAULTS
    });
    assert_eq!(
        api.get("/repositories")
            .header("access-control-allow-origin"),
        Some("https://ui.example")
    );
    let api = start(Options {
        cors: Some(""),
        ..DEFAULTS
    });
    assert_eq!(
        api.get("/repositories")
            .header("access-control-allow-origin"),
        None
    );
    let preflight = api.anonymous("OPTIONS", "/repositories", &[]);
    assert_eq!(preflight.header("access-control-allow-methods"), None);
    assert_eq!(preflight.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn health_before_and_after_the_first_snapshot() {
    let api = start(Options {
        snapshot: false,
        ..DEFAULTS
    });
    let starting = api.anonymous("GET", "/health", &[]);
    assert_eq!(starting.status, 503);
    assert_eq!(
        starting.json(),
        json!({"status": "starting", "snapshot_age_seconds": null, "timestamp": null})
    );
    // The data routes say why there is nothing yet.
    assert_eq!(api.get("/repositories").status, 503);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    api.shared.set(Arc::new(snapshot(now - 42.0)));
    let ok = api.anonymous("GET", "/health", &[]);
    assert_eq!(ok.status, 200);
    let doc = ok.json();
    assert_eq!(doc["status"], "ok");
    let age = doc["snapshot_age_seconds"].as_f64().unwrap();
    assert!((41.0..60.0).contains(&age), "{age}");
    assert_eq!(doc.as_object().unwrap().len(), 3, "nothing else: {doc}");
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    assert_eq!(api.anonymous("HEAD", "/health", &[]).status, 200);
}

#[test]
fn health_turns_503_with_the_reason_once_the_data_is_older_than_max_snapshot_age() {
    let api = start(Options {
        snapshot: false,
        general: "max_snapshot_age = 1 minute",
        ..DEFAULTS
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Younger than the limit: the same 200 body as without the key.
    api.shared.set(Arc::new(snapshot(now - 30.0)));
    let ok = api.anonymous("GET", "/health", &[]);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["status"], "ok");
    assert_eq!(ok.json().as_object().unwrap().len(), 3);

    api.shared.set(Arc::new(snapshot(now - 90.0)));
    let stale = api.anonymous("GET", "/health", &[]);
    assert_eq!(stale.status, 503);
    assert_eq!(stale.header("retry-after"), Some("5"));
    assert_eq!(stale.header("cache-control"), Some("no-store"));
    let doc = stale.json();
    assert_eq!(doc["status"], "stale");
    assert_eq!(doc["timestamp"].as_f64(), Some(now - 90.0));
    assert_eq!(doc["max_snapshot_age_seconds"].as_f64(), Some(60.0));
    assert!(
        doc["snapshot_age_seconds"].as_f64().unwrap() >= 90.0,
        "{doc}"
    );
    let message = doc["message"].as_str().unwrap();
    assert!(message.contains("older than max_snapshot_age"), "{message}");
    assert_eq!(api.anonymous("HEAD", "/health", &[]).status, 503);
}

// ---- auth ------------------------------------------------------------------------------

fn base64url(bytes: &[u8]) -> String {
    base64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// An HS256 token with any claims, signed with `secret`.
fn craft_token(claims: &Value, secret: &str) -> String {
    craft_token_with_header(br#"{"alg":"HS256","typ":"JWT"}"#, claims, secret)
}

/// A token with any header, HMAC-SHA256-signed with `secret` whatever its `alg` says.
fn craft_token_with_header(header: &[u8], claims: &Value, secret: &str) -> String {
    let header = base64url(header);
    let payload = base64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mac = hmac_sha256::HMAC::mac(signing_input.as_bytes(), secret.as_bytes());
    format!("{signing_input}.{}", base64url(&mac))
}

#[test]
fn data_routes_need_a_valid_token_before_anything_else() {
    let api = start(DEFAULTS);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |exp: u64| json!({"iat": now - 7200, "nbf": now - 7200, "exp": exp, "jti": "x", "identity": USER, "type": "access", "fresh": false});
    let expired = craft_token(&claims(now - 3600), SECRET);
    let forged = craft_token(&claims(now + 3600), "another-secret-another-secret-xx");
    let valid_crafted = craft_token(&claims(now + 3600), SECRET);
    let hs512 = jwt_simple::prelude::MACLike::authenticate(
        &jwt_simple::prelude::HS512Key::from_bytes(SECRET.as_bytes()),
        jwt_simple::prelude::Claims::create(jwt_simple::prelude::Duration::from_secs(3600))
            .with_subject(USER),
    )
    .unwrap();
    let alg_none = craft_token_with_header(
        br#"{"alg":"none","typ":"JWT"}"#,
        &claims(now + 3600),
        SECRET,
    );
    for path in [
        "/repositories",
        "/repositories/group%2Fapp",
        "/repositories/nope",
        "/images/x/tags/y",
        "/elsewhere",
    ] {
        let missing = api.anonymous("GET", path, &[]);
        assert_eq!(missing.status, 401, "{path}");
        assert_eq!(
            missing.json(),
            json!({"msg": "Missing Authorization Header"}),
            "{path}"
        );
        assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
        assert_eq!(missing.header("access-control-allow-origin"), Some("*"));
        for (authorization, msg) in [
            ("Bearer abc".to_string(), "Not enough segments"),
            (format!("Bearer {expired}"), "Token has expired"),
            (format!("Bearer {forged}"), "Signature verification failed"),
            (
                format!("Bearer {hs512}"),
                "The specified alg value is not allowed",
            ),
            (
                format!("Bearer {alg_none}"),
                "The specified alg value is not allowed",
            ),
            (
                basic_auth(USER, PASSWORD),
                "Bad Authorization header. Expected value 'Bearer <JWT>'",
            ),
        ] {
            let reply = api.anonymous("GET", path, &[("Authorization", &authorization)]);
            assert_eq!(reply.status, 401, "{path} {msg}");
            assert_eq!(reply.json(), json!({"msg": msg}), "{path}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer error=\"invalid_token\"")
            );
        }
    }
    let reply = api.anonymous(
        "GET",
        "/repositories",
        &[("Authorization", &format!("Bearer {valid_crafted}"))],
    );
    assert_eq!(reply.status, 200);
}

#[test]
fn auth_token_gives_a_working_token_for_the_right_password_only() {
    let api = start(DEFAULTS);
    for method in ["GET", "POST"] {
        let reply = api.anonymous(
            method,
            "/auth_token",
            &[("Authorization", &basic_auth(USER, PASSWORD))],
        );
        assert_eq!(reply.status, 200, "{method}: {}", reply.text());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let doc = reply.json();
        assert_eq!(doc.as_object().unwrap().len(), 1);
        let token = doc["auth_token"].as_str().unwrap();
        let data = api.anonymous(
            "GET",
            "/repositories",
            &[("Authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(data.status, 200);
    }
    for authorization in [
        basic_auth(USER, "wrong"),
        basic_auth(USER, ""),
        basic_auth("mallory", PASSWORD),
        basic_auth("*", PASSWORD),
        "Basic !!!".into(),
        "Bearer x.y.z".into(),
    ] {
        let reply = api.anonymous("GET", "/auth_token", &[("Authorization", &authorization)]);
        assert_eq!(reply.status, 401, "{authorization}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"Authentication Required\"")
        );
        assert!(reply.json()["message"].is_string());
        assert!(!reply.text().contains("auth_token"));
    }
    let none = api.anonymous("GET", "/auth_token", &[]);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Basic realm=\"Authentication Required\"")
    );
}

#[test]
fn repeated_failures_are_rate_limited() {
    let api = start(DEFAULTS);
    let wrong = basic_auth(USER, "wrong");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            api.anonymous("GET", "/auth_token", &[("Authorization", &wrong)])
                .status,
        );
    }
    assert!(
        statuses.starts_with(&[401, 401, 401, 401, 401]),
        "{statuses:?}"
    );
    let limited = api.anonymous(
        "GET",
        "/auth_token",
        &[("Authorization", &basic_auth(USER, PASSWORD))],
    );
    assert_eq!(limited.status, 429, "even the right password waits");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.json()["message"].is_string());
    // Data routes do not care.
    assert_eq!(api.get("/repositories").status, 200);
}

/// Eight wrong passwords, each claiming another client address, then the right one.
/// The address rotates in the last of two header lines (a proxy that adds its own line).
fn rotating_forwarded_for(api: &Api) -> (Vec<u16>, HttpReply) {
    let wrong = basic_auth(USER, "wrong");
    let statuses = (0..8)
        .map(|i| {
            let forwarded = format!("203.0.113.{i}, 198.51.100.{i}");
            api.anonymous(
                "GET",
                "/auth_token",
                &[
                    ("Authorization", &wrong),
                    ("X-Forwarded-For", "192.0.2.1"),
                    ("X-Forwarded-For", &forwarded),
                ],
            )
            .status
        })
        .collect();
    let right = api.anonymous(
        "GET",
        "/auth_token",
        &[
            ("Authorization", &basic_auth(USER, PASSWORD)),
            ("X-Forwarded-For", "198.51.100.200"),
        ],
    );
    (statuses, right)
}

#[test]
fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    // Loopback is not trusted by default: the header does not make a local client many.
    let api = start(DEFAULTS);
    let (statuses, right) = rotating_forwarded_for(&api);
    assert!(
        statuses.starts_with(&[401, 401, 401, 401, 401]) && statuses.contains(&429),
        "{statuses:?}"
    );
    assert_eq!(right.status, 429, "{}", right.text());

    // Behind a trusted proxy each address (the right-most entry) is a client of its own.
    let api = start(Options {
        general: "trusted_proxies = 127.0.0.1/32",
        ..DEFAULTS
    });
    let (statuses, right) = rotating_forwarded_for(&api);
    assert_eq!(statuses, [401; 8]);
    assert_eq!(right.status, 200, "{}", right.text());
}

#[test]
fn concurrent_clients_and_a_clean_shutdown() {
    let mut api = start(DEFAULTS);
    let url = api.url.clone();
    let bearer = api.bearer();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let (url, bearer) = (url.clone(), bearer.clone());
            std::thread::spawn(move || {
                let agent = support::test_agent(Duration::from_secs(10));
                for j in 0..40 {
                    let path = if (i + j) % 2 == 0 {
                        "/repositories?embed=true"
                    } else {
                        "/repositories/group%2Fapp/tags/v1"
                    };
                    let reply = support::try_http_request_with(
                        &agent,
                        "GET",
                        &format!("{url}{path}"),
                        &[("Authorization", &bearer)],
                        None,
                    )
                    .unwrap();
                    assert_eq!(reply.status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let running = api.running.take().unwrap();
    let addr = running.addr;
    let started = std::time::Instant::now();
    running.shutdown();
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing answers any more.
    let after = support::try_http_request_with(
        &support::test_agent(Duration::from_secs(2)),
        "GET",
        &format!("http://{addr}/health"),
        &[],
        None,
    );
    assert!(after.is_err(), "{after:?}");
}

#[test]
fn logins_from_one_client_run_two_at_a_time() {
    let api = start(Options {
        slow_user: true,
        ..DEFAULTS
    });
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (api.url.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let auth = basic_auth("slow", PASSWORD);
                http_request(
                    "GET",
                    &format!("{url}/auth_token"),
                    &[("Authorization", &auth)],
                    None,
                )
            })
        })
        .collect();
    let replies: Vec<HttpReply> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let busy: Vec<&HttpReply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        ok + busy.len(),
        4,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(ok >= 2 && !busy.is_empty(), "ok {ok}, busy {}", busy.len());
    assert_eq!(busy[0].header("retry-after"), Some("1"));
}

/// 2000 repositories, one of them with 300 tags: documents well above the size that is
/// cached and sent from a side thread.
fn large_snapshot() -> Snapshot {
    let mut b = Builder::default();
    for r in 0..2000 {
        let tags = (0..if r == 0 { 300 } else { 3 })
            .map(|t| ScannedTag {
                name: format!("v{t}"),
                digest: None,
                layers: vec![LayerRef {
                    digest: format!("sha256:{r}-{t}").into(),
                    size: 100 + t,
                }]
                .into(),
            })
            .collect();
        b.add_repository(&format!("group{}/app{r}", r % 7), Some(tags), None);
    }
    b.finish(TIMESTAMP)
}

#[test]
fn large_documents_are_cached_and_sent_whole() {
    let api = start(DEFAULTS);
    api.shared.set(Arc::new(large_snapshot()));
    let path = "/repositories?embed=true&links=true";
    let first = api.get(path);
    assert_eq!(first.status, 200);
    assert!(first.body.len() > 1024 * 1024, "{}", first.body.len());
    assert_eq!(
        first.header("content-length").unwrap(),
        first.body.len().to_string()
    );
    assert!(first.header("transfer-encoding").is_none());
    let doc = first.json();
    assert_eq!(doc["tag_count"], 300 + 1999 * 3);
    assert_eq!(doc["_embedded"]["items"].as_array().unwrap().len(), 2000);
    let second = api.get(path);
    assert_eq!(first.body, second.body);
    assert_eq!(first.header("etag"), second.header("etag"));
    let etag = first.header("etag").unwrap();
    assert_eq!(api.get_with(path, &[("If-None-Match", etag)]).status, 304);
    let head = api.request("HEAD", path, &[]);
    assert_eq!(
        head.header("content-length"),
        first.header("content-length")
    );
    // A repository with many tags, embedded: cached too, and the same on every call.
    let tags = "/repositories/group0%2Fapp0/tags?embed=1&links=1";
    let a = api.get(tags);
    assert_eq!(
        a.json()["_embedded"]["items"].as_array().unwrap().len(),
        300
    );
    assert_eq!(a.body, api.get(tags).body);
    // Many clients at once.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, bearer, expected) = (api.url.clone(), api.bearer(), first.body.len());
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let r = http_request(
                        "GET",
                        &format!("{url}{path}"),
                        &[("Authorization", &bearer)],
                        None,
                    );
                    assert_eq!(r.body.len(), expected);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A burst of new keep-alive connections must each get an answer while the others stay
/// open. tiny_http 0.12's pool queued some of them behind the open connections (fixed in
/// patches/tiny_http); the race needs a fresh server, so each round starts one.
#[test]
fn a_burst_of_keep_alive_connections_is_answered_at_once() {
    use std::io::{Read, Write};
    for round in 0..8 {
        let api = start(DEFAULTS);
        let addr = api.running.as_ref().unwrap().addr;
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                    barrier.wait();
                    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        .unwrap();
                    let mut head = [0u8; 12];
                    let answered = s.read_exact(&mut head).is_ok();
                    // keep the connection open until every client has its answer
                    barrier.wait();
                    answered && head.starts_with(b"HTTP/1.1 200")
                })
            })
            .collect();
        let answered = clients
            .into_iter()
            .map(|c| c.join().unwrap_or(false))
            .filter(|&ok| ok)
            .count();
        assert_eq!(
            answered, 8,
            "round {round}: only {answered} of 8 connections were answered within 3 s"
        );
    }
}

// ---- limits of the request head (patches/tiny_http, second patch) ----------------------

/// `raw`, but also whether the server closed the connection (end of stream or reset)
/// rather than `timeout` passing first.
fn raw_closed(addr: std::net::SocketAddr, request: &[u8], timeout: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.write_all(request).unwrap();
    read_until_closed(&mut stream)
}

/// `GET /health` with one header line `X-Long: aaa…` of exactly `line_len` bytes (CRLF
/// not counted).
fn health_with_header_line(line_len: usize) -> Vec<u8> {
    let mut request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    request.resize(request.len() + line_len - "X-Long: ".len(), b'a');
    request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    request
}

#[test]
fn an_overlong_header_line_is_431_and_the_server_lives_on() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    // 8 KiB is still fine, one byte more is not.
    let at_limit = raw(addr, &health_with_header_line(8192), Duration::from_secs(5));
    assert!(at_limit.starts_with("HTTP/1.1 200"), "{at_limit}");
    let (over, closed) = raw_closed(addr, &health_with_header_line(8193), Duration::from_secs(5));
    assert!(over.starts_with("HTTP/1.1 431"), "{over}");
    assert!(closed);
    let (long, closed) = raw_closed(
        addr,
        &health_with_header_line(10 * 1024),
        Duration::from_secs(5),
    );
    assert!(long.starts_with("HTTP/1.1 431"), "{long}");
    assert!(closed);
    assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
}

#[test]
fn too_many_headers_or_too_large_a_head_is_431() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    let with_headers = |count: usize, value_len: usize| {
        let mut request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
        let value = "v".repeat(value_len);
        for i in 2..count {
            request.extend_from_slice(format!("X-H{i}: {value}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        request
    };
    // 100 header lines are fine, 150 are not.
    let hundred = raw(addr, &with_headers(100, 1), Duration::from_secs(5));
    assert!(hundred.starts_with("HTTP/1.1 200"), "{hundred}");
    let (many, closed) = raw_closed(addr, &with_headers(150, 1), Duration::from_secs(5));
    assert!(many.starts_with("HTTP/1.1 431"), "{many}");
    assert!(closed);
    // 90 lines of 1 KiB: each line and their number are fine, the 90 KiB head is not.
    let (large, closed) = raw_closed(addr, &with_headers(90, 1024), Duration::from_secs(5));
    assert!(large.starts_with("HTTP/1.1 431"), "{large}");
    assert!(closed);
    assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
}

#[test]
fn an_overlong_request_line_is_414_from_tiny_http_and_a_long_url_still_reaches_the_handler() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    // 20 KiB: refused while reading the request line, without the handler's message.
    let line = format!(
        "GET /health?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let (refused, closed) = raw_closed(addr, line.as_bytes(), Duration::from_secs(5));
    assert!(refused.starts_with("HTTP/1.1 414"), "{refused}");
    assert!(!refused.contains("too long"), "{refused}");
    assert!(closed);
    // 9000 characters: the handler's own 414 with its message.
    let line = format!(
        "GET /repositories/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    let handled = raw(addr, line.as_bytes(), Duration::from_secs(5));
    assert!(handled.starts_with("HTTP/1.1 414"), "{handled}");
    assert!(handled.contains("The request URL is too long"), "{handled}");
    assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
}

#[test]
fn an_endless_header_line_is_431_and_the_server_stops_reading() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(b"GET /health HTTP/1.1\r\nX-A: ").unwrap();
        // fails once the server has closed the connection
        writer.write_all(&vec![b'a'; 1024 * 1024]).ok();
    });
    let (reply, closed) = read_until_closed(&mut stream);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert!(closed, "the connection is still open: {reply}");
    sender.join().unwrap();
    assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    let reply = raw(
        addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(reply.matches("HTTP/1.1 200 ").count(), 2, "{reply}");
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    // Different answers, and a request body between the heads: the bytes after each
    // head are left for the body and the next request.
    let request = format!(
        "POST /auth_token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
         GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\r\n\
         GET /repositories HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n",
        bearer = api.bearer()
    );
    let reply = raw(addr, request.as_bytes(), Duration::from_secs(5));
    let statuses: Vec<&str> = reply
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &reply[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["401", "404", "200"], "{reply}");
}

#[test]
fn a_request_head_in_small_pieces_is_answered() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // 3-byte pieces: CR and LF of the request line arrive in different pieces.
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\nConnection: close\r\n\r\n";
    for piece in request.chunks(3) {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (reply, closed) = read_until_closed(&mut stream);
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    assert!(closed);
}

#[test]
fn a_bare_lf_in_a_head_is_400_and_close() {
    let api = start(DEFAULTS);
    let addr = api.running.as_ref().unwrap().addr;
    // RFC 9112 §5.5: a LF inside a field value is invalid. tiny_http 0.12 kept it in the
    // value; a proxy that ends lines at a bare LF would see another header ("b") there,
    // so the request is refused rather than read differently from such a proxy.
    let (reply, closed) = raw_closed(
        addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(closed);
    assert_eq!(api.anonymous("GET", "/health", &[]).status, 200);
}

/// The cleanup preview over HTTP: the three scopes, hand-computed bytes, 400s naming the
/// parameter, 404s for names that are not there, the token, and ETags.
#[test]
fn cleanup_preview_routes() {
    let api = start(DEFAULTS);
    // group/app: v1 = base + one, v2 = base + two, latest = base + two; no dates.
    let doc = api.get("/namespaces/group/cleanup?name_regex=.*");
    assert_eq!(doc.status, 200, "{}", doc.text());
    assert_eq!(doc.header("content-type"), Some("application/json"));
    let doc = doc.json();
    assert_eq!(doc["scope"], "namespace");
    assert_eq!(doc["name"], "group");
    assert_eq!(doc["tags_deleted"], 2);
    assert_eq!(doc["tags_kept"], 1);
    assert_eq!(doc["logical_bytes"], 1010 + 1020);
    // Only `one` goes: base is held by latest and by a/tags, two by latest.
    assert_eq!(doc["freed_bytes"], 10);
    assert_eq!(doc["deduplicated_size_before"], 1000 + 10 + 20 + 5 + 7);
    assert_eq!(doc["deduplicated_size_after"], 1042 - 10);
    let repo = &doc["repositories"][0];
    assert_eq!(repo["name"], "group/app");
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    // No dates: all count as now, so equal, in name order.
    assert_eq!(names(&repo["deleted"]), ["v1", "v2"]);
    assert_eq!(
        repo["deleted"][0],
        json!({"name": "v1", "digest": null, "created": null, "size": 1010})
    );
    assert_eq!(
        repo["kept"],
        json!([{"name": "latest", "digest": null, "created": null, "size": 1020, "reason": "latest"}])
    );
    assert!(doc["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("no tag dates")));

    let one = api
        .get("/repositories/group%2Fapp/cleanup?name_regex=v1&keep_n=0")
        .json();
    assert_eq!(one["scope"], "repository");
    assert_eq!(
        (one["tags_deleted"].as_u64(), one["freed_bytes"].as_u64()),
        (Some(1), Some(10))
    );
    assert_eq!(
        one["policy"],
        json!({"name_regex": "v1", "name_regex_keep": null, "keep_n": 0, "older_than": null, "older_than_seconds": null})
    );
    let reasons: Vec<(String, String)> = one["repositories"][0]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("latest".into(), "latest".into()),
            ("v2".into(), "not_matched".into())
        ]
    );
    // Raw slashes work too, and a repository's own name ending in /tags.
    assert_eq!(
        api.get("/repositories/group/app/cleanup?name_regex=v1")
            .json()["freed_bytes"],
        10
    );
    assert_eq!(
        api.get("/repositories/a/tags/cleanup?name_regex=x").json()["logical_bytes"],
        1000
    );

    let all = api
        .get("/cleanup?name_regex_delete=.*&older_than=7d")
        .json();
    assert_eq!(all["scope"], "registry");
    assert_eq!(all["repositories_unknown"], json!(["broken"]));
    // older_than with no dates deletes nothing.
    assert_eq!(all["tags_deleted"], 0);
    assert_eq!(all["policy"]["older_than_seconds"], 7 * 86_400);

    let missing = api.get("/cleanup").json();
    assert_eq!(missing["tags_deleted"], 0);
    assert!(missing["notes"][0]
        .as_str()
        .unwrap()
        .starts_with("name_regex is missing"));

    for (path, words) in [
        (
            "/cleanup?name_regex=(",
            "name_regex \"(\" is not a regular expression",
        ),
        (
            "/cleanup?name_regex=.*&name_regex_keep=%5Bz-a%5D",
            "name_regex_keep",
        ),
        (
            "/cleanup?keep_n=-1",
            "keep_n \"-1\" is not a non-negative integer",
        ),
        (
            "/namespaces/group/cleanup?older_than=soon",
            "older_than \"soon\" is not a duration",
        ),
    ] {
        let reply = api.get(path);
        assert_eq!(reply.status, 400, "{path}");
        let message = reply.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(words), "{path}: {message}");
    }
    for path in [
        "/repositories/nope/cleanup",
        "/namespaces/nope/cleanup",
        "/namespaces/grou/cleanup",
    ] {
        assert_eq!(api.get(path).status, 404, "{path}");
    }
    assert_eq!(
        api.anonymous("GET", "/cleanup?name_regex=.*", &[]).status,
        401
    );
    assert_eq!(
        api.anonymous("GET", "/namespaces/group/cleanup", &[])
            .status,
        401
    );

    let first = api.get("/cleanup?name_regex=.*");
    let etag = first.header("etag").unwrap().to_string();
    let again = api.get_with("/cleanup?name_regex=.*", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
}

/// A tag's `created` is a usage field: with a list parameter it is there (null when the
/// image has no date), in the original's documents never.
#[test]
fn tag_dates_appear_only_with_the_usage_fields() {
    let api = start(DEFAULTS);
    let tag = api.json("/repositories/group%2Fapp/tags/v1?sort=name");
    assert!(tag.get("created").is_some_and(Value::is_null), "{tag}");
    let plain = api.json("/repositories/group%2Fapp/tags/v1");
    assert!(plain.get("created").is_none(), "{plain}");
}
