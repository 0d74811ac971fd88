//! Cleanup preview: which tags a GitLab cleanup policy would delete and how many bytes
//! that would really free. Pure: a snapshot, its usage index and a policy in, an answer
//! out, no I/O.
//!
//! GitLab's rules (`CleanupTagsService`, the same for a project's cleanup policy and the
//! bulk-delete API), applied per repository:
//! 1. the tag `latest` is always kept;
//! 2. candidates are the tags whose whole name matches `name_regex_delete` (or its old
//!    name `name_regex`) and does not match `name_regex_keep` (the keep rule wins);
//! 3. candidates are ordered newest first by `created`, a tag without a date counting as
//!    "now"; with `keep_n`, the first `keep_n` are kept;
//! 4. with `older_than`, of the rest only those with a date strictly older than
//!    `now - older_than` are deleted (a tag without a date is never old enough);
//!    without it, all the rest are.
//!
//! Ties in `created` are broken by name, so the preview is deterministic (GitLab's sort
//! is not stable and may pick either). Regexes are anchored as a whole, `\A(?:…)\z`:
//! GitLab pastes the pattern between `\A` and `\z` without a group, so its `a|b` means
//! "starts with a, or ends with b"; the preview uses the documented meaning ("the whole
//! name matches") instead.
//!
//! Bytes are layers only, as everywhere in the service, and come from the usage index's
//! per-blob reference counts ([`Usage::freed_by_each`]): a blob is freed when every tag
//! referencing it, in any repository, is deleted; so a layer a kept tag or another
//! repository still uses frees nothing, and two tags on one manifest free nothing unless
//! both go.

use std::borrow::Cow;

use regex::Regex;

use crate::percent::decode_query_component;
use crate::snapshot::{Snapshot, Tag};
use crate::usage::Usage;

/// Longest pattern accepted, and the compiled program's size limit: a hostile pattern
/// costs at most this much memory, and matching stays linear in the name.
const MAX_PATTERN: usize = 1024;
const COMPILED_LIMIT: usize = 1 << 20;

/// A parsed cleanup policy, GitLab's bulk-delete parameters.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `name_regex_delete` (or `name_regex`); `None`: no tag matches.
    pub delete: Option<Regex>,
    pub keep: Option<Regex>,
    pub keep_n: Option<u64>,
    /// Seconds.
    pub older_than: Option<i64>,
    /// The parameters as given, for the answer and the cache key.
    pub text: PolicyText,
}

/// The policy's parameters as the client wrote them (blank ones as not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PolicyText {
    pub name_regex: Option<String>,
    pub name_regex_keep: Option<String>,
    pub keep_n: Option<u64>,
    pub older_than: Option<String>,
}

/// A parameter the preview cannot use, named with what to do (the API's 400 body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn compile(param: &str, pattern: &str) -> Result<Regex, PolicyError> {
    if pattern.len() > MAX_PATTERN {
        return Err(PolicyError(format!(
            "{param} is {} bytes long; at most {MAX_PATTERN} are accepted",
            pattern.len()
        )));
    }
    let build = |pattern: &str| {
        regex::RegexBuilder::new(pattern)
            .size_limit(COMPILED_LIMIT)
            .dfa_size_limit(COMPILED_LIMIT)
            .build()
    };
    // The pattern alone first: one with an unbalanced `)` (`a)|(b`) would close the
    // anchoring group and match names that only start with `a`.
    build(pattern)
        .and_then(|_| build(&format!(r"\A(?:{pattern})\z")))
        .map_err(|e| {
            let why = match e {
                regex::Error::CompiledTooBig(_) => "it compiles to a too large program".into(),
                other => other.to_string(),
            };
            PolicyError(format!(
                "{param} {pattern:?} is not a regular expression in RE2 syntax: {why}"
            ))
        })
}

/// `older_than`: GitLab's `7d`, `14d`, `30d`, `60d`, `90d` and the service's durations
/// (`12h`, `2w`, `3600`, …), to seconds.
pub fn parse_older_than(text: &str) -> Result<i64, PolicyError> {
    crate::config::parse_duration(text)
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| {
            PolicyError(format!(
                "older_than {text:?} is not a duration; use GitLab's forms (7d, 14d, 30d, 60d, \
                 90d) or a number with a unit (s, m, h, d, w)"
            ))
        })
}

