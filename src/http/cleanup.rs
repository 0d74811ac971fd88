//! The cleanup preview's routes: `/cleanup`, `/namespaces/<path>/cleanup` and
//! `/repositories/<name>/cleanup`, their query (GitLab's bulk-delete parameters) and
//! their JSON answer. The verdicts come from `crate::cleanup` (pure); this file only
//! picks the scope and writes the document (serde structs borrowing the snapshot,
//! streamed into the buffer: no value tree).

use serde::Serialize;

use crate::cleanup::{self, Policy, Preview, Reason, Scope, FAKE_DATE_LIMIT};
use crate::rfc3339;
use crate::snapshot::{Snapshot, Tag};

/// A canonical text of scope and policy, part of the cache key: two queries that mean
/// the same preview share one rendering.
pub fn cache_text(scope: &Scope, policy: &Policy) -> String {
    format!("{scope:?} {:?}", policy.text)
}

#[derive(Serialize)]
struct Document<'a> {
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    policy: PolicyOut<'a>,
    now: String,
    notes: Vec<String>,
    tags_deleted: u64,
    tags_kept: u64,
    logical_bytes: u64,
    freed_bytes: u64,
    deduplicated_size_before: u64,
    deduplicated_size_after: u64,
    /// Repositories in scope whose tags are unknown (their scans failed): not judged.
    repositories_unknown: Vec<&'a str>,
    repositories: Vec<RepositoryOut<'a>>,
}

#[derive(Serialize)]
struct PolicyOut<'a> {
    name_regex: Option<&'a str>,
    name_regex_keep: Option<&'a str>,
    keep_n: Option<u64>,
    older_than: Option<&'a str>,
    older_than_seconds: Option<i64>,
}

#[derive(Serialize)]
struct RepositoryOut<'a> {
    name: &'a str,
    tags_deleted: u64,
    tags_kept: u64,
    logical_bytes: u64,
    freed_bytes: u64,
    deleted: Vec<TagOut<'a>>,
    kept: Vec<TagOut<'a>>,
}

#[derive(Serialize)]
struct TagOut<'a> {
    name: &'a str,
    digest: Option<String>,
    created: Option<String>,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

fn tag_out(tag: &Tag, reason: Option<Reason>) -> TagOut<'_> {
    TagOut {
        name: &tag.name,
        digest: tag.digest.as_ref().map(|d| d.to_string()),
        created: tag.created.map(rfc3339::format),
        size: tag.size,
        reason: reason.map(Reason::as_str),
    }
}

/// The preview of `policy` over `scope` at `now`, as JSON.
pub fn render(
    snapshot: &Snapshot,
    references: &[u32],
    scope: &Scope,
    policy: &Policy,
    now: i64,
) -> Vec<u8> {
    let preview: Preview =
        cleanup::preview(snapshot, references, policy, |r| scope.covers(&r.name), now);
    let mut notes = Vec::new();
    if policy.delete.is_none() {
        notes.push(
            "name_regex is missing: no tag matches, so nothing would be deleted (GitLab \
             deletes nothing without a delete regex either)"
                .to_string(),
        );
    }
    if !snapshot.dates {
        notes.push(
            "this snapshot has no tag dates ([registry] tag_dates is off): every tag counts \
             as created now, so keep_n keeps them in name order and older_than deletes none"
                .to_string(),
        );
    }
    let repositories: Vec<RepositoryOut<'_>> = preview
        .repositories
        .iter()
        .map(|p| {
            let repo = &snapshot.repositories[p.repository as usize];
            let tags = repo.tags.as_deref().unwrap_or_default();
            RepositoryOut {
                name: &repo.name,
                tags_deleted: p.deleted.len() as u64,
                tags_kept: p.kept.len() as u64,
                logical_bytes: p.logical_bytes,
                freed_bytes: p.freed_bytes,
                deleted: p
                    .deleted
                    .iter()
                    .map(|&i| tag_out(&tags[i as usize], None))
                    .collect(),
                kept: p
                    .kept
                    .iter()
                    .map(|&(i, r)| tag_out(&tags[i as usize], Some(r)))
                    .collect(),
            }
        })
        .collect();
    let fake = preview
        .repositories
        .iter()
        .flat_map(|p| {
            let tags = snapshot.repositories[p.repository as usize]
                .tags
                .as_deref()
                .unwrap_or_default();
            tags.iter()
                .filter(|t| t.created.is_some_and(|c| c <= FAKE_DATE_LIMIT))
        })
        .count();
    if fake > 0 {
        notes.push(format!(
            "{fake} tags have a build date at or before 1980-01-01, as ko, Jib and \
             reproducible builds write it: GitLab's age rules take such dates as they are, \
             so these tags sort as the oldest and older_than deletes them"
        ));
    }
    let doc = Document {
        scope: scope.kind(),
        name: scope.name(),
        policy: PolicyOut {
            name_regex: policy.text.name_regex.as_deref(),
            name_regex_keep: policy.text.name_regex_keep.as_deref(),
            keep_n: policy.text.keep_n,
            older_than: policy.text.older_than.as_deref(),
            older_than_seconds: policy.older_than,
        },
        now: rfc3339::format(now),
        notes,
        tags_deleted: preview.tags_deleted,
        tags_kept: preview.tags_kept,
        logical_bytes: preview.logical_bytes,
        freed_bytes: preview.freed_bytes,
        deduplicated_size_before: preview.deduplicated_size_before,
        deduplicated_size_after: preview.deduplicated_size_after,
        repositories_unknown: preview
            .unknown
            .iter()
            .map(|&r| &*snapshot.repositories[r as usize].name)
            .collect(),
        repositories,
    };
    serde_json::to_vec(&doc).expect("a preview serialises")
}
