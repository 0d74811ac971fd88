//! The configuration file: the original service's INI format (Python `ConfigParser`
//! semantics), its defaults, and the keys this implementation adds.
//!
//! Parsing is strict where a mistake would be silent (bad numbers, durations, booleans,
//! URLs: an error naming section, key and value) and lenient where the original was
//! (unknown keys only warn). Nothing here does network I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default config path of the original service.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/gitlab_registry_usage_rest.conf";

/// The placeholder secret of the original's default config; never accepted at start-up.
pub const PLACEHOLDER_SECRET: &str = "00000000000000000000000000000000";

/// The default config, printed by `--print-default-config`. Every key the service reads
/// stands here with its default; the keys the original did not know carry a comment.
pub const DEFAULT_CONFIG: &str = "\
[general]
socket_host = 127.0.0.1
socket_port = 5000
server_prefix = /
debug = False
# How often the registry is scanned, start to start (e.g. 30 minutes, 1 hour, 1d).
refresh_interval = 1 hour
# Where the last scan is kept across restarts (empty: not kept).
snapshot_file =
# How many threads answer HTTP requests.
worker_threads = 2
# PEM certificate chain and key for HTTPS (both empty: plain HTTP).
tls_certificate_file =
tls_key_file =
# Value of Access-Control-Allow-Origin on every response (empty: no CORS header).
cors_origin = *
# Who checks the credentials at /auth_token: ldap or htpasswd.
auth_backend = ldap

[ldap]
host = myldap.com
base_dn = dc=example,dc=com
valid_gid = 00000
username_attribute = uid
gid_attribute = gidNumber
# Upgrade an ldap:// connection with StartTLS.
start_tls = False
# Extra CA certificate(s) (PEM) to trust for the LDAP server.
ca_file =
# Verify the LDAP server's certificate (turning this off is logged as a warning).
tls_verify = True
# Service account for the user search (empty: anonymous search, as the original).
bind_dn =
bind_password =

[jwt]
auth_token_expires = 2 weeks
secret_key = 00000000000000000000000000000000

[registry]
gitlab_base_url = https://mygitlab.com/
registry_base_url = https://registry.mygitlab.com/
username = root
access_token = 00000000000000000000
# How many requests a scan runs in parallel.
concurrency = 8
# Entries per page of the catalog and tag lists (at most 1000 on Distribution >= 2.8).
page_size = 1000
# Time limit for one request to GitLab or the registry.
request_timeout = 30 seconds
# Extra CA certificate(s) (PEM) to trust for GitLab and the registry.
ca_file =

[htpasswd]
# bcrypt htpasswd file (htpasswd -B) used when auth_backend = htpasswd.
file =
";

/// Which backend checks the credentials given to `/auth_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthBackend {
    Ldap,
    Htpasswd,
}

/// The whole validated configuration. Built only by [`Config::parse`].
#[derive(Debug, Clone)]
pub struct Config {
    pub general: General,
    pub ldap: Ldap,
    pub jwt: Jwt,
    pub registry: Registry,
    pub htpasswd: Htpasswd,
}

#[derive(Debug, Clone)]
pub struct General {
    pub socket_host: String,
    pub socket_port: u16,
    /// Normalised: empty for `/`, else `/a/b` (leading slash, no trailing slash).
    pub server_prefix: String,
    pub debug: bool,
    pub refresh_interval: Duration,
    pub snapshot_file: Option<PathBuf>,
    pub worker_threads: usize,
    pub tls_certificate_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Empty: no `Access-Control-Allow-Origin` header.
    pub cors_origin: String,
    pub auth_backend: AuthBackend,
}

#[derive(Debug, Clone)]
pub struct Ldap {
    /// The `host` value as written.
    pub host: String,
    /// `ldap://` or `ldaps://` URL: `host[:port]` without a scheme means `ldaps://`.
    pub url: String,
    pub base_dn: String,
    pub valid_gid: String,
    pub username_attribute: String,
    /// Empty: no gid condition in the search filter.
    pub gid_attribute: String,
    pub start_tls: bool,
    pub ca_file: Option<PathBuf>,
    pub tls_verify: bool,
    /// Empty: anonymous search.
    pub bind_dn: String,
    pub bind_password: String,
}

#[derive(Debug, Clone)]
pub struct Jwt {
    pub auth_token_expires: Duration,
    pub secret_key: String,
}

