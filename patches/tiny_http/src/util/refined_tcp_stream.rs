use std::io::Result as IoResult;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::limits::{is_timeout, Deadline};
#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use crate::ssl::SslStream;

pub(crate) enum Stream {
    Http(Connection),
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    Https(SslStream),
}

// PATCHED (gitlab-registry-usage-rest): a fallible clone instead of `Clone` with an
// `unwrap`: out of descriptors (EMFILE) the `dup` fails, and the panic took down the
// accept thread; now it costs that one connection.
impl Stream {
    fn try_clone(&self) -> IoResult<Self> {
        Ok(match self {
            Stream::Http(tcp_stream) => Stream::Http(tcp_stream.try_clone()?),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => Stream::Https(ssl_stream.clone()),
        })
    }
}

impl From<Connection> for Stream {
    fn from(tcp_stream: Connection) -> Self {
        Stream::Http(tcp_stream)
    }
}

impl Stream {
    fn secure(&self) -> bool {
        match self {
            Stream::Http(_) => false,
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(_) => true,
        }
    }

    fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.peer_addr(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.peer_addr(),
        }
    }

    fn set_read_timeout(&self, t: Option<std::time::Duration>) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.set_read_timeout(t),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.set_read_timeout(t),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.shutdown(how),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.read(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.write(buf),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.write(buf),
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        match self {
            Stream::Http(tcp_stream) => tcp_stream.flush(),
            #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
            Stream::Https(ssl_stream) => ssl_stream.flush(),
        }
    }
}

pub struct RefinedTcpStream {
    stream: Stream,
    close_read: bool,
    close_write: bool,
    // PATCHED (gitlab-registry-usage-rest): the read half's deadline (`crate::limits`)
    deadline: Option<Arc<Deadline>>,
    // PATCHED (gitlab-registry-usage-rest): the write half's patience: while the flag is
    // set, a write that runs into the socket's (short) send timeout is retried until it
    // has made no progress for the duration
    patience: Option<(Arc<AtomicBool>, Duration)>,
    // PATCHED (gitlab-registry-usage-rest): the read timeout last set on the socket
    read_timeout: Option<Duration>,
}

impl RefinedTcpStream {
    pub(crate) fn new<S>(stream: S) -> IoResult<(RefinedTcpStream, RefinedTcpStream)>
    where
        S: Into<Stream>,
    {
        let stream: Stream = stream.into();

        let (read, write) = (stream.try_clone()?, stream);

        let read = RefinedTcpStream {
            stream: read,
            close_read: true,
            close_write: false,
            deadline: None,
            patience: None,
            read_timeout: None,
        };

        let write = RefinedTcpStream {
            stream: write,
            close_read: false,
            close_write: true,
            deadline: None,
            patience: None,
            read_timeout: None,
        };

        Ok((read, write))
    }

    /// Returns true if this struct wraps around a secure connection.
    #[inline]
    pub(crate) fn secure(&self) -> bool {
        self.stream.secure()
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    /// PATCHED (gitlab-registry-usage-rest): reads end at `deadline` (when it is set):
    /// the socket's read timeout is shrunk to what is left before each read, so a client
    /// sending a byte now and then cannot stretch a request head past it.
    pub(crate) fn with_deadline(mut self, deadline: Arc<Deadline>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// PATCHED (gitlab-registry-usage-rest): see the field `patience`.
    pub(crate) fn with_patience(mut self, patient: Arc<AtomicBool>, limit: Duration) -> Self {
        self.patience = Some((patient, limit));
        self
    }

    /// PATCHED (gitlab-registry-usage-rest): ends a blocked read of the other half (it
    /// returns end of stream), to wake the connection's thread.
    pub(crate) fn shutdown_read(&mut self) {
        self.stream.shutdown(Shutdown::Read).ok();
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        // PATCHED (gitlab-registry-usage-rest): see `with_deadline`; a timeout is always
        // reported as `TimedOut` (Linux says `WouldBlock`).
        // The timeout last set is kept when it is at most 50 ms longer and at most a
        // second shorter than what is left (one system call less for most requests: each
        // wait for the next request wants the same keep-alive timeout); a read that ends
        // early is simply retried.
        loop {
            let left = match self.deadline.as_ref().and_then(|d| d.get()) {
                None => None,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                    let close_enough = self.read_timeout.is_some_and(|set| {
                        set <= left + Duration::from_millis(50)
                            && set + Duration::from_secs(1) >= left
                    });
                    if !close_enough {
                        self.stream.set_read_timeout(Some(left))?;
                        self.read_timeout = Some(left);
                    }
                    Some(left)
                }
            };
            match self.stream.read(buf) {
                Err(e) if is_timeout(&e) => {
                    if left.is_none() {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                    // the deadline decides, on the next turn
                }
                other => return other,
            }
        }
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        // PATCHED (gitlab-registry-usage-rest): an expired send timeout as `TimedOut`,
        // retried while patient (see the field `patience`)
        let started = Instant::now();
        loop {
            match self.stream.write(buf) {
                Err(e) if is_timeout(&e) => {
                    let retry = self.patience.as_ref().is_some_and(|(patient, limit)| {
                        patient.load(Ordering::Relaxed) && started.elapsed() < *limit
                    });
                    if !retry {
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
