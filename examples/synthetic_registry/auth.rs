//! Who may do what: GitLab-style token auth (`/jwt/auth` hands out HS256 JWTs carrying the
//! granted scopes, the registry checks them per request), HTTP Basic, or nothing.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use jwt_simple::prelude::*;

const SERVICE: &str = "container_registry";
const ISSUER: &str = "synthetic-gitlab-issuer";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    None,
    Token,
    Basic,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "none" => Ok(Mode::None),
            "token" => Ok(Mode::Token),
            "basic" => Ok(Mode::Basic),
            _ => Err(format!("unknown auth mode {s:?}: use none, token or basic")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::None => "none",
            Mode::Token => "token",
            Mode::Basic => "basic",
        })
    }
}

/// What a registry request needs.
#[derive(Clone, Copy)]
pub enum Need<'a> {
    /// `GET /v2/`: any valid credentials.
    Login,
    /// `registry:catalog:*`.
    Catalog,
    /// `repository:<name>:pull` (or `*`).
    Pull(&'a str),
}

impl Need<'_> {
    /// The scope a client must ask for, as in the `scope` challenge parameter.
    pub fn scope(&self) -> Option<String> {
        match self {
            Need::Login => None,
            Need::Catalog => Some("registry:catalog:*".to_string()),
            Need::Pull(name) => Some(format!("repository:{name}:pull")),
        }
    }

    /// The `detail` of Distribution's UNAUTHORIZED error.
    pub fn detail(&self) -> serde_json::Value {
        let (kind, name, action) = match self {
            Need::Login => return serde_json::Value::Null,
            Need::Catalog => ("registry", "catalog", "*"),
            Need::Pull(name) => ("repository", *name, "pull"),
        };
        serde_json::json!([{"Type": kind, "Class": "", "Name": name, "Action": action}])
    }
}

/// Why a request was refused: becomes the `WWW-Authenticate` challenge.
pub enum Denied {
    Basic,
    /// `error` is `invalid_token` or `insufficient_scope`, or absent when no token was sent.
    Bearer {
        error: Option<&'static str>,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct AccessClaims {
    access: Vec<Access>,
}

pub struct Auth {
    pub mode: Mode,
    user: String,
    /// `http://<listen>/jwt/auth`.
    realm: String,
    /// `user:password` in Base64, to compare with what clients send.
    credentials: String,
    key: HS256Key,
    verification: VerificationOptions,
    expires_in: u64,
}

impl Auth {
    pub fn new(
        mode: Mode,
        realm: String,
        user: &str,
        password: &str,
        seed: u64,
        expires_in: u64,
    ) -> Auth {
        let key_material = hmac_sha256::Hash::hash(format!("synthetic-registry {seed}").as_bytes());
        let verification = VerificationOptions {
            allowed_issuers: Some(HashSet::from([ISSUER.to_string()])),
            allowed_audiences: Some(HashSet::from([SERVICE.to_string()])),
            // Expiry must be observable in tests of token renewal: next to no leeway.
            time_tolerance: Some(Duration::from_secs(1)),
            ..VerificationOptions::default()
        };
        Auth {
            mode,
            user: user.to_string(),
            realm,
            credentials: base64(format!("{user}:{password}").as_bytes()),
            key: HS256Key::from_bytes(&key_material),
            verification,
            expires_in,
        }
    }

