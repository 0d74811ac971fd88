//! The original's two numbers, `size` and `disk_size`, written into the snapshot's tags and
//! repositories by `Builder::finish`. They stay on the storage types because library users
//! (the API tests among them) read them there; every newer number is derived by `crate::usage`
//! from the finished snapshot instead. Pure functions, no I/O.
//!
//! Definitions (the original service's, so numbers match wherever it gets an answer):
//! - tag `size`: sum of the sizes of the tag's distinct layer digests (config blob not
//!   counted);
//! - repository `size`: sum of its tags' sizes (layers shared between tags count again);
//! - `disk_size`: every distinct layer digest of the registry has one owner (repository,
//!   tag). Repositories and tags are walked in byte order of their names; the first tag
//!   holding a layer owns it, and a later tag takes it over only if it has strictly fewer
//!   layers than the current owner. A tag's `disk_size` is the sum of the layers it owns,
//!   a repository's the sum over its tags, so the registry's total is its deduplicated
//!   layer bytes.
//!
//! The walk order is fixed by the names, never by the order in which scan workers
//! finished, so the same registry always gives the same numbers.

use super::{Blob, Repository, Totals};

/// Fill in `size`/`disk_size` of every tag and repository and return the registry totals.
///
/// Preconditions (established by `snapshot::Builder`): `repositories` sorted by name,
/// each repository's tags sorted by name, each tag's `layers` sorted and distinct, and
/// every layer index valid in `blobs`.
pub(super) fn account(blobs: &[Blob], repositories: &mut [Repository]) -> Totals {
    // owner[blob] = (repository index, tag index, layer count of that tag)
    let mut owner: Vec<Option<(u32, u32, u32)>> = vec![None; blobs.len()];
    for (r, repo) in repositories.iter().enumerate() {
        let Some(tags) = &repo.tags else { continue };
        for (t, tag) in tags.iter().enumerate() {
            let count = tag.layers.len;
            for &layer in repo.layers_of(tag) {
                let slot = &mut owner[layer as usize];
                match slot {
                    Some((_, _, owner_count)) if *owner_count <= count => {}
                    _ => *slot = Some((r as u32, t as u32, count)),
                }
            }
        }
    }

    for repo in repositories.iter_mut() {
        let layers = &repo.layers;
        if let Some(tags) = &mut repo.tags {
            for tag in tags.iter_mut() {
                tag.size = saturating_sum(
                    layers[tag.layers.range()]
                        .iter()
                        .map(|&l| blobs[l as usize].size),
                );
                tag.disk_size = 0;
            }
        }
    }
    for (blob, slot) in owner.iter().enumerate() {
        if let Some((r, t, _)) = slot {
            let tags = repositories[*r as usize]
                .tags
                .as_mut()
                .expect("owner has tags");
            let disk_size = &mut tags[*t as usize].disk_size;
            *disk_size = disk_size.saturating_add(blobs[blob].size);
        }
    }

    let mut totals = Totals::default();
    for repo in repositories.iter_mut() {
        totals.repository_count += 1;
        match &repo.tags {
            Some(tags) => {
                let size = saturating_sum(tags.iter().map(|t| t.size));
                let disk_size = saturating_sum(tags.iter().map(|t| t.disk_size));
                repo.size = Some(size);
                repo.disk_size = Some(disk_size);
                totals.tag_count += tags.len();
                totals.size = totals.size.saturating_add(size);
                totals.disk_size = totals.disk_size.saturating_add(disk_size);
            }
            None => {
                repo.size = None;
                repo.disk_size = None;
            }
        }
    }
    totals
}

