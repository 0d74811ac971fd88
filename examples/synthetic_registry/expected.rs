//! The numbers a correct scan of the synthetic registry must report, by the service's
//! definitions:
//! - tag `size` = sum of the sizes of the tag's distinct layer digests (config blobs not
//!   counted; for an index, the union of its children's layers, attestation included);
//! - repository `size` = sum of its tags' sizes;
//! - `disk_size`: every distinct layer has one owner tag. Walking repositories sorted by name
//!   and their tags sorted by name (byte order), the first tag holding a layer owns it; a later
//!   tag takes it over only if it has strictly fewer distinct layers than the current owner.
//!   A tag's `disk_size` is the sum of the layers it owns, so the total is the sum of all
//!   distinct layers.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Layer, Registry};

#[derive(Serialize)]
pub struct Expected {
    pub repository_count: usize,
    pub tag_count: usize,
    pub size: u64,
    pub disk_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<Usage>>,
}

/// One repository (with its `tags`) or one tag (without).
#[derive(Serialize)]
pub struct Usage {
    pub name: String,
    pub size: u64,
    pub disk_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Usage>>,
}

struct Tag {
    repo: usize,
    name: String,
    layers: Vec<Layer>,
}

/// The totals for the registry as it is now; `detail` adds every repository and tag.
pub fn expected(registry: &Registry, detail: bool) -> Expected {
    let mut tags: Vec<Tag> = Vec::new();
    for repo in 0..registry.repositories().len() {
        let mut names: Vec<(String, u32)> = (0..registry.tag_count(repo))
            .map(|tag| (registry.tag_name(repo, tag), tag))
            .collect();
        names.sort();
        tags.extend(names.into_iter().map(|(name, tag)| Tag {
            repo,
            name,
            layers: registry.tag_layers(repo, tag),
        }));
    }

    let mut owners: HashMap<Layer, usize> = HashMap::new();
    for (index, tag) in tags.iter().enumerate() {
        for &layer in &tag.layers {
            match owners.entry(layer) {
                Entry::Vacant(entry) => {
                    entry.insert(index);
                }
                Entry::Occupied(mut entry) => {
                    if tag.layers.len() < tags[*entry.get()].layers.len() {
                        entry.insert(index);
                    }
                }
            }
        }
    }
    let mut disk_sizes = vec![0u64; tags.len()];
    for (&layer, &owner) in &owners {
        disk_sizes[owner] += registry.layer_size(layer);
    }
    let sizes: Vec<u64> = tags
        .iter()
        .map(|tag| {
            tag.layers
                .iter()
                .map(|&layer| registry.layer_size(layer))
                .sum()
        })
        .collect();

    let repositories = detail.then(|| {
        let mut out: Vec<Usage> = registry
            .repositories()
            .iter()
            .map(|repository| Usage {
                name: repository.name.clone(),
                size: 0,
                disk_size: 0,
                tags: Some(Vec::new()),
            })
            .collect();
        for (index, tag) in tags.iter().enumerate() {
            let repository = &mut out[tag.repo];
            repository.size += sizes[index];
            repository.disk_size += disk_sizes[index];
            repository.tags.get_or_insert_with(Vec::new).push(Usage {
                name: tag.name.clone(),
                size: sizes[index],
                disk_size: disk_sizes[index],
                tags: None,
            });
        }
        out
    });

    Expected {
        repository_count: registry.repositories().len(),
        tag_count: tags.len(),
        size: sizes.iter().sum(),
        disk_size: disk_sizes.iter().sum(),
        repositories,
    }
}
