use std::io::Error as IoError;
use std::io::{self, Cursor, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{EqualReader, FusedReader, TaskPool};
use crate::{HTTPVersion, Header, Method, Response, StatusCode};
use chunked_transfer::Decoder;

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # Pipelining
///
/// If a client sends multiple requests in a row (without waiting for the response), then you will
/// get multiple `Request` objects simultaneously. This is called *requests pipelining*.
/// Tiny-http automatically reorders the responses so that you don't need to worry about the order
/// in which you call `respond` or `into_writer`.
///
/// This mechanic is disabled if:
///
///  - The body of a request is large enough (handling requires pipelining requires storing the
///    body of the request in a buffer ; if the body is too big, tiny-http will avoid doing that)
///  - A request sends a `Expect: 100-continue` header (which means that the client waits to
///    know whether its body will be processed before sending it)
///  - A request sends a `Connection: close` header or `Connection: upgrade` header (used for
///    websockets), which indicates that this is the last request that will be received on this
///    connection
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // where to read the body from
    data_reader: Option<Box<dyn Read + Send + 'static>>,

    // if this writer is empty, then the request has been answered
    response_writer: Option<Box<dyn Write + Send + 'static>>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,

    // true if a `100 Continue` response must be sent when `as_reader()` is called
    must_send_continue: bool,

    // If Some, a message must be sent after responding
    // PATCHED (gitlab-registry-usage-rest): a `Notice` instead of `()`
    notify_when_responded: Option<Sender<Notice>>,

    // PATCHED (gitlab-registry-usage-rest): (grace, bytes per second) of `RateLimitedWriter`
    send_limits: Option<(Duration, u64)>,

    // PATCHED (gitlab-registry-usage-rest): the connection's write patience flag, how
    // to wake its thread from a read, and the threads that write a response in the
    // background over HTTP (see `respond_in_background`)
    patient: Option<Arc<AtomicBool>>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    writers: Option<Arc<TaskPool>>,
}

struct NotifyOnDrop<R> {
    sender: Sender<Notice>,
    inner: R,
}

impl<R: Read> Read for NotifyOnDrop<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}
impl<R: Write> Write for NotifyOnDrop<R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
impl<R> Drop for NotifyOnDrop<R> {
    fn drop(&mut self) {
        // PATCHED (gitlab-registry-usage-rest): a connection thread that is gone needs no
        // notice (upstream panicked)
        self.sender.send(Notice::Responded { ok: true }).ok();
    }
}

/// Error that can happen when building a `Request` object.
#[derive(Debug)]
pub enum RequestCreationError {
    /// The client sent an `Expect` header that was not recognized by tiny-http.
    ExpectationFailed,

    /// Error while reading data from the socket during the creation of the `Request`.
    CreationIoError(IoError),

    // PATCHED (gitlab-registry-usage-rest): see `new_request`
    /// `Content-Length` or `Transfer-Encoding` do not say where the body ends.
    BadFraming,
    /// The body is larger than the server reads.
    BodyTooLarge,
    /// A transfer coding other than `chunked`.
    UnsupportedEncoding,
}

impl From<IoError> for RequestCreationError {
    fn from(err: IoError) -> RequestCreationError {
        RequestCreationError::CreationIoError(err)
    }
}

