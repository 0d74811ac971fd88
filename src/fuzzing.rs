//! The checks behind the fuzz targets in `fuzz/` (cargo-fuzz, `make fuzz`), one function
//! per parser of untrusted input. Each takes the fuzzer's bytes, runs the parser and
//! asserts what must hold for every input (a panic is a finding): round trips, that an
//! accepted token really was acceptable, that an error names the line or key, that a
//! list is what a slow oracle computes, and so on. `tests/fuzz_corpora.rs` replays every
//! committed corpus file through the same function under plain `cargo test`, so CI
//! guards the findings without a fuzzer. See docs/FUZZING.md.
//!
//! Adding a target: a `pub fn name(data: &[u8])` here, a row in [`TARGETS`], a
//! three-line `fuzz/fuzz_targets/name.rs`, a `[[bin]]` in `fuzz/Cargo.toml` and a few
//! seeds in `fuzz/corpus/name/` (a test fails until all four agree). Not part of the
//! service's API.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::OnceLock;

use jwt_simple::prelude::MACLike;

use crate::auth::basic::parse_basic;
use crate::auth::htpasswd::{bcrypt_cost, HtpasswdFile};
use crate::auth::jwt::Tokens;
use crate::cidr::{Cidr, CidrList};
use crate::config::{keys, parse_ini, Config, Ini, Jwt, Role};
use crate::digest::Digest;
use crate::history::{self, Point};
use crate::http::hal::MAX_DEPTH;
use crate::http::router::{
    history_of, none_match, parse_days, parse_options, parse_request, prefers_html, resolve,
    resolve_namespace, split_target, template, Collection, NotFound, Options, Resource, Route,
    TEMPLATES,
};
use crate::percent::{decode_path, decode_query_component, encode_into, DecodeError, Encoded};
use crate::registry::challenge::{self, Challenge};
use crate::registry::manifest::{self, Manifest};
use crate::registry::{next_link, origin_of, Client};
use crate::snapshot::{
    load_in_batches, load_open, saturating_sum, write_to, Builder, LayerRef, ScannedTag, Snapshot,
};
use crate::usage::order::{ListOptions, Orders, Sort, SortKey, DEFAULT_PER_PAGE};
use crate::usage::Usage;

/// A fuzz target: its name (the file in `fuzz/fuzz_targets/`, the folder in
/// `fuzz/corpus/`) and its check.
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// `Target`s named after their check functions.
macro_rules! targets {
    ($($check:ident),* $(,)?) => {
        &[$(Target { name: stringify!($check), check: $check }),*]
    };
}

/// Every target, in the order `make fuzz` runs them.
pub const TARGETS: &[Target] = targets![
    router,
    list_options,
    basic,
    bearer,
    jwt,
    www_authenticate,
    link,
    manifest,
    snapshot,
    history,
    config,
    cidr,
    htpasswd,
    percent,
    digest,
    cleanup,
    http_head,
];

/// The fuzzer's bytes as text: invalid UTF-8 becomes U+FFFD (the parsers take `&str`;
/// what reaches them from the network or a file went through the same conversion or a
/// stricter one).
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

// ---- HTTP requests: the whole `Request`, resources, list options -------------------------

/// The snapshot the router resolves against: names with `/`, a repository ending in
/// `tags`, a tag called `tags`, a repository whose tags are unknown, namespaces.
fn fixed() -> &'static (Snapshot, Usage) {
    static FIXED: OnceLock<(Snapshot, Usage)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let tag = |name: &str| ScannedTag {
            name: name.into(),
            digest: None,
            layers: vec![LayerRef {
                digest: Digest::Sha256([7; 32]),
                size: 10,
            }]
            .into(),
        };
        let mut b = Builder::default();
        b.add_repository("group/app", Some(vec![tag("v1"), tag("tags")]), None);
        b.add_repository("group/sub/x", Some(vec![tag("history")]), None);
        b.add_repository("a/tags", Some(vec![tag("x")]), None);
        b.add_repository("a", Some(vec![tag("y"), tag("ü")]), None);
        b.add_repository("a b%", Some(vec![tag("1.0")]), None);
        b.add_repository("broken", None, Some("boom".into()));
        let snapshot = b.finish(0.0);
        let usage = Usage::of(&snapshot);
        (snapshot, usage)
    })
}

