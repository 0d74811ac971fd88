//! Cleanup preview: which tags a GitLab cleanup policy would delete and how many bytes
//! that would really free. Pure: a snapshot and a policy in, an answer out, no I/O.
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
//! Bytes are layers only, as everywhere in the service. A blob is freed when every tag
//! referencing it, in any repository, is deleted; so a layer a kept tag or another
//! repository still uses frees nothing, and two tags on one manifest free nothing unless
//! both go.

use std::borrow::Cow;

use regex::Regex;

use crate::percent::decode_query_component;

use crate::snapshot::{Repository, Snapshot, Tag};

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
    /// The parameters as given, for the answer.
    pub text: PolicyText,
}

/// The policy's parameters as the client wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    regex::RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
        .size_limit(COMPILED_LIMIT)
        .dfa_size_limit(COMPILED_LIMIT)
        .build()
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
    /// `name_regex_keep`, `keep_n`, `older_than`. Other parameters are ignored.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Policy, PolicyError> {
        let (mut delete, mut old_delete, mut text) = (None, None, PolicyText::default());
        for (key, value) in params {
            match key {
                "name_regex_delete" => delete = Some(value.to_string()),
                "name_regex" => old_delete = Some(value.to_string()),
                "name_regex_keep" => text.name_regex_keep = Some(value.to_string()),
                "keep_n" => {
                    text.keep_n = Some(value.trim().parse::<u64>().map_err(|_| {
                        PolicyError(format!("keep_n {value:?} is not a non-negative integer"))
                    })?)
                }
                "older_than" => text.older_than = Some(value.to_string()),
                _ => {}
            }
        }
        // An empty parameter is GitLab's "blank": not given.
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        text.name_regex = given(delete).or(given(old_delete));
        text.name_regex_keep = given(text.name_regex_keep);
        text.older_than = given(text.older_than);
        Ok(Policy {
            delete: match &text.name_regex {
                Some(p) => Some(compile("name_regex", p)?),
                None => None,
            },
            keep: match &text.name_regex_keep {
                Some(p) => Some(compile("name_regex_keep", p)?),
                None => None,
            },
            keep_n: text.keep_n,
            older_than: match &text.older_than {
                Some(t) => Some(parse_older_than(t)?),
                None => None,
            },
            text,
        })
    }
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

/// The verdict on one repository: indices into its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryPreview {
    /// Index into the snapshot's repositories.
    pub repository: u32,
    /// Deleted tags, newest first.
    pub deleted: Vec<u32>,
    /// Kept tags with their reason, in name order.
    pub kept: Vec<(u32, Reason)>,
    /// Sum of the deleted tags' sizes.
    pub logical_bytes: u64,
    /// Bytes of blobs only this repository's deleted tags reference.
    pub freed_bytes: u64,
}

/// The whole preview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// Repositories in scope whose tags are known, in name order.
    pub repositories: Vec<RepositoryPreview>,
    /// Repositories in scope whose tags are unknown (their scans failed).
    pub unknown: Vec<u32>,
    pub tags_deleted: u64,
    pub tags_kept: u64,
    pub logical_bytes: u64,
    pub freed_bytes: u64,
    pub deduplicated_size_before: u64,
    pub deduplicated_size_after: u64,
}

/// The verdict on one repository's tags at `now` (unix seconds).
pub fn judge(tags: &[Tag], policy: &Policy, now: i64) -> (Vec<u32>, Vec<(u32, Reason)>) {
    let mut kept = Vec::new();
    let mut candidates = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let i = i as u32;
        let name: &str = &tag.name;
        if name == "latest" {
            kept.push((i, Reason::Latest));
        } else if !policy.delete.as_ref().is_some_and(|r| r.is_match(name)) {
            kept.push((i, Reason::NotMatched));
        } else if policy.keep.as_ref().is_some_and(|r| r.is_match(name)) {
            kept.push((i, Reason::KeepRegex));
        } else {
            candidates.push(i);
        }
    }
    let date = |i: &u32| tags[*i as usize].created.unwrap_or(now);
    // Newest first; equal dates in name order (tags are sorted by name).
    candidates.sort_by(|a, b| date(b).cmp(&date(a)).then(a.cmp(b)));
    let keep_n = policy
        .keep_n
        .map_or(0, |n| n.min(candidates.len() as u64) as usize);
    kept.extend(candidates[..keep_n].iter().map(|&i| (i, Reason::KeepN)));
    let limit = policy.older_than.map(|s| now.saturating_sub(s));
    let mut deleted = Vec::new();
    for &i in &candidates[keep_n..] {
        match (limit, tags[i as usize].created) {
            (None, _) => deleted.push(i),
            (Some(_), None) => kept.push((i, Reason::NoDate)),
            (Some(limit), Some(created)) if created < limit => deleted.push(i),
            (Some(_), Some(_)) => kept.push((i, Reason::TooNew)),
        }
    }
    kept.sort_unstable();
    (deleted, kept)
}

