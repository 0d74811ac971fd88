//! The one error type of the registry boundary, and how a `ureq` failure becomes one.
//!
//! The variant decides what happens next: only `Connection` and `Timeout` are retried
//! (another attempt can get through), only `Connection` counts toward the circuit
//! breaker (one slow endpoint is not a dead registry), and everything else fails its
//! request at once: a certificate, a host name or a URL does not get better by asking
//! again. `Display` is written for the admin reading the log: what failed, with which
//! URL, and what to do about it.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a registry (or GitLab token) call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No connection, or it broke before an answer: refused, reset, closed, network
    /// unreachable, or not connected within the connect timeout. Retried; counts
    /// toward the circuit breaker.
    Connection { url: String, detail: String },
    /// Connected, but no complete answer within `request_timeout`. Retried; does not
    /// count toward the circuit breaker.
    Timeout { url: String, after: Duration },
    /// The TLS handshake failed (certificate not trusted, expired, for another name).
    /// Never retried.
    Tls { url: String, detail: String },
    /// The host name does not resolve. Never retried.
    HostNotFound { url: String, detail: String },
    /// The URL cannot be requested (bad port, redirect loop). Never retried.
    BadUrl { url: String, detail: String },
    /// An answer larger than the limit for its kind (`what`). Never retried.
    TooLarge {
        url: String,
        what: &'static str,
        limit: u64,
    },
    /// An HTTP status that is not success (5xx and 429 only after their retries).
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    /// The registry or GitLab refused an access scope.
    Denied { scope: String, detail: String },
    /// GitLab's token endpoint did not give a token.
    Token { realm: String, detail: String },
    /// An answer that does not make sense (bad JSON, bad Link, bad digest, not HTTP).
    Invalid { url: String, detail: String },
    /// The circuit breaker: `failures` requests in a row got no connection (each after
    /// all its attempts), so the scan stops instead of failing every repository in turn.
    Unreachable { failures: u32, last: Box<Error> },
}

impl Error {
    /// Whether another attempt of the same request can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connection { .. } | Error::Timeout { .. })
    }

    /// A `ureq` failure of a request to `url`; `request_timeout` is named in a timeout.
    pub(super) fn from_ureq(url: &str, e: ureq::Error, request_timeout: Duration) -> Error {
        let url = url.to_string();
        let detail = e.to_string();
        match e {
            ureq::Error::Io(io) => from_io(url, io),
            ureq::Error::Timeout(ureq::Timeout::Connect) => Error::Connection {
                url,
                detail: "not connected within the connect timeout".into(),
            },
            ureq::Error::Timeout(_) => Error::Timeout {
                url,
                after: request_timeout,
            },
            ureq::Error::ConnectionFailed
            | ureq::Error::BodyStalled
            | ureq::Error::ConnectProxyFailed(_) => Error::Connection { url, detail },
            ureq::Error::HostNotFound => Error::HostNotFound {
                url,
                detail: "no address for it".into(),
            },
            ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::Pem(_)
            | ureq::Error::TlsRequired => Error::Tls { url, detail },
            ureq::Error::BadUri(_)
            | ureq::Error::Http(_)
            | ureq::Error::RequireHttpsOnly(_)
            | ureq::Error::InvalidProxyUrl
            | ureq::Error::RedirectFailed
            | ureq::Error::TooManyRedirects => Error::BadUrl { url, detail },
            ureq::Error::LargeResponseHeader(_, limit) => Error::TooLarge {
                url,
                what: "header section",
                limit: limit as u64,
            },
            ureq::Error::BodyExceedsLimit(limit) => Error::TooLarge {
                url,
                what: "answer",
                limit,
            },
            ureq::Error::StatusCode(status) => Error::Status {
                url,
                status,
                detail: String::new(),
            },
            // Protocol errors and whatever ureq adds later: not worth a second try.
            _ => Error::Invalid {
                url,
                detail: format!("the answer is not valid HTTP: {detail}"),
            },
        }
    }

    /// A failure while reading an answer's body (ureq hands its own errors back wrapped
    /// in `io::Error`).
    pub(super) fn from_body_read(url: &str, e: io::Error, request_timeout: Duration) -> Error {
        match Error::from_ureq(url, ureq::Error::from(e), request_timeout) {
            Error::Connection { url, detail } => Error::Connection {
                url,
                detail: format!("the connection broke while reading the answer: {detail}"),
            },
            other => other,
        }
    }
}

/// Socket-level failures. TLS errors reach us as `io::Error`s wrapping a `rustls::Error`
/// (the handshake runs inside an `io::Read`), and a name that does not resolve as the
/// error std's `getaddrinfo` wrapper writes.
fn from_io(url: String, e: io::Error) -> Error {
    let detail = e.to_string();
    if e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    {
        return Error::Tls { url, detail };
    }
    if detail.starts_with("failed to lookup address information") {
        return Error::HostNotFound { url, detail };
    }
    if e.kind() == io::ErrorKind::InvalidData {
        return Error::Invalid {
            url,
            detail: format!("the answer is garbled: {detail}"),
        };
    }
    // Refused, reset, aborted, broken pipe, closed early, unreachable, OS timeouts: the
    // other side may be back in a moment.
    Error::Connection { url, detail }
}