#[derive(Debug, Clone)]
pub struct Registry {
    /// Always ends with `/`.
    pub gitlab_base_url: String,
    /// Always ends with `/`.
    pub registry_base_url: String,
    pub username: String,
    pub access_token: String,
    pub concurrency: usize,
    pub page_size: u32,
    pub request_timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Htpasswd {
    pub file: Option<PathBuf>,
}

/// A config problem, written for the admin who has to fix the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Raw INI data: section → key → value, keys lower-cased as `ConfigParser` does.
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// Parse INI text the way Python's `ConfigParser` reads the original's config:
/// `key = value` or `key: value`, `#`/`;` comment lines, indented continuation lines,
/// case-insensitive keys, `%%` for a literal `%`.
pub fn parse_ini(text: &str) -> Result<Ini, ConfigError> {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (number, raw) in text.lines().enumerate() {
        let line_no = number + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.len() != trimmed.len();
        if indented {
            if let (Some(s), Some(k)) = (&section, &last_key) {
                let value = ini
                    .get_mut(s)
                    .and_then(|m| m.get_mut(k))
                    .expect("key exists");
                value.push('\n');
                value.push_str(&unescape_percent(trimmed, line_no)?);
                continue;
            }
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| {
                ConfigError(format!(
                    "line {line_no}: section header {trimmed:?} lacks ']'"
                ))
            })?;
            let name = name.trim().to_string();
            ini.entry(name.clone()).or_default();
            section = Some(name);
            last_key = None;
            continue;
        }
        let Some(s) = &section else {
            return Err(ConfigError(format!(
                "line {line_no}: {trimmed:?} stands before any [section] header"
            )));
        };
        let split = trimmed.find(['=', ':']).ok_or_else(|| {
            ConfigError(format!(
                "line {line_no}: expected `key = value`, found {trimmed:?}"
            ))
        })?;
        let key = trimmed[..split].trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(ConfigError(format!(
                "line {line_no}: a value without a key: {trimmed:?}"
            )));
        }
        let value = unescape_percent(trimmed[split + 1..].trim(), line_no)?;
        ini.get_mut(s)
            .expect("section exists")
            .insert(key.clone(), value);
        last_key = Some(key);
    }
    Ok(ini)
}

/// `%%` → `%`. The original used `ConfigParser` interpolation, so a lone `%` was an error
/// there; other `%(name)s` references are not supported and are refused with a message.
fn unescape_percent(value: &str, line_no: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('%') => out.push('%'),
                _ => {
                    return Err(ConfigError(format!(
                        "line {line_no}: a '%' must be written '%%' (value {value:?})"
                    )))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Python's true-strings of the original: true/yes/t/y/1 (any case); false/no/f/n/0.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" | "y" | "1" | "on" => Some(true),
        "false" | "no" | "f" | "n" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// `<int> <unit>` or `<int><unit>`; units s/m/h/d/w with their long forms, any case.
/// A bare number is seconds.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let v = value.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if digits_end == 0 {
        return None;
    }
    let amount: u64 = v[..digits_end].parse().ok()?;
    let unit = v[digits_end..].trim().to_ascii_lowercase();
    let seconds_per_unit = match unit.as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return None,
    };
    amount
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
}

/// Keys every section knows; anything else is warned about.
pub(crate) const KNOWN: &[(&str, &[&str])] = &[
    (
        "general",
        &[
            "socket_host",
            "socket_port",
            "server_prefix",
            "debug",
            "refresh_interval",
            "snapshot_file",
            "worker_threads",
            "tls_certificate_file",
            "tls_key_file",
            "cors_origin",
            "auth_backend",
        ],
    ),
    (
        "ldap",
        &[
            "host",
            "base_dn",
            "valid_gid",
            "username_attribute",
            "gid_attribute",
            "start_tls",
            "ca_file",
            "tls_verify",
            "bind_dn",
            "bind_password",
        ],
    ),
    ("jwt", &["auth_token_expires", "secret_key"]),
    (
        "registry",
        &[
            "gitlab_base_url",
            "registry_base_url",
            "username",
            "access_token",
            "concurrency",
            "page_size",
            "request_timeout",
            "ca_file",
        ],
    ),
    ("htpasswd", &["file"]),
];

/// Reads typed values out of the merged INI, naming section, key and value on error.
struct Reader<'a> {
    ini: &'a Ini,
}

