//! Usage history: one point per day for the registry, every namespace and every
//! repository, kept `history_days` days, in memory and (optionally) in a file.
//!
//! Memory: each series is its points encoded as varints of the differences to the
//! previous point (day, size, deduplicated, exclusive, tag count), so a repository that
//! did not change costs 5 bytes a day, and 10k repositories × 400 days stay in tens of
//! MiB (BENCHMARKS.md). Only the last point of a series is ever replaced (the day's last
//! scan wins) and old points are dropped from the front, which this encoding allows.
//!
//! File: a header, then records `length u32 | crc32 u32 | payload`, appended and
//! `fsync`ed after each scan. A record is either a whole series (written by compaction)
//! or one scan's points (`day` + name and numbers per series). Loading replays them in
//! order and stops at the first record that is short or fails its checksum: a SIGKILL
//! during an append tears at most that last record (the current day's latest scan), and
//! earlier records were synced before it. The file is compacted (rewritten whole into a
//! temporary file, synced, renamed over) at start when it needs it and when the appended
//! records outgrow the compacted part, so its size stays within twice the history's.
//!
//! Days are UTC days since 1970-01-01, given by the caller (the scan's end time, or a
//! test's clock): nothing here reads the system clock.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::current::Current;

/// The numbers of one point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Numbers {
    pub size: u64,
    pub deduplicated_size: u64,
    pub exclusive_size: u64,
    pub tag_count: u64,
}

impl Numbers {
    fn fields(&self) -> [u64; 4] {
        [
            self.size,
            self.deduplicated_size,
            self.exclusive_size,
            self.tag_count,
        ]
    }

    fn from_fields(f: [u64; 4]) -> Numbers {
        Numbers {
            size: f[0],
            deduplicated_size: f[1],
            exclusive_size: f[2],
            tag_count: f[3],
        }
    }
}

/// One day of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// UTC days since 1970-01-01.
    pub day: u32,
    pub numbers: Numbers,
}

/// What a series is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Registry = 0,
    Namespace = 1,
    Repository = 2,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Registry),
            1 => Some(Kind::Namespace),
            2 => Some(Kind::Repository),
            _ => None,
        }
    }
}

/// Days between the points `growth_30d` compares.
pub const GROWTH_DAYS: u32 = 30;

/// A series: its points as difference-encoded varints.
#[derive(Debug, Clone, Default)]
struct Series {
    bytes: Vec<u8>,
    /// Offset of the last point in `bytes`.
    last_start: usize,
    /// The point before the last (what the last is encoded against); zero for the first.
    before_last: Option<Point>,
    last: Option<Point>,
}

/// The longest encoding of one point (five varints of at most 10 bytes).
const MAX_POINT_BYTES: usize = 50;

/// What the first point of a series is encoded against.
const ZERO: Point = Point {
    day: 0,
    numbers: Numbers {
        size: 0,
        deduplicated_size: 0,
        exclusive_size: 0,
        tag_count: 0,
    },
};

