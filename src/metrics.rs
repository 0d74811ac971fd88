//! `/metrics`: the Prometheus text format (0.0.4), the counters behind it, and the
//! usage families rendered once per snapshot generation.
//!
//! Three kinds of numbers, kept apart by how often they change:
//! - HTTP counters and the latency histogram: bumped by every request, so they are plain
//!   relaxed atomics in fixed arrays indexed by route template and status (three atomic
//!   adds per request, no lock, no allocation); labels are templates, never raw paths.
//! - Scan numbers: written by the refresh thread once per scan (a small mutex).
//! - Usage families (registry, namespaces, top repositories): a function of the snapshot
//!   generation only, rendered once per generation and kept as bytes.
//!
//! The encoder writes a family's HELP, TYPE and samples in one call, so a family is
//! always contiguous and has exactly one HELP and TYPE; label values are escaped
//! (`\`, `"`, newline), there are no timestamps, and byte counts are integers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::current::Current;
use crate::registry::Counts;

/// Prefix of every family name.
pub const PREFIX: &str = "gitlab_registry_usage_";

/// `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Said in the HELP of every family whose numbers come from the snapshot.
const FROM_SCAN: &str = "as of the last successful scan";

/// The metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value: integers stay integers (byte counts must not go through `f64`).
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(u64),
    Float(f64),
}

/// The text being built. Each [`Text::family`] call writes one whole family.
#[derive(Default)]
pub struct Text {
    out: String,
    #[cfg(debug_assertions)]
    names: std::collections::HashSet<String>,
}

/// The samples of one family, written by [`Text::family`]'s closure.
pub struct Family<'t> {
    out: &'t mut String,
    name: &'t str,
}

impl Family<'_> {
    /// One sample; `suffix` is `""`, or `_bucket`, `_sum`, `_count` for a histogram.
    pub fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], value: Value) {
        self.out.push_str(PREFIX);
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str("=\"");
                escape_label_value(self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value {
            Value::Int(n) => {
                let _ = write!(self.out, "{n}");
            }
            Value::Float(f) => write_float(self.out, f),
        }
        self.out.push('\n');
    }

    pub fn int(&mut self, labels: &[(&str, &str)], n: u64) {
        self.sample("", labels, Value::Int(n));
    }
}

