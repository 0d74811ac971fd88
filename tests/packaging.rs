//! What the packaging promises about the binary and the files shipped next to it: the
//! systemd unit is valid and hardened, the service tells systemd it is ready (Type=notify)
//! and exits 0 on SIGTERM, and its log never shows a password or a token.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{basic_auth, file_tail, free_port, try_http_request, ChildGuard, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/gitlab-registry-usage-rest.service"
);
/// Read replicas: one template, the role in each instance's config file.
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/gitlab-registry-usage-rest@.service"
);
const SECRET: &str = "q7Vd2Kx9Lm4Rt8Wz1Nb6Hc3Yf5Gs0Pj2";
const UNIT_NAME: &str = "gitlab-registry-usage-rest.service";

// ---- the systemd unit ---------------------------------------------------------------------

/// The lines the issue asks for; a unit edit that drops one fails here, not in production.
const REQUIRED_UNIT_LINES: &[&str] = &[
    "Type=notify",
    "ExecStart=/usr/local/bin/gitlab-registry-usage-rest -c /etc/gitlab_registry_usage_rest.conf",
    "DynamicUser=yes",
    "StateDirectory=gitlab-registry-usage-rest",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter=@system-service",
    "SystemCallArchitectures=native",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "UMask=0077",
    "Restart=on-failure",
    "RestartSec=5s",
    "TimeoutStopSec=30s",
    "WantedBy=multi-user.target",
];

#[test]
fn the_unit_has_every_hardening_line() {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for required in REQUIRED_UNIT_LINES {
        assert!(
            lines.contains(required),
            "{UNIT} lacks the line `{required}`"
        );
    }
    // Not a capability more than the empty bounding set, unless someone opts in knowingly.
    assert!(
        !lines.iter().any(|l| l.starts_with("AmbientCapabilities=")),
        "AmbientCapabilities= belongs in a drop-in for ports below 1024, not in the shipped unit"
    );
}

/// `systemd-analyze verify FILE`: its exit code and everything it printed.
/// The unit's value of `key` as a number (panics if absent).
fn unit_number(unit: &str, key: &str) -> usize {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the unit sets no numeric {key}="))
}

#[test]
fn the_units_descriptor_and_task_limits_leave_room_for_max_connections() {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let (config, _) = gitlab_registry_usage_rest::config::Config::parse("").unwrap();
    let g = &config.general;
    // Each connection takes two descriptors and a thread; the rest of the service (log,
    // listener, snapshot file, registry and LDAP sockets; workers, logins, scan workers)
    // gets at least as much again as its largest default pool.
    let other = 256;
    let nofile = unit_number(&unit, "LimitNOFILE");
    assert!(
        nofile >= 2 * g.max_connections + other,
        "LimitNOFILE={nofile} is too small for max_connections = {}",
        g.max_connections
    );
    let tasks = unit_number(&unit, "TasksMax");
    assert!(
        tasks >= g.max_connections + g.worker_threads + config.registry.concurrency + other,
        "TasksMax={tasks} is too small for max_connections = {}",
        g.max_connections
    );
}

fn verify(systemd_analyze: &Path, unit: &Path) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(systemd_analyze)
        .args(["verify", "--man=no"])
        .arg(unit)
        // Plain text, and every message at warning level or above.
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_LOG_LEVEL", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze");
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (status.success(), text)
}

