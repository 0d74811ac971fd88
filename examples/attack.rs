//! `make bench`'s attack table: one attack of issue 9 against a running service, while a
//! normal client (from 127.0.0.2) asks for `/health` on new connections; prints one line
//! of `key=value`: the normal client's latencies and failures, and the service's peak
//! threads, descriptors and RSS (from /proc/<pid>) during the attack.
//!
//!   attack <port> <pid> <scenario> <seconds> [token]
//!
//! Scenarios: `none` (the normal client alone), `idle-slowloris` (5,000 idle and 500 slowloris connections, from
//! 127.0.0.1), `pipeline` (one connection sending 1M pipelined GET /health and
//! reading nothing), `slow-readers` (66 connections from 127.0.0.1 asking for
//! `/repositories?embed=true&links=true` and reading nothing). Every socket it opens is
//! closed when it ends; it sends only to 127.0.0.0/8.

#[allow(dead_code)] // the tests use more of it
#[path = "../tests/support/net.rs"]
mod net;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::connect_from;

const PROBE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: attack <port> <pid> <none|idle-slowloris|pipeline|slow-readers> <seconds> [token]");
        std::process::exit(2);
    }
    let port: u16 = args[0].parse().expect("port");
    let pid: u32 = args[1].parse().expect("pid");
    let seconds: u64 = args[3].parse().expect("seconds");
    let token = args.get(4).cloned().unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));

    let mut held: Vec<TcpStream> = Vec::new();
    let mut refused = 0usize;
    let mut helpers = Vec::new();
    match args[2].as_str() {
        "idle-slowloris" => {
            // from one address, as one attacker would
            for _ in 0..5000 {
                match connect_from(Ipv4Addr::LOCALHOST, port, None) {
                    Ok(s) => held.push(s),
                    Err(_) => refused += 1,
                }
            }
            let mut slow = Vec::new();
            for _ in 0..500 {
                if let Ok(mut s) = connect_from(Ipv4Addr::LOCALHOST, port, None) {
                    if s.write_all(b"GET /health HTTP/1.1\r\nX-A: ").is_ok() {
                        slow.push(s);
                    }
                }
            }
            let stop = Arc::clone(&stop);
            helpers.push(std::thread::spawn(move || {
                // one more byte of the header every second on each
                while !stop.load(Ordering::Relaxed) {
                    for s in &mut slow {
                        let _ = s.write_all(b"a");
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }));
        }
        "pipeline" => {
            let mut s = connect_from(Ipv4Addr::LOCALHOST, port, Some(4096)).expect("connect");
            s.set_write_timeout(Some(Duration::from_secs(seconds + 5)))
                .unwrap();
            let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1_000_000);
            held.push(s.try_clone().unwrap());
            helpers.push(std::thread::spawn(move || {
                let _ = s.write_all(&request);
            }));
        }
        "slow-readers" => {
            let request = format!(
                "GET /repositories?embed=true&links=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            for _ in 0..66 {
                match connect_from(Ipv4Addr::LOCALHOST, port, Some(4096)) {
                    Ok(s) if (&s).write_all(request.as_bytes()).is_ok() => held.push(s),
                    _ => refused += 1,
                }
            }
        }
        "none" => {}
        other => {
            eprintln!("attack: unknown scenario {other}");
            std::process::exit(2);
        }
    }

    let (mut threads, mut fds, mut rss) = (0, 0, 0);
    let mut latencies = Vec::new();
    let mut failures = 0;
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let (t, f, r) = usage(pid);
        threads = threads.max(t);
        fds = fds.max(f);
        rss = rss.max(r);
        let started = Instant::now();
        if probe(port) {
            latencies.push(started.elapsed());
        } else {
            failures += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    // A socket the service closed reads as end of stream (after what it had sent) or a
    // reset; one it still holds has data waiting or would block.
    let kept = held
        .iter()
        .filter(|s| {
            let _ = s.set_nonblocking(true);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match (&mut &**s).read(&mut buf) {
                    Ok(0) => return false,
                    Ok(_) => continue,
                    Err(e) => return e.kind() == std::io::ErrorKind::WouldBlock,
                }
            }
        })
        .count();
    drop(held);
    for h in helpers {
        let _ = h.join();
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "scenario={} probes={} failures={failures} p50_ms={:.2} p99_ms={:.2} threads_max={threads} \
         fds_max={fds} rss_max_mib={:.1} refused_at_connect={refused} still_open_at_end={kept}",
        args[2],
        latencies.len() + failures,
        pct(0.50),
        pct(0.99),
        rss as f64 / 1024.0
    );
}

/// One GET /health on a new connection from 127.0.0.2: answered 200 within the timeout?
fn probe(port: u16) -> bool {
    let Ok(mut s) = connect_from(PROBE, port, None) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(PROBE_TIMEOUT));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 200"
}

/// (threads, descriptors, RSS in KiB) of the process.
fn usage(pid: u32) -> (usize, usize, u64) {
    let count = |dir: String| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    (
        count(format!("/proc/{pid}/task")),
        count(format!("/proc/{pid}/fd")),
        rss,
    )
}
