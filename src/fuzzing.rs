//! The checks behind the fuzz targets in `fuzz/` (cargo-fuzz, `make fuzz`), one function
//! per parser of untrusted input. Each takes the fuzzer's bytes, runs the parser and
//! asserts what must hold for every input (a panic is a finding): round trips, that an
//! accepted token really was acceptable, that an error names the line or key, and so
//! on. `tests/fuzz_corpora.rs` replays every committed corpus file through the same
//! function under plain `cargo test`, so CI guards the findings without a fuzzer.
//!
//! Adding a target: a `pub fn name(data: &[u8])` here, a row in [`TARGETS`], a
//! three-line `fuzz/fuzz_targets/name.rs`, a `[[bin]]` in `fuzz/Cargo.toml` and a few
//! seeds in `fuzz/corpus/name/` (a test fails until all four agree). Not part of the
//! service's API.

use std::borrow::Cow;
use std::sync::OnceLock;

use jwt_simple::prelude::MACLike;

use crate::auth::basic::parse_basic;
use crate::auth::htpasswd::{bcrypt_cost, HtpasswdFile};
use crate::auth::jwt::Tokens;
use crate::config::{Config, Jwt, KNOWN};
use crate::digest::Digest;
use crate::http::hal::MAX_DEPTH;
use crate::http::router::{
    none_match, parse_options, prefers_html, resolve, route, split_target, Collection, NotFound,
    Resource, Route,
};
use crate::percent::{decode_path, decode_query_component, encode_into, DecodeError, Encoded};
use crate::registry::challenge::{self, Challenge};
use crate::registry::manifest::{self, Manifest};
use crate::registry::{next_link, origin_of, Client};
use crate::snapshot::{read_from, write_to, Builder, LayerRef, ScannedTag, Snapshot};

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
    basic,
    bearer,
    jwt,
    www_authenticate,
    link,
    manifest,
    snapshot,
    config,
    htpasswd,
    percent,
    digest,
    http_head,
];

/// The fuzzer's bytes as text: invalid UTF-8 becomes U+FFFD (the parsers take `&str`;
/// what reaches them from the network or a file went through the same conversion or a
/// stricter one).
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

// ---- HTTP requests: route, resource, options, negotiation ------------------------------

/// The snapshot the router resolves against: names with `/`, a repository ending in
/// `tags`, a tag called `tags`, a repository whose tags are unknown.
fn fixed_snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
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
        b.add_repository("a/tags", Some(vec![tag("x")]), None);
        b.add_repository("a", Some(vec![tag("y"), tag("ü")]), None);
        b.add_repository("a b%", Some(vec![tag("1.0")]), None);
        b.add_repository("broken", None, Some("boom".into()));
        b.finish(0.0)
    })
}

/// Input: `target \n accept \n if-none-match`. Whatever the target, routing and
/// resolution answer consistently: a route is exactly the prefix and its path, a
/// resource found has the name the path decodes to, a 404 names a link that decodes to
/// the same name, the embedding depth stays within its bound.
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
        let expected = |rest: &str| format!("{prefix}{rest}");
        match route(prefix, path) {
            Route::Health => assert_eq!(path, expected("/health")),
            Route::AuthToken => assert_eq!(path, expected("/auth_token")),
            Route::Unknown => {}
            Route::Api { collection, rest } => {
                let name = match collection {
                    Collection::Repositories => "/repositories",
                    Collection::Images => "/images",
                };
                match rest {
                    None => assert_eq!(path, expected(name)),
                    Some(rest) => {
                        assert!(!rest.is_empty());
                        assert_eq!(path, expected(&format!("{name}/{rest}")));
                    }
                }
                check_resolution(rest);
            }
        }
    }

    let options = parse_options(query);
    assert!(options.depth <= MAX_DEPTH, "{query:?} -> {options:?}");
    let _ = prefers_html(accept);
    if let Some(header) = if_none_match {
        let _ = none_match(header, "\"1-abc\"");
        assert!(none_match(&format!("{header}, \"1-abc\""), "\"1-abc\""));
    }
}

