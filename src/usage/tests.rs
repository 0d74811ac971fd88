//! Hand-computed fixtures: every number below is worked out in the comments, not by code.

use super::order::{ListOptions, Sort, SortKey};
use super::*;
use crate::snapshot::{Builder, LayerRef, ScannedTag};

/// Blob sizes of the main fixture.
const SIZES: [(&str, u64); 11] = [
    ("base", 1000),
    ("a1", 100),
    ("a2", 200),
    ("b1", 50),
    ("c1", 30),
    ("sh", 7),
    ("d1", 40),
    ("mamd", 60),
    ("marm", 70),
    ("s1", 5),
    ("emp", 32),
];

fn tag(name: &str, manifest: &str, layers: &[&str]) -> ScannedTag {
    ScannedTag {
        name: name.into(),
        digest: Some(format!("sha256:{manifest}").as_str().into()),
        layers: layers
            .iter()
            .map(|l| LayerRef {
                digest: format!("sha256:{l}").as_str().into(),
                size: SIZES.iter().find(|(n, _)| n == l).unwrap().1,
            })
            .collect(),
    }
}

/// - `g/a`: `latest` and `v2` on one manifest {base, a2}; `v1` {base, a1} (layers shared
///   within a repository, two tags on one manifest);
/// - `g/b` {base, b1}: base shared across repositories of `g`;
/// - `g/sub/c` {c1, sh}, `h/d` {sh, d1}: `sh` shared across top-level namespaces;
/// - `h/multi:1.0`, a multi-arch index whose children are {base, mamd} and {d1, marm}: its
///   tag references the union, sharing base with `g` and d1 with `h/d`;
/// - `h/failed`: tags unknown;
/// - `solo` (no namespace): `old` is a schema 1 image listing s1 twice plus an empty
///   layer {s1, s1, emp}, `x` {s1}.
fn repos() -> Vec<(&'static str, Option<Vec<ScannedTag>>)> {
    vec![
        (
            "g/a",
            Some(vec![
                tag("v1", "m1", &["base", "a1"]),
                tag("v2", "m2", &["base", "a2"]),
                tag("latest", "m2", &["base", "a2"]),
            ]),
        ),
        ("g/b", Some(vec![tag("v1", "m3", &["base", "b1"])])),
        ("g/sub/c", Some(vec![tag("v1", "m4", &["c1", "sh"])])),
        ("h/d", Some(vec![tag("v1", "m5", &["sh", "d1"])])),
        ("h/failed", None),
        (
            "h/multi",
            Some(vec![tag("1.0", "idx", &["base", "mamd", "d1", "marm"])]),
        ),
        (
            "solo",
            Some(vec![
                tag("old", "s1m", &["s1", "s1", "emp"]),
                tag("x", "m6", &["s1"]),
            ]),
        ),
    ]
}

fn l(digest: &str, size: u64) -> LayerRef {
    LayerRef {
        digest: digest.into(),
        size,
    }
}

/// A tag without a manifest digest.
fn plain(name: &str, layers: Vec<LayerRef>) -> ScannedTag {
    ScannedTag {
        name: name.into(),
        digest: None,
        layers: layers.into(),
    }
}

/// The tags of a repository with one tag, `t`.
fn only(layers: Vec<LayerRef>) -> Option<Vec<ScannedTag>> {
    Some(vec![plain("t", layers)])
}

fn build(repos: Vec<(&str, Option<Vec<ScannedTag>>)>) -> Snapshot {
    let mut b = Builder::default();
    for (name, tags) in repos {
        b.add_repository(name, tags, None);
    }
    b.finish(1.0)
}

fn index(s: &Snapshot, name: &str) -> usize {
    s.repositories
        .iter()
        .position(|r| &*r.name == name)
        .unwrap()
}

fn repo_numbers(s: &Snapshot, u: &Usage, name: &str) -> (u64, u64) {
    let r = u.repository(index(s, name));
    (r.deduplicated_size, r.exclusive_size)
}

fn tag_exclusive(s: &Snapshot, u: &Usage, repo: &str, tag: &str) -> u64 {
    let r = index(s, repo);
    let t = s.repositories[r]
        .tags
        .as_ref()
        .unwrap()
        .iter()
        .position(|t| &*t.name == tag)
        .unwrap();
    u.tag_exclusive_size(r, t)
}

