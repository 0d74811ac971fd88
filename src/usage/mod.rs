//! The usage index: every number the API shows beyond the original's `size` and
//! `disk_size`, derived from a finished `Snapshot` once per generation by pure code (no
//! I/O) in time linear in the layer references, and then only read.
//!
//! Definitions (layers only, compressed sizes as the manifests state them):
//! - `deduplicated_size` of a set of tags: the bytes of the distinct layer blobs they
//!   reference. A repository's is over its tags, a namespace's over the tags of every
//!   repository it covers, the registry's over all tags (it equals the total `disk_size`).
//! - `exclusive_size`: the bytes of the distinct blobs it references that nothing outside
//!   it references, what deleting it and running the registry's garbage collection would
//!   free. A tag: blobs no other tag references (two tags on one manifest both have 0);
//!   a repository: blobs no other repository references; a namespace: blobs referenced
//!   only by repositories it covers.
//! - A namespace's `size`, `disk_size` and `tag_count` are sums over the repositories it
//!   covers; a repository whose tags are unknown adds nothing but its count, and is
//!   counted in `failed_repository_count`.
//!
//! Besides the numbers the index keeps, per blob, how many tags and how many
//! repositories reference it: enough to tell the bytes any set of tags holds alone
//! ([`Usage::freed_by`]) without another pass over the snapshot.

pub mod namespaces;
pub mod order;
pub mod report;

use crate::snapshot::{saturating_sum, Snapshot};

pub use namespaces::Namespace;
use namespaces::NONE;
use order::{ListOptions, Orders, Selection, SortKey};

/// A repository's numbers beyond `size` and `disk_size` (both 0 when its tags are unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepositoryUsage {
    pub deduplicated_size: u64,
    pub exclusive_size: u64,
}

/// A direct child of a namespace in its `_embedded` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    Namespace(u32),
    Repository(u32),
}

/// The index of one snapshot generation. Indices of repositories and tags are those of
/// the snapshot it was built from, which must be the one passed to every method.
pub struct Usage {
    generation: u64,
    deduplicated_size: u64,
    repositories: Box<[RepositoryUsage]>,
    /// Where each repository's tags start in `tag_exclusive`; one more entry at the end.
    tag_start: Box<[u32]>,
    tag_exclusive: Box<[u64]>,
    /// Per blob: how many tags, and how many repositories, reference it.
    blob_tags: Box<[u32]>,
    blob_repositories: Box<[u32]>,
    /// Per repository: `growth_30d`.
    repository_growth: Box<[Option<i64>]>,
    namespaces: Box<[Namespace]>,
    /// The top-level namespaces in name order.
    top: Box<[u32]>,
    /// Per namespace: its child namespaces and its repositories, as entries (repository
    /// index, or repository count + namespace index), in name order.
    children: Orders,
    top_orders: Orders,
    repository_orders: Orders,
    tag_orders: Orders,
}

impl Usage {
    /// Builds the index of `snapshot`, without growth (no history).
    pub fn of(snapshot: &Snapshot) -> Usage {
        Usage::with_growth(snapshot, &|_, _| None)
    }