/// What `verify` said about the unit in `dir` named `name` (other units it loads, such
/// as the host's targets, may have their own complaints in a container; not ours).
fn lines_about(output: &str, dir: &Path, name: &str) -> Vec<String> {
    let dir = dir.to_string_lossy();
    output
        .lines()
        .filter(|l| l.contains(name) || l.contains(dir.as_ref()))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_systemd_unit_verifies() {
    // .ci/run installs systemd for this test; a machine without it must say so, not pass.
    let systemd_analyze = support::require_binary("systemd-analyze", "systemd");
    let dir = TempDir::new("unit");

    // 1. The tool works here: a trivial unit passes without a word...
    let good = dir.path().join("known-good.service");
    std::fs::write(
        &good,
        format!("[Unit]\nDescription=known good\n\n[Service]\nExecStart={BIN} --version\n"),
    )
    .unwrap();
    let (ok, output) = verify(&systemd_analyze, &good);
    let about_good = lines_about(&output, dir.path(), "known-good.service");
    if !ok || !about_good.is_empty() {
        eprintln!(
            "WARNING: systemd-analyze verify does not work in this environment (a trivial \
             unit fails: {output:?}); the unit file cannot be verified here"
        );
        return;
    }
    // ... and a broken one does not (so silence below means something).
    let broken = dir.path().join("known-bad.service");
    std::fs::write(
        &broken,
        format!("[Service]\nExecStart={BIN} --version\nProtectSystem=bogus\nNoSuchKey=1\n"),
    )
    .unwrap();
    let (_, output) = verify(&systemd_analyze, &broken);
    assert_eq!(
        lines_about(&output, dir.path(), "known-bad.service").len(),
        2,
        "systemd-analyze verify should complain twice about a broken unit: {output}"
    );

    // 2. Ours, with ExecStart pointing at the binary cargo built (verify checks it exists):
    // the single unit, and the read replicas' template as two of its instances.
    for (file, name) in [
        (UNIT, UNIT_NAME),
        (TEMPLATE, "gitlab-registry-usage-rest@collector.service"),
        (TEMPLATE, "gitlab-registry-usage-rest@reader.service"),
    ] {
        const EXEC: &str = "ExecStart=/usr/local/bin/gitlab-registry-usage-rest ";
        let mut rewritten = 0;
        let unit: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|line| match line.strip_prefix(EXEC) {
                Some(args) => {
                    rewritten += 1;
                    format!("ExecStart={BIN} {args}\n")
                }
                None => format!("{line}\n"),
            })
            .collect();
        assert_eq!(rewritten, 1, "one ExecStart= line in {file}");
        let ours = dir.path().join(name);
        std::fs::write(&ours, unit).unwrap();
        let (ok, output) = verify(&systemd_analyze, &ours);
        let about_ours = lines_about(&output, dir.path(), name);
        assert!(
            ok && about_ours.is_empty(),
            "systemd-analyze verify {}: exit {}, about our unit:\n{}\n(all output:\n{output})",
            ours.display(),
            if ok { "0" } else { "non-zero" },
            about_ours.join("\n")
        );
    }
}

/// The template keeps the single unit's sandbox (everything but the dynamic user and its
/// state directory: replicas on several hosts need one fixed uid and a shared directory).
#[test]
fn the_replica_template_keeps_the_sandbox() {
    let template = std::fs::read_to_string(TEMPLATE).unwrap();
    let lines: Vec<&str> = template.lines().map(str::trim).collect();
    for required in REQUIRED_UNIT_LINES.iter().filter(|l| {
        !l.starts_with("DynamicUser=")
            && !l.starts_with("StateDirectory=")
            && !l.starts_with("UMask=")
            && !l.starts_with("ExecStart=")
    }) {
        assert!(
            lines.contains(required),
            "{TEMPLATE} lacks the line `{required}`"
        );
    }
    for required in [
        "ExecStart=/usr/local/bin/gitlab-registry-usage-rest -c /etc/gitlab-registry-usage-rest/%i.conf",
        "User=gitlab-registry-usage-rest",
        "UMask=0027",
        "ReadWritePaths=/srv/gitlab-registry-usage-rest",
        "RequiresMountsFor=/srv/gitlab-registry-usage-rest",
    ] {
        assert!(lines.contains(&required), "{TEMPLATE} lacks the line `{required}`");
    }
}

// ---- the Kubernetes example ----------------------------------------------------------------

const KUBERNETES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contrib/kubernetes/read-replicas.yaml"
);