impl Series {
    fn points(&self) -> Points<'_> {
        Points {
            bytes: &self.bytes,
            at: 0,
            previous: ZERO,
        }
    }

    /// The oldest point (decoded: one field fewer in each of 100k series).
    fn first(&self) -> Option<Point> {
        self.points().next()
    }

    /// A series from its encoding (a compacted record), checked point by point: whole
    /// varints, days strictly increasing. The bytes are kept as they are.
    fn from_encoded(bytes: &[u8]) -> Option<Series> {
        let mut series = Series::default();
        let mut points = Points {
            bytes,
            at: 0,
            previous: ZERO,
        };
        loop {
            let start = points.at;
            let Some(p) = points.next() else {
                // Only the end of the bytes ends the points: a point cut short would be
                // kept in `bytes`, and the next point recorded would be appended to it
                // and read back as another (found by fuzzing the history file).
                if start != bytes.len() {
                    return None;
                }
                break;
            };
            if let Some(last) = series.last {
                if p.day <= last.day {
                    return None;
                }
                series.before_last = Some(last);
            }
            series.last_start = start;
            series.last = Some(p);
        }
        series.bytes = bytes.to_vec();
        Some(series)
    }

    /// Adds the point of `p.day`, replacing the last one if it is of the same day. A
    /// point older than the last is ignored (the clock went back); returns whether kept.
    fn record(&mut self, p: Point) -> bool {
        match self.last {
            Some(last) if p.day < last.day => return false,
            Some(last) if p.day == last.day => {
                self.bytes.truncate(self.last_start);
            }
            Some(last) => {
                self.before_last = Some(last);
                self.last_start = self.bytes.len();
            }
            None => self.last_start = 0,
        }
        let base = self.before_last.unwrap_or(ZERO);
        // Exact size: a series grows by one point a day, and slack (doubling capacities,
        // or this reserve) would be up to half of the history's memory.
        self.bytes.reserve_exact(MAX_POINT_BYTES);
        encode_point(&mut self.bytes, base, p);
        self.bytes.shrink_to_fit();
        self.last = Some(p);
        true
    }

    /// Drops the points older than `oldest`; returns whether any is left.
    fn retain_from(&mut self, oldest: u32) -> bool {
        if self.first().is_some_and(|f| f.day < oldest) {
            let kept: Vec<Point> = self.points().filter(|p| p.day >= oldest).collect();
            *self = Series::default();
            for p in kept {
                self.record(p);
            }
        }
        self.last.is_some()
    }

    /// The newest point at least [`GROWTH_DAYS`] days before `day`.
    fn growth_base(&self, day: u32) -> Option<Point> {
        let cutoff = day.checked_sub(GROWTH_DAYS)?;
        self.points().take_while(|p| p.day <= cutoff).last()
    }

    /// `growth_30d`: the last point's deduplicated size minus that of the newest point at
    /// least [`GROWTH_DAYS`] days older; `None` when there is no such point.
    fn growth(&self) -> Option<i64> {
        let last = self.last?;
        let base = self.growth_base(last.day)?;
        Some(growth_between(
            last.numbers.deduplicated_size,
            base.numbers.deduplicated_size,
        ))
    }
}

/// `growth_30d` of two deduplicated sizes: `now - then`, saturated to `i64` (sizes come
/// from registry answers and files, so they may be absurd; a difference must not overflow).
pub fn growth_between(now: u64, then: u64) -> i64 {
    let difference = i128::from(now) - i128::from(then);
    i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
}

fn encode_point(out: &mut Vec<u8>, base: Point, p: Point) {
    put_varint(out, u64::from(p.day - base.day));
    for (new, old) in p.numbers.fields().iter().zip(base.numbers.fields()) {
        put_varint(out, zigzag(new.wrapping_sub(old) as i64));
    }
}

struct Points<'a> {
    bytes: &'a [u8],
    at: usize,
    previous: Point,
}

impl Iterator for Points<'_> {
    type Item = Point;
    fn next(&mut self) -> Option<Point> {
        let p = decode_point(self.bytes, &mut self.at, self.previous)?;
        self.previous = p;
        Some(p)
    }
}

fn decode_point(bytes: &[u8], at: &mut usize, previous: Point) -> Option<Point> {
    if *at >= bytes.len() {
        return None;
    }
    let day = u32::try_from(u64::from(previous.day).checked_add(get_varint(bytes, at)?)?).ok()?;
    let mut fields = previous.numbers.fields();
    for f in fields.iter_mut() {
        *f = f.wrapping_add(unzigzag(get_varint(bytes, at)?) as u64);
    }
    Some(Point {
        day,
        numbers: Numbers::from_fields(fields),
    })
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// CRC-32 (IEEE, as zlib), bitwise with a table built at compile time.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

const MAGIC: &[u8; 8] = b"GRUHIST1";
const SERIES_RECORD: u8 = b'S';
const SCAN_RECORD: u8 = b'D';
/// Appended records may grow to this before the file is compacted, however small the
/// compacted part is.
const MIN_TAIL: u64 = 4 << 20;

/// The history of every series, and the file it is kept in.
pub struct History {
    state: Mutex<State>,
}

struct State {
    series: HashMap<(Kind, Box<str>), Series>,
    days: u32,
    /// The day of the last recorded scan.
    last_day: Option<u32>,
    file: Option<Store>,
}

struct Store {
    path: PathBuf,
    /// Open for appending.
    file: File,
    /// Size of the file after its last compaction, and now.
    compacted: u64,
    size: u64,
}

/// What `/history` and `growth_30d` need of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub points: Vec<Point>,
}

