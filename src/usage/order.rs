//! Sorting, top-N, paging and name filters over the lists of the usage index.
//!
//! Every list (the repositories, a repository's tags, the top-level namespaces, a
//! namespace's children) is sorted once per snapshot generation for each key it accepts
//! (`Orders`, ascending, ties in name order); a request only walks one of these orders,
//! filters it by name and cuts out its page. Descending orders are the ascending ones read
//! backwards run by run, so ties stay in name order both ways and no second copy is kept.

use std::borrow::Cow;

/// What a list can be sorted by. Not every list has every key (see the `*_KEYS` tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Name,
    Size,
    DiskSize,
    DeduplicatedSize,
    ExclusiveSize,
    TagCount,
    RepositoryCount,
    FailedRepositoryCount,
    /// `growth_30d` (from the usage history); unknown sorts before every number.
    Growth30d,
}

impl SortKey {
    /// Every key.
    const ALL: [SortKey; 9] = [
        SortKey::Name,
        SortKey::Size,
        SortKey::DiskSize,
        SortKey::DeduplicatedSize,
        SortKey::ExclusiveSize,
        SortKey::TagCount,
        SortKey::RepositoryCount,
        SortKey::FailedRepositoryCount,
        SortKey::Growth30d,
    ];

    /// The name in `sort=` and in the documents' field names.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::DiskSize => "disk_size",
            SortKey::DeduplicatedSize => "deduplicated_size",
            SortKey::ExclusiveSize => "exclusive_size",
            SortKey::TagCount => "tag_count",
            SortKey::RepositoryCount => "repository_count",
            SortKey::FailedRepositoryCount => "failed_repository_count",
            SortKey::Growth30d => "growth_30d",
        }
    }

    pub fn parse(name: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A repository's tags.
pub const TAG_KEYS: &[SortKey] = &[
    SortKey::Name,
    SortKey::Size,
    SortKey::DiskSize,
    SortKey::ExclusiveSize,
];
/// `/repositories`, and a namespace's children (namespaces and repositories together).
pub const REPOSITORY_KEYS: &[SortKey] = &[
    SortKey::Name,
    SortKey::Size,
    SortKey::DiskSize,
    SortKey::DeduplicatedSize,
    SortKey::ExclusiveSize,
    SortKey::TagCount,
    SortKey::Growth30d,
];
/// `/namespaces`.
pub const NAMESPACE_KEYS: &[SortKey] = &SortKey::ALL;

/// A signed number as a sort value: the order of `i64` kept in `u64`.
pub fn signed_sort_value(n: i64) -> u64 {
    (n as u64) ^ (1 << 63)
}

/// `sort=<key>` or `sort=-<key>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// `sort`, `limit`, `page`, `per_page` and `q` of one request, checked for syntax. Whether
/// the sort key suits the list is checked against the list's keys (`check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListOptions {
    pub sort: Option<Sort>,
    pub limit: Option<u64>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
    /// Lowercased (names are compared ignoring ASCII case).
    pub q: Option<Box<str>>,
}

/// Items per page when `page` is given without `per_page`.
pub const DEFAULT_PER_PAGE: u64 = 20;

impl ListOptions {
    /// True when any of the parameters was given: the document then carries the usage
    /// fields too (without them every answer stays the original's, byte for byte).
    pub fn is_set(&self) -> bool {
        *self != ListOptions::default()
    }

    pub fn paged(&self) -> bool {
        self.page.is_some() || self.per_page.is_some()
    }

    /// `Err` with a message listing the accepted keys when the sort key does not suit
    /// a list sorted by `accepted`.
    pub fn check(&self, accepted: &[SortKey]) -> Result<(), String> {
        match self.sort {
            Some(sort) if !accepted.contains(&sort.key) => Err(format!(
                "sort={}{} does not apply here; accepted: {}",
                if sort.descending { "-" } else { "" },
                sort.key.as_str(),
                accepted_list(accepted)
            )),
            _ => Ok(()),
        }
    }

