//! The dashboard for people: one HTML page, one script and one style sheet, embedded in
//! the binary so that it works air-gapped and under any `server_prefix`, plus the API root
//! that `GET /` gives to everyone who is not a browser.
//!
//! The page holds no data and needs no login: the script logs in at `/auth_token`, keeps
//! the token in `sessionStorage` (not a cookie, so there is no CSRF surface) and reads the
//! same JSON API as every other client, asking only for what it shows (`sort`, `limit`,
//! `embed`). The Content-Security-Policy allows scripts and styles from this origin only
//! (no inline script, no `eval`), connections to this origin only, and no framing.
//!
//! Assets are served under a name that carries a hash of their bytes
//! (`<prefix>/dashboard/app.<hash>.js`) with a year of `immutable` caching; the page that
//! names them is `no-cache`, so an upgrade is picked up on the next load.

use std::sync::OnceLock;

use super::cache::{Body, ETag};
use super::hal::write_json_string;
use super::handler::{Reply, HAL_JSON, HTML};
use super::html::escape_into;
use super::router::{Request, Route};

static INDEX_HTML: &str = include_str!("dashboard/index.html");
static APP_JS: &[u8] = include_bytes!("dashboard/app.js");
static STYLE_CSS: &[u8] = include_bytes!("dashboard/style.css");

/// The page's policy. `style-src 'self'` without `'unsafe-inline'` still lets the script
/// set `element.style` (CSSOM), which the treemap's tile geometry needs.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";
/// For the assets and the HTML error pages: nothing may run or load from them.
const ASSET_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One embedded asset and the hashed file name it is served under.
struct Asset {
    file: String,
    bytes: &'static [u8],
    content_type: &'static str,
    etag: ETag,
}

fn assets() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let asset = |stem: &str, ext: &str, bytes: &'static [u8], content_type| {
            let etag = ETag::of(bytes);
            // The ETag is `"<16 hex>"`: its digits name the version.
            let hash = etag.as_str().trim_matches('"');
            Asset {
                file: format!("{stem}.{hash}.{ext}"),
                bytes,
                content_type,
                etag,
            }
        };
        [
            asset("app", "js", APP_JS, JS),
            asset("style", "css", STYLE_CSS, CSS),
        ]
    })
}

fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// The page, with the prefix and the hashed asset names filled in (a few KB; the prefix
/// is configuration, so it is not known when the binary is built).
fn page(prefix: &str) -> String {
    let [js, css] = assets();
    INDEX_HTML
        .replace("{{prefix}}", &escaped(prefix))
        .replace("{{app.js}}", &js.file)
        .replace("{{style.css}}", &css.file)
}

/// The answer on the dashboard's routes: `/` and `/dashboard/<file>`.
pub fn serve(prefix: &str, request: &Request<'_>) -> Reply {
    match request.route {
        Route::Asset(file) => {
            asset(file, request.if_none_match).unwrap_or_else(|| Reply::not_found(request.path))
        }
        _ => root(prefix, request.html),
    }
}

/// `GET <prefix>/`: the dashboard for a browser, the API root (links only) for anyone
/// else. Neither holds data, so neither needs a token.
fn root(prefix: &str, html: bool) -> Reply {
    let reply = if html {
        Reply::new(200, HTML, Body::Owned(page(prefix).into_bytes()))
            .header("Content-Security-Policy", PAGE_CSP)
            .header("Referrer-Policy", "no-referrer")
            .header("Cache-Control", "no-cache")
    } else {
        Reply::new(200, HAL_JSON, Body::Owned(api_root(prefix))).header("Cache-Control", "no-cache")
    };
    reply.header("Vary", "Accept")
}

/// The HAL API root: where each part of the API is. `/history` is listed although it
/// may not exist yet (it answers 404 until usage history is kept).
fn api_root(prefix: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"_links\":{");
    let links = [
        ("self", "/", None),
        ("repositories", "/repositories", None),
        ("namespaces", "/namespaces", None),
        ("history", "/history", None),
        ("health", "/health", None),
        (
            "openapi",
            "/openapi.json",
            Some("the API's contract (OpenAPI 3.1)"),
        ),
        (
            "auth_token",
            "/auth_token",
            Some("log in with HTTP Basic, get a bearer token"),
        ),
    ];
    for (i, (rel, path, title)) in links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(&mut out, rel);
        out.extend_from_slice(b":{\"href\":");
        write_json_string(&mut out, &format!("{prefix}{path}"));
        if let Some(title) = title {
            out.extend_from_slice(b",\"title\":");
            write_json_string(&mut out, title);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}}");
    out
}

