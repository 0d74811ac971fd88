//! Manifest media types and what a scan needs from each: the layers of an image, the
//! children of an index or manifest list, the blob sums of a schema-1 manifest.
//! The type is decided by `Content-Type` first, then by the document's `mediaType`,
//! then by its shape, because registries and pushers are inconsistent about both.

use serde::Deserialize;

use crate::snapshot::LayerRef;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Sent on every manifest request: without the OCI types, Distribution answers 404
/// MANIFEST_UNKNOWN for OCI images.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// What a manifest tells the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image (Docker v2 or OCI): its layers with sizes (config blob not included),
    /// and the digest of its config blob (where its creation date is).
    Image {
        layers: Vec<LayerRef>,
        config: Option<String>,
    },
    /// An index or manifest list: the digests of its children.
    Index(Vec<String>),
    /// Schema 1: layer digests without sizes (sized by HEAD on the blobs), and the
    /// creation date its newest history entry states (it has no config blob).
    Schema1 {
        sums: Vec<String>,
        created: Option<i64>,
    },
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: Option<i64>,
}

#[derive(Deserialize)]
struct FsLayer {
    #[serde(rename = "blobSum", default)]
    blob_sum: String,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(rename = "fsLayers", default)]
    fs_layers: Option<Vec<FsLayer>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    history: Option<Vec<History>>,
}

/// A schema-1 history entry: `v1Compatibility` is a JSON document in a string, the
/// first entry's is the image's own config (with `created`).
#[derive(Deserialize)]
struct History {
    #[serde(rename = "v1Compatibility", default)]
    v1_compatibility: String,
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(default, borrow)]
    created: Option<std::borrow::Cow<'a, str>>,
}

/// The `created` date (unix seconds) of an image config document; `None` when it is
/// missing, not RFC 3339, or the document is not a JSON object.
pub fn config_created(body: &[u8]) -> Option<i64> {
    let config: Created = serde_json::from_slice(body).ok()?;
    crate::rfc3339::parse(config.created?.as_ref())
}

