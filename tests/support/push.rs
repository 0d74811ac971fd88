//! Push hand-made images to a registry over HTTP (no Docker engine): blobs, image manifests
//! (OCI or Docker schema 2), indexes / manifest lists, raw manifests, deletes.
//!
//! Layer bytes are arbitrary (the registry never looks inside), so sizes are exact byte
//! lengths the tests can compute by hand. Digests: `sha256:` + hex (see `sha256_digest`).
#![allow(dead_code)]

use super::{basic_auth, sha256_digest, test_agent, try_http_request_with, HttpReply};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Media types.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    /// `Accept` for manifest GET/HEAD that makes Distribution serve every modern type.
    pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.docker.distribution.manifest.v2+json";
}

/// Image manifest flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OCI image manifest / OCI image index.
    Oci,
    /// Docker schema 2 manifest / Docker manifest list.
    Docker,
}

impl Format {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Oci => media::OCI_MANIFEST,
            Format::Docker => media::DOCKER_MANIFEST,
        }
    }
    pub fn index_type(self) -> &'static str {
        match self {
            Format::Oci => media::OCI_INDEX,
            Format::Docker => media::DOCKER_LIST,
        }
    }
    pub fn config_type(self) -> &'static str {
        match self {
            Format::Oci => media::OCI_CONFIG,
            Format::Docker => media::DOCKER_CONFIG,
        }
    }
    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Oci => media::OCI_LAYER,
            Format::Docker => media::DOCKER_LAYER,
        }
    }
}

/// A blob in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    pub digest: String,
    /// Exact byte length.
    pub size: u64,
}

