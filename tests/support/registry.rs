//! A throwaway Distribution registry (Debian `docker-registry`, 2.8.x) on 127.0.0.1, with
//! no auth, htpasswd or GitLab-style token auth; killed and its storage removed on drop.
#![allow(dead_code)]

use super::{file_tail, require_binary, test_agent, try_http_request_with, ChildGuard, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    None,
    /// bcrypt htpasswd file with one user (`htpasswd -Bbc`).
    Htpasswd {
        user: String,
        password: String,
    },
    /// Bearer tokens from `realm`; the registry trusts the cert(s) in `cert_pem_path`
    /// (see `token_issuer::TokenIssuer::registry_auth`).
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert_pem_path: PathBuf,
    },
}

pub struct Registry {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub port: u16,
    dir: TempDir,
    guard: ChildGuard,
}

impl Registry {
    /// Start a registry and wait until `/v2/` answers (any HTTP status). Panics with the tail
    /// of the registry log if it does not come up.
    pub fn start(auth: RegistryAuth) -> Registry {
        let binary = require_binary("docker-registry", "docker-registry apache2-utils");
        let dir = TempDir::new("registry");
        let auth_yaml = auth_yaml(&auth, dir.path());
        // free_port() can race with another test binding the same port: retry a few times.
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = super::free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(&config, config_yml(dir.path(), port, &auth_yaml))
                .expect("write registry config.yml");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create registry.log");
            let child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut guard = ChildGuard::new("docker-registry", child);
            let url = format!("http://127.0.0.1:{port}");
            match wait_until_up(&mut guard, &url, Duration::from_secs(15)) {
                Ok(()) => {
                    return Registry {
                        url,
                        port,
                        dir,
                        guard,
                    }
                }
                Err(e) => {
                    guard.kill();
                    last_error = format!(
                        "{e}\n--- {} (tail) ---\n{}",
                        log_path.display(),
                        file_tail(&log_path, 4000)
                    );
                    if !last_error.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    /// Kill the registry now (e.g. to test "registry down"); dropping later is harmless.
    pub fn stop(&mut self) {
        self.guard.kill();
    }

    /// The registry's working directory (config.yml, registry.log, data/, htpasswd).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Storage root (`storage.filesystem.rootdirectory`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry log so far (level info), for assertions and panic messages.
    pub fn log(&self) -> String {
        file_tail(&self.dir.path().join("registry.log"), usize::MAX)
    }

    /// `{url}/v2/{path}` (path without leading slash).
    pub fn v2(&self, path: &str) -> String {
        format!("{}/v2/{}", self.url, path.trim_start_matches('/'))
    }
}

fn auth_yaml(auth: &RegistryAuth, dir: &Path) -> String {
    match auth {
        RegistryAuth::None => String::new(),
        RegistryAuth::Htpasswd { user, password } => {
            let htpasswd = require_binary("htpasswd", "apache2-utils");
            let file = dir.join("htpasswd");
            let out = Command::new(&htpasswd)
                .arg("-Bbc")
                .arg(&file)
                .arg(user)
                .arg(password)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", htpasswd.display()));
            assert!(
                out.status.success(),
                "htpasswd -Bbc failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                file.display()
            )
        }
        RegistryAuth::Token {
            realm,
            service,
            issuer,
            cert_pem_path,
        } => format!(
            "auth:\n  token:\n    realm: \"{realm}\"\n    service: \"{service}\"\n    issuer: \"{issuer}\"\n    rootcertbundle: {}\n",
            cert_pem_path.display()
        ),
    }
}

fn config_yml(dir: &Path, port: u16, auth_yaml: &str) -> String {
    format!(
        "version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: throwaway-test-secret
{auth_yaml}",
        data = dir.join("data").display()
    )
}

fn wait_until_up(guard: &mut ChildGuard, url: &str, timeout: Duration) -> Result<(), String> {
    let agent = test_agent(Duration::from_secs(2));
    let probe = format!("{url}/v2/");
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = guard.child.try_wait() {
            return Err(format!("docker-registry exited early with {status}"));
        }
        // Any HTTP answer (200 or 401) from a registry means it is serving (the header
        // guards against another test's server that grabbed the same free port).
        if let Ok(reply) = try_http_request_with(&agent, "GET", &probe, &[], None) {
            if reply.header("docker-distribution-api-version") == Some("registry/2.0") {
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            return Err(format!("{probe} did not answer within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