impl Policy {
    /// The policy of query parameters (already percent-decoded): `name_regex_delete`,
    /// `name_regex` (GitLab's older name of the same, used when the first is absent),
    /// `name_regex_keep`, `keep_n`, `older_than`. Other parameters are ignored; the first
    /// occurrence of a parameter counts (as for every other query of the API).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Policy, PolicyError> {
        let (mut delete, mut old_delete, mut keep, mut keep_n, mut older_than) =
            (None, None, None, None, None);
        for (key, value) in params {
            let slot = match key {
                "name_regex_delete" => &mut delete,
                "name_regex" => &mut old_delete,
                "name_regex_keep" => &mut keep,
                "keep_n" => &mut keep_n,
                "older_than" => &mut older_than,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        // An empty parameter is GitLab's "blank": not given.
        let given = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(str::to_string);
        let text = PolicyText {
            name_regex: given(delete).or(given(old_delete)),
            name_regex_keep: given(keep),
            keep_n: keep_n
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| {
                        PolicyError(format!("keep_n {v:?} is not a non-negative integer"))
                    })
                })
                .transpose()?,
            older_than: given(older_than),
        };
        Ok(Policy {
            delete: text
                .name_regex
                .as_deref()
                .map(|p| compile("name_regex", p))
                .transpose()?,
            keep: text
                .name_regex_keep
                .as_deref()
                .map(|p| compile("name_regex_keep", p))
                .transpose()?,
            keep_n: text.keep_n,
            older_than: text
                .older_than
                .as_deref()
                .map(parse_older_than)
                .transpose()?,
            text,
        })
    }
}

/// The decoded `(key, value)` pairs of a query string.
pub fn query_pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_component(k), decode_query_component(v))
        })
        .collect()
}

/// The policy of a request's query string.
pub fn policy_of(query: &str) -> Result<Policy, PolicyError> {
    let pairs = query_pairs(query);
    Policy::from_params(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
}

/// Why a tag stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Latest,
    KeepRegex,
    NotMatched,
    KeepN,
    TooNew,
    NoDate,
}

impl Reason {
    /// The word in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Latest => "latest",
            Reason::KeepRegex => "keep_regex",
            Reason::NotMatched => "not_matched",
            Reason::KeepN => "keep_n",
            Reason::TooNew => "too_new",
            Reason::NoDate => "no_date",
        }
    }
}

/// One tag's verdict: its index in its repository's tags, and why it stays (`None`:
/// deleted).
pub type Verdict = (u32, Option<Reason>);

/// Buffers one preview reuses from repository to repository (no allocation per one).
#[derive(Default)]
struct Scratch {
    reasons: Vec<Option<Reason>>,
    candidates: Vec<u32>,
}

/// Appends the verdicts on `tags` at `now` (unix seconds) to `out`: the deleted tags
/// newest first, then the kept ones in name order; returns how many were deleted.
fn judge_into(
    tags: &[Tag],
    policy: &Policy,
    now: i64,
    scratch: &mut Scratch,
    out: &mut Vec<Verdict>,
) -> usize {
    let Scratch {
        reasons,
        candidates,
    } = scratch;
    reasons.clear();
    candidates.clear();
    for (i, tag) in tags.iter().enumerate() {
        let name: &str = &tag.name;
        let reason = if name == "latest" {
            Some(Reason::Latest)
        } else if !policy.delete.as_ref().is_some_and(|r| r.is_match(name)) {
            Some(Reason::NotMatched)
        } else if policy.keep.as_ref().is_some_and(|r| r.is_match(name)) {
            Some(Reason::KeepRegex)
        } else {
            candidates.push(i as u32);
            None
        };
        reasons.push(reason);
    }
    let date = |i: u32| tags[i as usize].created.unwrap_or(now);
    // Newest first; equal dates in name order (tags are sorted by name).
    candidates.sort_unstable_by_key(|&i| (std::cmp::Reverse(date(i)), i));
    let keep_n = policy
        .keep_n
        .map_or(0, |n| n.min(candidates.len() as u64) as usize);
    let limit = policy.older_than.map(|s| now.saturating_sub(s));
    let mut deleted = 0;
    for (rank, &i) in candidates.iter().enumerate() {
        let reason = if rank < keep_n {
            Some(Reason::KeepN)
        } else {
            match (limit, tags[i as usize].created) {
                (None, _) => None,
                (Some(_), None) => Some(Reason::NoDate),
                (Some(limit), Some(created)) if created < limit => None,
                (Some(_), Some(_)) => Some(Reason::TooNew),
            }
        };
        reasons[i as usize] = reason;
        if reason.is_none() {
            out.push((i, None));
            deleted += 1;
        }
    }
    out.extend(
        reasons
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (i as u32, Some(r)))),
    );
    deleted
}