impl Text {
    /// Writes family `name` (without the prefix): HELP, TYPE, then what `samples` adds.
    pub fn family(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl FnOnce(&mut Family),
    ) {
        #[cfg(debug_assertions)]
        assert!(
            self.names.insert(name.to_string()),
            "family {name} written twice"
        );
        let _ = writeln!(self.out, "# HELP {PREFIX}{name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {PREFIX}{name} {}", kind.as_str());
        samples(&mut Family {
            out: &mut self.out,
            name,
        });
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: Value) {
        self.family(name, kind, help, |f| f.sample("", &[], value));
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// Label values: `\` → `\\`, `"` → `\"`, newline → `\n` (the format's only escapes).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text: `\` and newline escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` is implied.
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The status codes counted under their own label; any other is counted as `other`.
const CODES: [u16; 17] = [
    200, 204, 301, 304, 400, 401, 403, 404, 405, 406, 408, 413, 414, 429, 431, 500, 503,
];

fn code_slot(status: u16) -> usize {
    CODES
        .iter()
        .position(|&c| c == status)
        .unwrap_or(CODES.len())
}

/// Per-route request counters and latency histogram: fixed arrays of atomics.
pub struct Http {
    templates: &'static [&'static str],
    /// `[route][code slot]`.
    requests: Box<[AtomicU64]>,
    /// `[route][bucket]`, not cumulative (made cumulative when rendered); the last
    /// bucket of a route is `+Inf`.
    buckets: Box<[AtomicU64]>,
    /// `[route]`, nanoseconds.
    sum_nanos: Box<[AtomicU64]>,
}

const SLOTS: usize = CODES.len() + 1;
const BUCKET_SLOTS: usize = BUCKETS.len() + 1;

fn atomics(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Http {
    /// Counters for the routes named by `templates` (a route is an index into it).
    pub fn new(templates: &'static [&'static str]) -> Http {
        Http {
            templates,
            requests: atomics(templates.len() * SLOTS),
            buckets: atomics(templates.len() * BUCKET_SLOTS),
            sum_nanos: atomics(templates.len()),
        }
    }

    /// One answered request. An out-of-range route is counted as the last template.
    pub fn observe(&self, route: usize, status: u16, took: Duration) {
        let route = route.min(self.templates.len() - 1);
        self.requests[route * SLOTS + code_slot(status)].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[route * BUCKET_SLOTS + bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos[route].fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, text: &mut Text) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        text.family(
            "http_requests_total",
            Kind::Counter,
            "HTTP requests answered, by route template and status code.",
            |f| {
                for (r, template) in self.templates.iter().enumerate() {
                    for slot in 0..SLOTS {
                        let n = load(&self.requests[r * SLOTS + slot]);
                        if n == 0 {
                            continue;
                        }
                        let code = CODES.get(slot).map_or("other".to_string(), u16::to_string);
                        f.int(&[("route", template), ("code", &code)], n);
                    }
                }
            },
        );
        text.family(
            "http_request_duration_seconds",
            Kind::Histogram,
            "Time from reading a request to handing its response to the socket, by route template.",
            |f| {
                for (r, template) in self.templates.iter().enumerate() {
                    let counts: Vec<u64> = (0..BUCKET_SLOTS)
                        .map(|b| load(&self.buckets[r * BUCKET_SLOTS + b]))
                        .collect();
                    let count: u64 = counts.iter().sum();
                    if count == 0 {
                        continue;
                    }
                    let mut cumulative = 0;
                    for (b, n) in counts.iter().enumerate() {
                        cumulative += n;
                        let le = BUCKETS.get(b).map_or("+Inf".to_string(), |v| v.to_string());
                        f.sample(
                            "_bucket",
                            &[("route", template), ("le", &le)],
                            Value::Int(cumulative),
                        );
                    }
                    let sum = load(&self.sum_nanos[r]) as f64 / 1e9;
                    f.sample("_sum", &[("route", template)], Value::Float(sum));
                    f.sample("_count", &[("route", template)], Value::Int(count));
                }
            },
        );
    }
}

/// What the refresh thread reports after each scan.
#[derive(Debug, Default, Clone, Copy)]
struct ScanState {
    failures: u64,
    last_duration: Option<Duration>,
    requests: Counts,
}

/// Where to cut the per-namespace and per-repository families (`[metrics]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub namespace_depth: u32,
    pub top_repositories: usize,
}

/// Everything `/metrics` shows. Shared by the HTTP workers and the refresh thread.
pub struct Metrics {
    pub http: Http,
    limits: Limits,
    scans: Mutex<ScanState>,
    /// The usage families of one generation, rendered by the first scrape after it.
    usage: Mutex<Option<(u64, Arc<str>)>>,
}

