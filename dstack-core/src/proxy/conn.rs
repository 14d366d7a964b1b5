//! The client side of a proxy connection.
//!
//! Pingora 0.9.1 has no hook between accepting a connection and the end of its request head:
//! the first `ProxyHttp` callback runs once the head is parsed. Its own downstream timeouts are
//! per read (a client sending a byte every few seconds is never cut off), 60 s for the first
//! request and none at all between requests of a kept-alive HTTP/1.1 connection (the session's
//! keep-alive becomes "infinite" once a request says nothing against it). A head larger than
//! 1 MiB or with more than 256 fields gets a bare 400.
//!
//! So every accepted TCP stream is wrapped in a [`ClientStream`] before Pingora sees it (the
//! accept loop is ours, see `listener`). The wrapper follows each request head as it is read:
//!
//! * **waiting**: no byte of a request yet. The first request must begin and end within
//!   `header_timeout` of the accept; a kept-alive connection may wait `idle_timeout` for the
//!   next one. At the deadline the read ends (EOF) and Pingora closes the connection silently.
//! * **head**: bytes of a request arrived; the wrapper scans them for the blank line that ends
//!   the head, counting bytes and lines. Past `header_timeout` (from the accept for the first
//!   request, from the first byte for later ones) the client gets 408; past
//!   `max_header_bytes` 414 (still in the request line) or 431; past `max_headers` 431.
//! * **busy**: the head is complete; body, response and upgraded tunnels pass through
//!   untouched. `ProxyHttp::logging` calls [`ClientStream::request_done`] when the response is
//!   done, which puts the connection back to *waiting*.
//!
//! A refusal writes a complete JSON response with `Connection: close`, shuts the write side
//! and reads what the client still sends for at most [`LINGER`] (so that closing with unread
//! bytes does not reset the connection before the client has read the answer); then the read
//! fails and Pingora drops the connection.
//!
//! [`ClientTable`] counts the open connections of each client address for the per-address cap.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, IO, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora::proxy::Session;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{ClientLimits, MAX_HEADER_BYTES_LIMIT, MAX_HEADERS_LIMIT};

/// How long a refused client may take to read the answer (and the proxy keeps reading and
/// discarding what it still sends) before the connection is closed.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// A response the connection layer writes itself, and the error the read then fails with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refusal {
    status: u16,
    reason: &'static str,
    detail: &'static str,
    error: io::ErrorKind,
}

impl Refusal {
    const TIMEOUT: Refusal = Refusal {
        status: 408,
        reason: "Request Timeout",
        detail: "The request head was not received in time",
        error: io::ErrorKind::TimedOut,
    };
    const URI_TOO_LONG: Refusal = Refusal {
        status: 414,
        reason: "URI Too Long",
        detail: "Request line too long",
        error: io::ErrorKind::InvalidData,
    };
    const HEAD_TOO_LARGE: Refusal = Refusal {
        status: 431,
        reason: "Request Header Fields Too Large",
        detail: "Request header fields too large",
        error: io::ErrorKind::InvalidData,
    };
    const TOO_MANY_FIELDS: Refusal = Refusal {
        status: 431,
        reason: "Request Header Fields Too Large",
        detail: "Too many request header fields",
        error: io::ErrorKind::InvalidData,
    };
    /// Answer to a connection over the per-address cap.
    pub(super) const TOO_MANY_CONNECTIONS: Refusal = Refusal {
        status: 429,
        reason: "Too Many Requests",
        detail: "Too many open connections from this address",
        error: io::ErrorKind::ConnectionRefused,
    };

    fn response(&self) -> Bytes {
        let body = serde_json::json!({ "detail": self.detail }).to_string();
        Bytes::from(format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            self.status,
            self.reason,
            body.len()
        ))
    }
}

/// Where a request head read so far stands against the limits.
#[derive(Debug, PartialEq, Eq)]
enum HeadStatus {
    Incomplete,
    Complete,
    /// The request line alone is over the size limit.
    UriTooLong,
    /// The head is over the size limit.
    TooLarge,
    /// The head has too many fields.
    TooManyFields,
}