/// Builds a new request.
///
/// After the request line and headers have been read from the socket, a new `Request` object
/// is built.
///
/// You must pass a `Read` that will allow the `Request` object to read from the incoming data.
/// It is the responsibility of the `Request` to read only the data of the request and not further.
///
/// The `Write` object will be used by the `Request` to write the response.
///
/// PATCHED (gitlab-registry-usage-rest): the body is read here, whole, before the request
/// is handed over (at most `max_body` bytes; the caller's read deadline bounds the time),
/// so that no handler thread ever waits for a client to send it; and the framing is
/// checked as RFC 9112 §6.3 asks: `Content-Length` must be digits only (no sign, no list,
/// no overflow), several of them must agree, and `Transfer-Encoding` together with
/// `Content-Length` is refused, all with `BadFraming` (400 and close). Upstream read an
/// invalid length as "no body", so the body was parsed as the next request.
#[allow(clippy::too_many_arguments)]
pub fn new_request<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    mut source_data: R,
    mut writer: W,
    max_body: usize,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let framing = body_framing(&headers)?;

    // true if the client sent a `Expect: 100-continue` header
    let expects_continue = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Expect"))
            .map(|h| h.value.as_str())
        {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            _ => return Err(RequestCreationError::ExpectationFailed),
        }
    };

    // true if the client sent a `Connection: upgrade` header
    let connection_upgrade = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Connection"))
            .map(|h| h.value.as_str())
        {
            Some(v) if v.to_ascii_lowercase().contains("upgrade") => true,
            _ => false,
        }
    };

    if let BodyFraming::Length(n) = framing {
        if n > max_body as u64 {
            return Err(RequestCreationError::BodyTooLarge);
        }
    }
    let has_body = !matches!(framing, BodyFraming::None | BodyFraming::Length(0));
    if has_body && expects_continue && !connection_upgrade {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }

    let mut body_length = None;
    let reader = if connection_upgrade {
        // if we have a `Connection: upgrade`, always keeping the whole reader
        Box::new(source_data) as Box<dyn Read + Send + 'static>
    } else {
        let body = match framing {
            BodyFraming::None => Vec::new(),
            BodyFraming::Length(n) => {
                let mut body = vec![0; n as usize];
                source_data.read_exact(&mut body).map_err(|e| {
                    if e.kind() == ErrorKind::UnexpectedEof {
                        let info = "Connection has been closed before we received enough data";
                        IoError::new(ErrorKind::ConnectionAborted, info)
                    } else {
                        e
                    }
                })?;
                body_length = Some(body.len());
                body
            }
            BodyFraming::Chunked => {
                // chunk sizes and their line ends count too, with room for small chunks
                let raw_limit = (max_body as u64)
                    .saturating_mul(2)
                    .saturating_add(64 * 1024);
                let mut body = Vec::new();
                Decoder::new(source_data.by_ref().take(raw_limit))
                    .take((max_body as u64).saturating_add(1))
                    .read_to_end(&mut body)
                    .map_err(|e| match e.kind() {
                        ErrorKind::InvalidInput => RequestCreationError::BadFraming,
                        _ => RequestCreationError::CreationIoError(e),
                    })?;
                if body.len() > max_body {
                    return Err(RequestCreationError::BodyTooLarge);
                }
                body_length = Some(body.len());
                body
            }
        };
        drop(source_data); // the stream goes on to the next request
        if body.is_empty() {
            Box::new(io::empty()) as Box<dyn Read + Send + 'static>
        } else {
            Box::new(Cursor::new(body)) as Box<dyn Read + Send + 'static>
        }
    };

    Ok(Request {
        data_reader: Some(reader),
        response_writer: Some(Box::new(writer) as Box<dyn Write + Send + 'static>),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length,
        must_send_continue: false,
        notify_when_responded: None,
        send_limits: None,
        patient: None,
        wake: None,
        writers: None,
    })
}

