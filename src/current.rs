//! The generation being served: a snapshot and its usage index, swapped in together.
//!
//! The index is built here, when a snapshot is handed over (by the refresh thread after
//! a scan, or after loading the snapshot file), so no request ever builds one and no
//! reader sees a snapshot without its numbers. `snapshot` knows nothing of `usage`:
//! this module is where the two meet.

use std::sync::{Arc, RwLock};

use crate::history::History;
use crate::snapshot::Snapshot;
use crate::usage::Usage;

/// A snapshot with the index derived from it.
pub struct Current {
    pub snapshot: Arc<Snapshot>,
    pub usage: Usage,
}

impl Current {
    pub fn new(snapshot: Arc<Snapshot>) -> Current {
        let usage = Usage::of(&snapshot);
        Current { snapshot, usage }
    }

    /// With `growth_30d` from `history` (the points at least 30 days before the
    /// snapshot's day).
    pub fn with_history(snapshot: Arc<Snapshot>, history: &History) -> Current {
        let day = crate::history::day_of(snapshot.timestamp);
        let usage = Usage::with_growth(&snapshot, &|kind, name| {
            history.growth_base(kind, name, day)
        });
        Current { snapshot, usage }
    }
}

/// The current generation, shared between the refresh thread (the only writer) and the
/// HTTP workers. The lock is held only to clone or replace the `Arc`, never during a
/// scan, while the index is built, or while a response is written.
#[derive(Default)]
pub struct Shared {
    current: RwLock<Option<Arc<Current>>>,
}

impl Shared {
    pub fn get(&self) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The snapshot being served, for the next scan to start from.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.get().map(|c| Arc::clone(&c.snapshot))
    }

    /// Builds the index of `snapshot` (before taking the lock), then swaps both in.
    pub fn set(&self, snapshot: Arc<Snapshot>) {
        self.set_current(Current::new(snapshot));
    }

    /// Swaps in a generation built by the caller (e.g. [`Current::with_history`]).
    pub fn set_current(&self, current: Current) {
        let current = Arc::new(current);
        let old = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(current);
        // The old generation is freed (if no reader holds it) outside the lock.
        drop(old);
    }
}
