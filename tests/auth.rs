//! Login (LDAP against a real slapd, htpasswd) and tokens, through the public `auth` API
//! and configs written as an admin would.

#[path = "support/slapd.rs"]
mod slapd;
mod support;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gitlab_registry_usage_rest::auth::jwt::{TokenError, Tokens};
use gitlab_registry_usage_rest::auth::{Authenticator, LoginError};
use gitlab_registry_usage_rest::config::Config;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use slapd::{password_of, Slapd, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, STAFF_DN, VALID_GID};
use support::TempDir;

const SECRET: &str = "Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA";

fn config(general: &str, ldap: &str) -> Config {
    let text = format!(
        "[general]\n{general}\n[ldap]\nbase_dn = {PEOPLE_DN}\nvalid_gid = {VALID_GID}\n{ldap}\n\
         [jwt]\nsecret_key = {SECRET}\nauth_token_expires = 1 hour\n"
    );
    Config::parse(&text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .0
}

fn ldap_auth(ldap: &str) -> Authenticator {
    Authenticator::from_config(&config("", ldap)).unwrap()
}

fn is_bad(result: Result<String, LoginError>) -> bool {
    matches!(result, Err(LoginError::BadCredentials(_)))
}

fn is_unavailable(result: &Result<String, LoginError>) -> bool {
    matches!(result, Err(LoginError::Unavailable(_)))
}

#[test]
fn ldap_login_checks_password_group_and_resists_filter_injection() {
    let server = Slapd::start();
    let auth = Arc::new(ldap_auth(&format!("host = {}", server.ldap_url)));
    let alice = password_of("alice");

    assert_eq!(auth.login("alice", alice), Ok("alice".into()));
    assert!(is_bad(auth.login("alice", "wrong")));
    assert!(
        is_bad(auth.login("alice", "")),
        "empty password must never bind"
    );
    assert!(is_bad(auth.login("", alice)));
    assert!(is_bad(auth.login("nobody", alice)));
    assert!(
        is_bad(auth.login("bob", password_of("bob"))),
        "bob is not in gid {VALID_GID}"
    );
    // The original handed out a token for `*` with any valid user's password.
    for injection in [
        "*",
        "a*",
        "alice)(uid=*",
        "*)(|(uid=*",
        "alice)(|(uid=*)",
        "alice\0",
    ] {
        let result = auth.login(injection, alice);
        assert!(is_bad(result.clone()), "{injection:?}: {result:?}");
    }
    // The directory decides what matches (uid is caseIgnoreMatch with insignificant
    // spaces), and the login is answered with its spelling of the name.
    for typed in ["ALICE", "alice ", " Alice", "al  ice"] {
        let result = auth.login(typed, alice);
        if typed == "al  ice" {
            assert!(is_bad(result), "inner spaces are not alice's");
        } else {
            assert_eq!(result, Ok("alice".into()), "{typed:?}");
        }
    }
    assert_eq!(
        auth.login("JÜRGEN", password_of("jürgen")),
        Ok("jürgen".into())
    );
    // Real names with filter metacharacters and non-ASCII letters still work.
    assert_eq!(
        auth.login("d(a)ve*", password_of("d(a)ve*")),
        Ok("d(a)ve*".into())
    );
    assert_eq!(
        auth.login("jürgen", password_of("jürgen")),
        Ok("jürgen".into())
    );
    assert!(is_bad(auth.login("d(a)ve*", alice)));

    // HTTP workers log in concurrently.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let auth = Arc::clone(&auth);
            std::thread::spawn(move || {
                let password = if i % 2 == 0 {
                    password_of("alice")
                } else {
                    "wrong"
                };
                (i, auth.login("alice", password))
            })
        })
        .collect();
    for t in threads {
        let (i, result) = t.join().unwrap();
        assert_eq!(result.is_ok(), i % 2 == 0, "{result:?}");
    }

    // Without a gid condition any user found under base_dn may log in.
    let no_gid = ldap_auth(&format!("host = {}\ngid_attribute =", server.ldap_url));
    assert_eq!(no_gid.login("bob", password_of("bob")), Ok("bob".into()));
    assert!(is_bad(no_gid.login("*", password_of("bob"))));
}

