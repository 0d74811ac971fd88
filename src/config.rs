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

use crate::cidr::CidrList;

/// The default config path of the original service.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/gitlab_registry_usage_rest.conf";

/// The placeholder secret of the original's default config; never accepted at start-up.
pub const PLACEHOLDER_SECRET: &str = "00000000000000000000000000000000";

pub mod keys;

/// The default config, printed by `--print-default-config`: every key with its default
/// and a comment line, generated from [`keys::KEYS`].
pub fn default_config() -> String {
    keys::default_config()
}

/// Which backend checks the credentials given to `/auth_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthBackend {
    Ldap,
    Htpasswd,
}

/// What one instance does with the registry and the snapshot file (`[general] role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Scans and serves, as one instance always did; `snapshot_file` is optional.
    Both,
    /// Scans, writes `snapshot_file` for readers, and serves like `Both`.
    Collector,
    /// Never scans (no registry client is even built): serves `snapshot_file`, reloaded
    /// when a collector replaces it.
    Reader,
}

/// The whole validated configuration. Built only by [`Config::parse`].
#[derive(Debug, Clone)]
pub struct Config {
    pub general: General,
    pub ldap: Ldap,
    pub jwt: Jwt,
    pub registry: Registry,
    pub htpasswd: Htpasswd,
    pub metrics: Metrics,
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
    pub role: Role,
    /// Data older than this turns `/health` to 503; `None`: no limit. Resolved from the
    /// key (empty: 3 × `refresh_interval` on a reader, no limit otherwise).
    pub max_snapshot_age: Option<Duration>,
    pub worker_threads: usize,
    pub tls_certificate_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Empty: no `Access-Control-Allow-Origin` header.
    pub cors_origin: String,
    pub auth_backend: AuthBackend,
    /// Peers whose `X-Forwarded-For` is believed; empty: nobody's.
    pub trusted_proxies: CidrList,
    /// The bounds every connection is served within (see `http::server`).
    pub request_header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub send_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub history_days: u32,
    /// `None`: the history is kept in memory only.
    pub history_file: Option<PathBuf>,
}

/// `[metrics]`: who may scrape `/metrics` and how much it shows.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub enabled: bool,
    /// Empty: nobody without the token.
    pub allow: CidrList,
    pub bearer_token_file: Option<PathBuf>,
    pub namespace_depth: u32,
    pub top_repositories: usize,
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
    /// For connecting (TCP, TLS, StartTLS) and for each operation.
    pub timeout: Duration,
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
    /// Fetch image config blobs for the tags' `created` dates (the cleanup preview).
    pub tag_dates: bool,
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

/// A section or key of the file that no [`keys::KEYS`] entry declares: most often a typo,
/// which would otherwise lose a setting silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// `[section]` or `[section] key`, as written in the file.
    pub entry: String,
    /// The known name it most resembles.
    pub suggestion: Option<String>,
    pub is_section: bool,
}

impl Unknown {
    fn key(section: &str, key: &str) -> Unknown {
        let names = keys::KEYS
            .iter()
            .filter(|k| k.section == section)
            .map(|k| k.name);
        let suggestion = keys::closest(key, names).map(str::to_string).or_else(|| {
            // The right key in the wrong section.
            keys::KEYS
                .iter()
                .find(|k| k.name == key)
                .map(|k| format!("[{}] {}", k.section, k.name))
        });
        Unknown {
            entry: format!("[{section}] {key}"),
            suggestion,
            is_section: false,
        }
    }

    fn section(section: &str) -> Unknown {
        Unknown {
            entry: format!("[{section}]"),
            suggestion: keys::closest(section, keys::SECTIONS.iter().copied())
                .map(|s| format!("[{s}]")),
            is_section: true,
        }
    }
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.is_section { "section" } else { "key" };
        write!(f, "{}: unknown {what}", self.entry)?;
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean {s}?"),
            None => {
                let known = if self.is_section {
                    keys::SECTIONS
                        .iter()
                        .map(|s| format!("[{s}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    "those --print-default-config lists".to_string()
                };
                write!(f, " (known: {known})")
            }
        }
    }
}

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

/// `<int> <unit>` or `<int><unit>`; units s/m/h/d/w with their long forms, any case,
/// and `ms` (not in the original, for time limits below a second). A bare number is
/// seconds.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let v = value.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if digits_end == 0 {
        return None;
    }
    let amount: u64 = v[..digits_end].parse().ok()?;
    let unit = v[digits_end..].trim().to_ascii_lowercase();
    let millis_per_unit = match unit.as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 604_800_000,
        _ => return None,
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
}