/// The verdict on one repository's tags at `now`: the deleted ones newest first, the
/// kept ones with their reason in name order (indices into `tags`).
pub fn judge(tags: &[Tag], policy: &Policy, now: i64) -> (Vec<u32>, Vec<(u32, Reason)>) {
    let mut out = Vec::with_capacity(tags.len());
    let deleted = judge_into(tags, policy, now, &mut Scratch::default(), &mut out);
    let kept = out[deleted..]
        .iter()
        .filter_map(|&(i, r)| Some((i, r?)))
        .collect();
    out.truncate(deleted);
    (out.into_iter().map(|(i, _)| i).collect(), kept)
}

/// Which repositories a preview covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Registry,
    /// A GitLab group or project path (decoded): the repository of that name and those
    /// under `<path>/`, as a project-level policy applies to each of its repositories.
    Namespace(Box<str>),
    Repository(Box<str>),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Registry => "registry",
            Scope::Namespace(_) => "namespace",
            Scope::Repository(_) => "repository",
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Scope::Registry => None,
            Scope::Namespace(n) | Scope::Repository(n) => Some(n),
        }
    }

    /// The indices of the repositories of `snapshot` the scope covers, in name order;
    /// `None` when it covers none (the API's 404). Binary searches on the sorted names:
    /// a namespace's repositories under `<path>/` are one contiguous run of them.
    pub fn repositories(&self, snapshot: &Snapshot) -> Option<Vec<usize>> {
        let repos = &snapshot.repositories;
        let at = |name: &str| repos.binary_search_by(|r| (*r.name).cmp(name)).ok();
        let found: Vec<usize> = match self {
            Scope::Registry => (0..repos.len()).collect(),
            Scope::Repository(name) => at(name).into_iter().collect(),
            Scope::Namespace(path) => {
                let under = format!("{path}/");
                let start = repos.partition_point(|r| *r.name < *under);
                let len = repos[start..].partition_point(|r| r.name.starts_with(&under));
                at(path).into_iter().chain(start..start + len).collect()
            }
        };
        (!found.is_empty() || matches!(self, Scope::Registry)).then_some(found)
    }
}

/// The scope a command-line query names: `repository=<name>`, else `namespace=<path>`,
/// else the whole registry (the API takes these from its path instead).
pub fn scope_of(query: &str) -> Scope {
    let pairs = query_pairs(query);
    let find = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    match (find("repository"), find("namespace")) {
        (Some(name), _) => Scope::Repository(name.as_ref().into()),
        (None, Some(path)) => Scope::Namespace(path.as_ref().into()),
        (None, None) => Scope::Registry,
    }
}

/// The verdict on one repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepositoryPreview {
    /// Index into the snapshot's repositories.
    pub repository: u32,
    /// Its verdicts are `Preview::verdicts[start..end]`, the first `deleted` of them
    /// deleted (newest first), the rest kept (in name order).
    pub start: u32,
    pub deleted: u32,
    pub end: u32,
    /// Sum of the deleted tags' sizes.
    pub logical_bytes: u64,
    /// Bytes of blobs only this repository's deleted tags reference.
    pub freed_bytes: u64,
}

impl RepositoryPreview {
    pub fn tags_kept(&self) -> u32 {
        self.end - self.start - self.deleted
    }
}

/// The whole preview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Repositories in scope whose tags are known, in name order.
    pub repositories: Vec<RepositoryPreview>,
    /// Every judged tag, repository after repository (see `RepositoryPreview::start`).
    pub verdicts: Vec<Verdict>,
    /// Repositories in scope whose tags are unknown (their scans failed).
    pub unknown: Vec<u32>,
    pub tags_deleted: u64,
    pub tags_kept: u64,
    pub logical_bytes: u64,
    pub freed_bytes: u64,
    pub deduplicated_size_before: u64,
    pub deduplicated_size_after: u64,
}

impl Preview {
    /// The deleted and the kept verdicts of `r`.
    pub fn split(&self, r: &RepositoryPreview) -> (&[Verdict], &[Verdict]) {
        self.verdicts[r.start as usize..r.end as usize].split_at(r.deleted as usize)
    }
}