    /// The query string of these options with `page` set to `page` (for paging links),
    /// in a fixed parameter order, every value percent-encoded.
    pub fn query_for_page(&self, page: u64) -> String {
        let mut out = String::new();
        let mut param = |key: &str, value: &str| {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(&crate::percent::Encoded(value).to_string());
        };
        if let Some(sort) = self.sort {
            let value = format!(
                "{}{}",
                if sort.descending { "-" } else { "" },
                sort.key.as_str()
            );
            param("sort", &value);
        }
        if let Some(limit) = self.limit {
            param("limit", &limit.to_string());
        }
        if let Some(q) = &self.q {
            param("q", q);
        }
        param("page", &page.to_string());
        param("per_page", &self.per_page().to_string());
        out
    }

    fn per_page(&self) -> u64 {
        self.per_page.unwrap_or(DEFAULT_PER_PAGE)
    }
}

/// `name, -name, size, ...` for error messages.
pub fn accepted_list(accepted: &[SortKey]) -> String {
    let mut out = String::new();
    for k in accepted {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(k.as_str());
        out.push_str(", -");
        out.push_str(k.as_str());
    }
    out
}

/// Why a list parameter was refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// `sort` names no key at all.
    UnknownSort(Box<str>),
    /// `limit`, `page` or `per_page` is not a whole number in its range.
    Number {
        param: &'static str,
        value: Box<str>,
        minimum: u64,
    },
}

impl ParamError {
    /// The message for the client; `accepted` are the sort keys of the list asked for.
    pub fn message(&self, accepted: &[SortKey]) -> String {
        match self {
            ParamError::UnknownSort(value) => format!(
                "sort={value:?} is not a sort key; accepted: {}",
                accepted_list(accepted)
            ),
            ParamError::Number {
                param,
                value,
                minimum,
            } => format!(
                "{param}={value:?} is not accepted: {param} is a whole number, at least {minimum}"
            ),
        }
    }
}

/// `sort`'s value: a key, `-` before it for descending.
pub fn parse_sort(value: &str) -> Result<Sort, ParamError> {
    let (descending, name) = match value.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, value),
    };
    SortKey::parse(name)
        .map(|key| Sort { key, descending })
        .ok_or_else(|| ParamError::UnknownSort(value.into()))
}

/// A whole number in decimal digits, at least `minimum`. Numbers too large for `u64`
/// saturate: `limit=99999999999999999999999` means "all", a page that far is past the end.
pub fn parse_number(param: &'static str, value: &str, minimum: u64) -> Result<u64, ParamError> {
    let bad = || ParamError::Number {
        param,
        value: value.into(),
        minimum,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = value.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    if n < minimum {
        return Err(bad());
    }
    Ok(n)
}

/// One page of a list: its number, its size and the number of the last page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub per_page: u64,
    pub last: u64,
}

/// The items of a list a request asked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub items: Vec<u32>,
    /// Items matching `q`, at most `limit`: what the pages divide.
    pub count: usize,
    /// Present when `page` or `per_page` was given.
    pub page: Option<Page>,
}

/// A list sorted by each of its keys, for groups of items at once (the tags of every
/// repository, the children of every namespace): group `g` holds positions
/// `start[g]..start[g + 1]` of each order.
pub struct Orders {
    start: Box<[u32]>,
    /// Items in name order; `None` when item `i` of a group is simply its `i`-th entry
    /// (tags and repositories are stored in name order already).
    by_name: Option<Box<[u32]>>,
    /// Ascending, ties in name order; one per key of `keys` other than `Name`.
    by_key: Vec<(SortKey, Box<[u32]>)>,
}

