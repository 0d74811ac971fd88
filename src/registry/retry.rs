//! How hard the client tries: attempts and backoff per request, `Retry-After`, and the
//! circuit breaker that stops a scan when the registry has gone away.
//!
//! The breaker counts requests, not attempts: a request counts once it has given up
//! on a connection failure after all its attempts (so a registry that restarts within
//! the backoff never trips it), and any HTTP answer from anyone resets the count.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::Error;

/// The retry and breaker settings of a `Client`. The service uses `Policy::STANDARD`;
/// tests pass their own so that backoffs take milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts per request (first try included) on a connection failure, a timeout,
    /// 5xx or 429.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further retry.
    pub first_delay: Duration,
    /// Longest `Retry-After` honoured; a 429 asking for longer fails at once.
    pub max_retry_after: Duration,
    /// Time to set up a connection (TCP and TLS). A timeout then is a connection
    /// failure; a timeout later is not. Only effective below `request_timeout`.
    pub connect_timeout: Duration,
    /// Requests in a row that got no connection, each after all its attempts, before
    /// the scan stops (the circuit breaker).
    pub breaker: u32,
}

impl Policy {
    /// 4 attempts with 0.25 + 0.5 + 1 s between them; `Retry-After` up to a minute;
    /// 10 s to connect; the scan stops after 5 requests in a row could not connect.
    pub const STANDARD: Policy = Policy {
        attempts: 4,
        first_delay: Duration::from_millis(250),
        max_retry_after: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
        breaker: 5,
    };
}

/// Consecutive requests without a connection, across the scan's workers.
pub(super) struct Breaker {
    limit: u32,
    failures: AtomicU32,
    last: Mutex<Option<Error>>,
}

impl Breaker {
    pub(super) fn new(limit: u32) -> Breaker {
        Breaker {
            limit: limit.max(1),
            failures: AtomicU32::new(0),
            last: Mutex::new(None),
        }
    }

    /// Close the breaker (the start of a scan).
    pub(super) fn reset(&self) {
        self.failures.store(0, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The registry answered (any status): it is there.
    pub(super) fn answered(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A request gave up on `error` (a connection failure) after all its attempts.
    pub(super) fn failed(&self, error: &Error) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// `Some(Error::Unreachable)` once `limit` requests in a row failed.
    pub(super) fn open(&self) -> Option<Error> {
        let failures = self.failures.load(Ordering::Relaxed);
        if failures < self.limit {
            return None;
        }
        let last = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Some(Error::Unreachable {
            failures,
            last: Box::new(last),
        })
    }
}

/// What to do after one attempt's HTTP answer with this status.
pub(super) enum AfterAnswer {
    /// Use the answer (success, or a status that retrying cannot change).
    Done,
    /// Try again after this long.
    RetryAfter(Duration),
    /// 429 asking to wait longer than `max_retry_after`.
    WaitTooLong(Duration),
}

/// 5xx → backoff; 429 → its `Retry-After` (seconds) when given, else backoff.
pub(super) fn after_answer(
    policy: &Policy,
    status: u16,
    retry_after: Option<&str>,
    backoff: Duration,
) -> AfterAnswer {
    if status == 429 {
        return match retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(secs) if Duration::from_secs(secs) > policy.max_retry_after => {
                AfterAnswer::WaitTooLong(Duration::from_secs(secs))
            }
            Some(secs) => AfterAnswer::RetryAfter(Duration::from_secs(secs)),
            None => AfterAnswer::RetryAfter(backoff),
        };
    }
    if (500..600).contains(&status) {
        return AfterAnswer::RetryAfter(backoff);
    }
    AfterAnswer::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_trips_after_the_limit_and_an_answer_resets_it() {
        let b = Breaker::new(3);
        let e = Error::Connection {
            url: "http://r/v2/a/tags/list".into(),
            detail: "Connection refused".into(),
        };
        b.failed(&e);
        b.failed(&e);
        b.answered();
        b.failed(&e);
        b.failed(&e);
        assert_eq!(b.open(), None, "an answer in between resets the count");
        b.failed(&e);
        match b.open() {
            Some(Error::Unreachable { failures: 3, last }) => assert_eq!(*last, e),
            other => panic!("{other:?}"),
        }
        b.reset();
        assert_eq!(b.open(), None);
    }

    #[test]
    fn what_an_answer_leads_to() {
        let p = Policy::STANDARD;
        let backoff = Duration::from_millis(7);
        let retry = |status, ra| match after_answer(&p, status, ra, backoff) {
            AfterAnswer::Done => None,
            AfterAnswer::RetryAfter(d) => Some(Ok(d)),
            AfterAnswer::WaitTooLong(d) => Some(Err(d)),
        };
        assert_eq!(retry(200, None), None);
        assert_eq!(retry(404, None), None);
        assert_eq!(retry(401, None), None);
        assert_eq!(retry(400, None), None);
        assert_eq!(retry(503, None), Some(Ok(backoff)));
        assert_eq!(retry(500, Some("30")), Some(Ok(backoff)));
        assert_eq!(retry(429, None), Some(Ok(backoff)));
        assert_eq!(retry(429, Some("date-form")), Some(Ok(backoff)));
        assert_eq!(retry(429, Some("2")), Some(Ok(Duration::from_secs(2))));
        assert_eq!(
            retry(429, Some("3600")),
            Some(Err(Duration::from_secs(3600)))
        );
    }
}
