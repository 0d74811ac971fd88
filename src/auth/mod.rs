//! Who may call the API: credentials at `/auth_token` (LDAP or htpasswd), the JSON Web
//! Tokens minted there, and the slow-down of clients that keep failing.
//!
//! Nothing in here logs or formats a password or a token: `LoginError` details name the
//! user and what went wrong, nothing more.

pub mod basic;
pub mod htpasswd;
pub mod jwt;
pub mod ldap;
pub mod limiter;

use crate::config::{AuthBackend, Config, ConfigError};

/// Longest user name accepted; LDAP `uid`s are far shorter, and the limit keeps odd
/// input away from the backends.
const MAX_USER_BYTES: usize = 256;
/// Longest password accepted (bcrypt reads 72 bytes anyway).
const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a login failed. The HTTP layer maps `BadCredentials` to 401 (with
/// `WWW-Authenticate: Basic realm="Authentication Required"`) and `Unavailable` to 503,
/// and logs [`LoginError::detail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// The client's fault: unknown user, wrong password, not in the valid group, bad input.
    BadCredentials(String),
    /// The service's fault: the LDAP server is down, refuses our TLS, the service account
    /// cannot bind, ... The client may retry later.
    Unavailable(String),
}

impl LoginError {
    /// What happened, for the log (never contains the password).
    pub fn detail(&self) -> &str {
        match self {
            LoginError::BadCredentials(d) | LoginError::Unavailable(d) => d,
        }
    }
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

enum Backend {
    Ldap(ldap::LdapBackend),
    Htpasswd(htpasswd::HtpasswdFile),
}

/// Checks user name and password against the configured backend. Built once at start;
/// `login` runs concurrently on the HTTP workers.
pub struct Authenticator {
    backend: Backend,
}

impl Authenticator {
    /// Loads CA and htpasswd files now, so that their errors stop the start-up.
    pub fn from_config(config: &Config) -> Result<Authenticator, ConfigError> {
        let backend = match config.general.auth_backend {
            AuthBackend::Ldap => {
                let ldap = &config.ldap;
                if !ldap.tls_verify {
                    crate::log!(
                        warn,
                        "[ldap] tls_verify = False: the LDAP server's certificate is not checked; \
                         anyone in the network path can read the passwords",
                        url = ldap.url
                    );
                } else if ldap.url.starts_with("ldap://") && !ldap.start_tls {
                    crate::log!(
                        warn,
                        "LDAP without TLS: passwords travel in clear text; use ldaps:// or [ldap] start_tls = True",
                        url = ldap.url
                    );
                }
                Backend::Ldap(ldap::LdapBackend::new(ldap)?)
            }
            AuthBackend::Htpasswd => {
                let path = config.htpasswd.file.as_deref().ok_or_else(|| {
                    ConfigError("[general] auth_backend = htpasswd needs [htpasswd] file".into())
                })?;
                Backend::Htpasswd(htpasswd::HtpasswdFile::load(path)?)
            }
        };
        Ok(Authenticator { backend })
    }

    /// The user's canonical name (as the directory or the file writes it, which may differ
    /// from `user` in case or spaces) when `password` is right for `user`. Blocks for up
    /// to `[ldap] timeout` per LDAP round trip, or a bcrypt run.
    pub fn login(&self, user: &str, password: &str) -> Result<String, LoginError> {
        check_input(user, password)?;
        match &self.backend {
            Backend::Ldap(ldap) => ldap.login(user, password),
            Backend::Htpasswd(file) => file.login(user, password),
        }
    }
}

/// Refuse before any backend sees it: an empty password would make an LDAP
/// "unauthenticated bind" (success on many servers, a 500 in the original), and control
/// characters in a user name have no legitimate use and only confuse logs and filters.
fn check_input(user: &str, password: &str) -> Result<(), LoginError> {
    let problem = if user.is_empty() {
        "empty user name"
    } else if password.is_empty() {
        "empty password"
    } else if user.len() > MAX_USER_BYTES {
        "user name too long"
    } else if password.len() > MAX_PASSWORD_BYTES {
        "password too long"
    } else if user.chars().any(char::is_control) {
        "control character in the user name"
    } else {
        return Ok(());
    };
    Err(LoginError::BadCredentials(problem.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_checked_before_any_backend() {
        assert_eq!(check_input("alice", "pw"), Ok(()));
        assert_eq!(
            check_input("jürgen", &"p".repeat(MAX_PASSWORD_BYTES)),
            Ok(())
        );
        for (user, password) in [
            ("", "pw"),
            ("alice", ""),
            ("al\0ice", "pw"),
            ("alice\n", "pw"),
            ("al\u{85}ice", "pw"),
        ] {
            assert!(
                matches!(
                    check_input(user, password),
                    Err(LoginError::BadCredentials(_))
                ),
                "{user:?}"
            );
        }
        assert!(check_input(&"a".repeat(MAX_USER_BYTES + 1), "pw").is_err());
        assert!(check_input("alice", &"p".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn authenticator_is_shareable_between_workers() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Authenticator>();
        assert_send_sync::<jwt::Tokens>();
        assert_send_sync::<limiter::Limiter>();
    }
}