/// Reads typed values out of the merged INI, naming section, key and value on error.
struct Reader<'a> {
    ini: &'a Ini,
}

impl Reader<'_> {
    fn raw(&self, section: &str, key: &str) -> &str {
        debug_assert!(
            keys::find(section, key).is_some(),
            "[{section}] {key} is read but not declared in config::keys::KEYS"
        );
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

    fn cidr_list(&self, section: &str, key: &str) -> Result<CidrList, ConfigError> {
        self.raw(section, key)
            .parse()
            .map_err(|e: crate::cidr::CidrError| {
                let expected =
                    format!("entry {e}; expected addresses or CIDR ranges such as 10.0.0.0/8, ::1");
                self.invalid(section, key, &expected)
            })
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
                "expected a positive duration such as `500ms`, `90s`, `30 minutes`, `1 hour`, `2 weeks`",
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
        // The HTTP client takes a port it cannot read (`:99999`) for the scheme's
        // default port, so a typo would silently reach another service.
        let authority = rest.split('/').next().unwrap_or_default();
        let port = authority
            .rsplit_once(':')
            .map(|(_, p)| p)
            .filter(|p| !p.ends_with(']'));
        if port.is_some_and(|p| !p.is_empty() && !matches!(p.parse::<u16>(), Ok(1..))) {
            return Err(self.invalid(section, key, "the port is not a number from 1 to 65535"));
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
    /// Returns the config and the entries of `text` it does not know (unknown sections
    /// and keys), which the running service warns about and `--check-config` refuses.
    pub fn parse(text: &str) -> Result<(Config, Vec<Unknown>), ConfigError> {
        let mut ini = Ini::new();
        for k in keys::KEYS {
            ini.entry(k.section.to_string())
                .or_default()
                .insert(k.name.to_string(), k.default.to_string());
        }
        let user = parse_ini(text)?;
        let mut unknown = Vec::new();
        for (section, entries) in user {
            if keys::SECTIONS.contains(&section.as_str()) {
                for key in entries.keys() {
                    if keys::find(&section, key).is_none() {
                        unknown.push(Unknown::key(&section, key));
                    }
                }
            } else {
                unknown.push(Unknown::section(&section));
            }
            ini.entry(section).or_default().extend(entries);
        }
        let config = Self::from_ini(&ini)?;
        Ok((config, unknown))
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
        let role = match r
            .raw("general", "role")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "both" => Role::Both,
            "collector" => Role::Collector,
            "reader" => Role::Reader,
            _ => {
                return Err(r.invalid(
                    "general",
                    "role",
                    "expected `both`, `collector` or `reader`",
                ))
            }
        };
        let refresh_interval = r.duration("general", "refresh_interval")?;
        let max_snapshot_age = if r.raw("general", "max_snapshot_age").trim().is_empty() {
            (role == Role::Reader).then(|| refresh_interval.saturating_mul(3))
        } else {
            Some(r.duration("general", "max_snapshot_age")?)
        };
        let general = General {
            socket_host,
            socket_port: r.number("general", "socket_port", 0u16, u16::MAX)?,
            server_prefix,
            debug: r.boolean("general", "debug")?,
            refresh_interval,
            snapshot_file: r.path("general", "snapshot_file"),
            role,
            max_snapshot_age,
            worker_threads: r.number("general", "worker_threads", 1usize, 256)?,
            tls_certificate_file: r.path("general", "tls_certificate_file"),
            tls_key_file: r.path("general", "tls_key_file"),
            cors_origin: r.raw("general", "cors_origin").trim().to_string(),
            auth_backend,
            trusted_proxies: r.cidr_list("general", "trusted_proxies")?,
            request_header_timeout: r.duration("general", "request_header_timeout")?,
            keepalive_timeout: r.duration("general", "keepalive_timeout")?,
            send_timeout: r.duration("general", "send_timeout")?,
            max_connections: r.number("general", "max_connections", 1usize, 1_000_000)?,
            max_connections_per_client: r.number(
                "general",
                "max_connections_per_client",
                1usize,
                1_000_000,
            )?,
            history_days: r.number("general", "history_days", 1u32, 100_000)?,
            history_file: r.path("general", "history_file").or_else(|| {
                r.path("general", "snapshot_file").map(|p| {
                    let mut name = p.into_os_string();
                    name.push(".history");
                    PathBuf::from(name)
                })
            }),
        };
        if general.tls_certificate_file.is_some() != general.tls_key_file.is_some() {
            return Err(ConfigError(
                "[general] tls_certificate_file and tls_key_file must be set together".into(),
            ));
        }
        if role != Role::Both && general.snapshot_file.is_none() {
            return Err(ConfigError(format!(
                "[general] role = {} needs [general] snapshot_file = <a path on the volume collector and readers share>",
                r.raw("general", "role").trim()
            )));
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
            timeout: r.duration("ldap", "timeout")?,
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
            tag_dates: r.boolean("registry", "tag_dates")?,
        };
        let htpasswd = Htpasswd {
            file: r.path("htpasswd", "file"),
        };
        if auth_backend == AuthBackend::Htpasswd && htpasswd.file.is_none() {
            return Err(ConfigError(
                "[general] auth_backend = htpasswd needs [htpasswd] file = <path to a bcrypt htpasswd file>".into(),
            ));
        }
        let metrics = Metrics {
            enabled: r.boolean("metrics", "enabled")?,
            allow: r.cidr_list("metrics", "allow")?,
            bearer_token_file: r.path("metrics", "bearer_token_file"),
            namespace_depth: r.number("metrics", "namespace_depth", 0u32, 1000)?,
            top_repositories: r.number("metrics", "top_repositories", 0usize, 1_000_000)?,
        };
        Ok(Config {
            general,
            ldap,
            jwt,
            registry,
            htpasswd,
            metrics,
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
        assert_eq!(c.ldap.timeout, Duration::from_secs(10));
        assert_eq!(c.general.refresh_interval, Duration::from_secs(3600));
        assert!(c.general.snapshot_file.is_none());
        assert_eq!(c.general.request_header_timeout, Duration::from_secs(10));
        assert_eq!(c.general.keepalive_timeout, Duration::from_secs(75));
        assert_eq!(c.general.send_timeout, Duration::from_secs(60));
        assert_eq!(c.general.max_connections, 1024);
        assert_eq!(c.general.max_connections_per_client, 64);
        assert!(check_secret(&c.jwt.secret_key).is_err());
    }

    #[test]
    fn roles_and_the_age_limit_of_their_health() {
        let parse = |text: &str| Config::parse(text).map(|(c, _)| c.general);
        let both = parse("").unwrap();
        assert_eq!((both.role, both.max_snapshot_age), (Role::Both, None));
        let file = "snapshot_file = /shared/snap.json\n";
        let reader = parse(&format!(
            "[general]\nrole = Reader\n{file}refresh_interval = 10m\n"
        ))
        .unwrap();
        assert_eq!(reader.role, Role::Reader);
        assert_eq!(reader.max_snapshot_age, Some(Duration::from_secs(1800)));
        let collector = parse(&format!("[general]\nrole = collector\n{file}")).unwrap();
        assert_eq!(
            (collector.role, collector.max_snapshot_age),
            (Role::Collector, None)
        );
        let limited = parse("[general]\nmax_snapshot_age = 90s\n").unwrap();
        assert_eq!(limited.max_snapshot_age, Some(Duration::from_secs(90)));
        for (text, says) in [
            (
                "[general]\nrole = replica\n",
                "[general] role = \"replica\": expected `both`",
            ),
            (
                "[general]\nrole = reader\n",
                "role = reader needs [general] snapshot_file",
            ),
            (
                "[general]\nrole = collector\n",
                "role = collector needs [general] snapshot_file",
            ),
            (
                "[general]\nmax_snapshot_age = soon\n",
                "[general] max_snapshot_age = \"soon\": expected a positive duration",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?} gave {e}");
        }
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
            ("18446744073709551", 18_446_744_073_709_551),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for (text, millis) in [
            ("300ms", 300),
            ("300 Milliseconds", 300),
            ("1500 msec", 1500),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for bad in [
            "",
            "h",
            "1 fortnight",
            "-1h",
            "1.5h",
            "1 mss",
            "18446744073709552s",
        ] {
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
        let err = Config::parse("[registry]\nregistry_base_url = http://h:99999/\n").unwrap_err();
        assert!(err.0.contains("port is not a number"), "{err}");
        assert!(Config::parse("[registry]\nregistry_base_url = http://[::1]:5000/\n").is_ok());
        assert!(Config::parse("[registry]\nregistry_base_url = http://[::1]/\n").is_ok());
        assert!(Config::parse("[registry]\nconcurrency = 0\n").is_err());
        assert!(Config::parse("key = value\n").is_err());
        assert!(Config::parse("[jwt]\nsecret_key = 50%\n").is_err());
    }

    #[test]
    fn unknown_entries_are_named_with_the_closest_known_one() {
        let text = "[general]\nrefresh_intervall = 1h\nsocket_host = ::1\ncolour = red\n\
                    [regsitry]\nregistry_base_url = http://r/\n[extra]\na = b\n\
                    [ldap]\nconcurrency = 3\n";
        let (c, unknown) = Config::parse(text).unwrap();
        assert_eq!(c.general.socket_host, "::1");
        let lines: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "[extra]: unknown section (known: [general], [ldap], [jwt], [registry], [htpasswd], [metrics])",
                "[general] colour: unknown key (known: those --print-default-config lists)",
                "[general] refresh_intervall: unknown key; did you mean refresh_interval?",
                "[ldap] concurrency: unknown key; did you mean [registry] concurrency?",
                "[regsitry]: unknown section; did you mean [registry]?",
            ]
        );
    }

    #[test]
    fn the_printed_default_config_is_the_table() {
        let text = default_config();
        let (c, unknown) = Config::parse(&text).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(c.general.socket_port, 5000);
        let ini = parse_ini(&text).unwrap();
        for k in keys::KEYS {
            assert_eq!(
                ini[k.section][k.name], k.default,
                "[{}] {}",
                k.section, k.name
            );
        }
        let count: usize = ini.values().map(|m| m.len()).sum();
        assert_eq!(count, keys::KEYS.len());
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
    fn metrics_and_history_keys() {
        let (c, _) = Config::parse("").unwrap();
        assert!(c.metrics.enabled);
        assert!(c.metrics.allow.contains("127.0.0.9".parse().unwrap()));
        assert!(c.metrics.allow.contains("::1".parse().unwrap()));
        assert!(!c.metrics.allow.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(
            (c.metrics.namespace_depth, c.metrics.top_repositories),
            (1, 0)
        );
        assert_eq!(c.general.history_days, 400);
        assert!(
            c.general.history_file.is_none(),
            "no snapshot file: in memory"
        );
        let (c, _) = Config::parse("[general]\nsnapshot_file = /var/lib/x/snap.json\n").unwrap();
        assert_eq!(
            c.general.history_file.as_deref(),
            Some(std::path::Path::new("/var/lib/x/snap.json.history"))
        );
        let (c, _) = Config::parse(
            "[general]\nsnapshot_file = /a/s\nhistory_file = /b/h\n[metrics]\nallow =\n",
        )
        .unwrap();
        assert_eq!(
            c.general.history_file.as_deref(),
            Some(std::path::Path::new("/b/h"))
        );
        assert!(c.metrics.allow.is_empty(), "empty: nobody");
        let e = Config::parse("[metrics]\nallow = 10.0.0.1/8\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("[metrics] allow = \"10.0.0.1/8\""), "{e}");
        let e = Config::parse("[general]\nhistory_days = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("history_days"), "{e}");
    }

    #[test]
    fn trusted_proxies_are_checked_ranges() {
        let (c, _) = Config::parse("").unwrap();
        assert!(c.general.trusted_proxies.is_empty());
        let (c, _) =
            Config::parse("[general]\ntrusted_proxies = 127.0.0.1, 10.0.0.0/8 ::1\n").unwrap();
        assert_eq!(c.general.trusted_proxies.ranges().len(), 3);
        let err =
            Config::parse("[general]\ntrusted_proxies = 127.0.0.1, 10.0.0.1/8\n").unwrap_err();
        assert!(
            err.0.starts_with(
                "[general] trusted_proxies = \"127.0.0.1, 10.0.0.1/8\": entry \"10.0.0.1/8\": "
            ),
            "{err}"
        );
        assert!(err.0.contains("10.0.0.0/8"), "{err}");
    }

    #[test]
    fn continuation_lines_append() {
        let ini = parse_ini("[a]\nk = one\n  two\n").unwrap();
        assert_eq!(ini["a"]["k"], "one\ntwo");
    }
}
