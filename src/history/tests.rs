use super::*;

fn entry(kind: Kind, name: &str, size: u64, dedup: u64, exclusive: u64, tags: u64) -> Entry {
    (
        kind,
        name.into(),
        Numbers {
            size,
            deduplicated_size: dedup,
            exclusive_size: exclusive,
            tag_count: tags,
        },
    )
}

fn repo(name: &str, dedup: u64) -> Entry {
    entry(Kind::Repository, name, dedup * 2, dedup, dedup / 2, 3)
}

fn days_of(h: &History, kind: Kind, name: &str) -> Vec<(u32, u64)> {
    h.points(kind, name, None)
        .unwrap_or_default()
        .iter()
        .map(|p| (p.day, p.numbers.deduplicated_size))
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn varints_and_zigzag_round_trip() {
    let mut out = Vec::new();
    let values = [0u64, 1, 127, 128, 300, u64::MAX, 1 << 63];
    for v in values {
        put_varint(&mut out, v);
    }
    let mut at = 0;
    for v in values {
        assert_eq!(get_varint(&out, &mut at), Some(v));
    }
    assert_eq!(at, out.len());
    for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
    // A truncated varint is not a value.
    assert_eq!(get_varint(&[0x80], &mut 0), None);
}

#[test]
fn crc32_is_zlibs() {
    // zlib.crc32(b"123456789") == 0xCBF43926, the standard check value.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn dates_are_utc_calendar_days() {
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(59), "1970-03-01");
    // 2024-02-29: 19782 days after the epoch (date -u -d 2024-02-29 +%s / 86400).
    assert_eq!(date(19_782), "2024-02-29");
    assert_eq!(date(20_454), "2026-01-01");
    assert_eq!(day_of(1_709_164_800.0), 19_782);
    assert_eq!(day_of(1_709_164_800.0 + 86_399.9), 19_782);
    assert_eq!(day_of(-5.0), 0);
}

#[test]
fn the_days_last_scan_wins_and_points_stay_in_day_order() {
    let h = History::in_memory(400);
    h.record(100, &[repo("a", 10)]);
    h.record(100, &[repo("a", 11)]);
    h.record(101, &[repo("a", 12)]);
    h.record(101, &[repo("a", 7)]);
    h.record(103, &[repo("a", 9)]);
    // A scan dated before the last point (the clock went back) changes nothing.
    h.record(102, &[repo("a", 1000)]);
    assert_eq!(
        days_of(&h, Kind::Repository, "a"),
        vec![(100, 11), (101, 7), (103, 9)]
    );
    let p = h.points(Kind::Repository, "a", None).unwrap();
    assert_eq!(
        p[2].numbers,
        Numbers {
            size: 18,
            deduplicated_size: 9,
            exclusive_size: 4,
            tag_count: 3
        }
    );
    assert_eq!(h.points(Kind::Repository, "b", None), None);
}

#[test]
fn retention_drops_old_points_and_series_deleted_long_ago() {
    let h = History::in_memory(3);
    h.record(10, &[repo("a", 1), repo("gone", 5)]);
    h.record(11, &[repo("a", 2), repo("gone", 6)]);
    // "gone" is deleted from the registry: kept while its points are young enough.
    h.record(12, &[repo("a", 3)]);
    assert_eq!(
        days_of(&h, Kind::Repository, "gone"),
        vec![(10, 5), (11, 6)]
    );
    h.record(13, &[repo("a", 4)]);
    assert_eq!(
        days_of(&h, Kind::Repository, "a"),
        vec![(11, 2), (12, 3), (13, 4)]
    );
    assert_eq!(days_of(&h, Kind::Repository, "gone"), vec![(11, 6)]);
    h.record(14, &[repo("a", 5)]);
    assert_eq!(h.points(Kind::Repository, "gone", None), None);
    // `days` counts back from the last recorded scan.
    let last2: Vec<u32> = h
        .points(Kind::Repository, "a", Some(2))
        .unwrap()
        .iter()
        .map(|p| p.day)
        .collect();
    assert_eq!(last2, vec![13, 14]);
}

#[test]
fn growth_compares_with_the_newest_point_at_least_30_days_older() {
    let h = History::in_memory(400);
    // Days 0..=29: not 30 days of history yet.
    for day in 0..30 {
        h.record(day, &[repo("a", 1000 + u64::from(day))]);
    }
    assert_eq!(h.growth(Kind::Repository, "a"), None);
    // Day 30: compared with day 0 (1000): 1500 - 1000.
    h.record(30, &[repo("a", 1500)]);
    assert_eq!(h.growth(Kind::Repository, "a"), Some(500));
    // Days 31..=39 missing; day 45 compares with day 15 (1015), shrinking gives < 0.
    h.record(45, &[repo("a", 900)]);
    assert_eq!(h.growth(Kind::Repository, "a"), Some(900 - 1015));
    // Day 61: the newest point on or before day 31 is day 30 (1500).
    h.record(61, &[repo("a", 1600)]);
    assert_eq!(h.growth(Kind::Repository, "a"), Some(100));
}

