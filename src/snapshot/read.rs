//! Reading a snapshot file in pieces.
//!
//! serde_json's reader interface takes a file byte by byte through `io::Read`, about 1.5
//! times the time of a parse from a slice, and a slice of the whole file would hold it
//! all at once (207 MB at a million tags). So the file is read in between: this module
//! walks the top-level object and its two arrays itself, copies each element (a blob, a
//! repository) whole into a buffer, and has serde_json parse that slice. Once the file
//! has more than one batch of repositories, batches are parsed on helper threads while
//! the file is still being read; results keep the file's order.
//!
//! The walk only finds where a value ends (brackets and braces counted outside strings,
//! a string's escapes skipped); whether the value is valid JSON of the right shape is
//! serde_json's verdict on its bytes. So every file the reader takes is valid JSON, and
//! every error names the byte offset in the file where it was found.

use std::borrow::Cow;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::{Error as _, IgnoredAny};
use serde::Deserialize;

use super::{append, pack, unsized_tag, Blob, Digest, Names, Repository, FORMAT};

/// What a file holds, read into the parts of a `Builder`.
pub(super) struct Loaded {
    pub timestamp: f64,
    pub dates: bool,
    pub blobs: Vec<Blob>,
    pub repositories: Vec<Repository>,
}

#[derive(Deserialize)]
struct TagIn {
    name: String,
    #[serde(default)]
    digest: Option<Digest>,
    layers: Vec<u32>,
    #[serde(default)]
    created: Option<i64>,
}

#[derive(Deserialize)]
struct RepositoryIn {
    name: String,
    #[serde(default)]
    tags: Option<Vec<TagIn>>,
    #[serde(default)]
    error: Option<String>,
}

/// Repositories' bytes handed to a helper at a time: large enough that a hand-over costs
/// nothing next to the parse, small enough that the batches in flight are a few MiB.
pub(super) const BATCH_BYTES: usize = 1 << 20;

type Error = serde_json::Error;

fn at(offset: u64, what: impl std::fmt::Display) -> Error {
    Error::custom(format_args!("at byte {offset}: {what}"))
}

/// A buffered file read a JSON value at a time, counting the bytes it has consumed.
struct Pieces<R> {
    reader: R,
    offset: u64,
}

