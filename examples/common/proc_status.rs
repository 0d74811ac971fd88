//! Shared by the examples that report their own memory (`#[path]`-included: examples
//! are separate crates).

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB; 0 when unreadable.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
