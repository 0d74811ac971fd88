//! Every configuration key, once: section, name, default, what it means.
//!
//! This table is the only place a key is declared. It feeds the defaults the parser lays
//! a file over, `--print-default-config`, the unknown-key check (with "did you mean"),
//! and README's table of keys (a test keeps README in sync). Reading a key that is not
//! here is a bug that `Reader` catches in debug builds.

/// One key of the config file.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub section: &'static str,
    pub name: &'static str,
    /// As printed by `--print-default-config` (the original's value where it had the key).
    pub default: &'static str,
    /// One line for the printed default config and README's table.
    pub doc: &'static str,
    /// The original Python service knew this key.
    pub original: bool,
}

/// A key this implementation added (`original: false`).
const fn key(
    section: &'static str,
    name: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        section,
        name,
        default,
        doc,
        original: false,
    }
}

/// A key the original service knew.
const fn original(
    section: &'static str,
    name: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        original: true,
        ..key(section, name, default, doc)
    }
}

/// The sections, in the order they are printed.
pub const SECTIONS: &[&str] = &["general", "ldap", "jwt", "registry", "htpasswd", "metrics"];

/// All keys, grouped by section in [`SECTIONS`] order.
pub const KEYS: &[Key] = &[
    original("general", "socket_host", "127.0.0.1", "Address to listen on."),
    original("general", "socket_port", "5000", "Port to listen on."),
    original(
        "general",
        "server_prefix",
        "/",
        "Path prefix of every route and every link (e.g. /registry-usage).",
    ),
    original("general", "debug", "False", "Write debug log lines."),
    key(
        "general",
        "refresh_interval",
        "1 hour",
        "How often the registry is scanned, start to start (e.g. 30 minutes, 1 hour, 1d).",
    ),
    key(
        "general",
        "snapshot_file",
        "",
        "Where the last scan is kept across restarts (empty: not kept).",
    ),
    key(
        "general",
        "role",
        "both",
        "both: scan and serve (one instance); collector: scan, write snapshot_file and serve; reader: never scan, serve snapshot_file as a collector writes it (see Read replicas).",
    ),
    key(
        "general",
        "max_snapshot_age",
        "",
        "Oldest data /health accepts before it answers 503, e.g. 15 minutes (empty: 3 x refresh_interval on a reader, no limit on a collector or both).",
    ),
    key(
        "general",
        "worker_threads",
        "2",
        "How many threads answer HTTP requests.",
    ),
    key(
        "general",
        "tls_certificate_file",
        "",
        "PEM certificate chain for HTTPS (with tls_key_file; both empty: plain HTTP).",
    ),
    key(
        "general",
        "tls_key_file",
        "",
        "PEM private key for HTTPS (with tls_certificate_file).",
    ),
    key(
        "general",
        "cors_origin",
        "*",
        "Value of Access-Control-Allow-Origin on every response (empty: no CORS header).",
    ),
    key(
        "general",
        "auth_backend",
        "ldap",
        "Who checks the credentials at /auth_token: ldap or htpasswd.",
    ),
    key(
        "general",
        "trusted_proxies",
        "",
        "Reverse proxies (CIDR ranges or addresses, e.g. 127.0.0.1, ::1) whose X-Forwarded-For names the client for the login limiter (empty: the header is ignored).",
    ),
    key(
        "general",
        "request_header_timeout",
        "10 seconds",
        "A request head (and its body) must arrive within this, from its first byte or the end of the previous response (then 408 and close); also how long a new connection may stay silent.",
    ),
    key(
        "general",
        "keepalive_timeout",
        "75 seconds",
        "How long a connection may stay idle between requests before it is closed.",
    ),
    key(
        "general",
        "send_timeout",
        "60 seconds",
        "A response that makes no progress for this long is dropped; after it a response must average 32 KiB/s.",
    ),
    key(
        "general",
        "max_connections",
        "1024",
        "Connections served at once; past it a new connection is closed at once, never queued.",
    ),
    key(
        "general",
        "max_connections_per_client",
        "64",
        "Connections one client address (IPv6: one /64) may hold; past it a new one is closed at once.",
    ),
    key(
        "general",
        "history_days",
        "400",
        "Days of usage history kept (one point per day: the day's last successful scan).",
    ),
    key(
        "general",
        "history_file",
        "",
        "Where the usage history is kept (empty: <snapshot_file>.history, or in memory only without a snapshot_file).",
    ),
    original(
        "ldap",
        "host",
        "myldap.com",
        "LDAP server: host[:port] means ldaps://host[:port] (as the original), or a full ldap:// or ldaps:// URL.",
    ),
    original(
        "ldap",
        "base_dn",
        "dc=example,dc=com",
        "Subtree searched for the user.",
    ),
    original(
        "ldap",
        "valid_gid",
        "00000",
        "The group id a user must have to log in.",
    ),
    original(
        "ldap",
        "username_attribute",
        "uid",
        "Attribute matched against the login name.",
    ),
    original(
        "ldap",
        "gid_attribute",
        "gidNumber",
        "Attribute matched against valid_gid (empty: no group condition).",
    ),
    key(
        "ldap",
        "start_tls",
        "False",
        "Upgrade an ldap:// connection with StartTLS.",
    ),
    key(
        "ldap",
        "ca_file",
        "",
        "Extra CA certificate(s) (PEM) to trust for the LDAP server.",
    ),
    key(
        "ldap",
        "tls_verify",
        "True",
        "Verify the LDAP server's certificate (turning this off is logged as a warning).",
    ),
    key(
        "ldap",
        "bind_dn",
        "",
        "Service account for the user search (empty: anonymous search, as the original).",
    ),
    key(
        "ldap",
        "bind_password",
        "",
        "Password of bind_dn.",
    ),
    key(
        "ldap",
        "timeout",
        "10 seconds",
        "Time limit for connecting to the LDAP server (TCP, TLS, StartTLS) and for each operation; a server that does not answer in time makes the login a 503.",
    ),
    original(
        "jwt",
        "auth_token_expires",
        "2 weeks",
        "Lifetime of the tokens /auth_token hands out.",
    ),
    original(
        "jwt",
        "secret_key",
        "00000000000000000000000000000000",
        "HS256 signing secret: at least 32 bytes; the placeholder is refused (make one with `head -c 32 /dev/urandom | base64`).",
    ),
    original(
        "registry",
        "gitlab_base_url",
        "https://mygitlab.com/",
        "GitLab, for /jwt/auth when the registry names no token realm.",
    ),
    original(
        "registry",
        "registry_base_url",
        "https://registry.mygitlab.com/",
        "The container registry to scan.",
    ),
    original(
        "registry",
        "username",
        "root",
        "GitLab admin user (only admins are granted registry:catalog:*).",
    ),
    original(
        "registry",
        "access_token",
        "00000000000000000000",
        "That user's personal access token (or the registry's Basic-auth password).",
    ),
    key(
        "registry",
        "concurrency",
        "8",
        "How many requests a scan runs in parallel.",
    ),
    key(
        "registry",
        "page_size",
        "1000",
        "Entries per page of the catalog and tag lists (at most 1000 on Distribution >= 2.8).",
    ),
    key(
        "registry",
        "request_timeout",
        "30 seconds",
        "Time limit for one request to GitLab or the registry.",
    ),
    key(
        "registry",
        "ca_file",
        "",
        "Extra CA certificate(s) (PEM) to trust for GitLab and the registry.",
    ),
    key(
        "registry",
        "tag_dates",
        "true",
        "Read each image's creation date from its config blob (once per image) for the cleanup preview.",
    ),
    key(
        "htpasswd",
        "file",
        "",
        "bcrypt htpasswd file (htpasswd -B) used when auth_backend = htpasswd.",
    ),
    key(
        "metrics",
        "enabled",
        "true",
        "Serve Prometheus metrics at /metrics.",
    ),
    key(
        "metrics",
        "allow",
        "127.0.0.0/8, ::1",
        "Who may scrape /metrics without a token (CIDR ranges or addresses; empty: nobody).",
    ),
    key(
        "metrics",
        "bearer_token_file",
        "",
        "File holding a token a scraper may present as Authorization: Bearer <token> (empty: none).",
    ),
    key(
        "metrics",
        "namespace_depth",
        "1",
        "Namespace levels with namespace_* series (1: top-level namespaces only; 0: none).",
    ),
    key(
        "metrics",
        "top_repositories",
        "0",
        "How many repositories, the largest by exclusive bytes, get repository_* series.",
    ),
];