impl BlobRef {
    pub fn of(bytes: &[u8]) -> BlobRef {
        BlobRef {
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// What [`Pusher::image`] pushed.
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub manifest_digest: String,
    /// Byte length of the manifest JSON (what an index's `manifests[].size` holds).
    pub manifest_size: u64,
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
}

impl PushedImage {
    /// config + layers (each blob once per image, as listed).
    pub fn blobs_size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// How the pusher authenticates.
#[derive(Debug, Clone)]
pub enum PushAuth {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from a GitLab-style realm, one per repository scope
    /// `repository:<repo>:pull,push,delete` (and whatever scope [`Pusher::request`] asks).
    Token {
        realm: String,
        service: String,
        user: String,
        password: String,
    },
}

impl PushAuth {
    pub fn basic(user: &str, password: &str) -> PushAuth {
        PushAuth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The admin of a [`super::token_issuer::TokenIssuer`] started with default users.
    pub fn token_admin(issuer: &super::token_issuer::TokenIssuer) -> PushAuth {
        PushAuth::token(
            issuer,
            super::token_issuer::ADMIN_USER,
            super::token_issuer::ADMIN_PASSWORD,
        )
    }

    pub fn token(
        issuer: &super::token_issuer::TokenIssuer,
        user: &str,
        password: &str,
    ) -> PushAuth {
        PushAuth::Token {
            realm: issuer.realm(),
            service: issuer.service.clone(),
            user: user.into(),
            password: password.into(),
        }
    }
}

pub struct Pusher {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub registry_url: String,
    pub auth: PushAuth,
    agent: ureq::Agent,
    tokens: Mutex<HashMap<String, String>>,
}

/// Makes every config blob (hence every manifest) unique, with a fixed width so sizes only
/// depend on repo, tag and layer count.
static PUSH_SEQ: AtomicU64 = AtomicU64::new(0);

impl Pusher {
    pub fn new(registry_url: &str, auth: PushAuth) -> Pusher {
        Pusher {
            registry_url: registry_url.trim_end_matches('/').to_string(),
            auth,
            agent: test_agent(Duration::from_secs(60)),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Upload `bytes` as a blob of `repo` (POST an upload, PUT `?digest=`).
    pub fn blob(&self, repo: &str, bytes: &[u8]) -> BlobRef {
        let blob = BlobRef::of(bytes);
        let scope = push_scope(repo);
        let start = self.request(
            &scope,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            Some(&[]),
        );
        expect_status(&start, 202, &format!("POST /v2/{repo}/blobs/uploads/"));
        let location = start
            .header("location")
            .unwrap_or_else(|| panic!("upload start for {repo}: no Location header"))
            .to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={}", blob.digest);
        let done = self.request(
            &scope,
            "PUT",
            &put_url,
            &[("Content-Type", "application/octet-stream")],
            Some(bytes),
        );
        expect_status(&done, 201, &format!("PUT blob {} to {repo}", blob.digest));
        blob
    }

    /// Push config + layers + manifest under `tag`.
    pub fn image(&self, repo: &str, tag: &str, layers: &[&[u8]], format: Format) -> PushedImage {
        self.push_image(repo, Some(tag), layers, format, None)
    }

    /// Push an image by digest only (untagged, e.g. an index child).
    pub fn image_by_digest(&self, repo: &str, layers: &[&[u8]], format: Format) -> PushedImage {
        self.push_image(repo, None, layers, format, None)
    }

    /// As `image` (`tag: None`: `image_by_digest`), its config saying it was built at
    /// `created` (RFC 3339, written as given).
    pub fn image_created(
        &self,
        repo: &str,
        tag: Option<&str>,
        layers: &[&[u8]],
        format: Format,
        created: &str,
    ) -> PushedImage {
        self.push_image(repo, tag, layers, format, Some(created))
    }

    fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        layers: &[&[u8]],
        format: Format,
        created: Option<&str>,
    ) -> PushedImage {
        let layer_refs: Vec<BlobRef> = layers.iter().map(|l| self.blob(repo, l)).collect();
        let seq = PUSH_SEQ.fetch_add(1, Ordering::Relaxed);
        let config_json = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"ref": format!("{repo}:{}", tag.unwrap_or("")), "seq": format!("{seq:010}")}},
            "rootfs": {"type": "layers", "diff_ids": layer_refs.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        });
        let mut config_json = config_json;
        if let Some(created) = created {
            config_json["created"] = created.into();
        }
        let config = self.blob(repo, &serde_json::to_vec(&config_json).unwrap());
        let manifest = image_manifest_json(format, &config, &layer_refs);
        let reference = match tag {
            Some(t) => t.to_string(),
            None => sha256_digest(&manifest),
        };
        let digest = self.raw_manifest(repo, &reference, format.manifest_type(), &manifest);
        PushedImage {
            manifest_digest: digest,
            manifest_size: manifest.len() as u64,
            manifest,
            media_type: format.manifest_type(),
            config,
            layers: layer_refs,
        }
    }

    /// Push an OCI index / Docker manifest list under `tag`; children are
    /// `(platform "os/arch[/variant]", manifest digest, manifest size)`, already pushed to
    /// `repo` as `format` image manifests. Returns the index digest.
    pub fn index(
        &self,
        repo: &str,
        tag: &str,
        children: &[(&str, &str, u64)],
        format: Format,
    ) -> String {
        let body = index_json(format, children);
        self.raw_manifest(repo, tag, format.index_type(), &body)
    }

    /// PUT `bytes` as `/v2/<repo>/manifests/<reference>` with `Content-Type: media_type`;
    /// returns the digest. Panics unless 201.
    pub fn raw_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        self.try_raw_manifest(repo, reference, media_type, bytes)
            .unwrap_or_else(|reply| {
                panic!(
                    "PUT manifest {repo}:{reference} ({media_type}) → {}: {}",
                    reply.status,
                    reply.text()
                )
            })
    }

    /// Like [`Pusher::raw_manifest`], but a refusal is `Err(reply)`.
    pub fn try_raw_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, HttpReply> {
        let reply = self.request(
            &push_scope(repo),
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            Some(bytes),
        );
        if reply.status != 201 {
            return Err(reply);
        }
        let digest = reply
            .header("docker-content-digest")
            .map(String::from)
            .unwrap_or_else(|| sha256_digest(bytes));
        Ok(digest)
    }

    /// Digest of `repo:reference` via HEAD (None on 404).
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Option<String> {
        let reply = self.request(
            &push_scope(repo),
            "HEAD",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", media::ACCEPT_ALL)],
            None,
        );
        match reply.status {
            200 => reply.header("docker-content-digest").map(String::from),
            404 => None,
            s => panic!("HEAD manifest {repo}:{reference} → {s}"),
        }
    }

    /// DELETE `/v2/<repo>/manifests/<digest>` (expects 202). Distribution then drops every
    /// tag pointing at that manifest; the blobs stay until garbage collection.
    pub fn delete_manifest(&self, repo: &str, digest: &str) {
        let reply = self.request(
            &push_scope(repo),
            "DELETE",
            &format!("/v2/{repo}/manifests/{digest}"),
            &[],
            None,
        );
        expect_status(&reply, 202, &format!("DELETE manifest {repo}@{digest}"));
    }

    /// Delete the manifest `tag` points at (Distribution 2.8 deletes by digest only, so
    /// other tags of the same manifest disappear too). Returns the deleted digest.
    pub fn delete_tag(&self, repo: &str, tag: &str) -> String {
        let digest = self
            .manifest_digest(repo, tag)
            .unwrap_or_else(|| panic!("delete_tag: {repo}:{tag} does not exist"));
        self.delete_manifest(repo, &digest);
        digest
    }

    /// An authenticated request; `path_or_url` is `/v2/...` or absolute. For token auth the
    /// token for `scope` (e.g. `registry:catalog:*`) is fetched once and cached (renewed
    /// once on a 401).
    pub fn request(
        &self,
        scope: &str,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpReply {
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.registry_url, path_or_url)
        };
        for attempt in 0..2 {
            let auth = match &self.auth {
                PushAuth::None => None,
                PushAuth::Basic { user, password } => Some(basic_auth(user, password)),
                PushAuth::Token { .. } => {
                    Some(format!("Bearer {}", self.token(scope, attempt > 0)))
                }
            };
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            if let Some(a) = &auth {
                all.push(("Authorization", a));
            }
            let reply = try_http_request_with(&self.agent, method, &url, &all, body)
                .unwrap_or_else(|e| panic!("{e}"));
            if reply.status == 401 && matches!(self.auth, PushAuth::Token { .. }) && attempt == 0 {
                continue;
            }
            return reply;
        }
        unreachable!()
    }