impl Metrics {
    pub fn new(templates: &'static [&'static str], limits: Limits) -> Metrics {
        Metrics {
            http: Http::new(templates),
            limits,
            scans: Mutex::default(),
            usage: Mutex::default(),
        }
    }

    /// After a successful scan: its duration and the client's request counters so far.
    pub fn scan_succeeded(&self, duration: Duration, requests: Counts) {
        let mut s = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        s.last_duration = Some(duration);
        s.requests = requests;
    }

    /// After a failed scan (failed as a whole, or panicked).
    pub fn scan_failed(&self, requests: Counts) {
        let mut s = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        s.failures += 1;
        s.requests = requests;
    }

    /// The whole exposition: process and scan families, then the usage families of
    /// `current` (cached per generation), then HTTP.
    pub fn render(&self, current: Option<&Current>) -> String {
        let mut text = Text::default();
        text.single(
            "up",
            Kind::Gauge,
            "1 while a snapshot of the registry is served, 0 before the first scan succeeded.",
            Value::Int(current.is_some() as u64),
        );
        text.family(
            "build_info",
            Kind::Gauge,
            "Always 1; the version of this service is in the label.",
            |f| f.int(&[("version", env!("CARGO_PKG_VERSION"))], 1),
        );
        let scans = *self.scans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = current {
            text.single(
                "last_scan_success_timestamp_seconds",
                Kind::Gauge,
                "Unix time at which the scan behind the served snapshot ended.",
                Value::Float(c.snapshot.timestamp),
            );
        }
        if let Some(d) = scans.last_duration {
            text.single(
                "last_scan_duration_seconds",
                Kind::Gauge,
                "How long the last successful scan of this process took.",
                Value::Float(d.as_secs_f64()),
            );
        }
        text.single(
            "scan_failures_total",
            Kind::Counter,
            "Scans that failed as a whole (registry or catalog unreachable) since start.",
            Value::Int(scans.failures),
        );
        let r = scans.requests;
        text.family(
            "scan_requests_total",
            Kind::Counter,
            "Requests made to the registry by scans since start, by kind (retries: repeated attempts).",
            |f| {
                for (kind, n) in [
                    ("token", r.token),
                    ("catalog", r.catalog),
                    ("tags_list", r.tags),
                    ("manifest_head", r.manifest_head),
                    ("manifest_get", r.manifest_get),
                    ("blob_head", r.blob_head),
                    ("retries", r.retries),
                ] {
                    f.int(&[("kind", kind)], n);
                }
            },
        );
        let mut out = text.into_string();
        if let Some(c) = current {
            out.push_str(&self.usage_text(c));
        }
        let mut text = Text::default();
        self.http.render(&mut text);
        out.push_str(&text.into_string());
        out
    }

    fn usage_text(&self, current: &Current) -> Arc<str> {
        let generation = current.usage.generation();
        let mut cached = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, text)) = &*cached {
            if *g == generation {
                return Arc::clone(text);
            }
        }
        let text: Arc<str> = render_usage(current, self.limits).into();
        *cached = Some((generation, Arc::clone(&text)));
        text
    }
}