/// The path of a route that has no parameters, under the prefix.
fn fixed_path(route: &Route<'_>) -> Option<&'static str> {
    Some(match route {
        Route::Health => "/health",
        Route::AuthToken => "/auth_token",
        Route::OpenApi => "/openapi.json",
        Route::Metrics => "/metrics",
        Route::History => "/history",
        _ => return None,
    })
}

/// The whole request parse (`parse_request`; input `target \n accept \n if-none-match`),
/// for the prefixes `""` and `/x/y`: the route is exactly the prefix and its path, its
/// metrics template is the path's shape, a resource found has the name the path decodes
/// to, a 404 names a link that decodes to the same name, the options are those of the
/// query and come back from the paging links written from them, `days` is at least 1.
pub fn router(data: &[u8]) {
    let text = text(data);
    let mut fields = text.splitn(3, '\n');
    let target = fields.next().unwrap_or("");
    let accept = fields.next();
    let if_none_match = fields.next();

    let (path, query) = split_target(target);
    assert!(!path.contains(['?', '#']), "{target:?} -> path {path:?}");
    assert!(!query.contains('#'), "{target:?} -> query {query:?}");
    assert!(
        path == "/" || target.contains(path),
        "{target:?} -> {path:?}"
    );

    for prefix in ["", "/x/y"] {
        let request = parse_request(prefix, target, accept, if_none_match);
        assert_eq!(request.path, path);
        assert_eq!(request.if_none_match, if_none_match);
        assert_eq!(request.html, prefers_html(accept));
        assert_eq!(request.options, parse_options(query));
        check_route(prefix, path, &request.route);
    }

    match parse_options(query) {
        Ok(options) => check_options(query, &options),
        Err(e) => {
            let message = e.message(crate::usage::order::REPOSITORY_KEYS);
            assert!(message.contains('='), "{query:?} -> {message}");
        }
    }
    match parse_days(query) {
        Ok(Some(days)) => assert!(days >= 1),
        Ok(None) => assert!(!query.split('&').any(|p| p.starts_with("days="))),
        Err(e) => assert!(e.starts_with("days = "), "{e}"),
    }
    if let Some(header) = if_none_match {
        let _ = none_match(header, "\"1-abc\"");
        assert!(none_match(&format!("{header}, \"1-abc\""), "\"1-abc\""));
    }
}

fn check_route(prefix: &str, path: &str, route: &Route<'_>) {
    let expected = |rest: &str| format!("{prefix}{rest}");
    let shape = template(route);
    assert!(shape < TEMPLATES.len());
    assert_eq!(
        *route == Route::Unknown,
        shape == TEMPLATES.len() - 1,
        "{path:?}"
    );
    if let Some(fixed) = fixed_path(route) {
        assert_eq!(path, expected(fixed));
        assert_eq!(TEMPLATES[shape], fixed);
    }
    match *route {
        Route::Root => assert!(path == prefix || path == expected("/")),
        Route::Asset(file) => assert_eq!(path, expected(&format!("/dashboard/{file}"))),
        Route::Api { collection, rest } => {
            let name = match collection {
                Collection::Repositories => "/repositories",
                Collection::Images => "/images",
            };
            assert!(TEMPLATES[shape].starts_with(name), "{path:?}");
            check_under(path, &expected(name), rest);
            check_resolution(rest);
        }
        Route::Namespaces { rest } => {
            assert!(TEMPLATES[shape].starts_with("/namespaces"), "{path:?}");
            check_under(path, &expected("/namespaces"), rest);
            check_namespace(rest);
        }
        _ => {}
    }
}

/// `path` is `collection` itself (`rest` `None`) or `collection/rest`, `rest` not empty.
fn check_under(path: &str, collection: &str, rest: Option<&str>) {
    match rest {
        None => assert_eq!(path, collection),
        Some(rest) => {
            assert!(!rest.is_empty());
            assert_eq!(path, format!("{collection}/{rest}"));
        }
    }
}

fn check_resolution(rest: Option<&str>) {
    const BASE: &str = "/base/repositories";
    let snapshot = &fixed().0;
    let decoded = rest.map(decode_path);
    if let Some(Ok(name)) = &decoded {
        if let Some(before) = history_of(name) {
            assert!(!before.is_empty());
            assert_eq!(format!("{before}/history"), **name);
        }
    }
    match resolve(snapshot, BASE, rest) {
        Ok(Resource::Collection) => assert!(rest.is_none()),
        Ok(found) => {
            let name = decoded.expect("a path").expect("decodable");
            let found_name = match found {
                Resource::Repository(r) => r.name.to_string(),
                Resource::Tags(r) => format!("{}/tags", r.name),
                Resource::Tag(r, t) => {
                    assert!(std::ptr::eq(t, r.tag(&t.name).expect("its own tag")));
                    format!("{}/tags/{}", r.name, t.name)
                }
                other => panic!("{rest:?} resolved to {other:?}"),
            };
            assert_eq!(*name, found_name);
        }
        Err(NotFound::BadPath(e)) => {
            assert_eq!(decoded.and_then(Result::err), Some(e));
        }
        Err(NotFound::Missing(href)) => {
            let name = decoded.expect("a path").expect("decodable");
            check_missing_link(&href, BASE, &name);
        }
    }
}

fn check_namespace(rest: Option<&str>) {
    const BASE: &str = "/base/namespaces";
    let usage = &fixed().1;
    let decoded = rest.map(decode_path);
    match resolve_namespace(usage, BASE, rest) {
        Ok(Resource::Namespaces) => assert!(rest.is_none()),
        Ok(Resource::Namespace(n)) => {
            let name = decoded.expect("a path").expect("decodable");
            assert_eq!(*usage.namespaces()[n as usize].name, *name);
        }
        Ok(other) => panic!("{rest:?} resolved to {other:?}"),
        Err(NotFound::BadPath(e)) => assert_eq!(decoded.and_then(Result::err), Some(e)),
        Err(NotFound::Missing(href)) => {
            let name = decoded.expect("a path").expect("decodable");
            assert!(usage.namespace(&name).is_none());
            check_missing_link(&href, BASE, &name);
        }
    }
}

/// A 404's link lies under `base`, is percent-encoded, and decodes to `name`.
fn check_missing_link(href: &str, base: &str, name: &str) {
    let encoded = href
        .strip_prefix(base)
        .and_then(|h| h.strip_prefix('/'))
        .unwrap_or_else(|| panic!("404 link {href:?} outside {base}"));
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-~%/".contains(&b)),
        "404 link {href:?} is not encoded"
    );
    assert_eq!(decode_path(encoded).as_deref(), Ok(name), "{href:?}");
}

/// Options that parsed: the depth within its bound, and the query of a paging link
/// written from them parses back to the same options on that page.
fn check_options(query: &str, options: &Options) {
    assert!(options.depth <= MAX_DEPTH, "{query:?} -> {options:?}");
    for page in [1, 7, u64::MAX] {
        let written = options.query_for_page(page);
        let again = parse_options(&written)
            .unwrap_or_else(|e| panic!("{query:?} -> {written:?} does not parse: {e:?}"));
        let expected = Options {
            list: ListOptions {
                page: Some(page),
                per_page: Some(options.list.per_page.unwrap_or(DEFAULT_PER_PAGE)),
                ..options.list.clone()
            },
            ..options.clone()
        };
        assert_eq!(again, expected, "{query:?} -> {written:?}");
    }
}

/// The list options against a slow oracle. Input: `query \n name \n name ...`; the
/// names (sorted, distinct) are one list, each with numbers for every key derived from
/// its bytes (ties and unknown values included). Whatever the query, `Orders::select`
/// gives what sorting, filtering, limiting and paging the list by hand gives, and a
/// sort key the list does not have is refused by `check`, never selected.
pub fn list_options(data: &[u8]) {
    let text = text(data);
    let (query, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut names: Vec<&str> = rest.split('\n').collect();
    names.sort_unstable();
    names.dedup();
    let names = &names[..names.len().min(200)];
    let keys = crate::usage::order::REPOSITORY_KEYS;
    // Small numbers from the name's bytes, so that ties are common; 0 is unknown.
    let value = |key: SortKey, i: u32| -> Option<u64> {
        let name = names[i as usize].as_bytes();
        let k = keys.iter().position(|&k| k == key).unwrap_or(0);
        let v = name.get(k).map_or(0, |&b| u64::from(b % 4));
        (v > 0).then_some(v)
    };
    let options = match parse_options(query) {
        Ok(options) => options.list,
        Err(_) => return,
    };
    if let Err(e) = options.check(keys) {
        let sort = options.sort.expect("only the sort key is checked");
        assert!(!keys.contains(&sort.key));
        assert!(e.contains(sort.key.as_str()), "{e}");
        return;
    }
    let orders = Orders::build(vec![0, names.len() as u32].into(), None, keys, value);
    let selection = orders.select(0, &options, value, |i| names[i as usize]);

    // The oracle.
    let sort = options.sort.unwrap_or(Sort {
        key: SortKey::Name,
        descending: false,
    });
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    if sort.key != SortKey::Name {
        // Stable: ties stay in name order, both ways.
        if sort.descending {
            order.sort_by_key(|&i| std::cmp::Reverse(value(sort.key, i)));
        } else {
            order.sort_by_key(|&i| value(sort.key, i));
        }
    } else if sort.descending {
        order.reverse();
    }
    let q = options.q.as_deref().unwrap_or("");
    let mut matching: Vec<u32> = order
        .into_iter()
        .filter(|&i| names[i as usize].to_ascii_lowercase().contains(q))
        .collect();
    let limit = options.limit.unwrap_or(u64::MAX);
    matching.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    assert_eq!(selection.count, matching.len(), "{query:?}");
    if options.paged() {
        let per_page = options.per_page.unwrap_or(DEFAULT_PER_PAGE);
        let number = options.page.unwrap_or(1);
        let page = selection.page.expect("a paged selection has a page");
        assert_eq!((page.number, page.per_page), (number, per_page));
        let count = matching.len() as u64;
        assert_eq!(page.last, count.div_ceil(per_page).max(1));
        let from = (u128::from(number) - 1) * u128::from(per_page);
        let to = (from + u128::from(per_page)).min(u128::from(count));
        let from = from.min(u128::from(count));
        matching = matching[from as usize..to as usize].to_vec();
    } else {
        assert_eq!(selection.page, None);
    }
    assert_eq!(selection.items, matching, "{query:?}");
}

// ---- credentials and tokens ---------------------------------------------------------

/// `Authorization: Basic` parsing, and base64 both ways: whatever `user:password` text
/// a client encodes comes back split at its first colon.
pub fn basic(data: &[u8]) {
    let header = text(data);
    if let Some((user, password)) = parse_basic(&header) {
        assert!(!user.contains(':'), "{header:?} -> user {user:?}");
        let _ = password;
    }
    assert_eq!(
        crate::base64::decode(&crate::base64::encode(data)).as_deref(),
        Some(data)
    );
    let encoded = format!("Basic {}", crate::base64::encode(header.as_bytes()));
    let expected = header
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()));
    assert_eq!(parse_basic(&encoded), expected, "{header:?}");
}