fn check_resolution(rest: Option<&str>) {
    const BASE: &str = "/base/repositories";
    let snapshot = fixed_snapshot();
    let decoded = rest.map(decode_path);
    match resolve(snapshot, BASE, rest) {
        Ok(Resource::Collection) => assert!(rest.is_none()),
        Ok(found) => {
            let name = decoded.expect("a path").expect("decodable");
            let found_name = match found {
                Resource::Collection => unreachable!(),
                Resource::Repository(r) => r.name.to_string(),
                Resource::Tags(r, tags) => {
                    assert_eq!(Some(tags), r.tags.as_deref());
                    format!("{}/tags", r.name)
                }
                Resource::Tag(r, t) => {
                    assert!(std::ptr::eq(t, r.tag(&t.name).expect("its own tag")));
                    format!("{}/tags/{}", r.name, t.name)
                }
            };
            assert_eq!(*name, found_name);
        }
        Err(NotFound::BadPath(e)) => {
            assert_eq!(decoded.and_then(Result::err), Some(e));
        }
        Err(NotFound::Missing(href)) => {
            let name = decoded.expect("a path").expect("decodable");
            let encoded = href
                .strip_prefix(BASE)
                .and_then(|h| h.strip_prefix('/'))
                .unwrap_or_else(|| panic!("404 link {href:?} outside {BASE}"));
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-~%/".contains(&b)),
                "404 link {href:?} is not encoded"
            );
            assert_eq!(decode_path(encoded).as_deref(), Ok(&*name), "{href:?}");
        }
    }
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
    let header: serde_json::Value =
        serde_json::from_slice(header).expect("accepted header is JSON");
    assert_eq!(header["alg"], "HS256", "{header}");
    let claims: serde_json::Value =
        serde_json::from_slice(payload).expect("accepted claims are JSON");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let exp = claims["exp"]
        .as_u64()
        .unwrap_or_else(|| panic!("accepted without exp: {claims}"));
    assert!(exp + 60 >= now, "accepted expired {claims}");
    for not_before in ["nbf", "iat"] {
        if let Some(t) = claims.get(not_before).and_then(serde_json::Value::as_u64) {
            assert!(
                t <= now + 60,
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
        Ok(Manifest::Image(layers)) => {
            for l in layers {
                let d = l.digest.to_string();
                assert!(manifest::valid_digest(&d), "{d:?}");
                assert!(l.size <= i64::MAX as u64);
                assert_eq!(Digest::parse(&d), l.digest);
            }
        }
        Ok(Manifest::Index(digests) | Manifest::Schema1(digests)) => {
            for d in digests {
                assert!(manifest::valid_digest(&d), "{d:?}");
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
}

// ---- files: snapshot, config, htpasswd ------------------------------------------------

/// The snapshot file: what loads is consistent (indices in range, names sorted and
/// distinct, totals the sums of the sizes), and saving it and loading that again gives
/// the same snapshot and the same bytes.
pub fn snapshot(data: &[u8]) {
    let first = match read_from(data, &"snapshot") {
        Ok(s) => s,
        Err(e) => {
            assert!(e.starts_with("snapshot"), "{e}");
            return;
        }
    };
    check_snapshot(&first);
    let mut saved = Vec::new();
    write_to(&first, &mut saved).expect("writing to memory");
    let second = read_from(&saved[..], &"saved")
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
    let mut size: Option<u64> = Some(0);
    let mut tag_count = 0;
    for r in &s.repositories {
        let Some(tags) = &r.tags else {
            assert_eq!((r.size, r.disk_size), (None, None));
            continue;
        };
        tag_count += tags.len();
        assert!(tags.windows(2).all(|w| w[0].name < w[1].name));
        for t in tags {
            assert!(t.layers.windows(2).all(|w| w[0] < w[1]));
            assert!(t.layers.iter().all(|&l| (l as usize) < s.blobs.len()));
            let tag_size = t
                .layers
                .iter()
                .try_fold(0u64, |sum, &l| sum.checked_add(s.blobs[l as usize].size));
            if let Some(tag_size) = tag_size {
                assert_eq!(t.size, tag_size);
            }
            size = size.zip(tag_size).and_then(|(a, b)| a.checked_add(b));
        }
    }
    assert_eq!(s.totals.repository_count, s.repositories.len());
    assert_eq!(s.totals.tag_count, tag_count);
    if let Some(size) = size {
        assert_eq!(s.totals.size, size);
    }
    // Every blob left is used by some tag, and disk_size counts each once.
    if let Some(disk) = s
        .blobs
        .iter()
        .try_fold(0u64, |sum, b| sum.checked_add(b.size))
    {
        assert_eq!(s.totals.disk_size, disk);
    }
}

/// Whether `message` starts by naming where the problem is: `line N:` of the file (N a
/// line it has), or `[section] key` of a section and key the service knows.
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
    KNOWN
        .iter()
        .any(|(s, keys)| *s == section && keys.contains(&key.as_str()))
}

/// The INI config: never a panic; an error names the line or the section and key; a
/// config that parses is normalised as the rest of the service expects.
pub fn config(data: &[u8]) {
    let text = text(data);
    let line_count = text.lines().count();
    match Config::parse(&text) {
        Err(e) => assert!(names_its_place(&e.0, line_count), "{e}"),
        Ok((config, warnings)) => {
            for w in &warnings {
                assert!(w.starts_with("unknown "), "{w}");
            }
            let prefix = &config.general.server_prefix;
            assert!(prefix.is_empty() || (prefix.starts_with('/') && !prefix.ends_with('/')));
            assert!(config.registry.registry_base_url.ends_with('/'));
            assert!(config.registry.gitlab_base_url.ends_with('/'));
            assert!(!config.general.refresh_interval.is_zero());
            if let Err(e) = config.check_serving() {
                assert!(names_its_place(&e.0, line_count), "{e}");
            }
        }
    }
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
            let without_user = e.replacen(&format!("{user:?}"), "", 1);
            if hash.len() >= 8 {
                assert!(!without_user.contains(hash), "the error shows a hash: {e}");
            }
        }
    }
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

// ---- the request-head reader of the vendored tiny_http ------------------------------------

/// Longest input fed to tiny_http (above its 64 KiB head limit, within the socket
/// buffers its fuzzing entry point writes through).
const MAX_HTTP_INPUT: usize = 96 * 1024;
/// Most requests read from one input.
const MAX_HTTP_REQUESTS: usize = 64;

/// Raw bytes on a connection: every request tiny_http hands over stays within the head
/// limits, each gets exactly its one answer, and everything else tiny_http writes is
/// one of its own refusals (never a 500 for a request dropped unanswered).
pub fn http_head(data: &[u8]) {
    let input = &data[..data.len().min(MAX_HTTP_INPUT)];
    let outcome = tiny_http::fuzzing::read_requests(input, MAX_HTTP_REQUESTS);
    let heads = input.windows(4).filter(|w| w == b"\r\n\r\n").count();
    assert!(outcome.requests.len() <= heads, "more requests than heads");
    for r in &outcome.requests {
        assert!(r.url.len() <= 16 * 1024, "{} byte URL", r.url.len());
        assert!(r.headers.len() <= 100);
        for (name, value) in &r.headers {
            assert!(name.len() + 1 + value.len() <= 8 * 1024);
        }
        assert!(r.version <= (1, 1), "{:?}", r.version);
    }
    let statuses = response_statuses(&outcome.written);
    let answered = statuses.iter().filter(|&&s| s == 204).count();
    assert_eq!(answered, outcome.requests.len(), "{statuses:?}");
    for s in &statuses {
        assert!(
            [100, 204, 400, 414, 417, 431, 505].contains(s),
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
