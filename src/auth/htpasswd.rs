//! Login against an Apache-style htpasswd file, for sites without LDAP.
//!
//! Only bcrypt entries (`htpasswd -B`) are accepted: the other formats htpasswd can write
//! (MD5-crypt, SHA-1, crypt, plain text) are fast to brute-force, so a file containing
//! one is refused at start-up. The file is read once; restart to pick up changes.

use std::collections::HashMap;
use std::path::Path;

use super::LoginError;
use crate::config::ConfigError;

/// bcrypt costs `htpasswd -B -C` accepts. Higher costs are refused because every login
/// (and every failed guess) would then take seconds of CPU.
const COSTS: std::ops::RangeInclusive<u32> = 4..=17;

/// Salt and hash of the entry checked for unknown users. Any well-formed value does:
/// verifying a password against it runs the whole key derivation at the entry's cost,
/// and its outcome is ignored. Being fixed, nothing is computed at start-up (hashing a
/// dummy password at cost 12 delayed listening by 455 ms).
const DUMMY_SALT_AND_HASH: &str = "bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx.";

/// The users and bcrypt hashes of an htpasswd file.
pub struct HtpasswdFile {
    pub(crate) users: HashMap<String, String>,
    /// Checked for unknown users, so that a wrong user name costs as much time as a
    /// wrong password (the response time must not tell which user names exist).
    pub(crate) dummy_hash: String,
}

impl HtpasswdFile {
    pub fn load(path: &Path) -> Result<HtpasswdFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("[htpasswd] file = {}: {e}", path.display())))?;
        HtpasswdFile::parse(&text)
            .map_err(|e| ConfigError(format!("[htpasswd] file = {}: {e}", path.display())))
    }

    /// Errors name the line, never the hash (the message goes to the log).
    pub(crate) fn parse(text: &str) -> Result<HtpasswdFile, String> {
        let mut users = HashMap::new();
        let mut cost_counts: HashMap<u32, usize> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {line_no}: expected `user:hash`"))?;
            if user.is_empty() {
                return Err(format!("line {line_no}: empty user name"));
            }
            let cost = bcrypt_cost(hash).ok_or_else(|| {
                format!(
                    "line {line_no} (user {user:?}): not a bcrypt hash ($2y$/$2b$/$2a$); \
                     only bcrypt is accepted: create the entry with `htpasswd -B`"
                )
            })?;
            if !COSTS.contains(&cost) {
                return Err(format!(
                    "line {line_no} (user {user:?}): bcrypt cost {cost} is outside {}..={}",
                    COSTS.start(),
                    COSTS.end()
                ));
            }
            if users.insert(user.to_string(), hash.to_string()).is_some() {
                return Err(format!("line {line_no}: user {user:?} is listed twice"));
            }
            *cost_counts.entry(cost).or_default() += 1;
        }
        // The dummy costs what most real entries cost (htpasswd -B defaults to 5).
        let cost = cost_counts
            .into_iter()
            .max_by_key(|&(cost, n)| (n, cost))
            .map_or(5, |(c, _)| c);
        let dummy_hash = format!("$2y${cost:02}${DUMMY_SALT_AND_HASH}");
        Ok(HtpasswdFile { users, dummy_hash })
    }

    /// Returns the user name as the file writes it (names are matched exactly, so that
    /// is `user`).
    pub fn login(&self, user: &str, password: &str) -> Result<String, LoginError> {
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        // The hashes were checked at load, so an error here means a bug, not bad input.
        let matches = bcrypt::verify(password, hash)
            .map_err(|e| LoginError::Unavailable(format!("bcrypt verification failed: {e}")))?;
        match (known, matches) {
            (true, true) => Ok(user.to_string()),
            (true, false) => Err(LoginError::BadCredentials("wrong password".into())),
            (false, _) => Err(LoginError::BadCredentials("unknown user".into())),
        }
    }
}

/// The cost of a well-formed bcrypt hash `$2y$NN$<53 characters of bcrypt base64>`.
pub(crate) fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = ["$2y$", "$2b$", "$2a$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p))?;
    let (cost, salt_and_hash) = rest.split_once('$')?;
    let valid_body = salt_and_hash.len() == 53
        && salt_and_hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if cost.len() != 2 || !valid_body {
        return None;
    }
    cost.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // `htpasswd -nbB -C 4 alice 'alice pw'`
    const ALICE: &str = "alice:$2y$04$9mXlB8KRULUmFzIBPNP/uuIBtgVkQD6uHBxYKIGkDSQOxbH2JdQPe";

    fn file(text: &str) -> Result<HtpasswdFile, String> {
        HtpasswdFile::parse(text)
    }

    #[test]
    fn right_wrong_and_unknown() {
        let f = file(&format!("# users\n\n{ALICE}\r\n")).unwrap();
        assert_eq!(f.login("alice", "alice pw"), Ok("alice".into()));
        assert!(f.login("ALICE", "alice pw").is_err(), "names match exactly");
        assert!(matches!(
            f.login("alice", "alice pX"),
            Err(LoginError::BadCredentials(_))
        ));
        assert!(matches!(
            f.login("mallory", "alice pw"),
            Err(LoginError::BadCredentials(_))
        ));
        assert_eq!(
            bcrypt_cost(&f.dummy_hash),
            Some(4),
            "dummy costs what alice costs"
        );
        // Well-formed, so bcrypt really runs on it (a malformed hash fails at once).
        assert_eq!(bcrypt::verify("alice pw", &f.dummy_hash).ok(), Some(false));
        // Most entries decide the cost; a tie goes to the higher one.
        let carol = "carol:$2y$06$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx.";
        let dave = "dave:$2y$06$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx.";
        let f = file(&format!("{ALICE}\n{carol}\n{dave}\n")).unwrap();
        assert_eq!(bcrypt_cost(&f.dummy_hash), Some(6));
        assert_eq!(bcrypt::verify("x", &f.dummy_hash).ok(), Some(false));
        let f = file(&format!("{ALICE}\n{carol}\n")).unwrap();
        assert_eq!(bcrypt_cost(&f.dummy_hash), Some(6));
    }

    #[test]
    fn refuses_weak_or_broken_entries_naming_the_line() {
        for (text, expected) in [
            (
                "alice:$apr1$xyz$0123456789abcdef012345",
                "line 2 (user \"alice\"): not a bcrypt hash",
            ),
            (
                "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
                "line 2 (user \"alice\"): not a bcrypt hash",
            ),
            ("alice:plain", "line 2 (user \"alice\"): not a bcrypt hash"),
            ("alice", "line 2: expected `user:hash`"),
            (
                ":$2y$04$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx.",
                "line 2: empty user name",
            ),
            (ALICE, "line 2: user \"alice\" is listed twice"),
            (
                "carol:$2y$31$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx.",
                "line 2 (user \"carol\"): bcrypt cost 31",
            ),
        ] {
            let err = file(&format!("{ALICE}\n{text}\n")).err().unwrap();
            assert!(err.starts_with(expected), "{err}");
            assert!(!err.contains("$apr1$") && !err.contains("{SHA}"), "{err}");
        }
    }

    #[test]
    fn recognises_bcrypt_costs() {
        assert_eq!(
            bcrypt_cost("$2b$10$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx."),
            Some(10)
        );
        assert_eq!(
            bcrypt_cost("$2x$10$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx."),
            None
        );
        assert_eq!(bcrypt_cost("$2y$10$short"), None);
        assert_eq!(
            bcrypt_cost("$2y$1$bLl2IMeYFKNVZRIKCdeHle3cCwmbUcdFswA2Zob6MCTQYO8wStyx."),
            None
        );
    }
}