impl<R: BufRead> Pieces<R> {
    fn buffer(&mut self) -> Result<&[u8], Error> {
        while let Err(e) = self.reader.fill_buf() {
            if e.kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
        self.reader.fill_buf().map_err(Error::io)
    }

    fn consume(&mut self, n: usize) {
        self.reader.consume(n);
        self.offset += n as u64;
    }

    /// The next byte that is not JSON whitespace, left unread; `None` at the end.
    fn peek(&mut self) -> Result<Option<u8>, Error> {
        loop {
            let buf = self.buffer()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            {
                Some(i) => {
                    let b = buf[i];
                    self.consume(i);
                    return Ok(Some(b));
                }
                None => {
                    let n = buf.len();
                    self.consume(n);
                }
            }
        }
    }

    /// Reads `want` (after whitespace) or says what was there instead.
    fn expect(&mut self, want: &[u8]) -> Result<u8, Error> {
        match self.peek()? {
            Some(b) if want.contains(&b) => {
                self.consume(1);
                Ok(b)
            }
            found => Err(self.unexpected(found, want)),
        }
    }

    fn unexpected(&self, found: Option<u8>, want: &[u8]) -> Error {
        let want: Vec<String> = want.iter().map(|&b| format!("{:?}", b as char)).collect();
        match found {
            Some(b) => at(
                self.offset,
                format_args!("expected {}, found {:?}", want.join(" or "), b as char),
            ),
            None => at(
                self.offset,
                format_args!("expected {}, found the end of the file", want.join(" or ")),
            ),
        }
    }

    /// Appends the bytes of the next value (after whitespace) to `out`. Where a string,
    /// an object or an array ends is all that is decided here.
    fn value(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let Some(first) = self.peek()? else {
            return Err(at(
                self.offset,
                "expected a value, found the end of the file",
            ));
        };
        let mut scan = Scan::starting_with(first);
        loop {
            let buf = self.buffer()?;
            if buf.is_empty() {
                return match scan {
                    // A number or a literal may end the file; serde_json judges it.
                    Scan::Scalar => Ok(()),
                    _ => Err(at(self.offset, "the file ends inside a value")),
                };
            }
            let (n, done) = scan.feed(buf);
            out.extend_from_slice(&buf[..n]);
            self.consume(n);
            if done {
                return Ok(());
            }
        }
    }

    /// The elements of the array that comes next, each handed to `each` with its offset.
    fn elements(
        &mut self,
        buf: &mut Vec<u8>,
        mut each: impl FnMut(&mut Vec<u8>, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.expect(b"[")?;
        if self.peek()? == Some(b']') {
            self.consume(1);
            return Ok(());
        }
        loop {
            self.peek()?;
            let offset = self.offset;
            self.value(buf)?;
            each(buf, offset)?;
            if self.expect(b",]")? == b']' {
                return Ok(());
            }
        }
    }
}

/// Where the value being copied is, between buffer fills.
#[derive(Clone, Copy)]
enum Scan {
    /// A number, `true`, `false`, `null` or garbage: it ends before a delimiter.
    Scalar,
    /// A string, an object or an array: `depth` brackets open (0: only a string so
    /// far), inside a string or not, just after a backslash in it or not.
    Nested {
        depth: u32,
        string: bool,
        escaped: bool,
    },
}

/// `table(bytes)[b]`: whether `b` is one of `bytes`.
const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// What matters outside a string, inside one, and what ends a scalar.
static OUTSIDE: [bool; 256] = table(b"\"{}[]");
static INSIDE: [bool; 256] = table(b"\"\\");
static AFTER_SCALAR: [bool; 256] = table(b",]}: \t\n\r");

/// How many bytes of `buf` from `i` on are not in `set`.
fn skip(buf: &[u8], i: usize, set: &[bool; 256]) -> usize {
    buf[i..].iter().take_while(|&&b| !set[b as usize]).count()
}

impl Scan {
    fn starting_with(first: u8) -> Scan {
        match first {
            // The opening quote or bracket is fed like the rest.
            b'"' | b'{' | b'[' => Scan::Nested {
                depth: 0,
                string: false,
                escaped: false,
            },
            _ => Scan::Scalar,
        }
    }

    /// Takes bytes of `buf` while the value lasts: how many, and whether it ended.
    fn feed(&mut self, buf: &[u8]) -> (usize, bool) {
        let Scan::Nested {
            depth,
            string,
            escaped,
        } = self
        else {
            let n = skip(buf, 0, &AFTER_SCALAR);
            return (n, n < buf.len());
        };
        let mut i = 0;
        if *escaped && !buf.is_empty() {
            *escaped = false;
            i = 1;
        }
        loop {
            i += skip(buf, i, if *string { &INSIDE } else { &OUTSIDE });
            let Some(&b) = buf.get(i) else {
                return (i, false);
            };
            i += 1;
            match (*string, b) {
                (true, b'"') => {
                    *string = false;
                    if *depth == 0 {
                        return (i, true);
                    }
                }
                (true, _) => {
                    // A backslash: the byte after it is the escaped one, whatever it is.
                    if i == buf.len() {
                        *escaped = true;
                        return (i, false);
                    }
                    i += 1;
                }
                (false, b'"') => *string = true,
                (false, b'{' | b'[') => *depth += 1,
                (false, _) => {
                    // Mismatched or extra closers are serde_json's to refuse.
                    if *depth <= 1 {
                        return (i, true);
                    }
                    *depth -= 1;
                }
            }
        }
    }
}

/// serde_json's verdict on one value's bytes, its error placed in the file: serde_json
/// counts lines and columns in `bytes`, the message gives the byte in the file instead
/// (where serde_json stopped: the wrong byte, or the one after it).
fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], offset: u64, what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        let (message, index) = match message.rfind(" at line ") {
            Some(end) if e.line() > 0 => {
                // serde_json's `column` is the index in the line, in bytes.
                let newlines = bytes.iter().enumerate().filter(|(_, &b)| b == b'\n');
                let line_start = match e.line() {
                    1 => 0,
                    line => newlines.map(|(i, _)| i + 1).nth(line - 2).unwrap_or(0),
                };
                (&message[..end], line_start + e.column())
            }
            _ => (&message[..], 0),
        };
        at(offset + index as u64, format_args!("{what}: {message}"))
    })
}