/// The families that depend only on the snapshot generation.
pub fn render_usage(current: &Current, limits: Limits) -> String {
    let (snapshot, usage) = (&*current.snapshot, &current.usage);
    let mut text = Text::default();
    let failed = snapshot
        .repositories
        .iter()
        .filter(|r| r.error.is_some())
        .count();
    let gauge = |text: &mut Text, name: &str, help: &str, n: u64| {
        text.single(
            name,
            Kind::Gauge,
            &format!("{help}, {FROM_SCAN}."),
            Value::Int(n),
        )
    };
    gauge(
        &mut text,
        "failed_repositories",
        "Repositories whose last scan failed (their previous numbers are kept)",
        failed as u64,
    );
    gauge(
        &mut text,
        "repositories",
        "Repositories in the registry",
        snapshot.totals.repository_count as u64,
    );
    gauge(
        &mut text,
        "tags",
        "Tags in the registry",
        snapshot.totals.tag_count as u64,
    );
    gauge(
        &mut text,
        "logical_bytes",
        "Sum of the sizes of all tags, shared layers counted once per tag",
        snapshot.totals.size,
    );
    gauge(
        &mut text,
        "deduplicated_bytes",
        "Bytes of the distinct layers of all tags",
        usage.deduplicated_size(),
    );

    let shown: Vec<_> = usage
        .namespaces()
        .iter()
        .filter(|n| n.depth < limits.namespace_depth)
        .collect();
    type Field = fn(&crate::usage::namespaces::Namespace) -> u64;
    let namespace_families: [(&str, &str, Field); 5] = [
        (
            "namespace_logical_bytes",
            "Sum of the sizes of the tags of the namespace's repositories",
            |n| n.size,
        ),
        (
            "namespace_deduplicated_bytes",
            "Bytes of the distinct layers of the namespace's tags",
            |n| n.deduplicated_size,
        ),
        (
            "namespace_exclusive_bytes",
            "Bytes of the layers only the namespace's repositories reference (freed by deleting it)",
            |n| n.exclusive_size,
        ),
        (
            "namespace_repositories",
            "Repositories in the namespace, at any depth",
            |n| n.repository_count,
        ),
        (
            "namespace_tags",
            "Tags of the namespace's repositories",
            |n| n.tag_count,
        ),
    ];
    for (name, help, field) in namespace_families {
        text.family(name, Kind::Gauge, &format!("{help}, {FROM_SCAN}."), |f| {
            for n in &shown {
                f.int(&[("namespace", &n.name)], field(n));
            }
        });
    }

    let mut top: Vec<usize> = (0..snapshot.repositories.len()).collect();
    let key = |r: &usize| (std::cmp::Reverse(usage.repository(*r).exclusive_size), *r);
    let keep = limits.top_repositories.min(top.len());
    if keep > 0 && keep < top.len() {
        top.select_nth_unstable_by_key(keep - 1, key);
    }
    top.truncate(keep);
    top.sort_by_key(key);
    type RepoField = fn(&crate::snapshot::Repository, crate::usage::RepositoryUsage) -> u64;
    let repository_families: [(&str, &str, RepoField); 3] = [
        (
            "repository_logical_bytes",
            "Sum of the sizes of the repository's tags (top repositories by exclusive bytes only)",
            |r, _| r.size.unwrap_or(0),
        ),
        (
            "repository_deduplicated_bytes",
            "Bytes of the distinct layers of the repository's tags (top repositories only)",
            |_, u| u.deduplicated_size,
        ),
        (
            "repository_exclusive_bytes",
            "Bytes of the layers no other repository references (top repositories only)",
            |_, u| u.exclusive_size,
        ),
    ];
    if keep > 0 {
        for (name, help, field) in repository_families {
            text.family(name, Kind::Gauge, &format!("{help}, {FROM_SCAN}."), |f| {
                for &r in &top {
                    let repo = &snapshot.repositories[r];
                    f.int(
                        &[("repository", &repo.name)],
                        field(repo, usage.repository(r)),
                    );
                }
            });
        }
    }
    gauge(
        &mut text,
        "omitted_repositories",
        "Repositories without repository_* series ([metrics] top_repositories)",
        (snapshot.repositories.len() - keep) as u64,
    );
    text.into_string()
}

/// The scrape token of `[metrics] bearer_token_file`, compared in constant time.
pub struct ScrapeToken(Box<[u8]>);

impl ScrapeToken {
    /// Reads the file (one line; surrounding whitespace ignored) and refuses an empty or
    /// guessable token: at least 16 bytes with at least 8 distinct ones.
    pub fn load(path: &std::path::Path) -> Result<ScrapeToken, String> {
        const HOW: &str = "make one with `head -c 32 /dev/urandom | base64 > FILE`";
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "[metrics] bearer_token_file {}: cannot read it: {e}",
                path.display()
            )
        })?;
        let token = text.trim();
        let distinct = token
            .bytes()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if token.len() < 16 || distinct < 8 || token.contains(char::is_whitespace) {
            return Err(format!(
                "[metrics] bearer_token_file {}: the token is empty, shorter than 16 bytes, \
                 too repetitive or has spaces; a scraper's token must not be guessable: {HOW}",
                path.display()
            ));
        }
        Ok(ScrapeToken(token.as_bytes().into()))
    }

    /// Whether `authorization` is `Bearer <this token>`. The time taken does not depend
    /// on where the presented token differs.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization.and_then(|a| {
            let (scheme, rest) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        }) else {
            return false;
        };
        constant_time_eq(presented.as_bytes(), &self.0)
    }
}

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(..)")
    }
}

