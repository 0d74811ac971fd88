//! Percent-encoding (RFC 3986) of names in links, and decoding of paths and query values.
//!
//! Written here rather than taken from a crate: the two functions are short, and the
//! exact rules are part of the API contract with the original's clients (links encode
//! like Python's `quote(name, safe='')`; paths decode like werkzeug, `%2F` included).

use std::fmt;

/// Writes `s` percent-encoded with no safe characters, as Python's
/// `urllib.parse.quote(s, safe='')` does: only `A-Z a-z 0-9 _ . - ~` stay as they are,
/// every other byte of the UTF-8 text becomes `%XX` (upper-case hex). The result is
/// plain ASCII without `"`, `<`, `&` or `\`, so it needs no further escaping in JSON or
/// HTML.
pub struct Encoded<'a>(pub &'a str);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(self.0.len() * 3);
        encode_into(&mut out, self.0);
        // Only unreserved ASCII and `%XX` were written.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

/// Appends `s` percent-encoded like [`Encoded`] to `out`: the hot path of link rendering,
/// with no formatting machinery.
pub fn encode_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~')
}

/// Why a path could not be decoded; both are the client's fault (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl DecodeError {
    pub fn message(self) -> &'static str {
        match self {
            DecodeError::BadEscape => "The path contains an invalid percent-encoding (a '%' must be followed by two hex digits)",
            DecodeError::NotUtf8 => "The path is not valid UTF-8 after percent-decoding",
        }
    }
}

/// Strictly decodes a path segment sequence: `%XX` (either case) → byte, `+` stays `+`.
/// Borrowed when there is nothing to decode, which is the common case.
pub fn decode_path(s: &str) -> Result<std::borrow::Cow<'_, str>, DecodeError> {
    if !s.contains('%') {
        return Ok(std::borrow::Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(DecodeError::BadEscape),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| DecodeError::NotUtf8)
}

/// Leniently decodes a query-string component as form data: `+` is a space, `%XX` a
/// byte, a malformed escape is kept as written and invalid UTF-8 becomes U+FFFD (like
/// Python's `parse_qs`). Only `embed` and `links` are read, so leniency costs nothing.
pub fn decode_query_component(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_python_quote_with_no_safe_characters() {
        // Values checked against Python 3.11: urllib.parse.quote(s, safe='').
        for (plain, encoded) in [
            ("group/app", "group%2Fapp"),
            ("a-b_c.d~e", "a-b_c.d~e"),
            ("a b+c&d", "a%20b%2Bc%26d"),
            ("<script>", "%3Cscript%3E"),
            ("jürgen", "j%C3%BCrgen"),
            ("%2F", "%252F"),
            ("", ""),
        ] {
            assert_eq!(Encoded(plain).to_string(), encoded, "{plain:?}");
        }
    }

    #[test]
    fn decodes_paths_strictly() {
        assert_eq!(decode_path("group%2Fapp").unwrap(), "group/app");
        assert_eq!(decode_path("group%2fapp").unwrap(), "group/app");
        assert_eq!(decode_path("a+b").unwrap(), "a+b");
        assert_eq!(decode_path("j%C3%BCrgen").unwrap(), "jürgen");
        assert!(matches!(
            decode_path("plain/name").unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(decode_path("%"), Err(DecodeError::BadEscape));
        assert_eq!(decode_path("%2"), Err(DecodeError::BadEscape));
        assert_eq!(decode_path("%zz"), Err(DecodeError::BadEscape));
        assert_eq!(decode_path("%ff"), Err(DecodeError::NotUtf8));
        assert_eq!(decode_path("%C3"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn decodes_query_values_leniently() {
        assert_eq!(decode_query_component("a+b%21"), "a b!");
        assert_eq!(decode_query_component("100%"), "100%");
        assert_eq!(decode_query_component("%zz"), "%zz");
        assert_eq!(decode_query_component("%ff"), "\u{fffd}");
        assert_eq!(decode_query_component("true"), "true");
    }
}