#[test]
fn a_restart_reads_back_every_day_and_compaction_keeps_them() {
    let dir = TempDir::new("restart");
    let path = dir.0.join("h");
    {
        let h = History::open(&path, 400, 0).unwrap();
        for day in 0..50 {
            h.record(day, &[repo("a", u64::from(day) * 1000), repo("b/c", 7)]);
            h.record(day, &[repo("a", u64::from(day) * 1000 + 1), repo("b/c", 7)]);
        }
    }
    let expected: Vec<(u32, u64)> = (0..50).map(|d| (d, u64::from(d) * 1000 + 1)).collect();
    let h = History::open(&path, 400, 49).unwrap();
    assert_eq!(days_of(&h, Kind::Repository, "a"), expected);
    assert_eq!(days_of(&h, Kind::Repository, "b/c").len(), 50);
    drop(h);
    // Opened 10 days later with 45 days kept: days 15..=49 left, and still after
    // another restart (the dropped days were compacted away, not resurrected).
    let h = History::open(&path, 45, 59).unwrap();
    assert_eq!(days_of(&h, Kind::Repository, "a"), expected[15..].to_vec());
    drop(h);
    let h = History::open(&path, 400, 59).unwrap();
    assert_eq!(days_of(&h, Kind::Repository, "a"), expected[15..].to_vec());
}

#[test]
fn a_torn_last_record_loses_only_that_scan() {
    let dir = TempDir::new("torn");
    let path = dir.0.join("h");
    {
        let h = History::open(&path, 400, 0).unwrap();
        h.record(1, &[repo("a", 10)]);
        h.record(2, &[repo("a", 20)]);
        h.record(3, &[repo("a", 30)]);
    }
    let whole = std::fs::read(&path).unwrap();
    // Every cut inside the last record (as a SIGKILL in the middle of the append would
    // leave it) keeps days 1 and 2; a flipped byte in it is caught by the checksum.
    let last_len = 8 + scan_payload(3, &[repo("a", 30)]).len();
    let last_start = whole.len() - last_len;
    let mut variants: Vec<Vec<u8>> = (last_start..whole.len())
        .map(|cut| whole[..cut].to_vec())
        .collect();
    let mut flipped = whole.clone();
    flipped[whole.len() - 1] ^= 0x40;
    variants.push(flipped);
    for bytes in variants {
        std::fs::write(&path, &bytes).unwrap();
        let h = History::open(&path, 400, 3).unwrap();
        assert_eq!(days_of(&h, Kind::Repository, "a"), vec![(1, 10), (2, 20)]);
        // The bad tail was cut off: the next scan appends after good records.
        h.record(4, &[repo("a", 40)]);
        drop(h);
        let h = History::open(&path, 400, 4).unwrap();
        assert_eq!(
            days_of(&h, Kind::Repository, "a"),
            vec![(1, 10), (2, 20), (4, 40)]
        );
    }
}

#[test]
fn a_foreign_file_is_refused_and_left_alone() {
    let dir = TempDir::new("foreign");
    let path = dir.0.join("h");
    std::fs::write(&path, b"{\"not\": \"a history\"}").unwrap();
    let e = History::open(&path, 400, 0).err().unwrap();
    assert!(
        e.contains("not a history file") && e.contains("history_file"),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"not\": \"a history\"}");
}

#[test]
fn the_file_is_compacted_when_appends_outgrow_it() {
    let dir = TempDir::new("compact");
    let path = dir.0.join("h");
    let h = History::open(&path, 400, 0).unwrap();
    let entries: Vec<Entry> = (0..2000)
        .map(|i| repo(&format!("group/repo-{i}"), 5))
        .collect();
    let one_scan = 8 + scan_payload(0, &entries).len() as u64;
    // Scans all on one day: the points replace each other, so the compacted history
    // stays one point per series while the appended scans pile up until compaction.
    let scans = MIN_TAIL / one_scan + 3;
    for _ in 0..scans {
        h.record(0, &entries);
    }
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < scans * one_scan, "{size} >= {}", scans * one_scan);
    assert!(
        size <= MIN_TAIL + 2 * one_scan + MAGIC.len() as u64 * 2,
        "{size}"
    );
    drop(h);
    let h = History::open(&path, 400, 0).unwrap();
    assert_eq!(h.footprint().0, 2000);
    assert_eq!(
        days_of(&h, Kind::Repository, "group/repo-1999"),
        vec![(0, 5)]
    );
}

