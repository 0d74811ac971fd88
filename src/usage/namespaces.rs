//! The namespace tree: every proper prefix of a repository name at a `/` boundary.
//!
//! Namespace `N` covers the repository named `N` and every repository under `N/`. Each
//! repository hangs from the deepest namespace covering it (its own name when that is a
//! namespace too, else the part before its last `/`; none for a name without `/`), so the
//! tree partitions the repositories and a namespace's numbers are sums over its subtree.

use crate::snapshot::Snapshot;

/// "No namespace" in the `u32` arrays of the index.
pub const NONE: u32 = u32::MAX;

/// One namespace and its numbers (see `usage` for the definitions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    pub name: Box<str>,
    /// Index of the parent namespace, `NONE` for a top-level one.
    pub parent: u32,
    /// 0 for a top-level namespace.
    pub depth: u32,
    pub size: u64,
    pub disk_size: u64,
    pub deduplicated_size: u64,
    pub exclusive_size: u64,
    pub repository_count: u64,
    pub tag_count: u64,
    pub failed_repository_count: u64,
    /// `growth_30d`: deduplicated bytes now minus 30 days ago (see `history`).
    pub growth_30d: Option<i64>,
}

/// The namespaces sorted by name, and for each repository the deepest one covering it.
pub struct Tree {
    pub list: Vec<Namespace>,
    /// Per repository of the snapshot: index into `list`, or `NONE`.
    pub home: Vec<u32>,
}

/// Builds the tree (numbers still zero).
pub fn tree(snapshot: &Snapshot) -> Tree {
    let mut names: Vec<&str> = snapshot
        .repositories
        .iter()
        .flat_map(|r| r.name.match_indices('/').map(|(i, _)| &r.name[..i]))
        .collect();
    names.sort_unstable();
    names.dedup();
    let find = |name: &str| names.binary_search(&name).ok().map_or(NONE, |i| i as u32);
    let list = names
        .iter()
        .map(|name| Namespace {
            name: (*name).into(),
            parent: name.rsplit_once('/').map_or(NONE, |(p, _)| find(p)),
            depth: name.matches('/').count() as u32,
            ..Namespace::default()
        })
        .collect();
    let home = snapshot
        .repositories
        .iter()
        .map(|r| match find(&r.name) {
            NONE => r.name.rsplit_once('/').map_or(NONE, |(p, _)| find(p)),
            own => own,
        })
        .collect();
    Tree { list, home }
}

/// The deepest namespace covering both `a` and `b` (`NONE` if none does).
pub fn common(list: &[Namespace], mut a: u32, mut b: u32) -> u32 {
    if a == NONE || b == NONE {
        return NONE;
    }
    while list[a as usize].depth > list[b as usize].depth {
        a = list[a as usize].parent;
    }
    while list[b as usize].depth > list[a as usize].depth {
        b = list[b as usize].parent;
    }
    while a != b {
        a = list[a as usize].parent;
        b = list[b as usize].parent;
        if a == NONE || b == NONE {
            return NONE;
        }
    }
    a
}

/// Repository names compared with `/` below every other byte: in this order each
/// namespace's repositories are contiguous (`a`, `a/x`, `a-b` rather than `a`, `a-b`,
/// `a/x`), which the deduplicated sums rely on.
pub fn tree_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |c: u8| if c == b'/' { 0 } else { c };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Builder;

    #[test]
    fn prefixes_parents_and_homes() {
        let mut b = Builder::default();
        for name in ["a/b/c", "a/b", "a-x", "solo", "a/d"] {
            b.add_repository(name, Some(vec![]), None);
        }
        let s = b.finish(0.0);
        let t = tree(&s);
        let names: Vec<&str> = t.list.iter().map(|n| &*n.name).collect();
        assert_eq!(names, ["a", "a/b"]);
        assert_eq!((t.list[1].parent, t.list[1].depth), (0, 1));
        assert_eq!(t.list[0].parent, NONE);
        let homes: Vec<(&str, u32)> = s
            .repositories
            .iter()
            .zip(&t.home)
            .map(|(r, &h)| (&*r.name, h))
            .collect();
        assert_eq!(
            homes,
            [
                ("a-x", NONE),
                ("a/b", 1),
                ("a/b/c", 1),
                ("a/d", 0),
                ("solo", NONE)
            ]
        );
        assert_eq!(common(&t.list, 1, 0), 0);
        assert_eq!(common(&t.list, 1, NONE), NONE);
        assert_eq!(tree_order("a/x", "a-b"), std::cmp::Ordering::Less);
    }
}