impl Reader<'_> {
    fn raw(&self, section: &str, key: &str) -> &str {
        self.ini
            .get(section)
            .and_then(|m| m.get(key))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn string(&self, section: &str, key: &str) -> String {
        self.raw(section, key).to_string()
    }

    fn invalid(&self, section: &str, key: &str, expected: &str) -> ConfigError {
        ConfigError(format!(
            "[{section}] {key} = {:?}: {expected}",
            self.raw(section, key)
        ))
    }

    fn path(&self, section: &str, key: &str) -> Option<PathBuf> {
        let v = self.raw(section, key).trim();
        (!v.is_empty()).then(|| PathBuf::from(v))
    }

    fn boolean(&self, section: &str, key: &str) -> Result<bool, ConfigError> {
        parse_bool(self.raw(section, key)).ok_or_else(|| {
            self.invalid(
                section,
                key,
                "expected a boolean (true/yes/1 or false/no/0)",
            )
        })
    }

    fn duration(&self, section: &str, key: &str) -> Result<Duration, ConfigError> {
        match parse_duration(self.raw(section, key)) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self.invalid(
                section,
                key,
                "expected a positive duration such as `90s`, `30 minutes`, `1 hour`, `2 weeks`",
            )),
        }
    }

    fn number<T: std::str::FromStr + PartialOrd + fmt::Display>(
        &self,
        section: &str,
        key: &str,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        match self.raw(section, key).trim().parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(self.invalid(
                section,
                key,
                &format!("expected a whole number from {min} to {max}"),
            )),
        }
    }

    fn base_url(&self, section: &str, key: &str) -> Result<String, ConfigError> {
        let v = self.raw(section, key).trim();
        let rest = v
            .strip_prefix("https://")
            .or_else(|| v.strip_prefix("http://"))
            .ok_or_else(|| self.invalid(section, key, "expected an http:// or https:// URL"))?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
            return Err(self.invalid(
                section,
                key,
                "expected an http(s) URL with a host and no query",
            ));
        }
        let mut url = v.to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(url)
    }
}

