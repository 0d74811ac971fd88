//! The real service binary with htpasswd login (admin / pw) in front of a registry.

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

/// A running service: its process, port and config file.
pub struct Service {
    pub guard: ChildGuard,
    pub port: u16,
    pub conf: PathBuf,
    pub log: PathBuf,
}

/// Writes `dir/service.conf` (the registry, htpasswd login, `general` lines in
/// `[general]`, then `extra` appended as it is, e.g. more sections) and starts the
/// binary on a free port.
pub fn start(dir: &Path, registry: &str, general: &str, extra: &str) -> Service {
    let port = free_port();
    let htpasswd = dir.join("htpasswd");
    if !htpasswd.exists() {
        std::fs::write(
            &htpasswd,
            format!("admin:{}\n", bcrypt::hash("pw", 4).unwrap()),
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
    let log = dir.join("service.log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the service");
    let guard = ChildGuard::new("service", child);
    super::wait_for_port(port, Duration::from_secs(20), "the service");
    Service {
        guard,
        port,
        conf,
        log,
    }
}

impl Service {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls `/health` until a snapshot is served.
    pub fn wait_for_data(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http_request("GET", &self.url("/health"), &[], None);
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

    /// A token for admin / pw.
    pub fn login(&self) -> String {
        let login = http_request(
            "GET",
            &self.url("/auth_token"),
            &[("Authorization", &super::basic_auth("admin", "pw"))],
            None,
        );
        assert_eq!(login.status, 200, "{}", login.text());
        login.json()["auth_token"].as_str().unwrap().to_string()
    }
}