/// The example's documents, parsed by PyYAML (a real YAML parser; schemathesis, which the
/// contract test needs, brings it).
fn kubernetes_documents() -> Vec<serde_json::Value> {
    let python = support::require_binary("python3", "python3");
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            KUBERNETES,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 cannot parse {KUBERNETES}: {}\n(if PyYAML is missing: pip install pyyaml, or \
         the pinned schemathesis of .ci/run, which brings it)",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_kubernetes_example_wires_readers_to_one_collector_and_its_configs_are_valid() {
    let docs = kubernetes_documents();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{KUBERNETES} has no {kind} {name}"))
    };
    let claim = find("PersistentVolumeClaim", "registry-usage-shared");
    assert_eq!(
        claim["spec"]["accessModes"],
        serde_json::json!(["ReadWriteMany"])
    );
    let collector = find("Deployment", "registry-usage-collector");
    let reader = find("Deployment", "registry-usage-reader");
    assert_eq!(collector["spec"]["replicas"], 1, "one collector");
    assert_eq!(collector["spec"]["strategy"]["type"], "Recreate");
    let service = find("Service", "registry-usage");
    let selector = &service["spec"]["selector"];
    let labels = |d: &serde_json::Value| d["spec"]["template"]["metadata"]["labels"].clone();
    assert_eq!(*selector, labels(reader), "the Service selects the readers");
    assert_ne!(*selector, labels(collector), "and not the collector");
    let container = |d: &serde_json::Value| d["spec"]["template"]["spec"]["containers"][0].clone();
    let probe = &container(reader)["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/health");

    let secret = find("Secret", "registry-usage-config");
    let dir = TempDir::new("kubernetes");
    for (deployment, role) in [(collector, "collector"), (reader, "reader")] {
        let c = container(deployment);
        let file = format!("{role}.conf");
        assert_eq!(
            c["args"],
            serde_json::json!(["-c", format!("/etc/gitlab-registry-usage-rest/{file}")])
        );
        let shared = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "shared")
            .expect("the shared volume is mounted")
            .clone();
        let volumes = deployment["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap();
        assert!(volumes.iter().any(|v| v["name"] == "shared"
            && v["persistentVolumeClaim"]["claimName"] == "registry-usage-shared"));
        // The config: the role the deployment says, the file on the shared volume, and
        // valid once the placeholders are replaced as the comments say.
        let text = secret["stringData"][file.as_str()].as_str().unwrap();
        assert!(text.contains(&format!("role = {role}\n")), "{text}");
        let mount = shared["mountPath"].as_str().unwrap();
        assert!(
            text.contains(&format!("snapshot_file = {mount}/snapshot.json\n")),
            "{role}'s snapshot_file is not on the shared volume ({mount}): {text}"
        );
        let filled = text
            .replace("00000000000000000000000000000000", SECRET)
            .replace("CHANGE-ME", "a-real-token");
        let path = dir.path().join(&file);
        std::fs::write(&path, filled).unwrap();
        let check = Command::new(BIN)
            .args(["--check-config", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

// ---- the running service --------------------------------------------------------------------

/// A config serving on `port` with htpasswd login (`user`, `password`), scanning a
/// registry at an unused port (every scan fails and is logged, which is fine here).
fn write_config(dir: &Path, port: u16, user: &str, password: &str, extra: &str) -> PathBuf {
    let htpasswd = dir.join("htpasswd");
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
    let unused = free_port();
    let conf = dir.join("service.conf");
    std::fs::write(
        &conf,
        format!(
            "[general]\nsocket_host = 127.0.0.1\nsocket_port = {port}\nauth_backend = htpasswd\n\
             refresh_interval = 1 hour\n{extra}\n\
             [jwt]\nsecret_key = {SECRET}\n\
             [htpasswd]\nfile = {}\n\
             [registry]\ngitlab_base_url = http://127.0.0.1:{unused}/\n\
             registry_base_url = http://127.0.0.1:{unused}/\n\
             username = scanner\naccess_token = Reg1stry-Acc3ss-T0ken-zork\n\
             request_timeout = 2 seconds\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    conf
}

fn wait_for_exit(service: &mut ChildGuard, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = service.child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn sigterm(service: &ChildGuard) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
    let rc = unsafe { libc::kill(service.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill(SIGTERM)");
}

#[test]
fn tells_systemd_it_is_ready_and_exits_0_on_sigterm() {
    let dir = TempDir::new("notify");
    let port = free_port();
    let conf = write_config(dir.path(), port, "admin", "pw", "");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log = dir.path().join("stderr.log");

    let started = Instant::now();
    let mut service = ChildGuard::new(
        "service",
        Command::new(BIN)
            .args(["-c", conf.to_str().unwrap()])
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    // Datagrams until one carries READY=1 (sd_notify allows several newline-separated
    // assignments per datagram).
    let receive_until = |wanted: &str, deadline: Duration, service: &mut ChildGuard| {
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        let start = Instant::now();
        while start.elapsed() < deadline {
            match notify.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if text.lines().any(|l| l == wanted) {
                        return start.elapsed();
                    }
                    seen.push(text);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("reading the notify socket: {e}"),
            }
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!(
                    "the service exited ({status}) before sending {wanted}; got {seen:?}; log:\n{}",
                    file_tail(&log, 4000)
                );
            }
        }
        panic!(
            "no {wanted} within {deadline:?} (got {seen:?}); log:\n{}",
            file_tail(&log, 4000)
        );
    };

    receive_until("READY=1", Duration::from_secs(10), &mut service);
    let ready_after = started.elapsed();
    // READY=1 means it listens: a connection must be accepted at once (503 before the first
    // scan is fine, and what happens here: the registry is unreachable).
    let health = try_http_request("GET", &format!("http://127.0.0.1:{port}/health"), &[], None)
        .unwrap_or_else(|e| panic!("READY=1 was sent but /health does not answer: {e}"));
    assert!(
        health.status == 200 || health.status == 503,
        "/health: {}",
        health.status
    );

    sigterm(&service);
    receive_until("STOPPING=1", Duration::from_secs(10), &mut service);
    let code = wait_for_exit(&mut service, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "no exit within 10 s of SIGTERM; log:\n{}",
            file_tail(&log, 4000)
        )
    });
    assert_eq!(
        code,
        0,
        "exit code after SIGTERM; log:\n{}",
        file_tail(&log, 4000)
    );
    eprintln!("READY=1 after {ready_after:?}");
}

#[test]
fn the_log_never_shows_a_password_or_a_token() {
    const PASSWORD: &str = "C0rrect-Horse-Battery-xyzzy";
    const WRONG: &str = "Wr0ng-Password-plugh";
    const FORGED: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.Forged-Signature-quux";
    let dir = TempDir::new("secrets");
    let port = free_port();
    // debug = True: the most talkative log is the one that must not leak.
    let conf = write_config(dir.path(), port, "admin", PASSWORD, "debug = True");
    let log = dir.path().join("stderr.log");
    let out = dir.path().join("stdout.log");
    let mut service = ChildGuard::new(
        "service",
        Command::new(BIN)
            .args(["-c", conf.to_str().unwrap()])
            .env_remove("NOTIFY_SOCKET")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");

    // Up when /health answers at all (503 until a scan succeeds; here none will).
    let start = Instant::now();
    while try_http_request("GET", &format!("{base}/health"), &[], None).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the service did not answer within 10 s; log:\n{}",
            file_tail(&log, 4000)
        );
        if let Some(status) = service.child.try_wait().unwrap() {
            panic!(
                "the service exited ({status}); log:\n{}",
                file_tail(&log, 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let url = format!("{base}/auth_token");
    let wrong_header = basic_auth("admin", WRONG);
    let failed = try_http_request("GET", &url, &[("Authorization", &wrong_header)], None).unwrap();
    assert_eq!(failed.status, 401, "wrong password: {}", failed.text());

    let right_header = basic_auth("admin", PASSWORD);
    let ok = try_http_request("GET", &url, &[("Authorization", &right_header)], None).unwrap();
    assert_eq!(ok.status, 200, "right password: {}", ok.text());
    let token = ok.json()["auth_token"]
        .as_str()
        .expect("{\"auth_token\": ...}")
        .to_string();
    assert!(token.len() > 20, "a JWT: {token}");

    // The token and a forged one on an API request: both pass through the request path.
    for bearer in [token.as_str(), FORGED] {
        let reply = try_http_request(
            "GET",
            &format!("{base}/repositories"),
            &[("Authorization", &format!("Bearer {bearer}"))],
            None,
        )
        .unwrap();
        assert!(reply.status >= 200, "{}", reply.status);
    }

    sigterm(&service);
    assert_eq!(
        wait_for_exit(&mut service, Duration::from_secs(10)),
        Some(0)
    );

    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(&std::fs::read_to_string(&out).unwrap());
    assert!(
        text.contains("level=") && text.lines().count() >= 3,
        "expected a log to check: {text}"
    );
    let signature = token.rsplit('.').next().unwrap().to_string();
    let basic_of = |h: &str| h.trim_start_matches("Basic ").to_string();
    for (what, secret) in [
        ("the right password", PASSWORD.to_string()),
        ("the wrong password", WRONG.to_string()),
        ("the issued token", token.clone()),
        ("the issued token's signature", signature),
        ("the forged token", FORGED.to_string()),
        ("the Basic credentials (right)", basic_of(&right_header)),
        ("the Basic credentials (wrong)", basic_of(&wrong_header)),
        (
            "the registry access token",
            "Reg1stry-Acc3ss-T0ken-zork".into(),
        ),
        ("the JWT secret", SECRET.to_string()),
    ] {
        assert!(
            !text.contains(&secret),
            "the log shows {what}:\n{}",
            text.lines()
                .filter(|l| l.contains(&secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// `make dist` ships what README links to, at the same paths (contrib/readme-files.sh
/// lists them); every such link must name a file of the source tree.
#[test]
fn readme_links_name_files_that_dist_ships() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(root.join("contrib/readme-files.sh"))
        .output()
        .expect("run contrib/readme-files.sh");
    assert!(out.status.success());
    let files: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(files.iter().any(|f| f == "docs/INSTALL.md"), "{files:?}");
    for f in &files {
        assert!(
            root.join(f).is_file(),
            "README links to {f}, which does not exist"
        );
    }
}