/// The preview of `policy` over the repositories `in_scope` (indices into the snapshot's
/// repositories, ascending) at `now`; `usage` is the index of `snapshot`.
pub fn preview(
    snapshot: &Snapshot,
    usage: &Usage,
    policy: &Policy,
    in_scope: &[usize],
    now: i64,
) -> Preview {
    let mut out = Preview::default();
    let mut scratch = Scratch::default();
    for &r in in_scope {
        let repo = &snapshot.repositories[r];
        let Some(tags) = &repo.tags else {
            out.unknown.push(r as u32);
            continue;
        };
        let start = out.verdicts.len();
        let deleted = judge_into(tags, policy, now, &mut scratch, &mut out.verdicts);
        let logical_bytes: u64 = out.verdicts[start..start + deleted]
            .iter()
            .map(|&(i, _)| tags[i as usize].size)
            .sum();
        out.tags_deleted += deleted as u64;
        out.tags_kept += (tags.len() - deleted) as u64;
        out.logical_bytes += logical_bytes;
        out.repositories.push(RepositoryPreview {
            repository: r as u32,
            start: start as u32,
            deleted: deleted as u32,
            end: out.verdicts.len() as u32,
            logical_bytes,
            freed_bytes: 0,
        });
    }
    let deleted = out.repositories.iter().flat_map(|p| {
        out.verdicts[p.start as usize..(p.start + p.deleted) as usize]
            .iter()
            .map(|&(t, _)| (p.repository as usize, t as usize))
    });
    let freed = usage.freed_by_each(snapshot, deleted);
    for p in &mut out.repositories {
        p.freed_bytes = freed.by_repository[p.repository as usize];
    }
    out.freed_bytes = freed.bytes;
    out.deduplicated_size_before = usage.deduplicated_size();
    out.deduplicated_size_after = out.deduplicated_size_before - out.freed_bytes;
    out
}

/// Dates at or before 1980-01-01: what ko and reproducible builds (1970) and Jib
/// (1970-01-01T00:00:01Z, "48 years ago") write instead of the real build time.
pub const FAKE_DATE_LIMIT: i64 = 315_532_800;

/// How many tags the preview judged whose date is fake (see [`FAKE_DATE_LIMIT`]).
pub fn fake_dates(snapshot: &Snapshot, preview: &Preview) -> usize {
    preview
        .repositories
        .iter()
        .flat_map(|p| {
            snapshot.repositories[p.repository as usize]
                .tags
                .iter()
                .flatten()
        })
        .filter(|t| t.created.is_some_and(|c| c <= FAKE_DATE_LIMIT))
        .count()
}

/// `--preview-cleanup`'s text: the totals, then the `top` repositories that would free
/// the most (then by logical bytes, then by name) as an aligned table.
pub fn table(snapshot: &Snapshot, preview: &Preview, top: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tags deleted: {}\ntags kept: {}\nlogical bytes: {}\nfreed bytes: {}\n\
         deduplicated size: {} before, {} after",
        preview.tags_deleted,
        preview.tags_kept,
        preview.logical_bytes,
        preview.freed_bytes,
        preview.deduplicated_size_before,
        preview.deduplicated_size_after
    );
    if !preview.unknown.is_empty() {
        let _ = writeln!(
            out,
            "repositories not judged (their tags are unknown): {}",
            preview.unknown.len()
        );
    }
    let mut rows: Vec<&RepositoryPreview> = preview
        .repositories
        .iter()
        .filter(|r| r.deleted > 0)
        .collect();
    rows.sort_by(|a, b| {
        (b.freed_bytes, b.logical_bytes)
            .cmp(&(a.freed_bytes, a.logical_bytes))
            .then(a.repository.cmp(&b.repository))
    });
    rows.truncate(top);
    if rows.is_empty() {
        return out;
    }
    let header = [
        "repository",
        "tags deleted",
        "tags kept",
        "logical bytes",
        "freed bytes",
    ];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                snapshot.repositories[r.repository as usize]
                    .name
                    .to_string(),
                r.deleted.to_string(),
                r.tags_kept().to_string(),
                r.logical_bytes.to_string(),
                r.freed_bytes.to_string(),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let _ = writeln!(out);
    let line = |out: &mut String, row: [&str; 5]| {
        // The name left-aligned, the numbers right-aligned.
        let _ = write!(out, "{:<w$}", row[0], w = width[0]);
        for (cell, w) in row[1..].iter().zip(&width[1..]) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    };
    line(&mut out, header);
    for row in &cells {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

#[cfg(test)]
mod tests;