impl History {
    /// An empty history kept in memory only.
    pub fn in_memory(days: u32) -> History {
        History {
            state: Mutex::new(State {
                series: HashMap::new(),
                days: days.max(1),
                last_day: None,
                file: None,
            }),
        }
    }

    /// The history in `path` (created if missing), with points before
    /// `today - days + 1` dropped. A torn or corrupt tail is logged and cut off by
    /// rewriting the file; a file that is not a history file is an error (nothing is
    /// overwritten).
    pub fn open(path: &Path, days: u32, today: u32) -> Result<History, String> {
        let history = History::in_memory(days);
        let mut state = history.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut needs_rewrite = false;
        match File::open(path) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)
                    .map_err(|e| format!("history file {}: cannot read it: {e}", path.display()))?;
                if bytes.is_empty() {
                    needs_rewrite = true;
                } else {
                    let (replayed, good) = state.load(&bytes).ok_or_else(|| {
                        format!(
                            "history file {}: not a history file of this service (it does not \
                             start with {:?}); move it away or set [general] history_file",
                            path.display(),
                            std::str::from_utf8(MAGIC).unwrap_or_default()
                        )
                    })?;
                    if good < bytes.len() {
                        crate::log!(
                            warn,
                            "history file has a torn or corrupt record at its end; dropping it",
                            file = path.display(),
                            offset = good,
                            dropped_bytes = bytes.len() - good,
                            records_kept = replayed
                        );
                        needs_rewrite = true;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => needs_rewrite = true,
            Err(e) => {
                return Err(format!(
                    "history file {}: cannot open it: {e}",
                    path.display()
                ))
            }
        }
        needs_rewrite |= state.retain(today);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| {
                format!(
                    "history file {}: cannot open it for writing: {e}",
                    path.display()
                )
            })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        state.file = Some(Store {
            path: path.to_path_buf(),
            file,
            compacted: size,
            size,
        });
        if needs_rewrite || state.needs_compaction() {
            state
                .compact()
                .map_err(|e| format!("history file {}: cannot rewrite it: {e}", path.display()))?;
        }
        drop(state);
        // The file was read whole: give its buffer back to the kernel.
        crate::memory::release();
        Ok(history)
    }

    /// Records the numbers of `current` as the points of `day` and persists them.
    /// Series not in `current` (deleted repositories) keep their points until they age
    /// out. A file error is logged; the points stay in memory.
    pub fn record_scan(&self, current: &Current, day: u32) {
        self.record(day, &entries_of(current));
    }

    /// Records `entries` (kind, name, numbers) as the points of `day` and persists them.
    pub fn record(&self, day: u32, entries: &[Entry]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.record(day, entries);
        state.retain(day);
        if let Some(store) = &state.file {
            let payload = scan_payload(day, entries);
            let path = store.path.clone();
            let result = state.append(&payload).and_then(|()| {
                if state.needs_compaction() {
                    state.compact()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = result {
                crate::log!(
                    error,
                    "cannot write the history file; the points are kept in memory",
                    file = path.display(),
                    error = e
                );
            }
        }
    }

    /// The points of a series, oldest first, of the last `days` days up to the last
    /// recorded scan (all when `None`); `None` when there is no such series.
    pub fn points(&self, kind: Kind, name: &str, days: Option<u32>) -> Option<Vec<Point>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let series = state.series.get(&(kind, name.into()))?;
        let oldest = match (days, state.last_day) {
            (Some(d), Some(last)) => (last + 1).saturating_sub(d),
            _ => 0,
        };
        Some(series.points().filter(|p| p.day >= oldest).collect())
    }

    /// What `growth_30d` compares a series' value of `day` with: the deduplicated size of
    /// its newest point at least [`GROWTH_DAYS`] days before `day`.
    pub fn growth_base(&self, kind: Kind, name: &str, day: u32) -> Option<u64> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let base = state.series.get(&(kind, name.into()))?.growth_base(day)?;
        Some(base.numbers.deduplicated_size)
    }

    /// `growth_30d` of a series (see [`GROWTH_DAYS`]).
    pub fn growth(&self, kind: Kind, name: &str) -> Option<i64> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.series.get(&(kind, name.into()))?.growth()
    }

    /// How many series and points are kept, and the encoded bytes (for the benchmarks).
    /// A reader's side of a history file that another process (the collector) writes:
    /// reads `file`, never writes it. The same file as last time (same device and inode)
    /// that has grown gets only its new records replayed; anything else (the first call,
    /// a compaction's rename, a shorter file) is read whole into a fresh state that then
    /// replaces this one. A record the writer is still appending (cut short, or its
    /// checksum not matching yet) is left for the next call, which starts there. A file
    /// that is not a history file is an `Err` and changes nothing.
    pub fn follow(
        &self,
        file: &mut File,
        at: &mut Option<Position>,
        today: u32,
    ) -> Result<String, String> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat it: {e}"))?;
        let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
        if let Some(p) = at.filter(|p| p.dev == dev && p.ino == ino && len >= p.offset) {
            file.seek(SeekFrom::Start(p.offset))
                .map_err(|e| format!("cannot seek to {}: {e}", p.offset))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read it: {e}"))?;
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (records, good) = state.replay(&bytes);
            state.retain(today);
            *at = Some(Position {
                offset: p.offset + good as u64,
                ..p
            });
            return Ok(format!("{records} new records"));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read it: {e}"))?;
        if !bytes.starts_with(MAGIC) {
            return Err(format!(
                "not a history file of this service (it does not start with {:?})",
                std::str::from_utf8(MAGIC).unwrap_or_default()
            ));
        }
        let fresh = History::in_memory(self.days());
        let mut state = fresh.state.into_inner().unwrap_or_else(|e| e.into_inner());
        let (_, good) = state.replay(&bytes[MAGIC.len()..]);
        drop(bytes);
        state.retain(today);
        let series = state.series.len();
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        *at = Some(Position {
            dev,
            ino,
            offset: (MAGIC.len() + good) as u64,
        });
        crate::memory::release();
        Ok(format!("{series} series"))
    }

    /// How many days of points are kept.
    fn days(&self) -> u32 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).days
    }

    pub fn footprint(&self) -> (usize, usize, usize) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let points = state.series.values().map(|s| s.points().count()).sum();
        let bytes = state.series.values().map(|s| s.bytes.len()).sum();
        (state.series.len(), points, bytes)
    }
}