#[test]
fn ldap_tls_verifies_the_server_certificate() {
    let server = Slapd::start();
    let ca = server.ca_pem.display();
    let wrong = server.wrong_ca_pem.display();
    let (ldap, ldaps) = (&server.ldap_url, &server.ldaps_url);
    let alice = password_of("alice");

    for (settings, works) in [
        (format!("host = {ldaps}\nca_file = {ca}"), true),
        (
            format!("host = {ldap}\nstart_tls = True\nca_file = {ca}"),
            true,
        ),
        (format!("host = {ldaps}\nca_file = {wrong}"), false),
        (
            format!("host = {ldap}\nstart_tls = True\nca_file = {wrong}"),
            false,
        ),
        (
            format!("host = {ldaps}\nca_file = {wrong}\ntls_verify = False"),
            true,
        ),
        (
            format!("host = {ldap}\nstart_tls = True\ntls_verify = False"),
            true,
        ),
    ] {
        let auth = ldap_auth(&settings);
        let result = auth.login("alice", alice);
        if works {
            assert_eq!(result, Ok("alice".into()), "{settings}");
            assert!(is_bad(auth.login("alice", "wrong")), "{settings}");
        } else {
            let refused_certificate = matches!(&result,
                Err(LoginError::Unavailable(d)) if d.contains("invalid peer certificate"));
            assert!(refused_certificate, "{settings}: {result:?}");
        }
    }

    // The system bundle alone does not know the test CA (and without a bundle, e.g. in a
    // scratch container, there is nothing to verify with: refused at start-up).
    match Authenticator::from_config(&config("", &format!("host = {ldaps}"))) {
        Ok(auth) => {
            let result = auth.login("alice", alice);
            assert!(is_unavailable(&result), "{result:?}");
        }
        Err(e) => assert!(e.0.contains("no CA certificate"), "{e}"),
    }
}

#[test]
fn ldap_search_anonymously_or_with_a_service_account() {
    let server = Slapd::start();
    let host = &server.ldap_url;
    let carol = password_of("carol");

    // ou=staff hides its entries from anonymous searches.
    let anonymous = ldap_auth(&format!("host = {host}\nbase_dn = {STAFF_DN}"));
    assert!(is_bad(anonymous.login("carol", carol)));

    let service = ldap_auth(&format!(
        "host = {host}\nbase_dn = {STAFF_DN}\nbind_dn = {SERVICE_DN}\nbind_password = {SERVICE_PASSWORD}"
    ));
    assert_eq!(service.login("carol", carol), Ok("carol".into()));
    assert!(is_bad(service.login("carol", "wrong")));
    assert!(is_bad(service.login("*", carol)));

    // A broken service account is the service's problem (503), not the user's (401).
    let broken = ldap_auth(&format!(
        "host = {host}\nbase_dn = {STAFF_DN}\nbind_dn = {SERVICE_DN}\nbind_password = nope"
    ));
    let result = broken.login("carol", carol);
    assert!(is_unavailable(&result), "{result:?}");
}

#[test]
fn ldap_down_or_hanging_is_unavailable() {
    let mut server = Slapd::start();
    let auth = ldap_auth(&format!("host = {}", server.ldap_url));
    assert_eq!(
        auth.login("alice", password_of("alice")),
        Ok("alice".into())
    );
    server.stop();
    let result = auth.login("alice", password_of("alice"));
    assert!(is_unavailable(&result), "{result:?}");

    // A server that accepts connections but never answers: the kernel completes the
    // handshake (listen backlog), nothing ever replies. `[ldap] timeout` ends the wait
    // for the LDAP answer (ldap://) or for the TLS handshake (ldaps://).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let hanging: Vec<_> = [
        format!("ldap://127.0.0.1:{port}"),
        format!("ldaps://127.0.0.1:{port}"),
    ]
    .into_iter()
    .map(|url| {
        std::thread::spawn(move || {
            let auth = ldap_auth(&format!(
                "host = {url}\ntls_verify = False\ntimeout = 200ms"
            ));
            (url.clone(), auth.login("alice", "pw"))
        })
    })
    .collect();
    for thread in hanging {
        let (url, result) = thread.join().unwrap();
        let timed_out = matches!(&result,
            Err(LoginError::Unavailable(d)) if d.contains("no answer within [ldap] timeout = 200ms"));
        assert!(timed_out, "{url}: {result:?}");
    }
    drop(silent);
}

