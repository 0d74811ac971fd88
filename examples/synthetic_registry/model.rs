//! What the synthetic registry holds: repository and tag names, the layers of each image,
//! layer sizes, and the manifest and config JSON. Everything is a pure function of the
//! command line ([`Shape`]) and of the tag moves made since start; nothing is stored but
//! the sorted names, one generation counter per tag and a small per-tag digest cache.
//!
//! Content model (all choices hashed from `--seed`):
//! - repository `i` is `group-<i/10>/project-<i>`, zero-padded so that byte order is index
//!   order; every fourth one (`i % 4 == 3`) holds Docker schema2 manifests, the rest OCI;
//! - tags are `v1` … `v<T-1>` and `latest`, which aliases `v<T-1>` (same manifest) until one of
//!   them is moved;
//! - an image has `--layers` layers: 1 or 2 from the pool of `--shared-layers` base layers
//!   shared by all repositories, then (when at least two more are left) one layer shared by
//!   the images of its repository, then layers of its own;
//! - moving a tag replaces its top layer with a new one (new config, new manifest digest);
//! - `--multiarch` adds `demo/multiarch:latest`, an OCI index of an amd64 image (on base layer
//!   0), an arm64 image and a BuildKit attestation (platform unknown/unknown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use serde::Serialize;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const IN_TOTO: &str = "application/vnd.in-toto+json";

/// Name of the repository `--multiarch` adds.
pub const MULTIARCH_NAME: &str = "demo/multiarch";
/// Children of the multiarch index, in index order.
const PLATFORMS: [Platform; 3] = [
    Platform {
        architecture: "amd64",
        os: "linux",
        variant: None,
    },
    Platform {
        architecture: "arm64",
        os: "linux",
        variant: Some("v8"),
    },
    Platform {
        architecture: "unknown",
        os: "unknown",
        variant: None,
    },
];
const ATTESTATION_CHILD: u32 = 2;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const MAX_LAYER_SIZE: u64 = 50 * MIB;

/// The command-line knobs that decide the content.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub repositories: u32,
    pub tags: u32,
    /// At least 1.
    pub layers: u32,
    pub shared_layers: u32,
    pub seed: u64,
    pub multiarch: bool,
}

/// The identity of a layer blob; its digest is the sha256 of a name derived from it, so
/// distinct identities are distinct blobs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Layer {
    /// One of the `--shared-layers` base layers shared across repositories.
    Base(u32),
    /// The layer the images of one repository share.
    Project(u32),
    Image {
        repo: u32,
        image: u32,
        k: u32,
    },
    /// The top layer a tag got when it was moved for the `generation`-th time.
    Rebuilt {
        repo: u32,
        tag: u32,
        generation: u32,
    },
    /// A layer of a child of the multiarch index.
    Platform {
        child: u32,
        k: u32,
    },
}

/// The identity of a manifest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ManifestId {
    /// Image `image` of repository ordinal `repo`; `rebuilt` = (tag, generation) once moved.
    Image {
        repo: u32,
        image: u32,
        rebuilt: Option<(u32, u32)>,
    },
    Index,
    Platform(u32),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Content {
    /// Regular repository number `ordinal` (0-based, in creation order).
    Images {
        ordinal: u32,
    },
    Multiarch,
}

pub struct Repository {
    pub name: String,
    pub content: Content,
}

/// What HEAD on a manifest needs: no body.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    pub media_type: &'static str,
    pub digest: [u8; 32],
    pub len: usize,
}

pub struct Rendered {
    pub media_type: &'static str,
    pub digest: [u8; 32],
    pub body: Vec<u8>,
}

pub enum Blob {
    /// A layer: only its size is known (content is never served).
    Layer(u64),
    /// A config blob: its JSON.
    Config(Vec<u8>),
}

pub struct Registry {
    shape: Shape,
    /// Sorted by name (byte order), like Distribution's catalog.
    repositories: Vec<Repository>,
    by_name: HashMap<String, usize>,
    /// Per regular tag (slot `ordinal * tags + tag`): how often it was moved.
    generations: Vec<AtomicU32>,
    /// Per regular tag: its manifest's digest and length, with the generation it is for.
    heads: Vec<Mutex<Option<(u32, Head)>>>,
    /// Number of `move_tags` calls so far; the lock also serialises them.
    move_round: Mutex<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<Annotations>,
}

