//! The usage routes and list parameters, through `App::handle` without a socket: a
//! handler is a plain function of the parsed request and the current generation.
//! Every number is computed by hand in the comments of `snapshot()`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde_json::{json, Value};

use super::handler::{Incoming, Method, Outcome, Reply};
use super::App;
use crate::auth::jwt::Tokens;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::snapshot::{Builder, LayerRef, ScannedTag, Shared, Snapshot};

/// - `g/a`: v1 {base 1000, a1 100}; v2 and latest on one manifest {base, a2 200}
/// - `g/b`: v1 {base, b1 50}; `g/sub/c`: v1 {c1 30}; `h/d`: v1 {base, d1 40}
/// - `h/broken`: tags unknown; `solo`: x {s 5} (in no namespace)
///
/// Sizes: g/a 1100 + 1200 + 1200 = 3500, g/b 1050, g/sub/c 30, h/d 1040, solo 5.
/// Owners (disk): base and a2 → g/a:latest, so g/a 1300, g/b 50, g/sub/c 30, h/d 40.
/// Exclusive (repository): g/a a1 + a2 = 300, g/b 50, g/sub/c 30, h/d 40, solo 5.
/// Namespace g: size 4580, disk 1380, distinct base a1 a2 b1 c1 = 1380, exclusive 380
/// (base is also in h/d); h: size 1040, disk 40, distinct 1040, exclusive 40, 1 failed.
fn snapshot() -> Snapshot {
    let layer = |d: &str, size| LayerRef {
        digest: format!("sha256:{d}").as_str().into(),
        size,
    };
    let tag = |name: &str, manifest: &str, layers: Vec<LayerRef>| ScannedTag {
        name: name.into(),
        digest: Some(format!("sha256:{manifest}").as_str().into()),
        layers: layers.into(),
    };
    let mut b = Builder::default();
    b.add_repository(
        "g/a",
        Some(vec![
            tag("v1", "m1", vec![layer("base", 1000), layer("a1", 100)]),
            tag("v2", "m2", vec![layer("base", 1000), layer("a2", 200)]),
            tag("latest", "m2", vec![layer("base", 1000), layer("a2", 200)]),
        ]),
        None,
    );
    b.add_repository(
        "g/b",
        Some(vec![tag(
            "v1",
            "m3",
            vec![layer("base", 1000), layer("b1", 50)],
        )]),
        None,
    );
    b.add_repository(
        "g/sub/c",
        Some(vec![tag("v1", "m4", vec![layer("c1", 30)])]),
        None,
    );
    b.add_repository(
        "h/d",
        Some(vec![tag(
            "v1",
            "m5",
            vec![layer("base", 1000), layer("d1", 40)],
        )]),
        None,
    );
    b.add_repository("h/broken", None, Some("tag list: HTTP 500".into()));
    b.add_repository(
        "solo",
        Some(vec![tag("x", "m6", vec![layer("s", 5)])]),
        None,
    );
    b.finish(1.5)
}