#[test]
fn config_problems_show_at_start_up() {
    let missing = Authenticator::from_config(&config(
        "",
        "host = ldaps://127.0.0.1:1\nca_file = /nonexistent.pem",
    ));
    assert!(missing.err().unwrap().0.contains("/nonexistent.pem"));

    let dir = TempDir::new("auth-config");
    let md5 = dir.path().join("md5.htpasswd");
    std::fs::write(&md5, "alice:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n").unwrap();
    let err = Authenticator::from_config(&config(
        &format!(
            "auth_backend = htpasswd\n[htpasswd]\nfile = {}",
            md5.display()
        ),
        "",
    ))
    .err()
    .unwrap();
    assert!(
        err.0.contains("line 1") && !err.0.contains("apr1$r31"),
        "{err}"
    );

    let gone = Authenticator::from_config(&config(
        "auth_backend = htpasswd\n[htpasswd]\nfile = /nonexistent",
        "",
    ));
    assert!(gone.is_err());
}

#[test]
fn htpasswd_login() {
    let htpasswd = support::require_binary("htpasswd", "apache2-utils");
    let dir = TempDir::new("auth-htpasswd");
    let file = dir.path().join("users");
    let mut text = String::new();
    for (user, password) in [("alice", "alice pw ä:1"), ("bob", "bob-pw")] {
        let out = std::process::Command::new(&htpasswd)
            .args(["-nbB", "-C", "5", user, password])
            .output()
            .unwrap();
        assert!(out.status.success());
        text.push_str(String::from_utf8(out.stdout).unwrap().trim());
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    let auth = Authenticator::from_config(&config(
        &format!(
            "auth_backend = htpasswd\n[htpasswd]\nfile = {}",
            file.display()
        ),
        "",
    ))
    .unwrap();
    assert_eq!(auth.login("alice", "alice pw ä:1"), Ok("alice".into()));
    assert_eq!(auth.login("bob", "bob-pw"), Ok("bob".into()));
    assert!(is_bad(auth.login("alice", "bob-pw")));
    assert!(is_bad(auth.login("mallory", "bob-pw")));
    assert!(is_bad(auth.login("alice", "")));
}

// ---- tokens ----

fn tokens() -> Tokens {
    Tokens::new(&config("", "").jwt).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// A JWT built by hand, byte for byte as PyJWT writes one.
fn hand_made(header: &str, payload: &str, secret: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mac = hmac_sha256::HMAC::mac(signing_input.as_bytes(), secret.as_bytes());
    format!("{signing_input}.{}", b64(&mac))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn verify(token: &str) -> Result<String, TokenError> {
    tokens().verify(Some(&bearer(token)))
}

const HS256: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

#[test]
fn minted_tokens_carry_the_flask_jwt_extended_claims() {
    let t = tokens();
    let token = t.mint("alice");
    assert_eq!(t.verify(Some(&bearer(&token))), Ok("alice".into()));

    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&Base64UrlSafeNoPadding::decode_to_vec(payload, None).unwrap())
            .unwrap();
    assert_eq!(claims["identity"], "alice");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["type"], "access");
    assert_eq!(claims["fresh"], false);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) <= 2);
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 3600));
    assert_ne!(t.mint("alice"), token, "jti differs");
}