impl Config {
    /// Defaults first, then `text` laid over them, then validation.
    /// Returns the config and the warnings (unknown sections and keys).
    pub fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let mut ini = parse_ini(DEFAULT_CONFIG).expect("the default config parses");
        let user = parse_ini(text)?;
        let mut warnings = Vec::new();
        for (section, keys) in user {
            let known = KNOWN.iter().find(|(s, _)| *s == section).map(|(_, k)| *k);
            match known {
                None => warnings.push(format!("unknown section [{section}] is ignored")),
                Some(known) => {
                    for key in keys.keys().filter(|k| !known.contains(&k.as_str())) {
                        warnings.push(format!("unknown key [{section}] {key} is ignored"));
                    }
                }
            }
            ini.entry(section).or_default().extend(keys);
        }
        let config = Self::from_ini(&ini)?;
        Ok((config, warnings))
    }

    fn from_ini(ini: &Ini) -> Result<Config, ConfigError> {
        let r = Reader { ini };
        let prefix = r.raw("general", "server_prefix").trim();
        if !prefix.starts_with('/') || prefix.contains(['?', '#', ' ', '%']) {
            return Err(r.invalid(
                "general",
                "server_prefix",
                "expected a path starting with '/'",
            ));
        }
        let server_prefix = prefix.trim_end_matches('/').to_string();
        let auth_backend = match r
            .raw("general", "auth_backend")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "ldap" => AuthBackend::Ldap,
            "htpasswd" => AuthBackend::Htpasswd,
            _ => return Err(r.invalid("general", "auth_backend", "expected `ldap` or `htpasswd`")),
        };
        let socket_host = r.raw("general", "socket_host").trim().to_string();
        if socket_host.is_empty() {
            return Err(r.invalid("general", "socket_host", "expected an address to listen on"));
        }
        let general = General {
            socket_host,
            socket_port: r.number("general", "socket_port", 0u16, u16::MAX)?,
            server_prefix,
            debug: r.boolean("general", "debug")?,
            refresh_interval: r.duration("general", "refresh_interval")?,
            snapshot_file: r.path("general", "snapshot_file"),
            worker_threads: r.number("general", "worker_threads", 1usize, 256)?,
            tls_certificate_file: r.path("general", "tls_certificate_file"),
            tls_key_file: r.path("general", "tls_key_file"),
            cors_origin: r.raw("general", "cors_origin").trim().to_string(),
            auth_backend,
        };
        if general.tls_certificate_file.is_some() != general.tls_key_file.is_some() {
            return Err(ConfigError(
                "[general] tls_certificate_file and tls_key_file must be set together".into(),
            ));
        }
        if general.cors_origin.contains(['\r', '\n']) {
            return Err(r.invalid("general", "cors_origin", "must be a single line"));
        }

        let host = r.raw("ldap", "host").trim().to_string();
        let url = ldap_url(&host).ok_or_else(|| {
            r.invalid(
                "ldap",
                "host",
                "expected host[:port] or an ldap:// or ldaps:// URL",
            )
        })?;
        let ldap = Ldap {
            host,
            url,
            base_dn: r.string("ldap", "base_dn"),
            valid_gid: r.string("ldap", "valid_gid"),
            username_attribute: r.raw("ldap", "username_attribute").trim().to_string(),
            gid_attribute: r.raw("ldap", "gid_attribute").trim().to_string(),
            start_tls: r.boolean("ldap", "start_tls")?,
            ca_file: r.path("ldap", "ca_file"),
            tls_verify: r.boolean("ldap", "tls_verify")?,
            bind_dn: r.string("ldap", "bind_dn"),
            bind_password: r.string("ldap", "bind_password"),
        };
        for (key, value) in [
            ("username_attribute", &ldap.username_attribute),
            ("gid_attribute", &ldap.gid_attribute),
        ] {
            let ok = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.');
            if !ok || (key == "username_attribute" && value.is_empty()) {
                return Err(r.invalid("ldap", key, "expected an LDAP attribute name"));
            }
        }
        if ldap.start_tls && ldap.url.starts_with("ldaps://") {
            return Err(ConfigError(
                "[ldap] start_tls = True needs an ldap:// host URL (ldaps:// is already encrypted)"
                    .into(),
            ));
        }

        let jwt = Jwt {
            auth_token_expires: r.duration("jwt", "auth_token_expires")?,
            secret_key: r.string("jwt", "secret_key"),
        };

        let registry = Registry {
            gitlab_base_url: r.base_url("registry", "gitlab_base_url")?,
            registry_base_url: r.base_url("registry", "registry_base_url")?,
            username: r.string("registry", "username"),
            access_token: r.string("registry", "access_token"),
            concurrency: r.number("registry", "concurrency", 1usize, 256)?,
            page_size: r.number("registry", "page_size", 1u32, 100_000)?,
            request_timeout: r.duration("registry", "request_timeout")?,
            ca_file: r.path("registry", "ca_file"),
        };
        let htpasswd = Htpasswd {
            file: r.path("htpasswd", "file"),
        };
        if auth_backend == AuthBackend::Htpasswd && htpasswd.file.is_none() {
            return Err(ConfigError(
                "[general] auth_backend = htpasswd needs [htpasswd] file = <path to a bcrypt htpasswd file>".into(),
            ));
        }
        Ok(Config {
            general,
            ldap,
            jwt,
            registry,
            htpasswd,
        })
    }

    /// Checks that only matter when the service is about to serve (not for `--collect-once`):
    /// a usable JWT secret.
    pub fn check_serving(&self) -> Result<(), ConfigError> {
        check_secret(&self.jwt.secret_key)
    }
}

/// Refuse the placeholder secret and anything shorter than 32 bytes.
pub fn check_secret(secret: &str) -> Result<(), ConfigError> {
    const HOW: &str =
        "make one with `head -c 32 /dev/urandom | base64` and set it as [jwt] secret_key";
    if secret == PLACEHOLDER_SECRET || secret.bytes().all(|b| b == b'0') {
        return Err(ConfigError(format!(
            "[jwt] secret_key is the placeholder of the default config; anyone could forge tokens: {HOW}"
        )));
    }
    if secret.len() < 32 {
        return Err(ConfigError(format!(
            "[jwt] secret_key has {} bytes, at least 32 are needed: {HOW}",
            secret.len()
        )));
    }
    let distinct = secret
        .bytes()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if distinct < 8 {
        return Err(ConfigError(format!(
            "[jwt] secret_key is too repetitive ({distinct} distinct characters): {HOW}"
        )));
    }
    Ok(())
}