/// Reads a whole snapshot file.
pub(super) fn file(reader: impl BufRead, batch_bytes: usize) -> Result<Loaded, Error> {
    let mut p = Pieces { reader, offset: 0 };
    let (mut format, mut timestamp, mut dates) = (false, None, false);
    let (mut blobs, mut repositories) = (None, None);
    let mut buf = Vec::new();
    p.expect(b"{")?;
    if p.peek()? == Some(b'}') {
        p.consume(1);
    } else {
        loop {
            if p.peek()? != Some(b'"') {
                let found = p.peek()?;
                return Err(p.unexpected(found, b"\""));
            }
            let offset = p.offset;
            buf.clear();
            p.value(&mut buf)?;
            let key: String = parse(&buf, offset, "a key")?;
            buf.clear();
            p.expect(b":")?;
            p.peek()?;
            let offset = p.offset;
            match key.as_str() {
                "blobs" => {
                    let mut list = Vec::new();
                    p.elements(&mut buf, |bytes, offset| {
                        let (digest, size): (Digest, u64) = parse(bytes, offset, "a blob")?;
                        list.push(Blob { digest, size });
                        bytes.clear();
                        Ok(())
                    })?;
                    blobs = Some(list);
                }
                "repositories" => repositories = Some(read_repositories(&mut p, batch_bytes)?),
                _ => {
                    buf.clear();
                    p.value(&mut buf)?;
                    match key.as_str() {
                        "format" => {
                            let f: Cow<str> = parse(&buf, offset, "format")?;
                            if f != FORMAT {
                                return Err(at(
                                    offset,
                                    format_args!("it has format {f:?}, expected {FORMAT:?}"),
                                ));
                            }
                            format = true;
                        }
                        "timestamp" => timestamp = Some(parse::<f64>(&buf, offset, "timestamp")?),
                        "dates" => dates = parse::<bool>(&buf, offset, "dates")?,
                        // A later version's key: any valid JSON.
                        _ => {
                            parse::<IgnoredAny>(&buf, offset, &key)?;
                        }
                    }
                }
            }
            buf.clear();
            if p.expect(b",}")? == b'}' {
                break;
            }
        }
    }
    if let Some(b) = p.peek()? {
        return Err(at(
            p.offset,
            format_args!("trailing {:?} after the snapshot object", b as char),
        ));
    }
    if !format {
        return Err(Error::missing_field("format"));
    }
    Ok(Loaded {
        timestamp: timestamp.ok_or_else(|| Error::missing_field("timestamp"))?,
        dates,
        blobs: blobs.ok_or_else(|| Error::missing_field("blobs"))?,
        repositories: repositories.ok_or_else(|| Error::missing_field("repositories"))?,
    })
}

/// Repositories' bytes, and each one's end in `bytes` with its offset in the file.
struct Batch {
    number: usize,
    bytes: Vec<u8>,
    ends: Vec<(usize, u64)>,
}

impl Batch {
    fn parse(&self, names: &mut Names) -> Result<Vec<Repository>, Error> {
        let mut start = 0;
        let mut out = Vec::with_capacity(self.ends.len());
        for &(end, offset) in &self.ends {
            let r: RepositoryIn = parse(&self.bytes[start..end], offset, "a repository")?;
            out.push(repository_from(r, names));
            start = end;
        }
        Ok(out)
    }

    /// [`Batch::parse`] with its number, raising `failed` on an error.
    fn parsed(self, names: &mut Names, failed: &AtomicBool) -> Parsed {
        let r = self.parse(names);
        if r.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        (self.number, r)
    }
}

/// A batch's number and its repositories.
type Parsed = (usize, Result<Vec<Repository>, Error>);

