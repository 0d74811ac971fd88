//! How the process gives freed memory back to the kernel.
//!
//! glibc's allocator (the `x86_64-unknown-linux-gnu` build) raises its mmap threshold to
//! the size of the largest block freed so far. After the snapshot load or a scan frees a
//! few megabytes, every later large buffer (a rendered document) came from the heap
//! instead of its own mapping, and stayed resident after it was freed: a service holding
//! 100k tags grew by 19 MiB the first time `/repositories?embed=true` was served. musl's
//! allocator (the static build) returns large blocks by itself; there these are no-ops.

/// Blocks at least this large get their own mapping, returned to the kernel when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Pin the mmap threshold (which also stops glibc from moving it). Call once, first.
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
}