/// Follows a request head byte by byte: its size, its line count and its end (an empty line,
/// `\r\n` or a bare `\n` as httparse accepts).
#[derive(Debug, Default)]
struct HeadScan {
    /// Bytes of the head, from its first byte that is not a line break.
    bytes: usize,
    /// Line breaks seen: the request line's, then one per header field.
    lines: usize,
    /// A byte other than a line break was seen (httparse skips leading empty lines).
    started: bool,
    /// 0 inside a line, 1 right after `\n`, 2 after `\n\r`.
    line_break: u8,
}

impl HeadScan {
    /// Feeds newly read bytes; `Complete` once the empty line ending the head was seen (bytes
    /// after it belong to the body).
    fn feed(&mut self, data: &[u8], max_bytes: usize, max_fields: usize) -> HeadStatus {
        for &b in data {
            if !self.started {
                if b == b'\r' || b == b'\n' {
                    continue;
                }
                self.started = true;
            }
            self.bytes += 1;
            if self.bytes > max_bytes {
                return if self.lines == 0 {
                    HeadStatus::UriTooLong
                } else {
                    HeadStatus::TooLarge
                };
            }
            match b {
                b'\n' if self.line_break != 0 => return HeadStatus::Complete,
                b'\n' => {
                    self.line_break = 1;
                    self.lines += 1;
                    if self.lines - 1 > max_fields {
                        return HeadStatus::TooManyFields;
                    }
                }
                b'\r' if self.line_break == 1 => self.line_break = 2,
                _ => self.line_break = 0,
            }
        }
        HeadStatus::Incomplete
    }
}

#[derive(Debug)]
enum Phase {
    /// No byte of the next request yet; the read ends (EOF) at `deadline`.
    Waiting {
        deadline: Option<Instant>,
        /// The connection's first request (its head deadline runs from the accept).
        first: bool,
    },
    /// Reading a request head; 408 at `deadline`.
    Head {
        deadline: Option<Instant>,
        scan: HeadScan,
    },
    /// Body, response or upgraded tunnel: everything passes through.
    Busy,
    /// Writing a refusal, then shutting the write side.
    Refusing {
        reply: Bytes,
        written: usize,
        until: Instant,
        error: io::ErrorKind,
    },
    /// Reading and discarding until the client closes or `until`.
    Draining {
        until: Instant,
        error: io::ErrorKind,
    },
    /// Reads fail with this error.
    Closed(io::ErrorKind),
    /// Reads return EOF.
    Ended,
}

/// An accepted client connection as Pingora sees it (see the module documentation).
#[derive(Debug)]
pub(super) struct ClientStream {
    inner: TcpStream,
    limits: ClientLimits,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
    /// Set by `request_done` (through a shared reference from the `ProxyHttp` side).
    request_done: AtomicBool,
    _slot: Slot,
}

fn after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now() + t)
}

impl ClientStream {
    /// Wraps an accepted connection (must run inside a tokio runtime).
    pub(super) fn accept(
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        limits: ClientLimits,
        slot: Slot,
    ) -> ClientStream {
        // What Pingora's own listener does to an accepted stream.
        let _ = tcp.set_nodelay(true);
        let mut inner = TcpStream::from(tcp);
        let digest = SocketDigest::from_raw_fd(inner.as_raw_fd());
        let _ = digest.peer_addr.set(Some(peer.into()));
        inner.set_socket_digest(digest);
        let limits = ClientLimits {
            max_header_bytes: limits.max_header_bytes.min(MAX_HEADER_BYTES_LIMIT),
            max_headers: limits.max_headers.min(MAX_HEADERS_LIMIT),
            ..limits
        };
        ClientStream {
            inner,
            phase: Phase::Waiting {
                deadline: after(limits.header_timeout),
                first: true,
            },
            limits,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
            request_done: AtomicBool::new(false),
            _slot: slot,
        }
    }

