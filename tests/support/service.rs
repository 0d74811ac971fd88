//! The service binary itself, started on a free port with htpasswd login in front of a
//! registry, for the tests that talk to it from outside (schemathesis, the browser).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_request, ChildGuard};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const SECRET: &str = "k8Jf2Lq9Vx3Nw7Rt5Yb1Hc6Zm4Pd0Gs2";

/// A running service; killed on drop. Its log is `<dir>/service.log`.
pub struct Service {
    pub guard: ChildGuard,
    pub port: u16,
    /// `http://127.0.0.1:<port><server_prefix>`.
    pub url: String,
}

/// Starts the service in front of `registry` with one htpasswd user, `[general]
/// server_prefix = prefix` (`""` for none), and waits until it listens.
pub fn start_service(
    dir: &Path,
    registry: &str,
    (user, password): (&str, &str),
    prefix: &str,
) -> Service {
    let port = free_port();
    let htpasswd = dir.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap()),
    )
    .unwrap();
    let conf = dir.join("service.conf");
    // An empty server_prefix is refused when written out: leave the key at its default.
    let prefix_line = if prefix.is_empty() {
        String::new()
    } else {
        format!("server_prefix = {prefix}\n")
    };
    std::fs::write(
        &conf,
        format!(
            "[general]\nsocket_port = {port}\nauth_backend = htpasswd\n{prefix_line}\
             [jwt]\nsecret_key = {SECRET}\n[htpasswd]\nfile = {}\n\
             [registry]\nregistry_base_url = {registry}\nusername = x\naccess_token = y\n\
             request_timeout = 5s\n",
            htpasswd.display()
        ),
    )
    .unwrap();
    start_with_config(&conf, port, prefix, dir, &dir.join("service.log"))
}

/// Starts the service with the config file `conf` (which must listen on 127.0.0.1:`port`
/// under `prefix`) in the working directory `cwd` (relative paths in `conf` are read from
/// there), its log in `log`, and waits until it listens.
pub fn start_with_config(conf: &Path, port: u16, prefix: &str, cwd: &Path, log: &Path) -> Service {
    let stderr = std::fs::File::create(log).unwrap();
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
    }
}

impl Service {
    /// Waits (polling `/health`, 60 s at most) until the first scan is served.
    pub fn wait_for_data(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http_request("GET", &format!("{}/health", self.url), &[], None);
            if r.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no snapshot within 60 s: {}",
                r.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A bearer token for `user`.
    pub fn token(&self, user: &str, password: &str) -> String {
        let login = http_request(
            "GET",
            &format!("{}/auth_token", self.url),
            &[("Authorization", &super::basic_auth(user, password))],
            None,
        );
        assert_eq!(login.status, 200, "{}", login.text());
        login.json()["auth_token"].as_str().unwrap().to_string()
    }
}