/// (size, disk, dedup, exclusive, repositories, tags, failed) of a namespace.
fn ns(u: &Usage, name: &str) -> [u64; 7] {
    let n = &u.namespaces()[u.namespace(name).unwrap() as usize];
    [
        n.size,
        n.disk_size,
        n.deduplicated_size,
        n.exclusive_size,
        n.repository_count,
        n.tag_count,
        n.failed_repository_count,
    ]
}

#[test]
fn tags_exclusive_bytes() {
    let s = build(repos());
    let u = Usage::of(&s);
    // Tags per blob: base 5, a2 2 (latest, v2), sh 2, d1 2, s1 2; all others 1.
    assert_eq!(
        tag_exclusive(&s, &u, "g/a", "latest"),
        0,
        "shares its manifest"
    );
    assert_eq!(tag_exclusive(&s, &u, "g/a", "v2"), 0, "shares its manifest");
    assert_eq!(tag_exclusive(&s, &u, "g/a", "v1"), 100); // a1
    assert_eq!(tag_exclusive(&s, &u, "g/b", "v1"), 50); // b1
    assert_eq!(tag_exclusive(&s, &u, "g/sub/c", "v1"), 30); // c1
    assert_eq!(tag_exclusive(&s, &u, "h/d", "v1"), 0); // sh and d1 shared
    assert_eq!(tag_exclusive(&s, &u, "h/multi", "1.0"), 60 + 70);
    assert_eq!(tag_exclusive(&s, &u, "solo", "old"), 32); // emp; s1 shared with x
    assert_eq!(tag_exclusive(&s, &u, "solo", "x"), 0);
}

#[test]
fn repositories_deduplicated_and_exclusive_bytes() {
    let s = build(repos());
    let u = Usage::of(&s);
    // base 1000 is in g/a, g/b and h/multi; sh in g/sub/c and h/d; d1 in h/d and h/multi.
    assert_eq!(repo_numbers(&s, &u, "g/a"), (1000 + 100 + 200, 100 + 200));
    assert_eq!(repo_numbers(&s, &u, "g/b"), (1050, 50));
    assert_eq!(repo_numbers(&s, &u, "g/sub/c"), (37, 30));
    assert_eq!(repo_numbers(&s, &u, "h/d"), (47, 0));
    assert_eq!(repo_numbers(&s, &u, "h/multi"), (1170, 130));
    assert_eq!(repo_numbers(&s, &u, "solo"), (37, 37), "s1 counted once");
    assert_eq!(repo_numbers(&s, &u, "h/failed"), (0, 0));
    // The registry: every blob once, equal to the original's disk_size.
    assert_eq!(u.deduplicated_size(), 1594);
    assert_eq!(s.totals.disk_size, 1594);
}

#[test]
fn namespaces_roll_up_with_shared_layers_counted_once() {
    let s = build(repos());
    let u = Usage::of(&s);
    let names: Vec<&str> = u.namespaces().iter().map(|n| &*n.name).collect();
    assert_eq!(names, ["g", "g/sub", "h"]);
    // g: sizes 3500 + 1050 + 37; disk (owners): g/a 1300, g/b 50, g/sub/c 37 (owns sh);
    // distinct blobs base a1 a2 b1 c1 sh = 1387; only g references a1 a2 b1 c1 = 380.
    assert_eq!(ns(&u, "g"), [4587, 1387, 1387, 380, 3, 5, 0]);
    assert_eq!(ns(&u, "g/sub"), [37, 37, 37, 30, 1, 1, 0]);
    // h: sizes 47 + 1170; disk h/d 40 (d1) + h/multi 130; distinct sh d1 base mamd marm
    // = 1177; only h references d1 mamd marm = 170; h/failed counted, adds nothing.
    assert_eq!(ns(&u, "h"), [1217, 170, 1177, 170, 3, 2, 1]);
    assert!(u.namespace("solo").is_none());
    let g = u.namespace("g").unwrap();
    let children: Vec<&str> = u
        .children(&s, g)
        .into_iter()
        .map(|c| match c {
            Child::Namespace(n) => &*u.namespaces()[n as usize].name,
            Child::Repository(r) => &*s.repositories[r as usize].name,
        })
        .collect();
    assert_eq!(children, ["g/a", "g/b", "g/sub"]);
}

