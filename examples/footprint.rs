//! Where the memory of a snapshot goes, structure by structure, counted by a global
//! allocator (bytes asked for and live allocations; glibc adds 8 to 16 bytes to each):
//!
//!     cargo run --release --example footprint -- SNAPSHOT_FILE
//!
//! Loads the file (the snapshot), builds its usage index, then builds a second snapshot
//! from the first the way an unchanged re-scan does (`Builder::after`, every tag's
//! layers interned by their indices in the first) and its index, and writes it to a
//! temporary file. For each step: what stays alive, and the peak above what was alive
//! before it. Numbers of a `make bench`-independent tool: for finding where bytes are.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use gitlab_registry_usage_rest::snapshot::{self, Builder};
use gitlab_registry_usage_rest::usage::Usage;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
            BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new);
        if !q.is_null() {
            if new >= layout.size() {
                let live =
                    LIVE.fetch_add(new - layout.size(), Ordering::Relaxed) + new - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one step left alive and its peak above what was alive before it: (label, bytes
/// kept, allocations kept, peak bytes).
type Step = (&'static str, f64, isize, usize);

/// Runs `step` and records what it cost.
fn measure<T>(label: &'static str, steps: &mut Vec<Step>, step: impl FnOnce() -> T) -> T {
    let (live, blocks) = (LIVE.load(Ordering::Relaxed), BLOCKS.load(Ordering::Relaxed));
    PEAK.store(live, Ordering::Relaxed);
    let out = step();
    let kept = LIVE.load(Ordering::Relaxed) as f64 - live as f64;
    let peak = PEAK.load(Ordering::Relaxed) - live;
    steps.push((label, kept, BLOCKS.load(Ordering::Relaxed) - blocks, peak));
    out
}

fn main() {
    let path = std::env::args_os()
        .nth(1)
        .expect("usage: footprint SNAPSHOT_FILE");
    let path = std::path::PathBuf::from(path);
    let mut steps = Vec::new();
    let first = measure("load (the snapshot)", &mut steps, || {
        snapshot::load(&path).expect("a snapshot file")
    });
    let usage = measure("Usage::of (its index)", &mut steps, || Usage::of(&first));
    let second = measure("re-scan builder + finish", &mut steps, || {
        let mut b = Builder::after(&first);
        for repo in &first.repositories {
            b.add_previous(&first, repo, None);
        }
        b.finish(first.timestamp)
    });
    assert_eq!(second.repositories, first.repositories);
    let usage2 = measure("Usage::of (the second's)", &mut steps, || {
        Usage::of(&second)
    });
    let out = std::env::temp_dir().join(format!("footprint-{}.json", std::process::id()));
    measure("snapshot::save", &mut steps, || {
        snapshot::save(&second, &out).expect("saved")
    });
    let _ = std::fs::remove_file(&out);
    drop((usage, usage2));

    let tags = first.totals.tag_count.max(1) as f64;
    println!(
        "{} tags, {} repositories, {} blobs",
        first.totals.tag_count,
        first.totals.repository_count,
        first.blobs.len()
    );
    for (label, kept, blocks, peak) in steps {
        println!(
            "{label:<26} kept {kept:>11.0} B ({:>5.1} B a tag, {blocks:>8} allocations)   peak above start {peak:>11} B ({:>5.1} B a tag)",
            kept / tags,
            peak as f64 / tags
        );
    }
}