#[test]
fn growth_30d_of_repositories_and_namespaces_and_their_order() {
    use crate::current::Current;
    use crate::snapshot::{Builder, LayerRef, ScannedTag};
    use crate::usage::order::{ListOptions, Sort, SortKey};
    let layer = |d: u32, size: u64| LayerRef {
        digest: format!("sha256:{d:064x}").as_str().into(),
        size,
    };
    let tag = |m: u32, layers: Vec<LayerRef>| ScannedTag {
        name: "v1".into(),
        digest: Some(format!("sha256:{m:064x}").as_str().into()),
        layers: layers.into(),
    };
    let mut b = Builder::default();
    // g/a {x 1000}, g/b {x 1000, y 500}, h/c {z 300}: deduplicated g/a 1000, g/b 1500,
    // h/c 300; namespace g 1500 (x once), h 300.
    b.add_repository("g/a", Some(vec![tag(10, vec![layer(1, 1000)])]), None);
    b.add_repository(
        "g/b",
        Some(vec![tag(11, vec![layer(1, 1000), layer(2, 500)])]),
        None,
    );
    b.add_repository("h/c", Some(vec![tag(12, vec![layer(3, 300)])]), None);
    let snapshot = std::sync::Arc::new(b.finish(100.0 * 86_400.0 + 5.0));
    let h = History::in_memory(400);
    // Day 70 is 30 days before day 100: the base. Day 75 is too recent to be one.
    h.record(
        70,
        &[
            repo("g/a", 400),
            repo("g/b", 1500),
            entry(Kind::Namespace, "g", 0, 1000, 0, 0),
        ],
    );
    h.record(75, &[repo("g/a", 100)]);
    let current = Current::with_history(snapshot, &h);
    let (s, u) = (&current.snapshot, &current.usage);
    let growth = |name: &str| {
        u.repository_growth(
            s.repositories
                .iter()
                .position(|r| &*r.name == name)
                .unwrap(),
        )
    };
    assert_eq!(growth("g/a"), Some(1000 - 400));
    assert_eq!(growth("g/b"), Some(0));
    assert_eq!(growth("h/c"), None, "no point 30 days back");
    let ns = |name: &str| u.namespaces()[u.namespace(name).unwrap() as usize].growth_30d;
    assert_eq!(ns("g"), Some(1500 - 1000));
    assert_eq!(ns("h"), None);
    let sorted = |descending: bool| -> Vec<&str> {
        let options = ListOptions {
            sort: Some(Sort {
                key: SortKey::Growth30d,
                descending,
            }),
            ..ListOptions::default()
        };
        u.select_repositories(s, &options)
            .items
            .iter()
            .map(|&r| &*s.repositories[r as usize].name)
            .collect()
    };
    assert_eq!(
        sorted(true),
        ["g/a", "g/b", "h/c"],
        "unknown growth last when descending"
    );
    assert_eq!(
        sorted(false),
        ["h/c", "g/b", "g/a"],
        "unknown growth first when ascending"
    );
    // Shrinking sorts below no change.
    use crate::usage::order::signed_sort_value as v;
    assert!(v(i64::MIN) < v(-100) && v(-100) < v(0) && v(0) < v(5) && v(5) < v(i64::MAX));
}

#[test]
fn a_series_record_with_days_out_of_order_is_refused() {
    let dir = TempDir::new("order");
    let path = dir.0.join("h");
    let mut payload = vec![SERIES_RECORD];
    put_name(&mut payload, Kind::Repository, "a");
    let p = |day| Point {
        day,
        numbers: Numbers::default(),
    };
    encode_point(&mut payload, ZERO, p(5));
    encode_point(&mut payload, p(5), p(5));
    let mut bytes = MAGIC.to_vec();
    frame(&mut bytes, &payload);
    std::fs::write(&path, &bytes).unwrap();
    let h = History::open(&path, 400, 5).unwrap();
    assert_eq!(h.points(Kind::Repository, "a", None), None);
    // A good one is kept byte for byte.
    let good = Series::from_encoded(&payload[4..payload.len() - 5]).unwrap();
    assert_eq!(good.points().collect::<Vec<_>>(), vec![p(5)]);
}

