use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use crate::common::{HTTPVersion, Method};
use crate::limits::{is_timeout, Deadline, Limits};
use crate::request::Notice;
use crate::util::{RefinedTcpStream, TaskPool};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

// PATCHED (gitlab-registry-usage-rest): limits on the request head. Upstream read a
// request line or header line of any length and any number of headers, so one client
// could make a connection thread buffer until memory ran out. Line lengths exclude the
// CRLF; reading stops as soon as a limit is passed (`read_next_line` never takes more
// than the allowed bytes out of the `BufReader`).

/// Longest request line (method, target and version): longer is answered 414 and the
/// connection closed. Above the 8 KiB URLs the service itself answers 414 for, so those
/// still reach the handler.
const MAX_REQUEST_LINE: usize = 16 * 1024;

/// Longest header line (name, colon and value): longer is answered 431 and the
/// connection closed.
const MAX_HEADER_LINE: usize = 8 * 1024;

/// Most header lines in one request: more is answered 431 and the connection closed.
const MAX_HEADER_COUNT: usize = 100;

/// Most bytes in the whole head (request line, header lines and the empty line, with
/// their CRLFs): more is answered 431 and the connection closed.
const MAX_HEAD: usize = 64 * 1024;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // PATCHED (gitlab-registry-usage-rest): the timeouts and body limit, the read
    // deadline shared with the socket reader, whether a request was answered yet, the
    // notices of the request handed over last (see `finish_previous`), the write half's
    // patience flag, and a way for a handler to wake this thread from a blocked read
    limits: Arc<Limits>,
    deadline: Arc<Deadline>,
    answered_one: bool,
    // one channel for the connection's life (a channel per request cost two allocations,
    // one of them a zeroed kilobyte): every request handed over sends exactly one
    // `Responded` (`Request`'s drop sends it if nothing else did), and the next request is
    // read only after it, so a notice always belongs to the request handed over last
    pending: bool,
    notify: Sender<Notice>,
    notices: Receiver<Notice>,
    patient: Arc<AtomicBool>,
    wake: Arc<dyn Fn() + Send + Sync>,
    // PATCHED (gitlab-registry-usage-rest): threads that write large responses over HTTP
    // (`Request::respond_in_background`)
    writers: Option<Arc<TaskPool>>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    // PATCHED (gitlab-registry-usage-rest): what else ends a connection
    /// no request came (end of stream, or nothing within the idle timeout): close quietly
    NoRequest,
    /// `HTTP/x.y` other than 1.0 and 1.1 (the HTTP/2 preface, HTTP/0.9, 3.0)
    UnsupportedVersion,
    /// `Content-Length` / `Transfer-Encoding` that do not delimit a body
    BadFraming(HTTPVersion),
    /// a body larger than `Limits::max_body`
    BodyTooLarge(HTTPVersion),
    /// a transfer coding other than chunked
    UnsupportedEncoding(HTTPVersion),
    // PATCHED (gitlab-registry-usage-rest): the two limits of the request head.
    /// the request line is longer than `MAX_REQUEST_LINE`
    RequestLineTooLong,
    /// a header line, the number of headers or the whole head is over its limit
    HeadersTooLarge(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    ///
    /// PATCHED (gitlab-registry-usage-rest): reads and writes within `limits`; `writers`
    /// write the responses handed to `Request::respond_in_background` over HTTP.
    pub fn new(
        write_socket: RefinedTcpStream,
        read_socket: RefinedTcpStream,
        limits: Arc<Limits>,
        writers: Option<Arc<TaskPool>>,
    ) -> ClientConnection {
        let deadline = Arc::new(Deadline::default());
        let mut read_socket = read_socket.with_deadline(Arc::clone(&deadline));
        let patient = Arc::new(AtomicBool::new(false));
        let write_socket = match limits.send_timeout {
            Some(limit) => write_socket.with_patience(Arc::clone(&patient), limit),
            None => write_socket,
        };
        let (notify, notices) = mpsc::channel();
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        // PATCHED (gitlab-registry-usage-rest): 8 KiB instead of 1 KiB, so that the
        // head and a body of up to ~7 KiB leave in one write (one packet with
        // TCP_NODELAY) instead of two; larger bodies bypass the buffer anyway.
        let sink = SequentialWriterBuilder::new(BufWriter::with_capacity(8 * 1024, write_socket));
        let socket = sink.shared();
        let wake = Arc::new(move || {
            if let Ok(mut writer) = socket.lock() {
                writer.get_mut().shutdown_read();
            }
        });

        ClientConnection {
            source,
            sink,
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            limits,
            deadline,
            answered_one: false,
            pending: false,
            notify,
            notices,
            patient,
            wake,
            writers,
        }
    }

    /// PATCHED (gitlab-registry-usage-rest): waits until the request handed over last is
    /// answered (running on this thread a response handed back to it, see
    /// `Request::respond_in_background`). False: the connection must close (the
    /// answer could not be written whole).
    fn finish_previous(&mut self) -> bool {
        if !std::mem::take(&mut self.pending) {
            return true;
        }
        loop {
            match self.notices.recv() {
                Ok(Notice::Responded { ok }) => return ok,
                Ok(Notice::Respond(job)) => job(),
                Err(_) => return false,
            }
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// PATCHED (gitlab-registry-usage-rest): scans the `BufReader`'s buffer instead of
    /// reading one byte at a time, takes at most `max_len` bytes (without the CRLF) from
    /// the stream, and checks every byte as it arrives: a line may hold only visible ASCII
    /// and spaces (and tabs where `tabs`), and must end with CRLF. A bare LF or CR, a
    /// control character or a byte above 0x7F is `Invalid` at once (RFC 9112 §2.2, §5.5),
    /// so binary garbage is refused without waiting for a line end that never comes.
    fn read_next_line(&mut self, max_len: usize, tabs: bool) -> Result<AsciiString, LineError> {
        let mut line = Vec::new();
        // PATCHED (gitlab-registry-usage-rest): the buffer is scanned for the first byte
        // that is not plain (visible ASCII, a space, a tab where allowed) and the plain run
        // copied at once: a byte-per-byte push cost about 8 instructions a byte, and a
        // request head carries a bearer token of several hundred bytes
        let plain = |b: u8| (b' '..=b'~').contains(&b) || (tabs && b == b'\t');

        loop {
            let available = self.next_header_source.fill_buf().map_err(LineError::Io)?;
            if available.is_empty() {
                let eof = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                return Err(LineError::Io(eof));
            }
            let (used, complete) = if line.last() == Some(&b'\r') {
                // the CR ended the previous buffer: only LF may follow
                if available[0] != b'\n' {
                    return Err(LineError::Invalid);
                }
                line.pop();
                (1, true)
            } else {
                let stop = available.iter().position(|&b| !plain(b));
                let run = stop.unwrap_or(available.len());
                if line.len() + run > max_len {
                    return Err(LineError::TooLong);
                }
                line.extend_from_slice(&available[..run]);
                match stop {
                    None => (run, false),
                    Some(at) if available[at] != b'\r' => return Err(LineError::Invalid),
                    Some(at) => match available.get(at + 1) {
                        Some(b'\n') => (at + 2, true),
                        Some(_) => return Err(LineError::Invalid),
                        None => {
                            line.push(b'\r');
                            (at + 1, false)
                        }
                    },
                }
            };
            self.next_header_source.consume(used);
            if complete {
                // only ASCII was let in
                return AsciiString::from_ascii(line).map_err(|_| LineError::Invalid);
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // PATCHED (gitlab-registry-usage-rest): wait for the first byte of a request at
        // most the idle timeout (a new connection: the head's timeout), then give the head
        // and its body the head's timeout, counted from now: from the first byte, or from
        // the end of the previous response when the next request is already buffered.
        let idle = if self.answered_one {
            self.limits.keepalive_timeout
        } else {
            self.limits.request_header_timeout
        };
        //
        // Over HTTP the next bytes are awaited while the previous request is answered (a
        // client that reads its answers sends the next request after it, so this thread
        // does not need waking), but the next request is parsed only once that answer is
        // written: requests are handled one at a time. Over HTTPS the stream is one
        // locked object, so the answer comes first, as upstream had it.
        if self.secure && !self.finish_previous() {
            return Err(ReadError::NoRequest);
        }
        self.deadline.set(idle);
        let arrived = self.next_header_source.fill_buf().map(|b| !b.is_empty());
        if !self.finish_previous() {
            return Err(ReadError::NoRequest);
        }
        match arrived {
            Ok(true) => {}
            Ok(false) => return Err(ReadError::NoRequest),
            Err(e) if is_timeout(&e) => return Err(ReadError::NoRequest),
            Err(e) => return Err(ReadError::ReadIoError(e)),
        }
        self.deadline.set(self.limits.request_header_timeout);

        let (method, path, version, headers) = {
            // PATCHED (gitlab-registry-usage-rest): bytes of the head so far, CRLFs included
            let mut head_len;

            // reading the request line
            let (method, path, version) = {
                let line = self
                    .read_next_line(MAX_REQUEST_LINE, false)
                    .map_err(|e| e.into_read_error(ReadError::RequestLineTooLong, None))?;
                head_len = line.len() + 2;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    // PATCHED (gitlab-registry-usage-rest): each line within its own limit
                    // and what is left of the head's, at most MAX_HEADER_COUNT of them
                    let max_len = MAX_HEADER_LINE.min(MAX_HEAD.saturating_sub(head_len + 2));
                    let line = self.read_next_line(max_len, true).map_err(|e| {
                        e.into_read_error(
                            ReadError::HeadersTooLarge(version.clone()),
                            Some(&version),
                        )
                    })?;
                    head_len += line.len() + 2;

                    if line.is_empty() {
                        break;
                    };
                    if headers.len() == MAX_HEADER_COUNT {
                        return Err(ReadError::HeadersTooLarge(version));
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            self.limits.max_body,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version.clone())
                }
                // PATCHED (gitlab-registry-usage-rest): see `new_request`
                request::RequestCreationError::BadFraming => ReadError::BadFraming(version.clone()),
                request::RequestCreationError::BodyTooLarge => {
                    ReadError::BodyTooLarge(version.clone())
                }
                request::RequestCreationError::UnsupportedEncoding => {
                    ReadError::UnsupportedEncoding(version.clone())
                }
            }
        })?;
        // PATCHED (gitlab-registry-usage-rest): no deadline while the request is handled
        // (the body is read); the response has its own limits
        self.deadline.set(None);
        let request = match self.limits.send_timeout {
            Some(grace) => request.with_send_limits(grace, self.limits.min_send_rate),
            None => request,
        };
        let notify = self.notify.clone();
        self.pending = true;
        let wake = (!self.secure).then(|| Arc::clone(&self.wake));
        let writers = self.writers.as_ref().filter(|_| !self.secure).cloned();
        let request = request.with_notify_sender(notify).with_connection_thread(
            Arc::clone(&self.patient),
            wake,
            writers,
        );

        // return the request
        Ok(request)
    }
}

/// PATCHED (gitlab-registry-usage-rest): why `read_next_line` stopped without a line.
enum LineError {
    /// over its length limit
    TooLong,
    /// a byte that has no place in a request head (see `read_next_line`)
    Invalid,
    Io(IoError),
}

impl LineError {
    /// `too_long` for `TooLong`; a bad byte is a bad request line or header (400).
    fn into_read_error(self, too_long: ReadError, version: Option<&HTTPVersion>) -> ReadError {
        match (self, version) {
            (LineError::TooLong, _) => too_long,
            (LineError::Invalid, None) => ReadError::WrongRequestLine,
            (LineError::Invalid, Some(v)) => ReadError::WrongHeader(v.clone()),
            (LineError::Io(e), _) => ReadError::ReadIoError(e),
        }
    }
}

impl ClientConnection {
    /// PATCHED (gitlab-registry-usage-rest): answers a request that cannot be read with
    /// `status` (its connection is closed after it). Like upstream's error answers, without
    /// a `Connection: close` header (`Response` drops it).
    fn refuse(&mut self, status: u16, version: HTTPVersion) {
        use crate::{Response, StatusCode};
        let mut writer = self.sink.next().unwrap();
        let response = Response::new_empty(StatusCode(status));
        response
            .raw_print(&mut writer, version, &[], false, None)
            .and_then(|()| std::io::Write::flush(&mut writer))
            .ok();
    }
}

/// PATCHED (gitlab-registry-usage-rest): the socket is shut down when this is dropped, so
/// the last request's answer is awaited first.
impl Drop for ClientConnection {
    fn drop(&mut self) {
        self.finish_previous();
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    ///
    /// PATCHED (gitlab-registry-usage-rest): every request that cannot be read ends the
    /// connection, most with an answer: 400 for a malformed head or framing, 408 when the
    /// head (or body) does not arrive in time, 413 for a body over the limit, 414 and 431
    /// for a head over the limits, 501 for an unknown transfer coding, 505 for an HTTP
    /// version other than 1.0 and 1.1 (upstream answered 505 and went on reading the
    /// connection, and answered HTTP/0.9 as if it were 1.1).
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        let rq = match self.read() {
            Ok(rq) => rq,
            Err(ReadError::NoRequest) => return None,
            Err(ReadError::ReadIoError(ref err)) if is_timeout(err) => {
                self.refuse(408, HTTPVersion(1, 1));
                return None;
            }
            Err(ReadError::ReadIoError(_)) => return None,
            Err(ReadError::WrongRequestLine) => {
                self.refuse(400, HTTPVersion(1, 1));
                return None;
            }
            Err(ReadError::UnsupportedVersion) => {
                self.refuse(505, HTTPVersion(1, 1));
                return None;
            }
            Err(ReadError::RequestLineTooLong) => {
                self.refuse(414, HTTPVersion(1, 1));
                return None;
            }
            Err(ReadError::WrongHeader(ver)) | Err(ReadError::BadFraming(ver)) => {
                self.refuse(400, ver);
                return None;
            }
            Err(ReadError::HeadersTooLarge(ver)) => {
                self.refuse(431, ver);
                return None;
            }
            Err(ReadError::BodyTooLarge(ver)) => {
                self.refuse(413, ver);
                return None;
            }
            Err(ReadError::UnsupportedEncoding(ver)) => {
                self.refuse(501, ver);
                return None;
            }
            Err(ReadError::ExpectationFailed(ver)) => {
                self.refuse(417, ver);
                return None;
            }
        };
        self.answered_one = true;

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // returning the request
        Some(rq)
    }
}

/// Parses a "HTTP/1.1" string.
///
/// PATCHED (gitlab-registry-usage-rest): only 1.0 and 1.1 are served; any other
/// `HTTP/<digit>.<digit>` (or `HTTP/<digit>`, as HTTP/2 and 3 name themselves) is
/// `UnsupportedVersion` (505), anything else a bad request line (400).
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    match version {
        "HTTP/1.0" => return Ok(HTTPVersion(1, 0)),
        "HTTP/1.1" => return Ok(HTTPVersion(1, 1)),
        _ => {}
    }
    let number = version
        .strip_prefix("HTTP/")
        .ok_or(ReadError::WrongRequestLine)?;
    let well_formed = match number.as_bytes() {
        [major] => major.is_ascii_digit(),
        [major, b'.', minor] => major.is_ascii_digit() && minor.is_ascii_digit(),
        _ => false,
    };
    if well_formed {
        Err(ReadError::UnsupportedVersion)
    } else {
        Err(ReadError::WrongRequestLine)
    }
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
///
/// PATCHED (gitlab-registry-usage-rest): exactly three parts, separated by single spaces
/// (upstream ignored anything after the version).
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts
        .next()
        .filter(|p| !p.is_empty())
        .map(ToOwned::to_owned);
    let version = parts.next().ok_or(ReadError::WrongRequestLine)?;
    if parts.next().is_some() {
        return Err(ReadError::WrongRequestLine);
    }
    let (method, path) = method.zip(path).ok_or(ReadError::WrongRequestLine)?;
    let version = parse_http_version(version)?;
    Ok((method, path, version))
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