/// A digest the scan is willing to put into a URL: `algorithm:hex`.
pub fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg.len() <= 32
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && hex.len() >= 32
                && hex.len() <= 128
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Parse a manifest body. `content_type` is the response header (parameters ignored).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, String> {
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let header_type = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| c.starts_with("application/vnd."));
    let kind = header_type.or(raw.media_type.clone()).unwrap_or_default();
    let is_index = kind == OCI_INDEX || kind == DOCKER_LIST;
    let is_image = kind == OCI_MANIFEST || kind == DOCKER_V2;
    let is_v1 = kind == DOCKER_V1 || kind == DOCKER_V1_SIGNED || raw.schema_version == Some(1);

    let digests_of = |list: Vec<Descriptor>, what: &str| -> Result<Vec<Descriptor>, String> {
        for d in &list {
            if !valid_digest(&d.digest) {
                return Err(format!("{what} has an invalid digest {:?}", d.digest));
            }
        }
        Ok(list)
    };

    if is_index || (!is_image && !is_v1 && raw.manifests.is_some()) {
        let list = digests_of(raw.manifests.unwrap_or_default(), "index entry")?;
        return Ok(Manifest::Index(
            list.into_iter().map(|d| d.digest).collect(),
        ));
    }
    if is_v1 {
        let layers = raw.fs_layers.ok_or("schema 1 manifest without fsLayers")?;
        for l in &layers {
            if !valid_digest(&l.blob_sum) {
                return Err(format!(
                    "schema 1 layer has an invalid blobSum {:?}",
                    l.blob_sum
                ));
            }
        }
        let created = raw
            .history
            .as_ref()
            .and_then(|h| h.first())
            .and_then(|h| config_created(h.v1_compatibility.as_bytes()));
        return Ok(Manifest::Schema1 {
            sums: layers.into_iter().map(|l| l.blob_sum).collect(),
            created,
        });
    }
    if let Some(layers) = raw.layers {
        let layers = digests_of(layers, "layer")?;
        let mut out = Vec::with_capacity(layers.len());
        for l in layers {
            let size = match l.size {
                Some(s) if s >= 0 => s as u64,
                other => return Err(format!("layer {} has an invalid size {other:?}", l.digest)),
            };
            out.push(LayerRef {
                digest: l.digest.into(),
                size,
            });
        }
        // A config with an invalid digest only costs the date, never the layers.
        let config = raw.config.map(|c| c.digest).filter(|d| valid_digest(d));
        return Ok(Manifest::Image {
            layers: out,
            config,
        });
    }
    Err(format!(
        "unsupported manifest (type {:?}, schemaVersion {:?})",
        if kind.is_empty() { "none" } else { &kind },
        raw.schema_version
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn oci_image_layers_without_config() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"{D2}","size":7}},"layers":[{{"digest":"{D1}","size":100}}]}}"#
        );
        assert_eq!(
            parse(Some(OCI_MANIFEST), body.as_bytes()).unwrap(),
            Manifest::Image {
                layers: vec![LayerRef {
                    digest: D1.into(),
                    size: 100
                }],
                config: Some(D2.into()),
            }
        );
        // no Content-Type: mediaType decides; no mediaType either: the shape does
        assert!(matches!(
            parse(None, body.as_bytes()).unwrap(),
            Manifest::Image { .. }
        ));
        let bare = format!(r#"{{"schemaVersion":2,"layers":[{{"digest":"{D1}","size":1}}]}}"#);
        assert!(matches!(
            parse(Some("application/json"), bare.as_bytes()).unwrap(),
            Manifest::Image { .. }
        ));
    }

    #[test]
    fn index_and_list() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{D1}","size":500}},{{"digest":"{D2}","size":500}}]}}"#
        );
        for ct in [OCI_INDEX, DOCKER_LIST] {
            assert_eq!(
                parse(Some(ct), body.as_bytes()).unwrap(),
                Manifest::Index(vec![D1.into(), D2.into()])
            );
        }
    }

    #[test]
    fn schema1() {
        let body = format!(
            r#"{{"schemaVersion":1,"name":"r","tag":"t","fsLayers":[{{"blobSum":"{D1}"}},{{"blobSum":"{D1}"}}],"history":[{{"v1Compatibility":"{{\"id\":\"x\",\"created\":\"2016-05-04T03:02:01.5Z\"}}"}},{{"v1Compatibility":"{{\"created\":\"2001-01-01T00:00:00Z\"}}"}}]}}"#
        );
        assert_eq!(
            parse(Some(DOCKER_V1_SIGNED), body.as_bytes()).unwrap(),
            Manifest::Schema1 {
                sums: vec![D1.into(), D1.into()],
                created: Some(1_462_330_921),
            }
        );
        let no_history = format!(r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{D1}"}}]}}"#);
        assert!(matches!(
            parse(None, no_history.as_bytes()).unwrap(),
            Manifest::Schema1 { created: None, .. }
        ));
    }

    #[test]
    fn config_dates() {
        let table: &[(&str, Option<i64>)] = &[
            (
                r#"{"created":"2023-06-01T10:20:30.123456789Z","config":{}}"#,
                Some(1_685_614_830),
            ),
            (r#"{"created":"1970-01-01T00:00:00Z"}"#, Some(0)),
            (r#"{"created":"yesterday"}"#, None),
            (r#"{"created":12}"#, None),
            (r#"{"architecture":"amd64"}"#, None),
            (r#"[]"#, None),
            ("not json", None),
        ];
        for (body, want) in table {
            assert_eq!(config_created(body.as_bytes()), *want, "{body}");
        }
        // An invalid config digest is no config, the layers stay.
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"../x"}},"layers":[{{"digest":"{D1}","size":1}}]}}"#
        );
        assert!(matches!(
            parse(None, body.as_bytes()).unwrap(),
            Manifest::Image { config: None, .. }
        ));
    }

    #[test]
    fn garbage_is_an_error_with_words() {
        assert!(parse(None, b"<html>")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse(None, b"{}")
            .unwrap_err()
            .contains("unsupported manifest"));
        let bad_digest = r#"{"layers":[{"digest":"../../etc","size":1}]}"#;
        assert!(parse(None, bad_digest.as_bytes())
            .unwrap_err()
            .contains("invalid digest"));
        let neg = format!(r#"{{"layers":[{{"digest":"{D1}","size":-1}}]}}"#);
        assert!(parse(None, neg.as_bytes())
            .unwrap_err()
            .contains("invalid size"));
    }
}
