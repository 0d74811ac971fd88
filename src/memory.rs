//! Which allocator the process uses, and how it gives freed memory back to the kernel.
//!
//! glibc's allocator (the `x86_64-unknown-linux-gnu` build) raises its mmap threshold to
//! the size of the largest block freed so far. After the snapshot load or a scan frees a
//! few megabytes, every later large buffer (a rendered document) came from the heap
//! instead of its own mapping, and stayed resident after it was freed: a service holding
//! 100k tags grew by 19 MiB the first time `/repositories?embed=true` was served.
//!
//! musl's allocator (the static build, the one the image and the tarball ship) takes one
//! global lock for every `malloc` and `free`: the HTTP threads queued on it and the static
//! build answered small resources at about 0.6 of the glibc build's rate. The static build
//! therefore uses mimalloc (thread-local heaps, no global lock), configured before the
//! first allocation so that it returns freed pages at once instead of keeping them for
//! reuse (with its defaults the peak at 100k tags was nearly three times glibc's).
//! BENCHMARKS.md has the measurements.

/// The static build's allocator (see the module documentation).
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options (numbers of `mi_option_t` in the mimalloc 3 header that
/// libmimalloc-sys builds; the `extended` feature does not name these two).
#[cfg(target_env = "musl")]
mod mimalloc_options {
    use std::ffi::{c_int, c_long};

    /// `mi_option_arena_eager_commit`: 0 commits arena memory as it is used, not the whole
    /// arena when it is reserved.
    const ARENA_EAGER_COMMIT: c_int = 4;
    /// `mi_option_purge_delay`: 0 returns freed pages to the kernel at once (default 10 ms
    /// later, which under steady load is never).
    const PURGE_DELAY: c_int = 15;

    extern "C" {
        fn mi_option_set(option: c_int, value: c_long);
        #[cfg(test)]
        fn mi_option_get(option: c_int) -> c_long;
        fn mi_collect(force: bool);
    }

    /// Runs from `.init_array`, before Rust's runtime and `main` allocate anything, so the
    /// options hold for the first arena too (an environment variable would not cover a
    /// binary started by hand, and `main` comes after the runtime's first allocations).
    extern "C" fn configure() {
        // SAFETY: mi_option_set only stores a value in mimalloc's option table; it is
        // meant to be called before mimalloc is initialised.
        unsafe {
            mi_option_set(ARENA_EAGER_COMMIT, 0);
            mi_option_set(PURGE_DELAY, 0);
        }
    }

    #[used]
    #[link_section = ".init_array"]
    static CONFIGURE: extern "C" fn() = configure;

    /// The options in force (for the test that they were applied).
    #[cfg(test)]
    pub fn current() -> (c_long, c_long) {
        // SAFETY: reads mimalloc's option table.
        unsafe {
            (
                mi_option_get(ARENA_EAGER_COMMIT),
                mi_option_get(PURGE_DELAY),
            )
        }
    }

    /// Return the calling thread's free pages and abandoned memory to the kernel.
    pub fn collect() {
        // SAFETY: mi_collect only frees mimalloc's own unused pages.
        unsafe { mi_collect(true) }
    }
}

/// Blocks at least this large get their own mapping, returned to the kernel when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Pin the mmap threshold (which also stops glibc from moving it). Call once, first.
/// (mimalloc, in the static build, is configured before `main`.)
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Give the free pages inside the heap back after a large transient (loading the
/// snapshot file, a scan).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_env = "musl")]
    mimalloc_options::collect();
}

#[cfg(all(test, target_env = "musl"))]
mod tests {
    /// The options set from `.init_array` are the ones mimalloc runs with (an option
    /// number that no longer matches the linked mimalloc would show here).
    #[test]
    fn mimalloc_is_configured_before_main() {
        assert_eq!(super::mimalloc_options::current(), (0, 0));
    }
}