/// Where [`History::follow`] stopped reading a file: the next call replays from here if
/// the file is still the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    dev: u64,
    ino: u64,
    offset: u64,
}

/// A series and its numbers at one scan.
pub type Entry = (Kind, Box<str>, Numbers);

/// Every series of a snapshot generation with its numbers.
fn entries_of(current: &Current) -> Vec<Entry> {
    let (snapshot, usage) = (&*current.snapshot, &current.usage);
    let mut out = Vec::with_capacity(1 + usage.namespaces().len() + snapshot.repositories.len());
    out.push((
        Kind::Registry,
        "".into(),
        Numbers {
            size: snapshot.totals.size,
            deduplicated_size: usage.deduplicated_size(),
            exclusive_size: usage.deduplicated_size(),
            tag_count: snapshot.totals.tag_count as u64,
        },
    ));
    for n in usage.namespaces() {
        out.push((
            Kind::Namespace,
            n.name.clone(),
            Numbers {
                size: n.size,
                deduplicated_size: n.deduplicated_size,
                exclusive_size: n.exclusive_size,
                tag_count: n.tag_count,
            },
        ));
    }
    for (r, repo) in snapshot.repositories.iter().enumerate() {
        // A repository whose tags are unknown has no numbers to record.
        let Some(tags) = &repo.tags else { continue };
        let u = usage.repository(r);
        out.push((
            Kind::Repository,
            repo.name.as_ref().into(),
            Numbers {
                size: repo.size.unwrap_or(0),
                deduplicated_size: u.deduplicated_size,
                exclusive_size: u.exclusive_size,
                tag_count: tags.len() as u64,
            },
        ));
    }
    out
}