#[test]
fn a_reader_follows_appends_half_written_records_and_compactions_without_writing() {
    let dir = TempDir::new("follow");
    let path = dir.0.join("h");
    let writer = History::open(&path, 400, 0).unwrap();
    writer.record(1, &[repo("a", 10)]);
    let reader = History::in_memory(400);
    let mut at = None;
    let follow = |at: &mut Option<Position>| {
        let mut f = File::open(&path).unwrap();
        reader.follow(&mut f, at, 2)
    };
    follow(&mut at).unwrap();
    assert_eq!(days_of(&reader, Kind::Repository, "a"), vec![(1, 10)]);
    let first = at.unwrap();

    // An append is replayed from where the last read stopped, not from the start.
    writer.record(2, &[repo("a", 20), repo("b", 5)]);
    assert_eq!(follow(&mut at).unwrap(), "1 new records");
    assert!(at.unwrap().offset > first.offset);
    assert_eq!(
        days_of(&reader, Kind::Repository, "a"),
        vec![(1, 10), (2, 20)]
    );
    assert_eq!(days_of(&reader, Kind::Repository, "b"), vec![(2, 5)]);

    // A record the writer is still appending is left for the next look.
    let whole = std::fs::read(&path).unwrap();
    let record = {
        let mut r = Vec::new();
        frame(&mut r, &scan_payload(3, &[repo("a", 30)]));
        r
    };
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&record[..record.len() - 3]).unwrap();
    assert_eq!(follow(&mut at).unwrap(), "0 new records");
    assert_eq!(at.unwrap().offset, whole.len() as u64);
    f.write_all(&record[record.len() - 3..]).unwrap();
    drop(f);
    assert_eq!(follow(&mut at).unwrap(), "1 new records");
    assert_eq!(
        days_of(&reader, Kind::Repository, "a"),
        vec![(1, 10), (2, 20), (3, 30)]
    );
    drop(writer);

    // The writer compacts on its next start (day 1 ages out with 3 days kept): a new file
    // under the name, read whole; the reader drops what the writer dropped.
    let writer = History::open(&path, 3, 4).unwrap();
    drop(writer);
    let compacted = std::fs::read(&path).unwrap();
    let reader_days = {
        follow(&mut at).unwrap();
        days_of(&reader, Kind::Repository, "a")
    };
    assert_eq!(reader_days, vec![(2, 20), (3, 30)]);

    // Something else under the name is refused, and what was served stays.
    let tmp = dir.0.join("other");
    std::fs::write(&tmp, b"garbage").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let e = follow(&mut at).unwrap_err();
    assert!(e.contains("not a history file"), "{e}");
    assert_eq!(
        days_of(&reader, Kind::Repository, "a"),
        vec![(2, 20), (3, 30)]
    );

    // The reader never wrote: the compacted file was left as the writer wrote it.
    std::fs::write(&path, &compacted).unwrap();
    follow(&mut at).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), compacted);
}

#[test]
fn a_series_holds_its_encoding_without_slack_and_decodes_its_first_point() {
    let p = |day, dedup| Point {
        day,
        numbers: Numbers {
            deduplicated_size: dedup,
            ..Numbers::default()
        },
    };
    let mut s = Series::default();
    for (day, dedup) in [(3, 100), (4, 150), (4, 170), (9, 1 << 40)] {
        assert!(s.record(p(day, dedup)));
        // A reserve of one point's worst case (50 bytes) once stayed in every series.
        assert_eq!(s.bytes.capacity(), s.bytes.len());
    }
    assert_eq!(s.first(), Some(p(3, 100)));
    let points: Vec<Point> = s.points().collect();
    assert_eq!(points, [p(3, 100), p(4, 170), p(9, 1 << 40)]);
    assert!(s.retain_from(4));
    assert_eq!(s.first(), Some(p(4, 170)));
}

/// Found by fuzzing the history file (fuzz/corpus/history/crash-b39194e9...): a series
/// record whose last point was cut short (its day there, its numbers missing) loaded, with
/// the partial point kept in the series' bytes; the next point recorded was appended to it
/// and read back as a garbled point, so `/history` and `growth_30d` disagreed.
#[test]
fn a_series_record_with_a_point_cut_short_is_refused() {
    let dir = TempDir::new("cut");
    let path = dir.0.join("h");
    let mut payload = vec![SERIES_RECORD];
    put_name(&mut payload, Kind::Repository, "a");
    let p = |day, dedup| Point {
        day,
        numbers: Numbers {
            deduplicated_size: dedup,
            ..Numbers::default()
        },
    };
    encode_point(&mut payload, ZERO, p(5, 7));
    put_varint(&mut payload, 3); // the next day, and nothing more
    let mut bytes = MAGIC.to_vec();
    frame(&mut bytes, &payload);
    std::fs::write(&path, &bytes).unwrap();
    let h = History::open(&path, 400, 5).unwrap();
    assert_eq!(h.points(Kind::Repository, "a", None), None);
    h.record(40, &[repo("a", 9)]);
    assert_eq!(days_of(&h, Kind::Repository, "a"), vec![(40, 9)]);
    assert_eq!(h.growth(Kind::Repository, "a"), None);
}