/// Sizes come from the registry (any `i64` a manifest states) or the snapshot file (any
/// `u64`), so their sums saturate at `u64::MAX` rather than overflow: an absurd size shows
/// as 18446744073709551615 instead of wrapping to a small number (release) or panicking
/// (debug). `usage` sums the same sizes the same way.
pub(crate) fn saturating_sum(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use crate::snapshot::{Builder, LayerRef, ScannedTag, Snapshot};

    fn tag(name: &str, layers: &[(&str, u64)]) -> ScannedTag {
        ScannedTag {
            name: name.into(),
            digest: Some(format!("sha256:m-{name}").into()),
            layers: layers
                .iter()
                .map(|(d, s)| LayerRef {
                    digest: (*d).into(),
                    size: *s,
                })
                .collect(),
        }
    }

    fn build(repos: Vec<(&str, Option<Vec<ScannedTag>>)>) -> Snapshot {
        let mut b = Builder::default();
        for (name, tags) in repos {
            b.add_repository(name, tags, None);
        }
        b.finish(1.0)
    }

    /// (size, disk_size) of a repository and (name, size, disk_size) of each tag.
    type Sizes = (Option<u64>, Option<u64>, Vec<(String, u64, u64)>);

    fn sizes(s: &Snapshot, repo: &str) -> Sizes {
        let r = s.repository(repo).unwrap();
        let tags = r
            .tags
            .as_ref()
            .map(|t| {
                t.iter()
                    .map(|t| (t.name.to_string(), t.size, t.disk_size))
                    .collect()
            })
            .unwrap_or_default();
        (r.size, r.disk_size, tags)
    }

    #[test]
    fn first_tag_owns_shared_layers() {
        // b/app:v1 = base(100) + x(10); a/app:v1 = base(100) + y(20); walked a before b.
        let s = build(vec![
            ("b/app", Some(vec![tag("v1", &[("base", 100), ("x", 10)])])),
            ("a/app", Some(vec![tag("v1", &[("base", 100), ("y", 20)])])),
        ]);
        assert_eq!(
            sizes(&s, "a/app"),
            (Some(120), Some(120), vec![("v1".into(), 120, 120)])
        );
        assert_eq!(
            sizes(&s, "b/app"),
            (Some(110), Some(10), vec![("v1".into(), 110, 10)])
        );
        assert_eq!(s.totals.size, 230);
        assert_eq!(s.totals.disk_size, 130);
        assert_eq!(s.totals.repository_count, 2);
        assert_eq!(s.totals.tag_count, 2);
    }

    #[test]
    fn a_tag_with_strictly_fewer_layers_takes_over() {
        // a/x:big has 3 layers incl. base; b/y:small has only base → b/y owns base.
        let s = build(vec![
            (
                "a/x",
                Some(vec![tag("big", &[("base", 100), ("p", 1), ("q", 2)])]),
            ),
            ("b/y", Some(vec![tag("small", &[("base", 100)])])),
        ]);
        assert_eq!(sizes(&s, "a/x").1, Some(3));
        assert_eq!(sizes(&s, "b/y").1, Some(100));
        assert_eq!(s.totals.disk_size, 103);
    }

    #[test]
    fn equal_layer_count_does_not_take_over() {
        let s = build(vec![(
            "r",
            Some(vec![
                tag("v2", &[("base", 100), ("b", 5)]),
                tag("v1", &[("base", 100), ("a", 7)]),
            ]),
        )]);
        // v1 sorts first and keeps base; v2 owns only b.
        assert_eq!(
            sizes(&s, "r").2,
            vec![("v1".into(), 107, 107), ("v2".into(), 105, 5)]
        );
        assert_eq!(sizes(&s, "r").0, Some(212));
    }

    #[test]
    fn repeated_digest_in_one_manifest_counts_once() {
        let s = build(vec![(
            "r",
            Some(vec![tag("t", &[("l", 10), ("l", 10), ("m", 1)])]),
        )]);
        assert_eq!(sizes(&s, "r").2, vec![("t".into(), 11, 11)]);
    }

    #[test]
    fn unknown_repository_has_null_sizes_and_no_tags_counted() {
        let s = build(vec![
            ("ok", Some(vec![tag("t", &[("l", 10)])])),
            ("broken", None),
        ]);
        assert_eq!(sizes(&s, "broken").0, None);
        assert_eq!(sizes(&s, "broken").1, None);
        assert_eq!(s.totals.repository_count, 2);
        assert_eq!(s.totals.tag_count, 1);
        assert_eq!(s.totals.disk_size, 10);
    }

    #[test]
    fn numbers_do_not_depend_on_input_order() {
        let repos = || {
            vec![
                (
                    "g/one",
                    Some(vec![tag("b", &[("s", 5), ("u", 1)]), tag("a", &[("s", 5)])]),
                ),
                (
                    "g/two",
                    Some(vec![tag("z", &[("s", 5), ("u", 1), ("w", 3)])]),
                ),
            ]
        };
        let forward = build(repos());
        let mut reversed_input = repos();
        reversed_input.reverse();
        for (_, tags) in reversed_input.iter_mut() {
            tags.as_mut().unwrap().reverse();
        }
        let backward = build(reversed_input);
        for name in ["g/one", "g/two"] {
            assert_eq!(sizes(&forward, name), sizes(&backward, name));
        }
        assert_eq!(forward.totals.disk_size, 9);
    }

    /// Found by fuzzing the snapshot file (fuzz/corpus/snapshot/huge_sizes): two layers of
    /// a size near `u64::MAX` overflowed the sums (a panic in debug builds, a wrapped small
    /// number in release builds). A manifest can state sizes up to `i64::MAX`.
    #[test]
    fn absurd_sizes_saturate_instead_of_overflowing() {
        let huge = u64::MAX - 1;
        let s = build(vec![
            (
                "r",
                Some(vec![
                    tag("a", &[("x", huge), ("y", huge)]),
                    tag("b", &[("y", huge)]),
                ]),
            ),
            ("s", Some(vec![tag("c", &[("z", 5)])])),
        ]);
        assert_eq!(sizes(&s, "r").0, Some(u64::MAX));
        assert_eq!(sizes(&s, "s"), (Some(5), Some(5), vec![("c".into(), 5, 5)]));
        assert_eq!((s.totals.size, s.totals.disk_size), (u64::MAX, u64::MAX));
    }
}
