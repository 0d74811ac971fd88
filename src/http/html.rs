//! The HTML view of a resource, for people who open the API in a browser: the same data
//! as the JSON (fields, links, embedded resources) as tables with clickable links.
//!
//! Repository and tag names come from whoever can push to the registry, so every value,
//! href and title is HTML-escaped here; the page also ships with a Content-Security-Policy
//! that allows no scripts at all (set by the server), as a second line of defence.

use std::fmt::Write as _;

use super::hal::{write_json_f64, Href, Sink};

/// Start of every page. Inline CSS only (the CSP allows `style-src 'unsafe-inline'`).
const HEAD: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;margin:.4em 0}\
th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left;vertical-align:top}\
th{background:#eee}td.n{text-align:right}section{margin-left:1.2em;border-left:3px solid #ddd;padding-left:.8em}\
</style><title>";

/// Renders resources into one HTML page. The first `begin` opens the page; nested
/// resources become `<section>`s with smaller headings.
pub struct Html {
    out: String,
    /// Nesting depth of resources (1 = the page's own resource).
    level: usize,
    /// An open `<table>` of fields (closed before links or embedded parts).
    in_fields: bool,
    /// The rel of the link list being written.
    list_rel: String,
    scratch: String,
}

impl Html {
    pub fn with_capacity(capacity: usize) -> Html {
        Html {
            out: String::with_capacity(capacity),
            level: 0,
            in_fields: false,
            list_rel: String::new(),
            scratch: String::new(),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }

    /// A resource at nesting level L is titled `<h(2L-1)>` and its parts (links,
    /// embedded) `<h(2L)>`, capped at `<h6>`.
    fn heading(&self, part: bool) -> usize {
        (2 * self.level)
            .saturating_sub(usize::from(!part))
            .clamp(1, 6)
    }

    fn close_fields(&mut self) {
        if self.in_fields {
            self.out.push_str("</table>\n");
            self.in_fields = false;
        }
    }

    fn field_row(&mut self, key: &str) {
        if !self.in_fields {
            self.out.push_str("<table>\n");
            self.in_fields = true;
        }
        self.out.push_str("<tr><th>");
        escape_into(&mut self.out, key);
        self.out.push_str("</th>");
    }

    fn href_text(&mut self, href: &Href<'_>) {
        self.scratch.clear();
        let _ = write!(self.scratch, "{href}");
    }

    fn anchor(&mut self, href: &Href<'_>) {
        self.href_text(href);
        self.out.push_str("<a href=\"");
        escape_into(&mut self.out, &self.scratch);
        self.out.push_str("\">");
        escape_into(&mut self.out, &self.scratch);
        self.out.push_str("</a>");
    }

    fn link_row(&mut self, rel: &str, href: &Href<'_>, title: Option<&str>) {
        self.out.push_str("<tr><td>");
        escape_into(&mut self.out, rel);
        self.out.push_str("</td><td>");
        self.anchor(href);
        self.out.push_str("</td><td>");
        if let Some(title) = title {
            escape_into(&mut self.out, title);
        }
        self.out.push_str("</td></tr>\n");
    }

    fn section_heading(&mut self, text: &str) {
        let h = self.heading(true);
        let _ = write!(self.out, "<h{h}>");
        escape_into(&mut self.out, text);
        let _ = writeln!(self.out, "</h{h}>");
    }
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in element content and in quoted
/// attribute values alike.
pub fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        // `i` is at an ASCII byte: a char boundary.
        out.push_str(&s[start..i]);
        out.push_str(entity);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

impl Sink for Html {
    fn begin(&mut self, href: &Href<'_>) {
        self.close_fields();
        self.level += 1;
        self.href_text(href);
        if self.level == 1 {
            self.out.push_str(HEAD);
            escape_into(&mut self.out, &self.scratch);
            self.out.push_str("</title></head>\n<body>\n<h1>");
        } else {
            let h = self.heading(false);
            let _ = write!(self.out, "<section>\n<h{h}>");
        }
        self.anchor(href);
        let h = self.heading(false);
        let _ = writeln!(self.out, "</h{h}>");
    }

    fn str_field(&mut self, key: &str, value: &str) {
        self.field_row(key);
        self.out.push_str("<td>");
        escape_into(&mut self.out, value);
        self.out.push_str("</td></tr>\n");
    }

    fn i64_field(&mut self, key: &str, value: Option<i64>) {
        match value {
            Some(n) => {
                self.field_row(key);
                let sign = if n < 0 { "-" } else { "+" };
                let human = crate::usage::human_bytes(n.unsigned_abs());
                let _ = writeln!(self.out, "<td class=\"n\">{n} ({sign}{human})</td></tr>");
            }
            None => self.u64_field(key, None),
        }
    }

    fn u64_field(&mut self, key: &str, value: Option<u64>) {
        self.field_row(key);
        match value {
            // Byte counts also in units a person reads at a glance.
            Some(n) if key.ends_with("size") => {
                let human = crate::usage::human_bytes(n);
                let _ = writeln!(self.out, "<td class=\"n\">{n} ({human})</td></tr>");
            }
            Some(n) => {
                let _ = writeln!(self.out, "<td class=\"n\">{n}</td></tr>");
            }
            None => self.out.push_str("<td>unknown</td></tr>\n"),
        }
    }

    fn f64_field(&mut self, key: &str, value: f64) {
        self.field_row(key);
        let mut number = Vec::new();
        write_json_f64(&mut number, value);
        self.out.push_str("<td class=\"n\">");
        escape_into(&mut self.out, &String::from_utf8_lossy(&number));
        self.out.push_str("</td></tr>\n");
    }

    fn begin_links(&mut self) {
        self.close_fields();
        self.section_heading("Links");
        self.out
            .push_str("<table>\n<tr><th>rel</th><th>href</th><th>title</th></tr>\n");
    }

    fn link(&mut self, rel: &str, href: &Href<'_>, title: Option<&str>) {
        self.link_row(rel, href, title);
    }

    fn begin_link_list(&mut self, rel: &str) {
        // Each entry of the list becomes its own row under this rel.
        self.list_rel.clear();
        self.list_rel.push_str(rel);
    }

    fn list_link(&mut self, href: &Href<'_>, title: &str) {
        let rel = std::mem::take(&mut self.list_rel);
        self.link_row(&rel, href, Some(title));
        self.list_rel = rel;
    }

    fn end_link_list(&mut self) {}

    fn end_links(&mut self) {
        self.out.push_str("</table>\n");
    }

    fn begin_embedded(&mut self) {
        self.close_fields();
    }

    fn begin_embedded_one(&mut self, rel: &str) {
        self.section_heading(&format!("Embedded: {rel}"));
    }

    fn end_embedded_one(&mut self) {}

    fn begin_embedded_list(&mut self, rel: &str) {
        self.section_heading(&format!("Embedded: {rel}"));
    }

    fn end_embedded_list(&mut self) {}

    fn end_embedded(&mut self) {}

    fn end(&mut self) {
        self.close_fields();
        self.level = self.level.saturating_sub(1);
        if self.level == 0 {
            self.out.push_str("</body></html>\n");
        } else {
            self.out.push_str("</section>\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::hal::{repository, View};
    use crate::snapshot::{Builder, ScannedTag};

    #[test]
    fn escapes_every_kind_of_value() {
        let mut out = String::new();
        escape_into(&mut out, "a<b>&\"c'd\u{e9}");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&#39;d\u{e9}");
    }

    #[test]
    fn a_page_with_nested_resources() {
        let mut b = Builder::default();
        let tag = ScannedTag {
            name: "<i>".into(),
            digest: None,
            layers: Vec::new().into(),
        };
        b.add_repository("x/<b>\"'", Some(vec![tag]), None);
        b.add_repository("y", None, Some("<script>".into()));
        let s = b.finish(0.0);
        let view = View {
            base: "/p&q/repositories",
            links: true,
            usage: None,
        };
        let mut html = Html::with_capacity(0);
        repository(&mut html, &s.repositories[0], view, 2, None);
        let page = String::from_utf8(html.into_bytes()).unwrap();
        for raw in ["<b>", "<i>", "/p&q", "'\""] {
            assert!(!page.contains(raw), "{raw} in {page}");
        }
        assert!(
            page.contains("<title>/p&amp;q/repositories/x%2F%3Cb%3E%22%27</title>"),
            "{page}"
        );
        assert!(
            page.contains("<h1><a href=\"/p&amp;q/repositories/x%2F%3Cb%3E%22%27\">"),
            "{page}"
        );
        assert!(
            page.contains("<h2>Embedded: related</h2>\n<section>\n<h3>"),
            "{page}"
        );
        assert!(
            page.contains("<h4>Embedded: items</h4>\n<section>\n<h5>"),
            "{page}"
        );
        assert!(page.contains("<td>&lt;i&gt;</td>"), "{page}");
        assert!(
            page.ends_with("</section>\n</section>\n</body></html>\n"),
            "{page}"
        );

        let mut html = Html::with_capacity(0);
        repository(&mut html, &s.repositories[1], view, 2, None);
        let page = String::from_utf8(html.into_bytes()).unwrap();
        assert!(
            page.contains("<td>&lt;script&gt;</td>") && page.contains("<td>unknown</td>"),
            "{page}"
        );
    }
}
