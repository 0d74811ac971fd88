//! The JSON Web Tokens handed out by `/auth_token` and required by every other route.
//!
//! Tokens look like Flask-JWT-Extended's (HS256; `iat`, `nbf`, `jti`, `exp`, `identity`,
//! `fresh`, `type`, plus `sub` as 4.x writes it), so tokens minted by the original
//! service stay valid across the switch as long as `secret_key` stays the same. The
//! original's holes are closed: a token must carry `exp`, and only HS256 is accepted.

use jwt_simple::prelude::{
    Duration as JwtDuration, HS256Key, JWTClaims, MACLike, VerificationOptions,
};
use jwt_simple::reexports::rand::Rng;
use jwt_simple::JWTError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{check_secret, ConfigError, Jwt};

/// Clock difference between this host and whoever minted the token (e.g. the old
/// service on another machine). jwt-simple's default of 15 minutes would keep expired
/// tokens alive that long.
const TIME_TOLERANCE: JwtDuration = JwtDuration::from_secs(30);
/// Our tokens are about 350 bytes; anything much longer is not ours and is refused before
/// any parsing.
const MAX_TOKEN_LENGTH: usize = 4096;

/// Why a token was refused. `status` is 401 for all of them (with
/// `WWW-Authenticate: Bearer error="invalid_token"`, added by the HTTP layer); `msg` keeps
/// the original service's texts, which clients may match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenError {
    pub status: u16,
    pub msg: &'static str,
}

const fn refused(msg: &'static str) -> TokenError {
    TokenError { status: 401, msg }
}

pub const MISSING_HEADER: TokenError = refused("Missing Authorization Header");
pub const BAD_HEADER: TokenError =
    refused("Bad Authorization header. Expected value 'Bearer <JWT>'");
pub const NOT_ENOUGH_SEGMENTS: TokenError = refused("Not enough segments");
pub const BAD_SIGNATURE: TokenError = refused("Signature verification failed");
/// PyJWT's text for a token whose `alg` is not the one configured (HS512, `none`, RS256
/// with the secret as a "public key", ...).
pub const WRONG_ALGORITHM: TokenError = refused("The specified alg value is not allowed");
pub const EXPIRED: TokenError = refused("Token has expired");
pub const NOT_YET_VALID: TokenError = refused("The token is not yet valid (nbf)");
pub const ISSUED_IN_FUTURE: TokenError = refused("The token is not yet valid (iat)");
pub const MISSING_EXP: TokenError = refused("Token is missing the \"exp\" claim");
pub const MISSING_IDENTITY: TokenError = refused("Missing claim: identity");
pub const NOT_ACCESS_TOKEN: TokenError = refused("Only access tokens are allowed");
pub const TOO_LONG: TokenError = refused("Token is too long");
pub const MALFORMED: TokenError = refused("Malformed token");

/// Flask-JWT-Extended's own claims. Values are kept as JSON so that a token with, say, a
/// numeric identity is refused with a clear message rather than a parse error.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FlaskClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<Value>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    token_type: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fresh: Option<Value>,
}

/// Mints and checks tokens; one instance shared by all HTTP workers.
pub struct Tokens {
    key: HS256Key,
    lifetime: JwtDuration,
}

impl Tokens {
    /// Refuses the placeholder and weak secrets (the original accepted 32 zeros).
    pub fn new(jwt: &Jwt) -> Result<Tokens, ConfigError> {
        check_secret(&jwt.secret_key)?;
        Ok(Tokens {
            key: HS256Key::from_bytes(jwt.secret_key.as_bytes()),
            lifetime: JwtDuration::from_secs(jwt.auth_token_expires.as_secs()),
        })
    }

    /// A token for `user`, valid for `[jwt] auth_token_expires`.
    pub fn mint(&self, user: &str) -> String {
        let custom = FlaskClaims {
            identity: Some(Value::String(user.to_string())),
            token_type: Some(Value::String("access".into())),
            fresh: Some(Value::Bool(false)),
        };
        let claims = jwt_simple::prelude::Claims::with_custom_claims(custom, self.lifetime)
            .with_subject(user)
            .with_jwt_id(random_uuid());
        // Serialising strings and numbers and an HMAC cannot fail.
        self.key
            .authenticate(claims)
            .expect("minting an HS256 token")
    }