    /// The client connection of a session on the proxy's listener (`None` for other streams).
    pub(super) fn of(session: &Session) -> Option<&ClientStream> {
        let io: &dyn IO = &**session.stream()?;
        io.as_any().downcast_ref::<ClientStream>()
    }

    /// The response to the current request is complete: the connection waits for the next
    /// request (at most `idle_timeout`). Pingora's next read of the stream picks this up.
    pub(super) fn request_done(&self) {
        self.request_done.store(true, Ordering::Release);
    }

    /// Answers `refusal` on the next read instead of reading a request.
    pub(super) fn refuse(&mut self, refusal: Refusal) {
        tracing::debug!(
            status = refusal.status,
            detail = refusal.detail,
            "client refused"
        );
        self.phase = Phase::Refusing {
            reply: refusal.response(),
            written: 0,
            until: Instant::now() + LINGER,
            error: refusal.error,
        };
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Waiting { deadline, .. } | Phase::Head { deadline, .. } => *deadline,
            Phase::Refusing { until, .. } | Phase::Draining { until, .. } => Some(*until),
            Phase::Busy | Phase::Closed(_) | Phase::Ended => None,
        }
    }

    /// Whether the current phase's deadline has passed (registering the timer otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline() else {
            return false;
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    fn on_deadline(&mut self) {
        match &self.phase {
            Phase::Waiting { .. } => self.phase = Phase::Ended,
            Phase::Head { .. } => self.refuse(Refusal::TIMEOUT),
            Phase::Refusing { error, .. } | Phase::Draining { error, .. } => {
                self.phase = Phase::Closed(*error);
            }
            Phase::Busy | Phase::Closed(_) | Phase::Ended => {}
        }
    }

    /// Accounts freshly read bytes of a request head; a refusal if they break a limit.
    fn scan(&mut self, fresh: &[u8]) -> Option<Refusal> {
        if let Phase::Waiting { deadline, first } = self.phase {
            self.phase = Phase::Head {
                deadline: if first {
                    deadline
                } else {
                    after(self.limits.header_timeout)
                },
                scan: HeadScan::default(),
            };
        }
        let Phase::Head { scan, .. } = &mut self.phase else {
            return None;
        };
        match scan.feed(fresh, self.limits.max_header_bytes, self.limits.max_headers) {
            HeadStatus::Incomplete => None,
            HeadStatus::Complete => {
                self.phase = Phase::Busy;
                None
            }
            HeadStatus::UriTooLong => Some(Refusal::URI_TOO_LONG),
            HeadStatus::TooLarge => Some(Refusal::HEAD_TOO_LARGE),
            HeadStatus::TooManyFields => Some(Refusal::TOO_MANY_FIELDS),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.request_done.swap(false, Ordering::Acquire)
            && matches!(this.phase, Phase::Busy | Phase::Head { .. })
        {
            this.phase = Phase::Waiting {
                deadline: after(this.limits.idle_timeout),
                first: false,
            };
        }
        loop {
            if this.expired(cx) {
                this.on_deadline();
                continue;
            }
            match &mut this.phase {
                Phase::Busy => return Pin::new(&mut this.inner).poll_read(cx, buf),
                Phase::Ended => return Poll::Ready(Ok(())),
                Phase::Closed(kind) => {
                    return Poll::Ready(Err(io::Error::new(*kind, "request refused")));
                }
                Phase::Waiting { .. } | Phase::Head { .. } => {
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    if buf.filled().len() == before {
                        return Poll::Ready(Ok(()));
                    }
                    match this.scan(&buf.filled()[before..]) {
                        None => return Poll::Ready(Ok(())),
                        Some(refusal) => {
                            buf.set_filled(before);
                            this.refuse(refusal);
                        }
                    }
                }
                Phase::Refusing {
                    reply,
                    written,
                    until,
                    error,
                } => {
                    while *written < reply.len() {
                        match ready!(Pin::new(&mut this.inner).poll_write(cx, &reply[*written..])) {
                            Ok(n) if n > 0 => *written += n,
                            _ => break,
                        }
                    }
                    let (until, error, sent) = (*until, *error, *written == reply.len());
                    if sent && ready!(Pin::new(&mut this.inner).poll_shutdown(cx)).is_ok() {
                        this.phase = Phase::Draining { until, error };
                    } else {
                        this.phase = Phase::Closed(error);
                    }
                }
                Phase::Draining { error, .. } => {
                    let error = *error;
                    let mut scratch = [0u8; 4096];
                    let mut sink = ReadBuf::new(&mut scratch);
                    match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sink)) {
                        Ok(()) if !sink.filled().is_empty() => {}
                        _ => this.phase = Phase::Closed(error),
                    }
                }
            }
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for ClientStream {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut self.inner).await;
    }
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for ClientStream {}