/// `4 MiB`, `64 KiB`, or bytes.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    if bytes >= KIB * KIB && bytes % (KIB * KIB) == 0 {
        format!("{} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connection { url, detail } => write!(
                f,
                "{url}: no answer: {detail} (is the registry up and reachable from this host?)"
            ),
            Error::Timeout { url, after } => write!(
                f,
                "{url}: no answer within request_timeout ({after:?}): the server is stuck or \
                 overloaded (raise [registry] request_timeout if it is only slow)"
            ),
            Error::Tls { url, detail } => write!(
                f,
                "{url}: TLS failed: {detail} (if the server's certificate comes from a private \
                 CA, name that CA's certificate in [registry] ca_file)"
            ),
            Error::HostNotFound { url, detail } => write!(
                f,
                "{url}: the host name does not resolve: {detail} (check registry_base_url and \
                 gitlab_base_url in [registry], and this host's DNS)"
            ),
            Error::BadUrl { url, detail } => write!(
                f,
                "{url}: cannot be requested: {detail} (check registry_base_url and \
                 gitlab_base_url in [registry])"
            ),
            Error::TooLarge { url, what, limit } => write!(
                f,
                "{url}: the {what} is larger than {}: refused (no Docker registry sends one \
                 this large; the server is misbehaving)",
                size(*limit)
            ),
            Error::Status {
                url,
                status,
                detail,
            } => write!(f, "{url}: HTTP {status}{detail}"),
            Error::Denied { scope, detail } => {
                write!(f, "access {scope} was not granted: {detail}")
            }
            Error::Token { realm, detail } => write!(f, "token endpoint {realm}: {detail}"),
            Error::Invalid { url, detail } => write!(f, "{url}: {detail}"),
            Error::Unreachable { failures, last } => write!(
                f,
                "the registry stopped answering: {failures} requests in a row got no \
                 connection (the last: {last}); the scan stopped there instead of failing \
                 every repository in turn"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    fn kind(e: ureq::Error) -> Error {
        Error::from_ureq("http://r/v2/", e, T)
    }

    #[test]
    fn only_connection_failures_and_timeouts_are_retried() {
        let refused = kind(ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()));
        assert!(matches!(refused, Error::Connection { .. }), "{refused:?}");
        let reset = kind(ureq::Error::Io(io::ErrorKind::ConnectionReset.into()));
        assert!(matches!(reset, Error::Connection { .. }), "{reset:?}");
        let eof = kind(ureq::Error::Io(io::ErrorKind::UnexpectedEof.into()));
        assert!(eof.is_retryable(), "{eof:?}");
        let slow = kind(ureq::Error::Timeout(ureq::Timeout::Global));
        assert_eq!(
            slow,
            Error::Timeout {
                url: "http://r/v2/".into(),
                after: T
            }
        );
        assert!(slow.is_retryable());
        let connect = kind(ureq::Error::Timeout(ureq::Timeout::Connect));
        assert!(matches!(connect, Error::Connection { .. }), "{connect:?}");

        let dns = kind(ureq::Error::Io(io::Error::other(
            "failed to lookup address information: Name or service not known",
        )));
        assert!(matches!(dns, Error::HostNotFound { .. }), "{dns:?}");
        let tls = kind(ureq::Error::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        assert!(matches!(tls, Error::Tls { .. }), "{tls:?}");
        let headers = kind(ureq::Error::LargeResponseHeader(70_000, 65_536));
        assert!(matches!(headers, Error::TooLarge { limit: 65_536, .. }));
        for never in [
            dns,
            tls,
            headers,
            kind(ureq::Error::HostNotFound),
            kind(ureq::Error::BadUri("x".into())),
            kind(ureq::Error::TooManyRedirects),
            kind(ureq::Error::Tls("bad")),
            kind(ureq::Error::Io(io::ErrorKind::InvalidData.into())),
        ] {
            assert!(!never.is_retryable(), "{never:?}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let tls = Error::Tls {
            url: "https://r/v2/".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert!(tls.to_string().contains("[registry] ca_file"), "{tls}");
        let big = Error::TooLarge {
            url: "http://r/v2/a/manifests/t".into(),
            what: "manifest",
            limit: 4 << 20,
        };
        assert_eq!(
            big.to_string(),
            "http://r/v2/a/manifests/t: the manifest is larger than 4 MiB: refused (no Docker \
             registry sends one this large; the server is misbehaving)"
        );
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size(1000), "1000 bytes");
    }
}