    /// The identity in a valid `Authorization: Bearer <jwt>` header.
    pub fn verify(&self, authorization: Option<&str>) -> Result<String, TokenError> {
        let header = authorization.map(str::trim).unwrap_or("");
        if header.is_empty() {
            return Err(MISSING_HEADER);
        }
        let (scheme, token) = header.split_once(' ').ok_or(BAD_HEADER)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer")
            || token.is_empty()
            || token.contains(char::is_whitespace)
        {
            return Err(BAD_HEADER);
        }
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(TOO_LONG);
        }
        match token.split('.').count() {
            0..=2 => return Err(NOT_ENOUGH_SEGMENTS),
            3 => {}
            _ => return Err(MALFORMED),
        }
        let options = VerificationOptions {
            time_tolerance: Some(TIME_TOLERANCE),
            max_token_length: Some(MAX_TOKEN_LENGTH),
            ..VerificationOptions::default()
        };
        let claims: JWTClaims<FlaskClaims> = self
            .key
            .verify_token(token, Some(options))
            .map_err(|e| token_error(&e))?;
        if claims.expires_at.is_none() {
            return Err(MISSING_EXP);
        }
        match &claims.custom.token_type {
            None => {}
            Some(Value::String(t)) if t == "access" => {}
            Some(_) => return Err(NOT_ACCESS_TOKEN),
        }
        // 3.x writes `identity`, 4.x `sub`; ours carry both.
        let identity = match claims.custom.identity {
            Some(Value::String(identity)) => Some(identity),
            _ => claims.subject,
        };
        match identity {
            Some(identity) if !identity.is_empty() => Ok(identity),
            _ => Err(MISSING_IDENTITY),
        }
    }
}

/// jwt-simple's errors → the messages of the original (PyJWT / Flask-JWT-Extended).
fn token_error(error: &jwt_simple::Error) -> TokenError {
    match error.downcast_ref::<JWTError>() {
        Some(JWTError::AlgorithmMismatch) => WRONG_ALGORITHM,
        Some(JWTError::InvalidAuthenticationTag | JWTError::InvalidSignature) => BAD_SIGNATURE,
        Some(JWTError::TokenHasExpired) => EXPIRED,
        Some(JWTError::TokenNotValidYet) => NOT_YET_VALID,
        Some(JWTError::ClockDrift) => ISSUED_IN_FUTURE,
        Some(JWTError::TokenTooLong) => TOO_LONG,
        // Bad base64 or JSON, unknown `crit` headers, a `typ` other than JWT, ...
        _ => MALFORMED,
    }
}

/// A random (version 4) UUID, the `jti` Flask-JWT-Extended writes.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    jwt_simple::reexports::rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tokens() -> Tokens {
        Tokens::new(&Jwt {
            auth_token_expires: Duration::from_secs(3600),
            secret_key: "Zq3vN8xK1pL7mW2rT9yB4cF6hJ0dS5gA".into(),
        })
        .unwrap()
    }

    #[test]
    fn header_errors_use_the_original_texts() {
        let t = tokens();
        assert_eq!(t.verify(None), Err(MISSING_HEADER));
        assert_eq!(t.verify(Some("  ")), Err(MISSING_HEADER));
        assert_eq!(t.verify(Some("Bearer")), Err(BAD_HEADER));
        assert_eq!(t.verify(Some("Basic YWxpY2U6cHc=")), Err(BAD_HEADER));
        assert_eq!(t.verify(Some("Bearer a b")), Err(BAD_HEADER));
        assert_eq!(t.verify(Some("Bearer abc")), Err(NOT_ENOUGH_SEGMENTS));
        assert_eq!(t.verify(Some("Bearer a.b")), Err(NOT_ENOUGH_SEGMENTS));
        assert_eq!(t.verify(Some("Bearer a.b.c.d")), Err(MALFORMED));
        assert_eq!(t.verify(Some("Bearer !!.??.**")), Err(MALFORMED));
        assert_eq!(
            t.verify(Some(&format!("Bearer {}", "a.".repeat(3000)))),
            Err(TOO_LONG)
        );
        assert!([MISSING_HEADER, BAD_HEADER, MALFORMED, EXPIRED]
            .iter()
            .all(|e| e.status == 401));
    }

    #[test]
    fn round_trip_with_any_case_scheme() {
        let t = tokens();
        let token = t.mint("alice");
        assert_eq!(
            t.verify(Some(&format!("Bearer {token}"))),
            Ok("alice".into())
        );
        assert_eq!(
            t.verify(Some(&format!("bearer  {token} "))),
            Ok("alice".into())
        );
    }

    #[test]
    fn jti_is_a_random_uuid() {
        let (a, b) = (random_uuid(), random_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