#[derive(Serialize, Clone, Copy)]
struct Platform {
    architecture: &'static str,
    os: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'static str>,
}

#[derive(Serialize)]
struct Annotations {
    #[serde(rename = "vnd.docker.reference.digest")]
    reference_digest: String,
    #[serde(rename = "vnd.docker.reference.type")]
    reference_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ImageConfig {
    architecture: &'static str,
    os: &'static str,
    created: String,
    config: serde_json::Map<String, serde_json::Value>,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

impl Registry {
    pub fn new(shape: Shape) -> Registry {
        assert!(shape.layers >= 1, "an image has at least one layer");
        let n = shape.repositories;
        let groups = n.saturating_sub(1) / 10;
        let project_width = digits(n.saturating_sub(1)).max(4);
        let group_width = digits(groups).max(3);
        let mut repositories: Vec<Repository> = (0..n)
            .map(|i| Repository {
                name: format!(
                    "group-{:0gw$}/project-{:0pw$}",
                    i / 10,
                    i,
                    gw = group_width,
                    pw = project_width
                ),
                content: Content::Images { ordinal: i },
            })
            .collect();
        if shape.multiarch {
            repositories.push(Repository {
                name: MULTIARCH_NAME.to_string(),
                content: Content::Multiarch,
            });
        }
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = repositories
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        let slots = n as usize * shape.tags as usize;
        Registry {
            shape,
            repositories,
            by_name,
            generations: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            heads: (0..slots).map(|_| Mutex::new(None)).collect(),
            move_round: Mutex::new(0),
        }
    }

    /// Sorted by name.
    pub fn repositories(&self) -> &[Repository] {
        &self.repositories
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn tag_count(&self, repo: usize) -> u32 {
        match self.repositories[repo].content {
            Content::Images { .. } => self.shape.tags,
            Content::Multiarch => 1,
        }
    }

    pub fn tag_name(&self, repo: usize, tag: u32) -> String {
        if tag + 1 == self.tag_count(repo) {
            "latest".to_string()
        } else {
            format!("v{}", tag + 1)
        }
    }

    pub fn find_tag(&self, repo: usize, name: &str) -> Option<u32> {
        let count = self.tag_count(repo);
        if name == "latest" {
            return count.checked_sub(1);
        }
        let number: u32 = name.strip_prefix('v')?.parse().ok()?;
        (number >= 1 && number < count && name == format!("v{number}")).then(|| number - 1)
    }

    /// The tags in the order the tag list gives them: deterministic but not sorted, like
    /// Distribution's storage order.
    pub fn listing_order(&self, repo: usize) -> Vec<u32> {
        let salt = self.repo_salt(repo);
        let mut order: Vec<u32> = (0..self.tag_count(repo)).collect();
        order.sort_by_key(|&t| mix(&[self.shape.seed, 11, salt, u64::from(t)]));
        order
    }

    pub fn manifest_of_tag(&self, repo: usize, tag: u32) -> ManifestId {
        match self.repositories[repo].content {
            Content::Multiarch => ManifestId::Index,
            Content::Images { ordinal } => {
                let generation = self.generations[self.slot(ordinal, tag)].load(Ordering::Relaxed);
                let image = tag.min(self.shape.tags.saturating_sub(2));
                let rebuilt = (generation > 0).then_some((tag, generation));
                ManifestId::Image {
                    repo: ordinal,
                    image,
                    rebuilt,
                }
            }
        }
    }

    /// The layers of an image in manifest order, or for an index the layers of all its
    /// children one after the other.
    pub fn layers(&self, id: ManifestId) -> Vec<Layer> {
        let layers = self.shape.layers;
        match id {
            ManifestId::Image {
                repo,
                image,
                rebuilt,
            } => {
                let h = mix(&[self.shape.seed, 1, u64::from(repo), u64::from(image)]);
                let pool = self.shape.shared_layers;
                let shared = if pool == 0 { 0 } else { 1 + (h & 1) as u32 };
                let shared = shared.min(pool).min(layers - 1);
                let mut out = Vec::with_capacity(layers as usize);
                if shared >= 1 {
                    let first = ((h >> 8) % u64::from(pool)) as u32;
                    out.push(Layer::Base(first));
                    if shared == 2 {
                        let step = 1 + ((h >> 32) % u64::from(pool - 1)) as u32;
                        out.push(Layer::Base((first + step) % pool));
                    }
                }
                let own = layers - shared;
                if own >= 2 {
                    out.push(Layer::Project(repo));
                }
                let first_own = if own >= 2 { 1 } else { 0 };
                out.extend((first_own..own).map(|k| Layer::Image { repo, image, k }));
                if let Some((tag, generation)) = rebuilt {
                    *out.last_mut().expect("at least one layer") = Layer::Rebuilt {
                        repo,
                        tag,
                        generation,
                    };
                }
                out
            }
            ManifestId::Platform(ATTESTATION_CHILD) => {
                vec![Layer::Platform {
                    child: ATTESTATION_CHILD,
                    k: 0,
                }]
            }
            ManifestId::Platform(child) => {
                let on_base = child == 0 && self.shape.shared_layers > 0 && layers >= 2;
                let mut out = Vec::with_capacity(layers as usize);
                if on_base {
                    out.push(Layer::Base(0));
                }
                let own = layers - u32::from(on_base);
                out.extend((0..own).map(|k| Layer::Platform { child, k }));
                out
            }
            ManifestId::Index => (0..PLATFORMS.len() as u32)
                .flat_map(|child| self.layers(ManifestId::Platform(child)))
                .collect(),
        }
    }

    /// The distinct layers of a tag, sorted: what its size is made of.
    pub fn tag_layers(&self, repo: usize, tag: u32) -> Vec<Layer> {
        let mut layers = self.layers(self.manifest_of_tag(repo, tag));
        layers.sort_unstable();
        layers.dedup();
        layers
    }

    /// 1 KiB to 50 MiB, spread over the orders of magnitude; base layers 4 to 50 MiB;
    /// attestation layers 1 to 16 KiB.
    pub fn layer_size(&self, layer: Layer) -> u64 {
        let h = mix(&[self.shape.seed, 2, layer_key(layer)]);
        match layer {
            Layer::Base(_) => 4 * MIB + h % (MAX_LAYER_SIZE - 4 * MIB),
            Layer::Platform {
                child: ATTESTATION_CHILD,
                ..
            } => KIB + h % (15 * KIB),
            _ => {
                let magnitude = KIB << (h % 16);
                (magnitude + (h >> 8) % magnitude).min(MAX_LAYER_SIZE)
            }
        }
    }

    fn layer_digest(&self, layer: Layer) -> [u8; 32] {
        let name = format!("synthetic-registry seed={} {layer:?}", self.shape.seed);
        hmac_sha256::Hash::hash(name.as_bytes())
    }

    pub fn media_type(&self, id: ManifestId) -> &'static str {
        match id {
            ManifestId::Index => OCI_INDEX,
            ManifestId::Image { repo, .. } if repo % 4 == 3 => DOCKER_MANIFEST,
            _ => OCI_MANIFEST,
        }
    }

    pub fn render(&self, id: ManifestId) -> Rendered {
        let media_type = self.media_type(id);
        let body = match id {
            ManifestId::Index => {
                let children: Vec<Rendered> = (0..PLATFORMS.len() as u32)
                    .map(|child| self.render(ManifestId::Platform(child)))
                    .collect();
                let first_digest = digest_string(&children[0].digest);
                let manifests = children
                    .iter()
                    .zip(PLATFORMS)
                    .enumerate()
                    .map(|(child, (rendered, platform))| Descriptor {
                        media_type: rendered.media_type,
                        digest: digest_string(&rendered.digest),
                        size: rendered.body.len() as u64,
                        platform: Some(platform),
                        annotations: (child as u32 == ATTESTATION_CHILD).then(|| Annotations {
                            reference_digest: first_digest.clone(),
                            reference_type: "attestation-manifest",
                        }),
                    })
                    .collect();
                let index = ImageIndex {
                    schema_version: 2,
                    media_type,
                    manifests,
                };
                serde_json::to_vec(&index).expect("serialisable")
            }
            _ => {
                let docker = media_type == DOCKER_MANIFEST;
                let layer_type = match id {
                    ManifestId::Platform(ATTESTATION_CHILD) => IN_TOTO,
                    _ if docker => DOCKER_LAYER,
                    _ => OCI_LAYER,
                };
                let layers: Vec<Descriptor> = self
                    .layers(id)
                    .into_iter()
                    .map(|layer| Descriptor {
                        media_type: layer_type,
                        digest: digest_string(&self.layer_digest(layer)),
                        size: self.layer_size(layer),
                        platform: None,
                        annotations: None,
                    })
                    .collect();
                let config = self.render_config(id);
                let manifest = ImageManifest {
                    schema_version: 2,
                    media_type,
                    config: Descriptor {
                        media_type: if docker { DOCKER_CONFIG } else { OCI_CONFIG },
                        digest: digest_string(&hmac_sha256::Hash::hash(&config)),
                        size: config.len() as u64,
                        platform: None,
                        annotations: None,
                    },
                    layers,
                };
                serde_json::to_vec(&manifest).expect("serialisable")
            }
        };
        Rendered {
            media_type,
            digest: hmac_sha256::Hash::hash(&body),
            body,
        }
    }

    /// Deterministic build dates for the cleanup preview: images of a repository are
    /// days apart, up to 400 days before 2024-01-01; every 50th image has Jib's fixed
    /// date (1970-01-01T00:00:01Z) and an index's platforms share one date.
    fn render_config(&self, id: ManifestId) -> Vec<u8> {
        let platform = match id {
            ManifestId::Platform(child) => PLATFORMS[child as usize],
            _ => PLATFORMS[0],
        };
        let diff_ids = self
            .layers(id)
            .into_iter()
            .map(|layer| {
                let name = format!("synthetic-registry seed={} diff {layer:?}", self.shape.seed);
                digest_string(&hmac_sha256::Hash::hash(name.as_bytes()))
            })
            .collect();
        let config = ImageConfig {
            architecture: platform.architecture,
            os: platform.os,
            created: created_of(id),
            config: serde_json::Map::new(),
            rootfs: RootFs {
                kind: "layers",
                diff_ids,
            },
        };
        serde_json::to_vec(&config).expect("serialisable")
    }

    /// Digest and length of a tag's manifest, cached per tag until the tag moves.
    pub fn head(&self, repo: usize, tag: u32) -> Head {
        let id = self.manifest_of_tag(repo, tag);
        let ManifestId::Image {
            repo: ordinal,
            rebuilt,
            ..
        } = id
        else {
            return head_of(&self.render(id));
        };
        let generation = rebuilt.map_or(0, |(_, generation)| generation);
        let slot = &self.heads[self.slot(ordinal, tag)];
        if let Some((cached_generation, head)) = *slot.lock().expect("head cache") {
            if cached_generation == generation {
                return head;
            }
        }
        let head = head_of(&self.render(id));
        *slot.lock().expect("head cache") = Some((generation, head));
        head
    }

    /// A manifest of the repository by tag or by `sha256:` digest. Manifests are found by
    /// digest while a tag (or the multiarch index) references them.
    pub fn lookup(&self, repo: usize, reference: &str) -> Option<(ManifestId, Head)> {
        let Some(hex) = reference.strip_prefix("sha256:") else {
            let tag = self.find_tag(repo, reference)?;
            return Some((self.manifest_of_tag(repo, tag), self.head(repo, tag)));
        };
        let wanted = parse_hex_digest(hex)?;
        if let Some(tag) =
            (0..self.tag_count(repo)).find(|&tag| self.head(repo, tag).digest == wanted)
        {
            return Some((self.manifest_of_tag(repo, tag), self.head(repo, tag)));
        }
        if self.repositories[repo].content != Content::Multiarch {
            return None;
        }
        (0..PLATFORMS.len() as u32)
            .map(ManifestId::Platform)
            .find_map(|id| {
                let head = head_of(&self.render(id));
                (head.digest == wanted).then_some((id, head))
            })
    }

    /// A layer or config blob referenced by one of the repository's manifests.
    pub fn find_blob(&self, repo: usize, digest: &str) -> Option<Blob> {
        let wanted = parse_hex_digest(digest.strip_prefix("sha256:")?)?;
        let mut ids: Vec<ManifestId> = (0..self.tag_count(repo))
            .map(|tag| self.manifest_of_tag(repo, tag))
            .collect();
        if ids.contains(&ManifestId::Index) {
            ids.extend((0..PLATFORMS.len() as u32).map(ManifestId::Platform));
            ids.retain(|&id| id != ManifestId::Index);
        }
        let layer = ids
            .iter()
            .flat_map(|&id| self.layers(id))
            .find(|&layer| self.layer_digest(layer) == wanted);
        if let Some(layer) = layer {
            return Some(Blob::Layer(self.layer_size(layer)));
        }
        ids.iter()
            .map(|&id| self.render_config(id))
            .find(|config| hmac_sha256::Hash::hash(config) == wanted)
            .map(Blob::Config)
    }

    /// Moves `percent` % of the regular tags (chosen by seed and round) to a new manifest
    /// with a new top layer. Returns (tags moved, round number starting at 1).
    pub fn move_tags(&self, percent: f64) -> (usize, u32) {
        let mut round = self.move_round.lock().expect("move lock");
        *round += 1;
        let total = self.generations.len();
        let count = ((total as f64) * percent / 100.0).round() as usize;
        let count = count.min(total);
        let mut scored: Vec<(u64, usize)> = (0..total)
            .map(|slot| {
                (
                    mix(&[self.shape.seed, 3, u64::from(*round), slot as u64]),
                    slot,
                )
            })
            .collect();
        if count < total {
            scored.select_nth_unstable(count);
        }
        for &(_, slot) in &scored[..count] {
            self.generations[slot].fetch_add(1, Ordering::Relaxed);
        }
        (count, *round)
    }

    fn slot(&self, ordinal: u32, tag: u32) -> usize {
        ordinal as usize * self.shape.tags as usize + tag as usize
    }

    fn repo_salt(&self, repo: usize) -> u64 {
        match self.repositories[repo].content {
            Content::Images { ordinal } => u64::from(ordinal),
            Content::Multiarch => u64::MAX,
        }
    }
}

fn head_of(rendered: &Rendered) -> Head {
    Head {
        media_type: rendered.media_type,
        digest: rendered.digest,
        len: rendered.body.len(),
    }
}

fn layer_key(layer: Layer) -> u64 {
    let (kind, a, b, c) = match layer {
        Layer::Base(i) => (0, i, 0, 0),
        Layer::Project(repo) => (1, repo, 0, 0),
        Layer::Image { repo, image, k } => (2, repo, image, k),
        Layer::Rebuilt {
            repo,
            tag,
            generation,
        } => (3, repo, tag, generation),
        Layer::Platform { child, k } => (4, child, k, 0),
    };
    mix(&[kind, u64::from(a), u64::from(b), u64::from(c)])
}

/// A splitmix64-based hash of a few words: the source of every "random" choice.
fn mix(words: &[u64]) -> u64 {
    words.iter().fold(0x9E37_79B9_7F4A_7C15, |acc, &word| {
        let mut z = (acc ^ word).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn digits(mut n: u32) -> usize {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

pub fn digest_string(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in digest {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 15)] as char);
    }
    out
}

fn parse_hex_digest(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// The `created` of the config of manifest `id` (see `Registry::render_config`).
fn created_of(id: ManifestId) -> String {
    const NEW_YEAR_2024: i64 = 1_704_067_200;
    let days = match id {
        ManifestId::Image {
            repo,
            image,
            rebuilt,
        } => {
            if image % 50 == 49 {
                return "1970-01-01T00:00:01Z".into();
            }
            // A moved tag is a newer build.
            let newer = rebuilt.map_or(0, |(_, generation)| generation as i64 + 1);
            ((repo as i64 * 7 + image as i64 * 3) % 400 - newer).max(0)
        }
        ManifestId::Index | ManifestId::Platform(_) => 10,
    };
    gitlab_registry_usage_rest::rfc3339::format(NEW_YEAR_2024 - days * 86_400)
}