impl GetTimingDigest for ClientStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for ClientStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for ClientStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// Open connections per client address, shared by all proxy threads.
#[derive(Debug)]
pub(super) struct ClientTable {
    max: Option<usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in the [`ClientTable`], given back when dropped.
#[derive(Debug)]
pub(super) struct Slot(Option<(Arc<ClientTable>, IpAddr)>);

impl ClientTable {
    pub(super) fn new(max: Option<usize>) -> Arc<ClientTable> {
        Arc::new(ClientTable {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `ip`, or `None` when the address is at the cap.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let Some(max) = self.max else {
            return Some(Slot(None));
        };
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Slot(Some((Arc::clone(self), ip))))
    }

    /// Connections open from `ip` (for tests and diagnostics).
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Slot {
    /// A slot outside any table (refused connections).
    pub(super) fn none() -> Slot {
        Slot(None)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((table, ip)) = self.0.take() else {
            return;
        };
        let mut open = table.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(input: &[u8], max_bytes: usize, max_fields: usize) -> HeadStatus {
        HeadScan::default().feed(input, max_bytes, max_fields)
    }

    #[test]
    fn a_head_ends_at_the_first_empty_line() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nbody\r\n\r\n";
        assert_eq!(feed_all(head, 1024, 10), HeadStatus::Complete);
        assert_eq!(
            feed_all(b"GET / HTTP/1.1\nHost: a\n\n", 1024, 10),
            HeadStatus::Complete
        );
        assert_eq!(
            feed_all(b"\r\nGET / HTTP/1.1\r\n", 1024, 10),
            HeadStatus::Incomplete
        );
        // Byte by byte gives the same answer.
        let mut scan = HeadScan::default();
        let mut last = HeadStatus::Incomplete;
        for b in b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
            last = scan.feed(&[*b], 1024, 10);
        }
        assert_eq!(last, HeadStatus::Complete);
        assert_eq!(scan.lines, 2);
    }

    #[test]
    fn limits_on_size_request_line_and_fields() {
        let head = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(feed_all(head, head.len(), 2), HeadStatus::Complete);
        assert_eq!(feed_all(head, head.len() - 1, 2), HeadStatus::TooLarge);
        assert_eq!(feed_all(head, 1024, 1), HeadStatus::TooManyFields);
        assert_eq!(feed_all(head, 8, 2), HeadStatus::UriTooLong);
    }

    #[test]
    fn the_table_caps_each_address_and_gives_slots_back() {
        let table = ClientTable::new(Some(2));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let a = table.admit(ip).unwrap();
        let _b = table.admit(mapped).unwrap();
        assert!(table.admit(ip).is_none());
        assert!(table.admit([10, 0, 0, 2].into()).is_some());
        drop(a);
        assert_eq!(table.open(ip), 1);
        assert!(table.admit(ip).is_some());
        let unlimited = ClientTable::new(None);
        let slots: Vec<_> = (0..1000).map(|_| unlimited.admit(ip)).collect();
        assert!(slots.iter().all(Option::is_some));
    }
}