    /// Checks a registry request's `Authorization` header against what it needs.
    pub fn check(&self, authorization: Option<&str>, need: Need) -> Result<(), Denied> {
        match self.mode {
            Mode::None => Ok(()),
            Mode::Basic => match authorization {
                Some(value) if self.basic_matches(value) => Ok(()),
                _ => Err(Denied::Basic),
            },
            Mode::Token => {
                let token = authorization
                    .and_then(|value| strip_scheme(value, "Bearer"))
                    .ok_or(Denied::Bearer { error: None })?;
                let claims = self
                    .key
                    .verify_token::<AccessClaims>(token, Some(self.verification.clone()))
                    .map_err(|_| Denied::Bearer {
                        error: Some("invalid_token"),
                    })?;
                let granted = |kind: &str, name: &str, actions: &[&str]| {
                    claims.custom.access.iter().any(|access| {
                        access.kind == kind
                            && access.name == name
                            && access.actions.iter().any(|a| actions.contains(&a.as_str()))
                    })
                };
                let allowed = match need {
                    Need::Login => true,
                    Need::Catalog => granted("registry", "catalog", &["*"]),
                    Need::Pull(name) => granted("repository", name, &["pull", "*"]),
                };
                if allowed {
                    Ok(())
                } else {
                    Err(Denied::Bearer {
                        error: Some("insufficient_scope"),
                    })
                }
            }
        }
    }

    /// The `WWW-Authenticate` value for a refused request.
    pub fn challenge(&self, denied: &Denied, need: Need) -> String {
        match denied {
            Denied::Basic => "Basic realm=\"synthetic-registry\"".to_string(),
            Denied::Bearer { error } => {
                let mut value = format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", self.realm);
                if let Some(scope) = need.scope() {
                    value.push_str(&format!(",scope=\"{scope}\""));
                }
                if let Some(error) = error {
                    value.push_str(&format!(",error=\"{error}\""));
                }
                value
            }
        }
    }

    /// The token endpoint: `Err(())` for wrong credentials. Like GitLab, no credentials
    /// give a token without access, and scopes that are not granted are silently dropped:
    /// `registry:catalog:*` needs actions exactly `*`; repository scopes need an existing
    /// repository and keep the actions among pull, push, delete and `*`.
    pub fn issue(
        &self,
        authorization: Option<&str>,
        scopes: &[&str],
        exists: impl Fn(&str) -> bool,
    ) -> Result<serde_json::Value, ()> {
        let authenticated = match authorization {
            None => false,
            Some(value) if self.basic_matches(value) => true,
            Some(_) => return Err(()),
        };
        let access = if authenticated {
            scopes
                .iter()
                .filter_map(|scope| grant(scope, &exists))
                .collect()
        } else {
            Vec::new()
        };
        let claims = Claims::with_custom_claims(
            AccessClaims { access },
            Duration::from_secs(self.expires_in),
        )
        .with_issuer(ISSUER)
        .with_audience(SERVICE)
        .with_subject(if authenticated {
            self.user.as_str()
        } else {
            ""
        });
        let token = self
            .key
            .authenticate(claims)
            .expect("HS256 signing cannot fail");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(serde_json::json!({
            "token": token,
            "expires_in": self.expires_in,
            "issued_at": rfc3339(now),
        }))
    }

    fn basic_matches(&self, authorization: &str) -> bool {
        strip_scheme(authorization, "Basic").is_some_and(|value| value == self.credentials)
    }
}

/// What GitLab grants our (admin) user for one requested scope.
fn grant(scope: &str, exists: &impl Fn(&str) -> bool) -> Option<Access> {
    let (kind_and_name, actions) = scope.rsplit_once(':')?;
    let (kind, name) = kind_and_name.split_once(':')?;
    let actions: Vec<String> = match kind {
        "registry" if name == "catalog" && actions == "*" => vec!["*".to_string()],
        "repository" if exists(name) => actions
            .split(',')
            .filter(|a| ["pull", "push", "delete", "*"].contains(a))
            .map(str::to_string)
            .collect(),
        _ => return None,
    };
    (!actions.is_empty()).then(|| Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions,
    })
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.trim().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// UTC seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400) as u32;
    let rest = seconds % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        gitlab_registry_usage_rest::history::date(days),
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads() {
        assert_eq!(super::base64(b"demo:demo-token"), "ZGVtbzpkZW1vLXRva2Vu");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"a"), "YQ==");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
