//! Crash safety of the snapshot file, with the real binary as a child process scanning the
//! synthetic registry every second: SIGKILL at random moments while it writes the file
//! (every restart finds the old or the new snapshot, whole, and no temporary file stays
//! behind), and a full disk (a small tmpfs: the new scan is served from memory, one clear
//! log line, the old file intact).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitlab_registry_usage_rest::snapshot;
use support::synthetic::{Synthetic, Totals};
use support::{basic_auth, file_tail, free_port, try_http_request, ChildGuard, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_gitlab-registry-usage-rest");
const SECRET: &str = "k8Jf2Lq9Vx3Nw7Rt5Yb1Hc6Zm4Pd0Gs2";

/// A config scanning `registry` every second and keeping `snapshot_file`; htpasswd login
/// (user `admin`, password `pw`).
fn write_config(dir: &Path, registry: &str, port: u16, snapshot_file: &Path) -> PathBuf {
    let htpasswd = dir.join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("admin:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    let conf = dir.join("service.conf");
    std::fs::write(
        &conf,
        format!(
            "[general]\nsocket_port = {port}\nauth_backend = htpasswd\nrefresh_interval = 1 second\n\
             snapshot_file = {}\n\
             history_file = {}\n\
             [jwt]\nsecret_key = {SECRET}\n\
             [htpasswd]\nfile = {}\n\
             [registry]\nregistry_base_url = {registry}\nusername = x\naccess_token = y\n\
             request_timeout = 10s\nconcurrency = 8\n",
            snapshot_file.display(),
            // beside the config, not on the test's small disk: the full-disk test is
            // about the snapshot file (the history says the same about its own file)
            dir.join("history").display(),
            htpasswd.display()
        ),
    )
    .unwrap();
    conf
}

fn start_service(conf: &Path, log: &Path) -> ChildGuard {
    let child = Command::new(BIN)
        .args(["-c", conf.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    ChildGuard::new("service", child)
}

/// Poll `f` until it holds; panics after `timeout` (generous: a deadline, not a measure)
/// or when the service died, with the tail of its log.
fn wait_for(what: &str, service: &mut ChildGuard, log: &Path, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if f() {
            return;
        }
        if let Some(status) = service.child.try_wait().unwrap() {
            panic!(
                "the service exited ({status}) while waiting for {what}:\n{}",
                file_tail(log, 4000)
            );
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            file_tail(log, 4000)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn health(port: u16) -> u16 {
    try_http_request("GET", &format!("http://127.0.0.1:{port}/health"), &[], None)
        .map(|r| r.status)
        .unwrap_or(0)
}

fn login(port: u16) -> String {
    let reply = try_http_request(
        "GET",
        &format!("http://127.0.0.1:{port}/auth_token"),
        &[("Authorization", &basic_auth("admin", "pw"))],
        None,
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["auth_token"].as_str().unwrap().to_string()
}

/// The totals the service serves at `/repositories`, or `None` while it has no snapshot.
fn served(port: u16, token: &str) -> Option<Totals> {
    let reply = try_http_request(
        "GET",
        &format!("http://127.0.0.1:{port}/repositories"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
    .unwrap();
    match reply.status {
        200 => Some(Totals::from_json(&reply.json())),
        503 => None,
        status => panic!("/repositories answered {status}: {}", reply.text()),
    }
}

/// Names in `dir` that look like temporary snapshot files.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp."))
        .collect();
    names.sort();
    names
}

/// xorshift64*: enough randomness to spread the kills; the seed is printed (and taken
/// from CRASH_SEED) so a failing run's kill delays can be drawn again.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos() as u64
                    | 1
            });
        eprintln!("CRASH_SEED={seed}");
        Rng(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// How many times the service is killed.
const KILLS: usize = 20;

#[test]
fn sigkill_while_writing_the_snapshot_file_leaves_the_old_or_the_new_one_and_no_temporary() {
    // 1,500 tags: a scan of well under a second, a file of about 300 kB whose write takes
    // tens of milliseconds in a debug build.
    let registry = Synthetic::start(&[
        "--repositories",
        "150",
        "--tags",
        "10",
        "--auth",
        "none",
        "--threads",
        "4",
    ]);
    let dir = TempDir::new("crash-kill");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let file = state.join("snapshot.json");
    let port = free_port();
    let conf = write_config(dir.path(), &registry.url, port, &file);
    let mut rng = Rng::new();
    let mut token = None;
    // What the file held when the service was last killed: its bytes and timestamp.
    let mut old: Option<(Vec<u8>, Totals, f64)> = None;
    // The temporary file the last kill left, if any.
    let mut left_behind: Option<PathBuf> = None;
    let (mut interrupted, mut completed) = (0, 0);
    // How long a whole write takes here, measured on the first one.
    let mut write_time = None;

    for run in 0..=KILLS {
        let now = registry.expected();
        let log = dir.path().join(format!("service-{run}.log"));
        let mut service = start_service(&conf, &log);
        let pid = service.child.id();
        wait_for("the service to listen", &mut service, &log, || {
            health(port) != 0
        });
        let text = std::fs::read_to_string(&log).unwrap();

        // Start-up removed what the killed one left, and only that.
        let own = format!(".snapshot.json.tmp.{pid}");
        let stale: Vec<String> = temporaries(&state)
            .into_iter()
            .filter(|n| *n != own)
            .collect();
        assert!(
            stale.is_empty(),
            "run {run}: left behind: {stale:?}\n{text}"
        );
        let removals = text.matches("removed a temporary snapshot file").count();
        match &left_behind {
            Some(tmp) => {
                assert_eq!(removals, 1, "run {run}:\n{text}");
                assert!(
                    text.contains(&format!("file={}", tmp.display())),
                    "run {run}: names the file it removed:\n{text}"
                );
            }
            None => assert_eq!(removals, 0, "run {run}:\n{text}"),
        }

        // It loaded what the killed one left, whole.
        assert!(
            !text.contains("ignoring the snapshot file"),
            "run {run}:\n{text}"
        );
        match &old {
            Some((_, _, timestamp)) => {
                let field = format!("timestamp={timestamp}");
                assert!(
                    text.lines().any(|l| l.contains("loaded snapshot file")
                        && l.split_whitespace().any(|f| f == field)),
                    "run {run}: loaded the file of {field}:\n{text}"
                );
            }
            None => assert!(text.contains("no snapshot file yet"), "run {run}:\n{text}"),
        }
        // And serves the old snapshot or the new scan, nothing in between.
        let token = token.get_or_insert_with(|| login(port));
        match (served(port, token), &old) {
            (None, None) => {}
            (Some(t), _) if t == now => {}
            (Some(t), Some((_, old_totals, _))) if t == *old_totals => {}
            (got, _) => panic!(
                "run {run}: serves {got:?}; the file had {:?}, the registry has {now:?}",
                old.as_ref().map(|o| o.1)
            ),
        }
        if run == KILLS {
            break;
        }

        // Kill it at a random moment of its next write: from the temporary file's creation
        // to a while after its rename. (The pause picks the moment; nothing waits on it.)
        let tmp = state.join(&own);
        wait_for("the next write", &mut service, &log, || tmp.exists());
        let started = Instant::now();
        let write_time = *write_time.get_or_insert_with(|| {
            wait_for("the first write to end", &mut service, &log, || {
                !tmp.exists()
            });
            started.elapsed()
        });
        let moment = write_time.as_micros() as u64 * 3 / 2;
        let kill_at = started + Duration::from_micros(rng.below(moment + 1));
        std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
        service.kill();
        left_behind = tmp.exists().then_some(tmp);
        interrupted += usize::from(left_behind.is_some());

        // On disk: the old file untouched, or the new scan, whole.
        let bytes = std::fs::read(&file).ok();
        if bytes.as_ref() != old.as_ref().map(|o| &o.0) {
            let bytes = bytes.unwrap_or_else(|| panic!("run {run}: the file is gone"));
            let loaded = snapshot::load(&file)
                .unwrap_or_else(|e| panic!("run {run}: a broken snapshot file: {e}"));
            assert_eq!(
                Totals::of(&loaded),
                now,
                "run {run}: the new file is the new scan"
            );
            old = Some((bytes, now, loaded.timestamp));
            completed += 1;
        }
        // The next run scans a changed registry, so old and new differ.
        let moved = registry.move_tags(10);
        assert_ne!(moved, now);
    }
    eprintln!(
        "{interrupted} of {KILLS} kills interrupted a write, {completed} came after one \
         (a write took {:?})",
        write_time.unwrap_or_default()
    );
    assert!(
        interrupted > 0,
        "no kill landed inside a write, so nothing was tested (CRASH_SEED above replays it)"
    );
}

/// A tmpfs mounted for one test, unmounted on drop (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` (`mount -o size=`) at `dir`. Fails the test, saying why,
    /// where mounting is not permitted: a full disk cannot be simulated otherwise.
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {}: {}\nThis test simulates a full disk with a small \
             tmpfs and needs root (or CAP_SYS_ADMIN); run it as root, as .ci/run does.",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmount = |lazy: bool| {
            Command::new("umount")
                .args(lazy.then_some("-l"))
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !unmount(false) && !unmount(true) {
            eprintln!("cannot unmount the tmpfs at {}", self.0.display());
        }
    }
}

/// Writes zeros to `path` until the file system is full (ENOSPC); panics on other errors.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = [0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn a_full_disk_keeps_the_new_scan_in_memory_logs_one_line_and_the_old_file_intact() {
    let registry = Synthetic::start(&["--repositories", "60", "--tags", "5", "--auth", "none"]);
    let dir = TempDir::new("crash-full");
    // Declared before the service: dropped (unmounted) after it is killed.
    let disk = Tmpfs::mount(&dir.path().join("disk"), "1m");
    let file = disk.path().join("snapshot.json");
    let port = free_port();
    let conf = write_config(dir.path(), &registry.url, port, &file);
    let log = dir.path().join("service.log");
    let mut service = start_service(&conf, &log);
    wait_for("the first write", &mut service, &log, || file.exists());
    let token = login(port);
    let log_text = || std::fs::read_to_string(&log).unwrap();
    const FULL: &str = "No space left on device";

    // The disk fills up: the next writes fail. Topped up once a write failed, so that no
    // space its last successful rename freed is left over.
    fill(&disk.path().join("filler"));
    wait_for("a failed write", &mut service, &log, || {
        log_text().contains(FULL)
    });
    fill(&disk.path().join("filler"));
    let old = std::fs::read(&file).unwrap();
    let old_totals = Totals::of(&snapshot::load(&file).unwrap());

    // The registry changes; the next scan is served although it cannot be written.
    let new = registry.move_tags(50);
    assert_ne!(new, old_totals);
    wait_for("the new scan to be served", &mut service, &log, || {
        served(port, &token) == Some(new)
    });
    let failures = lines_with(&log_text(), FULL).len();
    wait_for("the new scan's write to fail", &mut service, &log, || {
        lines_with(&log_text(), FULL).len() > failures
    });
    // Right after the failure (the next try is a scan away): its temporary file is gone.
    assert_eq!(temporaries(disk.path()), Vec::<String>::new());
    assert_eq!(std::fs::read(&file).unwrap(), old, "the old file is intact");
    assert_eq!(served(port, &token), Some(new));

    // One line per failed write, naming the file and the error; nothing else complains.
    let text = log_text();
    let file_field = format!("file={}", file.display());
    for line in lines_with(&text, FULL) {
        assert!(line.starts_with("level=error "), "{line}");
        assert!(line.contains("cannot write the snapshot file"), "{line}");
        assert!(line.contains("the file keeps the previous one"), "{line}");
        assert!(line.contains(&file_field), "{line}");
        assert!(line.contains("(os error 28)"), "{line}");
    }
    let complaints = lines_with(&text, "level=error").len() + lines_with(&text, "level=warn").len();
    assert_eq!(complaints, lines_with(&text, FULL).len(), "{text}");

    // Space again: the next write succeeds and holds the new scan.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    wait_for("a write after space was freed", &mut service, &log, || {
        snapshot::load(&file).is_ok_and(|s| Totals::of(&s) == new)
    });
    assert_eq!(temporaries(disk.path()), Vec::<String>::new());
}

#[test]
fn start_up_removes_the_temporaries_no_process_holds_locked_whatever_their_pid() {
    use std::os::fd::AsRawFd as _;
    let dir = TempDir::new("crash-stale");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let file = state.join("snapshot.json");
    let touch = |name: &str| {
        let path = state.join(name);
        std::fs::write(&path, b"{\"format\":").unwrap();
        path
    };
    // A writer in another process (this test) holds its file locked, as the service does
    // while it writes: kept, although its pid is not the service's.
    let writing = touch(".snapshot.json.tmp.4000000");
    let writer = std::fs::File::open(&writing).unwrap();
    // SAFETY: flock on a descriptor `writer` owns.
    assert_eq!(unsafe { libc::flock(writer.as_raw_fd(), libc::LOCK_EX) }, 0);
    // Not locked, though its pid (this test's) is alive: stale, removed.
    let stale = touch(&format!(".snapshot.json.tmp.{}", std::process::id()));
    // Another file's temporary and a look-alike: not the service's to remove.
    let other = touch(".other.json.tmp.1");
    let look_alike = touch(".snapshot.json.tmp.1.bak");

    let port = free_port();
    // Nothing listens on port 9 of 127.0.0.1: the scan fails, start-up is what counts.
    let conf = write_config(dir.path(), "http://127.0.0.1:9/", port, &file);
    let log = dir.path().join("service.log");
    let mut service = start_service(&conf, &log);
    wait_for("the service to listen", &mut service, &log, || {
        health(port) != 0
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!stale.exists(), "{text}");
    assert!(writing.exists() && other.exists() && look_alike.exists());
    let removed = lines_with(&text, "removed a temporary snapshot file");
    assert_eq!(removed.len(), 1, "{text}");
    assert!(
        removed[0].contains(&format!("file={}", stale.display())),
        "{text}"
    );
    assert!(text.contains("no snapshot file yet"), "{text}");
    drop(writer);
}