impl Orders {
    /// Sorts every group by every key of `keys` (stable sorts from the name order, so
    /// ties keep name order). `value` gives an item's number for a key (`None`, unknown,
    /// sorts before every number).
    pub fn build(
        start: Box<[u32]>,
        by_name: Option<Box<[u32]>>,
        keys: &[SortKey],
        value: impl Fn(SortKey, u32) -> Option<u64>,
    ) -> Orders {
        let total = *start.last().unwrap_or(&0) as usize;
        let name_order: Cow<'_, [u32]> = match &by_name {
            Some(order) => Cow::Borrowed(order),
            None => Cow::Owned(
                start
                    .windows(2)
                    .flat_map(|w| 0..w[1] - w[0])
                    .collect::<Vec<u32>>(),
            ),
        };
        debug_assert_eq!(name_order.len(), total);
        let by_key = keys
            .iter()
            .filter(|&&k| k != SortKey::Name)
            .map(|&key| {
                let mut order = name_order.to_vec();
                for w in start.windows(2) {
                    order[w[0] as usize..w[1] as usize].sort_by_key(|&i| value(key, i));
                }
                (key, order.into_boxed_slice())
            })
            .collect();
        Orders {
            start,
            by_name,
            by_key,
        }
    }

    /// No groups at all (a placeholder until the real orders are built).
    pub fn empty() -> Orders {
        Orders::from_parts(vec![0].into(), None, Vec::new())
    }

    /// Orders sorted elsewhere (each of `by_key` ascending per group, ties in name order).
    pub fn from_parts(
        start: Box<[u32]>,
        by_name: Option<Box<[u32]>>,
        by_key: Vec<(SortKey, Box<[u32]>)>,
    ) -> Orders {
        Orders {
            start,
            by_name,
            by_key,
        }
    }

    /// Group `group` sorted by `key` ascending; `key` must be one of the built keys.
    fn order(&self, group: usize, key: SortKey) -> Cow<'_, [u32]> {
        let (from, to) = (self.start[group] as usize, self.start[group + 1] as usize);
        if key == SortKey::Name {
            return match &self.by_name {
                Some(order) => Cow::Borrowed(&order[from..to]),
                None => Cow::Owned((0..(to - from) as u32).collect()),
            };
        }
        match self.by_key.iter().find(|(k, _)| *k == key) {
            Some((_, order)) => Cow::Borrowed(&order[from..to]),
            None => unreachable!("sort key {key:?} checked against the list's keys"),
        }
    }

    /// The items of `group` as `options` ask: sorted, filtered by `name` containing `q`,
    /// cut to `limit`, then to the page.
    pub fn select<'n>(
        &self,
        group: usize,
        options: &ListOptions,
        value: impl Fn(SortKey, u32) -> Option<u64>,
        name: impl Fn(u32) -> &'n str,
    ) -> Selection {
        let sort = options.sort.unwrap_or(Sort {
            key: SortKey::Name,
            descending: false,
        });
        let order = self.order(group, sort.key);
        let limit = usize::try_from(options.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
        let mut matching: Vec<u32> = Vec::new();
        let mut keep = |i: u32| {
            if matching.len() < limit
                && options
                    .q
                    .as_deref()
                    .map_or(true, |q| contains_ignoring_case(name(i), q))
            {
                matching.push(i);
            }
        };
        if !sort.descending {
            order.iter().copied().for_each(&mut keep);
        } else if sort.key == SortKey::Name {
            order.iter().rev().copied().for_each(&mut keep);
        } else {
            // Runs of equal numbers backwards, each run forwards (ties in name order).
            let mut end = order.len();
            while end > 0 {
                let v = value(sort.key, order[end - 1]);
                let mut start = end - 1;
                while start > 0 && value(sort.key, order[start - 1]) == v {
                    start -= 1;
                }
                order[start..end].iter().copied().for_each(&mut keep);
                end = start;
            }
        }
        let count = matching.len();
        if !options.paged() {
            return Selection {
                items: matching,
                count,
                page: None,
            };
        }
        let per_page = options.per_page();
        let number = options.page.unwrap_or(1);
        let last = (count as u64).div_ceil(per_page).max(1);
        let from = usize::try_from(number.saturating_sub(1).saturating_mul(per_page))
            .unwrap_or(usize::MAX)
            .min(count);
        let to = usize::try_from(per_page)
            .unwrap_or(usize::MAX)
            .saturating_add(from)
            .min(count);
        matching.truncate(to);
        matching.drain(..from);
        Selection {
            items: matching,
            count,
            page: Some(Page {
                number,
                per_page,
                last,
            }),
        }
    }
}

