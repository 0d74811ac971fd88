//! The binary as an admin runs it: flags, config errors, `--collect-once` against a real
//! registry, and the snapshot file across a restart.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitlab_registry_usage_rest::config::Config;
use support::push::{Format, PushAuth, Pusher};
use support::registry::{Registry, RegistryAuth};
use support::{free_port, try_http_request, ChildGuard, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const SECRET: &str = "k8Jf2Lq9Vx3Nw7Rt5Yb1Hc6Zm4Pd0Gs2";

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A config for a no-auth registry, htpasswd login (user `admin`, password `pw`).
fn config_text(dir: &Path, registry: &str, port: u16, extra_general: &str) -> String {
    let htpasswd = write(
        dir,
        "htpasswd",
        &format!("admin:{}\n", bcrypt::hash("pw", 4).unwrap()),
    );
    format!(
        "[general]\nsocket_port = {port}\nauth_backend = htpasswd\nrefresh_interval = 1 hour\n{extra_general}\n\
         [jwt]\nsecret_key = {SECRET}\n\
         [htpasswd]\nfile = {}\n\
         [registry]\nregistry_base_url = {registry}\nusername = x\naccess_token = y\nrequest_timeout = 3s\n",
        htpasswd.display()
    )
}

#[test]
fn version_and_default_config() {
    let (code, out, _) = run(&["-V"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("gitlab-registry-usage-rest {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(run(&["--version"]).1, out);

    let (code, out, _) = run(&["--print-default-config"]);
    assert_eq!(code, 0);
    let (parsed, warnings) = Config::parse(&out).expect("the printed default config parses");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(parsed.general.socket_port, 5000);
    for key in [
        "refresh_interval",
        "snapshot_file",
        "concurrency",
        "page_size",
        "request_timeout",
        "ca_file",
    ] {
        let line = out
            .lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(
            out.lines().nth(line - 1).unwrap().starts_with('#'),
            "{key} has a one-line comment above it"
        );
    }

    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config-file",
        "--print-default-config",
        "--version",
        "--check-config",
        "--collect-once",
    ] {
        assert!(out.contains(flag), "--help explains {flag}");
    }
}

#[test]
fn check_config_names_section_key_and_value() {
    let dir = TempDir::new("cli-check");
    let good = write(
        dir.path(),
        "good.conf",
        &config_text(dir.path(), "http://127.0.0.1:9/", 5000, ""),
    );
    let (code, out, err) = run(&["--check-config", "-c", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the configuration is valid"));

    let bad = write(dir.path(), "bad.conf", "[registry]\nconcurrency = lots\n");
    let (code, _, err) = run(&["--check-config", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains(r#"[registry] concurrency = \"lots\""#)
            || err.contains(r#"[registry] concurrency = "lots""#),
        "{err}"
    );

    // the original's default config is refused for serving: the secret is the placeholder
    let default = write(dir.path(), "default.conf", "");
    let (code, _, err) = run(&["--check-config", "-c", default.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("secret_key is the placeholder"), "{err}");

    let (code, _, err) = run(&["-c", dir.path().join("missing.conf").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read it") && err.contains("--print-default-config"),
        "{err}"
    );

    let warn = write(
        dir.path(),
        "warn.conf",
        &(config_text(dir.path(), "http://127.0.0.1:9/", 5000, "socket_prot = 1")),
    );
    let (code, out, err) = run(&["--check-config", "-c", warn.to_str().unwrap()]);
    assert_eq!(
        code, 2,
        "an unknown key is a mistake --check-config must not call valid"
    );
    assert!(!out.contains("valid"), "{out}");
    assert!(
        err.contains("[general] socket_prot: unknown key; did you mean socket_port?"),
        "{err}"
    );

    // A whole section misspelled: its keys would be lost without a word.
    let misspelled = write(
        dir.path(),
        "section.conf",
        &format!(
            "{}\n[regsitry]\nregistry_base_url = http://127.0.0.1:9/\n",
            config_text(dir.path(), "http://127.0.0.1:9/", 5000, "")
        ),
    );
    let (code, _, err) = run(&["--check-config", "-c", misspelled.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("[regsitry]: unknown section; did you mean [registry]?"),
        "{err}"
    );
}

#[test]
fn command_line_mistakes_exit_2_and_say_what_to_do() {
    let (code, out, _) = run(&["-h"]);
    assert_eq!(code, 0, "-h is --help");
    assert!(out.contains("--check-config"), "{out}");

    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, 2, "--help promises 2 for a bad command line");
    assert!(err.contains("--no-such-flag"), "{err}");
    assert!(err.contains("--help"), "says where to look: {err}");

    let (code, _, err) = run(&["-c"]);
    assert_eq!(code, 2, "{err}");

    let (code, out, err) = run(&["--check-config", "--collect-once"]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("--check-config and --collect-once cannot be combined"),
        "{err}"
    );
    let (code, _, err) = run(&["-V", "--print-default-config"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn collect_once_prints_the_embedded_collection() {
    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let base = vec![b'x'; 4000];
    pusher.image("grp/one", "a", &[&base, &[1u8; 10]], Format::Oci);
    pusher.image("grp/two", "b", &[&base, &[2u8; 20]], Format::Docker);
    let dir = TempDir::new("cli-collect");
    let conf = write(
        dir.path(),
        "c.conf",
        &config_text(dir.path(), &registry.url, 5000, ""),
    );
    let (code, out, err) = run(&["--collect-once", "-c", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("scan finished"), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    assert_eq!(doc["repository_count"], 2);
    assert_eq!(doc["tag_count"], 2);
    assert_eq!(doc["size"], 4010 + 4020);
    assert_eq!(doc["disk_size"], 4000 + 10 + 20);
    assert!(doc["timestamp"].as_f64().unwrap() > 1.7e9);
    let items = doc["_embedded"]["items"]
        .as_array()
        .expect("embedded repositories");
    assert_eq!(items[0]["name"], "grp/one");
    assert_eq!(items[0]["disk_size"], 4010);
    assert_eq!(items[1]["disk_size"], 20);
    let tag = &items[1]["_embedded"]["related"]["_embedded"]["items"][0];
    assert_eq!(
        (
            tag["name"].as_str(),
            tag["size"].as_u64(),
            tag["disk_size"].as_u64()
        ),
        (Some("b"), Some(4020), Some(20))
    );
    assert!(
        doc.get("_links").is_none(),
        "links are off unless asked for"
    );

    let down = write(
        dir.path(),
        "down.conf",
        &config_text(
            dir.path(),
            &format!("http://127.0.0.1:{}/", free_port()),
            5000,
            "",
        ),
    );
    let (code, out, err) = run(&["--collect-once", "-c", down.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("scan failed") && err.contains("no answer"),
        "{err}"
    );
}

#[test]
fn report_prints_the_top_namespaces_and_repositories_by_exclusive_size() {
    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    // grp/one and other/x share a 4000-byte layer; grp/one alone holds 3000 bytes more.
    let base = vec![b'x'; 4000];
    pusher.image("grp/one", "a", &[&base, &[1u8; 3000]], Format::Oci);
    pusher.image("other/x", "b", &[&base], Format::Docker);
    let dir = TempDir::new("cli-report");
    let conf = write(
        dir.path(),
        "c.conf",
        &config_text(dir.path(), &registry.url, 5000, ""),
    );
    let conf = conf.to_str().unwrap();
    let (code, out, err) = run(&["--report", "1", "-c", conf]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2..5],
        [
            "namespaces by exclusive size (top 1 of 2)",
            "EXCLUSIVE  DEDUPLICATED     DISK     SIZE  REPOSITORIES  TAGS  NAMESPACE",
            "  2.9 KiB       6.8 KiB  2.9 KiB  6.8 KiB             1     1  grp",
        ],
        "{out}"
    );
    assert!(
        out.contains("repositories by exclusive size (top 1 of 2)"),
        "{out}"
    );
    assert!(
        out.ends_with("  2.9 KiB       6.8 KiB  2.9 KiB  6.8 KiB     1    ok  grp/one\n"),
        "{out}"
    );
    let (code, default, _) = run(&["--report", "-c", conf]);
    assert_eq!(code, 0);
    assert!(default.contains("(top 2 of 2)"), "{default}");
    let (code, _, err) = run(&["-c", conf, "7"]);
    assert_eq!(code, 2);
    assert!(err.contains("only accepted after --report"), "{err}");
}

fn start_service(conf: &Path, stderr: &Path) -> ChildGuard {
    let child = Command::new(BIN)
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap();
    ChildGuard::new("service", child)
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn health(port: u16) -> u16 {
    try_http_request("GET", &format!("http://127.0.0.1:{port}/health"), &[], None)
        .map(|r| r.status)
        .unwrap_or(0)
}

/// `GET path` on the service at `port` with a new token of the test's htpasswd user;
/// the token and the reply.
fn logged_in_get(port: u16, path: &str) -> (String, support::HttpReply) {
    let token = try_http_request(
        "GET",
        &format!("http://127.0.0.1:{port}/auth_token"),
        &[("Authorization", &support::basic_auth("admin", "pw"))],
        None,
    )
    .unwrap()
    .json()["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = try_http_request(
        "GET",
        &format!("http://127.0.0.1:{port}{path}"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
    .unwrap();
    (token, reply)
}

fn terminate(service: &mut ChildGuard) -> i32 {
    unsafe { libc::kill(service.child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_snapshot_file_survives_a_restart_and_a_truncated_one_is_ignored() {
    let mut registry = Registry::start(RegistryAuth::None);
    Pusher::new(&registry.url, PushAuth::None).image("keep/me", "v1", &[&[7u8; 123]], Format::Oci);
    let dir = TempDir::new("cli-snapshot");
    let snapshot = dir.path().join("state").join("snapshot.json");
    std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
    let port = free_port();
    let conf = write(
        dir.path(),
        "s.conf",
        &config_text(
            dir.path(),
            &registry.url,
            port,
            &format!("snapshot_file = {}", snapshot.display()),
        ),
    );
    let log = dir.path().join("stderr.log");

    let mut service = start_service(&conf, &log);
    wait_until(
        "the first scan to be written",
        Duration::from_secs(20),
        || snapshot.exists(),
    );
    assert_eq!(health(port), 200);
    assert_eq!(
        terminate(&mut service),
        0,
        "SIGTERM ends the service with 0"
    );

    // registry gone: the restarted service serves the saved snapshot at once
    registry.stop();
    let mut service = start_service(&conf, &log);
    wait_until("the restarted service", Duration::from_secs(10), || {
        health(port) != 0
    });
    assert_eq!(
        health(port),
        200,
        "served from the snapshot file before any scan"
    );
    let (token, repo) = logged_in_get(port, "/repositories/keep%2Fme");
    assert_eq!(repo.status, 200);
    assert_eq!(repo.json()["size"], 123);
    assert_eq!(terminate(&mut service), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("loaded snapshot file"), "{text}");
    assert!(!text.contains(&token), "tokens are never logged");
    assert!(!text.contains("pw\""), "passwords are never logged");

    // truncated: logged and ignored; the service starts without data
    let bytes = std::fs::read(&snapshot).unwrap();
    std::fs::write(&snapshot, &bytes[..bytes.len() / 2]).unwrap();
    let mut service = start_service(&conf, &log);
    wait_until(
        "the service with a broken file",
        Duration::from_secs(10),
        || health(port) != 0,
    );
    assert_eq!(health(port), 503, "no snapshot yet");
    assert_eq!(terminate(&mut service), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ignoring the snapshot file"), "{text}");
}

/// The cleanup preview end to end against a real registry whose images have known build
/// dates: `--preview-cleanup` (one scan) and the live service's
/// `/namespaces/<path>/cleanup` give the same hand-computed numbers.
#[test]
fn cleanup_preview_against_a_real_registry() {
    let registry = Registry::start(RegistryAuth::None);
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let base = vec![b'b'; 4000];
    let dated = |repo: &str, tag: &str, layers: &[&[u8]], created: &str| {
        pusher.image_created(repo, Some(tag), layers, Format::Oci, created)
    };
    let v1 = dated(
        "grp/app",
        "v1",
        &[&base, &[1u8; 10]],
        "2020-01-01T00:00:00Z",
    );
    // latest is v1's manifest: v1's own layer stays.
    pusher.raw_manifest(
        "grp/app",
        "latest",
        Format::Oci.manifest_type(),
        &v1.manifest,
    );
    dated(
        "grp/app",
        "v2",
        &[&base, &[2u8; 20]],
        "2021-01-01T00:00:00Z",
    );
    dated("grp/app", "v3", &[&[3u8; 50]], "2099-01-01T00:00:00Z");
    dated("grp/app", "keep-x", &[&[4u8; 30]], "2019-01-01T00:00:00Z");
    dated(
        "other/lib",
        "t",
        &[&base, &[5u8; 40]],
        "2019-01-01T00:00:00Z",
    );
    let query = "namespace=grp&name_regex=.*&name_regex_keep=keep-.*&keep_n=1&older_than=90d";

    let dir = TempDir::new("cli-cleanup");
    let port = free_port();
    let conf = write(
        dir.path(),
        "c.conf",
        &config_text(dir.path(), &registry.url, port, ""),
    );
    let (code, out, err) = run(&["--preview-cleanup", query, "-c", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("scan finished"), "{err}");
    // v3 is the newest candidate (keep_n); v2 and v1 are older than 90 days. Freed: v2's
    // own 20 bytes (base is still used by latest and other/lib, v1's by latest).
    let want = "tags deleted: 2\ntags kept: 3\nlogical bytes: 8030\nfreed bytes: 20\n\
                deduplicated size: 4150 before, 4130 after\n\n\
                repository  tags deleted  tags kept  logical bytes  freed bytes\n\
                grp/app                2          3           8030           20\n";
    assert_eq!(out, want);
    let (code, _, err) = run(&[
        "--preview-cleanup",
        "keep_n=x",
        "-c",
        conf.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("keep_n \"x\" is not a non-negative integer"),
        "{err}"
    );
    let (code, _, err) = run(&["--preview-cleanup", "", "--collect-once"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be combined"), "{err}");

    let log = dir.path().join("stderr.log");
    let mut service = start_service(&conf, &log);
    wait_until("the first scan", Duration::from_secs(20), || {
        health(port) == 200
    });
    let (_, reply) = logged_in_get(port, &format!("/namespaces/grp/cleanup?{query}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let doc = reply.json();
    assert_eq!(
        (
            &doc["tags_deleted"],
            &doc["logical_bytes"],
            &doc["freed_bytes"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(8030),
            &serde_json::json!(20)
        )
    );
    assert_eq!(doc["deduplicated_size_after"], 4130);
    let repo = &doc["repositories"][0];
    let deleted: Vec<(&str, &str)> = repo["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["created"].as_str().unwrap()))
        .collect();
    assert_eq!(
        deleted,
        [
            ("v2", "2021-01-01T00:00:00Z"),
            ("v1", "2020-01-01T00:00:00Z")
        ]
    );
    let kept: Vec<(&str, &str)> = repo["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            ("keep-x", "keep_regex"),
            ("latest", "latest"),
            ("v3", "keep_n")
        ]
    );
    assert_eq!(terminate(&mut service), 0);
}
