//! Login against LDAP: find the user's entry (anonymously, as the original did, or with
//! a service account), then bind as that entry with the given password.
//!
//! Each login opens its own connection (an `ldap3::LdapConn` is not shareable between
//! threads and logins are rare), with time limits so that a dead server turns into a
//! quick 503 instead of a hung HTTP worker.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConn, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};

use super::LoginError;
use crate::config::{ConfigError, Ldap};

/// The Debian/Ubuntu system bundle; trusted next to `ca_file` so that a server with a
/// public certificate keeps working when an extra CA is configured.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// LDAP result code invalidCredentials (RFC 4511).
const RC_INVALID_CREDENTIALS: u32 = 49;
/// LDAP result code sizeLimitExceeded: the search found more than one entry.
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;

/// The `[ldap]` settings, checked and with the TLS configuration built once.
pub struct LdapBackend {
    url: String,
    start_tls: bool,
    /// Our verifying configuration; `None` for plain LDAP and for `tls_verify = False`.
    /// In the latter case ldap3 builds a configuration that accepts any certificate (it
    /// ignores `set_no_tls_verify` when a configuration is passed in).
    tls: Option<Arc<rustls::ClientConfig>>,
    tls_verify: bool,
    base_dn: String,
    username_attribute: String,
    gid_attribute: String,
    valid_gid: String,
    bind_dn: String,
    bind_password: String,
    /// `[ldap] timeout`: for connecting (TCP, StartTLS, TLS handshake) and for each
    /// operation (bind, search) on the open connection, so that a frozen server costs a
    /// login thread at most this long per round trip.
    timeout: Duration,
}

impl LdapBackend {
    /// Reads the CA files now, so that a missing or broken file stops the start-up. Plain
    /// `ldap://` reads none: a scratch image without a system bundle must still start.
    pub fn new(config: &Ldap) -> Result<LdapBackend, ConfigError> {
        let uses_tls = config.start_tls || config.url.starts_with("ldaps://");
        let tls = if uses_tls && config.tls_verify {
            Some(Arc::new(tls_config(config.ca_file.as_deref())?))
        } else {
            None
        };
        Ok(LdapBackend {
            url: config.url.clone(),
            start_tls: config.start_tls,
            tls,
            tls_verify: config.tls_verify,
            base_dn: config.base_dn.clone(),
            username_attribute: config.username_attribute.clone(),
            gid_attribute: config.gid_attribute.clone(),
            valid_gid: config.valid_gid.clone(),
            bind_dn: config.bind_dn.clone(),
            bind_password: config.bind_password.clone(),
            timeout: config.timeout,
        })
    }

    /// The search filter for `user`: every value escaped, so a user name like `*` or
    /// `a)(uid=*` is a literal name and never widens the search (the original's hole).
    fn filter(&self, user: &str) -> String {
        let user_part = format!(
            "({}={})",
            self.username_attribute,
            escape_filter_value(user)
        );
        if self.gid_attribute.is_empty() {
            user_part
        } else {
            format!(
                "(&{user_part}({}={}))",
                self.gid_attribute,
                escape_filter_value(&self.valid_gid)
            )
        }
    }

    /// `user` and `password` are already checked to be non-empty: an empty password
    /// would be an "unauthenticated bind", which many servers answer with success.
    ///
    /// Returns the user's name as the directory writes it (see [`canonical_name`]).
    pub fn login(&self, user: &str, password: &str) -> Result<String, LoginError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.start_tls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        settings = settings.set_no_tls_verify(!self.tls_verify);
        let mut conn = LdapConn::with_settings(settings, &self.url)
            .map_err(|e| self.unavailable(&format!("cannot connect to {}", self.url), &e))?;
        let result = self.search_and_bind(&mut conn, user, password);
        let _ = conn.unbind();
        result
    }

    fn search_and_bind(
        &self,
        conn: &mut LdapConn,
        user: &str,
        password: &str,
    ) -> Result<String, LoginError> {
        if !self.bind_dn.is_empty() {
            conn.with_timeout(self.timeout)
                .simple_bind(&self.bind_dn, &self.bind_password)
                .and_then(|r| r.success())
                // Even rc 49 is the service's fault here, not the user's: 503, not 401.
                .map_err(|e| {
                    self.unavailable("the [ldap] bind_dn service account cannot bind", &e)
                })?;
        }
        // Two entries are enough to know the answer is ambiguous.
        let search = conn
            .with_search_options(SearchOptions::new().sizelimit(2))
            .with_timeout(self.timeout)
            .search(
                &self.base_dn,
                Scope::Subtree,
                &self.filter(user),
                vec![self.username_attribute.as_str()],
            )
            .and_then(|r| r.success());
        let entries = match search {
            Ok((entries, _)) => entries,
            Err(LdapError::LdapResult { result }) if result.rc == RC_SIZE_LIMIT_EXCEEDED => {
                return Err(LoginError::BadCredentials(
                    "more than one LDAP entry matches the user".into(),
                ));
            }
            Err(e) => return Err(self.unavailable("the LDAP user search failed", &e)),
        };
        let entry = match entries.as_slice() {
            [entry] => SearchEntry::construct(entry.clone()),
            [] => {
                return Err(LoginError::BadCredentials(
                    "no LDAP entry for the user in the valid group".into(),
                ))
            }
            _ => {
                return Err(LoginError::BadCredentials(
                    "more than one LDAP entry matches the user".into(),
                ))
            }
        };
        let dn = entry.dn.as_str();
        if dn.is_empty() {
            // Binding with an empty DN would be anonymous, whatever the password.
            return Err(LoginError::BadCredentials(
                "the user's LDAP entry has an empty DN".into(),
            ));
        }
        match conn
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .and_then(|r| r.success())
        {
            Ok(_) => Ok(canonical_name(&entry, &self.username_attribute, user)),
            Err(LdapError::LdapResult { result }) if result.rc == RC_INVALID_CREDENTIALS => Err(
                LoginError::BadCredentials(format!("wrong password for {dn}")),
            ),
            Err(e) => Err(self.unavailable(&format!("the LDAP bind as {dn} failed"), &e)),
        }
    }

    /// The service's fault, for the log; a timeout says which limit ran out.
    fn unavailable(&self, what: &str, error: &LdapError) -> LoginError {
        LoginError::Unavailable(match error {
            LdapError::Timeout { .. } => format!(
                "{what}: no answer within [ldap] timeout = {:?}",
                self.timeout
            ),
            _ => format!("{what}: {error}"),
        })
    }
}

