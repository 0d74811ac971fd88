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
//! therefore uses mimalloc (thread-local heaps, no global lock), with defaults set before
//! the first allocation so that it returns freed pages at once instead of keeping them
//! for reuse (with mimalloc's own defaults the peak at 100k tags was nearly three times
//! glibc's). BENCHMARKS.md has the measurements.

/// The static build's allocator (see the module documentation).
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options, set as defaults before it starts.
#[cfg(target_env = "musl")]
mod mimalloc_options {
    use std::ffi::{c_int, c_long};

    /// `(name, mi_option_t, value)`: the numbers of the options in the mimalloc 3 header
    /// that libmimalloc-sys builds (its `extended` feature does not name these); the name
    /// is mimalloc's, for the test that the numbers still mean these options.
    pub const DEFAULTS: [(&str, c_int, c_long); 2] = [
        // Commit arena memory as it is used, not the whole arena when it is reserved.
        ("arena_eager_commit", 4, 0),
        // Return freed pages to the kernel at once (by default a second later, which
        // under steady load is never).
        ("purge_delay", 15, 0),
    ];

    extern "C" {
        fn mi_option_set_default(option: c_int, value: c_long);
        #[cfg(test)]
        fn mi_options_print_out(
            out: extern "C" fn(msg: *const std::ffi::c_char, arg: *mut std::ffi::c_void),
            arg: *mut std::ffi::c_void,
        );
        fn mi_collect(force: bool);
    }

    /// Runs from `.init_array`, before Rust's runtime and `main` allocate anything, so the
    /// defaults hold for the first arena too: a binary started by hand gets them as much
    /// as one under the systemd unit or in the image. They are defaults: mimalloc still
    /// reads `MIMALLOC_<OPTION>` from the environment when it starts, so an operator can
    /// change one without a rebuild (`MIMALLOC_VERBOSE=1` lists the options in force).
    extern "C" fn configure() {
        for (_, option, value) in DEFAULTS {
            // SAFETY: mi_option_set_default only stores a value in mimalloc's option
            // table (it takes no lock and allocates nothing); it is meant to be called
            // before mimalloc reads its options.
            unsafe { mi_option_set_default(option, value) }
        }
    }

    #[used]
    #[link_section = ".init_array"]
    static CONFIGURE: extern "C" fn() = configure;

    /// mimalloc's own listing of the options in force, one `option 'name': value` a line.
    #[cfg(test)]
    pub fn listing() -> String {
        extern "C" fn append(msg: *const std::ffi::c_char, arg: *mut std::ffi::c_void) {
            // SAFETY: `arg` is the `String` below, `msg` a NUL-terminated message.
            let (out, msg) = unsafe { (&mut *arg.cast::<String>(), std::ffi::CStr::from_ptr(msg)) };
            out.push_str(&msg.to_string_lossy());
        }
        let mut out = String::new();
        // SAFETY: mimalloc calls `append` with `arg` while it prints, and not after.
        unsafe { mi_options_print_out(append, (&mut out as *mut String).cast()) };
        out
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
    use super::mimalloc_options::{listing, DEFAULTS};

    /// The defaults set from `.init_array` are the ones mimalloc runs with, under the
    /// names they were meant for (an option number that no longer matches the linked
    /// mimalloc shows here). Skipped when the environment sets mimalloc options itself.
    #[test]
    fn mimalloc_runs_with_our_defaults() {
        if std::env::vars().any(|(k, _)| k.starts_with("MIMALLOC_")) {
            eprintln!("MIMALLOC_* set in the environment: not checking the defaults");
            return;
        }
        let listing = listing();
        for (name, _, value) in DEFAULTS {
            let line = format!("option '{name}': {value} ");
            assert!(listing.contains(&line), "no {line:?} in:\n{listing}");
        }
    }
}
