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
    let decoded = String::from_utf8(crate::base64::decode(rest.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