/// The repositories array. A file of one batch is parsed here; a larger one on helpers
/// started at its first full batch, and here whenever they are all busy.
fn read_repositories<R: BufRead>(
    p: &mut Pieces<R>,
    batch_bytes: usize,
) -> Result<Vec<Repository>, Error> {
    let helpers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let failed = AtomicBool::new(false);
    let mut names = Names::default();
    let mut parsed: Vec<Parsed> = Vec::new();
    let read = std::thread::scope(|scope| {
        let (jobs, queue) = crossbeam_channel::bounded::<Batch>(helpers);
        let (done, results) = crossbeam_channel::unbounded::<Parsed>();
        let mut started = false;
        let (mut number, mut ends) = (0, Vec::new());
        let mut bytes = Vec::with_capacity(batch_bytes.min(BATCH_BYTES) + 4096);
        let read = p.elements(&mut bytes, |bytes, offset| {
            ends.push((bytes.len(), offset));
            if bytes.len() < batch_bytes {
                return Ok(());
            }
            if failed.load(Ordering::Relaxed) {
                // An error earlier in the file is the answer: reading on is wasted.
                return Err(at(offset, "not read: an earlier repository is wrong"));
            }
            let full = Batch {
                number,
                bytes: std::mem::replace(bytes, Vec::with_capacity(bytes.capacity())),
                ends: std::mem::take(&mut ends),
            };
            number += 1;
            if !started {
                started = true;
                for _ in 0..helpers {
                    let (queue, done, failed) = (queue.clone(), done.clone(), &failed);
                    scope.spawn(move || {
                        let mut names = Names::default();
                        for batch in queue {
                            // Only fails once reading has given up: nothing to report.
                            let _ = done.send(batch.parsed(&mut names, failed));
                        }
                    });
                }
            }
            use crossbeam_channel::TrySendError::{Disconnected, Full};
            if let Err(Full(full) | Disconnected(full)) = jobs.try_send(full) {
                parsed.push(full.parsed(&mut names, &failed));
            }
            Ok(())
        });
        drop(jobs);
        drop(done);
        // Parsed even after a syntax error: an error in them is earlier in the file.
        if !ends.is_empty() {
            let last = Batch {
                number,
                bytes,
                ends,
            };
            parsed.push(last.parsed(&mut names, &failed));
        }
        parsed.extend(results.iter());
        read
    });
    // The error earliest in the file: a batch's is before wherever reading stopped.
    parsed.sort_unstable_by_key(|(n, _)| *n);
    let mut out = Vec::new();
    for (_, r) in parsed {
        out.extend(r?);
    }
    read?;
    Ok(out)
}