fn put_name(out: &mut Vec<u8>, kind: Kind, name: &str) {
    out.push(kind as u8);
    put_varint(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
}

fn get_name(bytes: &[u8], at: &mut usize) -> Option<(Kind, Box<str>)> {
    let kind = Kind::from_byte(*bytes.get(*at)?)?;
    *at += 1;
    let len = usize::try_from(get_varint(bytes, at)?).ok()?;
    let end = at.checked_add(len)?;
    let name = std::str::from_utf8(bytes.get(*at..end)?).ok()?;
    *at = end;
    Some((kind, name.into()))
}

fn scan_payload(day: u32, entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 40);
    out.push(SCAN_RECORD);
    put_varint(&mut out, u64::from(day));
    put_varint(&mut out, entries.len() as u64);
    for (kind, name, numbers) in entries {
        put_name(&mut out, *kind, name);
        for f in numbers.fields() {
            put_varint(&mut out, f);
        }
    }
    out
}

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

impl State {
    fn record(&mut self, day: u32, entries: &[Entry]) {
        for (kind, name, numbers) in entries {
            let point = Point {
                day,
                numbers: *numbers,
            };
            match self.series.get_mut(&(*kind, name.clone())) {
                Some(s) => {
                    s.record(point);
                }
                None => {
                    let mut s = Series::default();
                    s.record(point);
                    self.series.insert((*kind, name.clone()), s);
                }
            }
        }
        self.last_day = Some(self.last_day.map_or(day, |d| d.max(day)));
    }

    /// Drops the points older than `days` before `today`; returns whether any was.
    fn retain(&mut self, today: u32) -> bool {
        let oldest = (today + 1).saturating_sub(self.days);
        let mut dropped = false;
        self.series.retain(|_, s| {
            dropped |= s.first().is_some_and(|f| f.day < oldest);
            s.retain_from(oldest)
        });
        dropped
    }

    /// Applies the records of a history file's `bytes` (`None` when they do not start
    /// with its magic); returns how many were applied and the length of the good prefix,
    /// magic included.
    fn load(&mut self, bytes: &[u8]) -> Option<(usize, usize)> {
        let records = bytes.strip_prefix(MAGIC)?;
        let (replayed, good) = self.replay(records);
        Some((replayed, MAGIC.len() + good))
    }

    /// Applies the records of `bytes`; returns how many were applied and the length of
    /// the good prefix.
    fn replay(&mut self, bytes: &[u8]) -> (usize, usize) {
        let mut at = 0;
        let mut count = 0;
        while let Some((payload, next)) = next_record(bytes, at) {
            if self.apply(payload).is_none() {
                break;
            }
            at = next;
            count += 1;
        }
        (count, at)
    }

    fn apply(&mut self, payload: &[u8]) -> Option<()> {
        let mut at = 1;
        match *payload.first()? {
            SERIES_RECORD => {
                let (kind, name) = get_name(payload, &mut at)?;
                let series = Series::from_encoded(&payload[at..])?;
                if let Some(last) = series.last {
                    self.last_day = Some(self.last_day.map_or(last.day, |d| d.max(last.day)));
                }
                self.series.insert((kind, name), series);
            }
            SCAN_RECORD => {
                let day = u32::try_from(get_varint(payload, &mut at)?).ok()?;
                let count = get_varint(payload, &mut at)?;
                let mut entries = Vec::new();
                for _ in 0..count {
                    let (kind, name) = get_name(payload, &mut at)?;
                    let mut f = [0u64; 4];
                    for v in f.iter_mut() {
                        *v = get_varint(payload, &mut at)?;
                    }
                    entries.push((kind, name, Numbers::from_fields(f)));
                }
                if at != payload.len() {
                    return None;
                }
                self.record(day, &entries);
            }
            _ => return None,
        }
        Some(())
    }