/// `GET <prefix>/dashboard/<file>`: an embedded asset, under its hashed name only (an
/// old name after an upgrade is a 404 rather than new bytes under a name cached forever).
fn asset(file: &str, if_none_match: Option<&str>) -> Option<Reply> {
    let asset = assets().iter().find(|a| a.file == file)?;
    let fresh =
        if_none_match.is_some_and(|inm| super::router::none_match(inm, asset.etag.as_str()));
    let reply = if fresh {
        Reply {
            status: 304,
            content_type: None,
            body: Body::Static(b""),
            etag: Some(asset.etag),
            headers: Vec::new(),
        }
    } else {
        Reply {
            etag: Some(asset.etag),
            ..Reply::new(200, asset.content_type, Body::Static(asset.bytes))
        }
    };
    Some(
        reply
            .header("Cache-Control", IMMUTABLE)
            .header("Content-Security-Policy", ASSET_CSP),
    )
}

/// The 401 for a browser that opened a data route without a token: a short page that says
/// where to log in, instead of the JSON message a script gets.
pub fn login_required(prefix: &str, status: u16, message: &str) -> Reply {
    let dashboard = escaped(&format!("{prefix}/"));
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Log in first</title></head>\n<body style=\"font-family: sans-serif; \
         max-width: 40em; margin: 3em auto; line-height: 1.5\">\n<h1>Log in first</h1>\n\
         <p>{}.</p>\n<p>This address is part of the registry usage API, which needs a \
         token. People log in on the dashboard: <a href=\"{dashboard}\">{dashboard}</a>.</p>\n\
         <p>Scripts get a token from <code>{}/auth_token</code> with HTTP Basic \
         authentication and send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p>\n\
         </body></html>\n",
        escaped(message.trim_end_matches('.')),
        escaped(prefix)
    );
    Reply::new(status, HTML, Body::Owned(body.into_bytes()))
        .header("Content-Security-Policy", ASSET_CSP)
        .header("Cache-Control", "no-store")
        .header("Vary", "Accept")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset_files() -> impl Iterator<Item = &'static str> {
        assets().iter().map(|a| a.file.as_str())
    }

    fn text(reply: &Reply) -> String {
        String::from_utf8(reply.body.as_ref().to_vec()).unwrap()
    }

    fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    #[test]
    fn the_page_names_its_assets_under_the_prefix_and_has_no_inline_script() {
        let page = text(&root("/a&b", true));
        for file in asset_files() {
            assert!(
                page.contains(&format!("/a&amp;b/dashboard/{file}")),
                "{page}"
            );
        }
        assert!(!page.contains("{{"), "every placeholder is filled: {page}");
        // Every <script> has a src (CSP `script-src 'self'` would block an inline one).
        for script in page.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("src="), "{script}");
        }
        assert!(
            !page.contains(" style="),
            "no inline style attribute: {page}"
        );
        let reply = root("", true);
        let csp = header(&reply, "Content-Security-Policy").unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'unsafe-inline'"));
    }

    #[test]
    fn the_api_root_links_every_part_under_the_prefix() {
        let reply = root("/p", false);
        assert_eq!(reply.content_type, Some(HAL_JSON));
        let doc: serde_json::Value = serde_json::from_slice(reply.body.as_ref()).unwrap();
        for (rel, href) in [
            ("self", "/p/"),
            ("repositories", "/p/repositories"),
            ("namespaces", "/p/namespaces"),
            ("history", "/p/history"),
            ("health", "/p/health"),
            ("openapi", "/p/openapi.json"),
        ] {
            assert_eq!(doc["_links"][rel]["href"], href, "{doc}");
        }
    }

    #[test]
    fn assets_are_served_by_hashed_name_only_with_long_caching() {
        let js = asset_files().next().unwrap();
        let reply = asset(js, None).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body.as_ref(), APP_JS);
        assert_eq!(header(&reply, "Cache-Control"), Some(IMMUTABLE));
        let etag = reply.etag.unwrap();
        assert!(js.contains(etag.as_str().trim_matches('"')), "{js}");
        assert_eq!(asset(js, Some(etag.as_str())).unwrap().status, 304);
        assert!(asset("app.js", None).is_none());
        assert!(asset("app.0000000000000000.js", None).is_none());
    }

    #[test]
    fn the_browser_401_says_where_to_log_in_with_everything_escaped() {
        let reply = login_required("/x<y", 401, "Missing Authorization Header");
        assert_eq!(reply.status, 401);
        let body = text(&reply);
        assert!(body.contains("href=\"/x&lt;y/\""), "{body}");
        assert!(body.contains("Missing Authorization Header."), "{body}");
        assert!(!body.contains("<script"));
    }
}
