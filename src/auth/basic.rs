//! The `Authorization: Basic ...` header of `/auth_token` (RFC 7617).
//!
//! The base64 decoder is written here rather than pulled in as a crate: it is a dozen
//! lines, and the only place the service decodes base64 from a client.

/// `Basic base64(user:password)` → `(user, password)`.
///
/// The scheme is matched case-insensitively (RFC 7235); the decoded text must be UTF-8
/// and is split at the first `:` (a user name cannot contain one, a password can).
/// `None` for anything else; the caller answers 401 without telling why.
pub fn parse_basic(header_value: &str) -> Option<(String, String)> {
    let value = header_value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode_base64(rest.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Standard-alphabet base64 (RFC 4648 §4). Padding may be left out (some clients do),
/// but when present it must be right; whitespace and other characters are refused.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let body = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="))
        .unwrap_or(bytes);
    if body.len() != bytes.len() && bytes.len() % 4 != 0 {
        return None;
    }
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in body {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_rfc4648_vectors() {
        for (encoded, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9vYg", "foob"),
        ] {
            assert_eq!(
                decode_base64(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded}"
            );
        }
        assert_eq!(decode_base64("+/+/").unwrap(), vec![0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn refuses_malformed_base64() {
        for bad in [
            "Z", "Zm9vY", "Zg=", "Zg===", "Zm 9v", "Zm9v\n", "Zm-_", "=Zm9", "Zm=v",
        ] {
            assert_eq!(decode_base64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_basic_headers() {
        // "alice:s3cret"
        assert_eq!(
            parse_basic("Basic YWxpY2U6czNjcmV0"),
            Some(("alice".into(), "s3cret".into()))
        );
        assert_eq!(
            parse_basic("bAsIc   YWxpY2U6czNjcmV0 "),
            Some(("alice".into(), "s3cret".into()))
        );
        // "alice:a:b" → the password keeps its colon
        assert_eq!(
            parse_basic("Basic YWxpY2U6YTpi"),
            Some(("alice".into(), "a:b".into()))
        );
        // ":" → both empty; rejecting them is the login's job
        assert_eq!(
            parse_basic("Basic Og=="),
            Some((String::new(), String::new()))
        );
        // "jürgen:pässword" in UTF-8
        assert_eq!(
            parse_basic("Basic asO8cmdlbjpww6Rzc3dvcmQ="),
            Some(("jürgen".into(), "pässword".into()))
        );
    }

    #[test]
    fn refuses_other_headers() {
        for bad in [
            "",
            "Basic",
            "Basic ",
            "Bearer YWxpY2U6czNjcmV0",
            "BasicYWxpY2U6czNjcmV0",
            "Basic YWxpY2U", // "alice": no colon
            "Basic /w==",    // 0xff: not UTF-8
            "Basic YWxp Y2U6czNjcmV0",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad:?}");
        }
    }
}
