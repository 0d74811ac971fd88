//! The cleanup preview's answer: `/cleanup`, `/namespaces/<path>/cleanup` and
//! `/repositories/<name>/cleanup`. The verdicts come from `crate::cleanup` (pure); this
//! file writes the JSON document straight into bytes (no value tree, no string per tag:
//! one buffer is reused for every digest and date), so a whole-registry preview costs
//! about what its bytes cost.

use std::fmt::Write as _;

use crate::cleanup::{self, Policy, Preview, Reason, Scope};
use crate::rfc3339;
use crate::snapshot::{Snapshot, Tag};
use crate::usage::Usage;

use super::hal::write_json_string;

/// A canonical text of scope and policy, part of the cache key: two queries that mean
/// the same preview share one rendering.
pub fn cache_text(scope: &Scope, policy: &Policy) -> String {
    format!("{scope:?} {:?}", policy.text)
}

/// What the answer says about the policy and the data beyond the numbers.
fn notes(snapshot: &Snapshot, policy: &Policy, preview: &Preview) -> Vec<String> {
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
    let fake = cleanup::fake_dates(snapshot, preview);
    if fake > 0 {
        notes.push(format!(
            "{fake} tags have a build date at or before 1980-01-01, as ko, Jib and \
             reproducible builds write it: GitLab's age rules take such dates as they are, \
             so these tags sort as the oldest and older_than deletes them"
        ));
    }
    notes
}

/// The JSON writer of one answer: the output and a scratch string for digests and dates.
struct Out {
    bytes: Vec<u8>,
    scratch: String,
}

impl Out {
    fn raw(&mut self, text: &str) {
        self.bytes.extend_from_slice(text.as_bytes());
    }

    fn string(&mut self, text: &str) {
        write_json_string(&mut self.bytes, text);
    }

    fn opt_string(&mut self, text: Option<&str>) {
        match text {
            Some(t) => self.string(t),
            None => self.raw("null"),
        }
    }

    /// `,"key":` (no comma for the first field of an object: `first`).
    fn key(&mut self, key: &str, first: bool) {
        if !first {
            self.bytes.push(b',');
        }
        self.string(key);
        self.bytes.push(b':');
    }

    fn number(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key, false);
        let _ = std::io::Write::write_fmt(&mut self.bytes, format_args!("{value}"));
    }

    fn scratch_cleared(&mut self) -> &mut String {
        self.scratch.clear();
        &mut self.scratch
    }

    /// `{"name","digest","created","size"[,"reason"]}`
    fn tag(&mut self, tag: &Tag, reason: Option<Reason>) {
        self.bytes.push(b'{');
        self.key("name", true);
        self.string(&tag.name);
        self.key("digest", false);
        match &tag.digest {
            Some(d) => {
                let _ = write!(self.scratch_cleared(), "{d}");
                write_json_string(&mut self.bytes, &self.scratch);
            }
            None => self.raw("null"),
        }
        self.key("created", false);
        match tag.created {
            Some(c) => {
                rfc3339::write(self.scratch_cleared(), c);
                write_json_string(&mut self.bytes, &self.scratch);
            }
            None => self.raw("null"),
        }
        self.number("size", tag.size);
        if let Some(r) = reason {
            self.key("reason", false);
            self.raw("\"");
            self.raw(r.as_str());
            self.raw("\"");
        }
        self.bytes.push(b'}');
    }
}

/// The preview of `policy` over the repositories `in_scope` (of `scope`) at `now`, as
/// JSON.
pub fn render(
    snapshot: &Snapshot,
    usage: &Usage,
    scope: &Scope,
    in_scope: &[usize],
    policy: &Policy,
    now: i64,
) -> Vec<u8> {
    let preview = cleanup::preview(snapshot, usage, policy, in_scope, now);
    // About 120 bytes a judged tag.
    let mut out = Out {
        bytes: Vec::with_capacity(1024 + preview.verdicts.len() * 120),
        scratch: String::with_capacity(80),
    };
    out.raw("{");
    out.key("scope", true);
    out.string(scope.kind());
    if let Some(name) = scope.name() {
        out.key("name", false);
        out.string(name);
    }
    out.key("policy", false);
    out.raw("{");
    let text = &policy.text;
    out.key("name_regex", true);
    out.opt_string(text.name_regex.as_deref());
    out.key("name_regex_keep", false);
    out.opt_string(text.name_regex_keep.as_deref());
    match text.keep_n {
        Some(n) => out.number("keep_n", n),
        None => out.number("keep_n", "null"),
    }
    out.key("older_than", false);
    out.opt_string(text.older_than.as_deref());
    match policy.older_than {
        Some(s) => out.number("older_than_seconds", s),
        None => out.number("older_than_seconds", "null"),
    }
    out.raw("}");
    out.key("now", false);
    out.string(&rfc3339::format(now));
    out.key("notes", false);
    out.raw("[");
    for (i, note) in notes(snapshot, policy, &preview).iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.string(note);
    }
    out.raw("]");
    out.number("tags_deleted", preview.tags_deleted);
    out.number("tags_kept", preview.tags_kept);
    out.number("logical_bytes", preview.logical_bytes);
    out.number("freed_bytes", preview.freed_bytes);
    out.number("deduplicated_size_before", preview.deduplicated_size_before);
    out.number("deduplicated_size_after", preview.deduplicated_size_after);
    out.key("repositories_unknown", false);
    out.raw("[");
    for (i, &r) in preview.unknown.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.string(&snapshot.repositories[r as usize].name);
    }
    out.raw("]");
    out.key("repositories", false);
    out.raw("[");
    for (i, p) in preview.repositories.iter().enumerate() {
        let repo = &snapshot.repositories[p.repository as usize];
        let tags = repo.tags.as_deref().unwrap_or_default();
        if i > 0 {
            out.raw(",");
        }
        out.raw("{");
        out.key("name", true);
        out.string(&repo.name);
        out.number("tags_deleted", p.deleted);
        out.number("tags_kept", p.tags_kept());
        out.number("logical_bytes", p.logical_bytes);
        out.number("freed_bytes", p.freed_bytes);
        let (deleted, kept) = preview.split(p);
        for (key, verdicts) in [("deleted", deleted), ("kept", kept)] {
            out.key(key, false);
            out.raw("[");
            for (j, &(t, reason)) in verdicts.iter().enumerate() {
                if j > 0 {
                    out.raw(",");
                }
                out.tag(&tags[t as usize], reason);
            }
            out.raw("]");
        }
        out.raw("}");
    }
    out.raw("]}");
    out.bytes
}
