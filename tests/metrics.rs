//! `/metrics` and the usage history against the real binary in front of a real registry:
//! promtool checks the live exposition, a real Prometheus scrapes it and answers queries,
//! access is refused outside `[metrics] allow`, and the history survives SIGKILL.

mod support;

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::registry::{Registry, RegistryAuth};
use support::{free_port, http_request, require_binary, service, ChildGuard, TempDir};

const PREFIX: &str = "gitlab_registry_usage_";

/// `promtool check metrics` on `text`: Ok, or its complaints.
fn promtool_check(text: &str) -> Result<(), String> {
    let promtool = require_binary("promtool", "prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// The value of the sample `name{labels}` (exactly as written in the exposition).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

/// `GET path` over a socket bound to `source` (so the service sees that address).
fn get_from(source: Ipv4Addr, port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = support::net::connect_from(source, port, None)
        .unwrap_or_else(|e| panic!("connect from {source}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Percent-encodes a query parameter value.
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus server scraping `target` every second, on its own port and data
/// directory, stopped by its guard.
struct Prometheus {
    _guard: ChildGuard,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, target_port: u16) -> Prometheus {
        let binary = require_binary("prometheus", "prometheus");
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: registry-usage\n    metrics_path: /metrics\n\
                 \x20   static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let data = dir.join("prometheus-data");
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let guard = ChildGuard::new("prometheus", child);
        support::wait_for_port(port, Duration::from_secs(60), "prometheus");
        Prometheus {
            _guard: guard,
            port,
        }
    }

    /// Polls an instant query until it has a result; returns its first value.
    fn wait_for_value(&self, query: &str, dir: &Path) -> String {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            self.port,
            query_escape(query)
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = http_request("GET", &url, &[], None);
            if r.status == 200 {
                let json = r.json();
                if let Some(value) = json["data"]["result"][0]["value"][1].as_str() {
                    return value.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has no {query} after 90 s: {} {}\n{}",
                r.status,
                r.text(),
                support::file_tail(&dir.join("prometheus.log"), 4000)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn live_metrics_pass_promtool_and_a_real_prometheus_reads_the_namespace_numbers() {
    let registry = Registry::start(RegistryAuth::None);
    service::push_example_images(&registry);
    let dir = TempDir::new("metrics");
    let service = service::start(
        dir.path(),
        &registry.url,
        "",
        "[metrics]\nnamespace_depth = 2\ntop_repositories = 2\n",
    );
    service.wait_for_data();
    let token = service.login();
    let auth = format!("Bearer {token}");
    let group = http_request(
        "GET",
        &service.at("/namespaces/group"),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(group.status, 200, "{}", group.text());
    let exclusive = group.json()["exclusive_size"].as_u64().unwrap();
    // Whatever the layer sizes, group/app's and group/sub/tool's own layers are exclusive.
    assert!(exclusive > 0);
    let _ = http_request(
        "GET",
        &service.at("/repositories/group/app"),
        &[("Authorization", &auth)],
        None,
    );

    let r = http_request("GET", &service.at("/metrics"), &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    promtool_check(&text).unwrap_or_else(|e| panic!("promtool: {e}\n{text}"));
    let ns = |family: &str, namespace: &str| {
        sample(
            &text,
            &format!("{PREFIX}{family}{{namespace=\"{namespace}\"}}"),
        )
    };
    assert_eq!(
        ns("namespace_exclusive_bytes", "group"),
        Some(exclusive.to_string())
    );
    assert_eq!(
        ns("namespace_deduplicated_bytes", "group"),
        Some(
            group.json()["deduplicated_size"]
                .as_u64()
                .unwrap()
                .to_string()
        )
    );
    assert_eq!(ns("namespace_repositories", "group"), Some("2".into()));
    assert_eq!(ns("namespace_tags", "group"), Some("3".into()));
    // namespace_depth = 2 reaches group/sub, not deeper; a name without `/` is no namespace.
    assert!(ns("namespace_tags", "group/sub").is_some(), "{text}");
    assert!(ns("namespace_tags", "odd.name__x").is_some(), "{text}");
    assert!(ns("namespace_tags", "solo").is_none(), "{text}");
    assert_eq!(
        sample(&text, &format!("{PREFIX}repositories")),
        Some("4".into())
    );
    assert_eq!(sample(&text, &format!("{PREFIX}tags")), Some("5".into()));
    assert_eq!(sample(&text, &format!("{PREFIX}up")), Some("1".into()));
    assert_eq!(
        sample(&text, &format!("{PREFIX}failed_repositories")),
        Some("0".into())
    );
    // Top 2 repositories by exclusive bytes; the other two are counted as omitted.
    let repository_series = text
        .lines()
        .filter(|l| l.starts_with(&format!("{PREFIX}repository_exclusive_bytes{{")))
        .count();
    assert_eq!(repository_series, 2, "{text}");
    assert_eq!(
        sample(&text, &format!("{PREFIX}omitted_repositories")),
        Some("2".into())
    );
    // Request counters are by route template, never by raw path.
    assert_eq!(
        sample(
            &text,
            &format!("{PREFIX}http_requests_total{{route=\"/namespaces/{{path}}\",code=\"200\"}}")
        ),
        Some("1".into())
    );
    assert!(
        sample(
            &text,
            &format!(
                "{PREFIX}http_requests_total{{route=\"/repositories/{{name}}\",code=\"200\"}}"
            )
        )
        .is_some(),
        "{text}"
    );
    assert!(!text.contains("route=\"/repositories/group"), "{text}");
    assert!(text.contains(&format!(
        "{PREFIX}scan_requests_total{{kind=\"manifest_get\"}} "
    )));
    assert!(text.contains(&format!("{PREFIX}build_info{{version=\"")));

    let prometheus = Prometheus::start(dir.path(), service.port);
    let scraped = prometheus.wait_for_value(
        &format!("{PREFIX}namespace_exclusive_bytes{{namespace=\"group\"}}"),
        dir.path(),
    );
    assert_eq!(scraped, exclusive.to_string());
    let up = prometheus.wait_for_value("up{job=\"registry-usage\"}", dir.path());
    assert_eq!(up, "1");

    // The dashboard and the alerts use only families the service exports, in queries
    // this Prometheus accepts.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for file in [
        "contrib/grafana-dashboard.json",
        "contrib/prometheus-rules.yml",
    ] {
        let content = std::fs::read_to_string(manifest_dir().join(file)).unwrap();
        for (i, _) in content.match_indices(PREFIX) {
            let name: String = content[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                families.contains(&name.as_str()),
                "{file} uses {name}, which /metrics does not have"
            );
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_dir().join("contrib/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 8, "{exprs:?}");
    for expr in exprs {
        let query = expr
            .replace("$instance", ".*")
            .replace("$top", "10")
            .replace("$__rate_interval", "1m");
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={}",
            prometheus.port,
            query_escape(&query)
        );
        let r = http_request("GET", &url, &[], None);
        assert_eq!(r.status, 200, "the dashboard's {expr}: {}", r.text());
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = require_binary("promtool", "prometheus");
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(manifest_dir().join("contrib/prometheus-rules.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = Command::new(&promtool)
        .current_dir(manifest_dir().join("tests"))
        .args(["test", "rules", "prometheus-rules.test.yml"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&test.stdout);
    assert!(
        test.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn metrics_are_refused_outside_allow_unless_the_scrape_token_is_presented() {
    let registry = Registry::start(RegistryAuth::None);
    let dir = TempDir::new("metrics-403");
    let token_file = dir.path().join("scrape-token");
    std::fs::write(&token_file, "Zq7-w8Lr2Kp5Nx0Vb3Mc9Hd\n").unwrap();
    let service = service::start(
        dir.path(),
        &registry.url,
        "",
        &format!(
            "[metrics]\nallow = 127.0.0.1/32\nbearer_token_file = {}\n",
            token_file.display()
        ),
    );
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let (status, body) = get_from(other, service.port, "/metrics", &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("[metrics] allow"), "{body}");
    let (status, _) = get_from(
        other,
        service.port,
        "/metrics",
        &[("Authorization", "Bearer Zq7-w8Lr2Kp5Nx0Vb3Mc9He")],
    );
    assert_eq!(status, 403, "a different token is refused");
    let (status, body) = get_from(
        other,
        service.port,
        "/metrics",
        &[("Authorization", "Bearer Zq7-w8Lr2Kp5Nx0Vb3Mc9Hd")],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{PREFIX}up ")), "{body}");
    let (status, _) = get_from(Ipv4Addr::LOCALHOST, service.port, "/metrics", &[]);
    assert_eq!(status, 200);
    // The refusals were counted too.
    let (_, body) = get_from(Ipv4Addr::LOCALHOST, service.port, "/metrics", &[]);
    assert_eq!(
        sample(
            &body,
            &format!("{PREFIX}http_requests_total{{route=\"/metrics\",code=\"403\"}}")
        ),
        Some("2".into()),
        "{body}"
    );

    let off = TempDir::new("metrics-off");
    let service = service::start(
        off.path(),
        &registry.url,
        "",
        "[metrics]\nenabled = false\n",
    );
    let (status, body) = get_from(Ipv4Addr::LOCALHOST, service.port, "/metrics", &[]);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_weak_scrape_token_file_stops_the_start_with_a_clear_error() {
    let dir = TempDir::new("metrics-weak");
    let token_file = dir.path().join("scrape-token");
    std::fs::write(&token_file, "secret\n").unwrap();
    let conf = dir.path().join("service.conf");
    std::fs::write(
        &conf,
        format!(
            "[general]\nsocket_port = {}\n[jwt]\nsecret_key = {}\n[metrics]\nbearer_token_file = {}\n",
            free_port(),
            service::SECRET,
            token_file.display()
        ),
    )
    .unwrap();
    let out = Command::new(service::BIN)
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("run the service");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bearer_token_file") && stderr.contains("shorter than 16 bytes"),
        "{stderr}"
    );
}

/// Today as `date -u +%F` would print it.
fn today() -> String {
    let out = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn history_is_served_per_series_and_survives_sigkill() {
    let registry = Registry::start(RegistryAuth::None);
    service::push_example_images(&registry);
    let dir = TempDir::new("history");
    let snapshot = dir.path().join("snapshot.json");
    let general = format!("snapshot_file = {}\n", snapshot.display());
    let mut service = service::start(dir.path(), &registry.url, &general, "");
    service.wait_for_data();
    let token = service.login();
    let auth = format!("Bearer {token}");
    let get = |service: &service::Service, path: &str| {
        http_request("GET", &service.at(path), &[("Authorization", &auth)], None)
    };
    let repo = get(&service, "/repositories/group/app").json();
    let history = get(&service, "/repositories/group/app/history");
    assert_eq!(history.status, 200, "{}", history.text());
    assert_eq!(history.header("content-type"), Some("application/json"));
    let h = history.json();
    assert_eq!(h["name"], "group/app");
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{h}");
    assert_eq!(points[0]["date"], today());
    assert_eq!(points[0]["size"], repo["size"]);
    assert_eq!(points[0]["tag_count"], 2);
    let ns = get(&service, "/namespaces/group").json();
    let nh = get(&service, "/namespaces/group/history").json();
    assert_eq!(nh["name"], "group");
    assert_eq!(nh["points"][0]["exclusive_size"], ns["exclusive_size"]);
    assert_eq!(
        nh["points"][0]["deduplicated_size"],
        ns["deduplicated_size"]
    );
    let registry_history = get(&service, "/history").json();
    assert_eq!(registry_history["points"][0]["tag_count"], 5);

    assert_eq!(get(&service, "/history?days=0").status, 400);
    assert_eq!(get(&service, "/history?days=x").status, 400);
    assert_eq!(
        get(&service, "/history?days=1").json()["points"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(get(&service, "/repositories/nope/history").status, 404);
    let anonymous = http_request("GET", &service.at("/history"), &[], None);
    assert_eq!(anonymous.status, 401);

    let history_file = dir.path().join("snapshot.json.history");
    assert!(
        history_file.is_file(),
        "history_file defaults to <snapshot_file>.history"
    );
    // SIGKILL: nothing is flushed on the way out; the file must hold what was answered.
    service.guard.kill();
    let service = service::start(dir.path(), &registry.url, &general, "");
    service.wait_for_data();
    let token = service.login();
    let again = http_request(
        "GET",
        &service.at("/repositories/group/app/history"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
    .json();
    assert_eq!(again["points"].as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again["points"][0], points[0]);
}

#[test]
fn label_values_with_quotes_backslashes_and_newlines_pass_promtool() {
    use gitlab_registry_usage_rest::current::Current;
    use gitlab_registry_usage_rest::metrics::{render_usage, Limits};
    use gitlab_registry_usage_rest::snapshot::{Builder, LayerRef, ScannedTag};
    // Names no registry accepts, but a snapshot file could hold: the encoder must not
    // let them break the exposition.
    let names = ["we\"ird/a", "back\\slash/b", "new\nline/c", "ünï/d"];
    let mut b = Builder::default();
    for (i, name) in names.iter().enumerate() {
        let tag = ScannedTag {
            name: "v1".into(),
            digest: Some(format!("sha256:{:064x}", i + 100).as_str().into()),
            layers: vec![LayerRef {
                digest: format!("sha256:{:064x}", i + 1).as_str().into(),
                size: 1000 * (i as u64 + 1),
            }]
            .into(),
        };
        b.add_repository(name, Some(vec![tag]), None);
    }
    let current = Current::new(std::sync::Arc::new(b.finish(1.0)));
    let text = render_usage(
        &current,
        Limits {
            namespace_depth: 1,
            top_repositories: 10,
        },
    );
    promtool_check(&text).unwrap_or_else(|e| panic!("promtool: {e}\n{text}"));
    let exclusive = |label: &str| {
        sample(
            &text,
            &format!("{PREFIX}namespace_exclusive_bytes{{namespace=\"{label}\"}}"),
        )
    };
    assert_eq!(exclusive("we\\\"ird"), Some("1000".into()));
    assert_eq!(exclusive("back\\\\slash"), Some("2000".into()));
    assert_eq!(exclusive("new\\nline"), Some("3000".into()));
    assert_eq!(exclusive("ünï"), Some("4000".into()));
    assert_eq!(
        sample(
            &text,
            &format!("{PREFIX}repository_exclusive_bytes{{repository=\"new\\nline/c\"}}")
        ),
        Some("3000".into())
    );
}
