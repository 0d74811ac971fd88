//! `/auth_token` through HTTP against a real slapd (LDAPS with a test CA), and HTTPS on
//! the service itself with the certificate the slapd harness made.

#[path = "support/slapd.rs"]
mod slapd;
mod support;

use std::sync::Arc;
use std::time::Duration;

use gitlab_registry_usage_rest::auth::jwt::Tokens;
use gitlab_registry_usage_rest::auth::Authenticator;
use gitlab_registry_usage_rest::config::Config;
use gitlab_registry_usage_rest::http::{self, App, Running};
use gitlab_registry_usage_rest::snapshot::{Builder, Shared};
use slapd::{password_of, Slapd, PEOPLE_DN, VALID_GID};
use support::{basic_auth, http_request, try_http_request_with};

const SECRET: &str = "Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA-ldap-tests";

fn serve(slapd: &Slapd, general: &str) -> Running {
    serve_with(slapd, general, "")
}

fn serve_with(slapd: &Slapd, general: &str, ldap: &str) -> Running {
    let text = format!(
        "[general]\nsocket_host = 127.0.0.1\nsocket_port = 0\nauth_backend = ldap\n{general}\n\
         [ldap]\nhost = {}\nbase_dn = {PEOPLE_DN}\nvalid_gid = {VALID_GID}\nca_file = {}\n{ldap}\n\
         [jwt]\nsecret_key = {SECRET}\n",
        slapd.ldaps_url,
        slapd.ca_pem.display()
    );
    let config = Arc::new(
        Config::parse(&text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .0,
    );
    let shared = Arc::new(Shared::default());
    shared.set(Arc::new(Builder::default().finish(1.0)));
    let app = App::new(
        Arc::clone(&config),
        shared,
        Authenticator::from_config(&config).unwrap(),
        Tokens::new(&config.jwt).unwrap(),
    );
    http::start(Arc::new(app)).unwrap()
}

fn login(base: &str, user: &str, password: &str) -> support::HttpReply {
    http_request(
        "GET",
        &format!("{base}/auth_token"),
        &[("Authorization", &basic_auth(user, password))],
        None,
    )
}

/// The claims of a JWT (not verified: the service's own tests check signatures).
fn token_claims(token: &str) -> serde_json::Value {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&Base64UrlSafeNoPadding::decode_to_vec(payload, None).unwrap()).unwrap()
}