    fn append(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let Some(store) = &mut self.file else {
            return Ok(());
        };
        let mut record = Vec::with_capacity(payload.len() + 8);
        frame(&mut record, payload);
        store.file.write_all(&record)?;
        store.file.sync_data()?;
        store.size += record.len() as u64;
        Ok(())
    }

    fn needs_compaction(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|s| s.size - s.compacted.min(s.size) > s.compacted.max(MIN_TAIL))
    }

    /// Rewrites the file as one record per series: into `<file>.tmp`, synced, renamed
    /// over the file, directory synced.
    fn compact(&mut self) -> std::io::Result<()> {
        let Some(store) = &self.file else {
            return Ok(());
        };
        let tmp = {
            let mut name = store.path.clone().into_os_string();
            name.push(".tmp");
            PathBuf::from(name)
        };
        let mut out = BufWriter::new(File::create(&tmp)?);
        let size = self.write_compacted(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &store.path)?;
        if let Some(dir) = store.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        let file = OpenOptions::new().append(true).open(&store.path)?;
        let path = store.path.clone();
        self.file = Some(Store {
            path,
            file,
            compacted: size,
            size,
        });
        Ok(())
    }
}

impl State {
    /// Writes the compacted file (one record per series, in name order) to `out`;
    /// returns its length.
    fn write_compacted(&self, out: &mut impl Write) -> std::io::Result<u64> {
        let sorted: BTreeMap<_, _> = self.series.iter().collect();
        out.write_all(MAGIC)?;
        let mut size = MAGIC.len() as u64;
        let mut record = Vec::new();
        let mut payload = Vec::new();
        for ((kind, name), series) in sorted {
            payload.clear();
            payload.push(SERIES_RECORD);
            put_name(&mut payload, *kind, name);
            payload.extend_from_slice(&series.bytes);
            record.clear();
            frame(&mut record, &payload);
            out.write_all(&record)?;
            size += record.len() as u64;
        }
        Ok(size)
    }
}

/// What [`History::open`] makes of a file's bytes, without the file (for the fuzz check
/// of the loader): the history (points before `today - days + 1` dropped), the length of
/// the good prefix (`None`: not a history file), and the bytes a compaction would write.
pub(crate) fn load_bytes(bytes: &[u8], days: u32, today: u32) -> Option<(History, usize, Vec<u8>)> {
    let history = History::in_memory(days);
    let mut state = history.state.lock().unwrap_or_else(|e| e.into_inner());
    let (_, good) = state.load(bytes)?;
    state.retain(today);
    let mut compacted = Vec::new();
    state
        .write_compacted(&mut compacted)
        .expect("writing to memory");
    drop(state);
    Some((history, good, compacted))
}

impl History {
    /// Every series and its points, in name order (for the fuzz check of the loader).
    pub(crate) fn all_points(&self) -> Vec<(Kind, Box<str>, Vec<Point>)> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = state
            .series
            .iter()
            .map(|((kind, name), s)| (*kind, name.clone(), s.points().collect()))
            .collect();
        all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        all
    }
}

/// The payload of the record at `at` and where the next starts, if it is whole and its
/// checksum matches.
fn next_record(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = bytes.get(at..at.checked_add(8)?)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    let end = (at + 8).checked_add(len)?;
    let payload = bytes.get(at + 8..end)?;
    (crc32(payload) == crc).then_some((payload, end))
}

/// The history `[general]` asks for: its file (loaded, with today's retention), or in
/// memory only when there is no file.
pub fn open(general: &crate::config::General) -> Result<History, String> {
    match &general.history_file {
        Some(path) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let h = History::open(path, general.history_days, day_of(now))?;
            let (series, points, _) = h.footprint();
            crate::log!(
                info,
                "loaded the usage history",
                file = path.display(),
                series = series,
                points = points
            );
            Ok(h)
        }
        None => Ok(History::in_memory(general.history_days)),
    }
}

/// The UTC day of a unix time (seconds).
pub fn day_of(unix_seconds: f64) -> u32 {
    (unix_seconds.max(0.0) / 86_400.0) as u32
}

/// `YYYY-MM-DD` of a day (proleptic Gregorian, as `date -u +%F`).
pub fn date(day: u32) -> String {
    let (y, m, d) = crate::rfc3339::civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests;