struct Fixture {
    app: App,
    bearer: String,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture() -> Fixture {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("grur-http-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, "").unwrap();
    let text = format!(
        "[general]\nauth_backend = htpasswd\n[htpasswd]\nfile = {}\n[jwt]\n\
         secret_key = Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA-usage-tests\n",
        htpasswd.display()
    );
    let (config, _) = Config::parse(&text).unwrap();
    let shared = Arc::new(Shared::default());
    shared.set(Arc::new(snapshot()));
    let tokens = Tokens::new(&config.jwt).unwrap();
    let bearer = format!("Bearer {}", tokens.mint("alice"));
    let auth = Authenticator::from_config(&config).unwrap();
    let app = App::new(Arc::new(config), shared, auth, tokens);
    Fixture { app, bearer, dir }
}

impl Fixture {
    fn reply(&self, target: &str, accept: Option<&str>) -> Reply {
        let rq = Incoming {
            method: Method::Get,
            target,
            authorization: Some(&self.bearer),
            accept,
            if_none_match: None,
            forwarded_for: None,
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        match self.app.handle(&rq) {
            Outcome::Reply(reply) => reply,
            // What the server's slow-request thread does with it.
            Outcome::Preview(preview) => self.app.preview(preview),
            Outcome::Login(_) => panic!("{target} is not a login"),
            Outcome::Pool => panic!("a worker answers everything"),
        }
    }

    fn text(&self, target: &str) -> String {
        let reply = self.reply(target, None);
        assert_eq!(reply.status, 200, "{target}");
        String::from_utf8(reply.body.as_ref().to_vec()).unwrap()
    }

    fn json(&self, target: &str) -> Value {
        serde_json::from_str(&self.text(target)).unwrap()
    }

    /// (status, message) of an error answer.
    fn error(&self, target: &str) -> (u16, String) {
        let reply = self.reply(target, None);
        let body: Value = serde_json::from_slice(reply.body.as_ref()).unwrap();
        (
            reply.status,
            body["message"].as_str().unwrap_or("").to_string(),
        )
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| i["name"].as_str().or(i["title"].as_str()).unwrap())
        .collect()
}

#[test]
fn a_namespace_has_its_numbers() {
    let f = fixture();
    assert_eq!(
        f.text("/namespaces/g"),
        r#"{"name":"g","size":4580,"disk_size":1380,"deduplicated_size":1380,"exclusive_size":380,"repository_count":3,"tag_count":5,"failed_repository_count":0,"growth_30d":null}"#
    );
    let h = f.json("/namespaces/h");
    assert_eq!(
        (
            &h["size"],
            &h["disk_size"],
            &h["deduplicated_size"],
            &h["exclusive_size"]
        ),
        (&json!(1040), &json!(40), &json!(1040), &json!(40))
    );
    assert_eq!(
        (&h["repository_count"], &h["failed_repository_count"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(f.text("/namespaces/g%2Fsub"), f.text("/namespaces/g/sub"));
    assert_eq!(f.json("/namespaces/g/sub")["exclusive_size"], 30);
}

#[test]
fn namespaces_embed_and_link_their_children() {
    let f = fixture();
    assert_eq!(f.text("/namespaces"), r#"{"count":2}"#);
    let top = f.json("/namespaces?links=1&embed=1");
    assert_eq!(names(&top["_links"]["items"]), ["g", "h"]);
    assert_eq!(top["_links"]["items"][0]["href"], "/namespaces/g");
    assert_eq!(top["_embedded"]["items"][1]["exclusive_size"], 40);
    let g = f.json("/namespaces/g?embed=1&links=true");
    assert_eq!(
        g["_links"],
        json!({
            "self": {"href": "/namespaces/g"},
            "up": {"href": "/namespaces"},
            "namespaces": [{"href": "/namespaces/g%2Fsub", "title": "g/sub"}],
            "repositories": [
                {"href": "/repositories/g%2Fa", "title": "g/a"},
                {"href": "/repositories/g%2Fb", "title": "g/b"}
            ]
        })
    );
    assert_eq!(names(&g["_embedded"]["namespaces"]), ["g/sub"]);
    let repos = &g["_embedded"]["repositories"];
    assert_eq!(names(repos), ["g/a", "g/b"]);
    assert_eq!(
        repos[0],
        json!({"name": "g/a", "size": 3500, "disk_size": 1300, "deduplicated_size": 1300,
               "exclusive_size": 300, "tag_count": 3, "growth_30d": null,
               "_links": {"self": {"href": "/repositories/g%2Fa"},
                          "collection": {"href": "/repositories"},
                          "related": {"href": "/repositories/g%2Fa/tags", "title": "tags"}}})
    );
    let sub = f.json("/namespaces/g%2Fsub?links=1");
    assert_eq!(sub["_links"]["up"]["href"], "/namespaces/g");
    // A failed repository: its numbers are unknown, its error is there.
    let h = f.json("/namespaces/h?embed=1");
    let broken = &h["_embedded"]["repositories"][0];
    assert_eq!(broken["name"], "h/broken");
    assert_eq!(broken["exclusive_size"], Value::Null);
    assert_eq!(broken["error"], "tag list: HTTP 500");
}

#[test]
fn unknown_namespaces_are_404_like_repositories() {
    let f = fixture();
    for (path, shown) in [
        ("/namespaces/nope", "/namespaces/nope"),
        ("/namespaces/solo", "/namespaces/solo"),
        ("/namespaces/g%2Fa", "/namespaces/g%2Fa"),
    ] {
        let (status, message) = f.error(path);
        assert_eq!(status, 404, "{path}");
        assert_eq!(message, format!("The resource \"{shown}\" does not exist"));
    }
    assert_eq!(f.error("/namespaces/bad%zz").0, 400);
    let rq = Incoming {
        method: Method::Get,
        target: "/namespaces/g",
        authorization: None,
        accept: None,
        if_none_match: None,
        forwarded_for: None,
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    match f.app.handle(&rq) {
        Outcome::Reply(r) => assert_eq!(r.status, 401),
        _ => panic!("not a login or a preview"),
    }
}

#[test]
fn top_n_repositories_by_exclusive_bytes() {
    let f = fixture();
    let doc = f.json("/repositories?sort=-exclusive_size&limit=2&embed=1");
    assert_eq!(doc["count"], 2);
    assert_eq!(doc["deduplicated_size"], 1425);
    assert_eq!(doc["disk_size"], 1425);
    let items = &doc["_embedded"]["items"];
    assert_eq!(names(items), ["g/a", "g/b"]);
    assert_eq!(items[1]["exclusive_size"], 50);
    // Ascending: the failed repository (unknown) first, then by bytes, ties by name.
    let all = f.json("/repositories?sort=exclusive_size&links=1");
    assert_eq!(
        names(&all["_links"]["items"]),
        ["h/broken", "solo", "g/sub/c", "h/d", "g/b", "g/a"]
    );
    let by_tags = f.json("/repositories?sort=-tag_count&limit=2&links=1");
    assert_eq!(names(&by_tags["_links"]["items"]), ["g/a", "g/b"]);
    // Numbers too large to hold mean "all".
    let huge = f.json("/repositories?limit=99999999999999999999999&links=1");
    assert_eq!(huge["count"], 6);
}

#[test]
fn pages_with_links_and_the_total() {
    let f = fixture();
    let page = f.json("/repositories?per_page=2&page=2&links=1");
    assert_eq!(page["count"], 6);
    assert_eq!(names(&page["_links"]["items"]), ["g/sub/c", "h/broken"]);
    let href = |rel: &str| page["_links"][rel]["href"].as_str().unwrap().to_string();
    assert_eq!(href("first"), "/repositories?links=true&page=1&per_page=2");
    assert_eq!(href("prev"), "/repositories?links=true&page=1&per_page=2");
    assert_eq!(href("next"), "/repositories?links=true&page=3&per_page=2");
    assert_eq!(href("last"), "/repositories?links=true&page=3&per_page=2");
    // The links lead to the pages they name.
    assert_eq!(
        names(&f.json(&href("last"))["_links"]["items"]),
        ["h/d", "solo"]
    );
    // Past the end: no items, prev is the last page, no next.
    let past = f.json("/repositories?page=9&per_page=2&embed=1");
    assert!(past.get("_embedded").is_none(), "{past}");
    assert_eq!(
        past["_links"]["prev"]["href"],
        "/repositories?embed=1&page=3&per_page=2"
    );
    assert!(past["_links"].get("next").is_none());
    let far = f.json("/repositories?page=99999999999999999999&per_page=99999999999999999999");
    assert!(far["_links"].get("next").is_none());
    assert_eq!(
        far["_links"]["last"]["href"],
        "/repositories?page=1&per_page=18446744073709551615"
    );
    // One page of everything when it fits.
    let one = f.json("/repositories?page=1&links=1");
    assert_eq!(names(&one["_links"]["items"]).len(), 6);
    assert!(one["_links"].get("next").is_none() && one["_links"].get("prev").is_none());
}

#[test]
fn names_are_filtered_ignoring_case() {
    let f = fixture();
    let doc = f.json("/repositories?q=G/S&links=1");
    assert_eq!(doc["count"], 1);
    assert_eq!(names(&doc["_links"]["items"]), ["g/sub/c"]);
    let tags = f.json("/repositories/g%2Fa/tags?q=V&links=1");
    assert_eq!(
        (tags["count"].clone(), names(&tags["_links"]["items"])),
        (json!(2), vec!["v1", "v2"])
    );
    let ns = f.json("/namespaces?q=h&links=1");
    assert_eq!(names(&ns["_links"]["items"]), ["h"]);
    // A filter with paging keeps the filter in the links.
    let paged = f.json("/repositories?q=g%2F&per_page=1");
    assert_eq!(paged["count"], 3);
    assert_eq!(
        paged["_links"]["next"]["href"],
        "/repositories?q=g%2F&page=2&per_page=1"
    );
}

#[test]
fn tags_sorted_by_exclusive_bytes_carry_digest_and_exclusive_size() {
    let f = fixture();
    let doc = f.json("/repositories/g%2Fa/tags?sort=-exclusive_size&embed=1");
    let items = &doc["_embedded"]["items"];
    // v1 100; latest and v2 share a manifest: 0 each, in name order.
    assert_eq!(names(items), ["v1", "latest", "v2"]);
    assert_eq!(
        items[0],
        json!({"name": "v1", "size": 1100, "disk_size": 100, "exclusive_size": 100,
               "digest": "sha256:m1", "created": null})
    );
    assert_eq!(items[1]["exclusive_size"], 0);
    // The embedded tags of a repository follow the parameters too.
    let repo = f.json("/repositories/g%2Fa?embed=2&sort=-size&limit=1");
    assert_eq!(
        names(&repo["_embedded"]["related"]["_embedded"]["items"]),
        ["latest"]
    );
    assert_eq!(repo["_embedded"]["related"]["count"], 1);
    assert_eq!(repo["exclusive_size"], 300);
    // A single tag: the original's fields without parameters, the new ones with.
    assert_eq!(
        f.text("/repositories/g%2Fa/tags/v1"),
        r#"{"name":"v1","size":1100,"disk_size":100}"#
    );
    assert_eq!(
        f.text("/repositories/g%2Fa/tags/v1?sort=name"),
        r#"{"name":"v1","size":1100,"disk_size":100,"exclusive_size":100,"digest":"sha256:m1","created":null}"#
    );
}

#[test]
fn children_of_a_namespace_sort_together() {
    let f = fixture();
    // g/sub 30, g/b 1050, g/a 3500.
    let g = f.json("/namespaces/g?embed=1&links=1&sort=size");
    assert_eq!(g["count"], 3);
    assert_eq!(names(&g["_embedded"]["namespaces"]), ["g/sub"]);
    assert_eq!(names(&g["_embedded"]["repositories"]), ["g/b", "g/a"]);
    let top = f.json("/namespaces/g?embed=1&sort=-exclusive_size&limit=1");
    assert!(top["_embedded"].get("namespaces").is_none());
    assert_eq!(names(&top["_embedded"]["repositories"]), ["g/a"]);
    let ns = f.json("/namespaces?sort=-failed_repository_count&links=1");
    assert_eq!(names(&ns["_links"]["items"]), ["h", "g"]);
}

#[test]
fn bad_parameters_are_400_saying_what_is_accepted() {
    let f = fixture();
    let (status, message) = f.error("/repositories?sort=bogus");
    assert_eq!(status, 400);
    assert!(
        message.contains("name, -name, size, -size, disk_size, -disk_size, deduplicated_size, -deduplicated_size, exclusive_size, -exclusive_size, tag_count, -tag_count"),
        "{message}"
    );
    let (status, message) = f.error("/repositories?sort=repository_count");
    assert_eq!(status, 400);
    assert!(message.contains("does not apply here"), "{message}");
    let (_, message) = f.error("/repositories/g%2Fa/tags?sort=deduplicated_size");
    assert!(message.contains("accepted: name, -name, size, -size, disk_size, -disk_size, exclusive_size, -exclusive_size"), "{message}");
    assert_eq!(f.json("/namespaces?sort=-repository_count")["count"], 2);
    for (target, param) in [
        ("/repositories?per_page=0", "per_page"),
        ("/repositories?page=0", "page"),
        ("/repositories?limit=x", "limit"),
        ("/repositories?limit=-3", "limit"),
        ("/namespaces/g?page=1.5", "page"),
        ("/repositories/g%2Fa/tags/v1?per_page=", "per_page"),
    ] {
        let (status, message) = f.error(target);
        assert_eq!(status, 400, "{target}");
        assert!(message.starts_with(param), "{target}: {message}");
    }
    // Unknown parameters are still ignored, as the original did.
    assert_eq!(f.reply("/repositories?sorting=x", None).status, 200);
    // A 404 beats a bad parameter: nothing is said about a name that does not exist.
    assert_eq!(f.error("/namespaces/nope?sort=bogus").0, 404);
}

#[test]
fn answers_are_cached_per_form_and_html_shows_units() {
    let f = fixture();
    let a = f.reply("/repositories?sort=-exclusive_size&limit=20&embed=1", None);
    let b = f.reply("/repositories?sort=-exclusive_size&limit=20&embed=1", None);
    assert_eq!(a.body.as_ref(), b.body.as_ref());
    assert!(
        matches!(a.body, super::cache::Body::Shared(_)),
        "a cached answer"
    );
    assert_eq!(a.etag, b.etag);
    let c = f.reply("/repositories?sort=exclusive_size&limit=20&embed=1", None);
    assert_ne!(a.etag, c.etag);
    let page = f.reply("/namespaces/g?embed=1", Some("text/html"));
    let html = String::from_utf8(page.body.as_ref().to_vec()).unwrap();
    assert!(
        html.contains("<td class=\"n\">4580 (4.5 KiB)</td>"),
        "{html}"
    );
    assert!(html.contains("exclusive_size"), "{html}");
    assert!(html.contains("<a href=\"/repositories/g%2Fa\">"), "{html}");
}

#[test]
fn namespace_routes_have_etags_methods_and_the_token_check() {
    let f = fixture();
    let first = f.reply("/namespaces/g?embed=1", None);
    let etag = first.etag.unwrap();
    let request = |method, target, if_none_match| Incoming {
        method,
        target,
        authorization: Some(&f.bearer),
        accept: None,
        if_none_match,
        forwarded_for: None,
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let status = |rq: Incoming<'_>| match f.app.handle(&rq) {
        Outcome::Reply(r) => (r.status, r.headers),
        _ => panic!("not a login or a preview"),
    };
    let (code, _) = status(request(
        Method::Get,
        "/namespaces/g?embed=1",
        Some(etag.as_str()),
    ));
    assert_eq!(code, 304);
    assert_eq!(status(request(Method::Head, "/namespaces", None)).0, 200);
    let (code, headers) = status(request(Method::Post, "/namespaces/g", None));
    assert_eq!(code, 405);
    assert!(headers
        .iter()
        .any(|(k, v)| *k == "Allow" && v == "GET, HEAD, OPTIONS"));
    assert_eq!(
        status(request(Method::Options, "/namespaces/g", None)).0,
        204
    );
}

/// Every cached document of one generation is kept under the index's generation: a
/// cleanup preview keyed by the snapshot's (older) number was never kept once another
/// document had been rendered, and was computed again on every request.
#[test]
fn a_cleanup_preview_is_rendered_once_per_generation_beside_other_documents() {
    let f = fixture();
    f.reply("/repositories?sort=-exclusive_size&limit=20&embed=1", None);
    let target = "/cleanup?name_regex=.*&keep_n=0";
    let get = |target| Incoming {
        method: Method::Get,
        target,
        authorization: Some(&f.bearer),
        accept: None,
        if_none_match: None,
        forwarded_for: None,
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    // Not computed on the worker: handed back for a slow-request thread, until cached.
    assert!(matches!(f.app.handle(&get(target)), Outcome::Preview(_)));
    assert!(matches!(
        f.app.handle(&get("/namespaces/g/cleanup?name_regex=.*")),
        Outcome::Preview(_)
    ));
    // One repository's is answered at once.
    assert!(matches!(
        f.app.handle(&get("/repositories/g%2Fa/cleanup?name_regex=.*")),
        Outcome::Reply(r) if r.status == 200
    ));
    let a = f.reply(target, None);
    assert!(matches!(f.app.handle(&get(target)), Outcome::Reply(r) if r.status == 200));
    let b = f.reply(target, None);
    match (&a.body, &b.body) {
        (super::cache::Body::Shared(x), super::cache::Body::Shared(y)) => {
            assert!(Arc::ptr_eq(x, y), "the second answer was rendered again")
        }
        _ => panic!("a cleanup preview is a cached document"),
    }
}

/// A connection's thread answers only what costs a cache lookup: a document the workers
/// have not rendered yet, a login, `/metrics`, history and cleanup previews are handed
/// to the workers; the same document once rendered is answered there with the workers'
/// bytes; refusals and `/health` need no worker.
#[test]
fn the_connection_thread_answers_only_what_is_cached_or_cheap() {
    let f = fixture();
    let at = |target: &'static str, authorization: Option<&'static str>| {
        let rq = Incoming {
            method: Method::Get,
            target,
            authorization,
            accept: None,
            if_none_match: None,
            forwarded_for: None,
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        f.app.handle_at(&rq, super::handler::Place::Connection)
    };
    let bearer: &'static str = Box::leak(f.bearer.clone().into_boxed_str());
    let document = "/repositories/g%2Fa?embed=true";
    assert!(matches!(at(document, Some(bearer)), Outcome::Pool));
    for slow in [
        "/auth_token",
        "/metrics",
        "/history",
        "/repositories/g%2Fa/history",
        "/cleanup?name_regex=.*",
        "/repositories/g%2Fa/cleanup?name_regex=.*",
    ] {
        assert!(matches!(at(slow, Some(bearer)), Outcome::Pool), "{slow}");
    }
    // Nothing about the data before the token: the same 401 whether cached or not.
    assert!(matches!(at(document, None), Outcome::Reply(r) if r.status == 401));
    assert!(matches!(at("/health", None), Outcome::Reply(r) if r.status == 200));
    // One repository's or tag's own fields cost what a cache lookup does.
    for small in ["/repositories/g%2Fa", "/repositories/g%2Fa/tags/v1"] {
        assert!(
            matches!(at(small, Some(bearer)), Outcome::Reply(r) if r.status == 200),
            "{small}"
        );
    }
    assert!(matches!(at("/repositories", Some(bearer)), Outcome::Pool));
    let rendered = f.reply(document, None);
    assert_eq!(rendered.status, 200);
    match (at(document, Some(bearer)), &rendered.body) {
        (Outcome::Reply(r), super::cache::Body::Shared(worker)) => match &r.body {
            super::cache::Body::Shared(here) => assert!(Arc::ptr_eq(here, worker)),
            _ => panic!("not the cached document"),
        },
        _ => panic!("a cached document is answered on the connection's thread"),
    }
}
