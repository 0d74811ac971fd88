//! The scratch image, built and run for real: `make image` (buildah, no Docker engine)
//! from the static binary, checked for size, static linking and its non-root user, run
//! with `buildah run --isolation chroot`, pushed with skopeo (an OCI client no one here
//! wrote) into a real registry, whose scan must then report the image's true layer sizes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::registry::{Registry, RegistryAuth};
use support::{require_binary, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const SECRET: &str = "k8Jf2Lq9Vx3Nw7Rt5Yb1Hc6Zm4Pd0Gs2";
const MUSL: &str = "x86_64-unknown-linux-musl";
/// The image's limit, from issue "A real image, built and run in the tests".
const MAX_IMAGE_BYTES: u64 = 8 * 1024 * 1024;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The musl standard library and musl-gcc, which `make static` needs.
fn require_musl_toolchain() {
    let sysroot = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", MUSL])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    assert!(
        sysroot.is_some_and(|d| d.is_dir()),
        "the {MUSL} standard library is missing; install it with:\n    rustup target add {MUSL}\n\
         (.ci/run does this on a fresh machine)"
    );
    require_binary("musl-gcc", "musl-tools");
}

/// `buildah` with the storage this test owns (vfs: no overlay mounts needed).
fn buildah(storage: &Path) -> Command {
    let mut cmd = Command::new(require_binary("buildah", "buildah"));
    cmd.arg("--storage-driver")
        .arg("vfs")
        .arg("--root")
        .arg(storage.join("root"))
        .arg("--runroot")
        .arg(storage.join("run"));
    cmd
}

/// A working container from the archive, removed on drop.
struct Container<'a> {
    storage: &'a Path,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = buildah(self.storage).args(["rm", &self.id]).output();
    }
}

#[test]
fn the_scratch_image_builds_runs_and_scans_to_its_true_sizes() {
    let skopeo = require_binary("skopeo", "skopeo");
    require_binary("buildah", "buildah");
    require_musl_toolchain();
    let dir = TempDir::new("image");
    let archive = dir.path().join("image.tar");
    // Its own target directory: the outer `cargo test` holds the lock on the usual one.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-build");
    run(
        "make image",
        Command::new("make")
            .current_dir(manifest_dir())
            .arg("--no-print-directory")
            .arg("image")
            .arg(format!("IMAGE={}", archive.display()))
            .env("CARGO_TARGET_DIR", &target),
    );

    // Size: the whole archive (every layer, config and manifest) under 8 MiB.
    let size = std::fs::metadata(&archive).unwrap().len();
    assert!(
        size < MAX_IMAGE_BYTES,
        "the image is {size} bytes, over 8 MiB"
    );

    // The image's own description: user, entrypoint, layers.
    let reference = format!("oci-archive:{}", archive.display());
    let config: serde_json::Value = serde_json::from_slice(
        &run(
            "skopeo inspect --config",
            Command::new(&skopeo).args(["inspect", "--config", &reference]),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(config["config"]["User"], "65532:65532", "{config}");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/gitlab-registry-usage-rest"])
    );
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let manifest: serde_json::Value = serde_json::from_slice(
        &run(
            "skopeo inspect --raw",
            Command::new(&skopeo).args(["inspect", "--raw", &reference]),
        )
        .stdout,
    )
    .unwrap();
    let layers: Vec<u64> = manifest["layers"]
        .as_array()
        .expect("an image manifest with layers")
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .collect();
    assert!(!layers.is_empty());

    // Run it: a static binary in an image with no loader, no libc, no shell.
    let storage = dir.path().join("storage");
    let id = String::from_utf8(
        run(
            "buildah from",
            buildah(&storage).args(["from", "--isolation", "chroot", &reference]),
        )
        .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let container = Container {
        storage: &storage,
        id,
    };
    let version = run(
        "--version in the image",
        buildah(&storage).args([
            "run",
            "--isolation",
            "chroot",
            &container.id,
            "--",
            "/usr/local/bin/gitlab-registry-usage-rest",
            "--version",
        ]),
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("gitlab-registry-usage-rest {}", env!("CARGO_PKG_VERSION"))
    );

    // Push the image into a real registry with skopeo, then scan it from inside the image.
    let registry = Registry::start(RegistryAuth::None);
    let host = registry.url.trim_start_matches("http://");
    run(
        "skopeo copy",
        Command::new(&skopeo).args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &reference,
            &format!("docker://{host}/tools/registry-usage:1.0"),
        ]),
    );
    let conf_dir = dir.path().join("conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("c.conf"),
        format!(
            "[jwt]\nsecret_key = {SECRET}\n[registry]\nregistry_base_url = {}\n\
             username = x\naccess_token = y\nrequest_timeout = 10s\n",
            registry.url
        ),
    )
    .unwrap();
    let collected = run(
        "--collect-once in the image",
        buildah(&storage)
            .args(["run", "--isolation", "chroot", "--network", "host", "-v"])
            .arg(format!("{}:/conf:ro", conf_dir.display()))
            .args([
                &container.id,
                "--",
                "/usr/local/bin/gitlab-registry-usage-rest",
                "--collect-once",
                "-c",
                "/conf/c.conf",
            ]),
    );
    let doc: serde_json::Value = serde_json::from_slice(&collected.stdout).unwrap();
    let true_size: u64 = layers.iter().sum();
    assert_eq!(doc["repository_count"], 1, "{doc}");
    assert_eq!(
        doc["size"], true_size,
        "the scan reports the image's layer bytes"
    );
    assert_eq!(doc["disk_size"], true_size);
    let repo = &doc["_embedded"]["items"][0];
    assert_eq!(repo["name"], "tools/registry-usage");
    let tag = &repo["_embedded"]["related"]["_embedded"]["items"][0];
    assert_eq!(
        (tag["name"].as_str(), tag["size"].as_u64()),
        (Some("1.0"), Some(true_size))
    );

    // The same numbers from the binary outside the image (the registry saw one push).
    let outside = run(
        "--collect-once outside",
        Command::new(BIN)
            .args(["--collect-once", "-c"])
            .arg(conf_dir.join("c.conf")),
    );
    let outside: serde_json::Value = serde_json::from_slice(&outside.stdout).unwrap();
    assert_eq!(outside["size"], true_size);
}
