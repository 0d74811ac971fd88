//! Tokens that were verified recently, so that a client sending the same token with
//! every request pays for the HS256 check once rather than each time.
//!
//! Checking a token (base64, HMAC, JSON claims) costs about as much CPU as tiny_http
//! spends on the rest of a small request; without this, every API call would be twice as
//! expensive as it needs to be. An entry is kept only until the token's own `exp` (never
//! longer than [`MAX_AGE`]), so a cached token is never accepted after the full check
//! would have refused it for expiry. Keys are the whole `Authorization` values, compared
//! exactly.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};

/// Upper bound of how long a verified token is trusted without a new check.
const MAX_AGE: Duration = Duration::from_secs(600);
/// Entries kept at most (about 400 bytes each); when full, expired entries go, and if
/// that is not enough, all of them.
const MAX_ENTRIES: usize = 4096;

/// `Authorization` header value → until when (unix seconds) it is known to be good.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<Box<str>, u64>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenCache {
    /// True when `authorization` was verified and is still within its lifetime.
    pub fn is_known_good(&self, authorization: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(authorization)
            .is_some_and(|&until| now_unix() < until)
    }

    /// Remembers `authorization`, which `Tokens::verify` has just accepted.
    pub fn remember(&self, authorization: &str) {
        let Some(exp) = expiry(authorization) else {
            return;
        };
        let now = now_unix();
        let until = exp.min(now.saturating_add(MAX_AGE.as_secs()));
        if until <= now {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, &mut until| now < until);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(authorization.into(), until);
    }
}

/// The `exp` claim of `Bearer <header>.<payload>.<signature>`, read without checking
/// anything (the caller has verified the token already).
fn expiry(authorization: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<f64>,
    }
    let token = authorization.trim().split_once(' ')?.1.trim();
    let payload = token.split('.').nth(1)?;
    let json = Base64UrlSafeNoPadding::decode_to_vec(payload, None).ok()?;
    let exp = serde_json::from_slice::<Claims>(&json).ok()?.exp?;
    (exp.is_finite() && exp > 0.0).then_some(exp as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::reexports::ct_codecs::Encoder;

    fn header(claims: &str) -> String {
        let encode = |s: &str| Base64UrlSafeNoPadding::encode_to_string(s.as_bytes()).unwrap();
        format!(
            "Bearer {}.{}.sig",
            encode("{\"alg\":\"HS256\"}"),
            encode(claims)
        )
    }

    #[test]
    fn entries_last_until_exp_at_most() {
        let cache = TokenCache::default();
        let now = now_unix();
        let good = header(&format!("{{\"exp\":{},\"identity\":\"a\"}}", now + 3600));
        let expired = header(&format!("{{\"exp\":{}}}", now - 1));
        let no_exp = header("{\"identity\":\"a\"}");
        for h in [&good, &expired, &no_exp] {
            assert!(!cache.is_known_good(h));
            cache.remember(h);
        }
        assert!(cache.is_known_good(&good));
        assert!(!cache.is_known_good(&expired));
        assert!(!cache.is_known_good(&no_exp));
        assert!(!cache.is_known_good(&format!("{good}x")));
        let until = cache.entries.read().unwrap()[good.as_str()];
        assert!(until <= now + MAX_AGE.as_secs() + 1);
    }

    #[test]
    fn expiry_of_odd_input_is_none() {
        for h in [
            "",
            "Bearer",
            "Bearer a",
            "Bearer a.!!.c",
            "Bearer a.bnVsbA.c",
        ] {
            assert_eq!(expiry(h), None, "{h}");
        }
    }
}