    /// The bearer token for `scope` (cached unless `renew`).
    pub fn token(&self, scope: &str, renew: bool) -> String {
        let PushAuth::Token {
            realm,
            service,
            user,
            password,
        } = &self.auth
        else {
            panic!("Pusher::token needs PushAuth::Token");
        };
        let mut tokens = self.tokens.lock().unwrap();
        if !renew {
            if let Some(t) = tokens.get(scope) {
                return t.clone();
            }
        }
        use super::token_issuer::url_encode;
        let url = format!(
            "{realm}?service={}&scope={}&client_id=test-pusher",
            url_encode(service),
            url_encode(scope)
        );
        let reply = try_http_request_with(
            &self.agent,
            "GET",
            &url,
            &[("Authorization", &basic_auth(user, password))],
            None,
        )
        .unwrap_or_else(|e| panic!("token request: {e}"));
        expect_status(&reply, 200, &format!("token for {scope}"));
        let json = reply.json();
        let token = json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .unwrap_or_else(|| panic!("no token in {json}"))
            .to_string();
        tokens.insert(scope.to_string(), token.clone());
        token
    }
}

fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push,delete")
}

fn expect_status(reply: &HttpReply, status: u16, what: &str) {
    assert_eq!(
        reply.status,
        status,
        "{what}: expected HTTP {status}, got {}: {}",
        reply.status,
        reply.text()
    );
}

/// Image manifest JSON (compact, keys sorted) for `config` and `layers`.
pub fn image_manifest_json(format: Format, config: &BlobRef, layers: &[BlobRef]) -> Vec<u8> {
    let descriptor = |media_type: &str, b: &BlobRef| serde_json::json!({"mediaType": media_type, "digest": b.digest, "size": b.size});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": format.manifest_type(),
        "config": descriptor(format.config_type(), config),
        "layers": layers.iter().map(|l| descriptor(format.layer_type(), l)).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).unwrap()
}

/// OCI index / Docker manifest list JSON; children are
/// `(platform "os/arch[/variant]", digest, manifest size)` of `format` image manifests.
pub fn index_json(format: Format, children: &[(&str, &str, u64)]) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = children
        .iter()
        .map(|(platform, digest, size)| {
            let mut parts = platform.split('/');
            let os = parts.next().unwrap_or("linux");
            let arch = parts.next().unwrap_or("amd64");
            let mut p = serde_json::json!({"os": os, "architecture": arch});
            if let Some(variant) = parts.next() {
                p["variant"] = variant.into();
            }
            serde_json::json!({
                "mediaType": format.manifest_type(),
                "digest": digest,
                "size": size,
                "platform": p,
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": format.index_type(),
        "manifests": manifests,
    });
    serde_json::to_vec(&index).unwrap()
}

/// Docker schema 1 manifest JSON (unsigned; `fsLayers[].blobSum`, newest layer first as
/// given). Schema 1 carries no sizes.
pub fn schema1_manifest_json(name: &str, tag: &str, blob_sums: &[&str]) -> Vec<u8> {
    let manifest = serde_json::json!({
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": "amd64",
        "fsLayers": blob_sums.iter().map(|d| serde_json::json!({"blobSum": d})).collect::<Vec<_>>(),
        "history": blob_sums.iter().map(|_| serde_json::json!({"v1Compatibility": "{}"})).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&manifest).unwrap()
}
