//! PATCHED (gitlab-registry-usage-rest): what one connection, and one client, may hold.
//!
//! Upstream sets no socket timeouts, reads a request body only when the handler asks, and
//! gives every accepted connection a thread: one client could keep threads, descriptors
//! and memory for as long as it liked. [`Limits`] is given to
//! `Server::from_listener_with_limits`; the accept thread counts connections against it
//! (in all and per client), every socket gets its timeouts before anything is read from it
//! (the TLS handshake included), and the reader of a connection enforces a deadline for the
//! whole request head.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bounds of a server; see `Server::from_listener_with_limits`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A complete request head, and its body of up to `max_body` bytes, must arrive within
    /// this, counted from its first byte or from the end of the previous response; then
    /// 408 and close. A new connection that sends nothing for this long is closed.
    pub request_header_timeout: Option<Duration>,
    /// How long a connection may stay idle between a response and the next request.
    pub keepalive_timeout: Option<Duration>,
    /// A write to the client that makes no progress for this long ends the connection; it
    /// is also the grace period after which a response must average `min_send_rate`.
    pub send_timeout: Option<Duration>,
    /// Bytes per second a response must have averaged once `send_timeout` has passed
    /// (0: no minimum), so that a client reading a byte now and then cannot hold it.
    pub min_send_rate: u64,
    /// Connections served at once; a connection past it is closed as soon as accepted.
    pub max_connections: usize,
    /// Connections served at once for one key of `client_key`; past it, closed at once.
    pub max_connections_per_client: usize,
    /// Largest request body read: a larger `Content-Length` (or chunked body) is answered
    /// 413 and the connection closed, without reading the body.
    pub max_body: usize,
    /// The key a peer address is counted under (for example one per IPv6 /64).
    pub client_key: fn(IpAddr) -> IpAddr,
    /// Told about what costs connections (accept errors, threads that cannot start,
    /// refused connections): `report(what, detail, suppressed)`, at most once a second
    /// for each kind, with the number of the same events not reported since.
    pub report: fn(&str, &dyn Display, u64),
}

fn same_address(ip: IpAddr) -> IpAddr {
    ip
}

fn report_nothing(_: &str, _: &dyn Display, _: u64) {}

impl Limits {
    /// Upstream's behaviour for `Server::new`/`from_listener`: no timeouts and no
    /// connection limits; bodies up to 1 MiB are still read before the request is handed
    /// over (requests are read one at a time on each connection).
    pub fn unlimited() -> Limits {
        Limits {
            request_header_timeout: None,
            keepalive_timeout: None,
            send_timeout: None,
            min_send_rate: 0,
            max_connections: usize::MAX,
            max_connections_per_client: usize::MAX,
            max_body: 1024 * 1024,
            client_key: same_address,
            report: report_nothing,
        }
    }
}

/// Why a new connection was closed at once.
pub(crate) enum Refusal {
    Total(usize),
    PerClient(IpAddr, usize),
}

impl Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Total(n) => write!(f, "{n} connections are open (max_connections)"),
            Refusal::PerClient(ip, n) => write!(
                f,
                "{ip} has {n} connections open (max_connections_per_client)"
            ),
        }
    }
}

/// The connections open, in all and per client key.
pub(crate) struct Connections {
    limits: Arc<Limits>,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it (when its task ends) frees its place.
pub(crate) struct ConnectionSlot {
    owner: Arc<Connections>,
    key: Option<IpAddr>,
}

impl Connections {
    pub(crate) fn new(limits: Arc<Limits>) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    pub(crate) fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<ConnectionSlot, Refusal> {
        let key = peer.map(self.limits.client_key);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0 >= self.limits.max_connections {
            return Err(Refusal::Total(open.0));
        }
        if let Some(key) = key {
            let n = open.1.entry(key).or_insert(0);
            if *n >= self.limits.max_connections_per_client {
                return Err(Refusal::PerClient(key, *n));
            }
            *n += 1;
        }
        open.0 += 1;
        Ok(ConnectionSlot {
            owner: Arc::clone(self),
            key,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 -= 1;
        if let Some(key) = self.key {
            if let Some(n) = open.1.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&key);
                }
            }
        }
    }
}

/// Reports one kind of event through `Limits::report`, at most once a second.
pub(crate) struct Reporter {
    what: &'static str,
    report: fn(&str, &dyn Display, u64),
    last: Option<Instant>,
    suppressed: u64,
}

impl Reporter {
    pub(crate) fn new(what: &'static str, limits: &Limits) -> Reporter {
        Reporter {
            what,
            report: limits.report,
            last: None,
            suppressed: 0,
        }
    }

    pub(crate) fn event(&mut self, detail: &dyn Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        (self.report)(self.what, detail, self.suppressed);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// When the current read phase of a connection ends (waiting for a request, reading its
/// head and body); shared by the `ClientConnection` that sets it and the socket reader
/// that shrinks its read timeout to what is left before each read.
#[derive(Default)]
pub(crate) struct Deadline(Mutex<Option<Instant>>);

impl Deadline {
    pub(crate) fn set(&self, after: Option<Duration>) {
        let at = after.and_then(|d| Instant::now().checked_add(d));
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub(crate) fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a write by a handler thread (`Request::respond`) may make no progress before
/// it fails and the connection is closed: the socket's send timeout. A client that reads
/// what it asked for never makes a small response wait (it fits in the socket's buffer);
/// one that pipelines requests and reads nothing must not hold a handler thread. Writes
/// from a background writer (`respond_in_background`) wait `send_timeout`.
pub(crate) const HANDLER_WRITE_STALL: Duration = Duration::from_millis(10);

/// A read or write that ran into a timeout: Linux reports an expired `SO_RCVTIMEO` or
/// `SO_SNDTIMEO` as `WouldBlock` (EAGAIN), not `TimedOut`.
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}
