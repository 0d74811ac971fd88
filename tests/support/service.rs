//! The service binary itself, started on a free port with htpasswd login in front of a
//! registry, for the tests that talk to it from outside (schemathesis, the browser,
//! Prometheus, README's commands).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_request, ChildGuard};

pub const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
pub const SECRET: &str = "k8Jf2Lq9Vx3Nw7Rt5Yb1Hc6Zm4Pd0Gs2";

/// The images the contract's examples and the metrics tests use: `group/app` (v1, v2),
/// `group/sub/tool`, `odd.name__x/a-b_c` and `solo`; `group`'s repositories share a
/// 3000-byte layer.
pub fn push_example_images(registry: &super::registry::Registry) {
    use super::push::{Format, PushAuth, Pusher};
    let pusher = Pusher::new(&registry.url, PushAuth::None);
    let base = vec![b'b'; 3000];
    pusher.image("group/app", "v1", &[&base, &[1u8; 100]], Format::Oci);
    pusher.image("group/app", "v2", &[&base, &[2u8; 200]], Format::Docker);
    pusher.image(
        "group/sub/tool",
        "latest",
        &[&base, &[3u8; 30]],
        Format::Oci,
    );
    // Odd but valid names: separators label values and links must carry unchanged.
    pusher.image("odd.name__x/a-b_c", "v1", &[&[5u8; 50]], Format::Docker);
    pusher.image("solo", "v1", &[&[4u8; 40]], Format::Docker);
}

/// A running service; killed on drop.
pub struct Service {
    pub guard: ChildGuard,
    pub port: u16,
    /// `http://127.0.0.1:<port><server_prefix>`.
    pub url: String,
    pub conf: PathBuf,
    /// Its standard error (appended to across restarts in the same directory).
    pub log: PathBuf,
}

/// Writes `dir/service.conf`: port, htpasswd login for `user` (the file is kept when it
/// exists, so a restart keeps it), `general` lines in `[general]`, the registry, then
/// `extra` as it is (e.g. more sections).
fn write_config(
    dir: &Path,
    port: u16,
    registry: &str,
    (user, password): (&str, &str),
    general: &str,
    extra: &str,
) -> PathBuf {
    let htpasswd = dir.join("htpasswd");
    if !htpasswd.exists() {
        std::fs::write(
            &htpasswd,
            format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap()),
        )
        .unwrap();
    }
    let conf = dir.join("service.conf");
    std::fs::write(
        &conf,
        format!(
            "[general]\nsocket_port = {port}\nauth_backend = htpasswd\n{general}\
             [jwt]\nsecret_key = {SECRET}\n[htpasswd]\nfile = {}\n\
             [registry]\nregistry_base_url = {registry}\nusername = x\naccess_token = y\n\
             request_timeout = 5s\n{extra}",
            htpasswd.display()
        ),
    )
    .unwrap();
    conf
}

/// Starts the service in front of `registry` with login admin / pw, `general` lines in
/// `[general]` and `extra` appended to the config, and waits until it listens.
pub fn start(dir: &Path, registry: &str, general: &str, extra: &str) -> Service {
    let port = free_port();
    let conf = write_config(dir, port, registry, ("admin", "pw"), general, extra);
    start_with_config(&conf, port, "", dir, &dir.join("service.log"))
}

/// Starts the service in front of `registry` with one htpasswd user, `[general]
/// server_prefix = prefix` (`""` for none), and waits until it listens.
pub fn start_service(
    dir: &Path,
    registry: &str,
    credentials: (&str, &str),
    prefix: &str,
) -> Service {
    let port = free_port();
    // An empty server_prefix is refused when written out: leave the key at its default.
    let prefix_line = if prefix.is_empty() {
        String::new()
    } else {
        format!("server_prefix = {prefix}\n")
    };
    let conf = write_config(dir, port, registry, credentials, &prefix_line, "");
    start_with_config(&conf, port, prefix, dir, &dir.join("service.log"))
}

/// Starts the service with the config file `conf` (which must listen on 127.0.0.1:`port`
/// under `prefix`) in the working directory `cwd` (relative paths in `conf` are read from
/// there), its standard error appended to `log`, and waits until it listens.
pub fn start_with_config(conf: &Path, port: u16, prefix: &str, cwd: &Path, log: &Path) -> Service {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(BIN)
        .arg("-c")
        .arg(conf)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the service");
    let guard = ChildGuard::new("service", child);
    super::wait_for_port(port, Duration::from_secs(20), "the service");
    Service {
        guard,
        port,
        url: format!("http://127.0.0.1:{port}{prefix}"),
        conf: conf.to_path_buf(),
        log: log.to_path_buf(),
    }
}

impl Service {
    /// The URL of `path` (which starts with `/`) on this service, under its prefix.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Waits (polling `/health`, 60 s at most) until the first scan is served.
    pub fn wait_for_data(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http_request("GET", &self.at("/health"), &[], None);
            if r.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no snapshot within 60 s: {}\n{}",
                r.text(),
                super::file_tail(&self.log, 4000)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A bearer token for `user`.
    pub fn token(&self, user: &str, password: &str) -> String {
        let login = http_request(
            "GET",
            &self.at("/auth_token"),
            &[("Authorization", &super::basic_auth(user, password))],
            None,
        );
        assert_eq!(login.status, 200, "{}", login.text());
        login.json()["auth_token"].as_str().unwrap().to_string()
    }

    /// A token for admin / pw (the user of [`start`]).
    pub fn login(&self) -> String {
        self.token("admin", "pw")
    }
}
