//! `--report [N]`: the top N namespaces and repositories by exclusive bytes as aligned
//! text tables, for an admin at a shell. Pure: the caller prints the string.

use super::order::{ListOptions, Sort, SortKey};
use super::{human_bytes, Usage};
use crate::snapshot::Snapshot;

/// How many rows each table has when `--report` is given no number.
pub const DEFAULT_ROWS: usize = 20;

/// The report of `snapshot`: registry totals, then the `n` namespaces (at any depth) and
/// the `n` repositories that would free the most bytes if deleted.
pub fn report(snapshot: &Snapshot, usage: &Usage, n: usize) -> String {
    let totals = &snapshot.totals;
    let mut out = format!(
        "registry: {} in {} repositories, {} tags ({} if every tag's layers counted again)\n",
        human_bytes(usage.deduplicated_size()),
        totals.repository_count,
        totals.tag_count,
        human_bytes(totals.size),
    );

    let mut namespaces: Vec<&super::Namespace> = usage.namespaces().iter().collect();
    // A stable sort from name order: ties stay in name order, as in the API.
    namespaces.sort_by_key(|ns| std::cmp::Reverse(ns.exclusive_size));
    let rows: Vec<[String; 7]> = namespaces
        .iter()
        .take(n)
        .map(|ns| {
            [
                human_bytes(ns.exclusive_size),
                human_bytes(ns.deduplicated_size),
                human_bytes(ns.disk_size),
                human_bytes(ns.size),
                ns.repository_count.to_string(),
                ns.tag_count.to_string(),
                ns.name.to_string(),
            ]
        })
        .collect();
    out.push_str(&format!(
        "\nnamespaces by exclusive size (top {} of {})\n",
        rows.len(),
        namespaces.len()
    ));
    out.push_str(&table(
        [
            "EXCLUSIVE",
            "DEDUPLICATED",
            "DISK",
            "SIZE",
            "REPOSITORIES",
            "TAGS",
            "NAMESPACE",
        ],
        &rows,
    ));

    let top = ListOptions {
        sort: Some(Sort {
            key: SortKey::ExclusiveSize,
            descending: true,
        }),
        limit: Some(n as u64),
        ..ListOptions::default()
    };
    let unknown = || "unknown".to_string();
    let rows: Vec<[String; 7]> = usage
        .select_repositories(snapshot, &top)
        .items
        .iter()
        .map(|&r| {
            let repo = &snapshot.repositories[r as usize];
            let u = usage.repository(r as usize);
            let known = |v: u64| repo.tags.as_ref().map_or_else(unknown, |_| human_bytes(v));
            [
                known(u.exclusive_size),
                known(u.deduplicated_size),
                repo.disk_size.map_or_else(unknown, human_bytes),
                repo.size.map_or_else(unknown, human_bytes),
                repo.tags
                    .as_ref()
                    .map_or_else(unknown, |t| t.len().to_string()),
                if repo.error.is_some() { "failed" } else { "ok" }.to_string(),
                repo.name.to_string(),
            ]
        })
        .collect();
    out.push_str(&format!(
        "\nrepositories by exclusive size (top {} of {})\n",
        rows.len(),
        snapshot.repositories.len()
    ));
    out.push_str(&table(
        [
            "EXCLUSIVE",
            "DEDUPLICATED",
            "DISK",
            "SIZE",
            "TAGS",
            "SCAN",
            "REPOSITORY",
        ],
        &rows,
    ));
    out
}

/// Columns separated by two spaces, numbers right-aligned, the last (a name) left-aligned
/// and not padded.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; N]| {
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
                out.push_str("  ");
            }
        }
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(std::array::from_fn(|i| row[i].as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Builder, LayerRef, ScannedTag};

    #[test]
    fn top_namespaces_and_repositories_in_aligned_columns() {
        let tag = |layers: &[(&str, u64)]| {
            Some(vec![ScannedTag {
                name: "t".into(),
                digest: None,
                layers: layers
                    .iter()
                    .map(|&(d, size)| LayerRef {
                        digest: d.into(),
                        size,
                    })
                    .collect(),
            }])
        };
        let mut b = Builder::default();
        // g/a holds 2 MiB alone, g/b 1 KiB alone; both share 3 KiB with h/c, which has
        // the fewest layers and so owns it for disk_size.
        b.add_repository("g/a", tag(&[("big", 2 << 20), ("shared", 3072)]), None);
        b.add_repository("g/b", tag(&[("small", 1024), ("shared", 3072)]), None);
        b.add_repository("h/c", tag(&[("shared", 3072)]), None);
        b.add_repository("h/x", None, Some("HTTP 500".into()));
        let s = b.finish(0.0);
        let u = Usage::of(&s);
        let text = report(&s, &u, 2);
        let expected = "\
registry: 2.0 MiB in 4 repositories, 3 tags (2.0 MiB if every tag's layers counted again)

namespaces by exclusive size (top 2 of 2)
EXCLUSIVE  DEDUPLICATED     DISK     SIZE  REPOSITORIES  TAGS  NAMESPACE
  2.0 MiB       2.0 MiB  2.0 MiB  2.0 MiB             2     2  g
      0 B       3.0 KiB  3.0 KiB  3.0 KiB             2     1  h

repositories by exclusive size (top 2 of 4)
EXCLUSIVE  DEDUPLICATED     DISK     SIZE  TAGS  SCAN  REPOSITORY
  2.0 MiB       2.0 MiB  2.0 MiB  2.0 MiB     1    ok  g/a
  1.0 KiB       4.0 KiB  1.0 KiB  4.0 KiB     1    ok  g/b
";
        assert_eq!(text, expected, "\n{text}");
        let all = report(&s, &u, 10);
        assert!(
            all.contains("unknown       unknown  unknown  unknown  unknown  failed  h/x"),
            "{all}"
        );
    }
}