/// The secret of the fuzzed token checks (32 bytes, not the placeholder).
const SECRET: &str = "fuzzing-secret-0123456789abcdefXY";

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        Tokens::new(&Jwt {
            auth_token_expires: std::time::Duration::from_secs(3600),
            secret_key: SECRET.into(),
        })
        .expect("a valid fuzzing secret")
    })
}

/// Any `Authorization` header: refused with a 401 unless it carries a token signed with
/// the key, and an accepted one names someone.
pub fn bearer(data: &[u8]) {
    match tokens().verify(Some(&text(data))) {
        Ok(identity) => assert!(!identity.is_empty()),
        Err(e) => assert_eq!(e.status, 401),
    }
}

/// base64url without padding (JWT segments).
fn base64url(bytes: &[u8]) -> String {
    crate::base64::encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// `header.payload.signature` signed with [`SECRET`], whatever header and payload are.
fn signed_token(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", base64url(header), base64url(payload));
    let key = jwt_simple::prelude::HS256Key::from_bytes(SECRET.as_bytes());
    let tag = key.authentication_tag(input.as_bytes());
    format!("{input}.{}", base64url(&tag))
}

const JOSE_HS256: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// A valid token for `alice`, fixed (no clock, no random `jti`) so that edits of it are
/// reproducible: expires in 2100.
fn alice_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        signed_token(
            JOSE_HS256,
            br#"{"iat":1700000000,"nbf":1700000000,"exp":4102444800,"jti":"0b8f6f8e-1c1a-4c8e-9a47-3c0d2c6e8f10","identity":"alice","sub":"alice","type":"access","fresh":false}"#,
        )
    })
}

/// Tokens signed with the right key but with fuzzed claims (first byte `0`, then
/// `payload` or `header \n payload`), and edits of a valid token (first byte `1`, then
/// pairs of position and byte). An accepted token must deserve it: it has a future
/// `exp`, no `type` but `access`, and names the identity the claims hold; an edited
/// token is refused or still names `alice`.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (JOSE_HS256, rest),
        };
        let token = signed_token(header, payload);
        if let Ok(identity) = tokens().verify(Some(&format!("Bearer {token}"))) {
            check_accepted_claims(header, payload, &identity);
        }
    } else {
        let mut token = alice_token().as_bytes().to_vec();
        for edit in rest.chunks_exact(2) {
            let at = usize::from(edit[0]) % token.len();
            token[at] = edit[1];
        }
        if let Ok(identity) = tokens().verify(Some(&format!("Bearer {}", text(&token)))) {
            assert_eq!(identity, "alice", "{:?}", text(&token));
        }
    }
}

fn check_accepted_claims(header: &[u8], payload: &[u8], identity: &str) {
    // serde_json skips the string of a field it does not read without checking its
    // UTF-8, so a signed header or claims set may hold bytes that are not UTF-8 there
    // (in `crit`, say); read them as the token's reader did, the rest as text.
    let header: serde_json::Value =
        serde_json::from_str(&text(header)).expect("accepted header is JSON");
    assert_eq!(header["alg"], "HS256", "{header}");
    let claims: serde_json::Value =
        serde_json::from_str(&text(payload)).expect("accepted claims are JSON");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as f64;
    // Any JSON number, as PyJWT takes it (a fraction, or one past u64: a token minted
    // with our key that expires in the far future is still ours).
    let exp = claims["exp"]
        .as_f64()
        .unwrap_or_else(|| panic!("accepted without a numeric exp: {claims}"));
    assert!(exp + 60.0 >= now, "accepted expired {claims}");
    for not_before in ["nbf", "iat"] {
        if let Some(t) = claims.get(not_before).and_then(serde_json::Value::as_f64) {
            assert!(
                t <= now + 60.0,
                "accepted {not_before} in the future: {claims}"
            );
        }
    }
    match claims.get("type") {
        None => {}
        Some(t) => assert_eq!(t, "access", "accepted type {t}"),
    }
    let expected = match claims.get("identity") {
        Some(serde_json::Value::String(i)) => Some(i.as_str()),
        _ => claims.get("sub").and_then(serde_json::Value::as_str),
    };
    assert_eq!(Some(identity), expected, "{claims}");
    assert!(!identity.is_empty());
}

// ---- registry answers -----------------------------------------------------------------

/// `WWW-Authenticate`: schemes and parameter names are lower-case tokens, and writing
/// the challenges back out (values quoted and escaped) parses to the same challenges.
pub fn www_authenticate(data: &[u8]) {
    let header = text(data);
    let challenges = challenge::parse(&header);
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                (b.is_ascii_alphanumeric() && !b.is_ascii_uppercase())
                    || b"!#$%&'*+-.^_`|~".contains(&b)
            })
    };
    for c in &challenges {
        assert!(is_token(&c.scheme), "{header:?} -> scheme {:?}", c.scheme);
        for (name, _) in &c.params {
            assert!(is_token(name), "{header:?} -> param {name:?}");
        }
    }
    let written = write_challenges(&challenges);
    assert_eq!(
        challenge::parse(&written),
        challenges,
        "{header:?} -> {written:?}"
    );
}