/// `haystack` contains `lowered` (already ASCII-lowercased), ignoring ASCII case.
fn contains_ignoring_case(haystack: &str, lowered: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), lowered.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups: sizes [5, 1, 5, None] named a..d, and [2] named e.
    fn orders() -> (Orders, Vec<Option<u64>>, Vec<&'static str>) {
        let sizes = vec![Some(5), Some(1), Some(5), None, Some(2)];
        let names = vec!["a", "b", "C", "d", "e"];
        let o = Orders::build(
            vec![0, 4, 5].into(),
            Some(vec![0, 1, 2, 3, 4].into()),
            &[SortKey::Name, SortKey::Size],
            |_, i| sizes[i as usize],
        );
        (o, sizes, names)
    }

    fn pick(options: ListOptions) -> Selection {
        let (o, sizes, names) = orders();
        o.select(0, &options, |_, i| sizes[i as usize], |i| names[i as usize])
    }

    fn sorted(key: SortKey, descending: bool) -> ListOptions {
        ListOptions {
            sort: Some(Sort { key, descending }),
            ..ListOptions::default()
        }
    }

    #[test]
    fn sorts_with_ties_in_name_order_both_ways() {
        assert_eq!(pick(sorted(SortKey::Size, false)).items, [3, 1, 0, 2]);
        assert_eq!(pick(sorted(SortKey::Size, true)).items, [0, 2, 1, 3]);
        assert_eq!(pick(sorted(SortKey::Name, true)).items, [3, 2, 1, 0]);
        assert_eq!(pick(ListOptions::default()).items, [0, 1, 2, 3]);
    }

    #[test]
    fn filter_limit_and_pages() {
        let q = ListOptions {
            q: Some("c".into()),
            ..ListOptions::default()
        };
        assert_eq!(pick(q).items, [2]);
        let top = ListOptions {
            limit: Some(2),
            ..sorted(SortKey::Size, true)
        };
        assert_eq!(pick(top).items, [0, 2]);
        let page = |page, per_page| {
            pick(ListOptions {
                page,
                per_page,
                ..ListOptions::default()
            })
        };
        let p = page(Some(2), Some(3));
        assert_eq!((p.items, p.count), (vec![3], 4));
        assert_eq!(
            p.page,
            Some(Page {
                number: 2,
                per_page: 3,
                last: 2
            })
        );
        assert!(page(Some(3), Some(3)).items.is_empty(), "past the end");
        assert!(page(Some(u64::MAX), Some(u64::MAX)).items.is_empty());
        assert_eq!(page(Some(1), Some(u64::MAX)).items, [0, 1, 2, 3]);
        assert_eq!(page(None, Some(3)).items, [0, 1, 2]);
        assert_eq!(page(Some(1), None).page.unwrap().per_page, DEFAULT_PER_PAGE);
    }

    #[test]
    fn an_empty_list_has_one_empty_page() {
        let (o, sizes, names) = orders();
        let options = ListOptions {
            q: Some("zzz".into()),
            page: Some(1),
            ..ListOptions::default()
        };
        let s = o.select(0, &options, |_, i| sizes[i as usize], |i| names[i as usize]);
        assert_eq!((s.count, s.page.unwrap().last), (0, 1));
        let s = o.select(
            1,
            &ListOptions::default(),
            |_, i| sizes[i as usize],
            |i| names[i as usize],
        );
        assert_eq!(s.items, [4]);
    }

    #[test]
    fn parameters() {
        assert_eq!(
            parse_sort("-exclusive_size"),
            Ok(Sort {
                key: SortKey::ExclusiveSize,
                descending: true
            })
        );
        assert!(parse_sort("bogus").is_err());
        assert!(parse_sort("--size").is_err());
        assert_eq!(parse_number("limit", "0", 0), Ok(0));
        assert_eq!(
            parse_number("limit", "99999999999999999999999", 0),
            Ok(u64::MAX)
        );
        for bad in ["", "-1", "+1", "1.5", " 1", "x"] {
            assert!(parse_number("page", bad, 1).is_err(), "{bad:?}");
        }
        assert!(parse_number("per_page", "0", 1).is_err());
        let e = ListOptions {
            sort: Some(Sort {
                key: SortKey::RepositoryCount,
                descending: false,
            }),
            ..ListOptions::default()
        }
        .check(TAG_KEYS)
        .unwrap_err();
        assert!(e.contains("name, -name, size, -size"), "{e}");
        let q = ListOptions {
            sort: Some(Sort {
                key: SortKey::Size,
                descending: true,
            }),
            q: Some("a b&".into()),
            per_page: Some(5),
            ..ListOptions::default()
        };
        assert_eq!(
            q.query_for_page(3),
            "sort=-size&q=a%20b%26&page=3&per_page=5"
        );
    }

    #[test]
    fn case_is_ignored_in_names() {
        assert!(contains_ignoring_case("Group/App", "p/a"));
        assert!(!contains_ignoring_case("ab", "abc"));
        assert!(contains_ignoring_case("x", ""));
    }
}