/// A repository of the file in its final form (tags and layers sorted and distinct).
fn repository_from(r: RepositoryIn, names: &mut Names) -> Repository {
    let (tags, layers) = match r.tags {
        Some(tags) => {
            let (tags, layers) = pack(
                tags,
                |t| &t.name,
                |mut t, layers| {
                    t.layers.sort_unstable();
                    t.layers.dedup();
                    unsized_tag(
                        names.get(&t.name),
                        t.digest,
                        append(layers, &t.layers),
                        t.created,
                    )
                },
            );
            (Some(tags), layers)
        }
        None => (None, Box::default()),
    };
    Repository {
        name: r.name.into_boxed_str(),
        tags,
        layers,
        size: None,
        disk_size: None,
        error: r.error.map(String::into_boxed_str),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{load_in_batches, write_to, Builder, LayerRef, LoadError, ScannedTag};
    use super::*;

    /// A snapshot file of `n` repositories (names that need escapes and hold brackets),
    /// each with tags sharing layers.
    fn file_of(n: usize) -> Vec<u8> {
        let mut b = Builder::default();
        let layer = |i: usize, size| LayerRef {
            digest: format!("sha256:{i:064x}").as_str().into(),
            size,
        };
        for r in 0..n {
            let tags = (0..3)
                .map(|t| ScannedTag {
                    name: format!("v{t}]}}\"\\{r}"),
                    digest: (t != 1).then(|| format!("sha256:{:064x}", r * 3 + t).as_str().into()),
                    layers: vec![layer(0, 100), layer(r + 1, 10 + t as u64)].into(),
                })
                .collect();
            let error = (r % 7 == 0).then(|| format!("tag list: [\"{r}\"]"));
            b.add_repository(
                &format!("group-{}/project-\u{e9}{r}", r % 13),
                Some(tags),
                error,
            );
        }
        let mut bytes = Vec::new();
        write_to(&b.finish(1.5), &mut bytes).unwrap();
        bytes
    }

    fn load(bytes: &[u8], batch_bytes: usize) -> Result<super::super::Snapshot, LoadError> {
        load_in_batches(bytes, Path::new("f"), batch_bytes)
    }

    #[test]
    fn a_file_read_in_many_batches_is_the_file_read_in_one() {
        let bytes = file_of(400);
        assert!(bytes.len() > 100_000, "{}", bytes.len());
        let one = load(&bytes, BATCH_BYTES).unwrap();
        assert_eq!(one.repositories.len(), 400);
        let mut again = Vec::new();
        write_to(&one, &mut again).unwrap();
        assert!(again == bytes, "loading and saving changed the file");
        // From one repository a batch (helpers started at the first) to a few.
        for batch in [1, 300, 4096, 50_000] {
            let many = load(&bytes, batch).unwrap();
            assert_eq!(many.repositories, one.repositories, "batches of {batch}");
            assert_eq!((many.blobs, many.totals), (one.blobs.clone(), one.totals));
        }
    }

    #[test]
    fn the_error_reported_is_the_one_earliest_in_the_file() {
        let bytes = file_of(300);
        let text = String::from_utf8(bytes).unwrap();
        // The 200th repository's first tag has an object for its layers...
        let wrong = text.match_indices("{\"name\":\"v0").nth(200).unwrap().0;
        let layers = wrong + text[wrong..].find("\"layers\":[").unwrap() + 10;
        let mut bad = text.clone().into_bytes();
        bad[layers - 1] = b'{';
        // ... and the file ends in garbage, after the array.
        bad.truncate(bad.len() - 2);
        bad.extend_from_slice(b"], x}");
        let messages: Vec<String> = [1, 500, 10_000, BATCH_BYTES]
            .iter()
            .map(|&batch| match load(&bad, batch) {
                Err(e @ LoadError::NotOurs(..)) => e.to_string(),
                other => panic!("batches of {batch}: {:?}", other.map(|s| s.totals)),
            })
            .collect();
        let at_byte = |m: &str| -> usize {
            let n = &m[m.find("at byte ").unwrap() + 8..];
            n[..n.find(':').unwrap()].parse().unwrap()
        };
        assert!(
            messages[0].contains(": a repository: invalid type: map"),
            "{}",
            messages[0]
        );
        assert!(
            (layers - 1..=layers).contains(&at_byte(&messages[0])),
            "{}",
            messages[0]
        );
        assert!(messages.iter().all(|m| *m == messages[0]), "{messages:#?}");
        // Without that error, the garbage is what is wrong, and said where.
        let mut garbage = text.into_bytes();
        garbage.truncate(garbage.len() - 2);
        garbage.extend_from_slice(b"], x}");
        let e = load(&garbage, 1).unwrap_err().to_string();
        assert!(
            e.contains(&format!("at byte {}: expected '\"'", garbage.len() - 2)),
            "{e}"
        );
    }

    #[test]
    fn whitespace_anywhere_escapes_and_brackets_in_strings_are_read_as_json() {
        let text = format!(
            "\r\n{{ \"format\" :\n \"{FORMAT}\" ,\t\"timestamp\" : 2e0 , \"blobs\" : [ [ \"sha256:a\" , 5 ] ,\n [\"sha256:b\",\n7] ] ,\n\
             \"repositories\" : [\n  {{ \"name\" : \"a\\\"]}}\\\\\" , \"tags\" : [ {{ \"name\" : \"t\\u00e9[\" ,\n   \"layers\" : [ 1 , 0 , 1 ] }} ] }} ,\n  {{\"name\":\"b\",\"error\":null}}\n ] , \"later\" : [ {{ }} , \"]\" ] }}\n\n"
        );
        let s = load(text.as_bytes(), 1).unwrap();
        assert_eq!(s.timestamp, 2.0);
        assert_eq!(s.repositories.len(), 2);
        let r = &s.repositories[0];
        assert_eq!(&*r.name, "a\"]}\\");
        let t = r.tag("t\u{e9}[").unwrap();
        assert_eq!((r.layers_of(t), t.size), (&[0, 1][..], 12));
        assert!(s.repositories[1].tags.is_none());
    }

    #[test]
    fn an_error_inside_a_value_of_many_lines_names_its_byte_in_the_file() {
        let head = format!("{{\"format\":\"{FORMAT}\",\"timestamp\":1,\"blobs\":[],\"repositories\":[\n{{\n \"name\": \"r\",\n \"tags\": ");
        let text = format!("{head}[x]}}]}}");
        let e = load(text.as_bytes(), BATCH_BYTES).unwrap_err().to_string();
        assert!(e.contains("a repository: expected value"), "{e}");
        let at = e[e.find("at byte ").unwrap() + 8..]
            .split(':')
            .next()
            .unwrap();
        // The `x`, on the fourth line of the element.
        let x = head.len() + 1;
        assert!([x, x + 1].contains(&at.parse().unwrap()), "{e}");
        // Values that end the file too soon.
        for cut in [head.len() - 3, head.len(), text.len() - 1] {
            let e = load(&text.as_bytes()[..cut], BATCH_BYTES).unwrap_err();
            assert!(matches!(e, LoadError::NotOurs(..)), "{e}");
        }
        let e = load(b"{\"timestamp\":1", BATCH_BYTES)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at byte 14: expected ',' or '}', found the end of the file"),
            "{e}"
        );
        let e = load(b"{\"timestamp\":1}", BATCH_BYTES)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `format`"), "{e}");
    }
}
