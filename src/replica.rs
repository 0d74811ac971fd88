//! Read replicas: a reader (`[general] role = reader`) never scans; it follows the files a
//! collector writes on a shared volume and swaps each new version in.
//!
//! [`Follower`] polls its files every [`POLL`] (stat first, content hash only when the stat
//! changed: see `watch`), hands each new version to that file's reload function, and logs
//! one line per version: loaded, or broken and ignored (the previous one stays served).
//! The snapshot file ([`follow_snapshot`]) and the usage history file
//! ([`follow_history`]) are the followed files.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::current::{Current, Shared};
use crate::history::History;
use crate::snapshot;
use crate::watch::{FileWatcher, Poll};

/// How often a reader looks at its files: a new version is served within about this
/// long (plus its load time) after the collector's rename.
pub const POLL: Duration = Duration::from_secs(1);

/// Turns one version of a followed file into served data. `Ok` carries a short summary
/// for the log line; `Err` says why the version was refused (the previous data stays).
pub type Reload = Box<dyn FnMut(&mut File) -> Result<String, String> + Send>;

struct Followed {
    /// What the file is, for log lines ("snapshot file").
    what: &'static str,
    watcher: FileWatcher,
    reload: Reload,
}

/// The files a reader follows, polled by one thread.
#[derive(Default)]
pub struct Follower {
    files: Vec<Followed>,
}

impl Follower {
    /// Follow `path`: every new version goes through `reload`.
    pub fn follow(&mut self, what: &'static str, path: PathBuf, reload: Reload) {
        self.files.push(Followed {
            what,
            watcher: FileWatcher::new(path),
            reload,
        });
    }

    /// One look at every file, logging what changed. `main` calls it once before serving,
    /// so a reader starts with the data that is already there.
    pub fn poll(&mut self) {
        for f in &mut self.files {
            let outcome = f.watcher.poll(&mut f.reload);
            let file = f.watcher.path().display();
            match outcome {
                Poll::Unchanged => {}
                Poll::Reloaded(Ok(summary)) => crate::log!(
                    info,
                    "serving a new version of a followed file",
                    what = f.what,
                    file = file,
                    loaded = summary
                ),
                Poll::Reloaded(Err(e)) => crate::log!(
                    warn,
                    "ignoring a new version of a followed file that cannot be loaded; still serving the previous one",
                    what = f.what,
                    file = file,
                    error = e
                ),
                Poll::Failed(e) if e.kind() == std::io::ErrorKind::NotFound => crate::log!(
                    info,
                    "a followed file is not there (yet); serving what was loaded before, if anything",
                    what = f.what,
                    file = file
                ),
                Poll::Failed(e) => crate::log!(
                    warn,
                    "cannot read a followed file; still serving the previous version",
                    what = f.what,
                    file = file,
                    error = e
                ),
            }
        }
    }

    /// Poll every [`POLL`] until `stop` receives a message or is disconnected.
    pub fn run(mut self, stop: Receiver<()>) {
        loop {
            self.poll();
            if !matches!(
                stop.recv_timeout(POLL),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ) {
                return;
            }
        }
    }
}

/// The reload function of the snapshot file: a version that loads is swapped into
/// `shared` (with `growth_30d` from `history`); one that does not (truncated, foreign,
/// inconsistent) leaves `shared` alone.
pub fn follow_snapshot(
    follower: &mut Follower,
    path: PathBuf,
    shared: Arc<Shared>,
    history: Arc<History>,
) {
    let name = path.clone();
    let reload = move |file: &mut File| {
        let loaded = snapshot::load_open(file, &name).map_err(|e| e.to_string())?;
        let summary = format!(
            "{} repositories, {} tags, scanned at {}",
            loaded.totals.repository_count, loaded.totals.tag_count, loaded.timestamp
        );
        shared.set_current(Current::with_history(Arc::new(loaded), &history));
        crate::memory::release();
        Ok(summary)
    };
    follower.follow("snapshot file", path, Box::new(reload));
}

/// The reload function of the usage history file the collector writes: new records are
/// replayed into `history` (the reader never writes the file), and the snapshot being
/// served gets a new index with the new `growth_30d` values.
pub fn follow_history(
    follower: &mut Follower,
    path: PathBuf,
    shared: Arc<Shared>,
    history: Arc<History>,
) {
    let mut at = None;
    let reload = move |file: &mut File| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let summary = history.follow(file, &mut at, crate::history::day_of(now))?;
        if let Some(current) = shared.get() {
            shared.set_current(Current::with_history(
                Arc::clone(&current.snapshot),
                &history,
            ));
        }
        Ok(summary)
    };
    follower.follow("history file", path, Box::new(reload));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_version_keeps_the_previous_snapshot_and_the_next_good_one_is_served() {
        let dir = std::env::temp_dir().join(format!("grur-replica-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.json");
        let shared = Arc::new(Shared::default());
        let mut follower = Follower::default();
        let history = Arc::new(History::in_memory(10));
        follow_snapshot(&mut follower, path.clone(), shared.clone(), history);
        follower.poll();
        assert!(shared.get().is_none());

        let mut b = snapshot::Builder::default();
        b.add_repository("a", Some(Vec::new()), None);
        snapshot::save(&b.finish(1.0), &path).unwrap();
        follower.poll();
        let first = shared.get().expect("the first version is served");
        assert_eq!(first.snapshot.timestamp, 1.0);

        let tmp = dir.join("garbage");
        std::fs::write(&tmp, b"{\"format\":").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        follower.poll();
        assert!(Arc::ptr_eq(&shared.get().unwrap(), &first));

        let mut b = snapshot::Builder::default();
        b.add_repository("b", Some(Vec::new()), None);
        snapshot::save(&b.finish(2.0), &path).unwrap();
        follower.poll();
        let second = shared.get().unwrap();
        assert_eq!(second.snapshot.timestamp, 2.0);
        assert!(second.snapshot.repository("b").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