#[test]
fn ldap_logins_through_http() {
    let mut slapd = Slapd::start();
    let running = serve(&slapd, "");
    let base = format!("http://{}", running.addr);

    let ok = login(&base, "alice", password_of("alice"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let token = ok.json()["auth_token"].as_str().unwrap().to_string();
    let data = http_request(
        "GET",
        &format!("{base}/repositories"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(data.status, 200);
    // Names the directory matches in another spelling get a token for its spelling.
    for typed in ["ALICE", "alice ", "alice"] {
        let reply = login(&base, typed, password_of("alice"));
        assert_eq!(reply.status, 200, "{typed:?}: {}", reply.text());
        let claims = token_claims(reply.json()["auth_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "alice", "{typed:?}");
        assert_eq!(claims["identity"], "alice", "{typed:?}");
    }
    // Filter metacharacters in a real name are matched literally.
    assert_eq!(login(&base, "d(a)ve*", password_of("d(a)ve*")).status, 200);
    assert_eq!(login(&base, "jürgen", password_of("jürgen")).status, 200);

    // Wrong password, wrong group, and the original's injection: `*` with a valid password.
    for (user, password) in [
        ("alice", "wrong"),
        ("bob", password_of("bob")),
        ("*", password_of("alice")),
        ("alice", ""),
    ] {
        let reply = login(&base, user, password);
        assert_eq!(reply.status, 401, "{user}: {}", reply.text());
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"Authentication Required\"")
        );
    }

    // LDAP gone: 503 with a generic message, and the service keeps answering.
    slapd.stop();
    let down = login(&base, "alice", password_of("alice"));
    assert_eq!(down.status, 503, "{}", down.text());
    let message = down.json()["message"].as_str().unwrap().to_string();
    assert!(
        !message.contains("127.0.0.1") && !message.to_lowercase().contains("ldap"),
        "{message}"
    );
    assert!(down.header("retry-after").is_some());
    assert_eq!(
        http_request("GET", &format!("{base}/health"), &[], None).status,
        200
    );
    running.shutdown();
}

#[test]
fn a_frozen_ldap_server_makes_logins_503_and_nothing_else_waits() {
    let slapd = Slapd::start();
    let running = serve_with(&slapd, "", "timeout = 300ms");
    let base = format!("http://{}", running.addr);
    let ok = login(&base, "alice", password_of("alice"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bearer = format!("Bearer {}", ok.json()["auth_token"].as_str().unwrap());

    let frozen = slapd.freeze();
    // Two logins (the most one client may run at once) wait on the frozen server...
    let logins: Vec<_> = (0..2)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || login(&base, "alice", password_of("alice")))
        })
        .collect();
    // ... while the data routes and /health answer.
    for path in ["/health", "/repositories", "/repositories?embed=true"] {
        let reply = http_request(
            "GET",
            &format!("{base}{path}"),
            &[("Authorization", &bearer)],
            None,
        );
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    for login in logins {
        let reply = login.join().unwrap();
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert!(reply.header("retry-after").is_some());
    }
    drop(frozen);
    // Thawed, the same server is used again.
    let again = login(&base, "alice", password_of("alice"));
    assert_eq!(again.status, 200, "{}", again.text());
    running.shutdown();
}

#[test]
fn https_with_a_pem_certificate_and_key() {
    let slapd = Slapd::start();
    let dir = slapd.dir.path();
    let running = serve(
        &slapd,
        &format!(
            "tls_certificate_file = {}\ntls_key_file = {}",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
    );
    let ca = std::fs::read(&slapd.ca_pem).unwrap();
    let certificate = ureq::tls::Certificate::from_pem(&ca).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[certificate]))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(tls)
        .build()
        .into();
    let port = running.addr.port();
    let health = try_http_request_with(
        &agent,
        "GET",
        &format!("https://127.0.0.1:{port}/health"),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    // Over HTTPS the stream is one locked object: a connection thread that read on before
    // the previous answer was flushed held the lock until its read timed out, and every
    // later request (keep-alive or a new connection) hung behind it.
    for _ in 0..6 {
        let again = try_http_request_with(
            &agent,
            "GET",
            &format!("https://127.0.0.1:{port}/health"),
            &[],
            None,
        )
        .unwrap();
        assert_eq!(again.status, 200);
    }
    let login = try_http_request_with(
        &agent,
        "GET",
        &format!("https://127.0.0.1:{port}/auth_token"),
        &[("Authorization", &basic_auth("alice", password_of("alice")))],
        None,
    )
    .unwrap();
    assert_eq!(login.status, 200, "{}", login.text());
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = try_http_request_with(
        &support::test_agent(Duration::from_secs(3)),
        "GET",
        &format!("http://127.0.0.1:{port}/health"),
        &[],
        None,
    );
    assert!(
        plain.is_err() || plain.as_ref().is_ok_and(|r| r.status >= 400),
        "{plain:?}"
    );
    running.shutdown();
}

#[test]
fn keys_tiny_http_cannot_load_are_refused_at_start() {
    let slapd = Slapd::start();
    let dir = slapd.dir.path();
    // OpenSSL's traditional EC key format (SEC1), which tiny_http's rustls set-up panics on.
    let sec1 = dir.join("server-sec1.key");
    let status = std::process::Command::new("openssl")
        .args(["ec", "-in"])
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(&sec1)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for (cert, key, expected) in [
        (dir.join("server.pem"), sec1.clone(), "openssl pkcs8"),
        (
            dir.join("server.key"),
            dir.join("server.key"),
            "no PEM certificate",
        ),
        (
            dir.join("server.pem"),
            dir.join("missing.key"),
            "tls_key_file",
        ),
    ] {
        let text = format!(
            "[general]\nsocket_host = 127.0.0.1\nsocket_port = 0\nauth_backend = ldap\n\
             tls_certificate_file = {}\ntls_key_file = {}\n[ldap]\nhost = {}\nca_file = {}\n[jwt]\nsecret_key = {SECRET}\n",
            cert.display(),
            key.display(),
            slapd.ldaps_url,
            slapd.ca_pem.display()
        );
        let config = Arc::new(Config::parse(&text).unwrap().0);
        let app = App::new(
            Arc::clone(&config),
            Arc::new(Shared::default()),
            Authenticator::from_config(&config).unwrap(),
            Tokens::new(&config.jwt).unwrap(),
        );
        match http::start(Arc::new(app)) {
            Ok(_) => panic!("started with {}", key.display()),
            Err(e) => assert!(e.contains(expected), "{e}"),
        }
    }
}
