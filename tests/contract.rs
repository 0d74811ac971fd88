//! The API against its written contract, docs/openapi.yaml: schemathesis (a property-based
//! API tester no one here wrote) generates requests from the document and checks every
//! answer of the live service (the real binary, in front of a real registry) against it.
//! Plus: the served `/openapi.json` is that document.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::registry::{Registry, RegistryAuth};
use support::{service, TempDir};

/// The version `.ci/run` installs.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn require_schemathesis() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("schemathesis"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`schemathesis` was not found. The contract test runs it against the live \
             service; install it with:\n    pip install '{SCHEMATHESIS}'\n(.ci/run does this \
             on a fresh machine)"
        )
    })
}

#[test]
fn the_live_api_conforms_to_its_openapi_document() {
    let schemathesis = require_schemathesis();
    let registry = Registry::start(RegistryAuth::None);
    // The names the document gives as examples, so generated requests reach real data.
    service::push_example_images(&registry);

    let dir = TempDir::new("contract");
    let service = service::start(dir.path(), &registry.url, "", "");
    service.wait_for_data();
    let token = service.login();
    let port = service.port;

    let out = Command::new(schemathesis)
        .current_dir(dir.path())
        .arg("run")
        .arg(manifest_dir().join("docs/openapi.yaml"))
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "60", "--workers", "2", "--seed", "1"])
        // Logins are exercised by other tests; here they would only trip the limiter.
        .args(["--exclude-path", "/auth_token"])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found answers that break docs/openapi.yaml:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.contains("generated,"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    assert!(
        summary.contains("passed") && !summary.contains("failed"),
        "{summary}"
    );
    println!("schemathesis: {}", summary.trim());
}

/// docs/openapi.json (embedded in the binary) must be what `make openapi` makes of the
/// committed YAML, so the served document never drifts from the written one.
#[test]
fn the_embedded_json_is_the_yaml_document() {
    require_schemathesis(); // brings PyYAML with it
    let out = Command::new("python3")
        .arg(manifest_dir().join("contrib/openapi-json.py"))
        .arg(manifest_dir().join("docs/openapi.yaml"))
        .output()
        .expect("run python3 (install python3 and PyYAML)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(manifest_dir().join("docs/openapi.json")).unwrap();
    assert!(
        out.stdout == committed,
        "docs/openapi.json is out of date: run `make openapi` and commit it"
    );
}
