//! PATCHED (gitlab-registry-usage-rest): an entry point for fuzzing the request-head
//! reader. Not part of tiny_http's API (hidden from its docs); the service's
//! `fuzzing::http_head` check and its fuzz target are the only callers.
//!
//! The bytes go through the real code path, `ClientConnection` over a connected socket
//! (a Unix socket pair instead of TCP), so nothing in `client.rs` needs a seam: the
//! input is written to one end, which is then shut down for writing, and the connection
//! reads requests from the other end until it gives up or the stream ends.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crate::client::ClientConnection;
use crate::connection::Connection;
use crate::util::RefinedTcpStream;
use crate::{Limits, Response, StatusCode};

/// One request as `ClientConnection` handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    pub method: String,
    pub url: String,
    pub version: (u8, u8),
    pub headers: Vec<(String, String)>,
    /// Bytes of the body read before the stream ended (bodies are read, so that the
    /// chunked decoder and the length-limited readers run too).
    pub body_len: usize,
}

/// What the connection did with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub requests: Vec<ParsedRequest>,
    /// Everything the connection wrote back: a `204` for each request, and tiny_http's
    /// own answers (`100 Continue`, and the refusal that ends a connection: `400`, `413`,
    /// `414`, `417`, `431`, `501`, `505`).
    pub written: Vec<u8>,
}

/// The body limit of [`read_requests`]: small, so that inputs reach the 413 as well.
pub const MAX_BODY: usize = 4096;

/// Feeds `input` to a fresh connection and reads at most `max_requests` requests from it
/// (each answered with an empty `204`), with the limits of `Limits::unlimited` but a
/// body limit of [`MAX_BODY`] (no timeouts: the input is all there, then end of stream). The socket buffers hold what is written both
/// ways, so `input` should stay under about 100 KiB and `max_requests` under a few
/// hundred; the fuzz target keeps within both.
pub fn read_requests(input: &[u8], max_requests: usize) -> Outcome {
    let (mut client, server) = UnixStream::pair().expect("a Unix socket pair");
    client.write_all(input).expect("input fits in the socket buffer");
    client.shutdown(Shutdown::Write).expect("shutting down the client's writes");

    // Input the connection left unread is drained through this clone before the last
    // descriptor of its socket closes: closing with unread data would reset the pair, and
    // the answers would be lost.
    let mut drain = server.try_clone().expect("a second descriptor");
    let (read, write) =
        RefinedTcpStream::new(Connection::from(server)).expect("a second descriptor");
    let limits = Limits {
        max_body: MAX_BODY,
        ..Limits::unlimited()
    };
    // No writer pool: every answer is written by the connection itself, as checked here.
    let connection = ClientConnection::new(write, read, Arc::new(limits), None);
    let mut requests = Vec::new();
    for mut request in connection.take(max_requests) {
        // Read before the request is handed over: the body is in memory (or, after
        // `Connection: upgrade`, the rest of the stream).
        let mut body = Vec::new();
        let _ = request.as_reader().take(1 << 20).read_to_end(&mut body);
        requests.push(ParsedRequest {
            method: request.method().as_str().to_string(),
            url: request.url().to_string(),
            version: (request.http_version().0, request.http_version().1),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string()))
                .collect(),
            body_len: body.len(),
        });
        let _ = request.respond(Response::empty(StatusCode(204)));
    }
    // The connection and its descriptors are dropped: reading to the end cannot block.
    let _ = drain.read_to_end(&mut Vec::new());
    drop(drain);
    let mut written = Vec::new();
    client
        .read_to_end(&mut written)
        .expect("reading the answers");
    Outcome { requests, written }
}
