use super::*;
use crate::snapshot::Builder;
use crate::usage::Usage;

const DAY: i64 = 86_400;

fn policy(pairs: &[(&str, &str)]) -> Policy {
    Policy::from_params(pairs.iter().copied()).unwrap()
}

fn tag(name: &str, created: Option<i64>) -> Tag {
    Tag {
        name: name.into(),
        digest: None,
        layers: Default::default(),
        size: 0,
        disk_size: 0,
        created,
    }
}

/// (deleted names newest first, kept (name, reason) in name order)
fn verdict(tags: &[Tag], p: &Policy, now: i64) -> (Vec<&'static str>, Vec<(String, &'static str)>) {
    let (deleted, kept) = judge(tags, p, now);
    let name =
        |i: u32| -> &'static str { Box::leak(tags[i as usize].name.to_string().into_boxed_str()) };
    (
        deleted.into_iter().map(name).collect(),
        kept.into_iter()
            .map(|(i, r)| (name(i).to_string(), r.as_str()))
            .collect(),
    )
}

#[test]
fn gitlab_rules_table() {
    let now = 100 * DAY;
    // Sorted by name, as in a snapshot.
    let tags = [
        tag("keep-1", Some(DAY)),
        tag("latest", Some(DAY)),
        tag("nodate", None),
        tag("v1", Some(10 * DAY)),
        tag("v2", Some(20 * DAY)),
        tag("v3", Some(95 * DAY)),
        tag("xv1", Some(DAY)),
    ];
    type Row = (
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    );
    let table: &[Row] = &[
        // No name_regex: nothing matches (the delete regex must be given).
        (
            &[("keep_n", "0")],
            &[],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v1", "not_matched"),
                ("v2", "not_matched"),
                ("v3", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
        // Everything but latest, oldest last; no date sorts as now.
        (
            &[("name_regex", ".*")],
            &["nodate", "v3", "v2", "v1", "keep-1", "xv1"],
            &[("latest", "latest")],
        ),
        // The keep regex wins over the delete regex.
        (
            &[("name_regex", ".*"), ("name_regex_keep", "keep-.*")],
            &["nodate", "v3", "v2", "v1", "xv1"],
            &[("keep-1", "keep_regex"), ("latest", "latest")],
        ),
        // The whole name must match: `v.` does not match `xv1`, `v` matches nothing.
        (
            &[("name_regex", "v.")],
            &["v3", "v2", "v1"],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
        (
            &[("name_regex", "v")],
            &[],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v1", "not_matched"),
                ("v2", "not_matched"),
                ("v3", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
        // keep_n counts among the candidates only (latest and keep-1 are not counted);
        // the undated tag is the newest.
        (
            &[
                ("name_regex", ".*"),
                ("name_regex_keep", "keep-.*"),
                ("keep_n", "2"),
            ],
            &["v2", "v1", "xv1"],
            &[
                ("keep-1", "keep_regex"),
                ("latest", "latest"),
                ("nodate", "keep_n"),
                ("v3", "keep_n"),
            ],
        ),
        // keep_n larger than the candidates keeps them all.
        (
            &[("name_regex", "v[0-9]"), ("keep_n", "50")],
            &[],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v1", "keep_n"),
                ("v2", "keep_n"),
                ("v3", "keep_n"),
                ("xv1", "not_matched"),
            ],
        ),
        // older_than: an undated tag is never old enough; v3 is too new.
        (
            &[("name_regex", ".*"), ("older_than", "30d")],
            &["v2", "v1", "keep-1", "xv1"],
            &[
                ("latest", "latest"),
                ("nodate", "no_date"),
                ("v3", "too_new"),
            ],
        ),
        // Both: keep_n first, then older_than of the rest.
        (
            &[("name_regex", ".*"), ("keep_n", "1"), ("older_than", "85d")],
            &["v1", "keep-1", "xv1"],
            &[
                ("latest", "latest"),
                ("nodate", "keep_n"),
                ("v2", "too_new"),
                ("v3", "too_new"),
            ],
        ),
        // Boundaries: v2 is exactly 80 days old, so `older_than=80d` keeps it (strictly
        // older is deleted) and one second less deletes it.
        (
            &[("name_regex", "v2"), ("older_than", "80d")],
            &[],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v1", "not_matched"),
                ("v2", "too_new"),
                ("v3", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
        (
            &[("name_regex", "v2"), ("older_than", "6911999s")],
            &["v2"],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v1", "not_matched"),
                ("v3", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
        // name_regex_delete is GitLab's current name and wins over name_regex.
        (
            &[("name_regex", ".*"), ("name_regex_delete", "v1")],
            &["v1"],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v2", "not_matched"),
                ("v3", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
        // `latest` is kept even when a regex names it.
        (
            &[("name_regex", "latest|v1")],
            &["v1"],
            &[
                ("keep-1", "not_matched"),
                ("latest", "latest"),
                ("nodate", "not_matched"),
                ("v2", "not_matched"),
                ("v3", "not_matched"),
                ("xv1", "not_matched"),
            ],
        ),
    ];
    for (params, deleted, kept) in table {
        let p = policy(params);
        let (d, k) = verdict(&tags, &p, now);
        assert_eq!(d, *deleted, "deleted with {params:?}");
        let k: Vec<(&str, &str)> = k.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        assert_eq!(k, *kept, "kept with {params:?}");
    }
}

#[test]
fn fake_dates_are_dates() {
    // ko's 1970 and Jib's epoch+1s are very old: age rules delete such tags, as GitLab.
    let tags = [tag("jib", Some(1)), tag("ko", Some(0))];
    let (d, _) = verdict(
        &tags,
        &policy(&[("name_regex", ".*"), ("older_than", "7d")]),
        100 * DAY,
    );
    assert_eq!(d, ["jib", "ko"]);
}

/// Found by the `cleanup` fuzz target: `a)|(b` closed the group the pattern is anchored
/// in (`\A(?:a)|(b)\z`) and matched every name that starts with `a`.
#[test]
fn a_pattern_cannot_escape_its_anchors() {
    for pattern in ["a)|(b", "a)|(?:.*", "x)(y"] {
        let e = Policy::from_params([("name_regex", pattern)])
            .unwrap_err()
            .0;
        assert!(
            e.starts_with(&format!(
                "name_regex {pattern:?} is not a regular expression"
            )),
            "{e}"
        );
    }
    let tags = [tag("a1", Some(DAY)), tag("ab", Some(DAY))];
    let (d, _) = verdict(&tags, &policy(&[("name_regex", "(a)|(b)")]), 100 * DAY);
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn bad_parameters_are_named() {
    let err = |pairs: &[(&str, &str)]| Policy::from_params(pairs.iter().copied()).unwrap_err().0;
    assert!(err(&[("name_regex", "(")]).starts_with("name_regex \"(\" is not a regular expression"));
    assert!(err(&[("name_regex_keep", "[z-a]")]).starts_with("name_regex_keep"));
    assert!(err(&[("name_regex", "(?<=x)")]).contains("RE2"));
    assert!(err(&[("name_regex", &"a".repeat(2000))]).contains("at most 1024"));
    assert!(err(&[("name_regex", "(a{1000}){1000}")]).contains("too large"));
    assert!(err(&[("keep_n", "-1")]).starts_with("keep_n \"-1\""));
    assert!(err(&[("keep_n", "five")]).starts_with("keep_n"));
    assert!(err(&[("older_than", "1month")]).starts_with("older_than \"1month\""));
    // Blank parameters are not given (GitLab's `blank?`).
    let p = policy(&[
        ("name_regex", ""),
        ("older_than", ""),
        ("name_regex_keep", ""),
    ]);
    assert!(p.delete.is_none() && p.keep.is_none() && p.older_than.is_none());
    for (text, seconds) in [
        ("7d", 7 * DAY),
        ("14d", 14 * DAY),
        ("30d", 30 * DAY),
        ("90d", 90 * DAY),
        ("12h", 43_200),
        ("2w", 14 * DAY),
    ] {
        assert_eq!(parse_older_than(text), Ok(seconds), "{text}");
    }
}

/// A snapshot of `(repository, [(tag, [(layer, size)], created)])`; tags with the same
/// layer list share a manifest.
/// A tag of a fixture: name, layers (digest, size), created.
type FixtureTag<'a> = (&'a str, &'a [(&'a str, u64)], Option<i64>);

fn snapshot(repos: &[(&str, &[FixtureTag<'_>])]) -> Snapshot {
    let mut b = Builder::default();
    for (name, tags) in repos {
        let tags = tags
            .iter()
            .map(|(t, layers, created)| {
                let digests: Vec<(crate::digest::Digest, u64)> =
                    layers.iter().map(|(d, s)| ((*d).into(), *s)).collect();
                let ids = b.intern_layers(digests.iter().map(|(d, s)| (d, *s)));
                crate::snapshot::InternedTag {
                    name: (*t).into(),
                    digest: None,
                    layers: ids.into(),
                    created: *created,
                }
            })
            .collect();
        b.add_interned(name, Some(tags), None);
    }
    b.add_interned("broken", None, Some("tag list: HTTP 500".into()));
    b.finish(0.0)
}

/// The preview of `p` over `scope` of `s`, with the index built as the service builds it.
fn run(s: &Snapshot, p: &Policy, scope: &Scope, now: i64) -> Preview {
    let usage = Usage::of(s);
    let in_scope = scope.repositories(s).expect("the scope covers something");
    preview(s, &usage, p, &in_scope, now)
}

#[test]
fn freed_bytes_count_only_blobs_no_kept_tag_holds() {
    let d = |n: i64| Some(n * DAY);
    let base = ("sha256:base", 100);
    let (a1, a2, a3, a4, a5) = (
        ("sha256:a1", 10),
        ("sha256:a2", 20),
        ("sha256:a3", 30),
        ("sha256:a4", 40),
        ("sha256:a5", 50),
    );
    let (m1, m2, b9) = (("sha256:m1", 5), ("sha256:m2", 6), ("sha256:b9", 9));
    let s = snapshot(&[
        (
            "g/app",
            &[
                ("keep-1", &[a4], d(5)),
                // latest shares v1's manifest: v1's layers stay.
                ("latest", &[base, a1], d(1)),
                ("multi", &[m1, m2], d(30)), // an index: its children's layers
                ("nodate", &[a5], None),
                ("v1", &[base, a1], d(10)),
                ("v2", &[base, a2], d(20)),
                ("v3", &[a3], d(95)),
            ],
        ),
        ("other/x", &[("t1", &[base, m2], d(1)), ("t2", &[b9], d(2))]),
    ]);
    let p = policy(&[
        ("name_regex", ".*"),
        ("name_regex_keep", "keep-.*"),
        ("keep_n", "1"),
        ("older_than", "30d"),
    ]);
    let now = 100 * DAY;
    let names = |s: &Snapshot, p: &Preview, r: &RepositoryPreview| -> Vec<String> {
        let tags = s.repositories[r.repository as usize].tags.as_ref().unwrap();
        p.split(r)
            .0
            .iter()
            .map(|&(i, _)| i)
            .map(|i| tags[i as usize].name.to_string())
            .collect()
    };

    // One group: other/x is out of scope, so m2 (also in other/x) frees nothing.
    let g = run(&s, &p, &Scope::Namespace("g".into()), now);
    assert_eq!(g.repositories.len(), 1);
    assert_eq!(names(&s, &g, &g.repositories[0]), ["multi", "v2", "v1"]);
    assert_eq!((g.tags_deleted, g.tags_kept), (3, 4));
    assert_eq!(g.logical_bytes, 11 + 120 + 110);
    assert_eq!(g.freed_bytes, 20 + 5); // a2 and m1
    assert_eq!(g.repositories[0].freed_bytes, 25);
    assert_eq!(
        g.deduplicated_size_before,
        100 + 10 + 20 + 30 + 40 + 50 + 5 + 6 + 9
    );
    assert_eq!(g.deduplicated_size_after, 270 - 25);
    assert!(g.unknown.is_empty());

    // The whole registry: t1 goes too (t2 is the one newest candidate of other/x), so m2
    // is freed; it was held by two repositories, so neither repository's own number
    // has it. base stays (latest).
    let all = run(&s, &p, &Scope::Registry, now);
    assert_eq!(all.repositories.len(), 2);
    assert_eq!(names(&s, &all, &all.repositories[1]), ["t1"]);
    assert_eq!(all.logical_bytes, 241 + 106);
    assert_eq!(all.freed_bytes, 20 + 5 + 6);
    assert_eq!(
        (
            all.repositories[0].freed_bytes,
            all.repositories[1].freed_bytes
        ),
        (25, 0)
    );
    assert_eq!(all.deduplicated_size_after, 270 - 31);
    assert_eq!(all.unknown.len(), 1);

    // Deleting both tags of one manifest frees it; deleting one of two does not.
    let v = policy(&[("name_regex", "v1|latest")]);
    assert_eq!(run(&s, &v, &Scope::Registry, now).freed_bytes, 0);
    let two = snapshot(&[("r", &[("a", &[a1], d(1)), ("b", &[a1], d(1))])]);
    let both = run(
        &two,
        &policy(&[("name_regex", ".*")]),
        &Scope::Registry,
        now,
    );
    assert_eq!(
        (both.tags_deleted, both.logical_bytes, both.freed_bytes),
        (2, 20, 10)
    );
    let one = run(&two, &policy(&[("name_regex", "a")]), &Scope::Registry, now);
    assert_eq!(
        (one.tags_deleted, one.logical_bytes, one.freed_bytes),
        (1, 10, 0)
    );

    // One repository.
    let x = run(&s, &p, &Scope::Repository("other/x".into()), now);
    assert_eq!((x.freed_bytes, x.logical_bytes), (0, 106));
}

#[test]
fn namespaces_cover_their_repositories_only() {
    let s = snapshot(&[
        ("g", &[]),
        ("g-x/app", &[]),
        ("g/app", &[]),
        ("g/app/sub", &[]),
        ("gx/app", &[]),
    ]);
    let names = |scope: Scope| -> Option<Vec<&str>> {
        let found = scope.repositories(&s)?;
        Some(found.iter().map(|&r| &*s.repositories[r].name).collect())
    };
    assert_eq!(
        names(Scope::Namespace("g".into())).unwrap(),
        ["g", "g/app", "g/app/sub"]
    );
    assert_eq!(
        names(Scope::Namespace("g/app".into())).unwrap(),
        ["g/app", "g/app/sub"]
    );
    assert_eq!(names(Scope::Namespace("g/ap".into())), None);
    assert_eq!(names(Scope::Namespace("nope".into())), None);
    assert_eq!(names(Scope::Repository("g/app".into())).unwrap(), ["g/app"]);
    assert_eq!(names(Scope::Repository("g/ap".into())), None);
    assert_eq!(names(Scope::Registry).unwrap().len(), 6, "broken too");
}

#[test]
fn the_table_is_aligned_and_biggest_first() {
    let d = |n: i64| Some(n * DAY);
    let s = snapshot(&[
        ("a/small", &[("old", &[("sha256:s", 5)], d(1))]),
        (
            "b/big",
            &[
                ("old", &[("sha256:b", 5000)], d(1)),
                ("latest", &[("sha256:c", 1)], d(1)),
            ],
        ),
        ("c/none", &[("latest", &[("sha256:n", 1)], d(1))]),
    ]);
    let p = run(
        &s,
        &policy(&[("name_regex", ".*")]),
        &Scope::Registry,
        100 * DAY,
    );
    let text = table(&s, &p, 10);
    let want = "tags deleted: 2\ntags kept: 2\nlogical bytes: 5005\nfreed bytes: 5005\n\
                deduplicated size: 5007 before, 2 after\n\
                repositories not judged (their tags are unknown): 1\n\n\
                repository  tags deleted  tags kept  logical bytes  freed bytes\n\
                b/big                  1          1           5000         5000\n\
                a/small                1          0              5            5\n";
    assert_eq!(text, want);
    assert_eq!(
        table(&s, &p, 1)
            .lines()
            .filter(|l| l.starts_with("a/small"))
            .count(),
        0
    );
    assert_eq!(
        scope_of("keep_n=1&namespace=g%2Fx"),
        Scope::Namespace("g/x".into())
    );
    assert_eq!(
        scope_of("repository=g/x/app&namespace=g"),
        Scope::Repository("g/x/app".into())
    );
    assert_eq!(scope_of("keep_n=1"), Scope::Registry);
}