/// The key `[section] name`, if there is one.
pub fn find(section: &str, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// The default config as `--print-default-config` prints it: every key with its
/// default, a comment line above each.
pub fn default_config() -> String {
    let mut out = String::with_capacity(4096);
    for (i, section) in SECTIONS.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push('[');
        out.push_str(section);
        out.push_str("]\n");
        for k in KEYS.iter().filter(|k| k.section == *section) {
            out.push_str("# ");
            out.push_str(k.doc);
            out.push('\n');
            out.push_str(k.name);
            out.push_str(" =");
            if !k.default.is_empty() {
                out.push(' ');
                // `%` is ConfigParser's interpolation character; no default has one.
                out.push_str(k.default);
            }
            out.push('\n');
        }
    }
    out
}

/// README's table of keys (between its `config-keys` markers), generated from [`KEYS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let default = if k.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", k.default)
        };
        let new = if k.original { "" } else { " (new)" };
        out.push_str(&format!(
            "| `[{}] {}` | {} | {}{} |\n",
            k.section,
            k.name,
            default,
            k.doc.replace('|', "\\|"),
            new
        ));
    }
    out
}

/// The name in `candidates` closest to `word` (at most 2 edits, or 3 for long names),
/// for "did you mean" hints.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = word.chars().count();
    let limit = if length > 12 { 3 } else { 2 };
    candidates
        .into_iter()
        // The distance is at least the difference in length: a long misspelling (a whole
        // line pasted as a key) is compared with no name, not with every one.
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit
/// (optimal string alignment), over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for transpositions), one back, current.
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_grouped_by_section_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        let mut last_section = 0;
        for k in KEYS {
            let s = SECTIONS
                .iter()
                .position(|s| *s == k.section)
                .expect("known section");
            assert!(
                s >= last_section,
                "{} {} is out of section order",
                k.section,
                k.name
            );
            last_section = s;
            assert!(
                seen.insert((k.section, k.name)),
                "{} {} twice",
                k.section,
                k.name
            );
            assert!(!k.doc.is_empty() && !k.doc.contains('\n'), "{} doc", k.name);
            assert!(
                !k.default.contains('%'),
                "{} default needs %% escaping",
                k.name
            );
        }
    }

    #[test]
    fn did_you_mean() {
        let general = KEYS
            .iter()
            .filter(|k| k.section == "general")
            .map(|k| k.name);
        assert_eq!(
            closest("refresh_intervall", general.clone()),
            Some("refresh_interval")
        );
        assert_eq!(closest("soket_port", general.clone()), Some("socket_port"));
        assert_eq!(closest("socket_prot", general.clone()), Some("socket_port"));
        assert_eq!(closest("colour", general), None);
        assert_eq!(
            closest("regsitry", SECTIONS.iter().copied()),
            Some("registry")
        );
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }
}

#[cfg(test)]
mod readme {
    /// README's table is [`super::markdown_table`]; on failure, paste the printed table.
    #[test]
    fn readme_key_table() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let start = readme
            .find("<!-- config-keys")
            .expect("README has the marker");
        let body_start = start + readme[start..].find('\n').unwrap() + 1;
        let end = readme
            .find("<!-- /config-keys -->")
            .expect("README has the end marker");
        let table = super::markdown_table();
        assert!(
            readme[body_start..end] == table,
            "README.md's key table is out of date; replace it with:\n{table}"
        );
    }
}
