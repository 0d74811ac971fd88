//! The timed loop: the only writer of the current snapshot.
//!
//! Scans run start to start every `refresh_interval`. A scan that fails as a whole keeps
//! the previous snapshot, logs one line, and is retried with a growing delay (never
//! longer than the interval). A panic inside a scan is caught and treated the same way:
//! the loop never dies. After each successful scan the snapshot is swapped in and, when
//! `snapshot_file` is set, written to disk atomically; its numbers become the day's point
//! of the usage history, and `/metrics` learns how the scan went.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::current::Current;
use crate::history::History;
use crate::registry::Client;
use crate::scan;
use crate::snapshot::{self, Shared, Snapshot};

/// What the loop needs; built by `main` from the config.
pub struct Refresh {
    pub client: Client,
    pub shared: Arc<Shared>,
    pub interval: Duration,
    pub concurrency: usize,
    pub snapshot_file: Option<PathBuf>,
    /// Told about every scan (its duration, the client's request counters).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Gets the numbers of every successful scan as the point of its day.
    pub history: Arc<crate::history::History>,
}

/// First delay after a failed scan; doubled per further failure, capped at the interval.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// Read the snapshot file, so the service can serve at once, after removing the temporary
/// files a killed service left beside it; a missing, corrupt or foreign file is logged
/// and ignored. It needs no usage history, so start-up reads the snapshot file and the
/// history file at once; [`adopt_snapshot`] then serves what was read.
pub fn read_snapshot_file(path: &std::path::Path) -> Option<Snapshot> {
    for (file, outcome) in snapshot::remove_stale_temporaries(path) {
        match outcome {
            Ok(()) => crate::log!(
                info,
                "removed a temporary snapshot file left by a service that stopped while writing it",
                file = file.display()
            ),
            Err(e) => crate::log!(
                warn,
                "cannot remove a temporary snapshot file left by a service that stopped while writing it",
                file = file.display(),
                error = e
            ),
        }
    }
    match snapshot::load(path) {
        Ok(s) => {
            crate::log!(
                info,
                "loaded snapshot file",
                file = path.display(),
                repositories = s.totals.repository_count,
                tags = s.totals.tag_count,
                timestamp = s.timestamp
            );
            Some(s)
        }
        Err(snapshot::LoadError::NotFound(_)) => {
            crate::log!(
                info,
                "no snapshot file yet; serving after the first scan",
                file = path.display()
            );
            None
        }
        Err(e) => {
            crate::log!(warn, "ignoring the snapshot file", error = e);
            crate::memory::release();
            None
        }
    }
}

/// Serve a snapshot read by [`read_snapshot_file`]: its index (with `growth_30d` from
/// `history`), then the swap. Its point in `history` is the refresh thread's first
/// task ([`record_served`]), not start-up's: 0.2 s at a million tags.
pub fn adopt_snapshot(snapshot: Snapshot, shared: &Shared, history: &History) {
    shared.set_current(Current::with_history(Arc::new(snapshot), history));
    crate::memory::release();
}

/// Records the snapshot being served as its day's point in the history; run by the
/// refresh thread before its first scan, so a scan's point always comes after it.
pub fn record_served(r: &Refresh) {
    if let Some(current) = r.shared.get() {
        r.history
            .record_scan(&current, crate::history::day_of(current.snapshot.timestamp));
    }
}

/// Run one scan, swap it in and persist it. Returns whether it succeeded.
pub fn scan_once(r: &Refresh) -> bool {
    let previous = r.shared.snapshot();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        scan::scan(&r.client, previous.as_deref(), r.concurrency)
    }));
    drop(previous);
    let succeeded = finish_scan(r, outcome);
    crate::memory::release();
    succeeded
}

fn finish_scan(
    r: &Refresh,
    outcome: std::thread::Result<Result<scan::Report, crate::registry::Error>>,
) -> bool {
    match outcome {
        Ok(Ok(report)) => {
            report.log();
            // The scan's working memory back to the kernel before the index is built
            // beside the two snapshots (the peak of a re-scan).
            crate::memory::release();
            let snapshot = Arc::new(report.snapshot);
            r.shared
                .set_current(Current::with_history(snapshot.clone(), &r.history));
            r.metrics
                .scan_succeeded(report.duration, r.client.stats.counts());
            if let Some(current) = r.shared.get() {
                r.history
                    .record_scan(&current, crate::history::day_of(current.snapshot.timestamp));
            }
            if let Some(path) = &r.snapshot_file {
                if let Err(e) = snapshot::save(&snapshot, path) {
                    let msg = if e.replaced() {
                        "the snapshot file was written but not synced; the new scan is served"
                    } else {
                        "cannot write the snapshot file; the new scan is served from memory and the file keeps the previous one"
                    };
                    crate::log!(error, msg, file = path.display(), error = e);
                }
            }
            true
        }
        Ok(Err(e)) => {
            r.metrics.scan_failed(r.client.stats.counts());
            crate::log!(
                error,
                "scan failed; keeping the previous snapshot",
                error = e
            );
            false
        }
        Err(_) => {
            r.metrics.scan_failed(r.client.stats.counts());
            crate::log!(
                error,
                "scan failed with an internal error (panic); keeping the previous snapshot"
            );
            false
        }
    }
}

/// The loop: scan, wait, repeat, until `stop` receives a message or is disconnected.
pub fn run(r: Refresh, stop: Receiver<()>) {
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let wait = if scan_once(&r) {
            failures = 0;
            r.interval.saturating_sub(started.elapsed())
        } else {
            failures = failures.saturating_add(1);
            let backoff = FIRST_RETRY.saturating_mul(1 << (failures - 1).min(16));
            backoff.min(r.interval)
        };
        r.client
            .forget_tokens_renewing_before(Instant::now() + wait);
        match stop.recv_timeout(wait) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            _ => return,
        }
    }
}