fn write_challenges(challenges: &[Challenge]) -> String {
    let mut out = String::new();
    for (i, c) in challenges.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&c.scheme);
        for (j, (name, value)) in c.params.iter().enumerate() {
            out.push_str(if j == 0 { " " } else { ", " });
            out.push_str(name);
            out.push_str("=\"");
            for ch in value.chars() {
                if ch == '"' || ch == '\\' {
                    out.push('\\');
                }
                out.push(ch);
            }
            out.push('"');
        }
    }
    out
}

/// The registry client the `Link` check resolves against.
fn link_client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let (config, _) =
            Config::parse("[registry]\nregistry_base_url = https://registry.example.com:5000/\n")
                .expect("the fuzzing registry config");
        Client::new(&config.registry).expect("a registry client")
    })
}

/// `Link` pagination: a `rel="next"` target comes back as written (trimmed), and the URL
/// it resolves to never leaves the registry's origin, neither by our reading of it nor
/// by the URL parser of the HTTP client that would send the credentials.
pub fn link(data: &[u8]) {
    let header = text(data);
    let client = link_client();
    if let Some(target) = next_link(&header) {
        assert_eq!(target, target.trim());
        assert!(header.contains(&target), "{header:?} -> {target:?}");
        if let Some(url) = client.resolve(&target) {
            assert_eq!(
                origin_of(&url),
                "https://registry.example.com:5000",
                "{url:?}"
            );
            if let Ok(uri) = url.parse::<ureq::http::Uri>() {
                let authority = uri.authority().map(|a| a.as_str().to_ascii_lowercase());
                assert_eq!(
                    authority.as_deref(),
                    Some("registry.example.com:5000"),
                    "{target:?} -> {url:?} -> {uri:?}"
                );
            }
        }
    }
    // Any target without the delimiters comes back from a well-formed header.
    let target = header.trim();
    if !target.is_empty() && !target.contains(['<', '>', ',']) {
        for written in [
            format!("<{target}>; rel=\"next\""),
            format!("<https://r/a>; rel=\"prev\", <{target}>;rel=next"),
        ] {
            assert_eq!(next_link(&written).as_deref(), Some(target), "{written:?}");
        }
    }
}

/// The `Content-Type` the manifest check pairs with a body, chosen by the first byte.
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some(manifest::OCI_INDEX),
    Some(manifest::OCI_MANIFEST),
    Some(manifest::DOCKER_LIST),
    Some(manifest::DOCKER_V2),
    Some(manifest::DOCKER_V1),
    Some(manifest::DOCKER_V1_SIGNED),
    Some("application/json"),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some("APPLICATION/VND.DOCKER.DISTRIBUTION.MANIFEST.LIST.V2+JSON"),
];

