//! gitlab-registry-usage-rest: scan a container registry's disk usage and serve it as a
//! HAL+JSON API behind LDAP (or htpasswd) login and JSON Web Tokens.
//!
//! The data flows one way: `registry` (HTTP to the registry) → `scan` (one pass over it)
//! → `snapshot` (immutable result) → `usage` (the index derived from it) → `current`
//! (both swapped in atomically) → `http` (read-only views). `refresh` is the only writer of the snapshot. See
//! ARCHITECTURE.md for the code map and the invariants.

pub mod auth;
pub mod base64;
pub mod cidr;
pub mod cleanup;
pub mod config;
pub mod current;
pub mod digest;
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod http;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod percent;
pub mod refresh;
pub mod registry;
pub mod replica;
pub mod rfc3339;
pub mod scan;
pub mod snapshot;
pub mod usage;
pub mod watch;