    /// Builds the index of `snapshot`; `base(kind, name)` is the deduplicated size of a
    /// namespace or repository 30 days ago, if the history knows it (`growth_30d` is the
    /// difference, `None` without it).
    pub fn with_growth(
        snapshot: &Snapshot,
        base: &dyn Fn(crate::history::Kind, &str) -> Option<u64>,
    ) -> Usage {
        let repos = &snapshot.repositories;
        // The sizes alone, densely: the walks below read them in layer order, which jumps
        // around the blob table (a quarter of its bytes, so far fewer cache misses).
        let sizes: Vec<u64> = snapshot.blobs.iter().map(|b| b.size).collect();
        let namespaces::Tree { mut list, home } = namespaces::tree(snapshot);

        let mut tag_start = Vec::with_capacity(repos.len() + 1);
        let mut total_tags = 0u32;
        for r in repos {
            tag_start.push(total_tags);
            total_tags += r.tags.as_ref().map_or(0, |t| t.len() as u32);
        }
        tag_start.push(total_tags);

        let mut blob_tags = vec![0u32; sizes.len()];
        // A repository's `layers` holds each of its tags' layer lists once.
        for &l in repos.iter().flat_map(|r| r.layers.iter()) {
            blob_tags[l as usize] = blob_tags[l as usize].saturating_add(1);
        }
        let tag_exclusive: Box<[u64]> = repos
            .iter()
            .flat_map(|r| r.tags.iter().flatten().map(move |t| r.layers_of(t)))
            .map(|layers| {
                let exclusive = layers
                    .iter()
                    .filter(|&&l| blob_tags[l as usize] == 1)
                    .map(|&l| sizes[l as usize]);
                saturating_sum(exclusive)
            })
            .collect();

        // Walk the repositories with each namespace's contiguous (tree order). Per blob:
        // the repositories referencing it, the namespace of the one seen last, and the
        // deepest namespace covering all of them so far. A namespace's deduplicated
        // bytes are then the sum over its subtree of +size where a blob is met and
        // -size at the common namespace of two consecutive sightings of it (both in
        // the subtree exactly when that common namespace is).
        let mut walk: Vec<u32> = (0..repos.len() as u32).collect();
        walk.sort_by(|&a, &b| {
            namespaces::tree_order(&repos[a as usize].name, &repos[b as usize].name)
        });
        let mut seen = vec![0u32; sizes.len()];
        let mut last_home = vec![NONE; sizes.len()];
        let mut covering = vec![NONE; sizes.len()];
        let mut blob_repositories = vec![0u32; sizes.len()];
        let mut repositories = vec![RepositoryUsage::default(); repos.len()];
        // u128, wrapping: the subtrahends may come before their addends, and the exact
        // sums (which cannot reach 2^128) saturate to u64 once the walk is done.
        let mut dedup = vec![0u128; list.len()];
        for (step, &r) in walk.iter().enumerate() {
            let stamp = step as u32 + 1;
            let h = home[r as usize];
            for &l in repos[r as usize].layers.iter() {
                let l = l as usize;
                if seen[l] == stamp {
                    continue;
                }
                seen[l] = stamp;
                let size = sizes[l];
                let repo = &mut repositories[r as usize];
                repo.deduplicated_size = repo.deduplicated_size.saturating_add(size);
                if h != NONE {
                    dedup[h as usize] = dedup[h as usize].wrapping_add(u128::from(size));
                }
                if blob_repositories[l] == 0 {
                    covering[l] = h;
                } else {
                    let both = namespaces::common(&list, last_home[l], h);
                    if both != NONE {
                        dedup[both as usize] = dedup[both as usize].wrapping_sub(u128::from(size));
                    }
                    covering[l] = namespaces::common(&list, covering[l], h);
                }
                blob_repositories[l] = blob_repositories[l].saturating_add(1);
                last_home[l] = h;
            }
        }
        drop(last_home);
        // A second walk for exclusive bytes, with stamps that cannot match the first's.
        let offset = repos.len() as u32 + 1;
        for (r, repo) in repos.iter().enumerate() {
            let stamp = offset + r as u32;
            for &l in repo.layers.iter() {
                let l = l as usize;
                if seen[l] != stamp {
                    seen[l] = stamp;
                    if blob_repositories[l] == 1 {
                        let repo = &mut repositories[r];
                        repo.exclusive_size = repo.exclusive_size.saturating_add(sizes[l]);
                    }
                }
            }
        }
        drop(seen);
        let mut exclusive = vec![0u64; list.len()];
        for (l, &c) in covering.iter().enumerate() {
            if c != NONE {
                exclusive[c as usize] = exclusive[c as usize].saturating_add(sizes[l]);
            }
        }
        drop(covering);
        let deduplicated_size = saturating_sum(
            sizes
                .iter()
                .zip(blob_tags.iter())
                .filter(|(_, &n)| n > 0)
                .map(|(&size, _)| size),
        );
        drop(sizes);

        // Each repository's plain numbers go to its home namespace, then every
        // namespace's own numbers are added to its parent, deepest first.
        for (r, repo) in repos.iter().enumerate() {
            let h = home[r];
            if h == NONE {
                continue;
            }
            let n = &mut list[h as usize];
            n.repository_count += 1;
            match &repo.tags {
                Some(tags) => {
                    n.size = n.size.saturating_add(repo.size.unwrap_or(0));
                    n.disk_size = n.disk_size.saturating_add(repo.disk_size.unwrap_or(0));
                    n.tag_count += tags.len() as u64;
                }
                None => n.failed_repository_count += 1,
            }
        }
        for (n, ns) in list.iter_mut().enumerate() {
            ns.exclusive_size = exclusive[n];
        }
        let growth =
            |now: u64, then: Option<u64>| then.map(|t| crate::history::growth_between(now, t));
        let mut deepest_first: Vec<u32> = (0..list.len() as u32).collect();
        deepest_first.sort_by_key(|&n| std::cmp::Reverse(list[n as usize].depth));
        for &n in &deepest_first {
            let c = &list[n as usize];
            if c.parent == NONE {
                continue;
            }
            let (parent, numbers) = (
                c.parent as usize,
                [
                    c.size,
                    c.disk_size,
                    c.exclusive_size,
                    c.repository_count,
                    c.tag_count,
                    c.failed_repository_count,
                ],
            );
            let p = &mut list[parent];
            p.size = p.size.saturating_add(numbers[0]);
            p.disk_size = p.disk_size.saturating_add(numbers[1]);
            p.exclusive_size = p.exclusive_size.saturating_add(numbers[2]);
            p.repository_count += numbers[3];
            p.tag_count += numbers[4];
            p.failed_repository_count += numbers[5];
            dedup[parent] = dedup[parent].wrapping_add(dedup[n as usize]);
        }
        drop(deepest_first);
        for (ns, d) in list.iter_mut().zip(dedup) {
            ns.deduplicated_size = u64::try_from(d).unwrap_or(u64::MAX);
        }
        for ns in list.iter_mut() {
            let then = base(crate::history::Kind::Namespace, &ns.name);
            ns.growth_30d = growth(ns.deduplicated_size, then);
        }
        let repository_growth = repos
            .iter()
            .zip(&repositories)
            .map(|(repo, u)| {
                repo.tags.as_ref()?;
                growth(
                    u.deduplicated_size,
                    base(crate::history::Kind::Repository, &repo.name),
                )
            })
            .collect();

        let mut usage = Usage {
            generation: crate::snapshot::next_generation(),
            deduplicated_size,
            repositories: repositories.into(),
            tag_start: tag_start.into(),
            tag_exclusive,
            blob_tags: blob_tags.into(),
            blob_repositories: blob_repositories.into(),
            repository_growth,
            top: Box::default(),
            namespaces: list.into(),
            // Filled in next: the orders read the numbers above.
            children: Orders::empty(),
            top_orders: Orders::empty(),
            repository_orders: Orders::empty(),
            tag_orders: Orders::empty(),
        };
        usage.build_orders(snapshot, &home);
        usage
    }