/// How many tags reference each blob of `snapshot`, across the registry: what decides
/// whether deleting some tags frees a blob. Depends only on the snapshot, so callers
/// keep one per generation.
pub fn blob_references(snapshot: &Snapshot) -> Vec<u32> {
    let mut refs = vec![0u32; snapshot.blobs.len()];
    for tag in snapshot
        .repositories
        .iter()
        .flat_map(|r| r.tags.iter().flatten())
    {
        for &l in tag.layers.iter() {
            refs[l as usize] = refs[l as usize].saturating_add(1);
        }
    }
    refs
}

/// The preview of `policy` over the repositories `in_scope` selects, at `now`;
/// `references` is [`blob_references`] of `snapshot`.
pub fn preview(
    snapshot: &Snapshot,
    references: &[u32],
    policy: &Policy,
    in_scope: impl Fn(&Repository) -> bool,
    now: i64,
) -> Preview {
    let mut out = Preview::default();
    // Per blob touched: deleted references so far, and the repository of the first one
    // (u32::MAX once a second repository deletes it too).
    let mut deleted_refs: std::collections::HashMap<u32, (u32, u32)> = Default::default();
    for (r, repo) in snapshot.repositories.iter().enumerate() {
        if !in_scope(repo) {
            continue;
        }
        let Some(tags) = &repo.tags else {
            out.unknown.push(r as u32);
            continue;
        };
        let (deleted, kept) = judge(tags, policy, now);
        let logical_bytes = deleted.iter().map(|&i| tags[i as usize].size).sum();
        for &i in &deleted {
            for &l in tags[i as usize].layers.iter() {
                let e = deleted_refs.entry(l).or_insert((0, r as u32));
                e.0 += 1;
                if e.1 != r as u32 {
                    e.1 = u32::MAX;
                }
            }
        }
        out.tags_deleted += deleted.len() as u64;
        out.tags_kept += kept.len() as u64;
        out.logical_bytes += logical_bytes;
        out.repositories.push(RepositoryPreview {
            repository: r as u32,
            deleted,
            kept,
            logical_bytes,
            freed_bytes: 0,
        });
    }
    for (&blob, &(count, repo)) in &deleted_refs {
        if count < references[blob as usize] {
            continue;
        }
        let size = snapshot.blobs[blob as usize].size;
        out.freed_bytes += size;
        if repo != u32::MAX {
            if let Ok(p) = out
                .repositories
                .binary_search_by_key(&repo, |p| p.repository)
            {
                out.repositories[p].freed_bytes += size;
            }
        }
    }
    // Every referenced blob has one owner, so the total `disk_size` is the registry's
    // deduplicated layer bytes (no pass over the blobs per preview).
    out.deduplicated_size_before = snapshot.totals.disk_size;
    out.deduplicated_size_after = out.deduplicated_size_before - out.freed_bytes;
    out
}

/// Does the namespace `path` (a GitLab group or project path) cover `repository`? A
/// project's repositories are named by its path, alone or followed by `/<image>`.
pub fn covers(path: &str, repository: &str) -> bool {
    repository
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Dates at or before 1980-01-01: what ko and reproducible builds (1970) and Jib
/// (1970-01-01T00:00:01Z, "48 years ago") write instead of the real build time.
pub const FAKE_DATE_LIMIT: i64 = 315_532_800;

/// Which repositories a preview covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Registry,
    /// A GitLab group or project path (decoded): the repositories named by it.
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

    pub fn covers(&self, repository: &str) -> bool {
        match self {
            Scope::Registry => true,
            Scope::Namespace(path) => covers(path, repository),
            Scope::Repository(name) => **name == *repository,
        }
    }

    /// Does the scope name something in `snapshot`? (A namespace must cover a
    /// repository; otherwise the answer is a 404, as for any unknown name.)
    pub fn exists(&self, snapshot: &Snapshot) -> bool {
        match self {
            Scope::Registry => true,
            Scope::Repository(name) => snapshot.repository(name).is_some(),
            Scope::Namespace(_) => snapshot.repositories.iter().any(|r| self.covers(&r.name)),
        }
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

/// The policy of a request's query string (the first occurrence of a parameter counts).
pub fn policy_of(query: &str) -> Result<Policy, PolicyError> {
    let pairs = query_pairs(query);
    let mut seen: Vec<&str> = Vec::new();
    let firsts = pairs.iter().filter_map(|(k, v)| {
        if seen.contains(&k.as_ref()) {
            return None;
        }
        seen.push(k);
        Some((k.as_ref(), v.as_ref()))
    });
    Policy::from_params(firsts.collect::<Vec<_>>())
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
        .filter(|r| !r.deleted.is_empty())
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
                r.deleted.len().to_string(),
                r.kept.len().to_string(),
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