/// PATCHED (gitlab-registry-usage-rest): how the body of a request is delimited.
enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// PATCHED (gitlab-registry-usage-rest): RFC 9112 §6.1–6.3 for requests.
fn body_framing(headers: &[Header]) -> Result<BodyFraming, RequestCreationError> {
    let mut length: Option<u64> = None;
    let mut transfer_encoding: Option<&str> = None;
    for h in headers {
        if h.field.equiv("Content-Length") {
            let value = h.value.as_str();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RequestCreationError::BadFraming);
            }
            let n: u64 = value
                .parse()
                .map_err(|_| RequestCreationError::BadFraming)?;
            if length.is_some_and(|previous| previous != n) {
                return Err(RequestCreationError::BadFraming);
            }
            length = Some(n);
        } else if h.field.equiv("Transfer-Encoding") {
            if transfer_encoding.is_some() {
                return Err(RequestCreationError::BadFraming);
            }
            transfer_encoding = Some(h.value.as_str());
        }
    }
    match (transfer_encoding, length) {
        (Some(_), Some(_)) => Err(RequestCreationError::BadFraming),
        (Some(codings), None) => {
            let mut codings = codings.rsplit(',').map(str::trim);
            match codings.next() {
                Some(last) if last.eq_ignore_ascii_case("chunked") => match codings.next() {
                    None => Ok(BodyFraming::Chunked),
                    // compression codings: not implemented, and not needed by an API
                    Some(_) => Err(RequestCreationError::UnsupportedEncoding),
                },
                // the end of the body could not be found (§6.3, item 4)
                _ => Err(RequestCreationError::BadFraming),
            }
        }
        (None, Some(n)) => Ok(BodyFraming::Length(n)),
        (None, None) => Ok(BodyFraming::None),
    }
}

/// PATCHED (gitlab-registry-usage-rest): what the connection thread hears from the
/// request it handed over. It reads the next request only after `Responded`, so pipelined
/// requests are read one at a time: a client sending many of them and reading no answer
/// holds one request and its connection, not a growing queue.
pub(crate) enum Notice {
    /// The response is written (`ok`: completely, so the connection can go on).
    Responded { ok: bool },
    /// Write this response from the connection thread (see
    /// `Request::respond_in_background`).
    Respond(Box<dyn FnOnce() + Send>),
}

/// PATCHED (gitlab-registry-usage-rest): a response writer that fails once the response
/// has been going for longer than `grace` and has not averaged `rate` bytes per second
/// since then (the socket's send timeout already ends a write that makes no progress).
struct RateLimitedWriter<W> {
    inner: W,
    started: Instant,
    written: u64,
    grace: Duration,
    rate: u64,
}