    fn build_orders(&mut self, snapshot: &Snapshot, home: &[u32]) {
        let repos = snapshot.repositories.len() as u32;
        self.top = (0..self.namespaces.len() as u32)
            .filter(|&n| self.namespaces[n as usize].parent == NONE)
            .collect();
        // Children of every namespace, grouped by parent, then by name within a group.
        let mut counts = vec![0u32; self.namespaces.len() + 1];
        let parent_of = |entry: u32| -> u32 {
            if entry < repos {
                home[entry as usize]
            } else {
                self.namespaces[(entry - repos) as usize].parent
            }
        };
        let entries = (0..repos).chain((0..self.namespaces.len() as u32).map(|n| repos + n));
        for e in entries.clone() {
            let p = parent_of(e);
            if p != NONE {
                counts[p as usize + 1] += 1;
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let start = counts.clone();
        let mut children = vec![0u32; *counts.last().unwrap_or(&0) as usize];
        for e in entries {
            let p = parent_of(e);
            if p != NONE {
                children[counts[p as usize] as usize] = e;
                counts[p as usize] += 1;
            }
        }
        drop(counts);
        for w in start.windows(2) {
            children[w[0] as usize..w[1] as usize].sort_unstable_by(|&a, &b| {
                self.entry_name(snapshot, a)
                    .cmp(self.entry_name(snapshot, b))
            });
        }
        let children = Orders::build(
            start.into(),
            Some(children.into()),
            order::REPOSITORY_KEYS,
            |k, e| self.child_value(snapshot, self.entry(snapshot, e), k),
        );
        let top_orders = Orders::build(
            vec![0, self.top.len() as u32].into(),
            Some(self.top.clone()),
            order::NAMESPACE_KEYS,
            |k, n| self.child_value(snapshot, Child::Namespace(n), k),
        );
        let repository_orders = Orders::build(
            vec![0, repos].into(),
            None,
            order::REPOSITORY_KEYS,
            |k, r| self.child_value(snapshot, Child::Repository(r), k),
        );
        let tag_orders = self.tag_orders_for(snapshot);
        self.children = children;
        self.top_orders = top_orders;
        self.repository_orders = repository_orders;
        self.tag_orders = tag_orders;
    }

    /// Tags are sorted group by group, so the key function needs to know the group.
    fn tag_orders_for(&self, snapshot: &Snapshot) -> Orders {
        let mut orders = Vec::new();
        for &key in order::TAG_KEYS {
            if key == SortKey::Name {
                continue;
            }
            let mut all = Vec::with_capacity(self.tag_exclusive.len());
            for (r, repo) in snapshot.repositories.iter().enumerate() {
                let tags = repo.tags.as_deref().unwrap_or(&[]);
                let mut local: Vec<u32> = (0..tags.len() as u32).collect();
                local.sort_by_key(|&t| self.tag_value(snapshot, r, t as usize, key));
                all.extend(local);
            }
            orders.push((key, all.into_boxed_slice()));
        }
        Orders::from_parts(self.tag_start.clone(), None, orders)
    }

    fn tag_value(&self, snapshot: &Snapshot, r: usize, t: usize, key: SortKey) -> Option<u64> {
        let tag = &snapshot.repositories[r].tags.as_ref()?[t];
        match key {
            SortKey::Size => Some(tag.size),
            SortKey::DiskSize => Some(tag.disk_size),
            SortKey::ExclusiveSize => Some(self.tag_exclusive_size(r, t)),
            _ => None,
        }
    }

    fn entry(&self, snapshot: &Snapshot, e: u32) -> Child {
        let repos = snapshot.repositories.len() as u32;
        if e < repos {
            Child::Repository(e)
        } else {
            Child::Namespace(e - repos)
        }
    }

    fn entry_name<'s>(&'s self, snapshot: &'s Snapshot, e: u32) -> &'s str {
        match self.entry(snapshot, e) {
            Child::Repository(r) => &snapshot.repositories[r as usize].name,
            Child::Namespace(n) => &self.namespaces[n as usize].name,
        }
    }

    /// The number `key` of a namespace or a repository (`None`: unknown, or no such number).
    fn child_value(&self, snapshot: &Snapshot, child: Child, key: SortKey) -> Option<u64> {
        match child {
            Child::Namespace(n) => {
                let n = &self.namespaces[n as usize];
                Some(match key {
                    SortKey::Name => return None,
                    SortKey::Size => n.size,
                    SortKey::DiskSize => n.disk_size,
                    SortKey::DeduplicatedSize => n.deduplicated_size,
                    SortKey::ExclusiveSize => n.exclusive_size,
                    SortKey::TagCount => n.tag_count,
                    SortKey::RepositoryCount => n.repository_count,
                    SortKey::FailedRepositoryCount => n.failed_repository_count,
                    SortKey::Growth30d => order::signed_sort_value(n.growth_30d?),
                })
            }
            Child::Repository(r) => {
                let repo = &snapshot.repositories[r as usize];
                let tags = repo.tags.as_ref()?;
                let u = &self.repositories[r as usize];
                match key {
                    SortKey::Size => repo.size,
                    SortKey::DiskSize => repo.disk_size,
                    SortKey::DeduplicatedSize => Some(u.deduplicated_size),
                    SortKey::ExclusiveSize => Some(u.exclusive_size),
                    SortKey::TagCount => Some(tags.len() as u64),
                    SortKey::Growth30d => {
                        self.repository_growth[r as usize].map(order::signed_sort_value)
                    }
                    _ => None,
                }
            }
        }
    }

    /// Distinct per index built, also for two indices of one snapshot (another history):
    /// what is rendered from an index is kept under this number.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The registry's deduplicated bytes (equal to its total `disk_size`).
    pub fn deduplicated_size(&self) -> u64 {
        self.deduplicated_size
    }

    /// Numbers of repository `r` (an index into `snapshot.repositories`).
    pub fn repository(&self, r: usize) -> RepositoryUsage {
        self.repositories[r]
    }

    /// `growth_30d` of repository `r`.
    pub fn repository_growth(&self, r: usize) -> Option<i64> {
        self.repository_growth[r]
    }

    /// `exclusive_size` of tag `t` of repository `r`.
    pub fn tag_exclusive_size(&self, r: usize, t: usize) -> u64 {
        self.tag_exclusive[self.tag_start[r] as usize + t]
    }

    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    /// The namespace called `name`.
    pub fn namespace(&self, name: &str) -> Option<u32> {
        self.namespaces
            .binary_search_by(|n| n.name.as_ref().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    /// All direct children of namespace `n` (child namespaces and the repositories whose
    /// deepest covering namespace it is), in name order.
    pub fn children(&self, snapshot: &Snapshot, n: u32) -> Vec<Child> {
        self.select_children(snapshot, n, &ListOptions::default())
            .items
            .into_iter()
            .map(|e| self.entry(snapshot, e))
            .collect()
    }

    /// The children of namespace `n` that `options` ask for; items are entries for
    /// [`Usage::child`].
    pub fn select_children(&self, snapshot: &Snapshot, n: u32, options: &ListOptions) -> Selection {
        self.children.select(
            n as usize,
            options,
            |k, e| self.child_value(snapshot, self.entry(snapshot, e), k),
            |e| self.entry_name(snapshot, e),
        )
    }

    /// What an item of [`Usage::select_children`] is.
    pub fn child(&self, snapshot: &Snapshot, entry: u32) -> Child {
        self.entry(snapshot, entry)
    }

    /// The top-level namespaces `options` ask for (namespace indices).
    pub fn select_top(&self, snapshot: &Snapshot, options: &ListOptions) -> Selection {
        self.top_orders.select(
            0,
            options,
            |k, n| self.child_value(snapshot, Child::Namespace(n), k),
            |n| &self.namespaces[n as usize].name,
        )
    }

    /// The repositories `options` ask for (repository indices).
    pub fn select_repositories(&self, snapshot: &Snapshot, options: &ListOptions) -> Selection {
        self.repository_orders.select(
            0,
            options,
            |k, r| self.child_value(snapshot, Child::Repository(r), k),
            |r| &snapshot.repositories[r as usize].name,
        )
    }

    /// The tags of repository `r` that `options` ask for (indices into its tags).
    pub fn select_tags(&self, snapshot: &Snapshot, r: usize, options: &ListOptions) -> Selection {
        let tags = snapshot.repositories[r].tags.as_deref().unwrap_or(&[]);
        self.tag_orders.select(
            r,
            options,
            |k, t| self.tag_value(snapshot, r, t as usize, k),
            |t| &tags[t as usize].name,
        )
    }

    /// The bytes that deleting every tag in `tags` (pairs of repository and tag index)
    /// and collecting garbage would free: the blobs no tag outside the set references.
    pub fn freed_by(
        &self,
        snapshot: &Snapshot,
        tags: impl IntoIterator<Item = (usize, usize)>,
    ) -> u64 {
        let mut distinct: Vec<(usize, usize)> = tags.into_iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.freed_by_each(snapshot, distinct).bytes
    }

    /// [`Usage::freed_by`] for `tags` that are distinct, and per repository the bytes
    /// of the set's blobs that only its own tags in the set reference. Per blob one
    /// count in a zeroed array (the pages a small set never touches cost nothing), no
    /// hashing: linear in the set's layer references, whatever the registry's size.
    pub fn freed_by_each(
        &self,
        snapshot: &Snapshot,
        tags: impl IntoIterator<Item = (usize, usize)>,
    ) -> Freed {
        /// In `owner`: the set references the blob from more than one repository.
        const MANY: u32 = u32::MAX;
        let blobs = snapshot.blobs.len();
        let mut in_set = vec![0u32; blobs];
        // The repository (+1) of the set's references to each blob.
        let mut owner = vec![0u32; blobs];
        let mut touched: Vec<u32> = Vec::new();
        for (r, t) in tags {
            let Some((repo, tag)) = snapshot
                .repositories
                .get(r)
                .and_then(|r| Some((r, r.tags.as_ref()?.get(t)?)))
            else {
                continue;
            };
            let mark = r as u32 + 1;
            for &l in repo.layers_of(tag) {
                let l = l as usize;
                if in_set[l] == 0 {
                    touched.push(l as u32);
                    owner[l] = mark;
                } else if owner[l] != mark {
                    owner[l] = MANY;
                }
                in_set[l] += 1;
            }
        }
        let mut freed = Freed {
            bytes: 0,
            by_repository: vec![0; snapshot.repositories.len()],
        };
        for l in touched {
            let l = l as usize;
            if in_set[l] == self.blob_tags[l] {
                let size = snapshot.blobs[l].size;
                freed.bytes = freed.bytes.saturating_add(size);
                if owner[l] != MANY {
                    let own = &mut freed.by_repository[owner[l] as usize - 1];
                    *own = own.saturating_add(size);
                }
            }
        }
        freed
    }

    /// How many repositories reference blob `b` (for views that explain a number).
    pub fn blob_repository_count(&self, b: usize) -> u32 {
        self.blob_repositories[b]
    }
}

/// What deleting a set of tags frees ([`Usage::freed_by_each`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freed {
    pub bytes: u64,
    /// Per repository of the snapshot: the bytes of blobs that only its tags in the set
    /// reference (a blob freed by tags of two repositories is in neither's number).
    pub by_repository: Vec<u64>,
}

/// `1536` → `1.5 KiB`: bytes in binary units with one decimal, for people reading HTML
/// pages and `--report`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