#[test]
fn tokens_of_the_original_service_stay_valid() {
    let n = now();
    let v3 = format!(
        r#"{{"iat":{n},"nbf":{n},"jti":"0b3fd5a5-0a8e-4c9c-9a43-2b0f0d9d6f55","exp":{},"identity":"alice","fresh":false,"type":"access"}}"#,
        n + 1_209_600
    );
    assert_eq!(verify(&hand_made(HS256, &v3, SECRET)), Ok("alice".into()));

    let v4 = format!(
        r#"{{"fresh":false,"iat":{n},"jti":"5e4f","type":"access","sub":"bob","nbf":{n},"exp":{}}}"#,
        n + 60
    );
    assert_eq!(
        verify(&hand_made(r#"{"alg":"HS256","typ":"JWT"}"#, &v4, SECRET)),
        Ok("bob".into())
    );
}

#[test]
fn bad_tokens_are_refused_with_the_original_messages() {
    let n = now();
    let claims = |extra: &str| {
        format!(r#"{{"iat":{n},"nbf":{n},"jti":"x","identity":"alice","type":"access"{extra}}}"#)
    };
    let valid_exp = format!(r#","exp":{}"#, n + 3600);
    let msg = |token: &str| verify(token).unwrap_err().msg;

    assert_eq!(
        msg(&hand_made(
            HS256,
            &claims(&format!(r#","exp":{}"#, n - 3600)),
            SECRET
        )),
        "Token has expired"
    );
    let future = format!(
        r#"{{"iat":{n},"nbf":{},"exp":{},"identity":"alice"}}"#,
        n + 3600,
        n + 7200
    );
    assert_eq!(
        msg(&hand_made(HS256, &future, SECRET)),
        "The token is not yet valid (nbf)"
    );
    assert_eq!(
        msg(&hand_made(
            HS256,
            &claims(&valid_exp),
            "another-secret-of-32-bytes-xxxxxx"
        )),
        "Signature verification failed"
    );
    assert_eq!(
        msg(&hand_made(HS256, &claims(""), SECRET)),
        "Token is missing the \"exp\" claim"
    );
    let refresh = format!(
        r#"{{"exp":{},"identity":"alice","type":"refresh"}}"#,
        n + 60
    );
    assert_eq!(
        msg(&hand_made(HS256, &refresh, SECRET)),
        "Only access tokens are allowed"
    );
    // A repeated claim is ambiguous (which one did the signer mean?): refused.
    assert_eq!(
        msg(&hand_made(
            HS256,
            &claims(&format!(r#"{valid_exp},"type":"refresh""#)),
            SECRET
        )),
        "Malformed token"
    );
    let numeric_identity = format!(r#"{{"exp":{},"identity":42}}"#, n + 60);
    assert_eq!(
        msg(&hand_made(HS256, &numeric_identity, SECRET)),
        "Missing claim: identity"
    );

    // alg none: no signature at all.
    let none = format!(
        "{}.{}.",
        b64(br#"{"typ":"JWT","alg":"none"}"#),
        b64(claims(&valid_exp).as_bytes())
    );
    assert_eq!(msg(&none), "The specified alg value is not allowed");
    // Another HMAC algorithm with the right secret is still refused, in PyJWT's words.
    let hs512 = jwt_simple::prelude::HS512Key::from_bytes(SECRET.as_bytes());
    let claims512 =
        jwt_simple::prelude::Claims::create(jwt_simple::prelude::Duration::from_secs(60))
            .with_subject("alice");
    let token512 = jwt_simple::prelude::MACLike::authenticate(&hs512, claims512).unwrap();
    assert_eq!(msg(&token512), "The specified alg value is not allowed");
    // The HS256 signature under another alg name is refused for the name.
    let relabelled = hand_made(
        r#"{"typ":"JWT","alg":"HS384"}"#,
        &claims(&valid_exp),
        SECRET,
    );
    assert_eq!(msg(&relabelled), "The specified alg value is not allowed");

    // A valid token with its payload swapped for another user's.
    let token = tokens().mint("alice");
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        r#"{{"identity":"admin","sub":"admin","type":"access","exp":{}}}"#,
        n + 3600
    );
    assert_eq!(
        msg(&format!(
            "{}.{}.{}",
            parts[0],
            b64(forged.as_bytes()),
            parts[2]
        )),
        "Signature verification failed"
    );

    assert_eq!(msg("garbage"), "Not enough segments");
    assert_eq!(msg("a.b.c"), "Malformed token");
    let t = tokens();
    assert_eq!(
        t.verify(None).unwrap_err().msg,
        "Missing Authorization Header"
    );
    assert_eq!(
        t.verify(Some(&format!("Token {token}"))).unwrap_err().msg,
        "Bad Authorization header. Expected value 'Bearer <JWT>'"
    );
    assert_eq!(t.verify(Some("Bearer x")).unwrap_err().status, 401);
}

#[test]
fn the_placeholder_secret_is_refused() {
    let (c, _) = Config::parse("").unwrap();
    assert!(Tokens::new(&c.jwt).is_err());
}
