//! `WWW-Authenticate` parsing (RFC 7235 auth-params), for the registry's challenges:
//! `Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",scope="a,b"`.
//! Quoted values may contain commas and backslash escapes, and one header may carry
//! several challenges.

/// One challenge: its scheme (lower-cased) and parameters (names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parse a header value into its challenges; malformed tails are dropped, never a panic.
pub fn parse(header: &str) -> Vec<Challenge> {
    let s = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t' || s[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < s.len() && is_tchar(s[*i]) {
            *i += 1;
        }
        String::from_utf8_lossy(&s[start..*i]).into_owned()
    };
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            break; // not a token: stop, keep what we have
        }
        // Is this `name=value` (a param of the current challenge) or a new scheme?
        let mut j = i;
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j < s.len() && s[j] == b'=' && !out.is_empty() && !(j + 1 < s.len() && s[j + 1] == b'=')
        {
            i = j + 1;
            while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                i += 1;
            }
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = Vec::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    v.push(s[i]);
                    i += 1;
                }
                i += 1; // closing quote (or end)
                String::from_utf8_lossy(&v).into_owned()
            } else {
                token(&mut i)
            };
            out.last_mut()
                .expect("checked non-empty")
                .params
                .push((word.to_ascii_lowercase(), value));
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_bearer_challenge() {
        let c = parse(
            r#"Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",scope="repository:g/p:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            c[0].param("realm"),
            Some("https://gitlab.example.com/jwt/auth")
        );
        assert_eq!(c[0].param("service"), Some("container_registry"));
        assert_eq!(c[0].param("scope"), Some("repository:g/p:pull,push"));
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn basic_and_spacing_and_escapes() {
        let c = parse(r#"Basic realm = "a \"quoted\" realm" , charset=UTF-8"#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(c[0].param("charset"), Some("UTF-8"));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let c = parse(r#"Basic realm="x", Bearer realm="https://t/jwt",service=reg"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("reg"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for g in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer ,,,",
            "Bearer realm=",
            "é",
        ] {
            let _ = parse(g);
        }
        assert_eq!(parse("Bearer")[0].scheme, "bearer");
    }
}