#[test]
fn a_namespace_covers_the_repository_of_its_own_name_and_not_its_neighbours() {
    // Byte order puts `a-b` between `a` and `a/tags`; namespace a covers a and a/tags.
    let s = build(vec![
        ("a", only(vec![l("L1", 1)])),
        ("a-b", only(vec![l("L1", 1), l("L2", 2)])),
        ("a/tags", only(vec![l("L1", 1), l("L3", 4)])),
    ]);
    let u = Usage::of(&s);
    // Distinct in a and a/tags: L1 + L3; L1 is also in a-b, outside.
    assert_eq!(ns(&u, "a"), [1 + 5, 5, 5, 4, 2, 2, 0]);
    let a = u.namespace("a").unwrap();
    assert_eq!(
        u.children(&s, a),
        [Child::Repository(0), Child::Repository(2)]
    );
}

#[test]
fn deeper_trees_sum_up_through_every_level() {
    let s = build(vec![
        ("x/y/z/r", only(vec![l("P", 1), l("Q", 2)])),
        ("x/y/s", only(vec![l("P", 1)])),
        ("x/w", only(vec![l("Q", 2), l("R", 4)])),
    ]);
    let u = Usage::of(&s);
    // x/y/z: P (shared with x/y/s) and Q (shared with x/w) → exclusive 0.
    assert_eq!(ns(&u, "x/y/z")[2..4], [3, 0]);
    // x/y: P, Q distinct = 3; P only inside → 1.
    assert_eq!(ns(&u, "x/y")[2..4], [3, 1]);
    // x: everything, all inside.
    assert_eq!(ns(&u, "x")[2..4], [7, 7]);
}

#[test]
fn numbers_do_not_depend_on_input_order() {
    let forward = build(repos());
    let mut reversed = repos();
    reversed.reverse();
    for (_, tags) in reversed.iter_mut() {
        if let Some(tags) = tags {
            tags.reverse();
        }
    }
    let backward = build(reversed);
    let (a, b) = (Usage::of(&forward), Usage::of(&backward));
    assert_eq!(a.namespaces(), b.namespaces());
    assert_eq!(a.repositories, b.repositories);
    assert_eq!(a.tag_exclusive, b.tag_exclusive);
}

#[test]
fn bytes_freed_by_any_set_of_tags() {
    let s = build(repos());
    let u = Usage::of(&s);
    let ga = index(&s, "g/a");
    // Tags of g/a in name order: latest 0, v1 1, v2 2.
    assert_eq!(
        u.freed_by(&s, [(ga, 1), (ga, 2)]),
        100,
        "a2 still in latest"
    );
    assert_eq!(u.freed_by(&s, [(ga, 0), (ga, 2), (ga, 2)]), 200);
    let all = u.freed_by(&s, [(ga, 0), (ga, 1), (ga, 2)]);
    assert_eq!(all, u.repository(ga).exclusive_size);
    assert_eq!(u.freed_by(&s, []), 0);
    assert_eq!(
        u.freed_by(&s, [(99, 0), (ga, 99)]),
        0,
        "unknown tags free nothing"
    );
}

#[test]
fn orders_per_key() {
    let s = build(repos());
    let u = Usage::of(&s);
    let sorted = |key, descending| ListOptions {
        sort: Some(Sort { key, descending }),
        ..ListOptions::default()
    };
    let names = |sel: Selection| -> Vec<String> {
        sel.items
            .iter()
            .map(|&r| s.repositories[r as usize].name.to_string())
            .collect()
    };
    assert_eq!(
        names(u.select_repositories(&s, &sorted(SortKey::ExclusiveSize, true))),
        ["g/a", "h/multi", "g/b", "solo", "g/sub/c", "h/d", "h/failed"]
    );
    let top = ListOptions {
        limit: Some(2),
        ..sorted(SortKey::DeduplicatedSize, true)
    };
    assert_eq!(names(u.select_repositories(&s, &top)), ["g/a", "h/multi"]);
    let top = u.select_top(&s, &sorted(SortKey::FailedRepositoryCount, true));
    let top: Vec<&str> = top
        .items
        .iter()
        .map(|&n| &*u.namespaces()[n as usize].name)
        .collect();
    assert_eq!(top, ["h", "g"]);
    let g = u.namespace("g").unwrap();
    let children = u.select_children(&s, g, &sorted(SortKey::Size, false));
    let children: Vec<Child> = children.items.iter().map(|&e| u.child(&s, e)).collect();
    // g/sub 37, g/b 1050, g/a 3500.
    assert_eq!(
        children,
        [
            Child::Namespace(1),
            Child::Repository(1),
            Child::Repository(0)
        ]
    );
    // solo's tags by exclusive bytes, descending: old 32, x 0.
    let tags = u.select_tags(&s, index(&s, "solo"), &sorted(SortKey::ExclusiveSize, true));
    assert_eq!(tags.items, [0, 1]);
    let tags = u.select_tags(&s, index(&s, "h/failed"), &ListOptions::default());
    assert!(tags.items.is_empty());
}