/// Manifests of every media type: whatever is accepted holds only digests a scan may put
/// into a URL, sizes a registry can have written, and digests that read back exactly.
pub fn manifest(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    match manifest::parse(content_type, body) {
        Ok(Manifest::Image { layers, config }) => {
            if let Some(c) = config {
                assert!(manifest::valid_digest(&c), "{c:?}");
            }
            for l in layers {
                let d = l.digest.to_string();
                assert!(manifest::valid_digest(&d), "{d:?}");
                assert!(l.size <= i64::MAX as u64);
                assert_eq!(Digest::parse(&d), l.digest);
            }
        }
        Ok(Manifest::Index(digests) | Manifest::Schema1 { sums: digests, .. }) => {
            for d in digests {
                assert!(manifest::valid_digest(&d), "{d:?}");
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
}

// ---- files: snapshot, history, config, CIDR lists, htpasswd -----------------------------

/// The snapshot file: what loads is consistent (indices in range, names sorted and
/// distinct, totals the sums of the sizes, saturating), its usage index agrees with it,
/// and saving it and loading that again gives the same snapshot and the same bytes.
pub fn snapshot(data: &[u8]) {
    let path = std::path::Path::new("snapshot");
    // The service's batches (this whole input, read on this thread) and one repository
    // a batch (read on helper threads): the same snapshot, or the same error.
    let in_one = load_open(data, path);
    let in_many = load_in_batches(data, path, 1);
    let first = match (in_one, in_many) {
        (Ok(s), Ok(many)) => {
            assert_eq!(s.repositories, many.repositories);
            assert_eq!((&s.blobs, &s.totals), (&many.blobs, &many.totals));
            assert_eq!(s.timestamp.to_bits(), many.timestamp.to_bits());
            s
        }
        (Err(e), Err(many)) => {
            assert!(e.to_string().starts_with("snapshot"), "{e}");
            assert_eq!(e.to_string(), many.to_string());
            return;
        }
        (one, many) => panic!(
            "one batch: {:?}, many: {:?}",
            one.map(|s| s.totals),
            many.map(|s| s.totals)
        ),
    };
    check_snapshot(&first);
    let mut saved = Vec::new();
    write_to(&first, &mut saved).expect("writing to memory");
    let second = load_open(&saved[..], path)
        .unwrap_or_else(|e| panic!("a saved snapshot does not load: {e}"));
    assert_eq!(first.timestamp.to_bits(), second.timestamp.to_bits());
    assert_eq!(first.blobs, second.blobs);
    assert_eq!(first.repositories, second.repositories);
    assert_eq!(first.totals, second.totals);
    let mut again = Vec::new();
    write_to(&second, &mut again).expect("writing to memory");
    assert!(saved == again, "saving a loaded snapshot changed its bytes");
}

fn check_snapshot(s: &Snapshot) {
    assert!(s.repositories.windows(2).all(|w| w[0].name < w[1].name));
    let mut tag_sizes = Vec::new();
    let mut tag_count = 0;
    let mut used = vec![false; s.blobs.len()];
    for r in &s.repositories {
        let Some(tags) = &r.tags else {
            assert_eq!((r.size, r.disk_size), (None, None));
            continue;
        };
        tag_count += tags.len();
        assert!(tags.windows(2).all(|w| w[0].name < w[1].name));
        for t in tags {
            let layers = r.layers_of(t);
            assert!(layers.windows(2).all(|w| w[0] < w[1]));
            assert!(layers.iter().all(|&l| (l as usize) < s.blobs.len()));
            let size = saturating_sum(layers.iter().map(|&l| s.blobs[l as usize].size));
            assert_eq!(t.size, size);
            assert!(t.disk_size <= t.size);
            tag_sizes.push(size);
            for &l in layers {
                used[l as usize] = true;
            }
        }
        assert_eq!(r.size, Some(saturating_sum(tags.iter().map(|t| t.size))));
    }
    assert!(used.iter().all(|&u| u), "a blob no tag uses was kept");
    assert_eq!(s.totals.repository_count, s.repositories.len());
    assert_eq!(s.totals.tag_count, tag_count);
    assert_eq!(s.totals.size, saturating_sum(tag_sizes));
    // Every blob has one owner: disk_size counts each once.
    let disk = saturating_sum(s.blobs.iter().map(|b| b.size));
    assert_eq!(s.totals.disk_size, disk);

    // The index: the same distinct bytes, each repository within its own bounds, and
    // deleting every tag frees everything.
    let usage = Usage::of(s);
    assert_eq!(usage.deduplicated_size(), disk);
    for (i, r) in s.repositories.iter().enumerate() {
        let u = usage.repository(i);
        assert!(u.exclusive_size <= u.deduplicated_size, "{:?}", r.name);
        assert!(u.deduplicated_size <= r.size.unwrap_or(0), "{:?}", r.name);
    }
    for n in usage.namespaces() {
        assert!(n.exclusive_size <= n.deduplicated_size, "{:?}", n.name);
        assert!(n.deduplicated_size <= n.size, "{:?}", n.name);
    }
    let every_tag = s
        .repositories
        .iter()
        .enumerate()
        .flat_map(|(r, repo)| (0..repo.tags.as_ref().map_or(0, Vec::len)).map(move |t| (r, t)));
    assert_eq!(usage.freed_by(s, every_tag), disk);
}

/// The MAGIC of a history file (`src/history.rs`).
const HISTORY_MAGIC: &[u8] = b"GRUHIST1";

/// The history file as `History::open` loads it. Input: first byte even → the rest is
/// the whole file; odd → the file is the magic and records the check frames itself
/// (each a length byte and that many payload bytes, with a right checksum; the fuzzer
/// could not compute CRC-32s), so the records' contents are fuzzed, not their frames.
/// Second byte: `history_days`. Whatever loads: every series has points, days strictly
/// increasing and within the retention; the good prefix loads to the same history; and
/// the compacted file loads whole to the same history and compacts to the same bytes.
pub fn history(data: &[u8]) {
    let [mode, days, rest @ ..] = data else {
        return;
    };
    let days = u32::from(*days) * 4 + 1;
    const TODAY: u32 = 20_000;
    let file: Cow<'_, [u8]> = if mode % 2 == 0 {
        Cow::Borrowed(rest)
    } else {
        let mut file = HISTORY_MAGIC.to_vec();
        let mut at = 0;
        while let Some(&len) = rest.get(at) {
            let payload = &rest[at + 1..(at + 1 + usize::from(len)).min(rest.len())];
            file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            file.extend_from_slice(&history::crc32(payload).to_le_bytes());
            file.extend_from_slice(payload);
            at += 1 + payload.len();
        }
        Cow::Owned(file)
    };
    let Some((loaded, good, compacted)) = history::load_bytes(&file, days, TODAY) else {
        assert!(!file.starts_with(HISTORY_MAGIC));
        return;
    };
    assert!(good >= HISTORY_MAGIC.len() && good <= file.len());
    let all = loaded.all_points();
    let oldest = (TODAY + 1).saturating_sub(days);
    for (kind, name, points) in &all {
        assert!(!points.is_empty(), "{kind:?} {name:?} has no points");
        assert!(points.windows(2).all(|w| w[0].day < w[1].day), "{points:?}");
        assert!(points[0].day >= oldest, "{points:?}");
        assert_eq!(loaded.points(*kind, name, None).as_ref(), Some(points));
        let last = points[points.len() - 1];
        match loaded.growth(*kind, name) {
            Some(g) => {
                let base = growth_base_of(points, last.day).expect("a base point");
                let difference = i128::from(last.numbers.deduplicated_size) - i128::from(base);
                assert_eq!(
                    i128::from(g),
                    difference.clamp(i64::MIN.into(), i64::MAX.into())
                );
            }
            None => assert_eq!(growth_base_of(points, last.day), None),
        }
    }
    let (prefix, prefix_good, prefix_compacted) =
        history::load_bytes(&file[..good], days, TODAY).expect("the good prefix is a history");
    assert_eq!(prefix_good, good);
    assert_eq!(prefix.all_points(), all);
    assert_eq!(prefix_compacted, compacted);
    let (again, again_good, again_compacted) =
        history::load_bytes(&compacted, days, TODAY).expect("a compacted file is a history");
    assert_eq!(again_good, compacted.len(), "a compacted file loads whole");
    assert_eq!(again.all_points(), all);
    assert_eq!(again_compacted, compacted);
}

/// The deduplicated size of the newest point at least `GROWTH_DAYS` before `day`.
fn growth_base_of(points: &[Point], day: u32) -> Option<u64> {
    let cutoff = day.checked_sub(history::GROWTH_DAYS)?;
    points
        .iter()
        .rev()
        .find(|p| p.day <= cutoff)
        .map(|p| p.numbers.deduplicated_size)
}

/// Whether `message` starts by naming where the problem is: `line N:` of the file (N a
/// line it has), or `[section] key` of a key the service knows.
fn names_its_place(message: &str, line_count: usize) -> bool {
    if let Some(rest) = message.strip_prefix("line ") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return digits
            .parse::<usize>()
            .is_ok_and(|n| n >= 1 && n <= line_count)
            && rest[digits.len()..].starts_with([':', ' ']);
    }
    let Some((section, rest)) = message.strip_prefix('[').and_then(|m| m.split_once("] ")) else {
        return false;
    };
    let key: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    keys::find(section, &key).is_some()
}

/// INI text that `parse_ini` reads back as `ini`: values escaped (`%%`), their further
/// lines indented.
fn write_ini(ini: &Ini) -> String {
    let mut out = String::new();
    for (section, entries) in ini {
        out.push_str(&format!("[{section}]\n"));
        for (key, value) in entries {
            let value = value.replace('%', "%%").replace('\n', "\n  ");
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    out
}

/// The INI config: never a panic; an error names the line or the section and key; the
/// raw INI written back reads the same; every unknown entry is really unknown and its
/// suggestion a known name; a config that parses is normalised as the rest of the
/// service expects.
pub fn config(data: &[u8]) {
    let text = text(data);
    let line_count = text.lines().count();
    if let Ok(ini) = parse_ini(&text) {
        let written = write_ini(&ini);
        assert_eq!(parse_ini(&written).as_ref().ok(), Some(&ini), "{written:?}");
    }
    match Config::parse(&text) {
        Err(e) => assert!(names_its_place(&e.0, line_count), "{e}"),
        Ok((config, unknown)) => {
            for u in &unknown {
                check_unknown(u);
            }
            let general = &config.general;
            let prefix = &general.server_prefix;
            assert!(prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/')));
            assert!(config.registry.registry_base_url.ends_with('/'));
            assert!(config.registry.gitlab_base_url.ends_with('/'));
            assert!(!general.refresh_interval.is_zero());
            assert!(general.role == Role::Both || general.snapshot_file.is_some());
            assert!(general.snapshot_file.is_none() || general.history_file.is_some());
            assert_eq!(
                general.tls_certificate_file.is_some(),
                general.tls_key_file.is_some()
            );
            assert!(!general.cors_origin.contains(['\r', '\n']));
            assert!(
                config.ldap.url.starts_with("ldap://") || config.ldap.url.starts_with("ldaps://")
            );
            if let Err(e) = config.check_serving() {
                assert!(e.0.starts_with("[jwt] secret_key "), "{e}");
            }
        }
    }
}

fn check_unknown(u: &crate::config::Unknown) {
    let entry = u.entry.strip_prefix('[').unwrap_or_else(|| panic!("{u:?}"));
    if u.is_section {
        let section = entry.strip_suffix(']').unwrap_or_else(|| panic!("{u:?}"));
        assert!(!keys::SECTIONS.contains(&section), "{u:?}");
        if let Some(s) = &u.suggestion {
            let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
            assert!(s.is_some_and(|s| keys::SECTIONS.contains(&s)), "{u:?}");
        }
    } else {
        let (section, key) = entry.split_once("] ").unwrap_or_else(|| panic!("{u:?}"));
        assert!(keys::SECTIONS.contains(&section), "{u:?}");
        assert!(keys::find(section, key).is_none(), "{u:?}");
        if let Some(s) = &u.suggestion {
            let known = match s.strip_prefix('[').and_then(|s| s.split_once("] ")) {
                Some((other, name)) => keys::find(other, name).is_some(),
                None => keys::find(section, s).is_some(),
            };
            assert!(known, "{u:?}");
        }
    }
    assert!(u.to_string().starts_with(&u.entry));
}

/// CIDR lists (`trusted_proxies`, `[metrics] allow`): every range written back parses to
/// itself, as does the list; its network address is inside, the addresses just outside
/// it are not; and `contains` agrees with a comparison of the leading bits for an address
/// taken from the input (IPv4-mapped IPv6 counting as IPv4). An error quotes an entry of
/// the text.
pub fn cidr(data: &[u8]) {
    let text = text(data);
    // An address to test membership with: the last 16 bytes (as IPv6, and the last 4 as
    // IPv4), so the fuzzer can steer it.
    let mut tail = [0u8; 16];
    let n = data.len().min(16);
    tail[16 - n..].copy_from_slice(&data[data.len() - n..]);
    let v6 = std::net::Ipv6Addr::from(tail);
    let v4 = std::net::Ipv4Addr::new(tail[12], tail[13], tail[14], tail[15]);
    let list: CidrList = match text.parse() {
        Ok(list) => list,
        Err(e) => {
            assert!(
                text.split(|c: char| c == ',' || c.is_whitespace())
                    .any(|entry| entry == e.entry),
                "{e}"
            );
            assert!(!e.problem.is_empty());
            return;
        }
    };
    let written: Vec<String> = list.ranges().iter().map(Cidr::to_string).collect();
    assert_eq!(written.join(", ").parse::<CidrList>().as_ref(), Ok(&list));
    for (range, w) in list.ranges().iter().zip(&written) {
        assert_eq!(w.parse::<Cidr>().as_ref(), Ok(range), "{w}");
        let (network, prefix) = w.split_once('/').expect("written with a prefix");
        let network: IpAddr = network.parse().expect("an address");
        let prefix: u32 = prefix.parse().expect("a prefix length");
        assert!(range.contains(network), "{w}");
        let (bits, width) = match network {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        let host_bits = width - prefix;
        let span = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let address = |bits: u128| -> IpAddr {
            match network {
                IpAddr::V4(_) => IpAddr::V4((bits as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(bits.into()),
            }
        };
        assert!(range.contains(address(bits | span)), "{w}: last address");
        if bits > 0 {
            assert!(!range.contains(address(bits - 1)), "{w}: before it");
        }
        let max = if width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        if bits | span < max {
            assert!(!range.contains(address((bits | span) + 1)), "{w}: after it");
        }
        for ip in [IpAddr::V4(v4), IpAddr::V6(v6)] {
            assert_eq!(
                range.contains(ip),
                in_range(network, prefix, ip),
                "{w} {ip}"
            );
        }
    }
    for ip in [IpAddr::V4(v4), IpAddr::V6(v6)] {
        assert_eq!(
            list.contains(ip),
            list.ranges().iter().any(|r| r.contains(ip))
        );
    }
}

/// The oracle of `Cidr::contains`: the first `prefix` bits agree, an IPv4 address
/// compared with an IPv6 range as its mapped form and the other way round.
fn in_range(network: IpAddr, prefix: u32, ip: IpAddr) -> bool {
    let as_v6 = |ip: IpAddr| -> u128 {
        match ip {
            IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            IpAddr::V6(a) => u128::from(a),
        }
    };
    let prefix = if network.is_ipv4() {
        prefix + 96
    } else {
        prefix
    };
    let differing = as_v6(network) ^ as_v6(ip);
    prefix == 0 || differing >> (128 - prefix) == 0
}

/// htpasswd files (parsing only: bcrypt runs at login, and is slow by design): every
/// entry line becomes a user or the whole file is refused with an error that names the
/// line and never contains a hash.
pub fn htpasswd(data: &[u8]) {
    let text = text(data);
    let entries: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(':').unwrap_or((l, "")))
        .collect();
    match HtpasswdFile::parse(&text) {
        Ok(file) => {
            assert_eq!(file.users.len(), entries.len());
            for (user, hash) in &entries {
                assert_eq!(file.users.get(*user).map(String::as_str), Some(*hash));
            }
            assert!(
                bcrypt_cost(&file.dummy_hash).is_some(),
                "{}",
                file.dummy_hash
            );
        }
        Err(e) => {
            assert!(names_its_place(&e, text.lines().count()), "{e}");
            // The line the error names (parsing stops there): its hash is not in the
            // message, apart from what the user name, quoted in it, holds.
            let line: usize = e["line ".len()..]
                .split([':', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .expect("checked above");
            let raw = text
                .lines()
                .nth(line - 1)
                .expect("a line the file has")
                .trim();
            let (user, hash) = raw.split_once(':').unwrap_or((raw, ""));
            // Beyond the quoted user name, the message is one of the parser's sentences
            // with nothing but numbers (line, cost, bounds) filled in: no hash, and no
            // password someone wrote where the hash belongs, can be in it. (Searching
            // the message for the hash fails when the "hash" is those very words.)
            let without_user = e.replacen(&format!("{user:?}"), "U", 1);
            assert!(
                HTPASSWD_ERRORS
                    .iter()
                    .any(|m| only_numbers_differ(m, &without_user)),
                "the error says more than its sentence: {e} (hash {hash:?})"
            );
        }
    }
}

/// The messages of `HtpasswdFile::parse`, with `U` for the quoted user name and `0` for
/// each number.
const HTPASSWD_ERRORS: &[&str] = &[
    "line 0: expected `user:hash`",
    "line 0: empty user name",
    "line 0 (user U): not a bcrypt hash ($0y$/$0b$/$0a$); only bcrypt is accepted: create the entry with `htpasswd -B`",
    "line 0 (user U): bcrypt cost 0 is outside 0..=0",
    "line 0: user U is listed twice",
];

/// `pattern` and `message` are the same apart from numbers (`0` in `pattern`, any run
/// of digits in `message`).
fn only_numbers_differ(pattern: &str, message: &str) -> bool {
    let mut out = String::with_capacity(message.len());
    let mut in_number = false;
    for c in message.chars() {
        let digit = c.is_ascii_digit();
        if !(digit && in_number) {
            out.push(if digit { '0' } else { c });
        }
        in_number = digit;
    }
    out == pattern
}

// ---- encodings --------------------------------------------------------------------------

/// Percent-encoding: anything encoded decodes back (path and query rules), the encoding
/// is plain unreserved ASCII, and strict path decoding fails exactly when an escape is
/// malformed or the bytes are not UTF-8.
pub fn percent(data: &[u8]) {
    let s = text(data);
    let encoded = Encoded(&s).to_string();
    let mut into = Vec::new();
    encode_into(&mut into, &s);
    assert_eq!(into, encoded.as_bytes());
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-~%".contains(&b)));
    assert_eq!(decode_path(&encoded).as_deref(), Ok(&*s));
    assert_eq!(decode_query_component(&encoded), s);

    // The oracle: strict decoding written the slow way.
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut bad_escape = false;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match std::str::from_utf8(&bytes[i + 1..bytes.len().min(i + 3)])
                .ok()
                .filter(|h| h.len() == 2)
                .and_then(|h| {
                    u8::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| !h.starts_with('+'))
                }) {
                Some(b) => out.push(b),
                None => {
                    bad_escape = true;
                    break;
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let expected = if bad_escape {
        Err(DecodeError::BadEscape)
    } else {
        String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
    };
    let decoded = decode_path(&s);
    assert_eq!(
        decoded.as_deref().map_err(|e| *e),
        expected.as_deref().map_err(|e| *e)
    );
    if !s.contains('%') {
        assert!(matches!(decoded, Ok(Cow::Borrowed(_))));
    }
    let query = decode_query_component(&s);
    if !s.contains(['%', '+']) {
        assert!(matches!(query, Cow::Borrowed(q) if q == s));
    }
}

/// Digests read back byte for byte, through `Display` and through serde, and are held
/// as 32 bytes exactly when they are `sha256:` and 64 lower-case hex digits.
pub fn digest(data: &[u8]) {
    let s = text(data);
    let d = Digest::parse(&s);
    assert_eq!(d.to_string(), s);
    assert_eq!(Digest::from(s.to_string()), d);
    let json = serde_json::to_string(&d).expect("a digest serializes");
    assert_eq!(
        json,
        serde_json::to_string(&*s).expect("a string serializes")
    );
    let back: Digest = serde_json::from_str(&json).expect("a serialized digest reads back");
    assert_eq!(back, d);
    let canonical = s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    assert_eq!(matches!(d, Digest::Sha256(_)), canonical, "{s:?}");
}

// ---- cleanup preview: the policy query, image dates, the verdict --------------------------

/// The cleanup-preview query and what it is applied to. Input: `query \n date \n tag...`.
/// The query's policy is refused with a message that starts with the parameter at fault,
/// or parsed so that its canonical text means what the query says (blank = not given, the
/// first occurrence counts, `name_regex_delete` before `name_regex`). The date line is an
/// image config's `created` (`config_created` of a JSON document holding it): one that
/// parses is written back in UTC and parses to the same second, the same as read directly.
/// The verdict on the tag lines (sorted, distinct; `created` derived from each name's
/// bytes so that ties and missing dates are common) at a `now` taken from the input is what
/// a slow oracle following GitLab's rules gives, and every tag is judged exactly once.
pub fn cleanup(data: &[u8]) {
    let text = text(data);
    let mut lines = text.split('\n');
    let query = lines.next().unwrap_or("");
    let date = lines.next().unwrap_or("");
    check_date(date);
    let _ = crate::cleanup::scope_of(query);
    let policy = match crate::cleanup::policy_of(query) {
        Ok(policy) => policy,
        Err(e) => {
            assert!(
                ["name_regex", "name_regex_keep", "keep_n", "older_than"]
                    .iter()
                    .any(|p| e.0.starts_with(&format!("{p} "))),
                "{e}"
            );
            return;
        }
    };
    check_policy_text(query, &policy);
    let mut names: Vec<&str> = lines.collect();
    names.sort_unstable();
    names.dedup();
    let seed = data
        .iter()
        .fold(0u64, |h, &b| h.rotate_left(5) ^ u64::from(b));
    let now = 1_000 + (seed % 64) as i64 * 100;
    let tags: Vec<crate::snapshot::Tag> = names
        .iter()
        .map(|name| {
            let h = name
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b));
            crate::snapshot::Tag {
                name: (*name).into(),
                digest: None,
                layers: Default::default(),
                size: 0,
                disk_size: 0,
                // Every fourth without a date; the others on a coarse grid around `now`.
                created: (h % 4 != 0).then(|| i64::from(h % 32) * 100),
            }
        })
        .collect();
    let (deleted, kept) = crate::cleanup::judge(&tags, &policy, now);
    let (want_deleted, want_kept) = judge_slowly(&tags, &policy, now);
    assert_eq!(deleted, want_deleted, "deleted, newest first");
    let kept: Vec<(u32, &str)> = kept.into_iter().map(|(i, r)| (i, r.as_str())).collect();
    assert_eq!(kept, want_kept, "kept, in name order, with reasons");
}

/// An image config's `created`: parsed as RFC 3339 or not at all, and the same whether
/// read directly or out of a config document.
fn check_date(date: &str) {
    let direct = crate::rfc3339::parse(date);
    let document = serde_json::json!({ "created": date }).to_string();
    assert_eq!(
        manifest::config_created(document.as_bytes()),
        direct,
        "{date:?}"
    );
    if let Some(seconds) = direct {
        let written = crate::rfc3339::format(seconds);
        assert_eq!(
            crate::rfc3339::parse(&written),
            Some(seconds),
            "{date:?} {written}"
        );
        assert_eq!(written.len(), 20, "{written}");
        // Only the fraction, the offset and a leap second (the second after it) may
        // differ: a date in UTC without them comes back as it was written.
        if date.len() == 20 && date.ends_with(['Z', 'z']) && !date[17..].starts_with("60") {
            assert!(
                written.eq_ignore_ascii_case(&date.replace([' ', 't'], "T")),
                "{date:?} {written}"
            );
        }
    }
}

/// The policy's canonical text holds what the query says.
fn check_policy_text(query: &str, policy: &crate::cleanup::Policy) {
    let pairs = crate::cleanup::query_pairs(query);
    let first = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    };
    let text = &policy.text;
    let delete = first("name_regex_delete").or(first("name_regex"));
    assert_eq!(text.name_regex.as_deref(), delete);
    assert_eq!(policy.delete.is_some(), delete.is_some());
    assert_eq!(text.name_regex_keep.as_deref(), first("name_regex_keep"));
    assert_eq!(policy.keep.is_some(), text.name_regex_keep.is_some());
    assert_eq!(text.older_than.as_deref(), first("older_than"));
    assert_eq!(
        policy.older_than,
        text.older_than
            .as_deref()
            .map(|t| crate::cleanup::parse_older_than(t).expect("a duration"))
    );
    assert!(policy.older_than.unwrap_or(0) >= 0);
    let keep_n = pairs
        .iter()
        .find(|(k, _)| k == "keep_n")
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty());
    assert_eq!(
        text.keep_n,
        keep_n.map(|v| v.parse::<u64>().expect("a count"))
    );
    assert_eq!(policy.keep_n, text.keep_n);
}

/// GitLab's rules as the module documents them, written the slow way: the deleted tags
/// newest first (ties by name), the kept ones in name order with their reason.
fn judge_slowly(
    tags: &[crate::snapshot::Tag],
    policy: &crate::cleanup::Policy,
    now: i64,
) -> (Vec<u32>, Vec<(u32, &'static str)>) {
    // The pattern as given, unanchored: what an anchored match matches, it finds too.
    let loose = |r: &Option<regex::Regex>| {
        r.as_ref().map(|r| {
            let inner = &r.as_str()[r"\A(?:".len()..r.as_str().len() - r")\z".len()];
            regex::Regex::new(inner).expect("compiled once already")
        })
    };
    let (loose_delete, loose_keep) = (loose(&policy.delete), loose(&policy.keep));
    let whole = |r: &Option<regex::Regex>, loose: &Option<regex::Regex>, name: &str| {
        let anchored = r.as_ref().is_some_and(|r| r.is_match(name));
        if anchored {
            assert!(loose.as_ref().is_some_and(|l| l.is_match(name)), "{name:?}");
        }
        anchored
    };
    let mut reasons: Vec<Option<&'static str>> = vec![None; tags.len()];
    let mut candidates = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let name: &str = &tag.name;
        reasons[i] = if name == "latest" {
            Some("latest")
        } else if !whole(&policy.delete, &loose_delete, name) {
            Some("not_matched")
        } else if whole(&policy.keep, &loose_keep, name) {
            Some("keep_regex")
        } else {
            candidates.push(i);
            None
        };
    }
    // Stable: equal dates stay in name order.
    candidates.sort_by(|&a, &b| {
        let date = |i: usize| tags[i].created.unwrap_or(now);
        date(b).cmp(&date(a))
    });
    let mut deleted = Vec::new();
    for (rank, &i) in candidates.iter().enumerate() {
        let reason = if (rank as u64) < policy.keep_n.unwrap_or(0) {
            Some("keep_n")
        } else {
            match (policy.older_than, tags[i].created) {
                (None, _) => None,
                (Some(_), None) => Some("no_date"),
                (Some(age), Some(created)) => {
                    (created >= now.saturating_sub(age)).then_some("too_new")
                }
            }
        };
        reasons[i] = reason;
        if reason.is_none() {
            deleted.push(i as u32);
        }
    }
    let kept = reasons
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (i as u32, r)))
        .collect();
    (deleted, kept)
}

// ---- the request-head reader of the vendored tiny_http ------------------------------------

/// Longest input fed to tiny_http (above its 64 KiB head limit, within the socket
/// buffers its fuzzing entry point writes through).
const MAX_HTTP_INPUT: usize = 96 * 1024;
/// Most requests read from one input.
const MAX_HTTP_REQUESTS: usize = 64;

/// Raw bytes on a connection, read with the limits (`Limits::unlimited()` and a 4 KiB
/// body limit): every request tiny_http hands over stays within the head limits, has
/// only visible ASCII in its head and the body its `Content-Length` says, each gets
/// exactly its one answer, and everything else tiny_http writes is `100 Continue` or the
/// one refusal that ends the connection, after every answer (never a 500 for a request
/// dropped unanswered).
pub fn http_head(data: &[u8]) {
    let input = &data[..data.len().min(MAX_HTTP_INPUT)];
    let outcome = tiny_http::fuzzing::read_requests(input, MAX_HTTP_REQUESTS);
    let heads = input.windows(4).filter(|w| w == b"\r\n\r\n").count();
    assert!(outcome.requests.len() <= heads, "more requests than heads");
    let visible = |s: &str| s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    for r in &outcome.requests {
        assert!(r.url.len() <= 16 * 1024, "{} byte URL", r.url.len());
        assert!(visible(&r.url) && !r.url.contains(' '), "{:?}", r.url);
        assert!(r.headers.len() <= 100);
        for (name, value) in &r.headers {
            assert!(name.len() + 1 + value.len() <= 8 * 1024);
            assert!(visible(name) && visible(value), "{name:?}: {value:?}");
        }
        assert!(
            r.version == (1, 0) || r.version == (1, 1),
            "{:?}",
            r.version
        );
        let header = |wanted: &str| {
            r.headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.as_str())
        };
        let upgrade =
            header("connection").is_some_and(|c| c.to_ascii_lowercase().contains("upgrade"));
        if let (Some(length), false) = (header("content-length"), upgrade) {
            assert_eq!(Ok(r.body_len), length.parse::<usize>(), "{r:?}");
        }
        assert!(upgrade || r.body_len <= tiny_http::fuzzing::MAX_BODY);
    }
    let statuses = response_statuses(&outcome.written);
    let answered = statuses.iter().filter(|&&s| s == 204).count();
    assert_eq!(answered, outcome.requests.len(), "{statuses:?}");
    let refusals: Vec<usize> = (0..statuses.len())
        .filter(|&i| ![100, 204].contains(&statuses[i]))
        .collect();
    assert!(
        refusals.is_empty() || refusals == [statuses.len() - 1],
        "a refusal that is not the connection's last answer: {statuses:?}"
    );
    for s in &statuses {
        assert!(
            [100, 204, 400, 413, 414, 417, 431, 501, 505].contains(s),
            "tiny_http answered {s}: {statuses:?}"
        );
    }
}

/// The status codes of a stream of responses, each skipped by its `Content-Length`.
fn response_statuses(mut written: &[u8]) -> Vec<u16> {
    let mut statuses = Vec::new();
    while !written.is_empty() {
        let head_end = written
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a response without an end of head: {:?}", text(written)));
        let head = std::str::from_utf8(&written[..head_end]).expect("an ASCII response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .strip_prefix("HTTP/")
            .and_then(|v| v.get(4..7))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        statuses.push(status);
        let body_len: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse().expect("a Content-Length"));
        written = &written[(head_end + 4 + body_len).min(written.len())..];
    }
    statuses
}