/// `host[:port]` → `ldaps://host[:port]` (the original spoke LDAPS only); full URLs as given.
fn ldap_url(host: &str) -> Option<String> {
    let (scheme, rest) = if let Some(rest) = host.strip_prefix("ldap://") {
        ("ldap", rest)
    } else if let Some(rest) = host.strip_prefix("ldaps://") {
        ("ldaps", rest)
    } else if host.contains("://") {
        return None;
    } else {
        ("ldaps", host)
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', ' ', '@']) {
        return None;
    }
    Some(format!("{scheme}://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let (c, warnings) = Config::parse("").unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.general.socket_host, "127.0.0.1");
        assert_eq!(c.general.socket_port, 5000);
        assert_eq!(c.general.server_prefix, "");
        assert!(!c.general.debug);
        assert_eq!(c.ldap.url, "ldaps://myldap.com");
        assert_eq!(c.ldap.valid_gid, "00000");
        assert_eq!(c.jwt.auth_token_expires, Duration::from_secs(14 * 86_400));
        assert_eq!(
            c.registry.registry_base_url,
            "https://registry.mygitlab.com/"
        );
        assert_eq!(c.registry.concurrency, 8);
        assert_eq!(c.registry.page_size, 1000);
        assert_eq!(c.registry.request_timeout, Duration::from_secs(30));
        assert_eq!(c.general.refresh_interval, Duration::from_secs(3600));
        assert!(c.general.snapshot_file.is_none());
        assert!(check_secret(&c.jwt.secret_key).is_err());
    }

    #[test]
    fn file_is_laid_over_defaults() {
        let text = "[general]\nSOCKET_PORT: 8080\nserver_prefix = /usage/\n; comment\n# comment\n\
                    [registry]\nregistry_base_url = http://reg:5000\naccess_token = a%%b\n";
        let (c, _) = Config::parse(text).unwrap();
        assert_eq!(c.general.socket_port, 8080);
        assert_eq!(c.general.server_prefix, "/usage");
        assert_eq!(c.registry.registry_base_url, "http://reg:5000/");
        assert_eq!(c.registry.access_token, "a%b");
        assert_eq!(c.registry.username, "root");
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("2 weeks", 1_209_600),
            ("14d", 1_209_600),
            ("1 hour", 3600),
            ("90s", 90),
            ("90", 90),
            ("5 Minutes", 300),
            ("1w", 604_800),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "h", "1 fortnight", "-1h", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans() {
        for t in ["True", "yes", "T", "y", "1"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["False", "no", "0"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn bad_values_name_section_key_and_value() {
        let err = Config::parse("[general]\nsocket_port = 99999\n").unwrap_err();
        assert_eq!(
            err.0,
            "[general] socket_port = \"99999\": expected a whole number from 0 to 65535"
        );
        let err = Config::parse("[registry]\nrequest_timeout = soon\n").unwrap_err();
        assert!(
            err.0.starts_with("[registry] request_timeout = \"soon\""),
            "{err}"
        );
        let err = Config::parse("[general]\ndebug = perhaps\n").unwrap_err();
        assert!(err.0.starts_with("[general] debug = \"perhaps\""), "{err}");
        let err = Config::parse("[registry]\ngitlab_base_url = ftp://x\n").unwrap_err();
        assert!(err.0.starts_with("[registry] gitlab_base_url"), "{err}");
        assert!(Config::parse("[registry]\nconcurrency = 0\n").is_err());
        assert!(Config::parse("key = value\n").is_err());
        assert!(Config::parse("[jwt]\nsecret_key = 50%\n").is_err());
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, w) = Config::parse("[general]\nsoket_port = 1\n[extra]\na = b\n").unwrap();
        assert_eq!(
            w,
            vec![
                "unknown section [extra] is ignored".to_string(),
                "unknown key [general] soket_port is ignored".to_string()
            ]
        );
    }

    #[test]
    fn ldap_hosts() {
        assert_eq!(
            ldap_url("ldap.example.com:636").unwrap(),
            "ldaps://ldap.example.com:636"
        );
        assert_eq!(
            ldap_url("ldap://127.0.0.1:389").unwrap(),
            "ldap://127.0.0.1:389"
        );
        assert_eq!(ldap_url("ldaps://h/").unwrap(), "ldaps://h");
        assert!(ldap_url("http://h").is_none());
        assert!(ldap_url("").is_none());
    }

    #[test]
    fn secrets() {
        assert!(check_secret(PLACEHOLDER_SECRET).is_err());
        assert!(check_secret("short").is_err());
        assert!(check_secret(&"ab".repeat(20)).is_err());
        assert!(check_secret("Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA").is_ok());
    }

    #[test]
    fn continuation_lines_append() {
        let ini = parse_ini("[a]\nk = one\n  two\n").unwrap();
        assert_eq!(ini["a"]["k"], "one\ntwo");
    }
}