impl<W: Write> Write for RateLimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let elapsed = self.started.elapsed();
        if let Some(late) = elapsed.checked_sub(self.grace) {
            if (self.written as f64) < late.as_secs_f64() * self.rate as f64 {
                return Err(IoError::new(
                    ErrorKind::TimedOut,
                    "the client reads the response more slowly than the minimum rate",
                ));
            }
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Request {
    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Sends a response with a `Connection: upgrade` header, then turns the `Request` into a `Stream`.
    ///
    /// The main purpose of this function is to support websockets.
    /// If you detect that the request wants to use some kind of protocol upgrade, you can
    ///  call this function to obtain full control of the socket stream.
    ///
    /// If you call this on a non-websocket request, tiny-http will wait until this `Stream` object
    ///  is destroyed before continuing to read or write on the socket. Therefore you should always
    ///  destroy it as soon as possible.
    pub fn upgrade<R: Read>(
        mut self,
        protocol: &str,
        response: Response<R>,
    ) -> Box<dyn ReadWrite + Send> {
        use crate::util::CustomStream;

        response
            .raw_print(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                &self.headers,
                false,
                Some(protocol),
            )
            .ok(); // TODO: unused result

        self.response_writer.as_mut().unwrap().flush().ok(); // TODO: unused result

        let stream = CustomStream::new(self.extract_reader_impl(), self.extract_writer_impl());
        if let Some(sender) = self.notify_when_responded.take() {
            let stream = NotifyOnDrop {
                sender,
                inner: stream,
            };
            Box::new(stream) as Box<dyn ReadWrite + Send>
        } else {
            Box::new(stream) as Box<dyn ReadWrite + Send>
        }
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # extern crate rustc_serialize;
    /// # extern crate tiny_http;
    /// # use rustc_serialize::json::Json;
    /// # use std::io::Read;
    /// # fn get_content_type(_: &tiny_http::Request) -> &'static str { "" }
    /// # fn main() {
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    ///
    /// if get_content_type(&request) == "application/json" {
    ///     let mut content = String::new();
    ///     request.as_reader().read_to_string(&mut content).unwrap();
    ///     let json: Json = content.parse().unwrap();
    /// }
    /// # }
    /// ```
    ///
    /// If the client sent a `Expect: 100-continue` header with the request, calling this
    ///  function will send back a `100 Continue` response.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        if self.must_send_continue {
            let msg = Response::new_empty(StatusCode(100));
            msg.raw_print(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                &self.headers,
                true,
                None,
            )
            .ok();
            self.response_writer.as_mut().unwrap().flush().ok();
            self.must_send_continue = false;
        }

        self.data_reader.as_mut().unwrap()
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// Note that the destruction of the `Writer` object may trigger
    /// some events. For exemple if a client has sent multiple requests and the requests
    /// have been processed in parallel, the destruction of a writer will trigger
    /// the writing of the next response.
    /// Therefore you should always destroy the `Writer` as soon as possible.
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        let writer = self.extract_writer_impl();
        if let Some(sender) = self.notify_when_responded.take() {
            let writer = NotifyOnDrop {
                sender,
                inner: writer,
            };
            Box::new(writer) as Box<dyn Write + Send + 'static>
        } else {
            writer
        }
    }

    /// Extract the response `Writer` object from the Request, dropping this `Writer` has the same side effects
    /// as the object returned by `into_writer` above.
    ///
    /// This may only be called once on a single request.
    fn extract_writer_impl(&mut self) -> Box<dyn Write + Send + 'static> {
        use std::mem;

        assert!(self.response_writer.is_some());

        let mut writer = None;
        mem::swap(&mut self.response_writer, &mut writer);
        writer.unwrap()
    }

    /// Extract the body `Reader` object from the Request.
    ///
    /// This may only be called once on a single request.
    fn extract_reader_impl(&mut self) -> Box<dyn Read + Send + 'static> {
        use std::mem;

        assert!(self.data_reader.is_some());

        let mut reader = None;
        mem::swap(&mut self.data_reader, &mut reader);
        reader.unwrap()
    }

    /// Sends a response to this request.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let res = self.respond_impl(response);
        if let Some(sender) = self.notify_when_responded.take() {
            // PATCHED (gitlab-registry-usage-rest): see `Notice`
            sender.send(Notice::Responded { ok: res.is_ok() }).ok();
        }
        res
    }

    /// PATCHED (gitlab-registry-usage-rest): like `respond`, but the response is written
    /// by another thread, which waits up to the send timeout (and the minimum rate) for a
    /// slow client, so the calling thread is free at once. `respond` itself fails after a
    /// few milliseconds without progress (and the connection is closed): use this for
    /// anything that may not fit in the socket's buffer. Write errors are not returned.
    ///
    /// Over HTTP a thread of the connection threads' pool writes it, and the connection
    /// stays open: its own thread waits for the next request meanwhile (a client that
    /// reads its answers sends it after this one) and reads it only once told that this
    /// answer is written. When no thread can be started, the connection's thread writes
    /// it, woken from that wait by shutting the socket's reading side, so the connection
    /// closes after it. Over HTTPS the connection's thread writes it (it waits for the
    /// answer before it reads on). A request that did not come from a connection thread
    /// is answered here.
    pub fn respond_in_background<R>(self, response: Response<R>)
    where
        R: Read + Send + 'static,
    {
        let Some(sender) = self.notify_when_responded.clone() else {
            let _ = self.respond(response);
            return;
        };
        let wake = self.wake.clone();
        let writers = self.writers.clone();
        let on_failure = writers.as_ref().and(wake.clone());
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            if let Some(patient) = &self.patient {
                patient.store(true, Ordering::Relaxed);
            }
            let patient = self.patient.clone();
            let written = self.respond(response);
            if let Some(patient) = patient {
                patient.store(false, Ordering::Relaxed);
            }
            // a pool thread that could not write it all: the connection's thread, waiting
            // for a next request that will not come, is woken to close the connection
            if let (Err(_), Some(wake)) = (written, on_failure) {
                wake();
            }
        });
        let job = match writers {
            None => job,
            Some(pool) => {
                // a task that cannot start is dropped by `spawn`: the job is taken back
                let slot = Arc::new(Mutex::new(Some(job)));
                let task_slot = Arc::clone(&slot);
                let spawned = pool.spawn(Box::new(move || {
                    let job = task_slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(job) = job {
                        job();
                    }
                }));
                if spawned.is_ok() {
                    return;
                }
                let taken_back = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                match taken_back {
                    Some(job) => job,
                    None => return,
                }
            }
        };
        match sender.send(Notice::Respond(job)) {
            Ok(()) => {
                if let Some(wake) = wake {
                    wake();
                }
            }
            Err(std::sync::mpsc::SendError(Notice::Respond(job))) => job(),
            Err(_) => {}
        }
    }

    /// PATCHED (gitlab-registry-usage-rest): see `respond_in_background`.
    pub(crate) fn with_connection_thread(
        mut self,
        patient: Arc<AtomicBool>,
        wake: Option<Arc<dyn Fn() + Send + Sync>>,
        writers: Option<Arc<TaskPool>>,
    ) -> Self {
        self.patient = Some(patient);
        self.wake = wake;
        self.writers = writers;
        self
    }

    /// PATCHED (gitlab-registry-usage-rest): see `RateLimitedWriter`.
    pub(crate) fn with_send_limits(mut self, grace: Duration, bytes_per_second: u64) -> Self {
        self.send_limits = Some((grace, bytes_per_second));
        self
    }

    fn respond_impl<R>(&mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let writer = self.extract_writer_impl();
        // PATCHED (gitlab-registry-usage-rest): the minimum rate of a response
        let (grace, rate) = self.send_limits.unwrap_or((Duration::MAX, 0));
        let mut writer = RateLimitedWriter {
            inner: writer,
            started: Instant::now(),
            written: 0,
            grace,
            rate,
        };

        let do_not_send_body = self.method == Method::Head;

        Self::ignore_client_closing_errors(response.raw_print(
            writer.by_ref(),
            self.http_version.clone(),
            &self.headers,
            do_not_send_body,
            None,
        ))?;

        // PATCHED (gitlab-registry-usage-rest): the connection thread may read on once the
        // whole response is with the writer; told before the last write leaves, it is not
        // woken later by this notice (its client sends the next request only after that
        // write). If the write then fails, the next response's write fails in turn.
        // Over HTTPS the stream is one locked object that the connection thread holds
        // while it reads: told before the flush, it would read (holding the lock) while
        // this write waits for the lock, until the read timed out. So it is told after.
        let secure = self.secure;
        if !secure {
            if let Some(sender) = self.notify_when_responded.take() {
                sender.send(Notice::Responded { ok: true }).ok();
            }
        }
        let flushed = Self::ignore_client_closing_errors(writer.flush());
        if secure {
            if let Some(sender) = self.notify_when_responded.take() {
                sender.send(Notice::Responded { ok: flushed.is_ok() }).ok();
            }
        }
        flushed
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }

    pub(crate) fn with_notify_sender(mut self, sender: Sender<Notice>) -> Self {
        self.notify_when_responded = Some(sender);
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.response_writer.is_some() {
            let response = Response::empty(500);
            let res = self.respond_impl(response); // ignoring any potential error
            if let Some(sender) = self.notify_when_responded.take() {
                // PATCHED (gitlab-registry-usage-rest): see `Notice`
                sender.send(Notice::Responded { ok: res.is_ok() }).ok();
            }
        }
        // PATCHED (gitlab-registry-usage-rest): a request always tells its connection
        // thread that it is done, even one whose answer stopped half-way (a panic while
        // writing): the thread's channel outlives the request, so silence would leave it
        // waiting. Not written whole: the connection closes.
        if let Some(sender) = self.notify_when_responded.take() {
            sender.send(Notice::Responded { ok: false }).ok();
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