#[test]
fn human_units() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
}

/// The worked example of README's "What deleting would free": keep the two in step.
#[test]
fn readme_worked_example() {
    let s = build(vec![
        (
            "g/app",
            Some(vec![
                plain("v1", vec![l("base", 1000), l("a", 100)]),
                plain("v2", vec![l("base", 1000), l("b", 200)]),
            ]),
        ),
        (
            "g/tool",
            Some(vec![plain("1", vec![l("base", 1000), l("t", 50)])]),
        ),
        (
            "h/svc",
            Some(vec![plain("1", vec![l("t", 50), l("s", 30)])]),
        ),
    ]);
    let u = Usage::of(&s);
    assert_eq!(
        [
            tag_exclusive(&s, &u, "g/app", "v1"),
            tag_exclusive(&s, &u, "g/app", "v2"),
            tag_exclusive(&s, &u, "g/tool", "1"),
            tag_exclusive(&s, &u, "h/svc", "1"),
        ],
        [100, 200, 0, 30]
    );
    assert_eq!(repo_numbers(&s, &u, "g/app"), (1300, 300));
    assert_eq!(repo_numbers(&s, &u, "g/tool"), (1050, 0));
    assert_eq!(repo_numbers(&s, &u, "h/svc"), (80, 30));
    assert_eq!(ns(&u, "g")[..4], [3350, 1350, 1350, 1300]);
    assert_eq!(ns(&u, "h")[..4], [80, 30, 80, 30]);
    assert_eq!(u.deduplicated_size(), 1380);
}

/// Found by fuzzing the snapshot file (fuzz/corpus/snapshot/huge_sizes): sizes near
/// `u64::MAX` (a file can state any `u64`, a manifest any `i64`) overflowed the sums of
/// the index (a panic in debug builds, a wrapped small number in release builds). Every
/// sum saturates at `u64::MAX`; growth saturates at the `i64` bounds.
#[test]
fn absurd_sizes_saturate_instead_of_overflowing() {
    let huge = u64::MAX - 1;
    let s = build(vec![
        ("g/a", only(vec![l("x", huge), l("y", huge)])),
        ("g/b", only(vec![l("y", huge), l("z", 5)])),
        ("s", only(vec![l("z", 5)])),
    ]);
    let u = Usage::of(&s);
    // g/a: x + y; x is its own, y is shared with g/b.
    assert_eq!(repo_numbers(&s, &u, "g/a"), (u64::MAX, huge));
    // g/b: y + z, both shared.
    assert_eq!(repo_numbers(&s, &u, "g/b"), (u64::MAX, 0));
    assert_eq!(repo_numbers(&s, &u, "s"), (5, 0));
    assert_eq!(tag_exclusive(&s, &u, "g/a", "t"), huge);
    // g holds x, y, z (z shared with s, outside g); x and y only in g.
    let g = ns(&u, "g");
    assert_eq!(
        (g[0], g[1], g[2], g[3]),
        (u64::MAX, u64::MAX, u64::MAX, u64::MAX)
    );
    assert_eq!(u.deduplicated_size(), u64::MAX);
    let both = [(index(&s, "g/a"), 0), (index(&s, "g/b"), 0)];
    assert_eq!(u.freed_by(&s, both), u64::MAX);
    assert_eq!(crate::history::growth_between(u64::MAX, 0), i64::MAX);
    assert_eq!(crate::history::growth_between(0, u64::MAX), i64::MIN);
    assert_eq!(crate::history::growth_between(5, 7), -2);
}