/// The entry's own spelling of the user name: its `username_attribute` value. The
/// directory matches names by its own rules (for `uid`, `caseIgnoreMatch` with
/// insignificant spaces, so `ALICE` and `alice ` find alice), and a token must name the
/// user as the directory does, not as typed. Of several values the one equal to `typed`
/// wins, then one equal ignoring case and surrounding spaces, then the first. If the
/// search could match on the attribute but not read it (an ACL), the name as typed is
/// all there is.
fn canonical_name(entry: &SearchEntry, attribute: &str, typed: &str) -> String {
    let values = entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map_or(&[][..], |(_, values)| values.as_slice());
    let loosely_equal = |v: &&String| v.trim().to_lowercase() == typed.trim().to_lowercase();
    values
        .iter()
        .find(|v| *v == typed)
        .or_else(|| values.iter().find(loosely_equal))
        .or_else(|| values.first())
        .map_or_else(|| typed.to_string(), String::clone)
}

/// rustls configuration trusting `ca_file` (if any) plus the system bundle (if readable).
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ConfigError(format!("[ldap] ca_file = {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ConfigError(format!(
                "[ldap] ca_file = {}: no PEM certificate in the file",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ConfigError(format!("[ldap] ca_file = {}: {e}", path.display())))?;
        }
    }
    if let Ok(system) = CertificateDer::pem_file_iter(SYSTEM_CA_BUNDLE) {
        // A bundle entry rustls cannot use is skipped, as every TLS client does.
        let _ = roots.add_parsable_certificates(system.flatten());
    }
    if roots.is_empty() {
        return Err(ConfigError(format!(
            "[ldap] no CA certificate to verify the LDAP server with: {SYSTEM_CA_BUNDLE} is \
             missing; set [ldap] ca_file"
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS setup for LDAP: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Escape a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`, `\`, NUL and
/// every byte outside printable ASCII become `\xx`. Escaping non-ASCII bytes too (UTF-8
/// is escaped byte by byte) is allowed by the RFC and leaves nothing for a server's own
/// parser to reinterpret.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b == b' ' || (b.is_ascii_graphic() && !matches!(b, b'*' | b'(' | b')' | b'\\')) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_filter_metacharacters() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("a*"), "a\\2a");
        assert_eq!(escape_filter_value("alice)(uid=*"), "alice\\29\\28uid=\\2a");
        assert_eq!(
            escape_filter_value("*)(|(uid=*"),
            "\\2a\\29\\28|\\28uid=\\2a"
        );
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("a\0b"), "a\\00b");
        assert_eq!(escape_filter_value("John Doe"), "John Doe");
        assert_eq!(escape_filter_value("tab\there"), "tab\\09here");
        assert_eq!(escape_filter_value("del\x7f"), "del\\7f");
        assert_eq!(escape_filter_value("jürgen"), "j\\c3\\bcrgen");
        assert_eq!(escape_filter_value(""), "");
    }

    fn backend(gid_attribute: &str) -> LdapBackend {
        LdapBackend {
            url: "ldap://127.0.0.1:1".into(),
            start_tls: false,
            tls: None,
            tls_verify: true,
            base_dn: "dc=example,dc=org".into(),
            username_attribute: "uid".into(),
            gid_attribute: gid_attribute.into(),
            valid_gid: "5000".into(),
            bind_dn: String::new(),
            bind_password: String::new(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn builds_filters() {
        assert_eq!(
            backend("gidNumber").filter("alice"),
            "(&(uid=alice)(gidNumber=5000))"
        );
        assert_eq!(backend("").filter("alice"), "(uid=alice)");
        assert_eq!(backend("").filter("*)(uid=*"), "(uid=\\2a\\29\\28uid=\\2a)");
    }

    #[test]
    fn canonical_names_come_from_the_entry() {
        let entry = |attrs: &[(&str, &[&str])]| SearchEntry {
            dn: "uid=alice,dc=example,dc=org".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: Default::default(),
        };
        let alice = entry(&[("uid", &["alice"])]);
        assert_eq!(canonical_name(&alice, "uid", "ALICE"), "alice");
        assert_eq!(canonical_name(&alice, "UID", "alice "), "alice");
        let several = entry(&[("uid", &["a.smith", "Alice", "alice"])]);
        assert_eq!(canonical_name(&several, "uid", "alice"), "alice");
        assert_eq!(canonical_name(&several, "uid", "ALICE"), "Alice");
        assert_eq!(canonical_name(&several, "uid", "asmith"), "a.smith");
        let unreadable = entry(&[]);
        assert_eq!(canonical_name(&unreadable, "uid", "ALICE"), "ALICE");
    }

    #[test]
    fn ca_file_errors_show_at_start() {
        let missing = tls_config(Some(std::path::Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(
            missing
                .0
                .starts_with("[ldap] ca_file = /nonexistent/ca.pem"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("grur-ldap-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let err = tls_config(Some(&not_pem)).err().unwrap();
        assert!(err.0.contains("no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
