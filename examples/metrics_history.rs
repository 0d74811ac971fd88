//! What `/metrics` and the usage history cost at scale, for BENCHMARKS.md:
//! `cargo run --release --example metrics_history [repositories] [days]`.
//!
//! - the usage families' render (once per snapshot generation) for a synthetic registry;
//! - the per-request counter update, alone and with two threads hammering it;
//! - the history after `days` daily scans of `repositories` repositories (and their
//!   namespaces): file size, encoded bytes, the time of one day's record, and the RSS
//!   of a fresh process that loads the file (this example re-run as `load <file>`).

#[path = "common/proc_status.rs"]
mod proc_status;
use proc_status::status_kib;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gitlab_registry_usage_rest::current::Current;
use gitlab_registry_usage_rest::history::{Entry, History, Kind, Numbers};
use gitlab_registry_usage_rest::metrics::{render_usage, Http, Limits, Metrics};
use gitlab_registry_usage_rest::snapshot::{Builder, LayerRef, ScannedTag};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn snapshot(repositories: usize) -> Current {
    let digest = |n: u64| format!("sha256:{n:064x}");
    let mut b = Builder::default();
    for r in 0..repositories {
        let group = r % 500;
        let tags = (0..5u64)
            .map(|t| ScannedTag {
                name: format!("v{t}"),
                digest: Some(digest(1 << 40 | (r as u64) << 8 | t).as_str().into()),
                layers: vec![
                    LayerRef {
                        digest: digest(1 << 50 | group as u64).as_str().into(),
                        size: 50_000_000,
                    },
                    LayerRef {
                        digest: digest((r as u64) << 8 | t).as_str().into(),
                        size: 1_000_000 + r as u64 * 10 + t,
                    },
                ]
                .into(),
            })
            .collect();
        b.add_repository(&format!("group-{group}/project-{r}"), Some(tags), None);
    }
    Current::new(Arc::new(b.finish(1.0)))
}

fn load(path: &str, today: u32) {
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let h = History::open(std::path::Path::new(path), 400, today).expect("load");
    let took = started.elapsed();
    let (series, points, bytes) = h.footprint();
    println!(
        "load: {series} series, {points} points ({}) in {took:.2?}; VmRSS {before} KiB before, {} KiB after, VmHWM {} KiB",
        mib(bytes as u64),
        status_kib("VmRSS:"),
        status_kib("VmHWM:")
    );
}

fn main() {
    // As the service does first thing, so the RSS numbers are the service's.
    gitlab_registry_usage_rest::memory::tune();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("load") {
        return load(&args[2], args[3].parse().unwrap());
    }
    let repositories: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let days: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(400);

    // 1. Usage families.
    let started = Instant::now();
    let current = snapshot(repositories);
    println!(
        "snapshot + usage index of {repositories} repositories: {:.2?}",
        started.elapsed()
    );
    for limits in [
        Limits {
            namespace_depth: 1,
            top_repositories: 0,
        },
        Limits {
            namespace_depth: 2,
            top_repositories: 100,
        },
        Limits {
            namespace_depth: 2,
            top_repositories: repositories,
        },
    ] {
        let mut bytes = 0;
        let times = (0..7)
            .map(|_| {
                let t = Instant::now();
                bytes = render_usage(&current, limits).len();
                t.elapsed()
            })
            .collect();
        println!(
            "render_usage {limits:?}: {:.2?} (median of 7), {bytes} bytes",
            median(times)
        );
    }
    let metrics = Metrics::new(
        &["/a", "/b", "/c", "unmatched"],
        Limits {
            namespace_depth: 1,
            top_repositories: 0,
        },
    );
    metrics.render(Some(&current));
    let times = (0..101)
        .map(|_| {
            let t = Instant::now();
            let _ = metrics.render(Some(&current));
            t.elapsed()
        })
        .collect();
    println!(
        "a scrape with the usage part cached: {:.2?} (median of 101)",
        median(times)
    );

    // 2. The per-request update.
    static T: &[&str] = &["/health", "/repositories/{name}", "unmatched"];
    let http = Arc::new(Http::new(T));
    let n = 5_000_000u32;
    let t = Instant::now();
    for i in 0..n {
        http.observe(1, 200, Duration::from_micros(u64::from(i % 700)));
    }
    println!(
        "Http::observe, one thread: {:.1} ns per request",
        t.elapsed().as_nanos() as f64 / f64::from(n)
    );
    let t = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let http = Arc::clone(&http);
            std::thread::spawn(move || {
                for i in 0..n {
                    http.observe(1, 200, Duration::from_micros(u64::from(i % 700)));
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    println!(
        "Http::observe, two threads on the same route: {:.1} ns per request per thread",
        t.elapsed().as_nanos() as f64 / f64::from(n)
    );

    // 3. History.
    let dir = std::env::temp_dir().join(format!("metrics-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (scenario, changing) in [
        ("10 % of repositories change per day", 10),
        ("every series changes every day", 1),
    ] {
        let path = dir.join(format!("history-{changing}"));
        let h = History::open(&path, 400, 0).unwrap();
        let mut numbers: Vec<Numbers> = (0..repositories)
            .map(|r| Numbers {
                size: 250_000_000 + r as u64,
                deduplicated_size: 51_000_000 + r as u64,
                exclusive_size: 1_000_000 + r as u64,
                tag_count: 5,
            })
            .collect();
        let names: Vec<Box<str>> = (0..repositories)
            .map(|r| format!("group-{}/project-{r}", r % 500).into())
            .collect();
        let groups: Vec<Box<str>> = (0..500).map(|g| format!("group-{g}").into()).collect();
        let mut last = Duration::ZERO;
        let started = Instant::now();
        for day in 0..days {
            for (r, n) in numbers.iter_mut().enumerate() {
                if (r + day as usize) % changing == 0 {
                    let step = (r as u64 * 7919 + u64::from(day) * 104_729) % 9_000_000;
                    n.size += step;
                    n.deduplicated_size += step / 2;
                    n.exclusive_size += step / 3;
                    n.tag_count += 1;
                }
            }
            let mut entries: Vec<Entry> = Vec::with_capacity(repositories + 501);
            entries.push((Kind::Registry, "".into(), numbers[0]));
            for g in &groups {
                let mut sum = Numbers::default();
                for n in numbers
                    .iter()
                    .skip(entries.len() % 500)
                    .step_by(500)
                    .take(20)
                {
                    sum.size += n.size;
                    sum.deduplicated_size += n.deduplicated_size;
                }
                entries.push((Kind::Namespace, g.clone(), sum));
            }
            for (name, n) in names.iter().zip(&numbers) {
                entries.push((Kind::Repository, name.clone(), *n));
            }
            let t = Instant::now();
            h.record(day, &entries);
            last = t.elapsed();
        }
        let total = started.elapsed();
        let (series, points, bytes) = h.footprint();
        let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "history, {scenario}: {series} series, {points} points; encoded {}, file {}; \
             {days} daily scans in {total:.2?} (the last one {last:.2?})",
            mib(bytes as u64),
            mib(file)
        );
        drop(h);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("load")
            .arg(&path)
            .arg((days - 1).to_string())
            .output()
            .unwrap();
        print!("  fresh process, {}", String::from_utf8_lossy(&out.stdout));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