/// Equality whose time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd/é");
        assert_eq!(out, "a\\\\b\\\"c\\nd/é");
    }

    #[test]
    fn a_family_is_contiguous_with_one_help_and_type() {
        let mut text = Text::default();
        text.family("x_bytes", Kind::Gauge, "Bytes\\ of x\nsecond line", |f| {
            f.int(&[("namespace", "a\"b")], 12_345_678_901_234);
            f.int(&[], 0);
        });
        text.single("y", Kind::Counter, "Y.", Value::Float(1.5));
        assert_eq!(
            text.into_string(),
            "# HELP gitlab_registry_usage_x_bytes Bytes\\\\ of x\\nsecond line\n\
             # TYPE gitlab_registry_usage_x_bytes gauge\n\
             gitlab_registry_usage_x_bytes{namespace=\"a\\\"b\"} 12345678901234\n\
             gitlab_registry_usage_x_bytes 0\n\
             # HELP gitlab_registry_usage_y Y.\n\
             # TYPE gitlab_registry_usage_y counter\n\
             gitlab_registry_usage_y 1.5\n"
        );
    }

    #[test]
    fn http_counters_by_template_and_code_with_cumulative_buckets() {
        static T: &[&str] = &["/a", "/b/{name}", "unmatched"];
        let http = Http::new(T);
        http.observe(1, 200, Duration::from_micros(300));
        http.observe(1, 200, Duration::from_millis(3));
        http.observe(1, 404, Duration::from_secs(10));
        http.observe(7, 599, Duration::from_millis(1));
        let mut text = Text::default();
        http.render(&mut text);
        let out = text.into_string();
        let line = |prefix: &str| {
            out.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{out}"))
                .to_string()
        };
        let p = "gitlab_registry_usage_http_";
        assert_eq!(
            line(&format!(
                "{p}requests_total{{route=\"/b/{{name}}\",code=\"200\"}}"
            )),
            format!("{p}requests_total{{route=\"/b/{{name}}\",code=\"200\"}} 2")
        );
        assert!(out.contains(&format!(
            "{p}requests_total{{route=\"unmatched\",code=\"other\"}} 1\n"
        )));
        assert!(!out.contains("route=\"/a\""), "{out}");
        let bucket = |le: &str| {
            line(&format!(
                "{p}request_duration_seconds_bucket{{route=\"/b/{{name}}\",le=\"{le}\"}}"
            ))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
        };
        assert_eq!(bucket("0.0005"), "1");
        assert_eq!(bucket("0.001"), "1");
        assert_eq!(bucket("0.005"), "2");
        assert_eq!(bucket("2.5"), "2");
        assert_eq!(bucket("+Inf"), "3");
        assert!(out.contains(&format!(
            "{p}request_duration_seconds_count{{route=\"/b/{{name}}\"}} 3\n"
        )));
        assert!(out.contains(&format!(
            "{p}request_duration_seconds_sum{{route=\"/b/{{name}}\"}} 10.0033\n"
        )));
    }

    #[test]
    fn scrape_tokens_are_checked_whole() {
        let dir = std::env::temp_dir().join(format!("metrics-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t");
        for weak in [
            "",
            "\n",
            "short-token",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "abcdefgh ijklmnopq",
        ] {
            std::fs::write(&file, weak).unwrap();
            let e = ScrapeToken::load(&file).unwrap_err();
            assert!(
                e.contains("bearer_token_file") && e.contains("/dev/urandom"),
                "{e}"
            );
        }
        assert!(ScrapeToken::load(&dir.join("missing"))
            .unwrap_err()
            .contains("cannot read it"));
        std::fs::write(&file, "s3cr3t-T0ken-0123456789\n").unwrap();
        let t = ScrapeToken::load(&file).unwrap();
        assert!(t.accepts(Some("Bearer s3cr3t-T0ken-0123456789")));
        assert!(t.accepts(Some("bearer  s3cr3t-T0ken-0123456789 ")));
        assert!(!t.accepts(Some("Bearer s3cr3t-T0ken-012345678")));
        assert!(!t.accepts(Some("Bearer s3cr3t-T0ken-0123456789x")));
        assert!(!t.accepts(Some("Basic s3cr3t-T0ken-0123456789")));
        assert!(!t.accepts(None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
