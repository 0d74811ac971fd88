//! The synthetic registry of `examples/synthetic_registry` as a child process: a
//! deterministic registry of any size (thousands of tags start in milliseconds), for tests
//! that need more content than pushing to a real registry allows. Killed on drop.
//!
//! Its binary is the one cargo builds beside the test binaries: `cargo test` and
//! `make test` build examples; `cargo test --test NAME` alone does not, then this says so.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{test_agent, try_http_request_with, ChildGuard};

/// What a scan of the synthetic registry must find (its `/control/expected`), in the
/// field names of the service's collection document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub size: u64,
    pub disk_size: u64,
    pub repository_count: u64,
    pub tag_count: u64,
}

impl Totals {
    /// The four totals of a snapshot.
    pub fn of(s: &gitlab_registry_usage_rest::snapshot::Snapshot) -> Totals {
        Totals {
            size: s.totals.size,
            disk_size: s.totals.disk_size,
            repository_count: s.totals.repository_count as u64,
            tag_count: s.totals.tag_count as u64,
        }
    }

    /// The four totals of a JSON object (`/control/expected`, or the service's
    /// `/repositories`); panics naming the missing field.
    pub fn from_json(json: &serde_json::Value) -> Totals {
        let field = |name: &str| {
            json[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no number {name:?} in {json}"))
        };
        Totals {
            size: field("size"),
            disk_size: field("disk_size"),
            repository_count: field("repository_count"),
            tag_count: field("tag_count"),
        }
    }
}

pub struct Synthetic {
    /// `http://127.0.0.1:PORT/`, with the trailing slash the service's config wants.
    pub url: String,
    guard: ChildGuard,
}

/// The example binary beside this test binary (target/<profile>/examples/), or
/// `$SYNTHETIC_REGISTRY`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SYNTHETIC_REGISTRY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/synthetic_registry
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary in target/<profile>/deps");
    let path = profile_dir.join("examples").join("synthetic_registry");
    assert!(
        path.is_file(),
        "{} was not found. This test runs the synthetic registry example; build it with\n    \
         cargo build --example synthetic_registry\n\
         (`cargo test` and `make test` build it; `cargo test --test NAME` alone does not), \
         or point SYNTHETIC_REGISTRY at a build of it",
        path.display()
    );
    path
}

impl Synthetic {
    /// Start it on a free port with `args` (e.g. `--repositories 100 --auth none`) and wait
    /// for its start line. Panics with its output if it does not start.
    pub fn start(args: &[&str]) -> Synthetic {
        let binary = binary();
        let mut child = Command::new(&binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let guard = ChildGuard::new("synthetic registry", child);
        // The start line is its only output: "synthetic registry listening on http://A:P (…)".
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the synthetic registry's start line");
        let url = line
            .strip_prefix("synthetic registry listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the synthetic registry did not start: {line:?}"));
        Synthetic {
            url: format!("{url}/"),
            guard,
        }
    }

    fn control(&self, method: &str, path_and_query: &str) -> serde_json::Value {
        let url = format!("{}control/{path_and_query}", self.url);
        let reply = try_http_request_with(
            &test_agent(Duration::from_secs(30)),
            method,
            &url,
            &[],
            None,
        )
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        assert_eq!(reply.status, 200, "{method} {url}: {}", reply.text());
        reply.json()
    }

    /// What a scan must find now.
    pub fn expected(&self) -> Totals {
        Totals::from_json(&self.control("GET", "expected"))
    }

    /// Move `percent` % of the tags to new manifests (new top layers, new sizes); returns
    /// what a scan must find afterwards.
    pub fn move_tags(&self, percent: u32) -> Totals {
        Totals::from_json(&self.control("POST", &format!("move?percent={percent}"))["expected"])
    }
}
