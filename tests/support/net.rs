//! Client sockets the standard library cannot make: bound to a chosen source address
//! (127.0.0.2 is "another client" on loopback), with a small receive buffer. Shared by
//! tests/http_limits.rs and examples/attack.rs.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream};

/// A connection from `source` to the service, with a small receive buffer if asked (set
/// before connecting, so that the window stays small).
pub fn connect_from(
    source: Ipv4Addr,
    port: u16,
    rcvbuf: Option<i32>,
) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let addr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned by `stream` from its creation on,
    // with pointers to live, correctly sized values.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        if let Some(size) = rcvbuf {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            );
        }
        let local = addr(source, 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = addr(Ipv4Addr::LOCALHOST, port);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// Everything the server sends until it closes the connection: (text, closed). `closed`
/// is false if the stream's read timeout passed first.
pub fn read_until_closed(stream: &mut TcpStream) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            Err(_) => break true, // reset: the server closed with our data unread
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}
